//! Test support: a whole stack of its own (PostgreSQL + Kafka) for tests that break servers.
//!
//! Most integration tests share the playground's stack and keep apart by database, slot and
//! topic names ([`crate::testing`]). A test that restarts PostgreSQL, kills its postmaster or
//! stops Kafka cannot share: it would break every other test running beside it. Such a test
//! asks for a [`PrivateStack`]: `scripts/stack up` with a data folder of its own under the
//! system's temp directory and free ports, so everything `scripts/stack` knows (the cluster's
//! settings, the `playground` role, pg_hba.conf, the KRaft broker) is exactly what a learner
//! runs, and the faults are the very commands a learner types:
//!
//! ```text
//! scripts/stack restart postgres fast|immediate   pg_ctl restart -m MODE
//! scripts/stack crash postgres                    kill -9 the postmaster, start again (crash recovery)
//! scripts/stack restart kafka                     SIGTERM the broker, start it again
//! scripts/stack kill-broker N / start-broker N    kill -9 broker N of three, start it again
//! ```
//!
//! [`PrivateStack::up_with_brokers`]`(name, 3)` starts three Kafka brokers (`scripts/stack up
//! --brokers 3`: replication factor 3, min.insync.replicas 2) on six consecutive free ports.
//!
//! [`PrivateRegistry`] is the same idea for the schema registry alone: a test that stops the
//! registry mid-stream starts one of its own (the stack's jar, a database of its own on the
//! shared server) instead of a whole private stack.
//!
//! Dropping the value runs `scripts/stack down` and removes the folder. A cold private stack
//! takes about 12 s to start (initdb, Kafka storage format); the Kafka jars are copied from the
//! local Maven repository that the playground's own `scripts/stack up` filled.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running private stack; stopped and removed on drop.
pub struct PrivateStack {
    dir: PathBuf,
    pub pg_port: u16,
    pub kafka_port: u16,
    kafka_controller_port: u16,
    /// How many Kafka brokers (1, or 3).
    pub brokers: u16,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the system has a free port")
}

