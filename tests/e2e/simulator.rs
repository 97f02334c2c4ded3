//! The traffic simulator (tests/e2e/support/traffic.rs) against the local
//! control plane without the operator: it plays the gateway controller for
//! a hand-made Gateway API HTTPRoute, Prometheus answers Flagger's Linkerd
//! and Istio queries from its series, and it reads an SMI TrafficSplit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::istio::istio_success_rate;
use crate::support::podinfo::{SHORT, podinfo_pair, yaml};
use crate::support::third_party::{install_gateway_api, install_smi};
use crate::support::traffic::{
    CONTROLLER_NAME, Fault, ParentMode, SimulatorConfig, TrafficSimulator,
};
use crate::support::{TestCluster, eventually, query_value, shared};

fn dynamic(
    tc: &TestCluster,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::namespaced_with(
        tc.client.clone(),
        &tc.namespace,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

fn httproutes(tc: &TestCluster) -> Api<DynamicObject> {
    dynamic(
        tc,
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
    )
}

fn trafficsplits(tc: &TestCluster, version: &str) -> Api<DynamicObject> {
    dynamic(
        tc,
        "split.smi-spec.io",
        version,
        "TrafficSplit",
        "trafficsplits",
    )
}

/// HTTPRoute `podinfo` on Gateway `gateway`, to podinfo-primary and
/// podinfo-canary (port 9898) by weight.
fn httproute(primary: u32, canary: u32) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": { "name": "podinfo" },
        "spec": {
            "parentRefs": [{ "name": "gateway" }],
            "hostnames": ["www.example.com"],
            "rules": [{ "backendRefs": [
                { "name": "podinfo-primary", "port": 9898, "weight": primary },
                { "name": "podinfo-canary", "port": 9898, "weight": canary }
            ]}]
        }
    })
}

/// Waits until the route's status has the simulator's entry for its one
/// parentRef, with `Accepted` = `status` at the route's generation, and
/// returns that condition.
async fn wait_parent_status(api: &Api<DynamicObject>, status: &str, reason: &str) -> Value {
    eventually(
        &format!("HTTPRoute podinfo to be Accepted={status} ({reason})"),
        SHORT,
        || async {
            let route = api.get("podinfo").await.map_err(|e| e.to_string())?;
            let generation = route.metadata.generation.unwrap();
            let parents = route.data["status"]["parents"].clone();
            let entry = parents
                .as_array()
                .and_then(|p| p.first())
                .cloned()
                .unwrap_or_default();
            let condition = entry["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Accepted"))
                .cloned()
                .unwrap_or_default();
            let ok = parents.as_array().map(Vec::len) == Some(1)
                && entry["controllerName"] == CONTROLLER_NAME
                && entry["parentRef"] == route.data["spec"]["parentRefs"][0]
                && condition["status"] == status
                && condition["reason"] == reason
                && condition["observedGeneration"] == generation
                && condition["lastTransitionTime"].is_string()
                && condition["message"].is_string();
            match ok {
                true => Ok(condition),
                false => Err(format!("generation {generation}, status {parents}")),
            }
        },
    )
    .await
}

/// Flagger's builtin Linkerd success rate for `target`.
fn linkerd_success_rate(ns: &str, target: &str) -> String {
    format!(
        r#"sum(rate(response_total{{namespace="{ns}",deployment=~"{target}",classification!="failure",direction="inbound"}}[1m])) / sum(rate(response_total{{namespace="{ns}",deployment=~"{target}",direction="inbound"}}[1m])) * 100"#
    )
}

/// A MetricTemplate query of Flagger's Gateway API tutorial, rendered.
fn gatewayapi_template(name: &str, ns: &str) -> String {
    let file = format!(
        "flagger-compat/manifests/docs-gitbook-tutorials-gatewayapi-progressive-delivery--metrictemplate-{name}.yaml"
    );
    let text = std::fs::read_to_string(shared(&file)).unwrap();
    yaml(&text)["spec"]["query"]
        .as_str()
        .unwrap()
        .replace("{{ namespace }}", ns)
        .replace("{{ target }}", "podinfo")
        .replace("{{ interval }}", "1m")
}

