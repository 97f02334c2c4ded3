//! Flagger's NGINX walkthrough on the local control plane: its manifests
//! (podinfo Deployment + HPA, Ingress `podinfo` for `app.example.com`, the
//! Canary, the `latency` MetricTemplate), `serin-loadtester` as a process, a
//! chat receiver for Slack/Teams alerts, and a rig (`NginxTest`) that adds the
//! traffic simulator to an `OperatorTest`.

pub mod chat;
pub mod loadtester;
pub mod rig;

use loadtester::LoadTester;
use serde_json::{Value, json};

use super::operator::CanaryEvent;
use super::podinfo::yaml;
use super::shared;

// ---- manifests --------------------------------------------------------------

fn shared_manifest(path: &str) -> Value {
    let path = shared(path);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut v = yaml(&text);
    if let Some(meta) = v["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    v
}

/// The walkthrough's podinfo Deployment (kustomize/podinfo), image 6.0.0.
pub fn deployment() -> Value {
    shared_manifest("flagger-compat/workloads/kustomize-podinfo-deployment.yaml")
}

/// The walkthrough's HPA (min 2, max 4).
pub fn hpa() -> Value {
    shared_manifest("flagger-compat/workloads/kustomize-podinfo-hpa.yaml")
}

/// The walkthrough's Ingress `podinfo` for `app.example.com`.
pub fn ingress() -> Value {
    yaml(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: podinfo
  labels:
    app: podinfo
spec:
  ingressClassName: nginx
  rules:
    - host: app.example.com
      http:
        paths:
          - pathType: Prefix
            path: /
            backend:
              service:
                name: podinfo
                port:
                  number: 80
"#,
    )
}

/// The walkthrough's `latency` MetricTemplate, pointed at `prometheus`.
pub fn latency_template(prometheus: &str) -> Value {
    let mut t = shared_manifest(
        "flagger-compat/manifests/docs-gitbook-tutorials-nginx-progressive-delivery--metrictemplate-latency-522224.yaml",
    );
    t["spec"]["provider"]["address"] = json!(prometheus);
    t
}

/// The walkthrough's Canary (`provider: nginx`, Ingress `podinfo`, HPA,
/// port 80 -> 9898, stepWeight 5, maxWeight 50, `interval: 10s` rather
/// than the docs' `1m` to keep the tests short), with `threshold`, the
/// `request-success-rate` (min 99) and `request-duration` (max 500) metrics,
/// and the `acceptance-test` (pre-rollout, bash) and `load-test` webhooks on
/// the load tester. The acceptance test curls the load tester's `/healthz`
/// since podinfo doesn't really run; the simulator makes the traffic, so the
/// load test's `hey` (not installed) only has to be accepted (202).
pub fn canary(lt: &LoadTester, threshold: u32) -> Value {
    yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: nginx
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  ingressRef:
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    name: podinfo
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 80
    targetPort: 9898
  analysis:
    interval: 10s
    threshold: {threshold}
    maxWeight: 50
    stepWeight: 5
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 1m
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: {url}
        timeout: 30s
        metadata:
          type: bash
          cmd: "curl -s {healthz}"
      - name: load-test
        url: {url}
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://app.example.com/"
"#,
        url = lt.url("/"),
        healthz = lt.url("/healthz"),
    ))
}

/// The metric list item of the walkthrough's custom `latency` check.
pub fn latency_metric() -> Value {
    json!({ "name": "latency", "templateRef": { "name": "latency" },
            "thresholdRange": { "max": 0.5 }, "interval": "1m" })
}

/// The walkthrough's custom-metric Canary: `request-success-rate` and the
/// `latency` template. The builtin `request-duration` is left out: with a
/// slow canary it would halt first, and the walkthrough shows only the
/// template's halts.
pub fn latency_canary(lt: &LoadTester, threshold: u32) -> Value {
    let mut c = canary(lt, threshold);
    c["spec"]["analysis"]["metrics"][1] = latency_metric();
    c
}

/// A/B testing as in Flagger's `test/nginx/test-canary.sh`: header
/// `x-user: insider` (exact), 3 iterations, no weights.
pub fn ab_canary(lt: &LoadTester) -> Value {
    let mut c = canary(lt, 10);
    let analysis = c["spec"]["analysis"].as_object_mut().unwrap();
    analysis.remove("stepWeight");
    analysis.remove("maxWeight");
    analysis.insert("iterations".into(), json!(3));
    analysis.insert(
        "match".into(),
        json!([{ "headers": { "x-user": { "exact": "insider" } } }]),
    );
    c
}

/// `c` alerting (severity info) to the AlertProviders `slack` and `teams`.
pub fn with_alerts(mut c: Value) -> Value {
    c["spec"]["analysis"]["alerts"] = json!([
        { "name": "on-call", "severity": "info", "providerRef": { "name": "slack" } },
        { "name": "team", "severity": "info", "providerRef": { "name": "teams" } },
    ]);
    c
}

/// An AlertProvider `name` of `type` posting to `address`.
pub fn alert_provider(name: &str, type_: &str, address: &str) -> Value {
    json!({ "apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
            "metadata": { "name": name }, "spec": { "type": type_, "address": address } })
}

/// The walkthrough's events of a promotion, in order.
pub fn promotion_events(ns: &str) -> Vec<String> {
    let mut events = vec![
        format!("New revision detected! Scaling up podinfo.{ns}"),
        format!("Starting canary analysis for podinfo.{ns}"),
        "Pre-rollout check acceptance-test passed".to_string(),
    ];
    events.extend((1..=10).map(|i| format!("Advance podinfo.{ns} canary weight {}", 5 * i)));
    events.extend([
        format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
        "Routing all traffic to primary".to_string(),
        format!("Promotion completed! Scaling down podinfo.{ns}"),
    ]);
    events
}

/// The values `<v>` of the Events `<prefix><v><suffix>` and their total count.
pub fn halts(events: &[CanaryEvent], prefix: &str, suffix: &str) -> (Vec<f64>, i32) {
    let matching: Vec<&CanaryEvent> = events
        .iter()
        .filter(|e| e.message.starts_with(prefix) && e.message.ends_with(suffix))
        .collect();
    let values = matching
        .iter()
        .map(|e| {
            let v = &e.message[prefix.len()..e.message.len() - suffix.len()];
            v.parse()
                .unwrap_or_else(|_| panic!("not a number {v:?} in {:?}", e.message))
        })
        .collect();
    (values, matching.iter().map(|e| e.count).sum())
}
