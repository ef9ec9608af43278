//! The workshop, kept honest: every exercise of `workshop/` is run and checked, as a learner
//! would with `scripts/workshop run N` and `scripts/workshop check N`, so the pages never drift
//! from what the code does.
//!
//! ```text
//! cargo test -p db --test workshop        (after `cargo build --workspace`; scripts/test does both)
//! WORKSHOP_EXERCISES="3 5" cargo test -p db --test workshop    only some exercises
//! ```
//!
//! It drives the binaries `cargo test --workspace` has just built in `target/debug`
//! (`producer`, `cdc-reader`, `consumer`, `db`); it does not call cargo itself, which would wait
//! for the lock this very `cargo test` holds. Each run gets sandbox names of its own
//! (`wst<pid>NN`: databases, slots, topics), and drops its databases and slots at the end.
//! Exercise 15 needs Cassandra (`scripts/stack up --with cassandra`, as scripts/test starts it).
//! Exercise 16 restarts PostgreSQL, so it runs on a private stack (`db::private_stack`);
//! exercise 13 kills a Kafka broker, on a private stack of three brokers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/debug`, where this test binary's own directory (`target/debug/deps`) sits.
fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("the test binary lives in target/<profile>/deps")
}

/// The exercises to run: `WORKSHOP_EXERCISES` (e.g. "3 5"), or all of them.
fn chosen_exercises() -> Vec<String> {
    let chosen = std::env::var("WORKSHOP_EXERCISES").unwrap_or_default();
    chosen.split_whitespace().map(str::to_string).collect()
}

/// Exercises that break a server on purpose: run on a private stack, never the shared one.
const BREAKS_SERVERS: &[&str] = &["16", "13"];

fn workshop_root_and_bin() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("db/ sits in the workspace")
        .to_path_buf();
    let bin = binaries_dir();
    for name in ["producer", "cdc-reader", "consumer", "db"] {
        assert!(
            bin.join(name).exists(),
            "{} is missing: the workshop test drives the built binaries; run `cargo build --workspace` \
             (or scripts/test, which runs `cargo test --workspace`)",
            bin.join(name).display()
        );
    }
    (root, bin)
}

fn workshop_test(exercises: &[String], env: &[(&str, String)]) {
    let (root, bin) = workshop_root_and_bin();
    let status = Command::new(root.join("scripts/workshop"))
        .arg("test")
        .args(exercises)
        .current_dir(&root)
        .env("WORKSHOP_NAME", format!("wst{}x", std::process::id()))
        .env("WORKSHOP_SKIP_BUILD", "1")
        .env("WORKSHOP_BIN_DIR", &bin)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .expect("scripts/workshop runs (bash, psql, python3 and java are needed)");
    assert!(
        status.success(),
        "scripts/workshop test {exercises:?} failed (its output is above; each exercise's run log is in <playground>/workshop/)"
    );
}

#[test]
fn every_workshop_exercise_runs_and_passes_its_check() {
    let chosen = chosen_exercises();
    let exercises: Vec<String> = if chosen.is_empty() {
        // 15 writes into Cassandra: the shared stack of scripts/test runs `--with cassandra`.
        (1..=12).chain([14, 15]).map(|n| n.to_string()).collect()
    } else {
        chosen
            .into_iter()
            .filter(|n| !BREAKS_SERVERS.contains(&n.as_str()))
            .collect()
    };
    if !exercises.is_empty() {
        workshop_test(&exercises, &[]);
    }
}

/// Exercise 16 restarts PostgreSQL: on a stack of its own, so the other tests go on undisturbed.
#[test]
fn pull_the_plug_runs_on_a_private_stack_and_passes_its_check() {
    let chosen = chosen_exercises();
    let exercises: Vec<String> = ["16"]
        .iter()
        .filter(|n| chosen.is_empty() || chosen.iter().any(|c| c == *n))
        .map(|n| n.to_string())
        .collect();
    if exercises.is_empty() {
        return;
    }
    let stack = db::private_stack::PrivateStack::up("workshop_plug");
    workshop_test(&exercises, &stack.env());
}

/// Exercise 13 kills the broker that leads a partition: on a private stack of three brokers.
#[test]
fn scale_out_and_fail_over_runs_on_three_private_brokers_and_passes_its_check() {
    let chosen = chosen_exercises();
    if !(chosen.is_empty() || chosen.iter().any(|c| c == "13")) {
        return;
    }
    let stack = db::private_stack::PrivateStack::up_with_brokers("workshop_brokers", 3);
    workshop_test(&["13".to_string()], &stack.env());
}
