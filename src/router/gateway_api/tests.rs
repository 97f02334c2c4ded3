use serde_json::json;

use super::*;
use crate::k8s::cache::testing::{empty, store_of};

fn canary(provider: &str, extra: Value) -> Canary {
    let mut value = json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1"},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {
                "port": 9898,
                "hosts": ["www.example.com"],
                "gatewayRefs": [{"name": "gateway", "namespace": "istio-ingress"}],
                "apex": {"labels": {"team": "a"}, "annotations": {"note": "x"}}
            },
            "analysis": {"interval": "15s", "threshold": 5, "maxWeight": 50, "stepWeight": 10}
        }
    });
    merge(&mut value["spec"], extra);
    serde_json::from_value(value).unwrap()
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn created(c: &Canary) -> Value {
    let provider = serde_json::to_value(c.spec.provider.as_ref().unwrap()).unwrap();
    let provider = provider.as_str().unwrap();
    match plan_reconcile(&empty(), c, provider, &no_cookies()).unwrap() {
        Some(Write::Create(route)) => route,
        other => panic!("expected a create, got {other:?}"),
    }
}

/// The created route as the API server returns it (no defaults added:
/// Serin writes them).
fn cached(c: &Canary, status: Option<Value>) -> Caches {
    let mut route = created(c);
    route["metadata"]["generation"] = json!(2);
    if let Some(status) = status {
        route["status"] = status;
    }
    route["apiVersion"] = json!("gateway.networking.k8s.io/v1");
    let mut caches = empty();
    caches.httproutes = store_of(vec![serde_json::from_value(route).unwrap()]);
    caches
}

fn no_cookies() -> SessionCookies {
    SessionCookies::default()
}

fn routes(canary: i32, mirrored: bool) -> Routes {
    Routes {
        primary: 100 - canary,
        canary,
        mirrored,
    }
}

fn backend(name: &str, weight: i32) -> Value {
    json!({"group": "", "kind": "Service", "name": name, "port": 9898, "weight": weight})
}

const PREFIX_SLASH: &str = r#"{"path": {"type": "PathPrefix", "value": "/"}}"#;

#[test]
fn creates_the_route_flagger_creates() {
    let route = created(&canary("gatewayapi:v1", json!({})));
    assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(route["metadata"]["name"], "podinfo");
    assert_eq!(route["metadata"]["labels"], json!({"team": "a"}));
    assert_eq!(
        route["metadata"]["annotations"],
        json!({
            "note": "x",
            "helm.toolkit.fluxcd.io/driftDetection": "disabled",
            "kustomize.toolkit.fluxcd.io/reconcile": "disabled"
        })
    );
    assert_eq!(route["metadata"]["ownerReferences"][0]["kind"], "Canary");
    let prefix: Value = serde_json::from_str(PREFIX_SLASH).unwrap();
    assert_eq!(
        route["spec"],
        json!({
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                            "namespace": "istio-ingress", "name": "gateway"}],
            "hostnames": ["www.example.com"],
            "rules": [{
                "matches": [prefix],
                "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]
            }]
        })
    );
    let beta = created(&canary("gatewayapi:v1beta1", json!({})));
    assert_eq!(beta["apiVersion"], "gateway.networking.k8s.io/v1beta1");
}

#[test]
fn a_gamma_route_has_a_service_parent() {
    let c = canary(
        "gatewayapi:v1beta1",
        json!({"service": {"gatewayRefs": [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}]}}),
    );
    assert_eq!(
        created(&c)["spec"]["parentRefs"],
        json!([{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}])
    );
}

#[test]
fn gateway_refs_are_required() {
    let c = canary("gatewayapi:v1", json!({"service": {"gatewayRefs": []}}));
    assert_eq!(
        plan_reconcile(&empty(), &c, "gatewayapi:v1", &no_cookies())
            .unwrap_err()
            .to_string(),
        "GatewayRefs must be specified when using Gateway API as a provider."
    );
    assert!(crate::router::check(&c, "gatewayapi:v1").is_err());
}