/// An HTTPRoute at 90/10 to a canary failing half its requests: the
/// simulator accepts the route at each generation, routes 10% then 20% to
/// the canary, and Prometheus answers Flagger's Linkerd and Istio queries
/// and the Gateway API tutorial's templates from its series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_accepts_an_httproute_and_feeds_linkerd_and_istio_queries() {
    let tc = TestCluster::new("sim-httproute").await;
    let ns = tc.namespace.clone();
    install_gateway_api(&tc.client).await;
    podinfo_pair(&tc, Some(Fault::errors(50.0))).await;
    let routes = httproutes(&tc);
    let route: DynamicObject = serde_json::from_value(httproute(90, 10)).unwrap();
    routes.create(&PostParams::default(), &route).await.unwrap();
    let sim = TrafficSimulator::start(
        &tc.env,
        tc.client.clone(),
        SimulatorConfig::httproute(&ns, "podinfo", ParentMode::Accept),
    )
    .await;

    // (a) The simulated gateway controller accepts generation 1.
    let first = wait_parent_status(&routes, "True", "Accepted").await;
    assert_eq!(first["observedGeneration"], 1, "{first}");
    let route = routes.get("podinfo").await.unwrap();
    assert_eq!(
        route.data["status"]["parents"][0]["parentRef"],
        json!({ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gateway" }),
        "the spec's parentRef, as the API server defaults it"
    );
    let seen = eventually(
        "the simulator to route 10% to the canary",
        SHORT,
        || async {
            let seen = sim.observed();
            match seen.canary_share == 0.1 && seen.canary_available {
                true => Ok(seen),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
    assert_eq!(seen.status_generation, Some(1), "{seen:?}");
    assert_eq!(seen.unrouted_share, 0.0, "{seen:?}");
    assert_eq!(seen.class("insider").map(|c| c.canary_share), Some(0.1));
    assert_eq!(seen.canary_fault, Some(Fault::errors(50.0)));

    // (b) Flagger's success rates for the canary, and the primary's.
    for (what, query) in [
        ("Linkerd", linkerd_success_rate(&ns, "podinfo")),
        ("Istio", istio_success_rate(&ns, "podinfo")),
    ] {
        let sr = eventually(&format!("the {what} success rate"), SHORT, || {
            query_value(&tc.env, &query)
        })
        .await;
        assert!((45.0..55.0).contains(&sr), "{what} success rate {sr}");
    }
    let primary = linkerd_success_rate(&ns, "podinfo-primary");
    let sr = eventually("the primary's Linkerd success rate", SHORT, || {
        query_value(&tc.env, &primary)
    })
    .await;
    assert_eq!(sr, 100.0, "the primary is healthy");
    let error_rate = gatewayapi_template("error-rate-912954", &ns);
    let er = eventually("the tutorial's error-rate (reporter=source)", SHORT, || {
        query_value(&tc.env, &error_rate)
    })
    .await;
    assert!((45.0..55.0).contains(&er), "error rate {er}");
    let latency = gatewayapi_template("latency-a72b6a", &ns);
    let p99 = eventually("the tutorial's latency", SHORT, || {
        query_value(&tc.env, &latency)
    })
    .await;
    assert!((0.025..=0.05).contains(&p99), "p99 {p99} s");
    let linkerd_p99 = format!(
        r#"histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{{namespace="{ns}",deployment=~"podinfo",direction="inbound"}}[1m])) by (le))"#
    );
    let ms = eventually("the Linkerd p99", SHORT, || {
        query_value(&tc.env, &linkerd_p99)
    })
    .await;
    assert!((40.0..=50.0).contains(&ms), "p99 {ms} ms");

    // A new generation is accepted again; the transition time stays.
    let patch = json!({ "spec": { "rules": httproute(80, 20)["spec"]["rules"] } });
    routes
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let second = wait_parent_status(&routes, "True", "Accepted").await;
    assert_eq!(second["observedGeneration"], 2, "{second}");
    assert_eq!(second["lastTransitionTime"], first["lastTransitionTime"]);
    eventually(
        "the simulator to route 20% to the canary",
        SHORT,
        || async {
            let seen = sim.observed();
            match seen.canary_share == 0.2 && seen.status_generation == Some(2) {
                true => Ok(()),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
}

/// `ParentMode::Refuse` writes `Accepted=False`; `Ignore` writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_refuses_or_ignores_an_httproute() {
    let tc = TestCluster::new("sim-httproute-refuse").await;
    let ns = tc.namespace.clone();
    install_gateway_api(&tc.client).await;
    let routes = httproutes(&tc);
    let route: DynamicObject = serde_json::from_value(httproute(100, 0)).unwrap();
    routes.create(&PostParams::default(), &route).await.unwrap();
    let sim = TrafficSimulator::start(
        &tc.env,
        tc.client.clone(),
        SimulatorConfig::httproute(&ns, "podinfo", ParentMode::Refuse),
    )
    .await;
    wait_parent_status(&routes, "False", "NotAllowedByListeners").await;
    drop(sim);

    let mut other = httproute(100, 0);
    other["metadata"]["name"] = json!("ignored");
    let other: DynamicObject = serde_json::from_value(other).unwrap();
    routes.create(&PostParams::default(), &other).await.unwrap();
    let sim = TrafficSimulator::start(
        &tc.env,
        tc.client.clone(),
        SimulatorConfig::httproute(&ns, "ignored", ParentMode::Ignore),
    )
    .await;
    eventually("the simulator to read HTTPRoute ignored", SHORT, || async {
        let seen = sim.observed();
        match seen.route_found && seen.ticks >= 3 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    let route = routes.get("ignored").await.unwrap();
    assert!(
        route.data["status"]["parents"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{:?}",
        route.data["status"]
    );
    assert_eq!(sim.observed().status_generation, None);
}

/// A TrafficSplit (v1alpha2, integer weights) is read with its weights;
/// rewritten through v1alpha1 with Quantities, it is read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_reads_a_trafficsplit() {
    let tc = TestCluster::new("sim-trafficsplit").await;
    let ns = tc.namespace.clone();
    install_smi(&tc.client).await;
    let split: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": { "name": "podinfo" },
        "spec": { "service": "podinfo", "backends": [
            { "service": "podinfo-primary", "weight": 70 },
            { "service": "podinfo-canary", "weight": 30 }
        ]}
    }))
    .unwrap();
    trafficsplits(&tc, "v1alpha2")
        .create(&PostParams::default(), &split)
        .await
        .unwrap();
    let sim = TrafficSimulator::start(
        &tc.env,
        tc.client.clone(),
        SimulatorConfig::trafficsplit(&ns, "podinfo"),
    )
    .await;
    let seen = eventually(
        "the simulator to route 30% to the canary",
        SHORT,
        || async {
            let seen = sim.observed();
            match seen.route_found && seen.canary_share == 0.3 {
                true => Ok(seen),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
    let weights: Vec<(String, f64)> = seen.rules[0]
        .backends
        .iter()
        .map(|b| (b.service.clone(), b.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("podinfo-primary".to_string(), 70.0),
            ("podinfo-canary".to_string(), 30.0)
        ]
    );
    // v1alpha2 rejects a Quantity; v1alpha1 takes one.
    let quantity = json!({ "spec": { "backends": [
        { "service": "podinfo-primary", "weight": "500m" },
        { "service": "podinfo-canary", "weight": "500m" }
    ]}});
    let rejected = trafficsplits(&tc, "v1alpha2")
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(&quantity))
        .await;
    assert!(rejected.is_err(), "{rejected:?}");
    trafficsplits(&tc, "v1alpha1")
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(&quantity))
        .await
        .unwrap();
    eventually(
        "the simulator to route 50% to the canary",
        SHORT,
        || async {
            let seen = sim.observed();
            match seen.canary_share == 0.5 {
                true => Ok(()),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
}
