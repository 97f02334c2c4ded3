//! The Gateway API router end to end, in the spirit of Flagger's
//! `test/gatewayapi` suite: Gateway API v1.6.1's real CRDs validate every
//! HTTPRoute Serin writes, the traffic simulator plays the gateway
//! controller (it accepts the route, or refuses it) and publishes Istio's
//! series, which the tutorial's `error-rate` and `latency` MetricTemplates
//! read from the testbed's Prometheus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;

use crate::support::eventually;
use crate::support::gateway::{MeshTest, gateway_canary};
use crate::support::nginx::halts;
use crate::support::podinfo::{
    INIT, RUN, SHORT, assert_deployment_initialized, assert_promoted, image_of, pod_spec_of,
};
use crate::support::traffic::{ClientClass, Fault, ParentMode, SimulatorConfig};

async fn start(test: &str, parents: ParentMode) -> MeshTest {
    let m = MeshTest::start(test, &[], |ns| {
        SimulatorConfig::httproute(ns, "podinfo", parents)
    })
    .await;
    m.apply_gateway_templates().await;
    m
}

/// Promotion with stepWeight 10 up to 50: the HTTPRoute as Flagger writes
/// it (owner, apex metadata, parent, hostnames, the request header filter),
/// accepted by the gateway, the weights stepping 10..50 on the route, the
/// primary on the new image, and the route back at 100/0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_promotes_with_step_weights() {
    let m = start("gw-promote", ParentMode::Accept).await;
    let ns = m.ns().to_string();
    m.t.apply(&gateway_canary(
        "gatewayapi:v1",
        &m.t.hooks,
        "{maxWeight: 50, stepWeight: 10}",
    ))
    .await;
    assert_deployment_initialized(&m.t).await;
    let route = m.route("podinfo").await;
    assert_eq!(route["metadata"]["ownerReferences"][0]["kind"], "Canary");
    assert_eq!(route["metadata"]["labels"]["test"], "label");
    assert_eq!(route["metadata"]["annotations"]["test"], "annotation");
    assert_eq!(route["spec"]["hostnames"], json!(["www.example.com"]));
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                "name": "gateway", "namespace": "istio-ingress"}])
    );
    assert_eq!(
        route["spec"]["rules"][0]["filters"],
        json!([{"type": "RequestHeaderModifier",
                "requestHeaderModifier": {"add": [{"name": "x-served-by", "value": "serin"}]}}])
    );
    assert_eq!(m.route_weights().await, (100, 0));
    eventually("the simulator to accept the route", SHORT, || async {
        let seen = m.sim.observed();
        match seen.status_generation.is_some() && seen.status_generation == seen.generation {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    let generation = m.route("podinfo").await["metadata"]["generation"].clone();

    m.set_revision("6.0.1", None).await;
    let seen_weights = std::sync::Mutex::new(vec![]);
    eventually("the run to step to 50", RUN, || async {
        let (_, canary) = m.route_weights().await;
        let mut seen = seen_weights.lock().unwrap();
        if seen.last() != Some(&canary) {
            seen.push(canary);
        }
        match canary {
            50 => Ok(()),
            _ => Err(format!("weights so far {seen:?}")),
        }
    })
    .await;
    assert_promoted(&m.t, "6.0.1").await;
    m.wait_route_weights(100, 0, SHORT).await;
    let events = m.t.events().await;
    for w in [10, 20, 30, 40, 50] {
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
    // Weight changes rewrote the rules and nothing else kept changing it.
    let after = m.route("podinfo").await;
    assert!(after["metadata"]["generation"].as_i64() > generation.as_i64());
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(
        m.route("podinfo").await["metadata"]["generation"],
        after["metadata"]["generation"],
        "an idle canary rewrites its route"
    );
}

/// A revision that fails half its requests: the `error-rate` template halts
/// the analysis twice, Serin rolls back, the route returns to the primary
/// and the primary keeps its image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_rolls_back_on_errors() {
    let m = start("gw-rollback", ParentMode::Accept).await;
    let ns = m.ns().to_string();
    m.t.apply(&gateway_canary(
        "gatewayapi:v1",
        &m.t.hooks,
        "{maxWeight: 50, stepWeight: 10}",
    ))
    .await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", Some(Fault::errors(50.0))).await;
    m.t.wait_phase("podinfo", "Failed", RUN).await;
    m.wait_route_weights(100, 0, SHORT).await;
    let events = m.t.events().await;
    let (values, halts) = halts(
        &events,
        &format!("Halt podinfo.{ns} advancement error-rate "),
        " > 1",
    );
    assert!(values.iter().all(|v| *v > 40.0), "{values:?}");
    assert_eq!(halts, 2, "one halt per failed check: {events:#?}");
    m.t.wait_event(
        &format!("Rolling back podinfo.{ns} failed checks threshold reached 2"),
        SHORT,
    )
    .await;
    let primary = crate::support::podinfo::deployment(&m.t, "podinfo-primary").await;
    assert!(image_of(&pod_spec_of(&primary)).ends_with(":6.0.0"));
}

/// Blue/Green with mirroring: 3 iterations, a pre-rollout webhook, the
/// builtin metrics of the provider, the route mirroring to the canary
/// during the run and not after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_blue_green_mirrors_then_promotes() {
    let m = start("gw-bg", ParentMode::Accept).await;
    let mut c = gateway_canary("gatewayapi:v1", &m.t.hooks, "{iterations: 3, mirror: true}");
    // The canary sees only mirrored copies, which the gateway (Istio's
    // `source` reporter) never answers: the builtin queries read podinfo's
    // own histogram, as Flagger's observer for gatewayapi does.
    c["spec"]["analysis"]["metrics"] = json!([
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}
    ]);
    c["spec"]["analysis"]["webhooks"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "smoke-test", "type": "pre-rollout",
                      "url": m.t.hooks.url("/ok"), "timeout": "15s",
                      "metadata": {"hook": "smoke"}}));
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", None).await;
    eventually("the route to mirror to the canary", RUN, || async {
        let seen = m.sim.observed();
        match seen.mirror_share > 0.0 && seen.canary_share == 0.0 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    let mirror = m.route("podinfo").await["spec"]["rules"][0]["filters"].clone();
    assert!(
        mirror
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["type"] == "RequestMirror"
                && f["requestMirror"]["backendRef"]["name"] == "podinfo-canary"),
        "{mirror:#}"
    );
    assert_promoted(&m.t, "6.0.1").await;
    let calls = m.t.hooks.calls_to("/ok");
    assert_eq!(
        calls.first().map(|c| c.payload["metadata"]["hook"].clone()),
        Some(json!("smoke")),
        "the pre-rollout hook ran first: {calls:?}"
    );
    m.t.wait_event(
        "Stop traffic mirroring and route all traffic to canary",
        SHORT,
    )
    .await;
    eventually("the mirror to go", SHORT, || async {
        let route = m.route("podinfo").await;
        match route["spec"]["rules"][0]["filters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["type"] == "RequestMirror")
        {
            false => Ok(()),
            true => Err(format!("{route:#}")),
        }
    })
    .await;
}

/// A/B testing on `x-canary: insider`: during the run insiders reach only
/// the canary and everyone else only the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_ab_testing_routes_insiders_to_the_canary() {
    let m = MeshTest::start("gw-ab", &[], |ns| {
        SimulatorConfig::httproute(ns, "podinfo", ParentMode::Accept).classes(vec![
            ClientClass::plain(0.8).named("everyone"),
            ClientClass::header("insider", 0.2, "x-canary", "insider"),
        ])
    })
    .await;
    m.apply_gateway_templates().await;
    m.t.apply(&gateway_canary(
        "gatewayapi:v1",
        &m.t.hooks,
        r#"{iterations: 3, match: [{headers: {x-canary: {exact: insider}}}]}"#,
    ))
    .await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", None).await;
    let seen = eventually("insiders to reach the canary", RUN, || async {
        let seen = m.sim.observed();
        match seen.class("insider").map(|c| c.canary_share) {
            Some(1.0) => Ok(seen),
            _ => Err(format!("{seen:?}")),
        }
    })
    .await;
    assert_eq!(seen.class("everyone").map(|c| c.canary_share), Some(0.0));
    let rules = m.route("podinfo").await["spec"]["rules"].clone();
    assert_eq!(rules.as_array().unwrap().len(), 2, "{rules:#}");
    assert_eq!(
        rules[0]["matches"][0]["headers"],
        json!([{"type": "Exact", "name": "x-canary", "value": "insider"}])
    );
    assert_promoted(&m.t, "6.0.1").await;
    eventually("insiders back on the primary", SHORT, || async {
        let seen = m.sim.observed();
        match seen.class("insider").map(|c| c.canary_share) {
            Some(0.0) => Ok(()),
            _ => Err(format!("{seen:?}")),
        }
    })
    .await;
}