#[test]
fn service_match_filters_and_timeouts() {
    let c = canary(
        "gatewayapi:v1",
        json!({"service": {
            "match": [
                {"uri": {"regex": "/api/.*"}, "method": {"exact": "GET"},
                 "headers": {"x-b": {"regex": "b.*"}, "x-a": {"exact": "a"}},
                 "queryParams": {"q": {"exact": "1"}}},
                {"headers": {"x-only": {"exact": "1"}}}
            ],
            "headers": {"request": {"set": {"b": "2", "a": "1"}, "remove": ["x"]},
                        "response": {"add": {"r": "1"}}},
            "rewrite": {"uri": "/v2", "type": "ReplacePrefixMatch", "authority": "api.example.com"},
            "corsPolicy": {"allowOrigin": ["https://example.com"], "allowMethods": ["GET"], "maxAge": "24h", "allowCredentials": true},
            "timeout": "30s",
            "backendTimeout": "10s"
        }}),
    );
    let rule = &created(&c)["spec"]["rules"][0];
    assert_eq!(
        rule["matches"],
        json!([
            {"path": {"type": "RegularExpression", "value": "/api/.*"},
             "headers": [{"type": "Exact", "name": "x-a", "value": "a"},
                         {"type": "RegularExpression", "name": "x-b", "value": "b.*"}],
             "queryParams": [{"type": "Exact", "name": "q", "value": "1"}],
             "method": "GET"},
            {"path": {"type": "PathPrefix", "value": "/"},
             "headers": [{"type": "Exact", "name": "x-only", "value": "1"}]}
        ])
    );
    assert_eq!(
        rule["filters"],
        json!([
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                "set": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}], "remove": ["x"]}},
            {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "r", "value": "1"}]}},
            {"type": "URLRewrite", "urlRewrite": {"hostname": "api.example.com",
                "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}},
            {"type": "CORS", "cors": {"allowOrigins": ["https://example.com"], "allowCredentials": true,
                "allowMethods": ["GET"], "maxAge": 86400}}
        ])
    );
    assert_eq!(
        rule["timeouts"],
        json!({"request": "30s", "backendRequest": "10s"})
    );
    // v1beta1: Flagger's older router sets neither timeouts nor CORS.
    let mut beta = c.clone();
    beta.spec.provider = Some(serde_json::from_value(json!("gatewayapi:v1beta1")).unwrap());
    let rule = &created(&beta)["spec"]["rules"][0];
    assert!(rule.get("timeouts").is_none());
    assert_eq!(rule["filters"].as_array().unwrap().len(), 3);
}

#[test]
fn unmappable_selectors_are_refused() {
    for (field, selector) in [
        ("header", json!({"headers": {"x": {"prefix": "a"}}})),
        ("authority", json!({"authority": {"exact": "a"}})),
        ("method", json!({"method": {"regex": "G.*"}})),
    ] {
        let c = canary("gatewayapi:v1", json!({"service": {"match": [selector]}}));
        let err = plan_reconcile(&empty(), &c, "gatewayapi:v1", &no_cookies())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Invalid request matching selectors: Gateway API doesn't support")
                && err.contains(field),
            "{err}"
        );
    }
}

#[test]
fn ab_testing_adds_a_rule_for_everyone_else() {
    let c = canary(
        "gatewayapi:v1",
        json!({"analysis": {"iterations": 10, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}}),
    );
    let caches = cached(&c, None);
    let Some(Write::Patch { patch, .. }) = plan_routes(
        &caches,
        &c,
        "gatewayapi:v1",
        routes(100, false),
        &no_cookies(),
    )
    .unwrap() else {
        panic!("no patch");
    };
    assert_eq!(
        patch["spec"]["rules"],
        json!([
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                          "headers": [{"type": "Exact", "name": "x-canary", "value": "insider"}]}],
             "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [backend("podinfo-primary", 100)]}
        ])
    );
}

