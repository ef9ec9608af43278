//! Every command the documentation shows still parses: a renamed flag, binary or script command
//! fails CI, not a learner on their first hour.
//!
//! It reads README.md, workshop/*.md and bench/README.md, finds every `cargo run ...`,
//! `cargo test ...` and `scripts/...` command (in code blocks and in inline code), and checks each
//! one without doing what it does:
//!
//! ```text
//! cargo run -p PKG [--bin B] [-- ARGS]  -> target/debug/B ARGS with PGCDC_CHECK_ARGS=1: the binary
//!                                          parses everything, prints "arguments parse", exits 0
//!                                          (db/src/check_args.rs says why `--help` is not enough)
//! cargo test [-p PKG] [--test T]        -> PKG is a workspace package, PKG/tests/T.rs exists
//! scripts/X ARGS                        -> scripts/X ARGS with SCRIPTS_DRY_RUN=1: the script checks
//!                                          its arguments, prints "dry run", exits 0 (scripts/lib.sh);
//!                                          and scripts/X --help works
//! scripts/some/file                     -> a file named in the docs exists
//! ```
//!
//! It never calls `cargo run`: `cargo test` holds cargo's build lock while tests run. It reads
//! each package's Cargo.toml to find the binary `cargo run -p PKG` would pick (`default-run`, or
//! the only one; several without `default-run` fails, as cargo would), and runs that binary from
//! target/debug. `cargo test --workspace` (scripts/test) builds every binary first; run alone
//! (`cargo test -p db --test documented_commands`), it needs `cargo build --bins` before, and
//! says so when a binary is older than its sources.
//!
//! Placeholders in the docs get example values: `N` -> `1`, `TOPIC` / `<topic>` -> a topic,
//! `...` and `[optional...]` are dropped, and `$WS`, `$PGDATABASE`, `$WORKSHOP_DIR` are set as
//! a workshop sandbox would set them. Only the command itself runs: a pipeline's other side
//! (`| tee ...`), a trailing `&` and `# comments` are cut off, and `eval "$(X)"` checks X.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The documents whose commands are checked (workshop/*.md are added at run time).
const DOCUMENTS: &[&str] = &["README.md", "bench/README.md"];

/// Whole-word placeholders and what they become.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("N", "1"),
    ("TOPIC", "$WS.public.orders"),
    ("<topic>", "dbserver1.public.orders"),
];

/// The shell variables a workshop page uses, as `scripts/workshop env 1` would set them.
const SANDBOX_VARIABLES: &[(&str, &str)] = &[
    ("WS", "ws01r1"),
    ("PGDATABASE", "ws01"),
    ("WORKSHOP_DIR", "/tmp/pgcdc-documented-commands"),
];

/// A command that does not finish its check in this time is doing real work: a failure.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// One command as the documentation shows it, and where.
#[derive(Debug, Clone)]
struct Documented {
    text: String,
    file: String,
    line: usize,
}

impl Documented {
    fn place(&self) -> String {
        format!("{}:{}: `{}`", self.file, self.line, self.text)
    }
}

#[test]
fn every_documented_command_parses() {
    let root = workspace_root();
    let commands = documented_commands(&root);
    let packages = workspace_packages(&root);
    assert!(
        commands.iter().any(|c| c.text.starts_with("cargo run"))
            && commands.iter().any(|c| c.text.starts_with("scripts/")),
        "found no commands in the docs: is the extraction broken? {commands:#?}"
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    let mut scripts_seen = BTreeSet::new();
    let mut binaries_seen = BTreeSet::new();
    for command in &commands {
        let outcome = if command.text.starts_with("cargo run") {
            check_cargo_run(&root, &packages, &command.text).map(|binary| {
                binaries_seen.insert(binary);
            })
        } else if command.text.starts_with("cargo test") {
            check_cargo_test(&root, &packages, &command.text)
        } else {
            check_script(&root, &command.text).map(|script| {
                if let Some(script) = script {
                    scripts_seen.insert(script);
                }
            })
        };
        match outcome {
            Ok(()) => checked += 1,
            Err(error) => failures.push(format!("{}\n    {error}", command.place())),
        }
    }
    // Each program's own help works too (what a learner types first).
    for binary in &binaries_seen {
        if let Err(error) = run_checked(&root, &format!("{} --help", shell_quote(binary)), &[]) {
            failures.push(format!("{binary} --help\n    {error}"));
        }
    }
    for script in &scripts_seen {
        if let Err(error) = run_checked(&root, &format!("{script} --help"), &[]) {
            failures.push(format!("{script} --help\n    {error}"));
        }
    }
    println!(
        "{checked} documented commands checked ({} binaries, {} scripts)",
        binaries_seen.len(),
        scripts_seen.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} documented commands do not work as written:\n{}",
        failures.len(),
        commands.len(),
        failures.join("\n")
    );
}

