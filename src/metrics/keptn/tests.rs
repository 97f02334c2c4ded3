use std::time::Duration;

use serde_json::json;

use super::*;
use crate::metrics::fake::{Answer, FakeVendor, Setup, deadline};

/// A provider whose "API server" is the fake vendor.
fn keptn(vendor: &FakeVendor, analysis_timeout: Duration) -> Keptn {
    let mut setup = Setup::new(json!({"type": "keptn"}), "1m", None);
    let mut config = kube::Config::new(vendor.url().parse().unwrap());
    config.default_retry = false;
    setup.kube = kube::Client::try_from(config).unwrap();
    let mut provider = Keptn::new(&setup.config()).unwrap();
    provider.analysis_timeout = analysis_timeout;
    provider
}

fn metric(value: Option<&str>) -> String {
    let mut object = json!({
        "apiVersion": "metrics.keptn.sh/v1beta1", "kind": "KeptnMetric",
        "metadata": {"name": "my-metric", "namespace": "default"},
        "spec": {"provider": {"name": "my-provider"}, "query": "q", "fetchIntervalSeconds": 2},
    });
    if let Some(value) = value {
        object["status"] = json!({ "value": value });
    }
    object.to_string()
}

fn analysis(status: serde_json::Value) -> String {
    json!({
        "apiVersion": "metrics.keptn.sh/v1beta1", "kind": "Analysis",
        "metadata": {"name": "my-analysis-abc123", "namespace": "default"},
        "spec": {}, "status": status,
    })
    .to_string()
}

#[test]
fn queries_are_read_as_flagger_reads_them() {
    assert_eq!(
        parse_query("KeptnMetric/Default/My-Metric\n"),
        Ok(Query::Metric {
            namespace: "default".into(),
            name: "my-metric".into()
        })
    );
    assert_eq!(
        parse_query(" analysis/default/my-analysis/5m/foo=bar;bar=foo;junk;a=b=c "),
        Ok(Query::Analysis {
            namespace: "default".into(),
            name: "my-analysis".into(),
            timeframe: "5m".into(),
            args: BTreeMap::from([("foo".into(), "bar".into()), ("bar".into(), "foo".into())]),
        })
    );
    assert_eq!(
        parse_query("analyses/ns/def"),
        Ok(Query::Analysis {
            namespace: "ns".into(),
            name: "def".into(),
            timeframe: "1m".into(),
            args: BTreeMap::new(),
        })
    );
    assert_eq!(
        parse_query("invalid/default"),
        Err("unexpected query format. query must be in the format <keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>".into())
    );
    assert_eq!(
        parse_query("invalid/default/my-metric"),
        Err("unexpected resource kind provided in the query. must be one of: ['keptnmetric', 'analysis']".into())
    );
}

#[tokio::test]
async fn a_keptn_metric_gives_its_status_value() {
    let vendor = FakeVendor::start(Answer::ok(metric(Some("3.0")))).await;
    let provider = keptn(&vendor, ANALYSIS_TIMEOUT);
    let query = "keptnmetric/default/my-metric";
    assert_eq!(provider.run_query(query, deadline(10)).await, Ok(3.0));
    let seen = vendor.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.path,
        "/apis/metrics.keptn.sh/v1beta1/namespaces/default/keptnmetrics/my-metric"
    );
    let failed = |text: &str| Err(QueryError::Failed(text.into()));

    vendor.then(Answer::ok(metric(Some("invalid"))));
    assert_eq!(
        provider.run_query(query, deadline(10)).await,
        failed(
            "could not parse value of KeptnMetric default/my-metric to float: strconv.ParseFloat: parsing \"invalid\": invalid syntax"
        )
    );
    vendor.then(Answer::ok(metric(None)));
    assert_eq!(
        provider.run_query(query, deadline(10)).await,
        failed("could not retrieve KeptnMetric - no value found in resource default/my-metric")
    );
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "keptnmetrics.metrics.keptn.sh \"my-metric\" not found", "reason": "NotFound", "code": 404});
    vendor.then(Answer::status(404, not_found.to_string()));
    assert_eq!(
        provider.run_query(query, deadline(10)).await,
        failed(
            "could not retrieve KeptnMetric default/my-metric: keptnmetrics.metrics.keptn.sh \"my-metric\" not found"
        )
    );
    // No CRD: the API server's plain 404.
    vendor.then(Answer::status(404, "404 page not found").header("content-type", "text/plain"));
    assert_eq!(
        provider.run_query(query, deadline(10)).await,
        failed(
            "could not retrieve KeptnMetric default/my-metric: the server could not find the requested resource (get keptnmetrics.metrics.keptn.sh my-metric)"
        )
    );
    assert_eq!(provider.is_online(deadline(1)).await, Ok(()));
}

