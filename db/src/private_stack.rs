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
//! ```
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

impl PrivateStack {
    /// Starts a private stack named after the test (`name` plus the test process id).
    pub fn up(name: &str) -> PrivateStack {
        let dir =
            std::env::temp_dir().join(format!("pgcdc-stack-{}", crate::testing::unique_name(name)));
        if dir.exists() {
            // A previous run of this very process id (unlikely) or a leftover: start clean.
            let stale = PrivateStack {
                dir: dir.clone(),
                pg_port: 0,
                kafka_port: 0,
                kafka_controller_port: 0,
            };
            stale.run_quietly(&["down"]);
            drop(stale);
        }
        let stack = PrivateStack {
            dir,
            pg_port: free_port(),
            kafka_port: free_port(),
            kafka_controller_port: free_port(),
        };
        stack.share_kafka_jars();
        stack.run(&["up", "--native"]);
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

    pub fn kafka_bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
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
