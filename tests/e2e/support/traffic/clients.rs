//! The simulated clients: classes of requests, each a share of the traffic
//! with the headers it sends. A class is either anonymous traffic, routed
//! as expected values (a fraction of a request goes each way, so series are
//! smooth and shares exact), or a population of sticky clients, each with a
//! cookie jar: a client keeps the cookies its responses set (`Set-Cookie`
//! with `Max-Age`; `Max-Age` zero or less deletes one) and sends them back,
//! and its requests are whole requests, each routed to one backend.

use std::collections::BTreeMap;

use super::routes::{Headers, Outcome, Rule, Services, SetCookie, Workload, outcome, route};

/// A class of simulated clients.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientClass {
    pub name: String,
    /// Its share of the requests (shares are normalised by their sum).
    pub share: f64,
    /// The headers its requests carry (a `cookie` header here is sent
    /// before the jar's cookies).
    pub headers: Vec<(String, String)>,
    /// `Some(n)`: `n` clients with cookie jars sharing the class' requests.
    /// `None`: anonymous traffic that keeps no cookie (like `hey` or `curl`).
    pub clients: Option<usize>,
}

impl ClientClass {
    /// Anonymous requests without any special header.
    pub fn plain(share: f64) -> ClientClass {
        ClientClass {
            name: "plain".into(),
            share,
            headers: Vec::new(),
            clients: None,
        }
    }

    /// Anonymous requests carrying `header: value` (A/B testing insiders).
    pub fn header(name: &str, share: f64, header: &str, value: &str) -> ClientClass {
        ClientClass {
            name: name.into(),
            share,
            headers: vec![(header.to_ascii_lowercase(), value.to_string())],
            clients: None,
        }
    }

    /// `clients` sticky clients with cookie jars (session affinity).
    pub fn sticky(share: f64, clients: usize) -> ClientClass {
        ClientClass {
            name: "sticky".into(),
            share,
            headers: Vec::new(),
            clients: Some(clients),
        }
    }

    pub fn named(mut self, name: &str) -> ClientClass {
        self.name = name.into();
        self
    }
}

/// What one class did on the last tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassObserved {
    pub name: String,
    /// Its normalised share of all requests.
    pub share: f64,
    /// Requests it sent on the last tick (fractional for anonymous classes).
    pub requests: f64,
    /// The share of its requests the route sends to the canary, as the
    /// route and (sticky clients) the jars stood at the end of the tick.
    pub canary_share: f64,
    /// The share of its requests that the route mirrors to the canary.
    pub mirror_share: f64,
    /// The share of its requests no workload serves (no rule, no weight, or
    /// an unknown Service).
    pub unrouted_share: f64,
}

/// Request counts of the sticky clients.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StickyCounts {
    pub requests: u64,
    /// Of `requests`, those the canary answered.
    pub canary: u64,
    /// Requests sent while holding a canary cookie.
    pub with_canary_cookie: u64,
    /// Of `with_canary_cookie`, those the canary answered.
    pub with_canary_cookie_to_canary: u64,
    /// Cookies stored (new or replaced) from `Set-Cookie`s.
    pub cookies_set: u64,
    /// Cookies deleted by a `Set-Cookie` with `Max-Age` zero or less.
    pub cookies_expired: u64,
    /// Cookies dropped because their `Max-Age` ran out.
    pub cookies_timed_out: u64,
}

impl StickyCounts {
    /// The share of the requests answered by the canary.
    pub fn canary_share(&self) -> Option<f64> {
        ratio(self.canary, self.requests)
    }

    /// The share of the requests sent with a canary cookie that the canary
    /// answered (1.0 when session affinity holds).
    pub fn cookie_canary_share(&self) -> Option<f64> {
        ratio(self.with_canary_cookie_to_canary, self.with_canary_cookie)
    }

