//! Istio-style match requests (`service.match`, `analysis.match`) as
//! HTTPRoute matches.

use std::collections::BTreeMap;

use super::GatewayError;
use crate::api::canary::{AbMatch, HttpMatchRequest, StringMatch};
use crate::api::gateway::{HttpPathMatch, HttpRouteMatch, HttpValueMatch};

pub const PATH_PREFIX: &str = "PathPrefix";
pub const EXACT: &str = "Exact";
pub const REGEX: &str = "RegularExpression";

/// `service.match` as HTTPRoute matches; Istio selectors Gateway API cannot
/// express are refused rather than dropped.
pub fn map_matches(requests: &[HttpMatchRequest]) -> Result<Vec<HttpRouteMatch>, GatewayError> {
    let mut matches = vec![];
    for request in requests {
        let unsupported = [
            ("authority", request.authority.is_some()),
            ("scheme", request.scheme.is_some()),
            ("port", request.port.is_some()),
            ("gateways", request.gateways.is_some()),
            ("ignoreUriCase", request.ignore_uri_case == Some(true)),
            ("sourceLabels", request.source_labels.is_some()),
            ("sourceNamespace", request.source_namespace.is_some()),
            ("withoutHeaders", request.without_headers.is_some()),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(GatewayError::InvalidMatch(format!(
                "Gateway API doesn't support the matching selector {field}"
            )));
        }
        let mut m = HttpRouteMatch::default();
        if let Some(uri) = &request.uri {
            let (type_, value) = match uri {
                StringMatch { regex: Some(v), .. } if !v.is_empty() => (REGEX, v),
                StringMatch { exact: Some(v), .. } if !v.is_empty() => (EXACT, v),
                StringMatch {
                    prefix: Some(v), ..
                } if !v.is_empty() => (PATH_PREFIX, v),
                _ => {
                    return Err(GatewayError::InvalidMatch(format!(
                        "Gateway API doesn't support the specified path matching selector: {uri:?}"
                    )));
                }
            };
            m.path = Some(HttpPathMatch {
                type_: Some(type_.into()),
                value: Some(value.clone()),
            });
        }
        if let Some(method) = &request.method {
            match method.exact.as_ref().filter(|m| !m.is_empty()) {
                Some(exact) => m.method = Some(exact.clone()),
                None => {
                    return Err(GatewayError::InvalidMatch(format!(
                        "Gateway API doesn't support the specified method matching selector: {method:?}"
                    )));
                }
            }
        }
        m.headers = value_matches(request.headers.as_ref(), "header")?;
        m.query_params = value_matches(request.query_params.as_ref(), "query")?;
        if m != HttpRouteMatch::default() {
            matches.push(m);
        }
    }
    Ok(matches)
}

fn value_matches(
    map: Option<&BTreeMap<String, StringMatch>>,
    what: &str,
) -> Result<Vec<HttpValueMatch>, GatewayError> {
    let mut out = vec![];
    for (name, m) in map.into_iter().flatten() {
        let (type_, value) = match m {
            StringMatch { exact: Some(v), .. } if !v.is_empty() => (EXACT, v),
            StringMatch { regex: Some(v), .. } if !v.is_empty() => (REGEX, v),
            _ => {
                return Err(GatewayError::InvalidMatch(format!(
                    "Gateway API doesn't support the specified {what} matching selector: {name}: {m:?}"
                )));
            }
        };
        out.push(HttpValueMatch {
            type_: Some(type_.into()),
            name: name.clone(),
            value: value.clone(),
        });
    }
    Ok(out)
}

/// `analysis.match` (A/B testing) as HTTPRoute matches.
pub fn map_ab(requests: &[AbMatch]) -> Result<Vec<HttpRouteMatch>, GatewayError> {
    let mut matches = vec![];
    for request in requests {
        if request.source_labels.is_some() {
            return Err(GatewayError::InvalidMatch(
                "Gateway API doesn't support the matching selector sourceLabels".into(),
            ));
        }
        let mut headers = vec![];
        for (name, h) in request.headers.iter().flatten() {
            let (type_, value) = match (&h.exact, &h.regex) {
                (Some(v), _) if !v.is_empty() => (EXACT, v),
                (_, Some(v)) if !v.is_empty() => (REGEX, v),
                _ => {
                    return Err(GatewayError::InvalidMatch(format!(
                        "Gateway API doesn't support the specified header matching selector: {name}: {h:?}"
                    )));
                }
            };
            headers.push(HttpValueMatch {
                type_: Some(type_.into()),
                name: name.clone(),
                value: value.clone(),
            });
        }
        let m = HttpRouteMatch {
            headers,
            query_params: value_matches(request.query_params.as_ref(), "query")?,
            ..HttpRouteMatch::default()
        };
        if m != HttpRouteMatch::default() {
            matches.push(m);
        }
    }
    Ok(matches)
}

/// Every analysis match crossed with every service match: the service's
/// path and method, the analysis' headers and query parameters.
pub fn merge_matches(
    analysis: &[HttpRouteMatch],
    service: &[HttpRouteMatch],
) -> Vec<HttpRouteMatch> {
    if analysis.is_empty() {
        return service.to_vec();
    }
    if service.is_empty() {
        return analysis.to_vec();
    }
    let mut merged = vec![];
    for a in analysis {
        for s in service {
            let mut m = s.clone();
            if !a.headers.is_empty() {
                m.headers = a.headers.clone();
            }
            if !a.query_params.is_empty() {
                m.query_params = a.query_params.clone();
            }
            merged.push(m);
        }
    }
    merged
}
