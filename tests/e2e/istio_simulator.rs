//! The traffic simulator (tests/e2e/support/traffic.rs) reading an Istio
//! VirtualService against the local control plane without the operator:
//! Istio's CRDs installed, a hand-made VirtualService at 80/20, and
//! Prometheus answering Flagger's builtin Istio success-rate query from the
//! simulator's series.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;

use crate::support::istio::istio_success_rate;
use crate::support::podinfo::{SHORT, podinfo_pair};
use crate::support::third_party::install_istio;
use crate::support::traffic::{Fault, SimulatorConfig, TrafficSimulator};
use crate::support::{TestCluster, eventually, query_value};

fn virtualservices(tc: &TestCluster) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    Api::namespaced_with(
        tc.client.clone(),
        &tc.namespace,
        &ApiResource::from_gvk_with_plural(&gvk, "virtualservices"),
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
    podinfo_pair(&tc, Some(Fault::errors(50.0))).await;
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