    fn add(&mut self, o: &StickyCounts) {
        self.requests += o.requests;
        self.canary += o.canary;
        self.with_canary_cookie += o.with_canary_cookie;
        self.with_canary_cookie_to_canary += o.with_canary_cookie_to_canary;
        self.cookies_set += o.cookies_set;
        self.cookies_expired += o.cookies_expired;
        self.cookies_timed_out += o.cookies_timed_out;
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    match whole {
        0 => None,
        _ => Some(part as f64 / whole as f64),
    }
}

/// The sticky clients (of every sticky class together).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StickyObserved {
    pub clients: usize,
    /// Clients holding a cookie that a canary response set.
    pub with_canary_cookie: usize,
    /// Clients holding any cookie.
    pub with_cookie: usize,
    /// `name=value` -> how many clients hold it.
    pub cookies: BTreeMap<String, usize>,
    /// The last tick.
    pub tick: StickyCounts,
    /// Since the simulator started.
    pub total: StickyCounts,
}

#[derive(Clone, Debug, PartialEq)]
struct Cookie {
    value: String,
    /// Simulated time at which it expires.
    expires: Option<f64>,
    /// Set by a response the canary served.
    from_canary: bool,
}

#[derive(Clone, Debug, Default)]
struct Client {
    jar: BTreeMap<String, Cookie>,
    /// Fractional requests owed, sent once whole.
    credit: f64,
}

impl Client {
    fn holds_canary_cookie(&self) -> bool {
        self.jar.values().any(|c| c.from_canary)
    }

    fn headers(&self, class: &ClientClass) -> Headers {
        let mut headers = class_headers(class);
        if !self.jar.is_empty() {
            let jar = self
                .jar
                .iter()
                .map(|(name, c)| format!("{name}={}", c.value))
                .collect::<Vec<_>>()
                .join("; ");
            let cookie = match headers.get("cookie") {
                Some(fixed) => format!("{fixed}; {jar}"),
                None => jar,
            };
            headers.insert("cookie".into(), cookie);
        }
        headers
    }

    /// Applies a response's `Set-Cookie`s.
    fn store(&mut self, set: &SetCookie, from_canary: bool, now: f64, counts: &mut StickyCounts) {
        match set.max_age {
            Some(age) if age <= 0 => {
                if self.jar.remove(&set.name).is_some() {
                    counts.cookies_expired += 1;
                }
            }
            age => {
                self.jar.insert(
                    set.name.clone(),
                    Cookie {
                        value: set.value.clone(),
                        expires: age.map(|a| now + a as f64),
                        from_canary,
                    },
                );
                counts.cookies_set += 1;
            }
        }
    }
}

fn class_headers(class: &ClientClass) -> Headers {
    class
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// Where the requests of a tick went, in requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub served: BTreeMap<(Workload, String), f64>,
    pub mirrored: BTreeMap<(Workload, String), f64>,
    pub unrouted: f64,
}

impl Tally {
    fn add(&mut self, o: &Outcome, n: f64) {
        for (k, v) in &o.served {
            *self.served.entry(k.clone()).or_default() += v * n;
        }
        for (k, v) in &o.mirrored {
            *self.mirrored.entry(k.clone()).or_default() += v * n;
        }
        self.unrouted += o.unrouted * n;
    }

    pub fn served_by(&self, w: Workload) -> f64 {
        self.served
            .iter()
            .filter(|((x, _), _)| *x == w)
            .map(|(_, v)| v)
            .sum()
    }
}

/// SplitMix64: reproducible choices without a dependency.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The clients, their jars and the simulated clock.
#[derive(Clone, Debug)]
pub struct Population {
    classes: Vec<ClientClass>,
    /// Per class: its sticky clients (empty for anonymous classes).
    clients: Vec<Vec<Client>>,
    rng: Rng,
    /// Simulated seconds since the start.
    now: f64,
    total: StickyCounts,
}

/// What a tick produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Served {
    pub tally: Tally,
    pub classes: Vec<ClassObserved>,
    pub sticky: StickyObserved,
    /// The share of all requests that the route sends to the canary.
    pub canary_share: f64,
    pub mirror_share: f64,
    pub unrouted_share: f64,
}

