//! Routing as the simulator models it, whatever the router: a routing object
//! becomes an ordered list of [`Rule`]s (header matches, weighted backends,
//! mirrors, response `Set-Cookie`s), and one evaluator picks the rule a
//! request takes: the first rule with a matching match. Each router has a
//! parser from its object to rules: [`httproute_rules`] (Gateway API),
//! [`trafficsplit_rules`] (SMI), [`nginx_rules`] (ingress-nginx's canary
//! annotations) and `istio::virtualservice_rules` (Istio, in `istio.rs`).
//!
//! Every simulated request is `GET /` with the headers of its client class
//! (and the cookies its client holds): path matches are ignored, and a match
//! on query parameters never matches.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// The request headers, names in lower case.
pub type Headers = BTreeMap<String, String>;

/// The two workloads behind the backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// `<target>-primary`.
    Primary,
    /// The target Deployment `<target>`.
    Canary,
}

/// Which workload each Service selects, as Flagger names them:
/// `<service>-primary` and the apex `<service>` select the primary,
/// `<service>-canary` the target. Other Services select nothing here.
#[derive(Clone, Debug, PartialEq)]
pub struct Services {
    pub apex: String,
}

impl Services {
    pub fn new(service: &str) -> Services {
        Services {
            apex: service.to_string(),
        }
    }

    pub fn primary(&self) -> String {
        format!("{}-primary", self.apex)
    }

    pub fn canary(&self) -> String {
        format!("{}-canary", self.apex)
    }

    pub fn workload(&self, service: &str) -> Option<Workload> {
        if service == self.canary() {
            Some(Workload::Canary)
        } else if service == self.primary() || service == self.apex {
            Some(Workload::Primary)
        } else {
            None
        }
    }
}

/// A regular expression, compared by its source.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub source: String,
    /// Whether the whole value must match (Envoy's, hence Gateway API's and
    /// Istio's, semantics) or any part of it (ingress-nginx's Go `MatchString`).
    pub full: bool,
    compiled: Option<Regex>,
}

impl Pattern {
    /// Matches the whole value. An invalid expression matches nothing.
    pub fn full(source: &str) -> Pattern {
        Pattern {
            source: source.to_string(),
            full: true,
            compiled: Regex::new(&format!("^(?:{source})$")).ok(),
        }
    }

    /// Matches any part of the value.
    pub fn search(source: &str) -> Pattern {
        Pattern {
            source: source.to_string(),
            full: false,
            compiled: Regex::new(source).ok(),
        }
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.compiled.as_ref().is_some_and(|r| r.is_match(value))
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source && self.full == other.full
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(Pattern),
}

impl StringMatch {
    pub fn is_match(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(v) => v == value,
            StringMatch::Prefix(p) => value.starts_with(p.as_str()),
            StringMatch::Regex(p) => p.is_match(value),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HeaderMatch {
    /// Lower case.
    pub name: String,
    pub value: StringMatch,
}

impl HeaderMatch {
    pub fn exact(name: &str, value: &str) -> HeaderMatch {
        HeaderMatch {
            name: name.to_ascii_lowercase(),
            value: StringMatch::Exact(value.to_string()),
        }
    }

    pub fn regex(name: &str, pattern: &str) -> HeaderMatch {
        HeaderMatch {
            name: name.to_ascii_lowercase(),
            value: StringMatch::Regex(Pattern::full(pattern)),
        }
    }
}

/// All its conditions hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Match {
    pub headers: Vec<HeaderMatch>,
    /// A condition the simulated `GET /` never meets (a query parameter,
    /// another method).
    pub impossible: bool,
}

impl Match {
    pub fn headers(headers: Vec<HeaderMatch>) -> Match {
        Match {
            headers,
            impossible: false,
        }
    }

