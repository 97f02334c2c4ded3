use std::time::Duration;

use serde_json::json;

use super::*;
use crate::metrics::fake::{Answer, FakeVendor, Setup, deadline};

// The render API's JSON: one entry per target, [value, timestamp] points.
const ANSWER: &str = r#"[{"target":"sumSeries(app.http.*.*.count)","tags":{"name":"sumSeries(app.http.*.*.count)","aggregatedBy":"sum"},"datapoints":[[1.5,1577232000],[3.25,1577232060],[null,1577232120]]},{"target":"other","tags":{},"datapoints":[[null,1577232000]]}]"#;

fn provider(
    vendor: &FakeVendor,
    spec: serde_json::Value,
    secret: Option<&[(&str, &str)]>,
) -> Graphite {
    let mut spec = spec;
    spec["type"] = json!("graphite");
    spec["address"] = json!(format!("{}/graphite/", vendor.url()));
    Graphite::new(&Setup::new(spec, "1m", secret).config()).unwrap()
}

async fn run(vendor: &FakeVendor, answer: Answer) -> Result<f64, QueryError> {
    vendor.then(answer);
    provider(vendor, json!({}), None)
        .run_query("target=x", deadline(10))
        .await
}

#[tokio::test]
async fn sends_the_query_with_format_json_and_basic_auth() {
    let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
    let secret: &[(&str, &str)] = &[("username", "u"), ("password", "p")];
    let graphite = provider(
        &vendor,
        json!({"secretRef": {"name": "g"}, "headers": {"X-Ignored": ["1"]}}),
        Some(secret),
    );
    let query = "target=sumSeries(app.http.*.*.count)\n  &from=-2min&until=now&format=raw";
    assert_eq!(graphite.run_query(query, deadline(10)).await, Ok(3.25));
    let seen = vendor.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/graphite/render")
    );
    // Sorted as Go encodes them; the whitespace run became one space.
    let expected = [
        ("format", "json"),
        ("from", "-2min"),
        ("target", "sumSeries(app.http.*.*.count) "),
        ("until", "now"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    assert_eq!(seen.query, expected);
    assert_eq!(seen.header("authorization"), Some("Basic dTpw"));
    assert_eq!(seen.header("x-ignored"), None);
    assert_eq!(seen.body, "");
    let url = graphite
        .render_url("target=a b&k=%zz&c;d&target=~*")
        .unwrap();
    assert_eq!(
        url.as_str(),
        format!(
            "{}/graphite/render?format=json&target=a+b&target=~%2A",
            vendor.url()
        )
    );
    assert_eq!(
        graphite.render_url("target=a\x0bb").err(),
        Some(QueryError::Failed(
            "url.Parse failed: parse \"./render?target=a\\vb\": net/url: invalid control character in URL".into()
        ))
    );
}

#[tokio::test]
async fn answers_map_to_flaggers_results() {
    let vendor = FakeVendor::start(Answer::ok("[]")).await;
    assert_eq!(
        run(
            &vendor,
            Answer::ok(r#"[{"datapoints":[["2.5","1577232000"]]}]"#)
        )
        .await,
        Ok(2.5)
    );
    for empty in [
        "[]",
        "null",
        r#"[{"target":"x","datapoints":[[null,1577232000]]}]"#,
    ] {
        assert_eq!(
            run(&vendor, Answer::ok(empty)).await,
            Err(QueryError::NoValues("no values found".into()))
        );
    }
    let failed = |cause: &str, body: &str| {
        Err(QueryError::Failed(format!(
            "error unmarshaling result: {cause}, '{body}'"
        )))
    };
    for (body, cause) in [
        ("[{", "unexpected end of JSON input"),
        (
            r#"{"a":1}"#,
            "json: cannot unmarshal object into Go value of type providers.graphiteResponse",
        ),
        (
            r#"[{"datapoints":[[1,2,3]]}]"#,
            "error unmarshaling data point: [1 2 3]",
        ),
        (
            r#"[{"datapoints":[null]}]"#,
            "error unmarshaling data point: []",
        ),
        (
            r#"[{"datapoints":[["x",2]]}]"#,
            "strconv.ParseFloat: parsing \"x\": invalid syntax",
        ),
        (
            r#"[{"datapoints":[[true,2]]}]"#,
            "error unmarshaling value: true",
        ),
        (
            r#"[{"datapoints":[[1,true]]}]"#,
            "error unmarshaling timestamp: 1",
        ),
        (
            r#"[{"datapoints":[[1,"y"]]}]"#,
            "strconv.ParseInt: parsing \"y\": invalid syntax",
        ),
        (
            r#"[{"datapoints":[3]}]"#,
            "json: cannot unmarshal number into Go struct field graphiteTargetResp.datapoints of type []interface {}",
        ),
    ] {
        assert_eq!(
            run(&vendor, Answer::ok(body)).await,
            failed(cause, body),
            "{body}"
        );
    }
    assert_eq!(
        run(&vendor, Answer::status(500, "boom")).await,
        Err(QueryError::Failed("error response: boom".into()))
    );
    let limited = Answer::status(429, "{}").header("retry-after", "120");
    assert!(matches!(
        run(&vendor, limited).await,
        Err(QueryError::Throttled(_))
    ));
    let slow = FakeVendor::start(Answer::ok(ANSWER).after(Duration::from_secs(7))).await;
    let graphite = provider(&slow, json!({}), None);
    assert_eq!(
        graphite.run_query("target=x", deadline(1)).await,
        Err(QueryError::Deadline)
    );
}

#[tokio::test]
async fn factory_errors_are_flaggers() {
    let err = |spec: serde_json::Value, secret: Option<&[(&str, &str)]>| {
        Graphite::new(&Setup::new(spec, "1m", secret).config()).err()
    };
    assert_eq!(
        err(json!({"type": "graphite"}), None).as_deref(),
        Some("graphite address  is not a valid URL")
    );
    let spec =
        json!({"type": "graphite", "address": "http://graphite:8080", "secretRef": {"name": "g"}});
    assert_eq!(
        err(spec.clone(), Some(&[])).as_deref(),
        Some("graphite credentials does not contain a username")
    );
    assert_eq!(
        err(spec, Some(&[("username", "secret-u")])).as_deref(),
        Some("graphite credentials does not contain a password")
    );
    // Without a secretRef no credentials are read.
    assert_eq!(
        err(
            json!({"type": "graphite", "address": "http://graphite:8080"}),
            None
        ),
        None
    );
}

#[tokio::test]
async fn is_online_accepts_an_empty_answer() {
    let vendor = FakeVendor::start(Answer::ok("[]")).await;
    let graphite = provider(&vendor, json!({}), None);
    assert_eq!(graphite.is_online(deadline(10)).await, Ok(()));
    assert_eq!(vendor.last().param("target"), Some("test"));
    vendor.then(Answer::status(503, "down"));
    assert_eq!(
        graphite.is_online(deadline(10)).await,
        Err(QueryError::Failed(
            "running query failed: error response: down".into()
        ))
    );
}
