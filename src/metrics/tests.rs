//! The adapter against one local axum server playing both Prometheus
//! (`/api/v1/query`) and the Kubernetes API (Secret GETs).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serin_actors::model::source::Source;
use serin_actors::model::spec::{TargetRef, TemplateRef, ThresholdRange};
use serin_actors::ports::{CanaryKey, MetricQuery, MetricsPort, PortError};
use tokio::time::Instant;

use super::*;
use crate::api::{Canary, MetricTemplate};
use crate::k8s::cache::testing::{self, store_of};

#[derive(Default)]
struct Seen {
    queries: Vec<String>,
    authorization: Vec<Option<String>>,
    custom: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Seen>>;

fn sample(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000.1,"{value}"]}}]}}}}"#
    )
}

async fn prometheus(
    State(seen): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    prometheus_answer(seen, headers, raw).await.into_response()
}

async fn prometheus_answer(
    seen: Shared,
    headers: HeaderMap,
    raw: Option<String>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let url = reqwest::Url::parse(&format!("http://x/?{}", raw.unwrap_or_default())).unwrap();
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let query = params.get("query").cloned().unwrap_or_default();
    {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut seen = seen.lock().unwrap();
        seen.queries.push(query.clone());
        seen.authorization.push(header("authorization"));
        seen.custom.push(header("x-scope-orgid"));
    }
    if query.contains("slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if query.contains("boom") {
        return (
            StatusCode::BAD_REQUEST,
            JSON,
            "bad_data: parse error".to_owned(),
        );
    }
    if query.contains("throttled") {
        let limited = [("retry-after", "120")];
        return (
            StatusCode::TOO_MANY_REQUESTS,
            limited,
            "slow down".to_owned(),
        );
    }
    let body = if query == "vector(1)" {
        sample("1")
    } else if query.contains("nodata") {
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_owned()
    } else if query.contains("nan") {
        sample("NaN")
    } else if query.contains("range") {
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#.to_owned()
    } else if query.contains("http_request_duration_seconds_bucket") {
        sample("0.2507")
    } else {
        sample("99.5")
    };
    (StatusCode::OK, JSON, body)
}

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

async fn secret(Path((namespace, name)): Path<(String, String)>) -> (StatusCode, String) {
    if namespace == "test" && name == "prom-auth" {
        // "czNjcmV0" is base64 for "s3cret".
        let body = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"prom-auth","namespace":"test"},"data":{"token":"czNjcmV0"}}"#;
        return (StatusCode::OK, body.to_owned());
    }
    let status = format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"secrets \"{name}\" not found","reason":"NotFound","details":{{"name":"{name}","kind":"secrets"}},"code":404}}"#
    );
    (StatusCode::NOT_FOUND, status)
}

struct Fixture {
    addr: SocketAddr,
    seen: Shared,
    adapter: MetricsAdapter,
    registry: Registry,
    /// The Canary the step carries (its source object).
    source: Source,
}

impl Fixture {
    /// A query of `metric` for the fixture's Canary.
    fn query(&self, metric: MetricSpec) -> MetricQuery {
        MetricQuery {
            source: self.source.clone(),
            ..query(metric)
        }
    }

    fn last_query(&self) -> String {
        self.seen.lock().unwrap().queries.last().cloned().unwrap()
    }

    fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
}

fn canary(addr: SocketAddr, provider: &str) -> Canary {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": provider,
            "metricsServer": format!("http://{addr}"),
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo-ing"},
            "service": {"port": 9898},
            "analysis": {}
        }
    }))
    .unwrap()
}

fn template(name: &str, provider: serde_json::Value, query: &str) -> MetricTemplate {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": "test"},
        "spec": {"provider": provider, "query": query}
    }))
    .unwrap()
}

async fn fixture(provider: &str, settings_server: Option<&str>) -> Fixture {
    let seen = Shared::default();
    let app = Router::new()
        .route("/api/v1/query", get(prometheus))
        .route("/api/v1/namespaces/{namespace}/secrets/{name}", get(secret))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let address = format!("http://{addr}");
    let templates = vec![
        template(
            "latency",
            serde_json::json!({
                "type": "prometheus",
                "address": address,
                "secretRef": {"name": "prom-auth"},
                "headers": {"X-Scope-OrgID": ["tenant-1"]}
            }),
            "histogram_quantile(0.99,\n  sum(rate(x{ns=\"{{ namespace }}\",direction=\"{{ variables.direction }}\"}[{{ interval }}])) by (le))\n",
        ),
        template(
            "broken",
            serde_json::json!({"type": "prometheus", "address": address}),
            "{{ if name }}x{{ end }}",
        ),
        template(
            "no-secret",
            serde_json::json!({"type": "prometheus", "address": address, "secretRef": {"name": "nope"}}),
            "x",
        ),
        template(
            "datadog",
            serde_json::json!({"type": "datadog", "address": "https://api.datadoghq.com"}),
            "x",
        ),
    ];
    let source = Source::new(1, Arc::new(canary(addr, provider)));
    let caches = Caches {
        metric_templates: store_of(templates),
        ..testing::empty()
    };
    let config = kube::Config::new(address.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let flags = crate::cli::parse(["serin".to_owned()]).unwrap().operator;
    let mut settings = Settings::from_flags(&flags);
    settings.mesh_provider = "istio".into();
    settings.metrics_server = settings_server.unwrap_or("http://127.0.0.1:1").to_owned();
    let mut registry = Registry::default();
    let recorder = Recorder::new(&mut registry, "test", "istio");
    let adapter = MetricsAdapter::new(client, caches, Arc::new(settings), Some(recorder));
    Fixture {
        addr,
        seen,
        adapter,
        registry,
        source,
    }
}

fn metric(name: &str) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        threshold_range: Some(ThresholdRange {
            min: Some(99.0),
            max: None,
        }),
        ..MetricSpec::default()
    }
}