/// A renamed flag must be caught: the check itself is checked against a wrong command.
#[test]
fn a_wrong_flag_or_script_command_fails_the_check() {
    let root = workspace_root();
    let packages = workspace_packages(&root);
    if binary_path(&root, "cdc-reader").exists() {
        let error = check_cargo_run(
            &root,
            &packages,
            "cargo run -p cdc-reader -- --no-such-flag",
        )
        .expect_err("an unknown flag is refused");
        assert!(error.contains("--no-such-flag"), "{error}");
    }
    let error = check_cargo_run(&root, &packages, "cargo run -p no-such-package")
        .expect_err("an unknown package is refused");
    assert!(error.contains("no-such-package"), "{error}");
    let error = check_script(&root, "scripts/stack upp").expect_err("unknown command");
    assert!(error.contains("unknown command"), "{error}");
    let error = check_script(&root, "scripts/workshop check 99").expect_err("no exercise 99");
    assert!(error.contains("which exercise"), "{error}");
    let error = check_cargo_test(&root, &packages, "cargo test -p db --test no_such_test")
        .expect_err("no such test target");
    assert!(error.contains("no_such_test"), "{error}");
}

#[test]
fn commands_are_found_in_code_blocks_and_inline_code() {
    let text = "intro `cargo run -p db -- migrate` and `-- <topic> --last 3`\n\
                ```sh\n\
                scripts/stack up        # start\n\
                eval \"$(scripts/workshop env 1)\"\n\
                $ cargo run -p consumer -- status\n\
                FOO=1 scripts/demo\n\
                cargo run -p cdc-reader -- --sink stdout | tee \"$WORKSHOP_DIR/x.json\"\n\
                cargo run -p producer -- --orders 5 &\n\
                some output line\n\
                ```\n\
                `scripts/check_env ...` and `scripts/conformance [scenario...]`\n";
    let found: Vec<String> = commands_in(text, "doc.md")
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert_eq!(
        found,
        [
            "cargo run -p db -- migrate",
            "scripts/stack up",
            "scripts/workshop env 1",
            "cargo run -p consumer -- status",
            "FOO=1 scripts/demo",
            "cargo run -p cdc-reader -- --sink stdout",
            "cargo run -p producer -- --orders 5",
            "scripts/check_env",
            "scripts/conformance",
        ]
    );
}

#[test]
fn cargo_run_resolves_like_cargo() {
    let root = workspace_root();
    let packages = workspace_packages(&root);
    assert_eq!(
        resolve_binary(&packages, "cdc-reader", None),
        Ok("cdc-reader".to_string())
    );
    assert_eq!(
        resolve_binary(&packages, "cdc-reader", Some("topic-peek")),
        Ok("topic-peek".to_string())
    );
    assert_eq!(
        resolve_binary(&packages, "producer", None),
        Ok("producer".to_string())
    );
    let ambiguous = Package {
        dir: root.join("x"),
        binaries: vec!["a".into(), "b".into()],
        default_run: None,
        path_dependencies: vec![],
    };
    let packages = BTreeMap::from([("x".to_string(), ambiguous)]);
    assert!(resolve_binary(&packages, "x", None)
        .unwrap_err()
        .contains("could not determine which binary"));
}

// ---------------------------------------------------------------------------------------------
// Finding the commands
// ---------------------------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("db/ is inside the workspace")
        .to_path_buf()
}

fn documented_commands(root: &Path) -> Vec<Documented> {
    let mut files: Vec<PathBuf> = DOCUMENTS.iter().map(|d| root.join(d)).collect();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("workshop"))
        .expect("workshop/")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    let mut commands = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let name = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        commands.extend(commands_in(&text, &name));
    }
    commands
}

/// The commands in one Markdown text: each line of a fenced code block, and each inline code
/// span elsewhere, cut down to the commands we check.
fn commands_in(text: &str, file: &str) -> Vec<Documented> {
    let mut found = Vec::new();
    let mut in_block = false;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let snippets: Vec<&str> = if in_block {
            let line = line.trim();
            vec![line.strip_prefix("$ ").unwrap_or(line)]
        } else {
            line.split('`').skip(1).step_by(2).collect()
        };
        for snippet in snippets {
            for command in commands_of_snippet(snippet) {
                found.push(Documented {
                    text: command,
                    file: file.to_string(),
                    line: index + 1,
                });
            }
        }
    }
    found
}