#[test]
fn blue_green_mirrors_to_the_canary() {
    let c = canary(
        "gatewayapi:v1",
        json!({"analysis": {"iterations": 5, "mirror": true}}),
    );
    let caches = cached(&c, None);
    let Some(Write::Patch { patch, .. }) =
        plan_routes(&caches, &c, "gatewayapi:v1", routes(0, true), &no_cookies()).unwrap()
    else {
        panic!("no patch");
    };
    assert_eq!(
        patch["spec"]["rules"][0]["filters"],
        json!([{"type": "RequestMirror", "requestMirror": {"backendRef":
            {"group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898}}}])
    );
    // Read back, the route reports the mirror.
    let mut route = created(&c);
    route["spec"]["rules"] = patch["spec"]["rules"].clone();
    let mut mirrored = empty();
    mirrored.httproutes = store_of(vec![serde_json::from_value(route).unwrap()]);
    assert_eq!(
        current_routes(&mirrored, &c, "gatewayapi:v1").unwrap(),
        routes(0, true)
    );
    // Reconcile leaves the mirror alone: it belongs to the run.
    assert_eq!(
        plan_reconcile(&mirrored, &c, "gatewayapi:v1", &no_cookies()).unwrap(),
        None
    );
}

#[test]
fn weights_are_written_only_when_they_change() {
    let c = canary("gatewayapi:v1", json!({}));
    let caches = cached(&c, None);
    assert_eq!(
        plan_reconcile(&caches, &c, "gatewayapi:v1", &no_cookies()).unwrap(),
        None
    );
    assert_eq!(
        plan_routes(
            &caches,
            &c,
            "gatewayapi:v1",
            routes(0, false),
            &no_cookies()
        )
        .unwrap(),
        None
    );
    let Some(Write::Patch { patch, .. }) = plan_routes(
        &caches,
        &c,
        "gatewayapi:v1",
        routes(10, false),
        &no_cookies(),
    )
    .unwrap() else {
        panic!("no patch");
    };
    let keys: Vec<&String> = patch["spec"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["rules"], "only the rules change: {patch}");
    assert_eq!(
        patch["spec"]["rules"][0]["backendRefs"],
        json!([
            backend("podinfo-primary", 90),
            backend("podinfo-canary", 10)
        ])
    );
}

#[test]
fn drift_is_corrected_keeping_the_split_and_foreign_annotations() {
    let c = canary("gatewayapi:v1", json!({}));
    let mut route = created(&c);
    route["spec"]["hostnames"] = json!(["evil.example.com"]);
    route["spec"]["rules"][0]["backendRefs"] = json!([
        {"name": "podinfo-primary", "port": 9898, "weight": 70},
        {"name": "podinfo-canary", "port": 9898, "weight": 30}
    ]);
    route["metadata"]["annotations"]["aws.example.com/arn"] = json!("keep");
    route["metadata"]["labels"]["stray"] = json!("x");
    let mut caches = empty();
    caches.httproutes = store_of(vec![serde_json::from_value(route).unwrap()]);
    let Some(Write::Patch { patch, .. }) =
        plan_reconcile(&caches, &c, "gatewayapi:v1", &no_cookies()).unwrap()
    else {
        panic!("no patch");
    };
    assert_eq!(
        patch,
        json!({
            "metadata": {"labels": {"stray": null}},
            "spec": {"hostnames": ["www.example.com"]}
        }),
        "defaulted backend fields and the 70/30 split are not drift"
    );
}

#[test]
fn a_parent_that_has_not_accepted_the_route_stops_the_step() {
    let c = canary("gatewayapi:v1", json!({}));
    let parent = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway",
                        "namespace": "istio-ingress", "name": "gateway"});
    let status = |accepted: &str, generation: i64| {
        json!({"parents": [{"parentRef": parent, "controllerName": "x",
            "conditions": [{"type": "Accepted", "status": accepted, "observedGeneration": generation,
                            "reason": "r", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]})
    };
    let err = current_routes(&cached(&c, Some(status("False", 2))), &c, "gatewayapi:v1")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "HTTPRoute podinfo.test parent gateway is not ready (status: False, observed generation: 2, current generation: 2)"
    );
    let err = current_routes(&cached(&c, Some(status("True", 1))), &c, "gatewayapi:v1")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("observed generation: 1, current generation: 2"),
        "{err}"
    );
    assert_eq!(
        current_routes(&cached(&c, Some(status("True", 2))), &c, "gatewayapi:v1").unwrap(),
        routes(0, false)
    );
    // No status from any controller yet: Flagger goes on.
    assert_eq!(
        current_routes(&cached(&c, None), &c, "gatewayapi:v1").unwrap(),
        routes(0, false)
    );
    // v1beta1 never checked.
    let beta = canary("gatewayapi:v1beta1", json!({}));
    assert_eq!(
        current_routes(
            &cached(&beta, Some(status("False", 2))),
            &beta,
            "gatewayapi:v1beta1"
        )
        .unwrap(),
        routes(0, false)
    );
}

#[test]
fn a_missing_route_is_reported_as_flagger_does() {
    let c = canary("gatewayapi:v1", json!({}));
    assert_eq!(
        current_routes(&empty(), &c, "gatewayapi:v1")
            .unwrap_err()
            .to_string(),
        "HTTPRoute podinfo.test get error: httproutes.gateway.networking.k8s.io \"podinfo\" not found"
    );
}

fn affinity_canary(provider: &str) -> Canary {
    canary(
        provider,
        json!({"analysis": {"sessionAffinity": {"cookieName": "flagger-cookie",
            "primaryCookieName": "flagger-primary", "maxAge": 21600, "httpOnly": true}}}),
    )
}

fn cookies(canary: Option<&str>, previous: Option<&str>) -> SessionCookies {
    SessionCookies {
        canary: canary.map(str::to_string),
        primary: Some("flagger-primary=PRIM".into()),
        previous: previous.map(str::to_string),
    }
}

fn cookie_rule(regex: &str, primary: i32, canary: i32) -> Value {
    json!({"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                        "headers": [{"type": "RegularExpression", "name": "Cookie", "value": regex}]}],
           "backendRefs": [backend("podinfo-primary", primary), backend("podinfo-canary", canary)]})
}

fn with_cookie(mut b: Value, cookie: &str) -> Value {
    b["filters"] = json!([{"type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": cookie}]}}]);
    b
}

#[test]
fn session_affinity_keeps_cookie_holders_on_their_side() {
    let c = affinity_canary("gatewayapi:v1");
    let caches = cached(&c, None);
    let during = cookies(Some("flagger-cookie=CAN"), None);
    let Some(Write::Patch { patch, .. }) =
        plan_routes(&caches, &c, "gatewayapi:v1", routes(10, false), &during).unwrap()
    else {
        panic!("no patch");
    };
    let weighted = json!({"matches": [serde_json::from_str::<Value>(PREFIX_SLASH).unwrap()],
    "backendRefs": [
        with_cookie(backend("podinfo-primary", 90), "flagger-primary=PRIM; Max-Age=15; HttpOnly"),
        with_cookie(backend("podinfo-canary", 10), "flagger-cookie=CAN; Max-Age=21600; HttpOnly"),
    ]});
    assert_eq!(
        patch["spec"]["rules"],
        json!([
            cookie_rule(".*flagger-cookie.*CAN.*", 0, 100),
            cookie_rule(".*flagger-primary.*PRIM.*", 100, 0),
            weighted
        ])
    );
    // Read back, the split is the weighted rule's, and reconcile keeps it all.
    let mut route = created(&c);
    route["spec"]["rules"] = patch["spec"]["rules"].clone();
    let mut during_run = empty();
    during_run.httproutes = store_of(vec![serde_json::from_value(route).unwrap()]);
    assert_eq!(
        current_routes(&during_run, &c, "gatewayapi:v1").unwrap(),
        routes(10, false)
    );
    assert_eq!(
        plan_reconcile(&during_run, &c, "gatewayapi:v1", &during).unwrap(),
        None
    );
}

#[test]
fn after_promotion_the_previous_cookie_is_expired() {
    let c = affinity_canary("gatewayapi:v1");
    let caches = cached(&c, None);
    let after = cookies(None, Some("flagger-cookie=CAN"));
    let Some(Write::Patch { patch, .. }) =
        plan_routes(&caches, &c, "gatewayapi:v1", routes(0, false), &after).unwrap()
    else {
        panic!("no patch");
    };
    let mut expire = cookie_rule(".*flagger-cookie.*CAN.*", 100, 0);
    expire["filters"] = json!([{"type": "ResponseHeaderModifier", "responseHeaderModifier":
        {"add": [{"name": "Set-Cookie", "value": "flagger-cookie=CAN; Max-Age=-1"}]}}]);
    assert_eq!(patch["spec"]["rules"][0], expire);
    assert_eq!(patch["spec"]["rules"].as_array().unwrap().len(), 2);
}

#[test]
fn the_same_name_for_both_cookies_is_refused() {
    let c = canary(
        "gatewayapi:v1",
        json!({"analysis": {"sessionAffinity": {"cookieName": "a", "primaryCookieName": "a"}}}),
    );
    assert_eq!(
        crate::router::check(&c, "gatewayapi:v1").unwrap_err(),
        "can't use the same cookie name for both primary and cookie name; please update them to be different"
    );
}

#[test]
fn a_match_without_iterations_still_splits_only_matching_requests() {
    let c = canary(
        "gatewayapi:v1",
        json!({"analysis": {"match": [{"headers": {"x-canary": {"exact": "insider"}}}]}}),
    );
    let rules = created(&c)["spec"]["rules"].clone();
    assert_eq!(rules.as_array().unwrap().len(), 2, "{rules:#}");
    assert_eq!(
        rules[1]["backendRefs"],
        json!([backend("podinfo-primary", 100)])
    );
}

#[test]
fn a_route_that_lost_its_split_gets_the_initial_one_back() {
    let c = canary("gatewayapi:v1", json!({}));
    let mut route = created(&c);
    route["spec"]["rules"][0]["backendRefs"] = json!([backend("podinfo-primary", 100)]);
    let mut caches = empty();
    caches.httproutes = store_of(vec![serde_json::from_value(route).unwrap()]);
    let Some(Write::Patch { patch, .. }) =
        plan_reconcile(&caches, &c, "gatewayapi:v1", &no_cookies()).unwrap()
    else {
        panic!("no patch");
    };
    assert_eq!(
        patch["spec"]["rules"][0]["backendRefs"],
        json!([
            backend("podinfo-primary", 100),
            backend("podinfo-canary", 0)
        ])
    );
}

#[test]
fn filters_the_api_would_refuse_are_not_written() {
    let c = canary(
        "gatewayapi:v1",
        json!({"service": {"headers": {"request": {}, "response": {"set": {"r": "1"}}},
                           "rewrite": {"type": "ReplacePrefixMatch"},
                           "corsPolicy": {"allowOrigin": ["https://a"], "maxAge": "500ms"}}}),
    );
    let filters = created(&c)["spec"]["rules"][0]["filters"].clone();
    let types: Vec<&str> = filters
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ResponseHeaderModifier", "CORS"], "{filters:#}");
    assert_eq!(filters[1]["cors"]["maxAge"], 5, "the CRD's default, not 0");
    // The cookie expiry joins the rule's response filter: one per rule.
    let a = canary(
        "gatewayapi:v1",
        json!({"service": {"headers": {"response": {"set": {"r": "1"}}}},
               "analysis": {"sessionAffinity": {"cookieName": "c"}}}),
    );
    let caches = cached(&a, None);
    let after = SessionCookies {
        previous: Some("c=OLD".into()),
        ..SessionCookies::default()
    };
    let Some(Write::Patch { patch, .. }) =
        plan_routes(&caches, &a, "gatewayapi:v1", routes(0, false), &after).unwrap()
    else {
        panic!("no patch");
    };
    assert_eq!(
        patch["spec"]["rules"][0]["filters"],
        json!([{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "set": [{"name": "r", "value": "1"}],
            "add": [{"name": "Set-Cookie", "value": "c=OLD; Max-Age=-1"}]}}])
    );
}
