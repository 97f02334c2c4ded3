use std::time::Duration;

use serde_json::json;

use super::*;
use crate::metrics::fake::{Answer as Reply, FakeVendor, Setup, deadline};

fn list(values: &[&str]) -> String {
    let items: Vec<_> = values
        .iter()
        .map(|v| json!({"metricName": "m", "metricLabels": {}, "timestamp": "2024-01-01T00:00:00Z", "value": v}))
        .collect();
    json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {}, "items": items}).to_string()
}

fn query(namespace: &str, metric: &str, selector: &str) -> Query {
    Query {
        namespace: namespace.into(),
        metric: metric.into(),
        selector: selector.into(),
    }
}

/// A provider reading through a "cluster" that is the fake vendor.
fn through_cluster(vendor: &FakeVendor) -> ExternalMetrics {
    let mut setup = Setup::new(json!({"type": "externalmetrics"}), "1m", None);
    let mut config = kube::Config::new(vendor.url().parse().unwrap());
    // kube retries a 503 by itself; these tests read the first answer.
    config.default_retry = false;
    setup.kube = kube::Client::try_from(config).unwrap();
    ExternalMetrics::new(&setup.config()).unwrap()
}

#[test]
fn queries_are_read_as_flagger_reads_them() {
    let ok = |q: &str| parse_query(q).unwrap();
    assert_eq!(
        ok("default/myMetric?labelSelector=label1%3Dvalue1"),
        query("default", "myMetric", "label1=value1")
    );
    assert_eq!(ok("test/myMetric"), query("test", "myMetric", ""));
    assert_eq!(ok("myMetric"), query("default", "myMetric", ""));
    assert_eq!(ok("/metric_only"), query("default", "metric_only", ""));
    assert_eq!(ok("ns/m?labelSelector="), query("ns", "m", ""));
    // Decoded, then re-written: sorted by key, set values sorted, `+` a space.
    assert_eq!(
        ok("ns/m?labelSelector=zone+in+(b,a),app%3Dweb,!gone").selector,
        "app=web,!gone,zone in (a,b)"
    );
    let err = |q: &str| parse_query(q).unwrap_err();
    assert_eq!(err("namespaceonly/"), "metric name cannot be empty");
    assert_eq!(err("/"), "metric name cannot be empty");
    assert_eq!(err(""), "metric name cannot be empty");
    assert_eq!(
        err("namespace/metric/extra"),
        "malformed query string, too many slashes, expected <namespace>/<metricName>?labelSelector=<urlencoded label selectors>, got namespace/metric/extra"
    );
    // Go's url.Parse refuses control characters (a YAML block's newline too).
    assert_eq!(
        err("ns/m\n"),
        "malformed query string, expected <namespace>/<metricName>?labelSelector=<urlencoded label selectors>, got ns/m\n"
    );
    assert!(err("ns/%zz").starts_with("malformed query string, expected"));
}

