//! Pure builders: the VirtualService and DestinationRule specs a Canary asks
//! for at given weights, in Flagger's layout (session affinity in
//! `sticky.rs`), and the weights read back from a VirtualService.

use serin_actors::model::observe::Routes;
use serin_actors::model::status::SessionCookies;

use super::IstioError;
use super::sticky;
use crate::api::Canary;
use crate::api::canary::{AbMatch, CanaryService, HttpMatchRequest, StringMatch};
use crate::api::istio::{
    Destination, DestinationRuleSpec, HttpRewrite, HttpRoute, L4Match, Percent, PortSelector,
    RouteDestination, TcpRoute, VirtualServiceSpec,
};
use crate::router::Names;

/// `service.appProtocol: tcp` (any case) routes TCP instead of HTTP.
pub fn is_tcp(service: &CanaryService) -> bool {
    service
        .app_protocol
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("tcp"))
}

/// The DestinationRule `<svc>-primary` or `<svc>-canary`.
pub fn destination_rule(service: &CanaryService, host: &str) -> DestinationRuleSpec {
    DestinationRuleSpec {
        host: host.to_string(),
        traffic_policy: service.traffic_policy.clone(),
        other: Default::default(),
    }
}

/// A weighted destination; the port is set only with `portDiscovery` behind
/// a non-mesh gateway or in a delegate, as Flagger does.
pub fn destination(service: &CanaryService, host: &str, weight: i32) -> RouteDestination {
    let gateways = service.gateways.as_deref().unwrap_or_default();
    let outside_mesh = gateways.first().is_some_and(|g| g != "mesh");
    let port = (service.port_discovery() && (outside_mesh || service.delegation())).then_some(
        PortSelector {
            number: service.port,
        },
    );
    RouteDestination {
        destination: Destination {
            host: host.to_string(),
            subset: None,
            port,
        },
        weight,
        headers: None,
    }
}

/// `service.hosts` plus the apex (unless listed, or `*`); `[]` in a delegate.
fn hosts(service: &CanaryService, apex: &str) -> Vec<String> {
    if service.delegation() {
        return vec![];
    }
    let mut hosts = service.hosts.clone().unwrap_or_default();
    if !hosts.iter().any(|h| h == apex || h == "*") {
        hosts.push(apex.to_string());
    }
    hosts
}

/// `service.gateways`, `mesh` when none; none in a delegate.
fn gateways(service: &CanaryService) -> Vec<String> {
    if service.delegation() {
        return vec![];
    }
    service.gateways()
}

/// An HTTP route with the Canary's match, rewrite, timeout, retries, CORS
/// and headers, to `route`.
pub fn http_route(
    service: &CanaryService,
    matches: Vec<HttpMatchRequest>,
    route: Vec<RouteDestination>,
) -> HttpRoute {
    HttpRoute {
        matches,
        route,
        rewrite: service.rewrite.as_ref().map(|r| HttpRewrite {
            uri: r.uri.clone(),
            authority: r.authority.clone(),
        }),
        timeout: service.timeout.clone(),
        retries: service.retries.clone(),
        cors_policy: service.cors_policy.clone(),
        headers: service.headers.clone(),
        ..HttpRoute::default()
    }
}

/// The VirtualService's spec for `routes` (Flagger's `SetRoutes` layout,
/// which its `Reconcile` compares ignoring weights and mirror).
pub fn desired(
    canary: &Canary,
    routes: Routes,
    cookies: &SessionCookies,
) -> Result<VirtualServiceSpec, IstioError> {
    let names = Names::of(canary);
    let default_service = CanaryService::default();
    let service = canary.spec.service.as_ref().unwrap_or(&default_service);
    if service.delegation()
        && (!service.hosts.as_deref().unwrap_or_default().is_empty()
            || !service.gateways.as_deref().unwrap_or_default().is_empty())
    {
        return Err(IstioError::DelegationWithHosts {
            name: names.apex,
            namespace: crate::api::canary::key_of(canary).namespace,
        });
    }
    let weighted = || {
        vec![
            destination(service, &names.primary, routes.primary),
            destination(service, &names.canary, routes.canary),
        ]
    };
    let mut spec = VirtualServiceSpec {
        hosts: hosts(service, &names.apex),
        gateways: gateways(service),
        ..VirtualServiceSpec::default()
    };
    let own_match = service.r#match.clone().unwrap_or_default();
    if is_tcp(service) {
        let matches = own_match
            .iter()
            .map(|m| L4Match {
                port: m.port.filter(|p| *p != 0),
            })
            .collect();
        spec.tcp = vec![TcpRoute {
            matches,
            route: weighted(),
        }];
        return Ok(spec);
    }
    let analysis = &canary.spec.analysis;
    let ab = analysis.r#match.as_deref().unwrap_or_default();
    if !ab.is_empty() {
        // A/B: matching requests get the weights, the rest the primary.
        let merged = merge_matches(&ab_requests(ab)?, &own_match);
        spec.http = vec![
            http_route(service, merged, weighted()),
            http_route(
                service,
                own_match,
                vec![destination(service, &names.primary, routes.primary)],
            ),
        ];
        return Ok(spec);
    }
    let mut route = http_route(service, own_match.clone(), weighted());
    if routes.mirrored {
        route.mirror = Some(Destination {
            host: names.canary.clone(),
            ..Destination::default()
        });
        let weight = analysis.mirror_weight();
        if weight > 0 {
            route.mirror_percentage = Some(Percent {
                value: f64::from(weight),
            });
        }
    }
    spec.http = match &analysis.session_affinity {
        Some(affinity) => {
            let sticky = sticky::Sticky {
                canary,
                affinity,
                service,
                names: &names,
                matches: &own_match,
            };
            sticky.rules(route, routes.canary, cookies)?
        }
        None => vec![route],
    };
    Ok(spec)
}