    pub fn is_match(&self, request: &Headers) -> bool {
        !self.impossible
            && self.headers.iter().all(|h| {
                request
                    .get(&h.name)
                    .is_some_and(|value| h.value.is_match(value))
            })
    }
}

/// A `Set-Cookie` a response carries.
#[derive(Clone, Debug, PartialEq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// `Max-Age` in seconds; zero or less deletes the cookie, none keeps it
    /// for the session (here: for ever).
    pub max_age: Option<i64>,
}

impl SetCookie {
    /// Parses a `Set-Cookie` header value: `name=value; Max-Age=N; ...`.
    pub fn parse(header: &str) -> Option<SetCookie> {
        let mut parts = header.split(';');
        let (name, value) = parts.next()?.trim().split_once('=')?;
        let max_age = parts
            .filter_map(|attr| attr.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("max-age"))
            .and_then(|(_, v)| v.trim().parse().ok());
        Some(SetCookie {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
            max_age,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Backend {
    pub service: String,
    pub weight: f64,
    /// `Set-Cookie`s added to the responses of this backend.
    pub set_cookies: Vec<SetCookie>,
}

impl Backend {
    pub fn new(service: &str, weight: f64) -> Backend {
        Backend {
            service: service.to_string(),
            weight,
            set_cookies: Vec::new(),
        }
    }
}

/// A copy of `percent`% of the rule's requests also goes to `service`; its
/// response is dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct Mirror {
    pub service: String,
    pub percent: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rule {
    /// Any of them; none matches every request.
    pub matches: Vec<Match>,
    /// Weighted: each gets `weight / sum of weights` of the rule's requests.
    pub backends: Vec<Backend>,
    pub mirrors: Vec<Mirror>,
    /// `Set-Cookie`s added to every response of this rule.
    pub set_cookies: Vec<SetCookie>,
}

impl Rule {
    /// A rule for every request, to weighted backends.
    pub fn weighted(backends: &[(&str, f64)]) -> Rule {
        Rule {
            backends: backends.iter().map(|(s, w)| Backend::new(s, *w)).collect(),
            ..Rule::default()
        }
    }

    pub fn when(mut self, m: Match) -> Rule {
        self.matches.push(m);
        self
    }

    pub fn is_match(&self, request: &Headers) -> bool {
        self.matches.is_empty() || self.matches.iter().any(|m| m.is_match(request))
    }

    /// Each backend with a positive weight and its share of the rule's
    /// requests; empty when no weight is positive (the gateway answers 500).
    pub fn split(&self) -> Vec<(&Backend, f64)> {
        let total: f64 = self.backends.iter().map(|b| b.weight.max(0.0)).sum();
        if total <= 0.0 {
            return Vec::new();
        }
        self.backends
            .iter()
            .filter(|b| b.weight > 0.0)
            .map(|b| (b, b.weight / total))
            .collect()
    }
}

/// The rule a request takes: the first whose match matches.
pub fn route<'a>(rules: &'a [Rule], request: &Headers) -> Option<&'a Rule> {
    rules.iter().find(|r| r.is_match(request))
}

/// Where a request's share of traffic ends up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Client requests per (workload, Service) they reach, as shares.
    pub served: BTreeMap<(Workload, String), f64>,
    /// Mirrored copies per (workload, Service), as shares of the requests.
    pub mirrored: BTreeMap<(Workload, String), f64>,
    /// No rule, no positive weight, or a Service that selects neither workload.
    pub unrouted: f64,
}

impl Outcome {
    pub fn served_by(&self, w: Workload) -> f64 {
        self.served
            .iter()
            .filter(|((x, _), _)| *x == w)
            .map(|(_, v)| v)
            .sum()
    }

