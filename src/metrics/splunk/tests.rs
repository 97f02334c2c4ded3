use std::time::Duration;

use serde_json::json;

use super::*;
use crate::metrics::fake::{Answer, FakeVendor, Setup, deadline};

const PROGRAM: &str = "data('service.request.count', filter=filter('sf_service', 'podinfo') and filter('sf_error', 'true')).sum().publish()";

/// One SSE event as SignalFlow writes it: pretty JSON, a `data:` line each.
fn event(name: &str, body: Value) -> String {
    let pretty = serde_json::to_string_pretty(&body).unwrap();
    let lines: Vec<String> = pretty.lines().map(|l| format!("data: {l}")).collect();
    format!("event: {name}\n{}\n\n", lines.join("\n"))
}

fn control(kind: &str) -> String {
    event(
        "control-message",
        json!({"event": kind, "timestampMs": 1_753_096_800_000_u64}),
    )
}

fn data(points: &[(&str, Value)]) -> String {
    let points: Vec<Value> = points
        .iter()
        .map(|(id, v)| json!({"tsId": id, "value": v}))
        .collect();
    event(
        "data",
        json!({"data": points, "logicalTimestampMs": 1_753_096_740_000_u64, "maxDelayMs": 1000}),
    )
}

/// A whole computation: start, metadata, the data messages, end.
fn stream(messages: &[String]) -> String {
    let mut out = control("STREAM_START");
    out += &event(
        "control-message",
        json!({"event": "JOB_START", "handle": "FxL9jvCAwAA", "timestampMs": 1_753_096_800_100_u64}),
    );
    out += &event(
        "metadata",
        json!({"tsId": "AAAAAKJ5nQs", "properties": {
            "sf_metric": "service.request.count", "sf_streamLabel": "errors",
            "sf_resolutionMs": 60000, "sf_type": "MetricTimeSeries"}}),
    );
    for m in messages {
        out += m;
    }
    out + &control("END_OF_CHANNEL")
}

fn sse(body: String) -> Answer {
    Answer::ok(body).header("content-type", "text/event-stream")
}

fn setup(address: &str) -> Setup {
    Setup::new(
        json!({"type": "splunk", "address": address}),
        "1m",
        Some(&[("sf_token_key", "sf-secret-token")]),
    )
}

