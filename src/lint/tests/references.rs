//! References between the given objects and template rendering.

use super::*;

#[test]
fn a_template_query_that_cannot_render_is_an_error_on_spec_query() {
    let text = edit(TEMPLATE, "{{ interval }}", "{{ intervals }}");
    let report = lint(&text);
    let found = lines(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("f.yaml:10: spec.query: template "),
        "{found:#?}"
    );
    assert!(found[0].contains("\"intervals\" not defined"), "{found:#?}");
    // Variables are not an error for a template nobody references.
    assert!(lint(TEMPLATE).findings.is_empty());
}

#[test]
fn a_referenced_template_renders_with_the_canarys_variables() {
    let text = edit(
        &all(),
        "      templateVariables:\n        direction: inbound\n",
        "",
    );
    assert_only(
        &lint(&text),
        "f.yaml:21: spec.analysis.metrics[0].templateVariables: metric template latency.test (f.yaml:47) uses variables.direction, which this metric does not set: template excution failed: template: tmpl:2:94: executing \"tmpl\" at <variables.direction>: map has no entry for key \"direction\"",
    );
}

#[test]
fn references_resolve_across_files_and_namespaces() {
    // Both in the Canary's namespace, in other files.
    let report = lint_files(&[
        ("c.yaml", CANARY),
        ("t.yaml", TEMPLATE),
        ("p.yaml", PROVIDER),
    ]);
    assert_eq!(lines(&report), Vec::<String>::new());
    // No namespace anywhere: both are `default`'s.
    let strip = |t: &str| t.replace("  namespace: test\n", "");
    let report = lint_files(&[
        ("c.yaml", &strip(CANARY)),
        ("t.yaml", &strip(TEMPLATE)),
        ("p.yaml", &strip(PROVIDER)),
    ]);
    assert_eq!(lines(&report), Vec::<String>::new());
    // An explicit namespace in the reference, and an empty one (the Canary's).
    let other = edit(TEMPLATE, "namespace: test", "namespace: flagger");
    let canary = edit(
        CANARY,
        "        name: latency\n",
        "        name: latency\n        namespace: flagger\n",
    );
    let canary = edit(
        &canary,
        "        name: on-call\n",
        "        name: on-call\n        namespace: \"\"\n",
    );
    let report = lint_files(&[
        ("c.yaml", &canary),
        ("t.yaml", &other),
        ("p.yaml", PROVIDER),
    ]);
    assert_eq!(lines(&report), Vec::<String>::new());
}

#[test]
fn references_outside_the_given_files_are_warnings() {
    let report = lint(CANARY);
    assert_eq!(
        lines(&report),
        [
            "f.yaml:22: spec.analysis.metrics[0].templateRef: warning: metric template latency.test is not among the given files; the operator resolves it in the cluster",
            "f.yaml:37: spec.analysis.alerts[0].providerRef: warning: alert provider on-call.test is not among the given files; the operator resolves it in the cluster",
        ]
    );
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn duplicates_and_shared_targets_are_warnings() {
    let twin = edit(
        CANARY,
        "name: podinfo\n  namespace",
        "name: podinfo-b\n  namespace",
    );
    let report = lint_files(&[("a.yaml", &all()), ("b.yaml", &twin), ("c.yaml", TEMPLATE)]);
    assert_eq!(
        lines(&report),
        [
            "b.yaml:8: spec.targetRef: warning: canary podinfo.test (a.yaml:8) targets the same Deployment podinfo; the operator drives only the older of the two",
            "c.yaml:4: metadata.name: warning: MetricTemplate latency.test is also defined at a.yaml:43; applying both keeps only one",
        ]
    );
}
