use std::time::Duration;

use serde_json::json;

use super::shape::{go_float, go_time, metric_data_queries};
use super::*;
use crate::metrics::fake::{Answer, FakeVendor, Seen, Setup, deadline};

const QUERY: &str = r#"[
    {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
    {"id": "m1", "ReturnData": false, "Comment": "dropped, as Go drops it",
     "MetricStat": {"Metric": {"Namespace": "MyApplication", "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": "MyFunc"}]},
      "Period": 300, "Stat": "Sum", "Unit": "Count"}},
    {"Id": "m2", "ReturnData": false,
     "MetricStat": {"Metric": {"Namespace": "MyApplication", "MetricName": "Invocations",
        "Dimensions": [{"Name": "FunctionName", "Value": "MyFunc"}]},
      "Period": 300, "Stat": "Sum"}}
]"#;

/// A JSON-protocol `GetMetricData` answer, newest value first.
const ANSWER: &str = r#"{"Messages":[],"MetricDataResults":[{"Id":"e1","Label":"ErrorRate","StatusCode":"Complete","Timestamps":[1753096800,1753096500],"Values":[0.25,0.5]}]}"#;

fn env(pairs: &[(&'static str, &'static str)]) -> Env {
    let pairs = pairs.to_vec();
    Arc::new(move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

fn keys() -> Env {
    env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_SESSION_TOKEN", "session-token"),
    ])
}

fn setup(vendor: &FakeVendor) -> Setup {
    Setup::new(
        json!({"type": "cloudwatch", "region": "us-east-1", "address": vendor.url()}),
        "1m",
        None,
    )
}

fn provider(setup: &Setup) -> CloudWatch {
    CloudWatch::with_env(&setup.config(), keys()).unwrap()
}

