//! Istio's `VirtualService` as the simulator's rules (`routes.rs` holds the
//! rule model and the other routers' parsers).

use std::collections::BTreeMap;

use serde_json::Value;

use super::routes::{
    Backend, HeaderMatch, Match, Mirror, Pattern, Rule, SetCookie, StringMatch, items, text,
};

/// An Istio `StringMatch` (`exact`, `prefix` or `regex`, RE2 and matching the
/// whole value); an empty one only asks for the header to be present.
fn istio_string_match(v: &Value) -> StringMatch {
    if let Some(exact) = v["exact"].as_str() {
        StringMatch::Exact(exact.to_string())
    } else if let Some(prefix) = v["prefix"].as_str() {
        StringMatch::Prefix(prefix.to_string())
    } else if let Some(regex) = v["regex"].as_str() {
        StringMatch::Regex(Pattern::full(regex))
    } else {
        StringMatch::Regex(Pattern::full(".*"))
    }
}

/// An `HTTPMatchRequest`: its `headers` (a map, names in any case), all of
/// which must match. `uri`, `method`, `scheme`, `authority` and `port` are
/// taken to match `GET /`; `queryParams`, `sourceLabels`, `sourceNamespace`,
/// `gateways` and `withoutHeaders` (not modelled) never match: the simulated
/// clients are outside the mesh and send no query.
fn istio_match(m: &Value) -> Match {
    let headers = m["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(name, value)| HeaderMatch {
                    name: name.to_ascii_lowercase(),
                    value: istio_string_match(value),
                })
                .collect()
        })
        .unwrap_or_default();
    let present = |key: &str| match &m[key] {
        Value::Null => false,
        Value::Object(o) => !o.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    };
    let method_ok = m["method"].is_null() || istio_string_match(&m["method"]).is_match("GET");
    Match {
        headers,
        impossible: !method_ok
            || [
                "queryParams",
                "sourceLabels",
                "sourceNamespace",
                "gateways",
                "withoutHeaders",
            ]
            .iter()
            .any(|k| present(k)),
    }
}

/// The `Set-Cookie`s of an Istio `Headers` object's `response.add` and
/// `response.set` (maps of header name to value).
fn istio_set_cookies(headers: &Value) -> Vec<SetCookie> {
    let response = &headers["response"];
    ["add", "set"]
        .iter()
        .filter_map(|op| response[*op].as_object())
        .flat_map(|m| m.iter())
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| SetCookie::parse(text(value)))
        .collect()
}

/// A destination host as a Service name in the VirtualService's namespace:
/// `name`, `name.namespace`, `name.namespace.svc[.cluster.local]` all give
/// `name`; other hosts are kept whole.
pub fn istio_service(host: &str) -> String {
    let short = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))
        .unwrap_or(host);
    match short.split_once('.') {
        Some((name, namespace)) if !namespace.contains('.') => name.to_string(),
        Some(_) => host.to_string(),
        None => short.to_string(),
    }
}

/// The `spec` of a VirtualService given whole or as its spec.
fn vs_spec(vs: &Value) -> &Value {
    match vs.get("spec") {
        Some(spec) => spec,
        None => vs,
    }
}

