use serde_json::json;

use super::*;
use crate::k8s::cache::testing::{empty, store_of};

fn canary(extra: Value) -> Canary {
    let mut value = json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {
                "port": 9898,
                "hosts": ["app.example.com"],
                "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                "trafficPolicy": {"tls": {"mode": "DISABLE"}},
                "timeout": "30s",
                "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error"},
                "headers": {"request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000"}}},
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

fn no_cookies() -> SessionCookies {
    SessionCookies::default()
}

fn at(canary: i32) -> Routes {
    Routes {
        primary: 100 - canary,
        canary,
        mirrored: false,
    }
}

fn created(c: &Canary) -> (Vec<DestinationRule>, VirtualService) {
    let mut rules = vec![];
    let mut vs = None;
    for write in plan_reconcile(&empty(), c, &no_cookies()).unwrap() {
        match write {
            Write::CreateRule(rule) => rules.push(*rule),
            Write::CreateService(service) => vs = Some(*service),
            other => panic!("expected creates, got {other:?}"),
        }
    }
    (rules, vs.expect("a VirtualService"))
}

/// The created objects as the API server returns them (JSON round trip).
fn cached(c: &Canary) -> Caches {
    let (rules, vs) = created(c);
    let mut caches = empty();
    caches.destinationrules = store_of(rules.into_iter().map(round).collect());
    caches.virtualservices = store_of(vec![round(vs)]);
    caches
}

fn round<T: serde::Serialize + serde::de::DeserializeOwned>(object: T) -> T {
    serde_json::from_value(serde_json::to_value(object).unwrap()).unwrap()
}

fn spec_of(c: &Canary, routes: Routes, cookies: &SessionCookies) -> Value {
    serde_json::to_value(desired(c, routes, cookies).unwrap()).unwrap()
}

#[test]
fn creates_the_rules_and_the_virtualservice_as_flagger() {
    let c = canary(json!({}));
    let (rules, vs) = created(&c);
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["apiVersion"], "networking.istio.io/v1beta1");
    assert_eq!(rules[0]["metadata"]["name"], "podinfo-canary");
    assert_eq!(rules[1]["metadata"]["name"], "podinfo-primary");
    assert_eq!(
        rules[1]["spec"],
        json!({"host": "podinfo-primary", "trafficPolicy": {"tls": {"mode": "DISABLE"}}})
    );
    assert_eq!(rules[0]["metadata"]["ownerReferences"][0]["kind"], "Canary");
    let vs = serde_json::to_value(vs).unwrap();
    assert_eq!(vs["metadata"]["name"], "podinfo");
    assert_eq!(vs["metadata"]["labels"], json!({"team": "a"}));
    assert_eq!(vs["metadata"]["annotations"]["note"], "x");
    assert_eq!(
        vs["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"],
        "disabled"
    );
    assert_eq!(vs["metadata"]["ownerReferences"][0]["uid"], "u1");
    assert_eq!(
        vs["spec"],
        json!({
            "hosts": ["app.example.com", "podinfo"],
            "gateways": ["public-gateway.istio-system.svc.cluster.local"],
            "http": [{
                "route": [
                    {"destination": {"host": "podinfo-primary"}, "weight": 100},
                    {"destination": {"host": "podinfo-canary"}, "weight": 0}
                ],
                "timeout": "30s",
                "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error"},
                "headers": {"request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000"}}}
            }]
        })
    );
}

#[test]
fn hosts_gateways_and_ports_follow_flagger() {
    // No gateways: the mesh; the apex is not repeated; no port without discovery.
    let c = canary(json!({"service": {"hosts": ["podinfo"], "gateways": []}}));
    let spec = spec_of(&c, at(0), &no_cookies());
    assert_eq!(spec["hosts"], json!(["podinfo"]));
    assert_eq!(spec["gateways"], json!(["mesh"]));
    assert_eq!(
        spec["http"][0]["route"][0]["destination"],
        json!({"host": "podinfo-primary"})
    );
    // Port discovery behind a non-mesh gateway sets the port.
    let c = canary(json!({"service": {"portDiscovery": true}}));
    let spec = spec_of(&c, at(0), &no_cookies());
    assert_eq!(
        spec["http"][0]["route"][1]["destination"],
        json!({"host": "podinfo-canary", "port": {"number": 9898}})
    );
    // `*` covers the apex.
    let c = canary(json!({"service": {"hosts": ["*"]}}));
    assert_eq!(spec_of(&c, at(0), &no_cookies())["hosts"], json!(["*"]));
}

