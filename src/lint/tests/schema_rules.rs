//! Which objects are linted, the API server's schema check, YAML syntax.

use super::*;

#[test]
fn the_fixtures_pass_together() {
    let report = lint(&all());
    assert_eq!(lines(&report), Vec::<String>::new());
    assert_eq!(report.summary(), "4 documents, 0 errors, 0 warnings");
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn another_flagger_version_is_an_error_naming_api_version() {
    let report = lint(&edit(TEMPLATE, "v1beta1", "v1alpha1"));
    assert_only(
        &report,
        "f.yaml:1: apiVersion: flagger.app/v1alpha1 is not served for MetricTemplate (served: flagger.app/v1beta1)",
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn other_flagger_kinds_warn_and_other_groups_are_ignored() {
    let text =
        format!("{DEPLOYMENT}---\napiVersion: flagger.app/v1beta1\nkind: Rollout\n---\nfoo: bar\n");
    let report = lint(&text);
    assert_eq!(
        lines(&report),
        [
            "f.yaml:10: kind: warning: flagger.app kind \"Rollout\" is not one Serin reads (Canary, MetricTemplate, AlertProvider); skipped",
            "f.yaml:12: (root): warning: not a Kubernetes object (no apiVersion and kind); skipped",
        ]
    );
    assert_eq!(report.exit_code(), 0, "warnings do not fail");
    assert_eq!(report.summary(), "3 documents, 0 errors, 2 warnings");
}

#[test]
fn a_missing_field_is_reported_on_its_parent_line() {
    let text = edit(
        CANARY,
        "  targetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: podinfo\n",
        "",
    );
    assert_only(&lint(&text), "f.yaml:6: spec.targetRef: Required value");
    let nameless = edit(CANARY, "  name: podinfo\n", "");
    assert_only(
        &lint(&nameless),
        "f.yaml:3: metadata.name: Required value: name or generateName is required",
    );
}

#[test]
fn unknown_fields_are_errors_on_their_line() {
    let text = edit(
        CANARY,
        "    port: 9898\n",
        "    port: 9898\n    portt: 80\n",
    );
    assert_only(
        &lint(&text),
        "f.yaml:14: spec.service.portt: unknown field (not in the schema)",
    );
    let deep = edit(
        CANARY,
        "        max: 500\n",
        "        max: 500\n        maxx: 1\n",
    );
    assert_only(
        &lint(&deep),
        "f.yaml:28: spec.analysis.metrics[0].thresholdRange.maxx: unknown field (not in the schema)",
    );
}

#[test]
fn types_and_enums_are_checked() {
    let port = lint(&edit(CANARY, "port: 9898", "port: http"));
    assert_only(
        &port,
        "f.yaml:13: spec.service.port: \"http\" is not of type \"integer\"",
    );
    let provider = lint(&edit(CANARY, "provider: istio", "provider: istios"));
    assert_has(
        &provider,
        "f.yaml:7: spec.provider: \"istios\" is not one of ",
    );
    let hook = lint(&edit(CANARY, "type: rollout", "type: rollouts"));
    assert_has(
        &hook,
        "f.yaml:31: spec.analysis.webhooks[0].type: \"rollouts\" is not one of ",
    );
}

#[test]
fn int_or_string_takes_both_and_nothing_else() {
    assert!(
        lint_canary(&edit(CANARY, "targetPort: http", "targetPort: 9898"))
            .findings
            .is_empty()
    );
    let report = lint(&edit(CANARY, "targetPort: http", "targetPort: true"));
    assert_only(
        &report,
        "f.yaml:14: spec.service.targetPort: true is not of types \"integer\", \"string\"",
    );
}

#[test]
fn one_of_names_the_alternatives() {
    let report = lint(&edit(CANARY, "    threshold: 5\n", ""));
    assert_only(
        &report,
        "f.yaml:15: spec.analysis: must match exactly one of: {interval, threshold, iterations} | {interval, threshold, stepWeight} | {interval, threshold, stepWeights} (it matches none)",
    );
}

#[test]
fn an_alert_provider_with_address_and_secret_ref_is_rejected() {
    let text = format!("{PROVIDER}  secretRef:\n    name: on-call-url\n");
    assert_only(
        &lint(&text),
        "f.yaml:6: spec: must match exactly one of: {type, address} | {type, secretRef} (it matches more than one)",
    );
    let neither = edit(
        PROVIDER,
        "  address: https://hooks.slack.com/services/x\n",
        "",
    );
    assert_has(&lint(&neither), "f.yaml:6: spec: must match exactly one of");
}

#[test]
fn status_is_ignored_and_nulls_are_pruned_as_the_api_server_does() {
    let text = format!("{CANARY}status:\n  phase: Exploding\n");
    assert_eq!(lines(&lint_canary(&text)), Vec::<String>::new());
    let null = edit(CANARY, "provider: istio", "provider: null");
    assert_eq!(lines(&lint_canary(&null)), Vec::<String>::new());
}

#[test]
fn yaml_syntax_errors_name_the_document_line() {
    let text = format!(
        "{PROVIDER}---\n{}",
        edit(TEMPLATE, "  name: latency", "  name: [latency")
    );
    let report = lint(&text);
    let found = lines(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("f.yaml:15: <document>: "),
        "{found:#?}"
    );
    assert_eq!(report.exit_code(), 1);
    // The provider before it was read and linted.
    assert_eq!(report.documents, 1);
    // Duplicate keys: the API server refuses them too.
    let twice = format!(
        "{PROVIDER}---\n{}",
        edit(
            TEMPLATE,
            "  name: latency",
            "  name: latency\n  name: again"
        )
    );
    assert_only(
        &lint(&twice),
        "f.yaml:15: <document>: duplicate mapping key: name",
    );
}

#[test]
fn multi_document_lines_are_file_lines() {
    // Documents start at lines 1, 39 (`---`), 53 and 63.
    let text = all()
        .replacen(
            "address: http://prometheus",
            "address: ht tp://prometheus",
            1,
        )
        .replacen("channel: on-call\n", "channel: on-call\n  colour: red\n", 1);
    assert_eq!(
        lines(&lint(&text)),
        [
            "f.yaml:48: spec.provider.address: prometheus address ht tp://prometheus.istio-system:9090 is not a valid URL",
            "f.yaml:62: spec.colour: unknown field (not in the schema)",
        ]
    );
}

#[test]
fn empty_documents_are_skipped() {
    let text = format!("---\n# nothing\n---\n{PROVIDER}---\n...\n");
    let report = lint(&text);
    assert_eq!(lines(&report), Vec::<String>::new());
    assert_eq!(report.summary(), "1 document, 0 errors, 0 warnings");
}
