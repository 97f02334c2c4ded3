//! Flagger's Istio session affinity: sticky routes for the holders of the
//! canary (and primary) cookie before the weighted route, `Set-Cookie` on
//! the weighted destinations that hand them out, and after the run a route
//! that expires the previous cookie. The cookies are the status' (decided
//! by the core); this only renders them.

use std::collections::BTreeMap;

use serin_actors::model::status::SessionCookies;

use super::IstioError;
use super::build::{destination, merge_matches};
use crate::api::Canary;
use crate::api::canary::{
    CanaryService, HeaderOperations, Headers, HttpMatchRequest, SessionAffinity, StringMatch,
};
use crate::api::istio::HttpRoute;
use crate::router::Names;

const COOKIE: &str = "Cookie";
const SET_COOKIE: &str = "Set-Cookie";

pub struct Sticky<'a> {
    pub canary: &'a Canary,
    pub affinity: &'a SessionAffinity,
    pub service: &'a CanaryService,
    pub names: &'a Names,
    /// `service.match`, merged under each cookie condition.
    pub matches: &'a [HttpMatchRequest],
}

impl Sticky<'_> {
    pub fn rules(
        &self,
        mut weighted: HttpRoute,
        canary_weight: i32,
        cookies: &SessionCookies,
    ) -> Result<Vec<HttpRoute>, IstioError> {
        let mut rules = vec![];
        if canary_weight != 0 {
            let Some(cookie) = cookies.canary.as_deref() else {
                return Ok(vec![weighted]);
            };
            let max_age = self.affinity.max_age();
            if let Some(d) = weighted.route.get_mut(1) {
                d.headers = Some(set_cookie(self.affinity.build_cookie(cookie, max_age)));
            }
            rules.push(self.sticky(&weighted, cookie, 0, 100));
            let primary = self
                .affinity
                .primary_cookie_name
                .as_ref()
                .filter(|n| !n.is_empty())
                .and(cookies.primary.as_deref());
            if let Some(primary) = primary {
                let interval = self.canary.spec.analysis.interval.as_deref();
                let seconds = SessionAffinity::primary_max_age(interval)
                    .map_err(|e| IstioError::Interval(e.to_string()))?;
                if let Some(d) = weighted.route.first_mut() {
                    d.headers = Some(set_cookie(self.affinity.build_cookie(primary, seconds)));
                }
                rules.push(self.sticky(&weighted, primary, 100, 0));
            }
        } else if let Some(previous) = cookies.previous.as_deref() {
            let mut expire = weighted.clone();
            expire.matches = merge_matches(&[cookie_match(previous)], self.matches);
            let headers = expire.headers.get_or_insert_with(Headers::default);
            let response = headers
                .response
                .get_or_insert_with(HeaderOperations::default);
            response
                .add
                .get_or_insert_with(BTreeMap::new)
                .insert(SET_COOKIE.into(), format!("{previous}; Max-Age=-1"));
            rules.push(expire);
        }
        rules.push(weighted);
        Ok(rules)
    }

    /// A copy of the weighted route for the holders of `cookie`.
    fn sticky(&self, weighted: &HttpRoute, cookie: &str, primary: i32, canary: i32) -> HttpRoute {
        HttpRoute {
            matches: merge_matches(&[cookie_match(cookie)], self.matches),
            route: vec![
                destination(self.service, &self.names.primary, primary),
                destination(self.service, &self.names.canary, canary),
            ],
            // The mirror belongs to the weighted route, where it is read back.
            mirror: None,
            mirror_percentage: None,
            ..weighted.clone()
        }
    }
}

/// Matches requests whose `Cookie` header carries `name=value`.
fn cookie_match(cookie: &str) -> HttpMatchRequest {
    let (name, value) = cookie.split_once('=').unwrap_or((cookie, ""));
    HttpMatchRequest {
        headers: Some(BTreeMap::from([(
            COOKIE.to_string(),
            StringMatch {
                regex: Some(format!(".*{name}.*{value}.*")),
                ..StringMatch::default()
            },
        )])),
        ..HttpMatchRequest::default()
    }
}

/// A destination's response headers adding `Set-Cookie`.
fn set_cookie(cookie: String) -> Headers {
    Headers {
        response: Some(HeaderOperations {
            add: Some(BTreeMap::from([(SET_COOKIE.to_string(), cookie)])),
            ..HeaderOperations::default()
        }),
        ..Headers::default()
    }
}
