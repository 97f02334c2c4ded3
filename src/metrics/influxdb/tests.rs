use std::time::Duration;

use serde_json::json;

use super::*;
use crate::metrics::fake::{Answer, FakeVendor, Setup, deadline};

const SECRET: &[(&str, &str)] = &[("token", "tok"), ("org", "my org")];
const HEAD: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\r\n#group,false,false,true,true,false,false,true,true,true\r\n#default,_result,,,,,,,,\r\n,result,table,_start,_stop,_time,_value,_field,_measurement,host\r\n";

/// An annotated CSV answer as InfluxDB 2 sends it, one row per value.
fn answer(values: &[&str]) -> String {
    let rows: String = values
        .iter()
        .map(|v| format!(",,0,2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,2024-01-01T00:05:00.500Z,{v},error_rate,http,web-1\r\n"))
        .collect();
    format!("{HEAD}{rows}\r\n")
}

fn provider(vendor: &FakeVendor) -> InfluxDb {
    let spec = json!({"type": "influxdb", "address": vendor.url(), "secretRef": {"name": "i"}, "headers": {"X-Ignored": ["1"]}});
    InfluxDb::new(&Setup::new(spec, "1m", Some(SECRET)).config()).unwrap()
}

async fn run(vendor: &FakeVendor, answer: Answer) -> Result<f64, QueryError> {
    vendor.then(answer);
    provider(vendor)
        .run_query("from(bucket: \"b\")", deadline(10))
        .await
}

