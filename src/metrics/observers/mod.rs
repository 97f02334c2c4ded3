//! The builtin `request-success-rate` and `request-duration` PromQL per metrics
//! provider, laid out like Flagger's so that, whitespace collapsed, the
//! queries sent to Prometheus are the same strings.

mod ingress_queries;
mod mesh_queries;
#[cfg(test)]
mod tests;

use serin_actors::model::spec::Builtin;

use super::render::Model;
use ingress_queries::{
    APISIX_DURATION, APISIX_SR, CONTOUR_DURATION, CONTOUR_SR, GLOO_DURATION, GLOO_SR,
    HTTP_DURATION, HTTP_SR, NGINX_DURATION, NGINX_SR, SKIPPER_DURATION, SKIPPER_SR,
    TRAEFIK_DURATION, TRAEFIK_SR,
};
use mesh_queries::{
    APPMESH_DURATION, APPMESH_SR, ISTIO_DURATION, ISTIO_SR, KNATIVE_DURATION, KNATIVE_SR,
    KUMA_DURATION, KUMA_SR, LINKERD_DURATION, LINKERD_SR, OSM_DURATION, OSM_SR,
};

/// One set of builtin queries (Flagger's observers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observer {
    Istio,
    Linkerd,
    Nginx,
    /// Generic HTTP (`kubernetes`, `gatewayapi*`): podinfo-style histograms.
    Http,
    Contour,
    Gloo,
    Traefik,
    Skipper,
    Apisix,
    Kuma,
    Osm,
    Knative,
    AppMesh,
}

/// Flagger's metrics provider name for a canary: the mesh provider, else
/// `spec.provider` (but Linkerd whenever the mesh provider is Linkerd), with
/// `:service` appended for Service targets (Knative aside).
pub fn metrics_provider(
    canary_provider: Option<&str>,
    mesh_provider: &str,
    service_target: bool,
) -> String {
    let mut provider = if mesh_provider.contains("crossover") {
        "crossover".to_owned()
    } else {
        mesh_provider.to_owned()
    };
    if let Some(p) = canary_provider.filter(|p| !p.is_empty()) {
        provider = if mesh_provider.contains("linkerd") {
            "linkerd".to_owned()
        } else {
            p.to_owned()
        };
    }
    if service_target {
        provider.push_str(":service");
    }
    provider
}

impl Observer {
    /// Flagger's observer factory. `X:service` matches only prefix rules, so
    /// Service targets of exact-match providers get the Istio queries (a quirk
    /// kept for compatibility).
    pub fn for_provider(provider: &str) -> Observer {
        match provider {
            p if p.starts_with("appmesh") => Observer::AppMesh,
            "linkerd" => Observer::Linkerd,
            "istio" => Observer::Istio,
            "contour" => Observer::Contour,
            p if p.starts_with("gloo") => Observer::Gloo,
            "nginx" => Observer::Nginx,
            "kubernetes" => Observer::Http,
            p if p.starts_with("gatewayapi") => Observer::Http,
            "skipper" => Observer::Skipper,
            "traefik" => Observer::Traefik,
            "osm" => Observer::Osm,
            "kuma" => Observer::Kuma,
            "apisix" => Observer::Apisix,
            "knative" => Observer::Knative,
            _ => Observer::Istio,
        }
    }

    /// The Go template of one builtin query.
    pub fn query(self, builtin: Builtin) -> &'static str {
        let (success_rate, duration) = match self {
            Observer::Istio => (ISTIO_SR, ISTIO_DURATION),
            Observer::Linkerd => (LINKERD_SR, LINKERD_DURATION),
            Observer::Nginx => (NGINX_SR, NGINX_DURATION),
            Observer::Http => (HTTP_SR, HTTP_DURATION),
            Observer::Contour => (CONTOUR_SR, CONTOUR_DURATION),
            Observer::Gloo => (GLOO_SR, GLOO_DURATION),
            Observer::Traefik => (TRAEFIK_SR, TRAEFIK_DURATION),
            Observer::Skipper => (SKIPPER_SR, SKIPPER_DURATION),
            Observer::Apisix => (APISIX_SR, APISIX_DURATION),
            Observer::Kuma => (KUMA_SR, KUMA_DURATION),
            Observer::Osm => (OSM_SR, OSM_DURATION),
            Observer::Knative => (KNATIVE_SR, KNATIVE_DURATION),
            Observer::AppMesh => (APPMESH_SR, APPMESH_DURATION),
        };
        match builtin {
            Builtin::SuccessRate => success_rate,
            Builtin::Duration => duration,
        }
    }

    /// The model the queries see: Skipper route names replace non-word characters.
    pub fn model(self, mut model: Model) -> Model {
        if self == Observer::Skipper {
            for field in [
                &mut model.name,
                &mut model.namespace,
                &mut model.target,
                &mut model.service,
                &mut model.ingress,
            ] {
                *field = field
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
            }
        }
        model
    }

    /// Request duration in milliseconds from the query's value: only the
    /// generic HTTP histogram is in seconds.
    pub fn duration_ms(self, value: f64) -> f64 {
        if self == Observer::Http {
            value * 1000.0
        } else {
            value
        }
    }

    /// Flagger prefixes query errors with `running query failed: `, except the
    /// generic HTTP observer's success rate, which returns them bare.
    pub fn error_prefix(self, builtin: Builtin) -> &'static str {
        if self == Observer::Http && builtin == Builtin::SuccessRate {
            ""
        } else {
            "running query failed: "
        }
    }
}