/// Flagger's `mergeMatchConditions`: each canary condition over each of the
/// service's, taking the canary's headers and source labels.
pub fn merge_matches(
    canary: &[HttpMatchRequest],
    service: &[HttpMatchRequest],
) -> Vec<HttpMatchRequest> {
    if service.is_empty() {
        return canary.to_vec();
    }
    let mut merged = Vec::with_capacity(canary.len() * service.len());
    for c in canary {
        for d in service {
            let mut m = d.clone();
            if c.headers.is_some() {
                m.headers = c.headers.clone();
            }
            if c.source_labels.is_some() {
                m.source_labels = c.source_labels.clone();
            }
            merged.push(m);
        }
    }
    merged
}

/// The analysis' A/B conditions as Istio match requests; Istio's
/// StringMatch has no `suffix`, so one is refused rather than lost.
pub fn ab_requests(ab: &[AbMatch]) -> Result<Vec<HttpMatchRequest>, IstioError> {
    ab.iter()
        .map(|m| {
            let headers = match &m.headers {
                None => None,
                Some(headers) => Some(
                    headers
                        .iter()
                        .map(|(name, h)| {
                            if h.suffix.is_some() {
                                return Err(IstioError::SuffixMatch(name.clone()));
                            }
                            Ok((
                                name.clone(),
                                StringMatch {
                                    exact: h.exact.clone(),
                                    prefix: h.prefix.clone(),
                                    regex: h.regex.clone(),
                                },
                            ))
                        })
                        .collect::<Result<_, _>>()?,
                ),
            };
            Ok(HttpMatchRequest {
                headers,
                query_params: m.query_params.clone(),
                source_labels: m.source_labels.clone(),
                ..HttpMatchRequest::default()
            })
        })
        .collect()
}

/// Flagger's `GetRoutes`: the weights of the last route that sends to the
/// canary (with session affinity, of the destinations that set a cookie),
/// and whether that route mirrors.
pub fn read_routes(spec: &VirtualServiceSpec, canary: &Canary) -> Routes {
    let names = &Names::of(canary);
    let tcp = canary.spec.service.as_ref().is_some_and(is_tcp);
    let affinity = canary.spec.analysis.session_affinity.is_some();
    let weights = |route: &[RouteDestination]| {
        let of = |host: &str| {
            route
                .iter()
                .filter(|d| d.destination.host == host)
                .map(|d| d.weight)
                .next_back()
        };
        (of(&names.primary), of(&names.canary))
    };
    let to_canary =
        |route: &[RouteDestination]| route.iter().any(|d| d.destination.host == names.canary);
    let (mut primary, mut canary, mut mirrored) = (0, 0, false);
    if tcp {
        if let Some(tcp) = spec.tcp.iter().rev().find(|t| to_canary(&t.route)) {
            let (p, c) = weights(&tcp.route);
            (primary, canary) = (p.unwrap_or(0), c.unwrap_or(0));
        }
    } else if let Some(http) = spec.http.iter().rev().find(|h| to_canary(&h.route)) {
        let (p, c) = weights(&http.route);
        (primary, canary) = (p.unwrap_or(0), c.unwrap_or(0));
        mirrored = http.mirror.as_ref().is_some_and(|m| !m.host.is_empty());
    }
    // With session affinity the weighted route is the one setting cookies.
    for http in spec.http.iter().filter(|_| affinity && !tcp) {
        for d in http.route.iter().filter(|d| d.headers.is_some()) {
            if d.destination.host == names.primary {
                primary = d.weight;
            } else if d.destination.host == names.canary {
                canary = d.weight;
            }
        }
    }
    Routes {
        primary,
        canary,
        mirrored,
    }
}
