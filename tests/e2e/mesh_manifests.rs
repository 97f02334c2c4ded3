//! Every Canary of Flagger's Gateway API and Linkerd tutorials and examples
//! (../shared/flagger-compat/manifests/) is initialised by a running Serin
//! on Gateway API's real CRDs, as Flagger's tutorial installs it
//! (`-mesh-provider gatewayapi:v1` for a Canary that names no provider),
//! with the MetricTemplates the manifests reference created next to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use crate::support::gateway::{MeshTest, manifest};
use crate::support::podinfo::assert_deployment_initialized;
use crate::support::traffic::{ParentMode, SimulatorConfig};

/// The manifest in the test's namespace; its templates are made (a
/// healthy constant query) under the names it references.
async fn initialises(test: &str, file: &str) {
    let m = MeshTest::start(test, &["-mesh-provider", "gatewayapi:v1"], |ns| {
        SimulatorConfig::httproute(ns, "podinfo", ParentMode::Accept)
    })
    .await;
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