    pub fn mirrored_to(&self, w: Workload) -> f64 {
        self.mirrored
            .iter()
            .filter(|((x, _), _)| *x == w)
            .map(|(_, v)| v)
            .sum()
    }
}

/// The expected outcome of one request with `request`'s headers.
pub fn outcome(rules: &[Rule], services: &Services, request: &Headers) -> Outcome {
    let mut out = Outcome::default();
    let Some(rule) = route(rules, request) else {
        out.unrouted = 1.0;
        return out;
    };
    let split = rule.split();
    if split.is_empty() {
        out.unrouted = 1.0;
    }
    for (backend, share) in split {
        match services.workload(&backend.service) {
            Some(w) => *out.served.entry((w, backend.service.clone())).or_default() += share,
            None => out.unrouted += share,
        }
    }
    for mirror in &rule.mirrors {
        if let Some(w) = services.workload(&mirror.service) {
            *out.mirrored.entry((w, mirror.service.clone())).or_default() +=
                mirror.percent.clamp(0.0, 100.0) / 100.0;
        }
    }
    out
}

// ---- Gateway API HTTPRoute --------------------------------------------------

pub(super) fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

pub(super) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The `Set-Cookie`s of `ResponseHeaderModifier` filters (`add` and `set`).
fn set_cookies(filters: &Value) -> Vec<SetCookie> {
    items(filters)
        .iter()
        .filter(|f| f["type"] == "ResponseHeaderModifier")
        .flat_map(|f| {
            let m = &f["responseHeaderModifier"];
            items(&m["add"]).iter().chain(items(&m["set"]))
        })
        .filter(|h| text(&h["name"]).eq_ignore_ascii_case("set-cookie"))
        .filter_map(|h| SetCookie::parse(text(&h["value"])))
        .collect()
}

/// The `RequestMirror` filters: `percent`, or `fraction`, else 100%.
fn mirrors(filters: &Value) -> Vec<Mirror> {
    items(filters)
        .iter()
        .filter(|f| f["type"] == "RequestMirror")
        .map(|f| {
            let m = &f["requestMirror"];
            let percent = match (m["percent"].as_f64(), m["fraction"].is_object()) {
                (Some(p), _) => p,
                (None, true) => {
                    let numerator = m["fraction"]["numerator"].as_f64().unwrap_or(0.0);
                    let denominator = m["fraction"]["denominator"].as_f64().unwrap_or(100.0);
                    match denominator > 0.0 {
                        true => 100.0 * numerator / denominator,
                        false => 0.0,
                    }
                }
                (None, false) => 100.0,
            };
            Mirror {
                service: text(&m["backendRef"]["name"]).to_string(),
                percent,
            }
        })
        .collect()
}

fn httproute_match(m: &Value) -> Match {
    let headers = items(&m["headers"])
        .iter()
        .map(|h| {
            let (name, value) = (text(&h["name"]), text(&h["value"]));
            match h["type"].as_str() {
                Some("RegularExpression") => HeaderMatch::regex(name, value),
                _ => HeaderMatch::exact(name, value),
            }
        })
        .collect();
    let method = m["method"].as_str();
    Match {
        headers,
        impossible: !items(&m["queryParams"]).is_empty() || method.is_some_and(|x| x != "GET"),
    }
}

/// A Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`, the whole
/// object or its `spec`) as rules in the order a gateway tries them: one rule
/// per match, those with more header matches first (the spec's precedence,
/// approximated), then in the route's order. A rule without matches matches
/// every request.
pub fn httproute_rules(route: &Value) -> Vec<Rule> {
    let spec = match route.get("spec") {
        Some(spec) => spec,
        None => route,
    };
    let mut rules: Vec<(usize, Rule)> = Vec::new();
    for r in items(&spec["rules"]) {
        let rule = Rule {
            matches: Vec::new(),
            backends: items(&r["backendRefs"])
                .iter()
                .map(|b| Backend {
                    service: text(&b["name"]).to_string(),
                    weight: b["weight"].as_f64().unwrap_or(1.0),
                    set_cookies: set_cookies(&b["filters"]),
                })
                .collect(),
            mirrors: mirrors(&r["filters"]),
            set_cookies: set_cookies(&r["filters"]),
        };
        let matches = items(&r["matches"]);
        if matches.is_empty() {
            rules.push((0, rule));
            continue;
        }
        for m in matches {
            let m = httproute_match(m);
            rules.push((m.headers.len(), rule.clone().when(m)));
        }
    }
    // Stable: equal precedence keeps the route's order.
    rules.sort_by_key(|(headers, _)| std::cmp::Reverse(*headers));
    rules.into_iter().map(|(_, r)| r).collect()
}

// ---- SMI TrafficSplit -------------------------------------------------------

/// A TrafficSplit weight: a number, an integer string, or (v1alpha1) a
/// Quantity such as `500m`.
pub fn split_weight(v: &Value) -> f64 {
    if let Some(n) = v.as_f64() {
        return n;
    }
    let s = text(v).trim();
    match s.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map(|m| m / 1000.0).unwrap_or(0.0),
        None => s.parse().unwrap_or(0.0),
    }
}

/// An SMI `TrafficSplit` (the whole object or its `spec`): one rule for every
/// request, to `spec.backends[]` by weight. `matches` (v1alpha3's
/// HTTPRouteGroups) are not modelled.
pub fn trafficsplit_rules(split: &Value) -> Vec<Rule> {
    let spec = match split.get("spec") {
        Some(spec) => spec,
        None => split,
    };
    vec![Rule {
        backends: items(&spec["backends"])
            .iter()
            .map(|b| Backend::new(text(&b["service"]), split_weight(&b["weight"])))
            .collect(),
        ..Rule::default()
    }]
}

// ---- ingress-nginx canary annotations ---------------------------------------

/// ingress-nginx's canary rules from the canary Ingress' annotations
/// (`prefix` stripped by the caller's lookup): `canary-by-header` (with
/// `-value` exact, `-pattern` a regular expression, or neither:
/// `always`/`never`), then `canary-by-cookie` (`always`/`never`), then
/// `canary-weight` (of `canary-weight-total`, default 100) between `stable`
/// and `canary`. Without `canary: "true"` everything goes to `stable`.
pub fn nginx_rules(
    annotation: &dyn Fn(&str) -> Option<String>,
    stable: &str,
    canary: &str,
) -> Vec<Rule> {
    if annotation("canary").as_deref() != Some("true") {
        return vec![Rule::weighted(&[(stable, 1.0)])];
    }
    let to_canary = || Rule::weighted(&[(canary, 1.0)]);
    let to_stable = || Rule::weighted(&[(stable, 1.0)]);
    let mut rules = Vec::new();
    if let Some(header) = annotation("canary-by-header").filter(|h| !h.is_empty()) {
        match (
            annotation("canary-by-header-value").filter(|v| !v.is_empty()),
            annotation("canary-by-header-pattern").filter(|v| !v.is_empty()),
        ) {
            (Some(value), _) => {
                rules.push(
                    to_canary().when(Match::headers(vec![HeaderMatch::exact(&header, &value)])),
                );
            }
            (None, Some(pattern)) => {
                let m = HeaderMatch {
                    name: header.to_ascii_lowercase(),
                    value: StringMatch::Regex(Pattern::search(&pattern)),
                };
                rules.push(to_canary().when(Match::headers(vec![m])));
            }
            (None, None) => {
                rules.push(
                    to_canary().when(Match::headers(vec![HeaderMatch::exact(&header, "always")])),
                );
                rules.push(
                    to_stable().when(Match::headers(vec![HeaderMatch::exact(&header, "never")])),
                );
            }
        }
    }
    if let Some(cookie) = annotation("canary-by-cookie").filter(|c| !c.is_empty()) {
        for (value, rule) in [("always", to_canary()), ("never", to_stable())] {
            let pattern = format!("(^|.*;\\s*){}={value}(;.*)?", regex::escape(&cookie));
            rules.push(rule.when(Match::headers(vec![HeaderMatch::regex("cookie", &pattern)])));
        }
    }
    let weight: f64 = annotation("canary-weight")
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0.0);
    let total: f64 = annotation("canary-weight-total")
        .and_then(|w| w.trim().parse().ok())
        .filter(|t: &f64| *t > 0.0)
        .unwrap_or(100.0);
    let weight = weight.clamp(0.0, total);
    rules.push(Rule::weighted(&[
        (stable, total - weight),
        (canary, weight),
    ]));
    rules
}