#[test]
fn selectors_are_checked_with_apimachinerys_texts() {
    let err = |selector: &str| {
        let text = parse_query(&format!("ns/m?labelSelector={selector}")).unwrap_err();
        let lead = "error parsing label selector from string ";
        text.strip_prefix(lead).unwrap().to_owned()
    };
    assert_eq!(
        err("app+in+(a"),
        "app in (a: unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        err("a+b"),
        "a b: unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        err("app%3Da+b"),
        "app=a b: found 'b', expected: ',' or 'end of string'"
    );
    assert_eq!(
        err("x>y"),
        "x>y: unable to parse requirement: values[0]: Invalid value: \"y\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert_eq!(
        err("-bad"),
        "-bad: unable to parse requirement: : Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    assert_eq!(
        err("app%3Da$"),
        "app=a$: unable to parse requirement: values[0][app]: Invalid value: \"a$\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
    let ok = |selector: &str| {
        parse_query(&format!("ns/m?labelSelector={selector}"))
            .unwrap()
            .selector
    };
    assert_eq!(ok("app%3D%3D"), "app==");
    assert_eq!(ok("b!%3D1,+a+notin+(x,,y)"), "a notin (,x,y),b!=1");
    assert_eq!(ok("example.com/tier,n<5"), "example.com/tier,n<5");
}

#[test]
fn quantities_read_as_kubernetes_reads_them() {
    let q = |text: &str| approximate_f64(text).unwrap();
    assert_eq!(q("1500m"), 1.5);
    assert_eq!(q("2k"), 2000.0);
    assert_eq!(q("3Mi"), 3.0 * 1024.0 * 1024.0);
    assert_eq!(q("1.5Gi"), 1.5 * 1024.0 * 1024.0 * 1024.0);
    assert_eq!(q("0"), 0.0);
    assert_eq!(q("42"), 42.0);
    assert_eq!(q("-0.25"), -0.25);
    assert_eq!(q("+7"), 7.0);
    assert_eq!(q("1e3"), 1000.0);
    assert_eq!(q("2E-2"), 0.02);
    assert_eq!(q("250u"), 250.0 * 1e-6);
    assert_eq!(q("3n"), 3.0 * 1e-9);
    // Flagger's test value, computed the same way (11111 x 10^-4).
    assert_eq!(q("11111e-4"), 11111.0 * 1e-4);
    // More decimals than nano are rounded up, away from zero.
    assert_eq!(q("0.0000000001"), 1e-9);
    assert_eq!(q("1e-12"), 1e-9);
    assert_eq!(q("-1e-12"), -1e-9);
    // Beyond int64: the arbitrary-precision path.
    assert_eq!(q("123456789012345678901"), 123456789012345678901.0);
    assert_eq!(q("8Ei"), 9223372036854775807.0);
    let err = |text: &str| approximate_f64(text).unwrap_err();
    let format = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    assert_eq!(err(""), format);
    assert_eq!(err("abc"), format);
    assert_eq!(err("1.5Z"), format);
    assert_eq!(err("1K"), "unable to parse quantity's suffix");
    assert_eq!(err("1ki"), "unable to parse quantity's suffix");
}

#[test]
fn the_first_item_is_the_value_and_an_empty_list_has_none() {
    assert_eq!(first_value(&list(&["1500m", "7"])), Ok(1.5));
    assert_eq!(
        first_value(&list(&[])),
        Err(QueryError::NoValues(
            "no external metrics found: no values found".into()
        ))
    );
    // A JSON number is a quantity too; a bad later item fails the list.
    let number = r#"{"items":[{"value":2.5}]}"#;
    assert_eq!(first_value(number), Ok(2.5));
    assert!(matches!(
        first_value(&list(&["1", "nope"])),
        Err(QueryError::Failed(t)) if t.starts_with("quantities must match")
    ));
}

#[tokio::test]
async fn queries_go_through_the_api_server() {
    let vendor = FakeVendor::start(Reply::ok(list(&["1500m"]))).await;
    let provider = through_cluster(&vendor);
    let value = provider
        .run_query(
            "test/http_requests?labelSelector=app%3Dpodinfo",
            deadline(10),
        )
        .await;
    assert_eq!(value, Ok(1.5));
    let seen = vendor.last();
    assert_eq!(
        seen.path,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/test/http_requests"
    );
    assert_eq!(seen.param("labelSelector"), Some("app=podinfo"));
    // No selector: no parameter.
    provider.run_query("m", deadline(10)).await.unwrap();
    let seen = vendor.last();
    assert_eq!(
        seen.path,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/m"
    );
    assert!(seen.query.is_empty());
}

#[tokio::test]
async fn error_answers_read_as_client_go_prints_them() {
    let vendor = FakeVendor::start(Reply::ok(list(&[]))).await;
    let provider = through_cluster(&vendor);
    // The API server's own 404 (no such APIService): plain text.
    vendor.then(Reply::status(404, "404 page not found").header("content-type", "text/plain"));
    let err = provider.run_query("ns/missing", deadline(10)).await;
    assert_eq!(
        err,
        Err(QueryError::Failed(
            "error querying external metrics API: the server could not find the requested resource (get missing.external.metrics.k8s.io)".into()
        ))
    );
    // The adapter's Status: its message.
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
        "reason": "NotFound", "message": "the server could not find the metric missing for external metrics"});
    vendor.then(Reply::status(404, status.to_string()));
    let err = provider.run_query("ns/missing", deadline(10)).await;
    assert_eq!(
        err,
        Err(QueryError::Failed(
            "error querying external metrics API: the server could not find the metric missing for external metrics".into()
        ))
    );
    // The aggregator when the backend is down.
    vendor.then(
        Reply::status(503, "service unavailable\n")
            .header("content-type", "text/plain; charset=utf-8"),
    );
    let err = provider.is_online(deadline(10)).await;
    assert_eq!(
        err,
        Err(QueryError::Failed(
            "external metrics service unavailable: an error on the server (\"service unavailable\") has prevented the request from succeeding (get dummy-metric.external.metrics.k8s.io)".into()
        ))
    );
    assert_eq!(
        vendor.last().path,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/kube-system/dummy-metric"
    );
    assert_eq!(
        provider.run_query("ns/m", deadline(10)).await,
        Err(QueryError::no_values_in("no external metrics found"))
    );
    // An empty list is enough to be online.
    assert_eq!(provider.is_online(deadline(10)).await, Ok(()));
    let err = provider.run_query("a/b/c", deadline(10)).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("error parsing metric query: malformed query string, too many slashes"),
        "{err}"
    );
}

#[tokio::test]
async fn an_address_is_its_own_server_with_the_secrets_token() {
    let vendor = FakeVendor::start(Reply::ok(list(&["2k"]))).await;
    let address = format!("{}/prefix/", vendor.url());
    let setup = Setup::new(
        json!({"type": "externalmetrics", "address": address}),
        "1m",
        Some(&[("token", "t0k")]),
    );
    let provider = ExternalMetrics::new(&setup.config()).unwrap();
    assert_eq!(
        provider
            .run_query("ns/m?labelSelector=a%3Db", deadline(10))
            .await,
        Ok(2000.0)
    );
    let seen = vendor.last();
    assert_eq!(
        seen.path,
        "/prefix/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m"
    );
    assert_eq!(seen.header("authorization"), Some("Bearer t0k"));
    assert_eq!(seen.param("labelSelector"), Some("a=b"));

    let bad = Setup::new(
        json!({"type": "externalmetrics", "address": "http://"}),
        "1m",
        None,
    );
    assert_eq!(
        ExternalMetrics::new(&bad.config()).err(),
        Some(
            "error creating external metric client: host must be a URL or a host:port pair".into()
        )
    );
}

#[tokio::test]
async fn slow_answers_end_at_the_deadline_or_at_flaggers_five_seconds() {
    let vendor = FakeVendor::start(Reply::ok(list(&["1"])).after(Duration::from_secs(7))).await;
    let provider = through_cluster(&vendor);
    assert_eq!(
        provider.run_query("ns/m", deadline(1)).await,
        Err(QueryError::Deadline)
    );
    let err = provider.run_query("ns/m", deadline(30)).await;
    assert_eq!(
        err,
        Err(QueryError::Failed(
            "error querying external metrics API: Get \"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m\": context deadline exceeded".into()
        ))
    );
}
