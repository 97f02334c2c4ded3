//! Pure builders: the HTTPRoute spec a Canary asks for at given weights
//! (matches in `matches.rs`, session affinity in `sticky.rs`), with the API
//! server's defaults spelled out so that a route read back compares equal
//! to the one written.

use std::collections::BTreeMap;

use serin_actors::model::observe::Routes;
use serin_actors::model::status::SessionCookies;

use super::matches::{EXACT, PATH_PREFIX, map_ab, map_matches, merge_matches};
use super::sticky::Sticky;
use super::{GatewayError, Version};
use crate::api::Canary;
use crate::api::canary::{CanaryService, CorsPolicy, HeaderOperations};
use crate::api::gateway::{
    BackendObjectReference, GROUP, HttpBackendRef, HttpCorsFilter, HttpHeader, HttpHeaderFilter,
    HttpPathMatch, HttpPathModifier, HttpRequestMirrorFilter, HttpRouteFilter, HttpRouteMatch,
    HttpRouteRule, HttpRouteSpec, HttpRouteTimeouts, HttpUrlRewriteFilter, ParentReference,
};
pub use crate::router::Names;

pub const MIRROR: &str = "RequestMirror";
/// The CORS filter's `maxAge` when none is given (the CRD's default).
const CORS_MAX_AGE: i32 = 5;

