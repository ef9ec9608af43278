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