/// The checked commands of one shell snippet: `eval "$(X)"` gives X; pipelines and lists are
/// split (`|`, `&&`, `||`, `;`, `&`), a comment is cut off; each part that starts (after
/// `VAR=value` settings) with `cargo run`, `cargo test` or `scripts/` is kept, placeholders dropped.
fn commands_of_snippet(snippet: &str) -> Vec<String> {
    let mut snippet = without_comment(snippet).trim().to_string();
    if let Some(inner) = snippet
        .strip_prefix("eval \"$(")
        .and_then(|rest| rest.strip_suffix(")\""))
    {
        snippet = inner.to_string();
    }
    split_shell_list(&snippet)
        .into_iter()
        .filter_map(|part| {
            let part = part.trim();
            let words: Vec<&str> = part.split_whitespace().collect();
            let first = words.iter().position(|w| !is_assignment(w))?;
            let command = words[first..].join(" ");
            let wanted = command.starts_with("cargo run")
                || command.starts_with("cargo test")
                || command.starts_with("scripts/");
            // `cargo run -p ...` and `scripts/...` name the form, not a command.
            let generic = part.contains("-p ...") || command.starts_with("scripts/...");
            (wanted && !generic).then(|| without_optional_placeholders(part))
        })
        .collect()
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        }
        None => false,
    }
}

/// `...` and `[optional...]` words say "more of the same": they are left out.
fn without_optional_placeholders(command: &str) -> String {
    command
        .split_whitespace()
        .filter(|word| *word != "..." && !(word.starts_with('[') && word.ends_with(']')))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text before an unquoted ` #`.
fn without_comment(text: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (index, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return &text[..index],
            _ => {}
        }
        previous = c;
    }
    text
}