/// The first of `count` consecutive ports nobody listens on right now.
pub fn free_port_run(count: u16) -> u16 {
    loop {
        let base = free_port();
        if base.checked_add(count).is_none() {
            continue;
        }
        let all_free = (1..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
}

impl PrivateStack {
    /// Starts a private stack named after the test (`name` plus the test process id).
    pub fn up(name: &str) -> PrivateStack {
        Self::up_with_brokers(name, 1)
    }

    /// Starts a private stack with `brokers` Kafka brokers (1 or 3): broker N listens on
    /// `kafka_port + 2(N-1)`, its controller on the port after that.
    pub fn up_with_brokers(name: &str, brokers: u16) -> PrivateStack {
        let dir =
            std::env::temp_dir().join(format!("pgcdc-stack-{}", crate::testing::unique_name(name)));
        if dir.exists() {
            // A previous run of this very process id (unlikely) or a leftover: start clean.
            let stale = PrivateStack {
                dir: dir.clone(),
                pg_port: 0,
                kafka_port: 0,
                kafka_controller_port: 0,
                brokers: 1,
            };
            stale.run_quietly(&["down"]);
            drop(stale);
        }
        let (kafka_port, kafka_controller_port) = if brokers == 1 {
            (free_port(), free_port())
        } else {
            let base = free_port_run(2 * brokers);
            (base, base + 1)
        };
        let stack = PrivateStack {
            dir,
            pg_port: free_port(),
            kafka_port,
            kafka_controller_port,
            brokers,
        };
        stack.share_kafka_jars();
        let count = brokers.to_string();
        stack.run(&["up", "--native", "--brokers", &count]);
        stack
    }

    /// Hard-links the playground's fetched jars (Kafka, and Kafka's tools for the workshop) into
    /// this stack: saves a `mvn` run each.
    fn share_kafka_jars(&self) {
        let playground = std::env::var("PLAYGROUND_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".playground"));
        for jars in ["kafka/lib", "kafka-tools/lib"] {
            let from = playground.join(jars);
            let to = self.dir.join(jars);
            if !from.join(".stamp").exists() || to.exists() {
                continue;
            }
            if let Some(parent) = to.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = Command::new("cp").arg("-al").arg(&from).arg(&to).status();
        }
    }

    /// The environment that points `scripts/*` (and `scripts/workshop`) at this stack.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PLAYGROUND_DIR", self.dir.display().to_string()),
            ("PG_PORT", self.pg_port.to_string()),
            ("KAFKA_PORT", self.kafka_port.to_string()),
            (
                "KAFKA_CONTROLLER_PORT",
                self.kafka_controller_port.to_string(),
            ),
            ("KAFKA_BROKERS", self.brokers.to_string()),
            // No schema registry: the fault tests do not use one (and a JVM less to start).
            ("SCHEMA_REGISTRY", "off".to_string()),
            ("DATABASE_URL", self.database_url("playground")),
            ("KAFKA_BOOTSTRAP_SERVERS", self.kafka_bootstrap_servers()),
        ]
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(repo_root().join("scripts/stack"));
        command.args(args).envs(self.env());
        command
    }

    /// Runs `scripts/stack ARGS` against this stack; panics with its output when it fails.
    pub fn run(&self, args: &[&str]) {
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("scripts/stack {args:?} could not start: {e}"));
        assert!(
            output.status.success(),
            "scripts/stack {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn run_quietly(&self, args: &[&str]) {
        let _ = self.command(args).output();
    }

    /// The private server's URL for `database` (the `playground` role).
    pub fn database_url(&self, database: &str) -> String {
        format!(
            "postgres://playground:playground@127.0.0.1:{}/{database}",
            self.pg_port
        )
    }

    /// Every broker, comma-separated.
    pub fn kafka_bootstrap_servers(&self) -> String {
        (0..self.brokers)
            .map(|n| format!("127.0.0.1:{}", self.kafka_port + 2 * n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `scripts/stack kill-broker N` (SIGKILL).
    pub fn kill_broker(&self, n: u16) {
        self.run(&["kill-broker", &n.to_string()]);
    }

    /// `scripts/stack start-broker N` (returns once it answers).
    pub fn start_broker(&self, n: u16) {
        self.run(&["start-broker", &n.to_string()]);
    }

    /// `scripts/stack restart postgres fast|immediate`.
    pub fn restart_postgres(&self, mode: &str) {
        self.run(&["restart", "postgres", mode]);
    }

    /// `scripts/stack crash postgres`: SIGKILL to the postmaster, then crash recovery.
    pub fn crash_postgres(&self) {
        self.run(&["crash", "postgres"]);
    }

    /// `scripts/stack restart kafka`.
    pub fn restart_kafka(&self) {
        self.run(&["restart", "kafka"]);
    }

    /// The folder this stack keeps its data, logs and pid files in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateStack {
    fn drop(&mut self) {
        self.run_quietly(&["down"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A schema registry of its own (Apicurio Registry, the jar `scripts/stack up` fetched), for
/// tests that stop the registry while a reader or a consumer uses it.
///
/// It runs exactly as `scripts/stack` runs the playground's (same flags, compatibility
/// BACKWARD), on a free port, its schemas in a database of its own on the test server, so
/// they survive [`PrivateRegistry::stop`] / [`PrivateRegistry::start`] as the stack's survive
/// `down`/`up`: the schema ids already in Kafka keep resolving. Dropped: stopped, database kept
/// until the next run of the same test drops it.
pub struct PrivateRegistry {
    dir: PathBuf,
    port: u16,
    database_url: String,
    process: Option<std::process::Child>,
}

impl PrivateRegistry {
    /// Creates the registry's database `registry_<name>_<pid>` (empty: Apicurio makes its own
    /// tables) and starts the registry; returns once its Confluent API answers.
    pub async fn up(name: &str) -> PrivateRegistry {
        use sqlx::Connection;
        let database = format!("registry_{}", crate::testing::unique_name(name));
        let server = crate::testing::server_url();
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .expect("the test server answers");
        // This run's database, and those of earlier runs whose process is gone.
        let earlier: Vec<String> =
            sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
                .bind(format!("registry_{name}\\_%"))
                .fetch_all(&mut admin)
                .await
                .expect("pg_database");
        let mut statements: Vec<String> = earlier
            .into_iter()
            .filter(|old| {
                let pid = old.rsplit('_').next().and_then(|p| p.parse::<u32>().ok());
                pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            })
            .map(|old| format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"))
            .collect();
        statements.push(format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ));
        statements.push(format!("CREATE DATABASE \"{database}\""));
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .expect("the registry's database");
        }
        let _ = admin.close().await;
        let dir = std::env::temp_dir().join(format!(
            "pgcdc-registry-{}",
            crate::testing::unique_name(name)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp folder");
        let mut registry = PrivateRegistry {
            dir,
            port: free_port(),
            database_url: crate::testing::with_database(&server, &database),
            process: None,
        };
        registry.start();
        registry
    }

    /// The base URL a Confluent client is given (`--schema-registry-url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/apis/ccompat/v7", self.port)
    }

    fn jar() -> PathBuf {
        let playground = std::env::var("PLAYGROUND_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".playground"));
        let app = playground.join("registry/app");
        std::fs::read_dir(&app)
            .ok()
            .and_then(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .find(|path| path.to_string_lossy().ends_with("-runner.jar"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no Apicurio Registry jar in {} (scripts/stack up fetches it)",
                    app.display()
                )
            })
    }

    /// Starts the registry (again) and waits until it answers, then sets BACKWARD.
    pub fn start(&mut self) {
        assert!(self.process.is_none(), "the private registry already runs");
        // postgres://user:password@host:port/database -> the JDBC URL and the credentials.
        let rest = self.database_url.split_once("://").map_or("", |(_, r)| r);
        let (credentials, address) = rest.split_once('@').unwrap_or(("", rest));
        let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        let jar = Self::jar();
        let log = std::fs::File::create(self.dir.join("registry.log")).expect("a log file");
        let child = Command::new("java")
            .args(["-Xms64m", "-Xmx384m", "-XX:+UseSerialGC"])
            .arg("-Dquarkus.http.host=127.0.0.1")
            .arg(format!("-Dquarkus.http.port={}", self.port))
            .arg("-Dapicurio.storage.kind=sql")
            .arg("-Dapicurio.storage.sql.kind=postgresql")
            .arg(format!(
                "-Dapicurio.datasource.url=jdbc:postgresql://{address}"
            ))
            .arg(format!("-Dapicurio.datasource.username={user}"))
            .arg(format!("-Dapicurio.datasource.password={password}"))
            .arg("-jar")
            .arg(&jar)
            .current_dir(jar.parent().expect("the app folder"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .expect("java starts the registry");
        self.process = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !self.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "the private registry did not answer within 120 s; its log: {}",
                self.dir.join("registry.log").display()
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let status = Command::new("curl")
            .args(["-sf", "-m", "5", "-X", "PUT", "-H"])
            .arg("Content-Type: application/vnd.schemaregistry.v1+json")
            .args(["-d", r#"{"compatibility":"BACKWARD"}"#])
            .arg(format!("{}/config", self.url()))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("curl runs");
        assert!(
            status.success(),
            "the private registry took no BACKWARD setting"
        );
    }

    fn answers(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "-m", "2", "-o", "/dev/null"])
            .arg(format!("{}/subjects", self.url()))
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Stops the registry (SIGTERM, then SIGKILL after 20 s): from now on its port refuses.
    pub fn stop(&mut self) {
        let Some(mut child) = self.process.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