/// One `spec.http[]` route as a rule: its `match[]` (any of them; none
/// matches everything), `route[]` destinations by `weight` (a single
/// destination without weight gets 100, otherwise a missing weight is 0),
/// `Set-Cookie`s of a destination's `headers.response` and of the route's,
/// `mirror` with `mirrorPercentage.value` (default 100%) and `mirrors[]`.
fn http_rule(http: &Value) -> Rule {
    let destinations = items(&http["route"]);
    let single = destinations.len() == 1;
    let backends = destinations
        .iter()
        .map(|d| Backend {
            service: istio_service(text(&d["destination"]["host"])),
            // Istio ignores the weight of a lone destination (proto3: 0 is
            // unset); Flagger's A/B writes the primary's weight, 0 during
            // the run, on its second route.
            weight: match single {
                true => 100.0,
                false => d["weight"].as_f64().unwrap_or(0.0),
            },
            set_cookies: istio_set_cookies(&d["headers"]),
        })
        .collect();
    let percent = http["mirrorPercentage"]["value"]
        .as_f64()
        .or_else(|| http["mirrorPercent"].as_f64())
        .unwrap_or(100.0);
    let mirror = http["mirror"]["host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(|host| Mirror {
            service: istio_service(host),
            percent,
        });
    let more = items(&http["mirrors"]).iter().map(|m| Mirror {
        service: istio_service(text(&m["destination"]["host"])),
        percent: m["percentage"]["value"].as_f64().unwrap_or(100.0),
    });
    let mirrors = mirror.into_iter().chain(more).collect();
    Rule {
        matches: items(&http["match"]).iter().map(istio_match).collect(),
        backends,
        mirrors,
        set_cookies: istio_set_cookies(&http["headers"]),
    }
}

/// An Istio `VirtualService` (`networking.istio.io/v1`, the whole object or
/// its `spec`): one rule per `spec.http[]` route, in order (Istio tries them
/// in order, first match wins); see [`http_rule`]. A route that delegates
/// (`delegate`) is a rule without backends here (see
/// [`virtualservice_rules_with`]). `tcp` and `tls` routes are not modelled.
pub fn virtualservice_rules(vs: &Value) -> Vec<Rule> {
    items(&vs_spec(vs)["http"]).iter().map(http_rule).collect()
}

