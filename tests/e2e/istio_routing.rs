//! The Istio router's routing features end to end (Flagger's `test/istio`
//! `test-delegation.sh` and `test-session-affinity.sh`): a delegate
//! VirtualService behind the user's root VirtualService, sticky sessions by
//! cookie, and a TCP route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use crate::istio::istio_gateway;
use crate::support::eventually;
use crate::support::gateway::MeshTest;
use crate::support::istio::{destinations, is_empty_list, istio_canary};
use crate::support::podinfo::{RUN, SHORT, assert_deployment_initialized, assert_promoted, yaml};
use crate::support::traffic::SimulatorConfig;

/// `test-delegation.sh`'s root VirtualService: `app.example.com` on the
/// gateway, `/podinfo` rewritten to `/` and delegated to `podinfo` in `ns`.
fn root_vs(ns: &str) -> Value {
    yaml(&format!(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: root-vs
spec:
  gateways: [public-gateway]
  hosts: [app.example.com]
  http:
    - match:
        - uri: {{prefix: /podinfo}}
      rewrite: {{uri: /}}
      delegate: {{name: podinfo, namespace: {ns}}}
"#
    ))
}

/// `test-delegation.sh`: with `delegation: true` Serin's VirtualService has
/// neither hosts nor gateways (and, with port discovery, destinations with
/// the port); the simulator routes through the user's root VirtualService
/// into it, and the run steps and promotes through the delegate. Asking for
/// hosts with delegation is refused with Flagger's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_delegation_promotes_through_the_root_virtualservice() {
    let m = MeshTest::start_istio("istio-delegate", |s| {
        SimulatorConfig::virtualservice(&s.namespace, "root-vs")
    })
    .await;
    let ns = m.ns().to_string();
    m.t.apply(&istio_gateway("public-gateway")).await;
    m.t.apply(&root_vs(&ns)).await;
    let root = m.vs("root-vs").await;
    let mut c = istio_canary(&m.t.hooks, "{maxWeight: 30, stepWeight: 10}");
    c["spec"]["service"]["portDiscovery"] = json!(true);
    c["spec"]["service"]["delegation"] = json!(true);
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    let vs = m.vs("podinfo").await;
    assert!(is_empty_list(&vs["spec"]["hosts"]), "{vs:#}");
    assert!(is_empty_list(&vs["spec"]["gateways"]), "{vs:#}");
    assert_eq!(
        vs["spec"]["http"][0]["route"],
        json!([
            {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": 100},
            {"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": 0}
        ]),
        "{vs:#}"
    );
    eventually("the root to route into the delegate", SHORT, || async {
        let seen = m.sim.observed();
        match seen.route_found && seen.unrouted_share == 0.0 && seen.error.is_none() {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;

    m.set_revision("6.0.1", None).await;
    eventually("the delegate to send 10% to the canary", RUN, || async {
        let seen = m.sim.observed();
        match seen.canary_share >= 0.1 - 1e-6 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    m.wait_vs_weights(70, 30, RUN).await;
    assert_promoted(&m.t, "6.0.1").await;
    m.wait_vs_weights(100, 0, SHORT).await;
    let after = m.vs("root-vs").await;
    assert_eq!(after["spec"], root["spec"], "the root is the user's");
    assert_eq!(
        after["metadata"]["generation"],
        root["metadata"]["generation"]
    );
    let events = m.t.events().await;
    assert!(
        !events.iter().any(|e| e.message.starts_with("Halt")),
        "{events:#?}"
    );

    c["spec"]["service"]["hosts"] = json!(["app.example.com"]);
    m.t.apply(&c).await;
    let refused =
        "VirtualService podinfo.{ns} cannot have hosts and gateways when delegation enabled"
            .replace("{ns}", &ns);
    eventually("delegation with hosts to be refused", SHORT, || async {
        let events = m.t.events().await;
        match events.iter().find(|e| e.message.contains(&refused)) {
            Some(e) => Ok(e.clone()),
            None => Err(format!("{:?}", events.last().map(|e| &e.message))),
        }
    })
    .await;
    assert!(is_empty_list(&m.vs("podinfo").await["spec"]["hosts"]));
}

/// The canary's `Cookie` match: `.*<name>.*<value>.*` for `name=value`.
/// The status and its `sessionAffinityCookie` once it starts with `prefix`:
/// the status follows the routes in the same step, so a route seen may
/// still wait for its status.
async fn canary_cookie(m: &MeshTest, prefix: &str) -> (Value, String) {
    eventually("the canary cookie in the status", SHORT, || async {
        let status = m.t.status("podinfo").await;
        let cookie = status["sessionAffinityCookie"].as_str().unwrap_or_default();
        match cookie.starts_with(prefix) {
            true => Ok((status.clone(), cookie.to_string())),
            false => Err(format!("{status:#}")),
        }
    })
    .await
}

fn cookie_regex(cookie: &str) -> String {
    let (name, value) = cookie.split_once('=').unwrap();
    format!(".*{name}.*{value}.*")
}

/// `test-session-affinity.sh` (cookies `canary-flagger-cookie` and
/// `primary-flagger-cookie`, hosts `*` on a gateway), with sticky clients:
/// while the canary gets traffic, a client holding the canary cookie
/// reaches only the canary, through a route matching the cookie before the
/// weighted one; after the promotion the previous cookie is expired
/// (`Max-Age=-1`) and recorded in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_session_affinity_sticks_and_expires() {
    let m = MeshTest::start_istio("istio-affinity", |s| s.sticky(0.5, 100)).await;
    m.t.apply(&istio_gateway("public-gateway")).await;
    let mut c = istio_canary(
        &m.t.hooks,
        "{maxWeight: 30, stepWeight: 10, sessionAffinity: {cookieName: canary-flagger-cookie, primaryCookieName: primary-flagger-cookie, maxAge: 21600}}",
    );
    c["spec"]["service"]["gateways"] = json!(["public-gateway"]);
    c["spec"]["service"]["hosts"] = json!(["*"]);
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    let vs = m.vs("podinfo").await;
    assert_eq!(vs["spec"]["hosts"], json!(["*"]), "{vs:#}");
    assert_eq!(vs["spec"]["gateways"], json!(["public-gateway"]), "{vs:#}");

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
    let (status, cookie) = canary_cookie(&m, "canary-flagger-cookie=").await;
    let primary_cookie = status["primarySessionAffinityCookie"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        primary_cookie.starts_with("primary-flagger-cookie="),
        "{status:#}"
    );
    let vs = m.vs("podinfo").await;
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(
        http.len(),
        3,
        "sticky canary, sticky primary, weighted: {vs:#}"
    );
    assert_eq!(
        http[0]["match"],
        json!([{"headers": {"Cookie": {"regex": cookie_regex(&cookie)}}}]),
        "{vs:#}"
    );
    assert_eq!(
        destinations(&vs, 0),
        vec![
            ("podinfo-primary".into(), 0),
            ("podinfo-canary".into(), 100)
        ]
    );
    assert_eq!(
        http[1]["match"],
        json!([{"headers": {"Cookie": {"regex": cookie_regex(&primary_cookie)}}}]),
        "{vs:#}"
    );
    assert_eq!(
        destinations(&vs, 1),
        vec![
            ("podinfo-primary".into(), 100),
            ("podinfo-canary".into(), 0)
        ]
    );
    let weighted = &http[2]["route"];
    assert_eq!(weighted[1]["destination"]["host"], "podinfo-canary");
    assert_eq!(
        weighted[1]["headers"]["response"]["add"]["Set-Cookie"],
        json!(format!("{cookie}; Max-Age=21600")),
        "{vs:#}"
    );
    assert_eq!(
        weighted[0]["headers"]["response"]["add"]["Set-Cookie"],
        json!(format!("{primary_cookie}; Max-Age=10")),
        "the primary cookie lasts an interval: {vs:#}"
    );

    assert_promoted(&m.t, "6.0.1").await;
    m.wait_vs_weights(100, 0, SHORT).await;
    let status = m.t.status("podinfo").await;
    assert_eq!(
        status["previousSessionAffinityCookie"],
        json!(cookie),
        "{status:#}"
    );
    assert!(
        status["sessionAffinityCookie"]
            .as_str()
            .is_none_or(str::is_empty),
        "{status:#}"
    );
    let vs = m.vs("podinfo").await;
    let http = &vs["spec"]["http"][0];
    assert_eq!(
        http["match"],
        json!([{"headers": {"Cookie": {"regex": cookie_regex(&cookie)}}}]),
        "{vs:#}"
    );
    assert_eq!(
        http["headers"]["response"]["add"]["Set-Cookie"],
        json!(format!("{cookie}; Max-Age=-1")),
        "{vs:#}"
    );
    eventually("the previous cookie to be expired", SHORT, || async {
        let seen = m.sim.observed();
        match seen.sticky.total.cookies_expired > 0 && seen.sticky.with_canary_cookie == 0 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
}

/// The destinations of the VirtualService's `tcp[0]` route as (host, weight).
fn tcp_weights(vs: &Value) -> Vec<(String, i64)> {
    vs["spec"]["tcp"][0]["route"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["destination"]["host"].as_str().unwrap_or_default().into(),
                d["weight"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// `appProtocol: tcp`: a TCP route instead of an HTTP one (Istio's CRD
/// accepts it), its weights stepping to 20 and back to the primary after
/// the promotion. Without HTTP routes the simulator serves nothing, so the
/// analysis has no metric here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_tcp_service_steps_a_tcp_route() {
    let m = MeshTest::start_istio("istio-tcp", |s| s).await;
    let mut c = istio_canary(&m.t.hooks, "{maxWeight: 20, stepWeight: 10, metrics: []}");
    c["spec"]["service"]["appProtocol"] = json!("tcp");
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    let vs = m.vs("podinfo").await;
    assert!(is_empty_list(&vs["spec"]["http"]), "{vs:#}");
    let at = |p: i64, c: i64| {
        vec![
            ("podinfo-primary".to_string(), p),
            ("podinfo-canary".to_string(), c),
        ]
    };
    assert_eq!(tcp_weights(&vs), at(100, 0), "{vs:#}");
    m.set_revision("6.0.1", None).await;
    eventually("the TCP route at 80/20", RUN, || async {
        let vs = m.vs("podinfo").await;
        match tcp_weights(&vs) == at(80, 20) {
            true => Ok(()),
            false => Err(format!("{:#}", vs["spec"])),
        }
    })
    .await;
    assert_promoted(&m.t, "6.0.1").await;
    eventually("the TCP route back on the primary", SHORT, || async {
        let vs = m.vs("podinfo").await;
        match tcp_weights(&vs) == at(100, 0) {
            true => Ok(()),
            false => Err(format!("{:#}", vs["spec"])),
        }
    })
    .await;
}

/// The Istio tutorial's session affinity (only `cookieName`): two routes
/// while the canary gets traffic (the sticky canary route, then the
/// weighted one), the canary's cookie with the default `Max-Age` of a day,
/// no cookie from the primary; and the sticky clients holding the cookie
/// reach only the canary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_session_affinity_without_a_primary_cookie() {
    let m = MeshTest::start_istio("istio-affinity-1", |s| s.sticky(0.5, 100)).await;
    m.t.apply(&istio_canary(
        &m.t.hooks,
        "{maxWeight: 20, stepWeight: 10, sessionAffinity: {cookieName: flagger-cookie}}",
    ))
    .await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", None).await;
    m.wait_vs_weights(90, 10, RUN).await;
    let (_, cookie) = canary_cookie(&m, "flagger-cookie=").await;
    let vs = m.vs("podinfo").await;
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 2, "sticky canary, weighted: {vs:#}");
    assert_eq!(
        http[0]["match"],
        json!([{"headers": {"Cookie": {"regex": cookie_regex(&cookie)}}}]),
        "{vs:#}"
    );
    assert_eq!(
        destinations(&vs, 0),
        vec![
            ("podinfo-primary".into(), 0),
            ("podinfo-canary".into(), 100)
        ]
    );
    let weighted = &http[1]["route"];
    assert_eq!(
        weighted[1]["headers"]["response"]["add"]["Set-Cookie"],
        json!(format!("{cookie}; Max-Age=86400")),
        "{vs:#}"
    );
    assert!(weighted[0]["headers"].is_null(), "{vs:#}");
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
        "{sticky:?}"
    );
    assert_promoted(&m.t, "6.0.1").await;
    let status = m.t.status("podinfo").await;
    assert_eq!(status["previousSessionAffinityCookie"], json!(cookie));
}