#[cfg(test)]
mod tests {
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

    fn backend(name: &str, weight: u32) -> Value {
        json!({ "name": name, "port": 9898, "weight": weight })
    }

    #[test]
    fn weights_split_within_the_rule() {
        let route = json!({ "spec": { "rules": [
            { "backendRefs": [backend("podinfo-primary", 90), backend("podinfo-canary", 10)] }
        ]}});
        let rules = httproute_rules(&route);
        let o = outcome(&rules, &services(), &Headers::new());
        assert!((o.served_by(Workload::Canary) - 0.1).abs() < 1e-12, "{o:?}");
        assert!(
            (o.served_by(Workload::Primary) - 0.9).abs() < 1e-12,
            "{o:?}"
        );
        assert_eq!(o.unrouted, 0.0);
        // weight defaults to 1; weight 0 gets nothing.
        let route = json!({ "spec": { "rules": [{ "backendRefs": [
            { "name": "podinfo-primary" }, { "name": "podinfo-canary" }
        ]}]}});
        assert_eq!(canary(&httproute_rules(&route), &Headers::new()), 0.5);
        let route = json!({ "spec": { "rules": [{ "backendRefs": [
            backend("podinfo-primary", 100), backend("podinfo-canary", 0)
        ]}]}});
        assert_eq!(canary(&httproute_rules(&route), &Headers::new()), 0.0);
        // Every weight 0, or an unknown Service: not served by a workload.
        let route = json!({ "spec": { "rules": [{ "backendRefs": [
            backend("podinfo-primary", 0), backend("podinfo-canary", 0)
        ]}]}});
        assert_eq!(
            outcome(&httproute_rules(&route), &services(), &Headers::new()).unrouted,
            1.0
        );
        let route = json!({ "spec": { "rules": [{ "backendRefs": [backend("other", 1)] }]}});
        assert_eq!(
            outcome(&httproute_rules(&route), &services(), &Headers::new()).unrouted,
            1.0
        );
        // No rule matches: unrouted (404).
        assert_eq!(outcome(&[], &services(), &Headers::new()).unrouted, 1.0);
    }