/// The VirtualServices a root VirtualService's `http[].delegate` name, as
/// `(namespace, name)`; the namespace defaults to `namespace`, the root's.
pub fn virtualservice_delegates(vs: &Value, namespace: &str) -> Vec<(String, String)> {
    items(&vs_spec(vs)["http"])
        .iter()
        .filter_map(|http| {
            let name = http["delegate"]["name"].as_str()?;
            let ns = http["delegate"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            Some((ns.to_string(), name.to_string()))
        })
        .collect()
}

/// Both conditions: a request matches the root route's `root` and then
/// the delegate route's `delegate` (none on a side matches everything).
fn both(root: &[Match], delegate: &[Match]) -> Vec<Match> {
    match (root.is_empty(), delegate.is_empty()) {
        (true, _) => delegate.to_vec(),
        (_, true) => root.to_vec(),
        _ => root
            .iter()
            .flat_map(|r| {
                delegate.iter().map(move |d| Match {
                    headers: r.headers.iter().chain(&d.headers).cloned().collect(),
                    impossible: r.impossible || d.impossible,
                })
            })
            .collect(),
    }
}

/// [`virtualservice_rules`] of a root VirtualService whose delegating
/// routes are replaced by the routes of their delegate (Istio's VirtualService
/// chaining), found in `delegates` by `(namespace, name)` as
/// [`virtualservice_delegates`] gives them: each delegate route applies to
/// the requests that match both the root route and its own match. A
/// missing delegate contributes no rule (its requests fall through).
pub fn virtualservice_rules_with(
    vs: &Value,
    namespace: &str,
    delegates: &BTreeMap<(String, String), Value>,
) -> Vec<Rule> {
    items(&vs_spec(vs)["http"])
        .iter()
        .flat_map(|http| {
            let Some(name) = http["delegate"]["name"].as_str() else {
                return vec![http_rule(http)];
            };
            let ns = http["delegate"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            let root = http_rule(http);
            delegates
                .get(&(ns.to_string(), name.to_string()))
                .map(virtualservice_rules)
                .unwrap_or_default()
                .into_iter()
                .map(|rule| Rule {
                    matches: both(&root.matches, &rule.matches),
                    ..rule
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::routes::*;
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    fn services() -> Services {
        Services::new("podinfo")
    }

    fn canary(rules: &[Rule], request: &Headers) -> f64 {
        outcome(rules, &services(), request).served_by(Workload::Canary)
    }

    fn dest(host: &str, weight: u32) -> Value {
        json!({ "destination": { "host": host }, "weight": weight })
    }

    #[test]
    fn virtualservice_weights_and_hosts() {
        let vs = json!({ "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "spec": { "hosts": ["podinfo"], "http": [{ "route": [
                dest("podinfo-primary", 80),
                dest("podinfo-canary.test.svc.cluster.local", 20) ] }] } });
        let rules = virtualservice_rules(&vs);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].backends[1].service, "podinfo-canary");
        let o = outcome(&rules, &services(), &Headers::new());
        assert!((o.served_by(Workload::Canary) - 0.2).abs() < 1e-12, "{o:?}");
        assert!(
            (o.served_by(Workload::Primary) - 0.8).abs() < 1e-12,
            "{o:?}"
        );
        // A single destination without weight gets everything.
        let vs = json!({ "http": [{ "route": [{ "destination": { "host": "podinfo-canary.test" } }] }] });
        assert_eq!(canary(&virtualservice_rules(&vs), &Headers::new()), 1.0);
        // A lone destination gets everything, even at weight 0.
        let vs = json!({ "http": [{ "route": [dest("podinfo-primary", 0)] }] });
        let o = outcome(&virtualservice_rules(&vs), &services(), &Headers::new());
        assert_eq!(o.served_by(Workload::Primary), 1.0);
        // Flagger writes weight 0 explicitly.
        let vs = json!({ "http": [{ "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)] }] });
        assert_eq!(canary(&virtualservice_rules(&vs), &Headers::new()), 0.0);
        assert_eq!(istio_service("podinfo-canary.test.svc"), "podinfo-canary");
        assert_eq!(istio_service("podinfo"), "podinfo");
        assert_eq!(istio_service("app.example.com"), "app.example.com");
        // No http route: nothing routed.
        assert_eq!(
            outcome(
                &virtualservice_rules(&json!({ "spec": {} })),
                &services(),
                &Headers::new()
            )
            .unrouted,
            1.0
        );
    }

    #[test]
    fn virtualservice_header_matches() {
        let vs = json!({ "http": [
            { "match": [{ "headers": { "x-canary": { "exact": "insider" } } },
                        { "headers": { "User-Agent": { "regex": ".*Firefox.*" } } }],
              "route": [dest("podinfo-canary", 100)] },
            { "match": [{ "headers": { "x-user": { "prefix": "beta-" },
                                       "x-region": { "exact": "eu" } } }],
              "route": [dest("podinfo-canary", 100)] },
            { "match": [{ "queryParams": { "canary": { "exact": "1" } } },
                        { "sourceLabels": { "app": "frontend" } },
                        { "headers": { "x-canary": { "exact": "insider" } }, "method": { "exact": "POST" } }],
              "route": [dest("podinfo-canary", 100)] },
            { "route": [dest("podinfo-primary", 100)] }
        ]});
        let rules = virtualservice_rules(&vs);
        assert_eq!(rules.len(), 4);
        assert_eq!(canary(&rules, &headers(&[("x-canary", "insider")])), 1.0);
        assert_eq!(canary(&rules, &headers(&[("x-canary", "insiders")])), 0.0);
        assert_eq!(
            canary(&rules, &headers(&[("user-agent", "Mozilla Firefox/99")])),
            1.0
        );
        // RE2 full match.
        let full = json!({ "http": [
            { "match": [{ "headers": { "user-agent": { "regex": "Firefox" } } }],
              "route": [dest("podinfo-canary", 100)] },
            { "route": [dest("podinfo-primary", 100)] } ]});
        let full = virtualservice_rules(&full);
        assert_eq!(
            canary(&full, &headers(&[("user-agent", "Mozilla Firefox/99")])),
            0.0
        );
        assert_eq!(canary(&full, &headers(&[("user-agent", "Firefox")])), 1.0);
        // Prefix, and all conditions of one match.
        let beta_eu = headers(&[("x-user", "beta-42"), ("x-region", "eu")]);
        assert_eq!(canary(&rules, &beta_eu), 1.0);
        assert_eq!(canary(&rules, &headers(&[("x-user", "beta-42")])), 0.0);
        assert_eq!(
            canary(&rules, &headers(&[("x-user", "alpha"), ("x-region", "eu")])),
            0.0
        );
        // Query parameters, source labels, another method: never.
        assert!(rules[2].matches.iter().all(|m| m.impossible));
        assert_eq!(canary(&rules, &Headers::new()), 0.0);
        assert_eq!(
            outcome(&rules, &services(), &Headers::new()).served_by(Workload::Primary),
            1.0
        );
    }

    /// Flagger's A/B layout: http[0] with the analysis' match to the canary,
    /// http[1] (the service's match, here none) to the primary.
    #[test]
    fn virtualservice_ab_testing() {
        let vs = json!({ "spec": { "hosts": ["podinfo"], "http": [
            { "match": [{ "headers": { "x-canary": { "exact": "insider" } }, "uri": { "prefix": "/" } }],
              "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)] },
            { "route": [dest("podinfo-primary", 100)] }
        ]}});
        let rules = virtualservice_rules(&vs);
        let insider = headers(&[("x-canary", "insider")]);
        assert_eq!(canary(&rules, &insider), 1.0);
        assert_eq!(canary(&rules, &Headers::new()), 0.0);
        assert_eq!(
            outcome(&rules, &services(), &Headers::new()).served_by(Workload::Primary),
            1.0
        );
        // Weights within the matching route.
        let vs = json!({ "http": [
            { "match": [{ "headers": { "x-canary": { "exact": "insider" } } }],
              "route": [dest("podinfo-primary", 50), dest("podinfo-canary", 50)] },
            { "route": [dest("podinfo-primary", 100)] }
        ]});
        assert_eq!(canary(&virtualservice_rules(&vs), &insider), 0.5);
    }

    #[test]
    fn virtualservice_mirror() {
        let vs = json!({ "http": [{
            "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)],
            "mirror": { "host": "podinfo-canary" },
            "mirrorPercentage": { "value": 25.0 }
        }]});
        let o = outcome(&virtualservice_rules(&vs), &services(), &Headers::new());
        assert_eq!(o.served_by(Workload::Primary), 1.0);
        assert_eq!(o.served_by(Workload::Canary), 0.0);
        assert_eq!(o.mirrored_to(Workload::Canary), 0.25);
        let vs = json!({ "http": [{
            "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)],
            "mirror": { "host": "podinfo-canary.test.svc.cluster.local" }
        }]});
        let o = outcome(&virtualservice_rules(&vs), &services(), &Headers::new());
        assert_eq!(o.mirrored_to(Workload::Canary), 1.0);
    }

    /// Flagger's session affinity: the canary destination of the weighted
    /// route sets the cookie, a first route matching it goes to the canary.
    #[test]
    fn virtualservice_sticky_cookie() {
        let mut canary_dest = dest("podinfo-canary", 10);
        canary_dest["headers"] = json!({ "response": { "add": {
            "Set-Cookie": "flagger-cookie=Xyz12; Max-Age=21600" } } });
        let vs = json!({ "http": [
            { "match": [{ "headers": { "Cookie": { "regex": ".*flagger-cookie.*Xyz12.*" } } }],
              "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)] },
            { "route": [dest("podinfo-primary", 90), canary_dest] }
        ]});
        let rules = virtualservice_rules(&vs);
        assert_eq!(
            rules[1].backends[1].set_cookies,
            vec![SetCookie {
                name: "flagger-cookie".into(),
                value: "Xyz12".into(),
                max_age: Some(21600)
            }]
        );
        assert!(rules[1].backends[0].set_cookies.is_empty());
        assert!(rules[1].set_cookies.is_empty());
        let with = headers(&[("cookie", "other=1; flagger-cookie=Xyz12")]);
        assert_eq!(canary(&rules, &with), 1.0);
        let stale = headers(&[("cookie", "flagger-cookie=Old99")]);
        assert!((canary(&rules, &stale) - 0.1).abs() < 1e-12);
        assert!((canary(&rules, &Headers::new()) - 0.1).abs() < 1e-12);
    }

    /// After the run: the route matching the previous cookie deletes it
    /// (`Max-Age=-1` in the route's `headers.response.add`).
    #[test]
    fn virtualservice_cookie_expiry() {
        let vs = json!({ "http": [
            { "match": [{ "headers": { "Cookie": { "regex": ".*flagger-cookie.*Xyz12.*" } } }],
              "headers": { "response": { "add": { "Set-Cookie": "flagger-cookie=Xyz12; Max-Age=-1" } } },
              "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)] },
            { "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)] }
        ]});
        let rules = virtualservice_rules(&vs);
        let with = headers(&[("cookie", "flagger-cookie=Xyz12")]);
        let rule = route(&rules, &with).unwrap();
        assert_eq!(rule.set_cookies.len(), 1);
        assert_eq!(rule.set_cookies[0].max_age, Some(-1));
        assert!(
            route(&rules, &Headers::new())
                .unwrap()
                .set_cookies
                .is_empty()
        );
        assert_eq!(canary(&rules, &with), 0.0);
    }

    /// VirtualService chaining: the root's `/podinfo` route delegates to
    /// Flagger's delegate VirtualService (no hosts, no gateways); a route
    /// after it still applies, a missing delegate routes nothing.
    #[test]
    fn virtualservice_delegation() {
        let root = json!({ "spec": { "hosts": ["app.example.com"], "gateways": ["public-gateway"], "http": [
            { "match": [{ "uri": { "prefix": "/podinfo" } }], "rewrite": { "uri": "/" },
              "delegate": { "name": "podinfo", "namespace": "test" } },
            { "match": [{ "headers": { "x-other": { "exact": "1" } } }],
              "route": [dest("other", 100)] }
        ]}});
        assert_eq!(
            virtualservice_delegates(&root, "ns"),
            vec![("test".to_string(), "podinfo".to_string())]
        );
        let delegate = json!({ "spec": { "http": [
            { "match": [{ "headers": { "x-canary": { "exact": "insider" } } }],
              "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)] },
            { "route": [dest("podinfo-primary", 70), dest("podinfo-canary", 30)] }
        ]}});
        let found: BTreeMap<_, _> =
            [(("test".to_string(), "podinfo".to_string()), delegate)].into();
        let rules = virtualservice_rules_with(&root, "ns", &found);
        assert_eq!(rules.len(), 3, "{rules:#?}");
        assert_eq!(canary(&rules, &headers(&[("x-canary", "insider")])), 1.0);
        assert!((canary(&rules, &Headers::new()) - 0.3).abs() < 1e-12);
        // Without the delegate, only the other route is left.
        let rules = virtualservice_rules_with(&root, "ns", &BTreeMap::new());
        assert_eq!(rules.len(), 1);
        assert_eq!(outcome(&rules, &services(), &Headers::new()).unrouted, 1.0);
        // The root's own conditions still apply under the delegate's.
        let root = json!({ "http": [{ "match": [{ "headers": { "x-region": { "exact": "eu" } } }],
            "delegate": { "name": "podinfo" } }] });
        let found: BTreeMap<_, _> = [(
            ("ns".to_string(), "podinfo".to_string()),
            json!({ "http": [{ "route": [dest("podinfo-canary", 100)] }] }),
        )]
        .into();
        let rules = virtualservice_rules_with(&root, "ns", &found);
        assert_eq!(canary(&rules, &headers(&[("x-region", "eu")])), 1.0);
        assert_eq!(canary(&rules, &Headers::new()), 0.0);
    }
}