/// Waits for the background delete.
async fn deleted(vendor: &FakeVendor) -> Vec<String> {
    for _ in 0..50 {
        let deletes: Vec<String> = vendor
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path)
            .collect();
        if !deletes.is_empty() {
            return deletes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn an_analysis_is_created_polled_and_deleted() {
    let vendor = FakeVendor::start(Answer::ok(analysis(json!({})))).await;
    vendor
        .then(Answer::status(201, analysis(json!({}))))
        .then(Answer::ok(analysis(json!({"state": "Progressing"}))))
        .then(Answer::ok(analysis(
            json!({"state": "Completed", "pass": true}),
        )));
    let provider = keptn(&vendor, ANALYSIS_TIMEOUT);
    let value = provider
        .run_query(
            "analysis/default/my-analysis/5m/foo=bar;bar=foo",
            deadline(20),
        )
        .await;
    assert_eq!(value, Ok(1.0));
    let requests = vendor.requests();
    let create = &requests[0];
    assert_eq!(create.method, "POST");
    assert_eq!(
        create.path,
        "/apis/metrics.keptn.sh/v1beta1/namespaces/default/analyses"
    );
    let body: serde_json::Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(
        body["spec"],
        json!({"analysisDefinition": {"name": "my-analysis"}, "args": {"bar": "foo", "foo": "bar"}, "timeframe": {"recent": "5m"}})
    );
    let name = body["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("my-analysis-") && name.len() == "my-analysis-".len() + 6,
        "{name}"
    );
    assert_eq!(
        requests[1].path,
        "/apis/metrics.keptn.sh/v1beta1/namespaces/default/analyses/my-analysis-abc123"
    );
    assert_eq!(
        deleted(&vendor).await,
        vec![
            "/apis/metrics.keptn.sh/v1beta1/namespaces/default/analyses/my-analysis-abc123"
                .to_owned()
        ]
    );

    // A failed analysis is 0; a Completed one without `pass` is still waited on.
    let vendor = FakeVendor::start(Answer::ok(analysis(
        json!({"state": "Completed", "pass": false}),
    )))
    .await;
    vendor
        .then(Answer::status(201, analysis(json!({}))))
        .then(Answer::ok(analysis(json!({"state": "Completed"}))));
    let provider = keptn(&vendor, ANALYSIS_TIMEOUT);
    assert_eq!(
        provider
            .run_query("analysis/default/my-analysis", deadline(20))
            .await,
        Ok(0.0)
    );
    let body: serde_json::Value = serde_json::from_str(&vendor.requests()[0].body).unwrap();
    assert_eq!(body["spec"]["timeframe"]["recent"], "1m");
    assert_eq!(body["spec"]["args"], json!({}));
}

#[tokio::test]
async fn an_unfinished_analysis_times_out_and_is_deleted() {
    let vendor = FakeVendor::start(Answer::ok(analysis(json!({"state": "Progressing"})))).await;
    vendor.then(Answer::status(201, analysis(json!({}))));
    let provider = keptn(&vendor, Duration::from_millis(2500));
    let err = provider
        .run_query("analysis/default/my-analysis", deadline(20))
        .await;
    assert_eq!(
        err,
        Err(QueryError::Failed(
            "encountered timeout while waiting for Keptn Analysis default/my-analysis to be finished".into()
        ))
    );
    assert_eq!(deleted(&vendor).await.len(), 1);

    // The caller's deadline first: not a verdict; the Analysis is deleted too.
    let vendor = FakeVendor::start(Answer::ok(analysis(json!({"state": "Progressing"})))).await;
    vendor.then(Answer::status(201, analysis(json!({}))));
    let provider = keptn(&vendor, ANALYSIS_TIMEOUT);
    let err = provider
        .run_query("analysis/default/my-analysis", deadline(2))
        .await;
    assert_eq!(err, Err(QueryError::Deadline));
    assert_eq!(deleted(&vendor).await.len(), 1);

    // A state that is not a string is Flagger's accessor error.
    let vendor = FakeVendor::start(Answer::ok(analysis(json!({"state": 3})))).await;
    vendor.then(Answer::status(201, analysis(json!({}))));
    let provider = keptn(&vendor, ANALYSIS_TIMEOUT);
    let err = provider
        .run_query("analysis/default/my-analysis", deadline(20))
        .await;
    assert_eq!(
        err,
        Err(QueryError::Failed(
            "could not check status of created Keptn Analysis default/my-analysis: .status.state accessor error: 3 is of the type int64, expected string".into()
        ))
    );
}