/// Rounds to 1e-9, so that shares such as 0.8 * 0.2 + 0.2 * 0.2 compare
/// equal to 0.2 (and an empty sum's -0.0 prints as 0).
fn tidy(x: f64) -> f64 {
    (x * 1e9).round() / 1e9 + 0.0
}

impl Population {
    pub fn new(classes: &[ClientClass]) -> Population {
        Population {
            classes: classes.to_vec(),
            // Staggered, so that slow clients do not all send in one tick.
            clients: classes
                .iter()
                .map(|c| {
                    let n = c.clients.unwrap_or(0);
                    (0..n)
                        .map(|i| Client {
                            credit: i as f64 / n as f64,
                            ..Client::default()
                        })
                        .collect()
                })
                .collect(),
            rng: Rng(0x5e21_2024),
            now: 0.0,
            total: StickyCounts::default(),
        }
    }

    /// Sends `elapsed` seconds of `rps` requests through `rules`.
    pub fn serve(&mut self, rules: &[Rule], services: &Services, rps: f64, elapsed: f64) -> Served {
        self.now += elapsed;
        let now = self.now;
        let total_share: f64 = self.classes.iter().map(|c| c.share.max(0.0)).sum();
        let mut served = Served::default();
        let mut tick = StickyCounts::default();
        for (class, clients) in self.classes.iter().zip(self.clients.iter_mut()) {
            let share = match total_share > 0.0 {
                true => class.share.max(0.0) / total_share,
                false => 0.0,
            };
            let n = rps * elapsed * share;
            let mut seen = ClassObserved {
                name: class.name.clone(),
                share,
                requests: n,
                ..ClassObserved::default()
            };
            if class.clients.is_none() {
                let o = outcome(rules, services, &class_headers(class));
                served.tally.add(&o, n);
                seen.canary_share = o.served_by(Workload::Canary);
                seen.mirror_share = o.mirrored_to(Workload::Canary);
                seen.unrouted_share = o.unrouted;
            } else {
                let sent = send_sticky(
                    class,
                    clients,
                    rules,
                    services,
                    n,
                    now,
                    &mut self.rng,
                    &mut served.tally,
                    &mut tick,
                );
                seen.requests = sent as f64;
                // The expected shares as the jars now stand.
                let count = clients.len().max(1) as f64;
                for client in clients.iter() {
                    let o = outcome(rules, services, &client.headers(class));
                    seen.canary_share += o.served_by(Workload::Canary) / count;
                    seen.mirror_share += o.mirrored_to(Workload::Canary) / count;
                    seen.unrouted_share += o.unrouted / count;
                }
                let sticky = &mut served.sticky;
                sticky.clients += clients.len();
                for client in clients.iter() {
                    sticky.with_canary_cookie += usize::from(client.holds_canary_cookie());
                    sticky.with_cookie += usize::from(!client.jar.is_empty());
                    for (name, c) in &client.jar {
                        *sticky
                            .cookies
                            .entry(format!("{name}={}", c.value))
                            .or_default() += 1;
                    }
                }
            }
            served.canary_share += share * seen.canary_share;
            served.mirror_share += share * seen.mirror_share;
            served.unrouted_share += share * seen.unrouted_share;
            seen.canary_share = tidy(seen.canary_share);
            seen.mirror_share = tidy(seen.mirror_share);
            seen.unrouted_share = tidy(seen.unrouted_share);
            served.classes.push(seen);
        }
        served.canary_share = tidy(served.canary_share);
        served.mirror_share = tidy(served.mirror_share);
        served.unrouted_share = tidy(served.unrouted_share);
        self.total.add(&tick);
        served.sticky.tick = tick;
        served.sticky.total = self.total;
        served
    }
}