    #[test]
    fn header_matches_exact_and_regex() {
        let route = json!({ "spec": { "rules": [
            { "matches": [{ "headers": [{ "name": "X-Canary", "value": "insider" }] }],
              "backendRefs": [backend("podinfo-canary", 1)] },
            { "matches": [{ "headers": [
                { "name": "user-agent", "type": "RegularExpression", "value": ".*Firefox.*" }] }],
              "backendRefs": [backend("podinfo-canary", 1)] },
            { "backendRefs": [backend("podinfo-primary", 1)] }
        ]}});
        let rules = httproute_rules(&route);
        assert_eq!(canary(&rules, &headers(&[("x-canary", "insider")])), 1.0);
        assert_eq!(canary(&rules, &headers(&[("x-canary", "Insider")])), 0.0);
        assert_eq!(canary(&rules, &headers(&[("x-canary", "insiders")])), 0.0);
        assert_eq!(
            canary(
                &rules,
                &headers(&[("User-Agent", "Mozilla/5.0 Firefox/99")])
            ),
            1.0
        );
        assert_eq!(canary(&rules, &headers(&[("user-agent", "curl/8")])), 0.0);
        assert_eq!(canary(&rules, &Headers::new()), 0.0);
        // Flagger's cookie match: the regex must match the whole header.
        let m = HeaderMatch::regex("cookie", "^(.*?;)?(type=insider)(;.*)?$");
        let cookie =
            |value: &str| Match::headers(vec![m.clone()]).is_match(&headers(&[("cookie", value)]));
        assert!(cookie("type=insider"));
        assert!(cookie("a=b;type=insider;c=d"));
        assert!(!cookie("type=outsider"));
        // As in Envoy: the space a browser puts after `;` defeats this one.
        assert!(!cookie("a=b; type=insider"));
        // A query parameter or another method never matches `GET /`.
        let route = json!({ "spec": { "rules": [
            { "matches": [{ "queryParams": [{ "name": "canary", "value": "1" }] },
                          { "method": "POST" }],
              "backendRefs": [backend("podinfo-canary", 1)] },
            { "backendRefs": [backend("podinfo-primary", 1)] }
        ]}});
        assert_eq!(canary(&httproute_rules(&route), &Headers::new()), 0.0);
    }