fn failed(result: Result<impl std::fmt::Debug, QueryError>) -> String {
    match result {
        Err(QueryError::Failed(text)) => text,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// `20260721T101500Z` as a time.
fn amz_date(text: &str) -> SystemTime {
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // Days from civil (Howard Hinnant), inverse of `go_time`'s.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15);
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// Signs what the vendor received again, with the same key and time: the
/// signature matches only if every signed header arrived as signed.
fn verify_sigv4(seen: &Seen, url: &str) {
    let auth = seen.header("authorization").unwrap();
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").unwrap();
    let parts: Vec<&str> = rest.split(", ").collect();
    let credential = parts[0].strip_prefix("Credential=").unwrap();
    let signed = parts[1].strip_prefix("SignedHeaders=").unwrap();
    let signature = parts[2].strip_prefix("Signature=").unwrap();
    let date = seen.header("x-amz-date").unwrap();
    assert_eq!(
        credential,
        format!(
            "AKIDEXAMPLE/{}/us-east-1/monitoring/aws4_request",
            &date[..8]
        )
    );
    assert_eq!(
        signed,
        "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
    );
    let headers: Vec<(&str, &str)> = signed
        .split(';')
        .map(|name| (name, seen.header(name).unwrap()))
        .collect();
    let identity: Identity = AwsCredentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token".into()),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("monitoring")
        .time(amz_date(date))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        &seen.method,
        format!("{url}{}", seen.path),
        headers.into_iter(),
        SignableBody::Bytes(seen.body.as_bytes()),
    )
    .unwrap();
    let (_, again) = sign(request, &params).unwrap().into_parts();
    assert_eq!(signature, again);
}

#[tokio::test]
async fn sends_a_signed_get_metric_data_over_ten_intervals() {
    let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
    let setup = setup(&vendor);
    let value = provider(&setup).run_query(QUERY, deadline(10)).await;
    assert_eq!(value, Ok(0.25));

    let seen = vendor.last();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/"));
    assert!(seen.query.is_empty());
    assert_eq!(seen.header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(
        seen.header("x-amz-target"),
        Some("GraniteServiceVersion20100801.GetMetricData")
    );
    assert_eq!(seen.header("x-amz-security-token"), Some("session-token"));
    verify_sigv4(&seen, &vendor.url());

    let body: Value = serde_json::from_str(&seen.body).unwrap();
    let (start, end) = (
        body["StartTime"].as_u64().unwrap(),
        body["EndTime"].as_u64().unwrap(),
    );
    assert_eq!(end - start, 600, "10 x the 1m interval");
    let now = unix_seconds(SystemTime::now());
    assert!(now.abs_diff(end) <= 5, "{end} is not now ({now})");
    assert_eq!(body["MaxDatapoints"], 20);
    assert_eq!(
        body["MetricDataQueries"],
        metric_data_queries(QUERY).unwrap()
    );
    // Go's case-insensitive field names, unknown fields dropped.
    assert_eq!(
        body["MetricDataQueries"][1],
        json!({"Id": "m1", "ReturnData": false, "MetricStat": {
            "Metric": {"Namespace": "MyApplication", "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": "MyFunc"}]},
            "Period": 300, "Stat": "Sum", "Unit": "Count"}})
    );
}

#[tokio::test]
async fn answers_map_to_flaggers_values_and_texts() {
    let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
    let setup = setup(&vendor);
    let cw = provider(&setup);
    let run = || cw.run_query(QUERY, deadline(10));

    vendor.then(Answer::ok(r#"{"Messages":[],"MetricDataResults":[]}"#));
    assert_eq!(
        run().await,
        Err(QueryError::NoValues(
            "invalid response: {\n\n}: no values found".into()
        ))
    );
    vendor.then(Answer::ok(
        r#"{"MetricDataResults":[{"Id":"e1","Label":"ErrorRate","StatusCode":"Complete","Timestamps":[],"Values":[]}]}"#,
    ));
    assert_eq!(
        run().await,
        Err(QueryError::NoValues(
            "invalid reponse {\n  MetricDataResults: [{\n      Id: \"e1\",\n      Label: \"ErrorRate\",\n      StatusCode: \"Complete\"\n    }]\n}: no values found"
                .into()
        ))
    );
    vendor.then(Answer::ok("<html>"));
    assert!(
        failed(run().await).starts_with(
            "error requesting cloudwatch: SerializationError: failed decoding JSON RPC response\n\tstatus code: 200\ncaused by: "
        )
    );
    vendor.then(Answer::status(
        400,
        r#"{"__type":"com.amazonaws.cloudwatch#InvalidParameterValueException","message":"The value m3 for parameter MetricDataQueries is not valid."}"#,
    ));
    assert_eq!(
        failed(run().await),
        "error requesting cloudwatch: InvalidParameterValue: The value m3 for parameter MetricDataQueries is not valid.\n\tstatus code: 400"
    );
    vendor.then(Answer::status(
        403,
        r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:iam::123456789012:user/flagger is not authorized to perform: cloudwatch:GetMetricData"}"#,
    ));
    assert_eq!(
        failed(run().await),
        "error requesting cloudwatch: AccessDenied: User: arn:aws:iam::123456789012:user/flagger is not authorized to perform: cloudwatch:GetMetricData\n\tstatus code: 403"
    );
    vendor.then(Answer::status(502, "Bad Gateway"));
    assert_eq!(
        failed(run().await),
        "error requesting cloudwatch: SerializationError: failed to unmarshal error message\n\tstatus code: 502"
    );
    // The query is checked before anything is sent.
    let sent = vendor.requests().len();
    assert_eq!(
        failed(cw.run_query("{", deadline(10)).await),
        "error unmarshaling query: unexpected end of JSON input"
    );
    assert_eq!(
        failed(cw.run_query(r#"{"Id": "e1"}"#, deadline(10)).await),
        "error unmarshaling query: json: cannot unmarshal object into Go value of type []*cloudwatch.MetricDataQuery"
    );
    assert_eq!(
        failed(
            cw.run_query(r#"[{"MetricStat": {"Period": "5m"}}]"#, deadline(10))
                .await
        ),
        "error unmarshaling query: json: cannot unmarshal string into Go struct field MetricStat.MetricStat.Period of type int64"
    );
    assert_eq!(vendor.requests().len(), sent);
}

#[tokio::test]
async fn rate_limits_and_deadlines_defer_the_step() {
    let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
    let setup = setup(&vendor);
    let cw = provider(&setup);
    vendor.then(Answer::status(429, "{}").header("retry-after", "120"));
    let err = cw.run_query(QUERY, deadline(10)).await.unwrap_err();
    assert!(matches!(err, QueryError::Throttled(_)), "{err:?}");
    // CloudWatch's own throttling answer is a 400.
    vendor.then(Answer::status(
        400,
        r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#,
    ));
    assert_eq!(
        cw.run_query(QUERY, deadline(10)).await,
        Err(QueryError::Throttled(
            "rate limited (400 Bad Request): Throttling: Rate exceeded".into()
        ))
    );
    vendor.then(Answer::ok(ANSWER).after(Duration::from_secs(7)));
    assert_eq!(
        cw.run_query(QUERY, deadline(1)).await,
        Err(QueryError::Deadline)
    );
}

#[tokio::test]
async fn factory_and_credential_errors_are_flaggers() {
    let build = |spec: Value, interval: &str| {
        let setup = Setup::new(spec, interval, None);
        CloudWatch::with_env(&setup.config(), keys()).err()
    };
    assert_eq!(
        build(json!({"type": "cloudwatch"}), "1m").as_deref(),
        Some("region not specified")
    );
    assert_eq!(
        build(json!({"type": "cloudwatch", "region": ""}), "1m").as_deref(),
        Some("region not specified")
    );
    let bad = build(json!({"type": "cloudwatch", "region": "eu-west-1"}), "1x").unwrap();
    assert!(bad.starts_with("error parsing metric interval: "), "{bad}");
    let regional = Setup::new(
        json!({"type": "cloudwatch", "region": "eu-west-1"}),
        "5m",
        None,
    );
    let cw = CloudWatch::with_env(&regional.config(), keys()).unwrap();
    assert_eq!(
        cw.endpoint.as_str(),
        "https://monitoring.eu-west-1.amazonaws.com/"
    );
    assert_eq!(cw.start_delta, Duration::from_secs(3000));

    // No credentials in the environment: the SDK's error, nothing sent.
    let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
    let setup = setup(&vendor);
    let only_id = env(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")]);
    let cw = CloudWatch::with_env(&setup.config(), only_id).unwrap();
    assert_eq!(
        failed(cw.run_query(QUERY, deadline(10)).await),
        format!("error requesting cloudwatch: {NO_CREDENTIALS}")
    );
    assert_eq!(
        failed(cw.is_online(deadline(10)).await),
        format!("unexpected error: {NO_CREDENTIALS}")
    );
    assert!(vendor.requests().is_empty());
    // The secret key never shows in an error.
    vendor.then(Answer::status(403, "{}"));
    let text = failed(provider(&setup).run_query(QUERY, deadline(10)).await);
    assert!(!text.contains("wJalr"), "{text}");
}

#[tokio::test]
async fn is_online_accepts_success_and_bad_request_only() {
    let vendor = FakeVendor::start(Answer::ok(r#"{"MetricDataResults":[]}"#)).await;
    let setup = setup(&vendor);
    let cw = provider(&setup);
    assert_eq!(cw.is_online(deadline(10)).await, Ok(()));
    let probe: Value = serde_json::from_str(&vendor.last().body).unwrap();
    assert_eq!(
        probe,
        json!({"EndTime": GO_ZERO_TIME, "MetricDataQueries": [], "StartTime": GO_ZERO_TIME})
    );
    verify_sigv4(&vendor.last(), &vendor.url());

    vendor.then(Answer::status(
        400,
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"The parameter MetricDataQueries must contain at least one element."}"#,
    ));
    assert_eq!(cw.is_online(deadline(10)).await, Ok(()));
    vendor.then(Answer::status(
        403,
        r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"not authorized"}"#,
    ));
    assert_eq!(
        failed(cw.is_online(deadline(10)).await),
        "unexpected status code: AccessDenied: not authorized\n\tstatus code: 403"
    );

    let closed = Setup::new(
        json!({"type": "cloudwatch", "region": "us-east-1", "address": "http://127.0.0.1:9"}),
        "1m",
        None,
    );
    let text = failed(provider(&closed).is_online(deadline(10)).await);
    assert!(
        text.starts_with(
            "unexpected error: RequestError: send request failed\ncaused by: Post \"http://127.0.0.1:9/\": "
        ),
        "{text}"
    );
}

#[test]
fn the_sdk_prints_values_as_go_does() {
    assert_eq!(go_float(100.0), "100");
    assert_eq!(go_float(0.25), "0.25");
    assert_eq!(go_float(1.5e-7), "1.5e-07");
    assert_eq!(go_float(2e21), "2e+21");
    assert_eq!(go_time(1_753_096_800.0), "2025-07-21 11:20:00 +0000 UTC");
    assert_eq!(go_time(0.0), "1970-01-01 00:00:00 +0000 UTC");
    let output: shape::Output = serde_json::from_str(
        r#"{"MetricDataResults":[{"Id":"a","StatusCode":"Complete","Values":[]},{"Id":"b","Timestamps":[1753096800],"Values":[1.5]}],"Messages":[{"Code":"MaxQueryTimeRangeExceed","Value":"too long"}]}"#,
    )
    .unwrap();
    assert_eq!(
        output.pretty(),
        "{\n  Messages: [{\n      Code: \"MaxQueryTimeRangeExceed\",\n      Value: \"too long\"\n    }],\n  MetricDataResults: [{\n      Id: \"a\",\n      StatusCode: \"Complete\"\n    },{\n      Id: \"b\",\n      Timestamps: [2025-07-21 11:20:00 +0000 UTC],\n      Values: [1.5]\n    }]\n}"
    );
}
