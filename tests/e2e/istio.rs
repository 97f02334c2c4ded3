//! The Istio router end to end, in the spirit of Flagger's `test/istio`
//! suite (`test-canary.sh`): Istio's real VirtualService and
//! DestinationRule CRDs validate what Serin writes, the traffic simulator
//! plays the mesh (it routes by the VirtualService Serin writes) and
//! publishes Istio's series, which the builtin `request-success-rate` and
//! `request-duration` and the suite's `latency` MetricTemplate read from the
//! testbed's Prometheus. Promotion, rollback, Blue/Green with mirroring and
//! A/B testing here; `istio_lifecycle.rs` and `istio_routing.rs` hold the
//! rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;

use crate::support::eventually;
use crate::support::gateway::MeshTest;
use crate::support::istio::{add_hooks, destinations, hook, istio_canary, vs_weights};
use crate::support::nginx::halts;
use crate::support::podinfo::{
    RUN, SHORT, assert_deployment_initialized, assert_promoted, deployment, image_of, pod_spec_of,
    replicas, yaml,
};
use crate::support::traffic::{ClientClass, Fault, SimulatorConfig};

/// An Istio `Gateway` `name` in the test's namespace, for `service.gateways`.
pub fn istio_gateway(name: &str) -> serde_json::Value {
    yaml(&format!(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: {name}
spec:
  selector:
    istio: ingressgateway
  servers:
    - port: {{number: 80, name: http, protocol: HTTP}}
      hosts: ["*"]
"#
    ))
}

/// The Flagger e2e's request headers (`test-canary.sh`).
fn envoy_headers() -> serde_json::Value {
    json!({"request": {"add": {
        "x-envoy-upstream-rq-timeout-ms": "15000",
        "x-envoy-max-retries": "10",
        "x-envoy-retry-on": "gateway-error,connect-failure,refused-stream"
    }}})
}

/// The route options the Canary's service gives `http[0]`: rewrite (URI
/// and authority), timeout, retries and a CORS policy.
fn route_options() -> serde_json::Value {
    json!({
        "rewrite": {"uri": "/", "authority": "podinfo.example.com"},
        "timeout": "30s",
        "retries": {"attempts": 3, "perTryTimeout": "1s",
                    "retryOn": "gateway-error,connect-failure,refused-stream"},
        "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}],
                       "allowMethods": ["GET", "POST"], "allowHeaders": ["x-user"],
                       "maxAge": "24h", "allowCredentials": false}
    })
}