    /// Flagger's A/B layout: rule 0 matches the insider header and sends it
    /// all to the canary, rule 1 the rest to the primary. Listed the other
    /// way round, the header rule still wins (more header matches first).
    #[test]
    fn ab_testing_two_rules() {
        let ab = json!([
            { "matches": [{ "path": { "type": "PathPrefix", "value": "/" },
                            "headers": [{ "name": "x-canary", "type": "Exact", "value": "insider" }] }],
              "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)] },
            { "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
              "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)] }
        ]);
        let insider = headers(&[("x-canary", "insider")]);
        for rules in [ab.clone(), json!([ab[1], ab[0]])] {
            let rules = httproute_rules(&json!({ "spec": { "rules": rules } }));
            assert_eq!(canary(&rules, &insider), 1.0);
            assert_eq!(canary(&rules, &Headers::new()), 0.0);
            assert_eq!(
                outcome(&rules, &services(), &Headers::new()).served_by(Workload::Primary),
                1.0
            );
        }
    }

    /// Flagger's session affinity: the canary backend of the weighted rule
    /// sets the cookie, a first rule sends the cookie to the canary.
    #[test]
    fn sticky_cookie_rules() {
        let cookie_rule = json!({
            "matches": [{ "headers": [{ "name": "Cookie", "type": "RegularExpression",
                                        "value": ".*flagger-cookie.*Xyz12.*" }] }],
            "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)]
        });
        let mut canary_ref = backend("podinfo-canary", 10);
        canary_ref["filters"] = json!([{ "type": "ResponseHeaderModifier",
            "responseHeaderModifier": { "add": [
                { "name": "Set-Cookie", "value": "flagger-cookie=Xyz12; Max-Age=21600" }] } }]);
        let weighted = json!({ "backendRefs": [backend("podinfo-primary", 90), canary_ref] });
        let rules = httproute_rules(&json!({ "spec": { "rules": [cookie_rule, weighted] } }));
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[1].backends[1].set_cookies,
            vec![SetCookie {
                name: "flagger-cookie".into(),
                value: "Xyz12".into(),
                max_age: Some(21600)
            }]
        );
        assert!(rules[1].backends[0].set_cookies.is_empty());
        let with = headers(&[("cookie", "other=1; flagger-cookie=Xyz12")]);
        assert_eq!(canary(&rules, &with), 1.0);
        let stale = headers(&[("cookie", "flagger-cookie=Old99")]);
        assert!((canary(&rules, &stale) - 0.1).abs() < 1e-12);
        assert!((canary(&rules, &Headers::new()) - 0.1).abs() < 1e-12);
    }

    /// After the run, a rule matching the previous cookie answers from the
    /// primary with `Max-Age=-1`, which deletes it.
    #[test]
    fn cookie_expiry_rule() {
        let expire = json!({
            "matches": [{ "headers": [{ "name": "Cookie", "type": "RegularExpression",
                                        "value": ".*flagger-cookie.*Xyz12.*" }] }],
            "filters": [{ "type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "add": [{ "name": "Set-Cookie", "value": "flagger-cookie=Xyz12; Max-Age=-1" }] } }],
            "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]
        });
        let rest = json!({ "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)] });
        let rules = httproute_rules(&json!({ "spec": { "rules": [expire, rest] } }));
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
        assert_eq!(
            SetCookie::parse("a=b; Path=/; max-age=0").map(|c| c.max_age),
            Some(Some(0))
        );
        assert_eq!(SetCookie::parse("a=b").map(|c| c.max_age), Some(None));
        assert_eq!(SetCookie::parse("garbage"), None);
    }

    #[test]
    fn mirror_copies_without_changing_the_response() {
        let route = json!({ "spec": { "rules": [{
            "filters": [{ "type": "RequestMirror",
                          "requestMirror": { "backendRef": { "name": "podinfo-canary", "port": 9898 } } }],
            "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]
        }]}});
        let o = outcome(&httproute_rules(&route), &services(), &Headers::new());
        assert_eq!(o.served_by(Workload::Primary), 1.0);
        assert_eq!(o.served_by(Workload::Canary), 0.0);
        assert_eq!(o.mirrored_to(Workload::Canary), 1.0);
        assert_eq!(o.mirrored_to(Workload::Primary), 0.0);
        let half = json!({ "spec": { "rules": [{
            "filters": [{ "type": "RequestMirror", "requestMirror": {
                "backendRef": { "name": "podinfo-canary" },
                "fraction": { "numerator": 1, "denominator": 2 } } }],
            "backendRefs": [backend("podinfo-primary", 1)]
        }]}});
        let o = outcome(&httproute_rules(&half), &services(), &Headers::new());
        assert_eq!(o.mirrored_to(Workload::Canary), 0.5);
    }

    #[test]
    fn trafficsplit_weights() {
        let split = json!({ "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
            "spec": { "service": "podinfo", "backends": [
                { "service": "podinfo-primary", "weight": 75 },
                { "service": "podinfo-canary", "weight": 25 } ] } });
        let rules = trafficsplit_rules(&split);
        assert_eq!(canary(&rules, &Headers::new()), 0.25);
        // v1alpha1 Quantities.
        let split = json!({ "spec": { "service": "podinfo", "backends": [
            { "service": "podinfo-primary", "weight": "900m" },
            { "service": "podinfo-canary", "weight": "100m" } ] } });
        assert!((canary(&trafficsplit_rules(&split), &Headers::new()) - 0.1).abs() < 1e-12);
        let split = json!({ "spec": { "service": "podinfo", "backends": [
            { "service": "podinfo-primary", "weight": "50" },
            { "service": "podinfo-canary", "weight": "50" } ] } });
        assert_eq!(canary(&trafficsplit_rules(&split), &Headers::new()), 0.5);
        assert_eq!(split_weight(&json!(7)), 7.0);
        assert_eq!(split_weight(&json!("nonsense")), 0.0);
    }

    #[test]
    fn nginx_annotations() {
        let rules_of = |pairs: &[(&str, &str)]| {
            let map: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            nginx_rules(&|k| map.get(k).cloned(), "podinfo", "podinfo-canary")
        };
        let insider = headers(&[("x-user", "insider")]);
        let weighted = rules_of(&[("canary", "true"), ("canary-weight", "20")]);
        assert_eq!(canary(&weighted, &Headers::new()), 0.2);
        assert_eq!(canary(&weighted, &insider), 0.2);
        assert_eq!(
            canary(&rules_of(&[("canary-weight", "20")]), &Headers::new()),
            0.0
        );
        let by_value = rules_of(&[
            ("canary", "true"),
            ("canary-weight", "0"),
            ("canary-by-header", "x-user"),
            ("canary-by-header-value", "insider"),
        ]);
        assert_eq!(canary(&by_value, &insider), 1.0);
        assert_eq!(canary(&by_value, &Headers::new()), 0.0);
        let by_pattern = rules_of(&[
            ("canary", "true"),
            ("canary-by-header", "x-user"),
            ("canary-by-header-pattern", "ins.*"),
        ]);
        assert_eq!(canary(&by_pattern, &insider), 1.0);
        let always = rules_of(&[
            ("canary", "true"),
            ("canary-weight", "100"),
            ("canary-by-header", "x-user"),
        ]);
        assert_eq!(canary(&always, &headers(&[("x-user", "always")])), 1.0);
        assert_eq!(canary(&always, &headers(&[("x-user", "never")])), 0.0);
        assert_eq!(canary(&always, &insider), 1.0);
        let cookie = rules_of(&[("canary", "true"), ("canary-by-cookie", "canary")]);
        assert_eq!(
            canary(&cookie, &headers(&[("cookie", "a=1; canary=always")])),
            1.0
        );
        assert_eq!(
            canary(&cookie, &headers(&[("cookie", "canary=never")])),
            0.0
        );
        assert_eq!(
            canary(&cookie, &headers(&[("cookie", "xcanary=always")])),
            0.0
        );
    }
}