#[tokio::test]
async fn posts_the_flux_query_as_the_go_client_does() {
    let vendor = FakeVendor::start(Answer::ok(answer(&["0.25", "0.5"]))).await;
    let query = "from(bucket: \"app\") |> range(start: -5m) |> filter(fn: (r) => r._field == \"error_rate\" and r.v < 1 and r.w > 0)";
    assert_eq!(
        provider(&vendor).run_query(query, deadline(10)).await,
        Ok(0.25)
    );
    let seen = vendor.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/api/v2/query")
    );
    assert_eq!(seen.query, [("org".to_owned(), "my org".to_owned())]);
    assert_eq!(seen.header("authorization"), Some("Token tok"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-ignored"), None);
    // Go's json.Marshal escapes < > & inside strings.
    assert!(
        seen.body.contains(r#"r.v \u003c 1 and r.w \u003e 0"#),
        "{}",
        seen.body
    );
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({"dialect": {"annotations": ["datatype", "group", "default"], "delimiter": ",", "header": true}, "query": query, "type": "flux"})
    );
}

#[tokio::test]
async fn answers_map_to_flaggers_results() {
    let vendor = FakeVendor::start(Answer::ok("")).await;
    let null = answer(&[""]);
    assert_eq!(
        run(&vendor, Answer::ok(null)).await,
        Err(QueryError::NoValues(
            "invalid response: _field:error_rate,_measurement:http,_start:2024-01-01 00:00:00 +0000 UTC,_stop:2024-01-01 00:05:00 +0000 UTC,_time:2024-01-01 00:05:00.5 +0000 UTC,_value:<nil>,host:web-1,result:_result,table:0: no values found".into()
        ))
    );
    let long = answer(&["3"]).replace(",double,", ",long,");
    let Err(QueryError::Failed(text)) = run(&vendor, Answer::ok(long)).await else {
        panic!("a long is no float")
    };
    assert!(
        text.starts_with("invalid response: _field:error_rate,") && text.contains(",_value:3,"),
        "{text}"
    );
    // Flagger reads 0 without error when no record comes (empty, an error
    // table, a parse error), which passes a `max` threshold: Serin says no values.
    let error_table = "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,failed to compile,897\r\n\r\n";
    for nothing in ["", error_table, "not,csv\r\n", &answer(&["x"])] {
        assert_eq!(
            run(&vendor, Answer::ok(nothing)).await,
            Err(QueryError::NoValues(
                "invalid response: the answer has no record: no values found".into()
            )),
            "{nothing:?}"
        );
    }
    let denied = r#"{"code":"unauthorized","message":"unauthorized access"}"#;
    assert_eq!(
        run(&vendor, Answer::status(401, denied)).await,
        Err(QueryError::Failed(
            "error accessing influxdb query api: unauthorized: unauthorized access".into()
        ))
    );
    assert_eq!(
        run(&vendor, Answer::status(404, "404 page not found")).await,
        Err(QueryError::Failed(
            "error accessing influxdb query api: 404 Not Found: 404 page not found".into()
        ))
    );
    assert_eq!(
        run(&vendor, Answer::status(500, "")).await,
        Err(QueryError::Failed(
            "error accessing influxdb query api: Unexpected status code 500".into()
        ))
    );
    let limited = Answer::status(429, "").header("retry-after", "120");
    assert!(matches!(
        run(&vendor, limited).await,
        Err(QueryError::Throttled(_))
    ));
    let slow = FakeVendor::start(Answer::ok(answer(&["1"])).after(Duration::from_secs(7))).await;
    assert_eq!(
        provider(&slow).run_query("q", deadline(1)).await,
        Err(QueryError::Deadline)
    );
}

#[tokio::test]
async fn factory_errors_and_urls_are_the_clients() {
    let err = |spec: serde_json::Value, secret: Option<&[(&str, &str)]>| {
        InfluxDb::new(&Setup::new(spec, "1m", secret).config()).err()
    };
    assert_eq!(
        err(json!({"type": "influxdb"}), None).as_deref(),
        Some("influxdb address  is not a valid URL")
    );
    let spec =
        json!({"type": "influxdb", "address": "http://influx:8086", "secretRef": {"name": "i"}});
    assert_eq!(
        err(spec.clone(), Some(&[("org", "o")])).as_deref(),
        Some("influxdb credentials does not contain an authentication token")
    );
    assert_eq!(
        err(spec, Some(&[("token", "secret-t")])).as_deref(),
        Some("influxdb credentials does not contain an organisation")
    );
    let url = |address: &str| {
        let setup = Setup::new(json!({"type": "influxdb", "address": address}), "1m", None);
        InfluxDb::new(&setup.config()).map(|i| (i.url.to_string(), i.authorization))
    };
    let sub = Ok(("http://influx:8086/sub/api/v2/query?org=".to_owned(), None));
    assert_eq!(url("http://influx:8086/sub"), sub);
    // The client appends `/` after the query: `sub` is then a file, replaced.
    let replaced = Ok(("http://influx:8086/api/v2/query?org=".to_owned(), None));
    assert_eq!(url("http://influx:8086/sub?x=1"), replaced);
}

#[tokio::test]
async fn is_online_queries_the_default_bucket() {
    let vendor = FakeVendor::start(Answer::ok("")).await;
    let influx = provider(&vendor);
    assert_eq!(influx.is_online(deadline(10)).await, Ok(()));
    assert!(
        vendor
            .last()
            .body
            .contains(r#"from(bucket: \"default\") |\u003e range(start: -2h)"#)
    );
    // Byte for byte what influxdb-client-go v2.14.0 sends (checked against it).
    assert_eq!(
        vendor.last().body,
        r#"{"dialect":{"annotations":["datatype","group","default"],"delimiter":",","header":true},"query":"from(bucket: \"default\") |\u003e range(start: -2h)","type":"flux"}"#
    );
    vendor.then(Answer::status(
        401,
        r#"{"code":"unauthorized","message":"unauthorized access"}"#,
    ));
    assert_eq!(
        influx.is_online(deadline(10)).await,
        Err(QueryError::Failed(
            "error accessing influxdb query api: unauthorized: unauthorized access".into()
        ))
    );
    let closed = Setup::new(
        json!({"type": "influxdb", "address": "http://127.0.0.1:9"}),
        "1m",
        None,
    );
    let Err(QueryError::Failed(text)) = InfluxDb::new(&closed.config())
        .unwrap()
        .is_online(deadline(10))
        .await
    else {
        panic!("a closed port answers nothing")
    };
    assert!(
        text.starts_with(
            "error accessing influxdb query api: Post \"http://127.0.0.1:9/api/v2/query?org=\": "
        ),
        "{text}"
    );
}
