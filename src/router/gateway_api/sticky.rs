//! Flagger's session affinity rules: the sticky rules for holders of the
//! canary (and primary) cookie, the `Set-Cookie` filters that hand them out,
//! and the rule that expires the previous run's cookie.

use serin_actors::model::status::SessionCookies;

use super::build::{Names, backend};
use super::matches::{REGEX, merge_matches};
use super::{GatewayError, Version};
use crate::api::Canary;
use crate::api::canary::SessionAffinity;
use crate::api::gateway::{
    HttpBackendRef, HttpHeader, HttpHeaderFilter, HttpRouteFilter, HttpRouteMatch, HttpRouteRule,
    HttpValueMatch,
};

/// Flagger's session affinity rules around the weighted one.
pub struct Sticky<'a> {
    pub canary: &'a Canary,
    pub affinity: &'a SessionAffinity,
    pub version: Version,
    pub names: &'a Names,
    pub port: i32,
    pub matches: &'a [HttpRouteMatch],
}

impl Sticky<'_> {
    /// While the canary gets traffic: its backend sets the canary cookie and
    /// a rule sends requests carrying it to the canary only (`v1` also sets
    /// a primary cookie for one interval and keeps its holders on the
    /// primary). At weight 0: a rule expires the previous run's cookie.
    pub fn rules(
        &self,
        mut weighted: HttpRouteRule,
        canary_weight: i32,
        cookies: &SessionCookies,
    ) -> Result<Vec<HttpRouteRule>, GatewayError> {
        let mut rules = vec![];
        if canary_weight != 0 {
            let Some(cookie) = cookies.canary.as_deref() else {
                return Ok(vec![weighted]);
            };
            let max_age = self.affinity.max_age();
            if let Some(canary) = weighted.backend_refs.get_mut(1) {
                set_cookie(canary, self.affinity.build_cookie(cookie, max_age));
            }
            rules.push(self.sticky(&weighted, cookie, 0, 100));
            let primary = self
                .affinity
                .primary_cookie_name
                .as_ref()
                .filter(|n| !n.is_empty() && self.version == Version::V1)
                .and(cookies.primary.as_deref());
            if let Some(primary) = primary {
                let interval = self.canary.spec.analysis.interval.as_deref();
                let seconds = SessionAffinity::primary_max_age(interval)
                    .map_err(|e| GatewayError::Interval(e.to_string()))?;
                if let Some(first) = weighted.backend_refs.first_mut() {
                    set_cookie(first, self.affinity.build_cookie(primary, seconds));
                }
                rules.push(self.sticky(&weighted, primary, 100, 0));
            }
        } else if let Some(previous) = cookies.previous.as_deref() {
            let mut expire = weighted.clone();
            expire.matches = merge_matches(&[cookie_match(previous)], self.matches);
            add_response_header(&mut expire.filters, format!("{previous}; Max-Age=-1"));
            rules.push(expire);
        }
        rules.push(weighted);
        Ok(rules)
    }

    /// A copy of the weighted rule for the holders of `cookie`.
    fn sticky(
        &self,
        weighted: &HttpRouteRule,
        cookie: &str,
        primary: i32,
        canary: i32,
    ) -> HttpRouteRule {
        HttpRouteRule {
            matches: merge_matches(&[cookie_match(cookie)], self.matches),
            backend_refs: vec![
                backend(&self.names.primary, primary, self.port),
                backend(&self.names.canary, canary, self.port),
            ],
            ..weighted.clone()
        }
    }
}

const SET_COOKIE: &str = "Set-Cookie";

/// Matches requests whose `Cookie` header carries `name=value`.
fn cookie_match(cookie: &str) -> HttpRouteMatch {
    let (name, value) = cookie.split_once('=').unwrap_or((cookie, ""));
    HttpRouteMatch {
        headers: vec![HttpValueMatch {
            type_: Some(REGEX.into()),
            name: "Cookie".into(),
            value: format!(".*{name}.*{value}.*"),
        }],
        ..HttpRouteMatch::default()
    }
}

fn response_header(name: &str, value: String) -> HttpRouteFilter {
    HttpRouteFilter {
        type_: "ResponseHeaderModifier".into(),
        response_header_modifier: Some(HttpHeaderFilter {
            add: vec![HttpHeader {
                name: name.into(),
                value,
            }],
            ..HttpHeaderFilter::default()
        }),
        ..HttpRouteFilter::default()
    }
}

fn set_cookie(backend: &mut HttpBackendRef, cookie: String) {
    backend.filters.push(response_header(SET_COOKIE, cookie));
}

/// Adds `Set-Cookie` to the rule's response header filter, or a new one:
/// the API refuses a second `ResponseHeaderModifier` in a rule.
fn add_response_header(filters: &mut Vec<HttpRouteFilter>, cookie: String) {
    let existing = filters
        .iter_mut()
        .find_map(|f| f.response_header_modifier.as_mut());
    match existing {
        Some(modifier) => modifier.add.push(HttpHeader {
            name: SET_COOKIE.into(),
            value: cookie,
        }),
        None => filters.push(response_header(SET_COOKIE, cookie)),
    }
}
