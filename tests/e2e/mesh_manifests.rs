//! Every Canary of Flagger's Gateway API, Linkerd and Istio tutorials and
//! examples (../shared/flagger-compat/manifests/) is initialised by a
//! running Serin on the mesh's real CRDs, as Flagger's tutorial installs it
//! (`-mesh-provider gatewayapi:v1`, or `istio` for the Istio ones, for a
//! Canary that names no provider), with the MetricTemplates the manifests
//! reference created next to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use crate::support::istio::{destinations, is_empty_list};

use crate::support::gateway::{MeshTest, manifest};
use crate::support::podinfo::{SHORT, assert_deployment_initialized};
use crate::support::traffic::{ParentMode, SimulatorConfig};

/// The manifest in the test's namespace, under `-mesh-provider
/// gatewayapi:v1`; its templates are made (a healthy constant query) under
/// the names it references.
async fn initialises(test: &str, file: &str) {
    let m = MeshTest::start(test, &["-mesh-provider", "gatewayapi:v1"], |ns| {
        SimulatorConfig::httproute(ns, "podinfo", ParentMode::Accept)
    })
    .await;
    apply_initialised(&m, file).await;
}

/// As [`initialises`] under `-mesh-provider istio`; the VirtualService
/// `podinfo` then routes everything to the primary.
async fn istio_initialises(test: &str, file: &str) -> MeshTest {
    let m = MeshTest::start_istio(test, |s| s).await;
    apply_initialised(&m, file).await;
    m.wait_vs_weights(100, 0, SHORT).await;
    m
}

async fn apply_initialised(m: &MeshTest, file: &str) {
    let mut canary = manifest(file);
    canary["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let metrics = canary["spec"]["analysis"]["metrics"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut kept = vec![];
    for mut metric in metrics {
        if let Some(template) = metric.get_mut("templateRef") {
            let name = template["name"].as_str().unwrap().to_string();
            template.as_object_mut().unwrap().remove("namespace");
            m.t.apply(&template_named(&name, &m.t.tc.env.prometheus_url))
                .await;
        }
        kept.push(metric);
    }
    canary["spec"]["analysis"]["metrics"] = Value::Array(kept);
    m.t.apply(&canary).await;
    assert_deployment_initialized(&m.t).await;
}

fn template_named(name: &str, prometheus: &str) -> Value {
    json!({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
           "metadata": {"name": name},
           "spec": {"provider": {"type": "prometheus", "address": prometheus},
                    "query": "vector(0)"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_tutorial_session_affinity_canary_initialises() {
    initialises(
        "mf-gw-affinity",
        "docs-gitbook-tutorials-gatewayapi-progressive-delivery--canary-podinfo-074828.yaml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_tutorial_canary_initialises() {
    initialises(
        "mf-gw-canary",
        "docs-gitbook-tutorials-gatewayapi-progressive-delivery--canary-podinfo-0d8416.yaml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_tutorial_blue_green_canary_initialises() {
    initialises(
        "mf-gw-bg",
        "docs-gitbook-tutorials-gatewayapi-progressive-delivery--canary-podinfo-26cdb6.yaml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_tutorial_ab_canary_initialises() {
    initialises(
        "mf-gw-ab",
        "docs-gitbook-tutorials-gatewayapi-progressive-delivery--canary-podinfo-4732a0.yaml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkerd_example_canary_initialises() {
    initialises(
        "mf-linkerd",
        "artifacts-examples-linkerd-canary--canary-podinfo-fef6cb.yaml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkerd_example_steps_canary_initialises() {
    initialises(
        "mf-linkerd-steps",
        "artifacts-examples-linkerd-canary-steps--canary-podinfo-442733.yaml",
    )
    .await;
}

/// The Istio tutorial's Canary: gateway `istio-system/public-gateway`,
/// host `app.example.com`, retries and the DestinationRules' TLS policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_tutorial_canary_initialises() {
    let m = istio_initialises(
        "mf-istio-canary",
        "docs-gitbook-tutorials-istio-progressive-delivery--canary-podinfo-2f36ba.yaml",
    )
    .await;
    let vs = m.vs("podinfo").await;
    assert_eq!(vs["spec"]["hosts"], json!(["app.example.com", "podinfo"]));
    assert_eq!(
        vs["spec"]["gateways"],
        json!(["istio-system/public-gateway"])
    );
    assert_eq!(
        vs["spec"]["http"][0]["retries"],
        json!({"attempts": 3, "perTryTimeout": "1s",
               "retryOn": "gateway-error,connect-failure,refused-stream"})
    );
    let dr = m.dr("podinfo-canary").await;
    assert_eq!(
        dr["spec"]["trafficPolicy"],
        json!({"tls": {"mode": "DISABLE"}})
    );
}

/// The Istio tutorial's session affinity Canary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_tutorial_session_affinity_canary_initialises() {
    let m = istio_initialises(
        "mf-istio-affinity",
        "docs-gitbook-tutorials-istio-progressive-delivery--canary-podinfo-67a23a.yaml",
    )
    .await;
    assert_eq!(
        destinations(&m.vs("podinfo").await, 0),
        vec![
            ("podinfo-primary".into(), 100),
            ("podinfo-canary".into(), 0)
        ]
    );
}

/// Flagger's `istio-abtest` example (`provider: istio`, a gateway and the
/// mesh, port discovery, the service's `uri` match, rewrite and timeout, a
/// cookie and a user-agent A/B match): both routes of the A/B layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_example_ab_canary_initialises() {
    let m = istio_initialises(
        "mf-istio-ab",
        "artifacts-examples-istio-abtest--canary-podinfo-76d858.yaml",
    )
    .await;
    let vs = m.vs("podinfo").await;
    assert_eq!(
        vs["spec"]["gateways"],
        json!(["istio-system/public-gateway", "mesh"])
    );
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 2, "{vs:#}");
    assert_eq!(
        http[0]["match"],
        json!([
            {"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}, "uri": {"prefix": "/"}},
            {"headers": {"user-agent": {"regex": ".*Firefox.*"}}, "uri": {"prefix": "/"}}
        ]),
        "{vs:#}"
    );
    for route in http {
        assert_eq!(route["timeout"], "30s", "{vs:#}");
        assert_eq!(route["rewrite"], json!({"uri": "/"}), "{vs:#}");
    }
    assert_eq!(
        http[0]["route"][0]["destination"],
        json!({"host": "podinfo-primary", "port": {"number": 80}}),
        "port discovery with a gateway first: {vs:#}"
    );
    assert_eq!(destinations(&vs, 1), vec![("podinfo-primary".into(), 100)]);
    assert!(!is_empty_list(&vs["spec"]["hosts"]));
}