/// The sticky clients of one class send their whole requests; returns how many.
#[allow(clippy::too_many_arguments)]
fn send_sticky(
    class: &ClientClass,
    clients: &mut [Client],
    rules: &[Rule],
    services: &Services,
    n: f64,
    now: f64,
    rng: &mut Rng,
    tally: &mut Tally,
    counts: &mut StickyCounts,
) -> u64 {
    let per_client = n / clients.len().max(1) as f64;
    let mut sent = 0;
    for client in clients.iter_mut() {
        let before = client.jar.len();
        client
            .jar
            .retain(|_, c| c.expires.is_none_or(|at| now < at));
        counts.cookies_timed_out += (before - client.jar.len()) as u64;
        client.credit += per_client;
        while client.credit >= 1.0 {
            client.credit -= 1.0;
            sent += 1;
            counts.requests += 1;
            let sticky = client.holds_canary_cookie();
            counts.with_canary_cookie += u64::from(sticky);
            let Some(rule) = route(rules, &client.headers(class)) else {
                tally.unrouted += 1.0;
                continue;
            };
            // One backend, drawn by weight.
            let split = rule.split();
            let mut draw = rng.next();
            let chosen = split
                .iter()
                .find(|(_, share)| {
                    draw -= share;
                    draw < 0.0
                })
                .or(split.last())
                .map(|(b, _)| *b);
            let Some(backend) = chosen else {
                tally.unrouted += 1.0;
                continue;
            };
            let workload = services.workload(&backend.service);
            match workload {
                Some(w) => {
                    *tally
                        .served
                        .entry((w, backend.service.clone()))
                        .or_default() += 1.0
                }
                None => tally.unrouted += 1.0,
            }
            for mirror in &rule.mirrors {
                if let Some(w) = services.workload(&mirror.service) {
                    *tally
                        .mirrored
                        .entry((w, mirror.service.clone()))
                        .or_default() += mirror.percent.clamp(0.0, 100.0) / 100.0;
                }
            }
            let to_canary = workload == Some(Workload::Canary);
            counts.canary += u64::from(to_canary);
            counts.with_canary_cookie_to_canary += u64::from(sticky && to_canary);
            for set in rule.set_cookies.iter().chain(&backend.set_cookies) {
                client.store(set, to_canary, now, counts);
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::super::routes::httproute_rules;
    use super::*;
    use serde_json::{Value, json};

    fn backend(name: &str, weight: u32) -> Value {
        json!({ "name": name, "port": 9898, "weight": weight })
    }

    /// Flagger's session-affinity route at canary weight `weight`.
    fn sticky_route(weight: u32) -> Vec<Rule> {
        let mut canary_ref = backend("podinfo-canary", weight);
        canary_ref["filters"] = json!([{ "type": "ResponseHeaderModifier",
            "responseHeaderModifier": { "add": [
                { "name": "Set-Cookie", "value": "flagger-cookie=Xyz12; Max-Age=21600" }] } }]);
        httproute_rules(&json!({ "spec": { "rules": [
            { "matches": [{ "headers": [{ "name": "Cookie", "type": "RegularExpression",
                                          "value": ".*flagger-cookie.*Xyz12.*" }] }],
              "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)] },
            { "backendRefs": [backend("podinfo-primary", 100 - weight), canary_ref] }
        ]}}))
    }

    /// The route after promotion: the old cookie is matched and expired.
    fn expiry_route() -> Vec<Rule> {
        httproute_rules(&json!({ "spec": { "rules": [
            { "matches": [{ "headers": [{ "name": "Cookie", "type": "RegularExpression",
                                          "value": ".*flagger-cookie.*Xyz12.*" }] }],
              "filters": [{ "type": "ResponseHeaderModifier", "responseHeaderModifier": {
                  "add": [{ "name": "Set-Cookie", "value": "flagger-cookie=Xyz12; Max-Age=-1" }] } }],
              "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)] },
            { "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)] }
        ]}}))
    }

    #[test]
    fn classes_share_the_traffic_by_expected_value() {
        let services = Services::new("podinfo");
        let rules = httproute_rules(&json!({ "spec": { "rules": [
            { "matches": [{ "headers": [{ "name": "x-canary", "value": "insider" }] }],
              "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)] },
            { "backendRefs": [backend("podinfo-primary", 80), backend("podinfo-canary", 20)] }
        ]}}));
        let mut p = Population::new(&[
            ClientClass::plain(0.8),
            ClientClass::header("insider", 0.2, "x-canary", "insider"),
        ]);
        let s = p.serve(&rules, &services, 10.0, 1.0);
        assert_eq!(s.classes[0].canary_share, 0.2);
        assert_eq!(s.classes[1].canary_share, 1.0);
        assert_eq!(s.canary_share, 0.36);
        assert!((s.tally.served_by(Workload::Canary) - 3.6).abs() < 1e-9);
        assert!((s.tally.served_by(Workload::Primary) - 6.4).abs() < 1e-9);
        assert_eq!(s.sticky.clients, 0);
    }

    #[test]
    fn sticky_clients_keep_the_canary_then_drop_the_cookie() {
        let services = Services::new("podinfo");
        let mut p = Population::new(&[ClientClass::sticky(1.0, 100)]);
        // 100 rps: each client sends one request a second.
        let first = p.serve(&sticky_route(10), &services, 100.0, 1.0);
        assert_eq!(first.sticky.tick.requests, 100);
        let holders = first.sticky.with_canary_cookie;
        assert_eq!(holders as u64, first.sticky.tick.canary, "{first:?}");
        assert!(
            (1..40).contains(&holders),
            "about 10% of the clients: {holders}"
        );
        assert_eq!(
            first.sticky.cookies.get("flagger-cookie=Xyz12"),
            Some(&holders)
        );
        let mut last = first;
        for _ in 0..20 {
            last = p.serve(&sticky_route(10), &services, 100.0, 1.0);
            assert_eq!(
                last.sticky.tick.cookie_canary_share(),
                Some(1.0),
                "{last:?}"
            );
        }
        // The holders only grow; about 1 - 0.9^21 of them after 21 ticks.
        assert!(last.sticky.with_canary_cookie > 70, "{last:?}");
        assert!(last.classes[0].canary_share > 0.7);
        assert_eq!(
            last.sticky.total.with_canary_cookie,
            last.sticky.total.with_canary_cookie_to_canary
        );
        // Promotion: the old cookie is expired by the primary's responses.
        let holders = last.sticky.with_canary_cookie as u64;
        let after = p.serve(&expiry_route(), &services, 100.0, 1.0);
        assert_eq!(after.sticky.with_canary_cookie, 0, "{after:?}");
        assert_eq!(after.sticky.with_cookie, 0);
        assert_eq!(after.sticky.tick.cookies_expired, holders);
        assert_eq!(after.sticky.tick.canary, 0);
        assert_eq!(after.canary_share, 0.0);
    }

    #[test]
    fn cookies_time_out_after_max_age() {
        let services = Services::new("podinfo");
        let rules = httproute_rules(&json!({ "spec": { "rules": [{
            "filters": [{ "type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "set": [{ "name": "set-cookie", "value": "s=1; Max-Age=5" }] } }],
            "backendRefs": [backend("podinfo-primary", 1)] }] } }));
        let mut p = Population::new(&[ClientClass::sticky(1.0, 10)]);
        let s = p.serve(&rules, &services, 10.0, 1.0);
        assert_eq!(s.sticky.with_cookie, 10);
        assert_eq!(s.sticky.with_canary_cookie, 0, "set by the primary");
        // Silent for 10 s: every cookie runs out before the next request.
        let s = p.serve(&rules, &services, 0.0, 10.0);
        assert_eq!(s.sticky.tick.cookies_timed_out, 10);
        assert_eq!(s.sticky.with_cookie, 0);
    }

    #[test]
    fn slow_clients_send_whole_requests() {
        let services = Services::new("podinfo");
        let rules = sticky_route(50);
        let mut p = Population::new(&[ClientClass::plain(0.5), ClientClass::sticky(0.5, 100)]);
        // 10 rps: the 100 sticky clients send 5 a second between them.
        let mut sent = 0;
        for _ in 0..20 {
            let s = p.serve(&rules, &services, 10.0, 1.0);
            sent += s.sticky.tick.requests;
            assert!((s.classes[0].requests - 5.0).abs() < 1e-9);
        }
        assert!((99..=100).contains(&sent), "{sent}");
    }
}
