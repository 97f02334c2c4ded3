//! The traffic simulator (tests/e2e/support/traffic.rs) reading an Istio
//! VirtualService against the local control plane without the operator:
//! Istio's CRDs installed, a hand-made VirtualService at 80/20, and
//! Prometheus answering Flagger's builtin Istio success-rate query from the
//! simulator's series.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;

use crate::support::podinfo::{SHORT, podinfo_deployment};
use crate::support::third_party::install_istio;
use crate::support::traffic::{FAULT_ANNOTATION, Fault, SimulatorConfig, TrafficSimulator};
use crate::support::{TestCluster, TestEnv, eventually, prometheus_query};

fn virtualservices(tc: &TestCluster) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    Api::namespaced_with(
        tc.client.clone(),
        &tc.namespace,
        &ApiResource::from_gvk_with_plural(&gvk, "virtualservices"),
    )
}

/// The target `podinfo` (with `fault`) and its primary `podinfo-primary`;
/// returns once the target has an available replica.
async fn podinfo_pair(tc: &TestCluster, fault: Fault) {
    let mut target = podinfo_deployment("6.0.0");
    target["spec"]["template"]["metadata"]["annotations"][FAULT_ANNOTATION] =
        json!(fault.annotation());
    let mut primary = podinfo_deployment("6.0.0");
    primary["metadata"]["name"] = json!("podinfo-primary");
    primary["metadata"]["labels"]["app"] = json!("podinfo-primary");
    primary["spec"]["selector"]["matchLabels"]["app"] = json!("podinfo-primary");
    primary["spec"]["template"]["metadata"]["labels"]["app"] = json!("podinfo-primary");
    for d in [target, primary] {
        let d: Deployment = serde_json::from_value(d).unwrap();
        tc.api::<Deployment>()
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }
    eventually("podinfo to be available", SHORT, || async {
        let d = tc.api::<Deployment>().get("podinfo").await.unwrap();
        match d.status.and_then(|s| s.available_replicas).unwrap_or(0) {
            0 => Err("no available replica".to_string()),
            _ => Ok(()),
        }
    })
    .await;
}

async fn query_value(env: &TestEnv, query: &str) -> Result<f64, String> {
    let result = prometheus_query(env, query).await;
    result
        .first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{query} -> {result:?}"))
}

/// Flagger's builtin Istio success rate for `target`.
fn istio_success_rate(ns: &str, target: &str) -> String {
    format!(
        r#"sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{ns}",destination_workload=~"{target}",response_code!~"5.*"}}[1m])) / sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{ns}",destination_workload=~"{target}"}}[1m])) * 100"#
    )
}

/// A VirtualService at 80/20 to a canary failing half its requests: the
/// simulator routes 20% to the canary, and Prometheus answers Flagger's
/// Istio success rate (about 50% for the canary, 100% for the primary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_simulator_reads_a_virtualservice() {
    let tc = TestCluster::new("sim-istio").await;
    let ns = tc.namespace.clone();
    install_istio(&tc.client).await;
    podinfo_pair(&tc, Fault::errors(50.0)).await;
    let vs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": { "name": "podinfo" },
        "spec": {
            "hosts": ["podinfo"],
            "http": [{ "route": [
                { "destination": { "host": "podinfo-primary" }, "weight": 80 },
                { "destination": { "host": "podinfo-canary" }, "weight": 20 }
            ]}]
        }
    }))
    .unwrap();
    virtualservices(&tc)
        .create(&PostParams::default(), &vs)
        .await
        .unwrap();
    let sim = TrafficSimulator::start(
        &tc.env,
        tc.client.clone(),
        SimulatorConfig::virtualservice(&ns, "podinfo"),
    )
    .await;
    let seen = eventually(
        "the simulator to route 20% to the canary",
        SHORT,
        || async {
            let seen = sim.observed();
            match seen.route_found && seen.canary_share == 0.2 && seen.canary_available {
                true => Ok(seen),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
    assert_eq!(seen.generation, Some(1), "{seen:?}");
    assert_eq!(seen.unrouted_share, 0.0, "{seen:?}");
    assert_eq!(seen.error, None, "{seen:?}");
    assert_eq!(seen.class("insider").map(|c| c.canary_share), Some(0.2));
    assert_eq!(seen.canary_fault, Some(Fault::errors(50.0)));

    let query = istio_success_rate(&ns, "podinfo");
    let sr = eventually("the canary's Istio success rate", SHORT, || {
        query_value(&tc.env, &query)
    })
    .await;
    assert!((45.0..55.0).contains(&sr), "Istio success rate {sr}");
    let query = istio_success_rate(&ns, "podinfo-primary");
    let sr = eventually("the primary's Istio success rate", SHORT, || {
        query_value(&tc.env, &query)
    })
    .await;
    assert_eq!(sr, 100.0, "the primary is healthy");
}
