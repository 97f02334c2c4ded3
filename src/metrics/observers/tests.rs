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