#[test]
fn delegation_empties_hosts_and_gateways() {
    let c = canary(
        json!({"service": {"hosts": null, "gateways": null, "delegation": true, "portDiscovery": true}}),
    );
    let spec = spec_of(&c, at(0), &no_cookies());
    assert_eq!(spec["hosts"], json!([]));
    assert!(spec.get("gateways").is_none(), "{spec}");
    assert_eq!(
        spec["http"][0]["route"][0]["destination"]["port"]["number"],
        9898
    );
    let c = canary(json!({"service": {"delegation": true}}));
    assert_eq!(
        desired(&c, at(0), &no_cookies()).unwrap_err().to_string(),
        "VirtualService podinfo.test cannot have hosts and gateways when delegation enabled"
    );
    assert!(crate::router::check(&c, "istio").is_err());
}

#[test]
fn ab_testing_routes_matching_requests_and_the_rest_to_the_primary() {
    let c = canary(json!({
        "service": {"match": [{"uri": {"prefix": "/api"}}]},
        "analysis": {"iterations": 10, "match": [
            {"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}},
            {"sourceLabels": {"app": "tester"}}
        ]}
    }));
    let spec = spec_of(&c, at(100), &no_cookies());
    let http = spec["http"].as_array().unwrap();
    assert_eq!(http.len(), 2);
    assert_eq!(
        http[0]["match"],
        json!([
            {"uri": {"prefix": "/api"}, "headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}},
            {"uri": {"prefix": "/api"}, "sourceLabels": {"app": "tester"}}
        ])
    );
    assert_eq!(http[0]["route"][1]["weight"], 100);
    assert_eq!(http[1]["match"], json!([{"uri": {"prefix": "/api"}}]));
    assert_eq!(
        http[1]["route"],
        json!([{"destination": {"host": "podinfo-primary"}, "weight": 0}])
    );
    // Without a service match the analysis' conditions are taken whole.
    let c =
        canary(json!({"analysis": {"match": [{"headers": {"x-canary": {"exact": "insider"}}}]}}));
    let spec = spec_of(&c, at(0), &no_cookies());
    assert_eq!(
        spec["http"][0]["match"],
        json!([{"headers": {"x-canary": {"exact": "insider"}}}])
    );
    // Istio cannot match a suffix.
    let c = canary(json!({"analysis": {"match": [{"headers": {"x-canary": {"suffix": "der"}}}]}}));
    assert!(
        crate::router::check(&c, "istio")
            .unwrap_err()
            .contains("suffix")
    );
}

#[test]
fn mirroring_and_tcp() {
    let c = canary(json!({"analysis": {"iterations": 5, "mirror": true, "mirrorWeight": 50}}));
    let routes = Routes {
        primary: 100,
        canary: 0,
        mirrored: true,
    };
    let spec = spec_of(&c, routes, &no_cookies());
    assert_eq!(spec["http"][0]["mirror"], json!({"host": "podinfo-canary"}));
    assert_eq!(spec["http"][0]["mirrorPercentage"], json!({"value": 50.0}));
    let read = read_routes(&desired(&c, routes, &no_cookies()).unwrap(), &c);
    assert_eq!(read, routes);

    let c = canary(json!({"service": {"appProtocol": "TCP", "match": [{"port": 9898}]}}));
    let spec = spec_of(&c, at(30), &no_cookies());
    assert!(spec.get("http").is_none());
    assert_eq!(
        spec["tcp"],
        json!([{"match": [{"port": 9898}], "route": [
            {"destination": {"host": "podinfo-primary"}, "weight": 70},
            {"destination": {"host": "podinfo-canary"}, "weight": 30}
        ]}])
    );
    assert_eq!(
        read_routes(&desired(&c, at(30), &no_cookies()).unwrap(), &c),
        at(30)
    );
}

#[test]
fn session_affinity_rules() {
    let c = canary(json!({"analysis": {"sessionAffinity": {
        "cookieName": "flagger-cookie", "primaryCookieName": "primary-cookie", "maxAge": 60
    }}}));
    let cookies = SessionCookies {
        canary: Some("flagger-cookie=abc".into()),
        primary: Some("primary-cookie=xyz".into()),
        previous: None,
    };
    let spec = spec_of(&c, at(20), &cookies);
    let http = spec["http"].as_array().unwrap();
    assert_eq!(http.len(), 3);
    assert_eq!(
        http[0]["match"],
        json!([{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abc.*"}}}])
    );
    assert_eq!(
        http[0]["route"][1],
        json!({"destination": {"host": "podinfo-canary"}, "weight": 100})
    );
    assert_eq!(
        http[1]["match"],
        json!([{"headers": {"Cookie": {"regex": ".*primary-cookie.*xyz.*"}}}])
    );
    assert_eq!(http[1]["route"][0]["weight"], 100);
    assert_eq!(
        http[2]["route"][1]["headers"],
        json!({"response": {"add": {"Set-Cookie": "flagger-cookie=abc; Max-Age=60"}}})
    );
    assert_eq!(
        http[2]["route"][0]["headers"],
        json!({"response": {"add": {"Set-Cookie": "primary-cookie=xyz; Max-Age=15"}}})
    );
    let vs = desired(&c, at(20), &cookies).unwrap();
    assert_eq!(read_routes(&vs, &c), at(20));

    // After the run: the previous cookie is expired, the rest to the primary.
    let after = SessionCookies {
        canary: None,
        primary: None,
        previous: Some("flagger-cookie=abc".into()),
    };
    let spec = spec_of(&c, at(0), &after);
    let http = spec["http"].as_array().unwrap();
    assert_eq!(http.len(), 2);
    assert_eq!(
        http[0]["headers"]["response"]["add"]["Set-Cookie"],
        "flagger-cookie=abc; Max-Age=-1"
    );
    assert_eq!(
        http[0]["headers"]["request"]["add"]["x-envoy-upstream-rq-timeout-ms"],
        "15000"
    );
    assert!(http[1]["headers"]["response"].is_null(), "{spec}");
}

#[test]
fn an_unchanged_virtualservice_is_not_written_and_weights_are_patched() {
    let c = canary(json!({}));
    let caches = cached(&c);
    assert_eq!(plan_reconcile(&caches, &c, &no_cookies()).unwrap(), vec![]);
    assert_eq!(
        plan_routes(&caches, &c, at(0), &no_cookies()).unwrap(),
        None
    );
    assert_eq!(current_routes(&caches, &c).unwrap(), at(0));
    let Some(Write::PatchService {
        patch,
        save_original,
        ..
    }) = plan_routes(&caches, &c, at(10), &no_cookies()).unwrap()
    else {
        panic!("no patch");
    };
    assert!(!save_original);
    assert_eq!(patch["spec"]["http"][0]["route"][1]["weight"], 10);
    assert!(patch.get("metadata").is_none());
}

fn cached_with(vs: Value) -> Caches {
    let mut caches = empty();
    caches.virtualservices = store_of(vec![serde_json::from_value(vs).unwrap()]);
    caches
}

#[test]
fn drift_is_corrected_keeping_the_weights() {
    let c = canary(json!({}));
    let (_, vs) = created(&c);
    let mut vs = serde_json::to_value(vs).unwrap();
    vs["spec"]["hosts"] = json!(["other"]);
    vs["spec"]["http"][0]["timeout"] = json!("1s");
    vs["spec"]["http"][0]["route"][0]["weight"] = json!(70);
    vs["spec"]["http"][0]["route"][1]["weight"] = json!(30);
    vs["spec"]["exportTo"] = json!(["."]);
    let caches = cached_with(vs);
    let writes = plan_reconcile(&caches, &c, &no_cookies()).unwrap();
    let Some(Write::PatchService {
        patch,
        save_original,
        ..
    }) = writes.last()
    else {
        panic!("no patch: {writes:?}");
    };
    assert!(!save_original, "Serin's own VirtualService saves nothing");
    assert_eq!(
        patch["spec"]["hosts"],
        json!(["app.example.com", "podinfo"])
    );
    assert_eq!(patch["spec"]["exportTo"], Value::Null);
    assert_eq!(patch["spec"]["http"][0]["timeout"], "30s");
    assert_eq!(patch["spec"]["http"][0]["route"][1]["weight"], 30);
}

#[test]
fn a_users_virtualservice_is_taken_over_with_its_original_saved() {
    let c = canary(json!({}));
    let users = json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "test", "labels": {"owner": "me"}},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}
    });
    let writes = plan_reconcile(&cached_with(users.clone()), &c, &no_cookies()).unwrap();
    let Some(Write::PatchService {
        patch,
        save_original,
        ..
    }) = writes.last()
    else {
        panic!("no patch: {writes:?}");
    };
    assert!(save_original);
    // A user's object with no split gets Flagger's initial one.
    assert_eq!(patch["spec"]["http"][0]["route"][0]["weight"], 100);
    // kubectl's last-applied already holds the original.
    let mut applied = users.clone();
    applied["metadata"]["annotations"] = json!({LAST_APPLIED: "{}"});
    let writes = plan_reconcile(&cached_with(applied), &c, &no_cookies()).unwrap();
    assert!(matches!(
        writes.last(),
        Some(Write::PatchService {
            save_original: false,
            ..
        })
    ));
    // A saved original is never overwritten.
    let mut saved = users;
    saved["metadata"]["annotations"] = json!({ORIGINAL: "{}"});
    let writes = plan_reconcile(&cached_with(saved), &c, &no_cookies()).unwrap();
    let Some(Write::PatchService {
        patch,
        save_original,
        ..
    }) = writes.last()
    else {
        panic!("no patch: {writes:?}");
    };
    assert!(!save_original);
    assert!(
        patch["metadata"]["annotations"].get(ORIGINAL).is_none(),
        "{patch}"
    );
}

#[test]
fn routes_without_our_destinations_are_an_error() {
    let c = canary(json!({}));
    let caches = cached_with(json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}
    }));
    assert_eq!(
        current_routes(&caches, &c).unwrap_err().to_string(),
        "VirtualService podinfo.test does not contain routes for podinfo-primary and podinfo-canary"
    );
    assert!(matches!(
        PortError::from(current_routes(&empty(), &c).unwrap_err()),
        PortError::NotFound(_)
    ));
}

#[test]
fn providers() {
    assert!(handles("istio") && handles(""));
    assert!(!handles("linkerd") && !handles("istio:v1"));
}

/// Every shared Canary Flagger would route through Istio (provider `istio`,
/// or none under the default `-mesh-provider`) passes the router's check
/// and builds a VirtualService that reads back its split.
#[test]
fn every_shared_istio_canary_builds() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/flagger-compat/manifests"
    );
    let mut built = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.lines().any(|l| l == "kind: Canary") {
            continue;
        }
        let mut c: Canary = crate::api::from_yaml_str(&text).unwrap();
        let provider = crate::canary_spec::provider_of(&c, "istio");
        if !handles(&provider) {
            continue;
        }
        c.metadata.namespace.get_or_insert_with(|| "test".into());
        crate::router::check(&c, &provider).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let vs = desired(&c, at(30), &no_cookies()).unwrap();
        assert_eq!(read_routes(&vs, &c), at(30), "{path:?}");
        built += 1;
    }
    assert!(
        built >= 5,
        "only {built} Istio Canaries among the shared manifests"
    );
}
