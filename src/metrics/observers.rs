//! The builtin `request-success-rate` and `request-duration` PromQL per metrics
//! provider, laid out like Flagger's so that, whitespace collapsed, the
//! queries sent to Prometheus are the same strings.

use serin_actors::model::spec::Builtin;

use super::render::Model;

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

const ISTIO_SR: &str = r#"
	sum(
		rate(
			istio_requests_total{
				reporter="destination",
				destination_workload_namespace="{{ namespace }}",
				destination_workload=~"{{ target }}",
				response_code!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			istio_requests_total{
				reporter="destination",
				destination_workload_namespace="{{ namespace }}",
				destination_workload=~"{{ target }}"
			}[{{ interval }}]
		)
	)
	* 100"#;

const ISTIO_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				istio_request_duration_milliseconds_bucket{
					reporter="destination",
					destination_workload_namespace="{{ namespace }}",
					destination_workload=~"{{ target }}"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const LINKERD_SR: &str = r#"
	sum(
		rate(
			response_total{
				namespace="{{ namespace }}",
				deployment=~"{{ target }}",
				classification!="failure",
				direction="inbound"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			response_total{
				namespace="{{ namespace }}",
				deployment=~"{{ target }}",
				direction="inbound"
			}[{{ interval }}]
		)
	)
	* 100"#;

const LINKERD_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				response_latency_ms_bucket{
					namespace="{{ namespace }}",
					deployment=~"{{ target }}",
					direction="inbound"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const NGINX_SR: &str = r#"
	sum(
		rate(
			nginx_ingress_controller_requests{
				namespace="{{ namespace }}",
				ingress="{{ ingress }}",
				canary!="",
				status!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			nginx_ingress_controller_requests{
				namespace="{{ namespace }}",
				ingress="{{ ingress }}",
				canary!=""
			}[{{ interval }}]
		)
	)
	* 100"#;

const NGINX_DURATION: &str = r#"
	sum(
		rate(
			nginx_ingress_controller_response_duration_seconds_sum{
				namespace="{{ namespace }}",
				ingress="{{ ingress }}",
				canary!=""
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			nginx_ingress_controller_response_duration_seconds_count{
				namespace="{{ namespace }}",
				ingress="{{ ingress }}",
				canary!=""
			}[{{ interval }}]
		)
	)
	* 1000"#;

const HTTP_SR: &str = r#"
	sum(
		rate(
			http_request_duration_seconds_count{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
				status!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			http_request_duration_seconds_count{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
			}[{{ interval }}]
		)
	)
	* 100"#;

const HTTP_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				http_request_duration_seconds_bucket{
					kubernetes_namespace="{{ namespace }}",
					kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const CONTOUR_SR: &str = r#"
	sum(
		rate(
			envoy_cluster_upstream_rq{
				envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+",
				envoy_response_code!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			envoy_cluster_upstream_rq{
				envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+",
			}[{{ interval }}]
		)
	)
	* 100"#;

const CONTOUR_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				envoy_cluster_upstream_rq_time_bucket{
					envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+",
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const GLOO_SR: &str = r#"
	sum(
		rate(
			envoy_cluster_upstream_rq{
				envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+",
				envoy_response_code!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			envoy_cluster_upstream_rq{
				envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+",
			}[{{ interval }}]
		)
	)
	* 100"#;

const GLOO_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				envoy_cluster_upstream_rq_time_bucket{
					envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+",
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const TRAEFIK_SR: &str = r#"
	sum(
		rate(
			traefik_service_request_duration_seconds_bucket{
				service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd",
				code!~"5..",
				le="+Inf"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			traefik_service_request_duration_seconds_bucket{
				service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd",
				le="+Inf"
			}[{{ interval }}]
		)
	) * 100"#;

const TRAEFIK_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				traefik_service_request_duration_seconds_bucket{
					service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"
				}[{{ interval }}]
			)
		) by (le)
	) * 1000"#;

const SKIPPER_SR: &str = r#"{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}
	sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",code!~"5..",le="+Inf"}[{{ interval }}])) / 
	sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",le="+Inf"}[{{ interval }}])) * 100"#;

const SKIPPER_DURATION: &str = r#"{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}
	sum(rate(skipper_serve_route_duration_seconds_sum{route=~"{{ $route }}"}[{{ interval }}])) / 
	sum(rate(skipper_serve_route_duration_seconds_count{route=~"{{ $route }}"}[{{ interval }}])) * 1000"#;

const APISIX_SR: &str = r#"
	sum(
		rate(
			apisix_http_status{
				route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+",
				code!~"5.."
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			apisix_http_status{
				route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"
			}[{{ interval }}]
		)
	) * 100"#;

const APISIX_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				apisix_http_latency_bucket{
					type=~"request",
					route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const KUMA_SR: &str = r#"
	sum(
		rate(
			envoy_cluster_upstream_rq{
				service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+",
				envoy_response_code!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			envoy_cluster_upstream_rq{
				service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+",
			}[{{ interval }}]
		)
	)
	* 100"#;

const KUMA_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				envoy_cluster_upstream_rq_time_bucket{
					service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+",
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const OSM_SR: &str = r#"
	sum(
		rate(
			osm_request_total{
				destination_namespace="{{ namespace }}",
				destination_kind="Deployment",
				destination_name="{{ target }}",
				response_code!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			osm_request_total{
				destination_namespace="{{ namespace }}",
				destination_kind="Deployment",
				destination_name="{{ target }}"
			}[{{ interval }}]
		)
	)
	* 100"#;

const OSM_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				osm_request_duration_ms_bucket{
					destination_namespace="{{ namespace }}",
					destination_kind="Deployment",
					destination_name="{{ target }}"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const KNATIVE_SR: &str = r#"
	sum(
		rate(
			envoy_cluster_upstream_rq{
				envoy_cluster_name=~"{{ namespace }}/{{ route }}",
				envoy_response_code!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			envoy_cluster_upstream_rq{
				envoy_cluster_name=~"{{ namespace }}/{{ route }}",
			}[{{ interval }}]
		)
	)
	* 100"#;

const KNATIVE_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				envoy_cluster_upstream_rq_time_bucket{
					envoy_cluster_name=~"{{ namespace }}/{{ route }}",
				}[{{ interval }}]
			)
		) by (le)
	)"#;

const APPMESH_SR: &str = r#"
	sum(
		rate(
			envoy_cluster_upstream_rq{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
				envoy_response_code!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			envoy_cluster_upstream_rq{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
			}[{{ interval }}]
		)
	)
	* 100"#;

const APPMESH_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				envoy_cluster_upstream_rq_time_bucket{
					kubernetes_namespace="{{ namespace }}",
					kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::prometheus::collapse_whitespace;
    use crate::metrics::render::render;

    fn model(namespace: &str) -> Model {
        Model {
            name: "podinfo".into(),
            namespace: namespace.into(),
            target: "podinfo".into(),
            service: "podinfo".into(),
            ingress: "podinfo".into(),
            route: "podinfo".into(),
            interval: "1m".into(),
            ..Model::default()
        }
    }

    fn sent(observer: Observer, builtin: Builtin, namespace: &str) -> String {
        let query = render(observer.query(builtin), &observer.model(model(namespace))).unwrap();
        collapse_whitespace(&query)
    }

    /// Flagger's observer tests' expected strings.
    #[test]
    fn builtin_queries_match_flagger() {
        use Builtin::{Duration, SuccessRate};
        let cases = [
            (
                Observer::Istio,
                SuccessRate,
                "default",
                r#" sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) * 100"#,
            ),
            (
                Observer::Istio,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Linkerd,
                SuccessRate,
                "default",
                r#" sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100"#,
            ),
            (
                Observer::Linkerd,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Nginx,
                SuccessRate,
                "nginx",
                r#" sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 100"#,
            ),
            (
                Observer::Nginx,
                Duration,
                "nginx",
                r#" sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 1000"#,
            ),
            (
                Observer::Http,
                SuccessRate,
                "default",
                r#" sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[1m] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100"#,
            ),
            (
                Observer::Http,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Contour,
                SuccessRate,
                "default",
                r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100"#,
            ),
            (
                Observer::Contour,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Gloo,
                SuccessRate,
                "default",
                r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) * 100"#,
            ),
            (
                Observer::Gloo,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Traefik,
                SuccessRate,
                "default",
                r#" sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[1m] ) ) * 100"#,
            ),
            (
                Observer::Traefik,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd" }[1m] ) ) by (le) ) * 1000"#,
            ),
            (
                Observer::Skipper,
                SuccessRate,
                "skipper-ns",
                r#" sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper_ns__podinfo_canary__.*__podinfo_canary(_[0-9]+)?",code!~"5..",le="+Inf"}[1m])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper_ns__podinfo_canary__.*__podinfo_canary(_[0-9]+)?",le="+Inf"}[1m])) * 100"#,
            ),
            (
                Observer::Skipper,
                Duration,
                "default",
                r#" sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_default__podinfo_canary__.*__podinfo_canary(_[0-9]+)?"}[1m])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_default__podinfo_canary__.*__podinfo_canary(_[0-9]+)?"}[1m])) * 1000"#,
            ),
            (
                Observer::Apisix,
                SuccessRate,
                "default",
                r#" sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+", code!~"5.." }[1m] ) ) / sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) * 100"#,
            ),
            (
                Observer::Apisix,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Kuma,
                SuccessRate,
                "default",
                r#" sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) * 100"#,
            ),
            (
                Observer::Kuma,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Osm,
                SuccessRate,
                "default",
                r#" sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) * 100"#,
            ),
            (
                Observer::Osm,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::Knative,
                SuccessRate,
                "default",
                r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo", }[1m] ) ) * 100"#,
            ),
            (
                Observer::Knative,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default/podinfo", }[1m] ) ) by (le) )"#,
            ),
            (
                Observer::AppMesh,
                SuccessRate,
                "default",
                r#" sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100"#,
            ),
            (
                Observer::AppMesh,
                Duration,
                "default",
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )"#,
            ),
        ];
        for (observer, builtin, namespace, expected) in cases {
            assert_eq!(
                sent(observer, builtin, namespace),
                expected,
                "{observer:?} {builtin:?}"
            );
        }
    }

    #[test]
    fn provider_selection_follows_flagger() {
        let pick = |p: Option<&str>, mesh: &str, service: bool| {
            Observer::for_provider(&metrics_provider(p, mesh, service))
        };
        assert_eq!(pick(None, "istio", false), Observer::Istio);
        assert_eq!(pick(Some("nginx"), "istio", false), Observer::Nginx);
        assert_eq!(pick(Some("nginx"), "linkerd", false), Observer::Linkerd);
        assert_eq!(pick(Some("gatewayapi:v1"), "istio", false), Observer::Http);
        assert_eq!(pick(Some("kubernetes"), "istio", false), Observer::Http);
        assert_eq!(
            pick(Some("appmesh:v1beta2"), "istio", false),
            Observer::AppMesh
        );
        assert_eq!(pick(Some("gloo"), "istio", false), Observer::Gloo);
        assert_eq!(pick(Some("knative"), "istio", false), Observer::Knative);
        // The `:service` quirk: exact-match providers fall back to Istio.
        assert_eq!(pick(Some("kubernetes"), "istio", true), Observer::Istio);
        assert_eq!(pick(Some("gatewayapi:v1"), "istio", true), Observer::Http);
        assert_eq!(metrics_provider(None, "smi:crossover", false), "crossover");
        assert_eq!(
            metrics_provider(Some("nginx"), "istio", true),
            "nginx:service"
        );
        assert_eq!(Observer::Http.duration_ms(0.1), 100.0);
        assert_eq!(Observer::Istio.duration_ms(100.0), 100.0);
    }
}