/// Session affinity with a canary and a primary cookie: while the canary
/// gets traffic, clients holding the canary cookie reach only the canary;
/// after promotion the previous cookie is expired and recorded in the
/// status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_session_affinity_sticks_and_expires() {
    let m = MeshTest::start("gw-affinity", &[], |ns| {
        SimulatorConfig::httproute(ns, "podinfo", ParentMode::Accept).sticky(0.5, 100)
    })
    .await;
    m.apply_gateway_templates().await;
    m.t.apply(&gateway_canary(
        "gatewayapi:v1",
        &m.t.hooks,
        "{maxWeight: 30, stepWeight: 10, sessionAffinity: {cookieName: flagger-cookie, primaryCookieName: flagger-primary-cookie, maxAge: 21600}}",
    ))
    .await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", None).await;
    let sticky = eventually("clients to hold the canary cookie", RUN, || async {
        let seen = m.sim.observed();
        match seen.sticky.tick.with_canary_cookie > 0 {
            true => Ok(seen.sticky.tick),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    assert_eq!(
        sticky.with_canary_cookie_to_canary, sticky.with_canary_cookie,
        "requests carrying the canary cookie reach only the canary: {sticky:?}"
    );
    let status = m.t.status("podinfo").await;
    let cookie = status["sessionAffinityCookie"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("flagger-cookie="), "{status:#}");
    assert!(
        status["primarySessionAffinityCookie"]
            .as_str()
            .is_some_and(|c| c.starts_with("flagger-primary-cookie=")),
        "{status:#}"
    );
    assert_promoted(&m.t, "6.0.1").await;
    let status = m.t.status("podinfo").await;
    assert_eq!(
        status["previousSessionAffinityCookie"],
        json!(cookie),
        "{status:#}"
    );
    assert!(
        status
            .get("sessionAffinityCookie")
            .is_none_or(|c| c.is_null()),
        "{status:#}"
    );
    eventually("the previous cookie to be expired", SHORT, || async {
        let seen = m.sim.observed();
        match seen.sticky.total.cookies_expired > 0 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
}

/// A route whose parent refuses it halts the canary with Flagger's message
/// (`Accepted=False`): a new revision is not even detected, and the route
/// keeps all traffic on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayapi_a_refused_route_halts_the_analysis() {
    let m = start("gw-refused", ParentMode::Refuse).await;
    let ns = m.ns().to_string();
    m.t.apply(&gateway_canary(
        "gatewayapi:v1",
        &m.t.hooks,
        "{maxWeight: 50, stepWeight: 10}",
    ))
    .await;
    // Initialisation may finish before the gateway says anything (a route
    // without status passes, as in Flagger), and an idle canary reads its
    // route again only when something changes: the new revision.
    eventually("the route to be refused", INIT, || async {
        let seen = m.sim.observed();
        match seen.route_found && seen.status_generation.is_some() {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    m.set_revision("6.0.1", None).await;
    let event =
        m.t.wait_event(
            &format!("HTTPRoute podinfo.{ns} parent gateway is not ready (status: False"),
            INIT,
        )
        .await;
    assert!(
        event
            .message
            .ends_with("observed generation: 1, current generation: 1)"),
        "{event:?}"
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    let events = m.t.events().await;
    assert!(
        !events
            .iter()
            .any(|e| e.message.starts_with("New revision detected")),
        "{events:#?}"
    );
    assert_eq!(m.route_weights().await, (100, 0));
    assert_eq!(m.t.status("podinfo").await["canaryWeight"], json!(0));
}
