//! The README's Quick start, run as a newcomer types it: the demo command
//! (`cargo run --release -- demo`) and `make demo` in the repository, and
//! the test command is the one `.ci/run` calls. `make test` builds the
//! release binary before the tests run (tests/run.sh), so here cargo only
//! checks it is fresh; run alone, this test builds it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The commands of the README's "Quick start" table, by the first word of
/// their description ("run the embedded demo ..." -> "demo").
fn quick_start() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let section: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "## Quick start")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    assert!(!section.is_empty(), "README.md has no \"## Quick start\"");
    section
        .iter()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').collect();
            let [what, command] = cells.as_slice() else {
                return None;
            };
            let command = command.trim().strip_prefix('`')?.strip_suffix('`')?;
            Some((what.trim().to_string(), command.to_string()))
        })
        .collect()
}

fn command_for(needle: &str) -> String {
    let commands = quick_start();
    let found: Vec<&String> = commands
        .iter()
        .filter(|(what, _)| what.contains(needle))
        .map(|(_, c)| c)
        .collect();
    match found.as_slice() {
        [one] => one.to_string(),
        _ => panic!("README's Quick start: want one command for {needle:?}, got {commands:?}"),
    }
}

/// Runs `command` with `sh -c` in the repository, as typed at a prompt: the
/// variables cargo sets for a test process are dropped first. (Left in,
/// they would also change the fingerprints of build scripts that watch them,
/// ring's among them, and rebuild the release binary every time.)
fn run(command: &str) -> String {
    let mut cmd = Command::new("sh");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&name.as_ref())
            || name.starts_with("CARGO_TERM_");
        let set_by_cargo = name == "CARGO" || name.starts_with("CARGO_") || name == "OUT_DIR";
        if set_by_cargo && !keep {
            cmd.env_remove(name.as_ref());
        }
    }
    let out = cmd
        .args(["-c", command])
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{command:?} failed with {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The demo's three scenarios end as the walkthrough does.
fn assert_demo_output(command: &str, out: &str) {
    for want in [
        "Promotion completed! Scaling down podinfo.test",
        "Rolling back podinfo.test failed checks threshold reached",
        "Canary failed! Scaling down podinfo.test",
    ] {
        assert!(
            out.contains(want),
            "{command:?} printed no {want:?}:\n{out}"
        );
    }
}

#[test]
fn the_demo_command_runs_as_written() {
    let command = command_for("demo");
    assert_eq!(command, "cargo run --release -- demo");
    let out = run(&command);
    assert_demo_output(&command, &out);
}

#[test]
fn make_demo_runs_the_same_demo() {
    let out = run("make demo");
    assert_demo_output("make demo", &out);
}

#[test]
fn ci_runs_the_readme_test_command() {
    let command = command_for("every test");
    assert_eq!(command, "make test");
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == command),
        ".ci/run must call the README's test command {command:?}:\n{ci}"
    );
}