/// Splits at unquoted `|`, `||`, `&&`, `;` and `&` (outside `$(...)`).
fn split_shell_list(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quote = None;
    let mut depth = 0usize;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, '(') if i > 0 && chars[i - 1] == '$' => depth += 1,
            (_, ')') if depth > 0 => depth -= 1,
            (None, '|' | '&' | ';') if depth == 0 => {
                parts.push(String::new());
                if i + 1 < chars.len() && (chars[i + 1] == '|' || chars[i + 1] == '&') {
                    i += 1;
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
        i += 1;
    }
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The documented words with example values for the placeholders.
fn with_example_values(command: &str) -> String {
    command
        .split_whitespace()
        .map(|word| {
            PLACEHOLDERS
                .iter()
                .find(|(placeholder, _)| *placeholder == word)
                .map_or(word, |(_, example)| *example)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// The workspace: packages, their binaries, what `cargo run -p` picks
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Package {
    dir: PathBuf,
    binaries: Vec<String>,
    default_run: Option<String>,
    /// Workspace packages this one depends on (not dev-dependencies): their sources are in
    /// its binaries too.
    path_dependencies: Vec<String>,
}

/// Every workspace member, read from the root Cargo.toml's `members` and each member's
/// Cargo.toml (only the few keys `cargo run` looks at; binaries found the way cargo finds them:
/// `src/main.rs`, `src/bin/*.rs`, `src/bin/*/main.rs`, `[[bin]] name = ...`).
fn workspace_packages(root: &Path) -> BTreeMap<String, Package> {
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let members = toml_string_list(&workspace, "members");
    let mut packages = BTreeMap::new();
    for member in &members {
        let dir = root.join(member);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{member}/Cargo.toml: {e}"));
        let mut name = None;
        let mut default_run = None;
        let mut binaries = Vec::new();
        let mut dependencies = Vec::new();
        let mut section = String::new();
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim().trim_matches('"'));
            match (section.as_str(), key) {
                ("[package]", "name") => name = Some(value.to_string()),
                ("[package]", "default-run") => default_run = Some(value.to_string()),
                ("[[bin]]", "name") => binaries.push(value.to_string()),
                ("[dependencies]", dependency) => {
                    dependencies.push(dependency.split('.').next().unwrap_or("").to_string())
                }
                _ => {}
            }
        }
        let name = name.unwrap_or_else(|| panic!("{member}/Cargo.toml has no package name"));
        if dir.join("src/main.rs").exists() {
            binaries.push(name.clone());
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("src/bin")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "rs") || path.join("main.rs").exists() {
                    binaries.push(file_stem(&path));
                }
            }
        }
        binaries.sort();
        binaries.dedup();
        packages.insert(
            name,
            Package {
                dir,
                binaries,
                default_run,
                path_dependencies: dependencies,
            },
        );
    }
    // Only dependencies that are workspace packages matter for freshness.
    let names: BTreeSet<String> = packages.keys().cloned().collect();
    for package in packages.values_mut() {
        package.path_dependencies.retain(|d| names.contains(d));
    }
    packages
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `key = ["a", "b"]` in a TOML text (one line).
fn toml_string_list(text: &str, key: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no `{key} = [...]` in Cargo.toml"));
    line.split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| {
            list.split(',')
                .map(|item| item.trim().trim_matches('"').to_string())
                .filter(|item| !item.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The binary `cargo run -p package [--bin bin]` runs, or cargo's refusal.
fn resolve_binary(
    packages: &BTreeMap<String, Package>,
    package: &str,
    bin: Option<&str>,
) -> Result<String, String> {
    let found = packages.get(package).ok_or_else(|| {
        format!(
            "no package `{package}` in the workspace (packages: {})",
            packages.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    if let Some(bin) = bin {
        return if found.binaries.iter().any(|b| b == bin) {
            Ok(bin.to_string())
        } else {
            Err(format!(
                "package `{package}` has no binary `{bin}` (binaries: {})",
                found.binaries.join(", ")
            ))
        };
    }
    if let Some(default) = &found.default_run {
        return if found.binaries.contains(default) {
            Ok(default.clone())
        } else {
            Err(format!(
                "default-run `{default}` of `{package}` is not one of its binaries"
            ))
        };
    }
    match found.binaries.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(format!("package `{package}` has no binary")),
        many => Err(format!(
            "`cargo run` could not determine which binary to run in `{package}` ({}): \
             add `default-run` to its Cargo.toml, or write `--bin NAME` in the docs",
            many.join(", ")
        )),
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn binary_path(root: &Path, binary: &str) -> PathBuf {
    target_dir(root).join("debug").join(binary)
}

/// The binary must be at least as new as every source of its package and of the workspace
/// packages it depends on: an old binary would check old flags.
fn check_fresh(
    packages: &BTreeMap<String, Package>,
    package: &str,
    binary: &Path,
) -> Result<(), String> {
    let built = modified(binary).ok_or_else(|| {
        format!(
            "{} is not built: run `cargo build --bins` first (`cargo test --workspace` builds it)",
            binary.display()
        )
    })?;
    let mut queue = vec![package.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(found) = packages.get(&name) else {
            continue;
        };
        queue.extend(found.path_dependencies.iter().cloned());
        let mut sources = vec![found.dir.join("Cargo.toml")];
        collect_files(&found.dir.join("src"), &mut sources);
        collect_files(&found.dir.join("migrations"), &mut sources);
        // Another binary's own source (src/bin/<other>.rs) is not linked into this one.
        let binary_name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let bins = found.dir.join("src").join("bin");
        let other_binary = |source: &Path| {
            source.strip_prefix(&bins).ok().is_some_and(|rest| {
                let first = rest.components().next();
                let stem =
                    first.and_then(|c| Path::new(c.as_os_str()).file_stem().map(|s| s.to_owned()));
                stem.is_some_and(|stem| stem != binary_name)
            })
        };
        for source in sources {
            if other_binary(&source) {
                continue;
            }
            if modified(&source).is_some_and(|changed| changed > built) {
                return Err(format!(
                    "{} is older than {}: run `cargo build --bins` first (`cargo test --workspace` \
                     builds it)",
                    binary.display(),
                    source.display()
                ));
            }
        }
    }
    Ok(())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn collect_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, into);
        } else {
            into.push(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

/// `cargo run -p PKG [--bin B] [-- ARGS]`: the binary parses ARGS (PGCDC_CHECK_ARGS=1).
/// Returns the binary's path.
fn check_cargo_run(
    root: &Path,
    packages: &BTreeMap<String, Package>,
    command: &str,
) -> Result<String, String> {
    let command = with_example_values(command);
    let (cargo_part, arguments) = match command.split_once(" -- ") {
        Some((cargo_part, arguments)) => (cargo_part.to_string(), arguments.to_string()),
        None => (command.trim_end_matches(" --").to_string(), String::new()),
    };
    let words: Vec<&str> = cargo_part.split_whitespace().collect();
    let prefix = words
        .iter()
        .position(|w| *w == "cargo")
        .ok_or("no `cargo`")?;
    let settings = words[..prefix].join(" ");
    let mut package = None;
    let mut bin = None;
    let mut words = words[prefix + 2..].iter();
    while let Some(word) = words.next() {
        match *word {
            "-p" | "--package" => package = words.next().copied(),
            "--bin" => bin = words.next().copied(),
            "--quiet" | "-q" => {}
            other => return Err(format!("cargo run option `{other}` is not understood here")),
        }
    }
    let package = package.ok_or("`cargo run` without `-p PACKAGE`: say which package")?;
    let binary = resolve_binary(packages, package, bin)?;
    let path = binary_path(root, &binary);
    check_fresh(packages, package, &path)?;
    let path = path.display().to_string();
    let output = run_checked(
        root,
        &format!("{settings} {} {arguments}", shell_quote(&path)),
        &[(db::check_args::CHECK_ARGS_ENV, "1")],
    )?;
    if !output.contains(db::check_args::CHECKED_LINE) {
        return Err(format!(
            "{binary} did not confirm its arguments (does its main call \
             db::check_args::exit_if_only_checking?); it printed: {output}"
        ));
    }
    Ok(path)
}

/// `cargo test [-p PKG]... [--test T]`: the packages exist and have that test target.
fn check_cargo_test(
    root: &Path,
    packages: &BTreeMap<String, Package>,
    command: &str,
) -> Result<(), String> {
    let _ = root;
    let cargo_part = command.split(" -- ").next().unwrap_or(command);
    let mut named = Vec::new();
    let mut tests = Vec::new();
    let mut words = cargo_part.split_whitespace().skip(2);
    while let Some(word) = words.next() {
        match word {
            "-p" | "--package" => named.extend(words.next()),
            "--test" => tests.extend(words.next()),
            _ => {}
        }
    }
    for package in &named {
        if !packages.contains_key(*package) {
            return Err(format!("no package `{package}` in the workspace"));
        }
    }
    for test in tests {
        let owners: Vec<&Package> = if named.is_empty() {
            packages.values().collect()
        } else {
            named.iter().filter_map(|p| packages.get(*p)).collect()
        };
        let exists = owners.iter().any(|p| {
            p.dir.join("tests").join(format!("{test}.rs")).exists()
                || p.dir.join("tests").join(test).join("main.rs").exists()
        });
        if !exists {
            return Err(format!(
                "no test target `{test}` in {}",
                if named.is_empty() {
                    "the workspace".to_string()
                } else {
                    named.join(", ")
                }
            ));
        }
    }
    Ok(())
}

/// `scripts/X ARGS`: an executable script accepts ARGS (SCRIPTS_DRY_RUN=1), or a file named in
/// the docs exists. Returns the script when it is one.
fn check_script(root: &Path, command: &str) -> Result<Option<String>, String> {
    let command = with_example_values(command);
    let words: Vec<&str> = command.split_whitespace().collect();
    let position = words
        .iter()
        .position(|w| w.starts_with("scripts/"))
        .ok_or("no scripts/ word")?;
    let script = words[position];
    let path = root.join(script);
    if !path.exists() {
        return Err(format!("{script} does not exist"));
    }
    if !is_executable(&path) {
        // A file the docs point at (scripts/kafka/pom.xml), not a command.
        return if position == 0 && words.len() == 1 {
            Ok(None)
        } else {
            Err(format!("{script} is not executable"))
        };
    }
    let output = run_checked(root, &command, &[("SCRIPTS_DRY_RUN", "1")])?;
    let help_only = words.len() == position + 1;
    if !help_only && !output.contains("dry run:") {
        return Err(format!(
            "{script} did not stop at its dry run (does it call stop_if_dry_run from \
             scripts/lib.sh?); it printed: {output}"
        ));
    }
    Ok(Some(script.to_string()))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.is_file()
        && std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs `command_line` with bash in the workspace root (so quotes and `$WS` work as in the docs),
/// with the sandbox variables and `extra` set; Ok(stdout + stderr) when it exits 0 in time.
fn run_checked(root: &Path, command_line: &str, extra: &[(&str, &str)]) -> Result<String, String> {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(command_line)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in SANDBOX_VARIABLES.iter().chain(extra) {
        command.env(name, value);
    }
    let mut child = command.spawn().map_err(|e| format!("starting bash: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > CHECK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "still running after {} s: it does real work instead of checking its arguments",
                    CHECK_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("reading its output: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "exit {}: {}",
            output.status.code().unwrap_or(-1),
            text.trim()
        ))
    }
}