fn failed(result: Result<impl std::fmt::Debug, QueryError>) -> String {
    match result {
        Err(QueryError::Failed(text)) => text,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn executes_the_program_over_ten_intervals() {
    let answer = stream(&[
        data(&[("AAAAAKJ5nQs", json!(3))]),
        data(&[("AAAAAKJ5nQs", json!(4.5))]),
    ]);
    let vendor = FakeVendor::start(sse(answer)).await;
    let setup = setup(&vendor.url());
    let splunk = Splunk::new(&setup.config()).unwrap();
    assert_eq!(splunk.run_query(PROGRAM, deadline(10)).await, Ok(4.5));

    let seen = vendor.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v2/signalflow/execute");
    assert_eq!(seen.header("x-sf-token"), Some("sf-secret-token"));
    assert_eq!(seen.header("content-type"), Some("text/plain"));
    assert_eq!(seen.body, PROGRAM);
    let ms = |name: &str| seen.param(name).unwrap().parse::<u128>().unwrap();
    assert_eq!(ms("stop") - ms("start"), 600_000, "10 x the 1m interval");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(now.abs_diff(ms("stop")) < 5_000);
    assert_eq!(seen.param("immediate"), Some("true"));
    assert_eq!(seen.query.len(), 3);
}

#[tokio::test]
async fn addresses_are_rewritten_as_flagger_does() {
    let urls = |address: &str| {
        let splunk = Splunk::new(&setup(address).config()).unwrap();
        (splunk.execute.to_string(), splunk.validation.to_string())
    };
    assert_eq!(
        urls("https://api.us1.signalfx.com"),
        (
            "https://stream.us1.signalfx.com/v2/signalflow/execute".to_owned(),
            "https://api.us1.signalfx.com/v2/metric?limit=1".to_owned()
        )
    );
    assert_eq!(
        urls("wss://stream.eu0.signalfx.com"),
        (
            "https://stream.eu0.signalfx.com/v2/signalflow/execute".to_owned(),
            "https://api.eu0.signalfx.com/v2/metric?limit=1".to_owned()
        )
    );
}

#[tokio::test]
async fn answers_map_to_flaggers_values_and_texts() {
    let vendor = FakeVendor::start(sse(stream(&[]))).await;
    let setup = setup(&vendor.url());
    let splunk = Splunk::new(&setup.config()).unwrap();
    let run = || splunk.run_query(PROGRAM, deadline(10));
    let no_values = Err(QueryError::NoValues(
        "invalid response: no values found".into(),
    ));

    // No data at all, only nulls, or nothing readable.
    assert_eq!(run().await, no_values);
    vendor.then(sse(stream(&[data(&[("AAAAAKJ5nQs", Value::Null)])])));
    assert_eq!(run().await, no_values);
    vendor.then(sse("event: data\ndata: {\"data\": [ {\n\n".to_owned()));
    assert_eq!(run().await, no_values);

    // A null point of a second series does not count as a second series.
    vendor.then(sse(stream(&[data(&[
        ("AAAAAKJ5nQs", json!(7)),
        ("AAAAAHdxEbk", Value::Null),
    ])])));
    assert_eq!(run().await, Ok(7.0));
    vendor.then(sse(stream(&[data(&[
        ("AAAAAKJ5nQs", json!(1)),
        ("AAAAAHdxEbk", json!(2)),
    ])])));
    assert_eq!(
        failed(run().await),
        "invalid response: query returned multiple values"
    );
    vendor.then(sse(stream(&[data(&[("AAAAAKJ5nQs", json!("3"))])])));
    assert_eq!(
        failed(run().await),
        "invalid response: UnsupportedValueType"
    );

    vendor.then(sse(control("STREAM_START")
        + &event(
            "error",
            json!({"error": 400, "errorType": "ANALYTICS_PROGRAM_ERROR",
                   "message": "Invalid SignalFlow program: unknown function 'dta'"}),
        )));
    assert_eq!(
        failed(run().await),
        "error executing query: 400 (ANALYTICS_PROGRAM_ERROR): Invalid SignalFlow program: unknown function 'dta'"
    );
    vendor.then(Answer::status(
        401,
        r#"{"code":401,"message":"Unauthorized"}"#,
    ));
    let text = failed(run().await);
    assert_eq!(
        text,
        r#"error executing query: 401 Unauthorized: {"code":401,"message":"Unauthorized"}"#
    );
    assert!(!text.contains("sf-secret-token"));

    let closed = self::setup("http://127.0.0.1:9");
    let text = failed(
        Splunk::new(&closed.config())
            .unwrap()
            .run_query(PROGRAM, deadline(10))
            .await,
    );
    assert!(
        text.starts_with("error executing query: request failed: Post \"http://127.0.0.1:9/v2/signalflow/execute?start="),
        "{text}"
    );
}

#[tokio::test]
async fn rate_limits_and_deadlines_defer_the_step() {
    let vendor = FakeVendor::start(sse(stream(&[data(&[("A", json!(1))])]))).await;
    let setup = setup(&vendor.url());
    let splunk = Splunk::new(&setup.config()).unwrap();
    vendor.then(Answer::status(429, "Too many requests").header("retry-after", "120"));
    let err = splunk.run_query(PROGRAM, deadline(10)).await.unwrap_err();
    assert!(matches!(err, QueryError::Throttled(_)), "{err:?}");
    vendor.then(sse(stream(&[])).after(Duration::from_secs(7)));
    assert_eq!(
        splunk.run_query(PROGRAM, deadline(1)).await,
        Err(QueryError::Deadline)
    );
}

#[tokio::test]
async fn factory_errors_are_flaggers() {
    let err = |spec: Value, interval: &str, secret: Option<&[(&str, &str)]>| {
        let setup = Setup::new(spec, interval, secret);
        Splunk::new(&setup.config()).err().unwrap_or_default()
    };
    let token: &[(&str, &str)] = &[("sf_token_key", "t")];
    assert_eq!(
        err(json!({"type": "splunk"}), "1m", Some(token)),
        "splunk endpoint is not set"
    );
    let address = json!({"type": "splunk", "address": "https://api.us1.signalfx.com"});
    assert_eq!(
        err(address.clone(), "1m", None),
        "splunk credentials does not contain sf_token_key"
    );
    assert_eq!(
        err(address.clone(), "1m", Some(&[("token", "t")])),
        "splunk credentials does not contain sf_token_key"
    );
    assert!(err(address, "1x", Some(token)).starts_with("error parsing metric interval: "));
}

#[tokio::test]
async fn is_online_lists_one_metric_on_the_api_host() {
    let vendor = FakeVendor::start(Answer::ok(
        r#"{"count":1,"results":[{"name":"service.request.count","type":"COUNTER","created":1700000000000}]}"#,
    ))
    .await;
    let setup = setup(&vendor.url());
    let splunk = Splunk::new(&setup.config()).unwrap();
    assert_eq!(splunk.is_online(deadline(10)).await, Ok(()));
    let seen = vendor.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/v2/metric")
    );
    assert_eq!(seen.param("limit"), Some("1"));
    assert_eq!(seen.header("x-sf-token"), Some("sf-secret-token"));

    vendor.then(Answer::status(
        401,
        r#"{"code":401,"message":"Unauthorized"}"#,
    ));
    assert_eq!(
        failed(splunk.is_online(deadline(10)).await),
        r#"error response: {"code":401,"message":"Unauthorized"}"#
    );
}