fn templated(name: &str, reference: &str) -> MetricSpec {
    MetricSpec {
        template_ref: Some(TemplateRef {
            name: reference.into(),
            namespace: None,
        }),
        template_variables: BTreeMap::from([("direction".to_owned(), "inbound".to_owned())]),
        interval: "30s".into(),
        ..metric(name)
    }
}

/// A query without its Canary: only what the query itself says.
fn query(metric: MetricSpec) -> MetricQuery {
    MetricQuery {
        key: CanaryKey::new("test", "podinfo"),
        source: Source::default(),
        target: TargetRef {
            kind: "Deployment".into(),
            name: "podinfo".into(),
        },
        provider: "nginx".into(),
        metric,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn builtin_success_rate_sends_flaggers_nginx_query_and_records_it() {
    let f = fixture("nginx", None).await;
    let answer = f
        .adapter
        .check(&f.query(metric("request-success-rate")), soon())
        .await;
    assert_eq!(answer, Ok(MetricAnswer::Value(99.5)));
    assert_eq!(
        f.last_query(),
        r#" sum( rate( nginx_ingress_controller_requests{ namespace="test", ingress="podinfo-ing", canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="test", ingress="podinfo-ing", canary!="" }[1m] ) ) * 100"#
    );
    assert!(
        f.metrics_text().contains(
            r#"flagger_canary_metric_analysis{name="podinfo",namespace="test",metric="request-success-rate"} 99.5"#
        ),
        "{}",
        f.metrics_text()
    );
}

#[tokio::test]
async fn builtin_duration_of_the_generic_http_provider_is_seconds_times_1000() {
    let f = fixture("kubernetes", None).await;
    let answer = f
        .adapter
        .check(&f.query(metric("request-duration")), soon())
        .await;
    let Ok(MetricAnswer::Value(ms)) = answer else {
        panic!("unexpected {answer:?}");
    };
    assert!((ms - 250.7).abs() < 1e-9, "{ms}");
    assert!(f.last_query().starts_with(
        " histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{"
    ));
    // Recorded in seconds of whole milliseconds, like Flagger.
    assert!(
        f.metrics_text()
            .contains(r#"metric="request-duration"} 0.25"#)
    );
}

#[tokio::test]
async fn inline_queries_are_sent_collapsed_and_unrendered() {
    let f = fixture("nginx", None).await;
    let mut m = metric("custom");
    m.query = "sum(\n  up{job=\"{{ target }}\"}\n)".into();
    let answer = f.adapter.check(&f.query(m.clone()), soon()).await;
    assert_eq!(answer, Ok(MetricAnswer::Value(99.5)));
    assert_eq!(f.last_query(), r#"sum( up{job="{{ target }}"} )"#);

    m.query = "nodata".into();
    let answer = f.adapter.check(&f.query(m.clone()), soon()).await;
    assert_eq!(answer, Ok(MetricAnswer::NoValues("no values found".into())));
    m.query = "nan".into();
    let answer = f.adapter.check(&f.query(m.clone()), soon()).await;
    assert_eq!(answer, Ok(MetricAnswer::NoValues("no values found".into())));
    m.query = "range".into();
    let answer = f.adapter.check(&f.query(m.clone()), soon()).await;
    assert_eq!(
        answer,
        Ok(MetricAnswer::QueryFailed(
            "query returned multiple values".into()
        ))
    );
    m.query = "boom".into();
    let answer = f.adapter.check(&f.query(m.clone()), soon()).await;
    assert_eq!(
        answer,
        Ok(MetricAnswer::QueryFailed(
            "error response: bad_data: parse error".into()
        ))
    );
    // A rate limit longer than the step can wait is not a failed check:
    // the port error defers the step.
    m.query = "throttled".into();
    let answer = f.adapter.check(&f.query(m), soon()).await;
    assert_eq!(
        answer,
        Err(PortError::Throttled(
            "rate limited (429 Too Many Requests, retry after 120s): slow down".into()
        ))
    );
    assert!(PortError::Throttled(String::new()).is_serins());
}

#[tokio::test]
async fn template_renders_authenticates_and_sends_headers() {
    let f = fixture("nginx", None).await;
    let answer = f
        .adapter
        .check(&f.query(templated("latency", "latency")), soon())
        .await;
    assert_eq!(answer, Ok(MetricAnswer::Value(99.5)));
    assert_eq!(
        f.last_query(),
        r#"histogram_quantile(0.99, sum(rate(x{ns="test",direction="inbound"}[30s])) by (le)) "#
    );
    let seen = f.seen.lock().unwrap();
    assert_eq!(
        seen.authorization.last().cloned().flatten().as_deref(),
        Some("Bearer s3cret")
    );
    assert_eq!(
        seen.custom.last().cloned().flatten().as_deref(),
        Some("tenant-1")
    );
}

#[tokio::test]
async fn template_failures_are_flaggers_event_texts() {
    let f = fixture("nginx", None).await;
    let check = |reference: &str| {
        let q = f.query(templated("m", reference));
        f.adapter.check(&q, soon())
    };
    assert_eq!(
        check("missing").await,
        Ok(MetricAnswer::TemplateError(
            "Metric template missing.test error: metrictemplate.flagger.app \"missing\" not found"
                .into()
        ))
    );
    assert_eq!(
        check("broken").await,
        Ok(MetricAnswer::TemplateError(
            "Metric template broken.test query render error: template parsing failed: template: tmpl:1: {{if}} actions are not supported by Serin's template renderer".into()
        ))
    );
    assert_eq!(
        check("no-secret").await,
        Ok(MetricAnswer::TemplateError(
            "Metric template no-secret.test secret nope error: secrets \"nope\" not found".into()
        ))
    );
    assert_eq!(
        check("datadog").await,
        Ok(MetricAnswer::TemplateError(
            "Metric template datadog.test provider datadog error: datadog credentials does not contain datadog_api_key".into()
        ))
    );
    // A missing variable is Go's `missingkey=error`.
    let mut m = templated("m", "latency");
    m.template_variables.clear();
    let Ok(MetricAnswer::TemplateError(text)) = f.adapter.check(&f.query(m), soon()).await else {
        panic!("missing variable must fail");
    };
    assert!(text.starts_with("Metric template latency.test query render error: template excution failed: template: tmpl:2:"), "{text}");
    assert!(
        text.ends_with("map has no entry for key \"direction\""),
        "{text}"
    );
}

#[tokio::test]
async fn builtin_errors_carry_the_observer_prefix() {
    let f = fixture("nginx", None).await;
    // Without its Canary, the unreachable -metrics-server: Flagger's
    // request error, wrapped.
    let mut q = query(metric("request-success-rate"));
    q.key = CanaryKey::new("test", "elsewhere");
    let Ok(MetricAnswer::QueryFailed(text)) = f.adapter.check(&q, soon()).await else {
        panic!("unreachable server must fail");
    };
    assert!(
        text.starts_with(
            "running query failed: request failed: Get \"http://127.0.0.1:1/api/v1/query?query=+sum%28+rate%28+nginx"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn the_callers_deadline_is_a_port_timeout() {
    let f = fixture("nginx", None).await;
    let mut m = metric("custom");
    m.query = "slow".into();
    let deadline = Instant::now() + Duration::from_millis(200);
    assert_eq!(
        f.adapter.check(&f.query(m), deadline).await,
        Err(PortError::Timeout)
    );
}

#[tokio::test]
async fn providers_available_checks_builtin_prometheus_and_templates() {
    let f = fixture("nginx", None).await;
    let key = CanaryKey::new("test", "podinfo");
    let metrics = vec![metric("request-success-rate"), templated("m", "latency")];
    assert_eq!(
        f.adapter
            .providers_available(&key, &f.source, &metrics, soon())
            .await,
        Ok(Ok(()))
    );
    assert!(
        f.seen
            .lock()
            .unwrap()
            .queries
            .iter()
            .all(|q| q == "vector(1)")
    );

    let metrics = vec![templated("m", "datadog")];
    assert_eq!(
        f.adapter.providers_available(&key, &f.source, &metrics, soon()).await,
        Ok(Err(
            "metric template datadog.test provider datadog error: datadog credentials does not contain datadog_api_key".into()
        ))
    );

    // Without its Canary the builtin check uses -metrics-server.
    let other = CanaryKey::new("test", "elsewhere");
    let Ok(Err(text)) = f
        .adapter
        .providers_available(
            &other,
            &Source::default(),
            &[metric("request-duration")],
            soon(),
        )
        .await
    else {
        panic!("unreachable -metrics-server must fail");
    };
    assert!(
        text.starts_with("prometheus not avaiable: running query failed: request failed: Get \"http://127.0.0.1:1/api/v1/query?query=vector%281%29\": "),
        "{text}"
    );
    let _ = f.addr;
}
