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

#[test]
fn every_workshop_exercise_runs_and_passes_its_check() {
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
    let exercises = std::env::var("WORKSHOP_EXERCISES").unwrap_or_default();
    let status = Command::new(root.join("scripts/workshop"))
        .arg("test")
        .args(exercises.split_whitespace())
        .current_dir(&root)
        .env("WORKSHOP_NAME", format!("wst{}x", std::process::id()))
        .env("WORKSHOP_SKIP_BUILD", "1")
        .env("WORKSHOP_BIN_DIR", &bin)
        .status()
        .expect("scripts/workshop runs (bash, psql, python3 and java are needed)");
    assert!(
        status.success(),
        "scripts/workshop test failed (its output is above; each exercise's run log is in .playground/workshop/)"
    );
}
