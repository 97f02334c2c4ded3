//! A Canary judged by a `datadog` MetricTemplate: the operator (a separate
//! process) queries a Datadog v1 API played by this test on 127.0.0.1, and
//! rolls back because Datadog's answer breaks the threshold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::json;

use crate::support::operator::OperatorTest;
use crate::support::podinfo::{
    INIT, RUN, SHORT, assert_deployment_initialized, canary, deployment, image_of, pod_spec_of,
    podinfo_deployment, set_image, yaml,
};

#[derive(Default)]
struct Seen {
    /// (query parameters, DD-API-KEY, DD-APPLICATION-KEY) of each query.
    queries: Vec<(HashMap<String, String>, String, String)>,
    validations: usize,
}

type Shared = Arc<Mutex<Seen>>;

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn query(State(seen): State<Shared>, headers: HeaderMap, RawQuery(raw): RawQuery) -> String {
    let url = reqwest::Url::parse(&format!("http://x/?{}", raw.unwrap_or_default())).unwrap();
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let from: f64 = params["from"].parse().unwrap();
    seen.lock().unwrap().queries.push((
        params,
        header(&headers, "dd-api-key"),
        header(&headers, "dd-application-key"),
    ));
    // Two points: Flagger (1.41+) reads the first, the newest is incomplete.
    json!({
        "status": "ok",
        "res_type": "time_series",
        "series": [{
            "metric": "trace.http.request.errors",
            "pointlist": [[from * 1000.0, 12.5], [from * 1000.0 + 60000.0, 0.1]],
            "length": 2
        }]
    })
    .to_string()
}

async fn validate(State(seen): State<Shared>, headers: HeaderMap) -> String {
    assert_eq!(header(&headers, "dd-api-key"), "api-key-1");
    seen.lock().unwrap().validations += 1;
    json!({"valid": true}).to_string()
}

async fn start_datadog() -> (String, Shared) {
    let seen = Shared::default();
    let app = Router::new()
        .route("/api/v1/query", get(query))
        .route("/api/v1/validate", get(validate))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_error_rate_rolls_back() {
    let t = OperatorTest::start("datadog").await;
    let ns = t.ns().to_string();
    let (address, seen) = start_datadog().await;
    t.apply(&json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "datadog"},
        "stringData": {"datadog_api_key": "api-key-1", "datadog_application_key": "app-key-1"}
    }))
    .await;
    t.apply(&yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
spec:
  provider:
    type: datadog
    address: {address}
    secretRef:
      name: datadog
  query: |
    100 - (
      sum:trace.http.request.hits{{service:{{{{ target }}}}, env:{{{{ namespace }}}}}}.as_count()
      -
      sum:trace.http.request.errors{{service:{{{{ target }}}}, env:{{{{ namespace }}}}}}.as_count()
    ) / sum:trace.http.request.hits{{service:{{{{ target }}}}}}.as_count() * 100
"#
    )))
    .await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    let analysis = "interval: 10s\nthreshold: 1\niterations: 3\nmetrics:\n  - name: error-rate\n    templateRef:\n      name: error-rate\n    thresholdRange:\n      max: 5\n    interval: 1m\n";
    t.apply(&canary("podinfo", "Deployment", "podinfo", analysis))
        .await;
    t.wait_phase("podinfo", "Initialized", INIT).await;
    assert_deployment_initialized(&t).await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_phase("podinfo", "Failed", RUN).await;
    t.wait_event(
        &format!("Halt podinfo.{ns} advancement error-rate 12.50 > 5"),
        SHORT,
    )
    .await;
    t.wait_event(
        &format!("Rolling back podinfo.{ns} failed checks threshold reached 1"),
        SHORT,
    )
    .await;
    t.wait_event(&format!("Canary failed! Scaling down podinfo.{ns}"), SHORT)
        .await;
    let primary = deployment(&t, "podinfo-primary").await;
    assert!(image_of(&pod_spec_of(&primary)).ends_with(":6.0.0"));

    let seen = seen.lock().unwrap();
    assert!(seen.validations >= 1, "IsOnline asks /api/v1/validate");
    let (params, api_key, app_key) = seen.queries.first().expect("one query").clone();
    assert_eq!(
        (api_key.as_str(), app_key.as_str()),
        ("api-key-1", "app-key-1")
    );
    let window: i64 = params["to"].parse::<i64>().unwrap() - params["from"].parse::<i64>().unwrap();
    assert_eq!(window, 600, "ten times the metric interval: {params:?}");
    let sent = &params["query"];
    assert!(
        sent.contains("sum:trace.http.request.errors{service:podinfo, env:")
            && sent.contains(&format!("env:{ns}}}")),
        "the query is rendered for the canary: {sent}"
    );
}
