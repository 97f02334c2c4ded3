//! `serin lint` on the shared Flagger examples (no cluster): every complete
//! manifest passes, and every documentation fragment that Flagger's own CRD
//! rejects is rejected, naming the field Flagger's validator names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use serde_json::Value;
use serin::lint::{self, Schemas, Violation};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/flagger-compat");

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {dir}");
    files
}

/// Exit code and output of `serin lint PATHS` (mesh provider `istio`).
fn lint(paths: &[String]) -> (i32, String) {
    let mut out = Vec::new();
    let code = lint::run(paths, lint::DEFAULT_MESH_PROVIDER, &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn summary(out: &str) -> &str {
    out.lines().last().unwrap_or_default()
}

#[test]
fn every_shared_manifest_passes_on_its_own() {
    for file in yaml_files(&format!("{SHARED}/manifests")) {
        let (code, out) = lint(&[file.display().to_string()]);
        assert_eq!(code, 0, "{}:\n{out}", file.display());
        assert!(
            summary(&out).starts_with("1 document, 0 errors, "),
            "{}:\n{out}",
            file.display()
        );
    }
}

#[test]
fn shared_manifests_pass_together_as_a_directory() {
    let dir = format!("{SHARED}/manifests");
    let files = yaml_files(&dir).len();
    let (code, out) = lint(std::slice::from_ref(&dir));
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(
        summary(&out).starts_with(&format!("{files} documents, 0 errors, ")),
        "{out}"
    );
    // Each line names a file of the directory, as reached from the path given.
    for line in out.lines().filter(|l| l.contains(": warning: ")) {
        assert!(line.starts_with(&format!("{dir}/")), "{line}");
    }
}

/// Flagger's CRDs, through the same validator `serin lint` uses for Serin's.
fn flagger_schemas() -> Schemas {
    let text = fs::read_to_string(format!("{SHARED}/crd.yaml")).unwrap();
    let crds: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(
        crds.len(),
        3,
        "Canary, MetricTemplate and AlertProvider CRDs"
    );
    Schemas::from_crds(&crds).unwrap()
}

/// An error line (not a warning) of `out` names `field`.
fn names_field_in_error(out: &str, field: &str) -> bool {
    let at = format!(": {field}: ");
    out.lines()
        .any(|l| l.contains(&at) && !l.contains(&format!("{at}warning: ")))
}

#[test]
fn fragments_flagger_rejects_are_rejected_on_the_same_fields() {
    let flagger = flagger_schemas();
    let mut rejected = Vec::new();
    for file in yaml_files(&format!("{SHARED}/fragments")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let value: Value = serde_saphyr::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
        let violations: Vec<Violation> = flagger.validate(&value);
        let (code, out) = lint(&[file.display().to_string()]);
        let flagger_says: Vec<String> = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect();
        println!(
            "{name}\n  Flagger's CRD: {}\n  serin lint (exit {code}):\n{}",
            if violations.is_empty() {
                "accepted".to_string()
            } else {
                format!("rejected: {}", flagger_says.join("; "))
            },
            out.lines()
                .map(|l| format!("    {}", l.replace(SHARED, "")))
                .collect::<Vec<_>>()
                .join("\n")
        );
        if violations.is_empty() {
            continue;
        }
        assert_eq!(
            code, 1,
            "{name}: Flagger rejects it ({flagger_says:?}):\n{out}"
        );
        for v in &violations {
            assert!(
                names_field_in_error(&out, &v.field),
                "{name}: Flagger rejects {} ({}), serin lint does not name it:\n{out}",
                v.field,
                v.message
            );
        }
        rejected.push((name, violations));
    }
    // The README names these three kinds of rejection; each must be seen.
    let fields = |prefix: &str| {
        rejected
            .iter()
            .filter(|(name, _)| name.contains(prefix))
            .flat_map(|(_, vs)| vs.iter().map(|v| v.field.clone()))
            .collect::<Vec<_>>()
    };
    assert!(fields("alertprovider-on-call").contains(&"spec".to_string()));
    assert!(fields("cloudwatch-error-rate").contains(&"apiVersion".to_string()));
    assert!(fields("canary-").contains(&"spec.targetRef".to_string()));
}

/// The command itself, as a pipeline runs it: files, a directory and
/// standard input; the exit code says whether anything was wrong.
#[test]
fn the_serin_lint_command() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let serin = env!("CARGO_BIN_EXE_serin");
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(serin)
            .arg("lint")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let manifests = format!("{SHARED}/manifests");
    let (code, out) = run(&["-f", &manifests], "");
    assert_eq!(code, Some(0), "{out}");
    assert!(summary(&out).starts_with("40 documents, 0 errors"), "{out}");

    let fragment = format!("{SHARED}/fragments/docs-gitbook-faq--canary-backend-1794f8.yaml");
    let (code, out) = run(&["-f", &fragment], "");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("{fragment}:7: spec.targetRef: ")),
        "{out}"
    );

    let bad_interval = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: podinfo\nspec:\n  \
        provider: kubernetes\n  targetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    \
        name: podinfo\n  service:\n    port: 9898\n  analysis:\n    interval: 5\n    threshold: 2\n    iterations: 2\n";
    let (code, out) = run(&["-f", "-"], bad_interval);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("<stdin>:14: spec.analysis.interval: "),
        "{out}"
    );

    let (code, _) = run(&["-f", "/no/such/file.yaml"], "");
    assert_eq!(code, Some(3));
}
