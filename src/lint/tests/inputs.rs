//! Reading files, directories and stdin; output and exit codes of `run`.

use std::io::Cursor;

use super::*;
use crate::lint::run_with_stdin;

fn run(paths: &[&str], stdin: &str) -> (i32, String) {
    let paths: Vec<String> = paths.iter().map(ToString::to_string).collect();
    let mut out = Vec::new();
    let code = run_with_stdin(
        &paths,
        "istio",
        &mut Cursor::new(stdin.to_string()),
        &mut out,
    );
    (code, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn stdin_is_named_stdin() {
    let (code, out) = run(&["-"], &edit(CANARY, "port: 9898", "port: -1x"));
    assert_eq!(code, 1);
    assert!(out.starts_with("<stdin>:13: spec.service.port: "), "{out}");
    assert!(out.ends_with("1 document, 1 error, 0 warnings\n"), "{out}");
}

#[test]
fn success_ends_with_the_summary() {
    let (code, out) = run(&["-"], &all());
    assert_eq!(
        (code, out.as_str()),
        (0, "4 documents, 0 errors, 0 warnings\n")
    );
}

#[test]
fn an_unreadable_path_exits_2() {
    let (code, out) = run(&["/nonexistent/serin-lint.yaml"], "");
    assert_eq!(code, 3);
    assert!(out.starts_with("/nonexistent/serin-lint.yaml: "), "{out}");
}

#[test]
fn directories_are_read_recursively_for_yaml() {
    let dir = std::env::temp_dir().join(format!("serin-lint-{}", std::process::id()));
    let sub = dir.join("sub");
    let hidden = dir.join(".git");
    for d in [&sub, &hidden] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(dir.join("canary.yaml"), CANARY).unwrap();
    std::fs::write(sub.join("template.yml"), TEMPLATE).unwrap();
    std::fs::write(sub.join("notes.txt"), "not: [yaml").unwrap();
    std::fs::write(hidden.join("x.yaml"), "not: [yaml").unwrap();
    let given = dir.display().to_string();
    let (code, out) = run(&[&given], "");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "{out}");
    // The template was found (no templateRef warning); the provider was not.
    assert_eq!(
        out,
        format!(
            "{given}/canary.yaml:37: spec.analysis.alerts[0].providerRef: warning: alert provider on-call.test is not among the given files; the operator resolves it in the cluster\n2 documents, 0 errors, 1 warning\n"
        )
    );
}

#[test]
fn line_index_follows_nesting_and_flow_style() {
    let text = "a:\n  b: [1, {c: 2}]\n  d:\n  - e: |\n      x\n    f: 3\n";
    let split = crate::lint::input::split(text);
    let lines = &split.documents[0].lines;
    for (path, line) in [
        ("", 1),
        ("a", 1),
        ("a.b", 2),
        ("a.b[1].c", 2),
        ("a.d[0]", 4),
        ("a.d[0].e", 4),
        ("a.d[0].f", 6),
        ("a.d[0].missing.deeper", 4),
        ("a.d[7]", 3),
    ] {
        assert_eq!(lines.line_of(path), line, "{path}");
    }
}
