//! The operator's checks of one object: durations, router, providers.

use super::*;

#[test]
fn durations_the_schema_lets_through_are_parsed_as_the_operator_does() {
    let interval = lint_canary(&edit(
        CANARY,
        "interval: 1m\n    threshold",
        "interval: 1mx\n    threshold",
    ));
    assert_only(
        &interval,
        "f.yaml:16: spec.analysis.interval: invalid duration \"1mx\": unknown unit \"mx\"",
    );
    let metric = lint_canary(&edit(
        CANARY,
        "      interval: 1m\n",
        "      interval: 1m30\n",
    ));
    assert_only(
        &metric,
        "f.yaml:28: spec.analysis.metrics[0].interval: invalid duration \"1m30\": missing unit (one of ns, us, µs, ms, s, m, h)",
    );
    let timeout = lint_canary(&edit(CANARY, "timeout: 5s", "timeout: 5sec"));
    assert_only(
        &timeout,
        "f.yaml:33: spec.analysis.webhooks[0].timeout: invalid duration \"5sec\": unknown unit \"sec\"",
    );
}

#[test]
fn a_provider_without_a_serin_router_is_a_warning() {
    let report = lint_canary(&edit(CANARY, "provider: istio", "provider: contour"));
    assert_eq!(report.exit_code(), 0);
    assert_has(
        &report,
        "f.yaml:7: spec.provider: warning: provider contour is not supported by this version of Serin",
    );
    // Without spec.provider the mesh provider counts; the line is `spec:`'s.
    let unset = edit(CANARY, "  provider: istio\n", "");
    let inputs = [
        Input::new("f.yaml", unset.as_str()),
        Input::new("t.yaml", TEMPLATE),
        Input::new("p.yaml", PROVIDER),
    ];
    let report = lint_documents(&inputs, "kuma");
    assert_has(
        &report,
        "f.yaml:6: spec.provider: warning: provider kuma is not supported by this version of Serin",
    );
    assert!(
        lines(&report)[0].contains("the mesh provider"),
        "{report:#?}"
    );
    // An empty mesh provider means the operator's default, istio.
    assert!(lint_documents(&inputs, "").findings.is_empty());
}

#[test]
fn the_router_check_of_the_provider_is_an_error() {
    let gateway = lint_canary(&edit(CANARY, "provider: istio", "provider: gatewayapi:v1"));
    assert_only(
        &gateway,
        "f.yaml:12: spec.service.gatewayRefs: GatewayRefs must be specified when using Gateway API as a provider.",
    );
    let sticky = edit(
        CANARY,
        "    threshold: 5\n",
        "    threshold: 5\n    sessionAffinity:\n      cookieName: c\n      primaryCookieName: c\n",
    );
    assert_has(
        &lint_canary(&sticky),
        "f.yaml:18: spec.analysis.sessionAffinity: can't use the same cookie name",
    );
}

#[test]
fn a_service_target_is_a_warning() {
    let text = edit(CANARY, "kind: Deployment", "kind: Service");
    let report = lint_canary(&text);
    assert_eq!(report.exit_code(), 0);
    assert_has(
        &report,
        "f.yaml:10: spec.targetRef.kind: warning: target kind Service is not supported",
    );
}

#[test]
fn a_metric_without_a_source_is_an_error() {
    let text = edit(
        CANARY,
        "    - name: latency\n      templateRef:\n        name: latency\n",
        "    - name: latency\n",
    );
    let text = edit(
        &text,
        "      templateVariables:\n        direction: inbound\n",
        "",
    );
    assert_only(
        &lint_canary(&text),
        "f.yaml:21: spec.analysis.metrics[0]: neither a builtin metric (request-success-rate, request-duration), a query nor a templateRef: every check of it fails",
    );
}

#[test]
fn keptn_and_external_metrics_queries_have_their_form() {
    let keptn = edit(TEMPLATE, "type: prometheus", "type: keptn");
    let report = lint(&keptn);
    assert_eq!(report.exit_code(), 1);
    assert_only(
        &report,
        "f.yaml:10: spec.query: unexpected query format. query must be in the format <keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>",
    );
    let good = "  query: keptnmetric/{{ namespace }}/response-time\n";
    let start = keptn.find("  query: |").unwrap();
    let fixed = format!("{}{good}", &keptn[..start]);
    assert_eq!(lint(&fixed).exit_code(), 0, "{fixed}");
    let external = edit(&fixed, "type: keptn", "type: externalmetrics").replace(
        "keptnmetric/{{ namespace }}/response-time",
        "{{ namespace }}/queue%zz",
    );
    assert_eq!(lint(&external).exit_code(), 1);
}

#[test]
fn each_provider_gets_what_it_requires() {
    // Datadog has a default address but no credentials without a Secret.
    let report = lint(&edit(TEMPLATE, "type: prometheus", "type: datadog"));
    assert_eq!(report.exit_code(), 0);
    assert_only(
        &report,
        "f.yaml:7: spec.provider.secretRef: warning: datadog reads datadog_api_key and datadog_application_key from a Secret: without a secretRef every check using this template fails",
    );
    let cloudwatch = edit(TEMPLATE, "type: prometheus", "type: cloudwatch");
    assert_only(
        &lint(&cloudwatch),
        "f.yaml:7: spec.provider.region: warning: region not specified: every check using this template fails",
    );
    let with_region = edit(
        &cloudwatch,
        "type: cloudwatch\n",
        "type: cloudwatch\n    region: eu-west-1\n",
    );
    assert_eq!(lint(&with_region).exit_code(), 0);
    let graphite = edit(
        &edit(TEMPLATE, "type: prometheus", "type: graphite"),
        "    address: http://prometheus.istio-system:9090\n",
        "",
    );
    assert_only(
        &lint(&graphite),
        "f.yaml:7: spec.provider.address: warning: graphite address  is not a valid URL: every check using this template fails",
    );
}

#[test]
fn a_prometheus_template_needs_an_address() {
    let text = edit(
        TEMPLATE,
        "    address: http://prometheus.istio-system:9090\n",
        "",
    );
    assert_only(
        &lint(&text),
        "f.yaml:7: spec.provider.address: prometheus address  is not a valid URL",
    );
}

#[test]
fn alert_provider_urls_must_parse() {
    let report = lint(&format!(
        "{}  proxy: \"::x::\"\n",
        edit(PROVIDER, "https://hooks", "hooks")
    ));
    let found = lines(&report);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(
        found[0],
        "f.yaml:9: spec.address: invalid hook URL hooks.slack.com/services/x"
    );
    assert!(
        found[1].starts_with("f.yaml:10: spec.proxy: unable to parse proxy URL '::x::'"),
        "{found:#?}"
    );
}

#[test]
fn the_crds_cel_rule_on_mirror_ports_is_checked() {
    let mirror = |backend: &str| {
        edit(
            CANARY,
            "    targetPort: http\n",
            &format!("    targetPort: http\n    mirror:\n    - backendRef:\n{backend}"),
        )
    };
    let report = lint_canary(&mirror("        name: shadow\n"));
    assert_only(
        &report,
        "f.yaml:16: spec.service.mirror[0].backendRef: Must have port for Service reference",
    );
    let with_port = mirror("        name: shadow\n        port: 9898\n");
    assert!(lint_canary(&with_port).findings.is_empty());
    let other_kind =
        mirror("        name: shadow\n        group: example.com\n        kind: Backend\n");
    assert!(lint_canary(&other_kind).findings.is_empty());
}