/// The route's spec for `routes`: Flagger's `SetRoutes` layout, defaults
/// filled in ([`normalize`]).
pub fn desired(
    canary: &Canary,
    version: Version,
    routes: Routes,
    cookies: &SessionCookies,
) -> Result<HttpRouteSpec, GatewayError> {
    let Some(service) = canary.spec.service.as_ref() else {
        return Err(GatewayError::NoGatewayRefs);
    };
    let refs = service.gateway_refs.as_deref().unwrap_or_default();
    if refs.is_empty() {
        return Err(GatewayError::NoGatewayRefs);
    }
    let names = Names::of(canary);
    let port = service.port;
    let mut matches = map_matches(service.r#match.as_deref().unwrap_or_default())?;
    if matches.is_empty() {
        matches.push(HttpRouteMatch::default());
    }
    let timeouts = match version {
        Version::V1 => timeouts(service),
        Version::V1Beta1 => None,
    };
    let filters = filters(service, version);
    let mut weighted = HttpRouteRule {
        matches: matches.clone(),
        filters: filters.clone(),
        backend_refs: vec![
            backend(&names.primary, routes.primary, port),
            backend(&names.canary, routes.canary, port),
        ],
        timeouts: timeouts.clone(),
    };
    let analysis = &canary.spec.analysis;
    if routes.mirrored && analysis.iterations.unwrap_or(0) > 0 {
        weighted.filters.push(HttpRouteFilter {
            type_: MIRROR.into(),
            request_mirror: Some(HttpRequestMirrorFilter {
                backend_ref: BackendObjectReference {
                    group: Some(String::new()),
                    kind: Some("Service".into()),
                    name: names.canary.clone(),
                    namespace: None,
                    port: Some(port),
                },
            }),
            ..HttpRouteFilter::default()
        });
    }
    let mut rules = match &analysis.session_affinity {
        Some(affinity) => {
            let sticky = Sticky {
                canary,
                affinity,
                version,
                names: &names,
                port,
                matches: &matches,
            };
            sticky.rules(weighted, routes.canary, cookies)?
        }
        None => vec![weighted],
    };
    // Flagger splits on `analysis.match` whatever the strategy: matching
    // requests get the weights, the rest the primary.
    let ab = map_ab(analysis.r#match.as_deref().unwrap_or_default())?;
    if !ab.is_empty() {
        if let Some(first) = rules.first_mut() {
            first.matches = merge_matches(&ab, &matches);
        }
        rules.push(HttpRouteRule {
            matches,
            filters,
            backend_refs: vec![backend(&names.primary, 100, port)],
            timeouts,
        });
    }
    let mut spec = HttpRouteSpec {
        parent_refs: refs
            .iter()
            .map(|r| ParentReference {
                group: r.group.clone(),
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                section_name: r.section_name.clone(),
                port: r.port,
            })
            .collect(),
        hostnames: service.hosts.clone().unwrap_or_default(),
        rules,
    };
    normalize(&mut spec);
    Ok(spec)
}

pub fn backend(name: &str, weight: i32, port: i32) -> HttpBackendRef {
    HttpBackendRef {
        group: Some(String::new()),
        kind: Some("Service".into()),
        name: name.to_string(),
        namespace: None,
        port: Some(port),
        weight: Some(weight),
        filters: vec![],
    }
}

fn timeouts(service: &CanaryService) -> Option<HttpRouteTimeouts> {
    let request = service.timeout.clone().filter(|t| !t.is_empty());
    let backend_request = service.backend_timeout.clone().filter(|t| !t.is_empty());
    (request.is_some() || backend_request.is_some()).then_some(HttpRouteTimeouts {
        request,
        backend_request,
    })
}

/// Header modifiers, URL rewrite, static mirrors and CORS, in Flagger's order.
fn filters(service: &CanaryService, version: Version) -> Vec<HttpRouteFilter> {
    let mut filters = vec![];
    if let Some(headers) = &service.headers {
        if let Some(request) = headers.request.as_ref().filter(|h| !is_empty(h)) {
            filters.push(HttpRouteFilter {
                type_: "RequestHeaderModifier".into(),
                request_header_modifier: Some(header_filter(request)),
                ..HttpRouteFilter::default()
            });
        }
        if let Some(response) = headers.response.as_ref().filter(|h| !is_empty(h)) {
            filters.push(HttpRouteFilter {
                type_: "ResponseHeaderModifier".into(),
                response_header_modifier: Some(header_filter(response)),
                ..HttpRouteFilter::default()
            });
        }
    }
    if let Some(rewrite) = &service.rewrite {
        let path = rewrite.uri.as_ref().filter(|u| !u.is_empty()).map(|uri| {
            match rewrite.is_prefix_match() {
                true => HttpPathModifier {
                    type_: "ReplacePrefixMatch".into(),
                    replace_prefix_match: Some(uri.clone()),
                    replace_full_path: None,
                },
                false => HttpPathModifier {
                    type_: "ReplaceFullPath".into(),
                    replace_full_path: Some(uri.clone()),
                    replace_prefix_match: None,
                },
            }
        });
        let hostname = rewrite.authority.clone().filter(|a| !a.is_empty());
        // A rewrite of nothing would be an empty filter, which the API refuses.
        if hostname.is_some() || path.is_some() {
            filters.push(HttpRouteFilter {
                type_: "URLRewrite".into(),
                url_rewrite: Some(HttpUrlRewriteFilter { hostname, path }),
                ..HttpRouteFilter::default()
            });
        }
    }
    for mirror in service.mirror.iter().flatten() {
        let r = &mirror.backend_ref;
        filters.push(HttpRouteFilter {
            type_: MIRROR.into(),
            request_mirror: Some(HttpRequestMirrorFilter {
                backend_ref: BackendObjectReference {
                    group: r.group.clone(),
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    namespace: r.namespace.clone(),
                    port: r.port,
                },
            }),
            ..HttpRouteFilter::default()
        });
    }
    if let (Some(cors), Version::V1) = (&service.cors_policy, version) {
        filters.push(HttpRouteFilter {
            type_: "CORS".into(),
            cors: Some(cors_filter(cors)),
            ..HttpRouteFilter::default()
        });
    }
    filters
}

/// A header operation that changes nothing: no filter is written for it.
fn is_empty(ops: &HeaderOperations) -> bool {
    ops.add.as_ref().is_none_or(|m| m.is_empty())
        && ops.set.as_ref().is_none_or(|m| m.is_empty())
        && ops.remove.as_ref().is_none_or(|r| r.is_empty())
}

fn header_filter(ops: &HeaderOperations) -> HttpHeaderFilter {
    let sorted = |map: &Option<BTreeMap<String, String>>| -> Vec<HttpHeader> {
        // A BTreeMap iterates by name: Flagger's sort order.
        map.iter()
            .flatten()
            .map(|(name, value)| HttpHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    };
    HttpHeaderFilter {
        set: sorted(&ops.set),
        add: sorted(&ops.add),
        remove: ops.remove.clone().unwrap_or_default(),
    }
}

fn cors_filter(cors: &CorsPolicy) -> HttpCorsFilter {
    if cors.allow_origins.as_ref().is_some_and(|o| !o.is_empty()) {
        // Gateway API origins are plain strings, not Istio's StringMatch.
        tracing::warn!(
            "'corsPolicy.allowOrigins' is not supported by Gateway API, use 'corsPolicy.allowOrigin' instead"
        );
    }
    HttpCorsFilter {
        allow_origins: cors.allow_origin.clone().unwrap_or_default(),
        allow_credentials: cors.allow_credentials.filter(|c| *c),
        allow_methods: cors.allow_methods.clone().unwrap_or_default(),
        allow_headers: cors.allow_headers.clone().unwrap_or_default(),
        expose_headers: cors.expose_headers.clone().unwrap_or_default(),
        max_age: cors
            .max_age
            .as_deref()
            .and_then(|d| crate::api::parse_duration(d).ok())
            .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
            // Under a second is Go's zero, which Flagger leaves out.
            .filter(|seconds| *seconds > 0),
    }
}

/// Spells out what the API server defaults, so a route read back compares
/// equal to the one written.
pub fn normalize(spec: &mut HttpRouteSpec) {
    for parent in &mut spec.parent_refs {
        parent.group.get_or_insert_with(|| GROUP.to_string());
        parent.kind.get_or_insert_with(|| "Gateway".to_string());
    }
    for rule in &mut spec.rules {
        if rule.matches.is_empty() {
            rule.matches.push(HttpRouteMatch::default());
        }
        for m in &mut rule.matches {
            let path = m.path.get_or_insert_with(HttpPathMatch::default);
            path.type_.get_or_insert_with(|| PATH_PREFIX.to_string());
            path.value.get_or_insert_with(|| "/".to_string());
            for v in m.headers.iter_mut().chain(m.query_params.iter_mut()) {
                v.type_.get_or_insert_with(|| EXACT.to_string());
            }
        }
        normalize_filters(&mut rule.filters);
        for backend in &mut rule.backend_refs {
            backend.group.get_or_insert_with(String::new);
            backend.kind.get_or_insert_with(|| "Service".to_string());
            backend.weight.get_or_insert(1);
            normalize_filters(&mut backend.filters);
        }
    }
}

fn normalize_filters(filters: &mut [HttpRouteFilter]) {
    for filter in filters {
        if let Some(mirror) = filter.request_mirror.as_mut() {
            mirror.backend_ref.group.get_or_insert_with(String::new);
            mirror
                .backend_ref
                .kind
                .get_or_insert_with(|| "Service".to_string());
        }
        if let Some(cors) = filter.cors.as_mut() {
            cors.max_age.get_or_insert(CORS_MAX_AGE);
        }
    }
}

/// Flagger's `GetRoutes` over a route's rules: the weights of the rule with
/// both backends, and whether a rule mirrors to the canary.
pub fn read_routes(spec: &HttpRouteSpec, names: &Names) -> Routes {
    let mut routes = Routes {
        primary: 0,
        canary: 0,
        mirrored: false,
    };
    for rule in &spec.rules {
        if rule.backend_refs.len() == 2 {
            for b in &rule.backend_refs {
                let weight = b.weight.unwrap_or(1);
                if b.name == names.primary {
                    routes.primary = weight;
                } else if b.name == names.canary {
                    routes.canary = weight;
                }
            }
        }
        routes.mirrored |= rule.filters.iter().any(|f| is_canary_mirror(f, names));
    }
    routes
}

pub fn is_canary_mirror(filter: &HttpRouteFilter, names: &Names) -> bool {
    filter.type_ == MIRROR
        && filter
            .request_mirror
            .as_ref()
            .is_some_and(|m| m.backend_ref.name == names.canary)
}
