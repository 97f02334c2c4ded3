//! Linkerd end to end, in the spirit of Flagger's `test/linkerd` suite:
//! `provider: linkerd` through an SMI TrafficSplit with Linkerd's builtin
//! queries, and the newer setup through Gateway API (`gatewayapi:v1beta1`
//! as `-mesh-provider`, the route's parent the podinfo Service: GAMMA)
//! with MetricTemplates on Linkerd's series. The traffic simulator plays
//! Linkerd's proxies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use crate::support::eventually;
use crate::support::gateway::{MeshTest, manifest};
use crate::support::podinfo::{RUN, SHORT, assert_deployment_initialized, assert_promoted, yaml};
use crate::support::traffic::{ParentMode, SimulatorConfig};

/// Flagger's `test/linkerd/test-steps.sh`: stepWeights 10..60 on the
/// TrafficSplit, the builtin success rate and duration from Linkerd's
/// `response_total` and `response_latency_ms_bucket`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkerd_trafficsplit_promotes_with_step_weights() {
    let m = MeshTest::start("linkerd-smi", &[], |ns| {
        SimulatorConfig::trafficsplit(ns, "podinfo")
    })
    .await;
    let ns = m.ns().to_string();
    m.t.apply(&yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: linkerd
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  autoscalerRef: {{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}}
  progressDeadlineSeconds: 60
  service:
    port: 9898
  analysis:
    interval: 10s
    threshold: 2
    stepWeights: [10, 20, 30, 40, 50, 60]
    metrics:
      - name: request-success-rate
        thresholdRange: {{min: 99}}
        interval: 1m
      - name: request-duration
        thresholdRange: {{max: 500}}
        interval: 30s
    webhooks:
      - name: load-test
        url: {url}
        timeout: 5s
        metadata:
          cmd: "hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/"
"#,
        url = m.t.hooks.url("/ok")
    )))
    .await;
    assert_deployment_initialized(&m.t).await;
    let split = m.split("podinfo").await;
    assert_eq!(split["metadata"]["ownerReferences"][0]["kind"], "Canary");
    assert_eq!(
        split["spec"],
        json!({"service": "podinfo", "backends": [
            {"service": "podinfo-canary", "weight": 0},
            {"service": "podinfo-primary", "weight": 100}]})
    );
    m.set_revision("6.0.1", None).await;
    eventually("the split to reach 60", RUN, || async {
        let split = m.split("podinfo").await;
        match split["spec"]["backends"][0]["weight"].as_i64() {
            Some(60) => Ok(()),
            other => Err(format!("{other:?}; simulator: {:?}", m.sim.observed())),
        }
    })
    .await;
    assert_promoted(&m.t, "6.0.1").await;
    let events = m.t.events().await;
    for w in [10, 20, 30, 40, 50, 60] {
        let advance = format!("Advance podinfo.{ns} canary weight {w}");
        assert!(
            events.iter().any(|e| e.message == advance),
            "no {advance:?}: {events:#?}"
        );
    }
    assert!(
        !events.iter().any(|e| e.message.starts_with("Halt")),
        "a healthy revision never halts: {events:#?}"
    );
    eventually("the split back on the primary", SHORT, || async {
        let split = m.split("podinfo").await;
        match split["spec"]["backends"][1]["weight"].as_i64() {
            Some(100) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// Flagger's Linkerd suite today: `-mesh-provider gatewayapi:v1beta1`, an
/// HTTPRoute whose parent is the podinfo Service, Linkerd's latency
/// template with `templateVariables` and an error-rate template; canary
/// 10/50 promotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkerd_through_a_service_parent_promotes() {
    let m = MeshTest::start(
        "linkerd-gamma",
        &["-mesh-provider", "gatewayapi:v1beta1"],
        |ns| SimulatorConfig::httproute(ns, "podinfo", ParentMode::Accept),
    )
    .await;
    let ns = m.ns().to_string();
    let mut latency = manifest(
        "docs-gitbook-tutorials-linkerd-progressive-delivery--metrictemplate-latency-a9c63d.yaml",
    );
    latency["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    latency["spec"]["provider"]["address"] = json!(m.t.tc.env.prometheus_url);
    m.t.apply(&latency).await;
    m.t.apply(&yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: success-rate
spec:
  provider:
    type: prometheus
    address: {prometheus}
  query: |
    sum(rate(response_total{{namespace="{{{{ namespace }}}}",deployment=~"{{{{ target }}}}",classification!="failure",direction="inbound"}}[{{{{ interval }}}}]))
    /
    sum(rate(response_total{{namespace="{{{{ namespace }}}}",deployment=~"{{{{ target }}}}",direction="inbound"}}[{{{{ interval }}}}]))
    * 100
"#,
        prometheus = m.t.tc.env.prometheus_url
    )))
    .await;
    m.t.apply(&yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  autoscalerRef: {{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    gatewayRefs:
      - name: podinfo
        namespace: {ns}
        group: core
        kind: Service
        port: 9898
  analysis:
    interval: 10s
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: success-rate
        templateRef: {{name: success-rate}}
        thresholdRange: {{min: 99}}
        interval: 1m
      - name: latency
        templateRef: {{name: latency}}
        templateVariables: {{direction: inbound}}
        thresholdRange: {{max: 500}}
        interval: 1m
    webhooks:
      - name: load-test
        url: {url}
        timeout: 5s
        metadata:
          cmd: "hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/"
"#,
        url = m.t.hooks.url("/ok")
    )))
    .await;
    assert_deployment_initialized(&m.t).await;
    let route = m.route("podinfo").await;
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"group": "core", "kind": "Service", "name": "podinfo",
                "namespace": ns, "port": 9898}])
    );
    m.set_revision("6.0.1", None).await;
    m.wait_route_weights(50, 50, RUN).await;
    assert_promoted(&m.t, "6.0.1").await;
    m.wait_route_weights(100, 0, SHORT).await;
    let events = m.t.events().await;
    assert!(
        !events.iter().any(|e| e.message.starts_with("Halt")),
        "a healthy revision never halts: {events:#?}"
    );
}