/// `test-canary.sh`'s canary run: apex metadata, request headers and the
/// other route options, an
/// ingress gateway with the mesh and port discovery (destinations carry the
/// port), DestinationRules with a traffic policy, the builtin success rate
/// and the `latency` template with `templateVariables`; stepWeight 10 up
/// to 30 on the VirtualService, the primary promoted and the route back at
/// 100/0, and nothing rewritten while idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_promotes_with_step_weights() {
    let m = MeshTest::start_istio("istio-promote", |s| s).await;
    let ns = m.ns().to_string();
    m.apply_istio_latency_template().await;
    m.t.apply(&istio_gateway("public-gateway")).await;
    let mut c = istio_canary(&m.t.hooks, "{maxWeight: 30, stepWeight: 10}");
    c["spec"]["service"] = yaml(
        r#"
port: 9898
targetPort: 9898
portDiscovery: true
gateways: [public-gateway, mesh]
hosts: [app.example.com]
trafficPolicy:
  tls: {mode: DISABLE}
  loadBalancer: {simple: LEAST_REQUEST}
apex:
  labels: {test: labels-test}
  annotations: {test: annotations-test}
"#,
    );
    c["spec"]["service"]["headers"] = envoy_headers();
    for (k, v) in route_options().as_object().unwrap() {
        c["spec"]["service"][k] = v.clone();
    }
    c["spec"]["analysis"]["metrics"][1] = json!({
        "name": "latency", "templateRef": {"name": "latency", "namespace": ns},
        "thresholdRange": {"max": 500}, "interval": "1m",
        "templateVariables": {"reporter": "destination"}});
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;

    let vs = m.vs("podinfo").await;
    let owner = &vs["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["name"], &owner["controller"]),
        (&json!("Canary"), &json!("podinfo"), &json!(true)),
        "{vs:#}"
    );
    assert_eq!(vs["metadata"]["labels"]["test"], "labels-test", "{vs:#}");
    let annotations = &vs["metadata"]["annotations"];
    assert_eq!(annotations["test"], "annotations-test", "{vs:#}");
    assert_eq!(
        annotations["kustomize.toolkit.fluxcd.io/reconcile"], "disabled",
        "{vs:#}"
    );
    assert_eq!(
        annotations["helm.toolkit.fluxcd.io/driftDetection"], "disabled",
        "{vs:#}"
    );
    assert_eq!(vs["spec"]["hosts"], json!(["app.example.com", "podinfo"]));
    assert_eq!(vs["spec"]["gateways"], json!(["public-gateway", "mesh"]));
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 1, "{vs:#}");
    assert_eq!(http[0]["headers"], envoy_headers(), "{vs:#}");
    for (k, v) in route_options().as_object().unwrap() {
        assert_eq!(&http[0][k], v, "http[0].{k}: {vs:#}");
    }
    assert_eq!(
        http[0]["route"],
        json!([
            {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": 100},
            {"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": 0}
        ]),
        "port discovery with an ingress gateway first puts the port in the destinations"
    );
    let apex = serde_json::to_value(
        m.t.tc
            .api::<k8s_openapi::api::core::v1::Service>()
            .get("podinfo")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(apex["metadata"]["labels"]["test"], "labels-test");
    assert_eq!(apex["metadata"]["annotations"]["test"], "annotations-test");
    for name in ["podinfo-primary", "podinfo-canary"] {
        let dr = m.dr(name).await;
        assert_eq!(
            dr["spec"],
            json!({"host": name, "trafficPolicy": {
                "tls": {"mode": "DISABLE"}, "loadBalancer": {"simple": "LEAST_REQUEST"}}}),
            "{dr:#}"
        );
        assert_eq!(dr["metadata"]["ownerReferences"][0]["kind"], "Canary");
    }
    eventually(
        "the simulator to route by the VirtualService",
        SHORT,
        || async {
            let seen = m.sim.observed();
            match seen.route_found && seen.canary_share == 0.0 && seen.unrouted_share == 0.0 {
                true => Ok(()),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
    let generation = vs["metadata"]["generation"].clone();

    m.set_revision("6.0.1", None).await;
    let seen_weights = std::sync::Mutex::new(vec![]);
    eventually("the run to step to 30", RUN, || async {
        let (primary, canary) = m.vs_weights().await;
        assert_eq!(primary + canary, 100, "weights sum to 100");
        let mut seen = seen_weights.lock().unwrap();
        if seen.last() != Some(&canary) {
            seen.push(canary);
        }
        match canary {
            30 => Ok(()),
            _ => Err(format!("weights so far {seen:?}")),
        }
    })
    .await;
    assert_eq!(*seen_weights.lock().unwrap(), vec![0, 10, 20, 30]);
    eventually("the simulator to send 30% to the canary", SHORT, || async {
        let seen = m.sim.observed();
        match (seen.canary_share - 0.3).abs() < 1e-6 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    assert_promoted(&m.t, "6.0.1").await;
    m.wait_vs_weights(100, 0, SHORT).await;
    let events = m.t.events().await;
    for w in [10, 20, 30] {
        let advance = format!("Advance podinfo.{ns} canary weight {w}");
        assert!(
            events.iter().any(|e| e.message == advance),
            "no {advance:?}: {events:#?}"
        );
    }
    assert!(
        !events.iter().any(|e| e.message.starts_with("Halt")),
        "a healthy revision never halts (the latency template answers): {events:#?}"
    );
    let after = m.vs("podinfo").await;
    assert!(after["metadata"]["generation"].as_i64() > generation.as_i64());
    assert_eq!(after["spec"]["http"][0]["headers"], envoy_headers());
    for (k, v) in route_options().as_object().unwrap() {
        assert_eq!(&after["spec"]["http"][0][k], v, "http[0].{k}: {after:#}");
    }
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(
        m.vs("podinfo").await["metadata"]["generation"],
        after["metadata"]["generation"],
        "an idle canary rewrites its VirtualService"
    );
}

/// A revision failing half its requests, with `provider: istio` on the
/// Canary (the rig's `-mesh-provider kubernetes` stays): Istio's success
/// rate halts the analysis twice, Serin rolls back, the VirtualService
/// returns to the primary and the primary keeps its image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_rolls_back_on_errors() {
    let m = MeshTest::start("istio-rollback", &[], |ns| {
        SimulatorConfig::virtualservice(ns, "podinfo")
    })
    .await;
    let ns = m.ns().to_string();
    let mut c = istio_canary(&m.t.hooks, "{maxWeight: 50, stepWeight: 10}");
    c["spec"]["provider"] = json!("istio");
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    m.wait_vs_weights(100, 0, SHORT).await;
    m.set_revision("6.0.1", Some(Fault::errors(50.0))).await;
    m.wait_vs_weights(90, 10, RUN).await;
    m.t.wait_phase("podinfo", "Failed", RUN).await;
    m.wait_vs_weights(100, 0, SHORT).await;
    let events = m.t.events().await;
    let (values, halts) = halts(
        &events,
        &format!("Halt podinfo.{ns} advancement success rate "),
        "% < 99%",
    );
    assert!(
        values.iter().all(|v| (40.0..60.0).contains(v)),
        "{values:?}"
    );
    assert_eq!(halts, 2, "one halt per failed check: {events:#?}");
    m.t.wait_event(
        &format!("Rolling back podinfo.{ns} failed checks threshold reached 2"),
        SHORT,
    )
    .await;
    m.t.wait_event(&format!("Canary failed! Scaling down podinfo.{ns}"), SHORT)
        .await;
    let primary = deployment(&m.t, "podinfo-primary").await;
    assert!(image_of(&pod_spec_of(&primary)).ends_with(":6.0.0"));
    assert_eq!(replicas(&deployment(&m.t, "podinfo").await), 0);
    eventually("the simulator back on the primary", SHORT, || async {
        let seen = m.sim.observed();
        match seen.canary_share == 0.0 && seen.unrouted_share == 0.0 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
}

/// `test-canary.sh`'s Blue/Green, with mirroring: 3 iterations, a
/// pre-rollout webhook first, half the primary's requests mirrored to the
/// canary (`mirrorPercentage` 50) while the users stay on the primary, then
/// all traffic to the canary without the mirror, the promotion, and the
/// VirtualService back on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_blue_green_mirrors_then_promotes() {
    let m = MeshTest::start_istio("istio-bg", |s| s).await;
    let ns = m.ns().to_string();
    let mut c = istio_canary(
        &m.t.hooks,
        "{iterations: 3, mirror: true, mirrorWeight: 50}",
    );
    add_hooks(
        &mut c,
        &[hook("smoke-test", "pre-rollout", &m.t.hooks.url("/ok"))],
    );
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", None).await;
    eventually(
        "the VirtualService to mirror half to the canary",
        RUN,
        || async {
            let seen = m.sim.observed();
            match (seen.mirror_share - 0.5).abs() < 1e-6 && seen.canary_share == 0.0 {
                true => Ok(()),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
    let vs = m.vs("podinfo").await;
    let http = &vs["spec"]["http"][0];
    assert_eq!(http["mirror"], json!({"host": "podinfo-canary"}), "{vs:#}");
    assert_eq!(
        http["mirrorPercentage"]["value"].as_f64(),
        Some(50.0),
        "{vs:#}"
    );
    assert_eq!(vs_weights(&vs), Some((100, 0)), "{vs:#}");
    let calls = m.t.hooks.calls_to("/ok");
    assert_eq!(
        calls.first().map(|c| c.payload["metadata"]["hook"].clone()),
        Some(json!("smoke-test")),
        "the pre-rollout hook ran first: {calls:?}"
    );
    eventually("all traffic on the canary, unmirrored", RUN, || async {
        let vs = m.vs("podinfo").await;
        let http = &vs["spec"]["http"][0];
        match vs_weights(&vs) == Some((0, 100)) && http["mirror"].is_null() {
            true => Ok(()),
            false => Err(format!("{:#}", vs["spec"])),
        }
    })
    .await;
    assert_promoted(&m.t, "6.0.1").await;
    m.wait_vs_weights(100, 0, SHORT).await;
    assert!(m.vs("podinfo").await["spec"]["http"][0]["mirror"].is_null());
    let events = m.t.events().await;
    for message in [
        "Pre-rollout check smoke-test passed".to_string(),
        format!("Advance podinfo.{ns} canary iteration 1/3"),
        format!("Advance podinfo.{ns} canary iteration 3/3"),
        "Stop traffic mirroring and route all traffic to canary".to_string(),
        format!("Promotion completed! Scaling down podinfo.{ns}"),
    ] {
        assert!(
            events.iter().any(|e| e.message == message),
            "no {message:?}: {events:#?}"
        );
    }
}

/// `test-canary.sh`'s A/B testing on the cookie `type=insider` (regex
/// `^(.*?;)?(type=insider)(;.*)?$`) under the service's `uri` match, with a
/// confirm-promotion gate and a post-rollout webhook: during the run the
/// insiders reach only the canary and everyone else only the primary;
/// `http[0]` is the merged match to the canary, `http[1]` the service's
/// match to the primary alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_ab_testing_routes_insiders_by_cookie() {
    let m = MeshTest::start_istio("istio-ab", |s| {
        s.classes(vec![
            ClientClass::plain(0.8).named("everyone"),
            ClientClass::header("insider", 0.2, "cookie", "type=insider"),
        ])
    })
    .await;
    let ns = m.ns().to_string();
    let regex = "^(.*?;)?(type=insider)(;.*)?$";
    let mut c = istio_canary(&m.t.hooks, "{iterations: 3}");
    c["spec"]["analysis"]["match"] = json!([{"headers": {"cookie": {"regex": regex}}}]);
    c["spec"]["service"]["match"] = json!([{"uri": {"prefix": "/"}}]);
    c["spec"]["service"]["rewrite"] = json!({"uri": "/"});
    add_hooks(
        &mut c,
        &[
            hook(
                "promote-gate",
                "confirm-promotion",
                &m.t.hooks.url("/gate/approve"),
            ),
            hook("post", "post-rollout", &m.t.hooks.url("/ok")),
        ],
    );
    m.t.apply(&c).await;
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
    let everyone = seen.class("everyone").unwrap();
    assert_eq!(
        (everyone.canary_share, everyone.unrouted_share),
        (0.0, 0.0),
        "{seen:?}"
    );
    let vs = m.vs("podinfo").await;
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 2, "{vs:#}");
    assert_eq!(
        http[0]["match"],
        json!([{"headers": {"cookie": {"regex": regex}}, "uri": {"prefix": "/"}}]),
        "{vs:#}"
    );
    assert_eq!(http[0]["rewrite"], json!({"uri": "/"}), "{vs:#}");
    assert_eq!(
        destinations(&vs, 0),
        vec![
            ("podinfo-primary".into(), 0),
            ("podinfo-canary".into(), 100)
        ]
    );
    assert_eq!(
        http[1]["match"],
        json!([{"uri": {"prefix": "/"}}]),
        "{vs:#}"
    );
    assert_eq!(http[1]["rewrite"], json!({"uri": "/"}), "{vs:#}");
    // Flagger writes the primary's weight there (0 during the run); a lone
    // destination takes everything in Istio whatever its weight.
    let second: Vec<String> = destinations(&vs, 1).into_iter().map(|d| d.0).collect();
    assert_eq!(second, vec!["podinfo-primary".to_string()], "{vs:#}");
    assert_promoted(&m.t, "6.0.1").await;
    eventually("insiders back on the primary", SHORT, || async {
        let seen = m.sim.observed();
        match seen.class("insider").map(|c| c.canary_share) {
            Some(0.0) => Ok(()),
            _ => Err(format!("{seen:?}")),
        }
    })
    .await;
    m.t.wait_event("Post-rollout check post passed", SHORT)
        .await;
    let events = m.t.events().await;
    for message in [
        format!("Advance podinfo.{ns} canary iteration 3/3"),
        "Confirm-promotion check promote-gate passed".to_string(),
    ] {
        assert!(
            events.iter().any(|e| e.message == message),
            "no {message:?}: {events:#?}"
        );
    }
    let post: Vec<_> =
        m.t.hooks
            .calls_to("/ok")
            .into_iter()
            .filter(|c| c.payload["metadata"]["hook"] == "post")
            .collect();
    assert_eq!(post.len(), 1, "{post:?}");
    assert_eq!(post[0].field("phase"), "Succeeded", "{post:?}");
    assert!(!m.t.hooks.calls_to("/gate/approve").is_empty());
}
