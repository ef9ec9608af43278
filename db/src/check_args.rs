//! `PGCDC_CHECK_ARGS=1`: a binary parses its whole command line, says so, and exits 0 before any
//! I/O. Every binary of the playground calls [`exit_if_only_checking`] right after parsing.
//!
//! Why: the README and the workshop pages show dozens of `cargo run -p ... -- <flags>` lines, and
//! `db/tests/documented_commands.rs` runs each of them this way, so a renamed flag, value or
//! binary fails CI instead of a learner. `--help` alone cannot prove that: clap prints the help as
//! soon as it meets `--help`, before it checks what a full parse checks (required arguments,
//! conflicting flags, anything after `--help`); the tests below show it.
//!
//! ```text
//! $ PGCDC_CHECK_ARGS=1 target/debug/cdc-reader --sink stdout --pretty
//! cdc-reader: arguments parse (PGCDC_CHECK_ARGS=1: nothing else done)
//! $ PGCDC_CHECK_ARGS=1 target/debug/cdc-reader --sink stdoot
//! error: invalid value 'stdoot' for '--sink <SINK>' ...        (exit 2, clap's own error)
//! ```

/// The environment variable that turns a run into a check of its command line.
pub const CHECK_ARGS_ENV: &str = "PGCDC_CHECK_ARGS";

/// The line a binary prints when it only checked its arguments.
pub const CHECKED_LINE: &str = "arguments parse (PGCDC_CHECK_ARGS=1: nothing else done)";

/// Call after the command line parsed (and after any pure validation that follows it): with
/// `PGCDC_CHECK_ARGS=1` this prints `<program>: arguments parse ...` and exits 0.
pub fn exit_if_only_checking(program: &str) {
    if std::env::var_os(CHECK_ARGS_ENV).is_some_and(|value| value == "1") {
        println!("{program}: {CHECKED_LINE}");
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::Parser;

    /// A command line with what a full parse checks and `--help` skips.
    #[derive(Debug, Parser)]
    struct Example {
        #[arg(long)]
        required: String,
        #[arg(long, conflicts_with = "pretty")]
        compact: bool,
        #[arg(long)]
        pretty: bool,
        #[arg(long, default_value_t = 1)]
        count: u32,
    }

    fn kind(args: &[&str]) -> Option<ErrorKind> {
        Example::try_parse_from(std::iter::once("example").chain(args.iter().copied()))
            .err()
            .map(|error| error.kind())
    }

    #[test]
    fn a_full_parse_rejects_what_help_lets_through() {
        // Conflicts and missing required arguments: found by a full parse...
        assert_eq!(
            kind(&["--required", "x", "--compact", "--pretty"]),
            Some(ErrorKind::ArgumentConflict)
        );
        assert_eq!(kind(&[]), Some(ErrorKind::MissingRequiredArgument));
        // ...and not when `--help` comes at the end: clap stops there and prints the help.
        assert_eq!(
            kind(&["--compact", "--pretty", "--help"]),
            Some(ErrorKind::DisplayHelp)
        );
        // Anything after `--help` is not even looked at.
        assert_eq!(
            kind(&["--help", "--no-such-flag"]),
            Some(ErrorKind::DisplayHelp)
        );
    }

    #[test]
    fn help_at_the_end_still_catches_unknown_flags_and_bad_values_before_it() {
        // What comes before `--help` is parsed: so `--help` is a partial check only.
        assert_eq!(
            kind(&["--no-such-flag", "--help"]),
            Some(ErrorKind::UnknownArgument)
        );
        assert_eq!(
            kind(&["--count", "many", "--help"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(kind(&["--required", "x", "--count", "2"]), None);
    }
}
