//! The New Relic provider: NRQL over the Insights query API, over the last
//! metric interval (`SINCE <n> seconds ago`), with Flagger's texts.

use futures::FutureExt;
use serde_json::Value;
use tokio::time::Instant;

use super::gojson;
use super::http;
use super::provider::{Config, Provider, QueryError, QueryFuture};

const DEFAULT_ADDRESS: &str = "https://insights-api.newrelic.com";
const ACCOUNT_ID: &str = "newrelic_account_id";
const QUERY_KEY: &str = "newrelic_query_key";
const ONLINE_QUERY: &str = "SELECT * FROM Metric";
/// Flagger wraps a nil error with `%w` after a non-200 answer; Go prints it so.
const NIL_ERROR: &str = "%!w(<nil>)";

pub struct NewRelic {
    client: reqwest::Client,
    endpoint: String,
    query_key: String,
    /// Whole seconds of the metric interval.
    since: u64,
}

impl NewRelic {
    pub fn new(config: &Config<'_>) -> Result<NewRelic, String> {
        let address = match config.address() {
            "" => DEFAULT_ADDRESS,
            address => address,
        };
        // Flagger's own wording, the misplaced quotes of the second included.
        let account = config.credentials.get(ACCOUNT_ID).ok_or_else(|| {
            format!("newrelic credentials does not contain the key '{ACCOUNT_ID}'")
        })?;
        let query_key = config.credentials.get(QUERY_KEY).ok_or_else(|| {
            format!("newrelic credentials does not contain the key ''{QUERY_KEY}")
        })?;
        let interval = config.interval()?;
        Ok(NewRelic {
            // Flagger uses Go's default client: no headers, no insecureSkipVerify.
            client: config.http.client(false)?,
            endpoint: format!("{address}/v1/accounts/{account}/query"),
            query_key,
            since: interval.as_secs(),
        })
    }

    async fn send(&self, query: &str, deadline: Instant) -> Result<http::Reply, QueryError> {
        let nrql = format!("{query} SINCE {} seconds ago", self.since);
        let request = self
            .client
            .get(&self.endpoint)
            .header("X-Query-Key", &self.query_key)
            .query(&[("nrql", nrql)]);
        http::send(request, deadline).await
    }

    async fn query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let reply = self.send(query, deadline).await?;
        if !reply.is_ok() {
            return Err(QueryError::Failed(format!(
                "error response: {}: {NIL_ERROR}",
                reply.body
            )));
        }
        only_result(&reply.body)
    }

    async fn online(&self, deadline: Instant) -> Result<(), QueryError> {
        let reply = self.send(ONLINE_QUERY, deadline).await?;
        if !reply.is_ok() {
            return Err(QueryError::Failed(format!(
                "error response: {}",
                reply.body
            )));
        }
        Ok(())
    }
}

impl Provider for NewRelic {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        self.query(query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        self.online(deadline).boxed()
    }
}

/// The `result` of the one and only entry of `results`.
fn only_result(body: &str) -> Result<f64, QueryError> {
    let unmarshal =
        |e: String| QueryError::Failed(format!("error unmarshaling result: {e}, '{body}'"));
    let no_values = || QueryError::no_values_in(format!("invalid response: {body}"));
    let json = gojson::parse(body).map_err(unmarshal)?;
    let results = decode(&json).map_err(unmarshal)?;
    match results.as_slice() {
        [Some(value)] => Ok(*value),
        _ => Err(no_values()),
    }
}

/// Go's decoding into `{Results []struct{Result *float64}}`: a null or
/// missing `result` stays nil.
fn decode(json: &Value) -> Result<Vec<Option<f64>>, String> {
    const ITEM: &str = r#"struct { Result *float64 "json:\"result\"" }"#;
    if !matches!(json, Value::Object(_) | Value::Null) {
        return Err(gojson::top_type_error(json, "providers.newRelicResponse"));
    }
    let field = "newRelicResponse.results";
    let results = gojson::slice(gojson::field(json, "results"), field, &format!("[]{ITEM}"))?;
    let mut out = Vec::new();
    for item in results {
        if !matches!(item, Value::Object(_) | Value::Null) {
            return Err(gojson::type_error(item, field, ITEM));
        }
        out.push(match gojson::field(item, "result") {
            None | Some(Value::Null) => None,
            Some(value) => Some(gojson::float(value, ".results.result")?),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::metrics::fake::{Answer, FakeVendor, Setup, deadline};

    const KEYS: &[(&str, &str)] = &[(ACCOUNT_ID, "100"), (QUERY_KEY, "query-k")];
    // The Insights API's answer to `SELECT ... AS result` style NRQL.
    const ANSWER: &str = r#"{"results":[{"result":1.25}],"metadata":{"eventTypes":["Metric"],"eventType":"Metric","openEnded":true,"beginTime":"2024-01-01T00:00:00Z","endTime":"2024-01-01T00:01:00Z","rawSince":"60 SECONDS AGO","rawUntil":"NOW","rawCompareWith":""}}"#;

    fn provider(vendor: &FakeVendor, interval: &str) -> NewRelic {
        let setup = Setup::new(
            json!({"type": "newrelic", "address": vendor.url()}),
            interval,
            Some(KEYS),
        );
        NewRelic::new(&setup.config()).unwrap()
    }

    async fn run(vendor: &FakeVendor, answer: Answer) -> Result<f64, QueryError> {
        vendor.then(answer);
        provider(vendor, "1m")
            .run_query("SELECT count(*) FROM Transaction", deadline(10))
            .await
    }

    #[tokio::test]
    async fn sends_nrql_over_the_interval_with_the_query_key() {
        let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
        let query =
            "SELECT filter(sum(x), WHERE status >= '500') / sum(x) * 100 AS result FROM Metric";
        assert_eq!(
            provider(&vendor, "90s")
                .run_query(query, deadline(10))
                .await,
            Ok(1.25)
        );
        let seen = vendor.last();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("GET", "/v1/accounts/100/query")
        );
        assert_eq!(
            seen.query,
            [("nrql".to_owned(), format!("{query} SINCE 90 seconds ago"))]
        );
        assert_eq!(seen.header("x-query-key"), Some("query-k"));
        assert_eq!(seen.body, "");
    }

    #[tokio::test]
    async fn answers_map_to_flaggers_results() {
        let vendor = FakeVendor::start(Answer::ok("{}")).await;
        for empty in [
            r#"{"results":[]}"#,
            r#"{"results":[{"count":3}]}"#,
            r#"{"results":[{"result":null}]}"#,
            r#"{"results":[{"result":1},{"result":2}]}"#,
        ] {
            assert_eq!(
                run(&vendor, Answer::ok(empty)).await,
                Err(QueryError::NoValues(format!(
                    "invalid response: {empty}: no values found"
                )))
            );
        }
        assert_eq!(
            run(&vendor, Answer::ok("{\"results\":")).await,
            Err(QueryError::Failed(
                "error unmarshaling result: unexpected end of JSON input, '{\"results\":'".into()
            ))
        );
        let typed = r#"{"results":[{"result":"1"}]}"#;
        assert_eq!(
            run(&vendor, Answer::ok(typed)).await,
            Err(QueryError::Failed(format!(
                "error unmarshaling result: json: cannot unmarshal string into Go struct field .results.result of type float64, '{typed}'"
            )))
        );
        let denied = r#"{"error":"Invalid query key"}"#;
        assert_eq!(
            run(&vendor, Answer::status(403, denied)).await,
            Err(QueryError::Failed(format!(
                "error response: {denied}: %!w(<nil>)"
            )))
        );
        let limited = Answer::status(429, "{}").header("retry-after", "120");
        assert!(matches!(
            run(&vendor, limited).await,
            Err(QueryError::Throttled(_))
        ));
        let slow = FakeVendor::start(Answer::ok(ANSWER).after(Duration::from_secs(7))).await;
        assert_eq!(
            provider(&slow, "1m").run_query("q", deadline(1)).await,
            Err(QueryError::Deadline)
        );
    }

    #[tokio::test]
    async fn factory_errors_are_flaggers() {
        let spec = json!({"type": "newrelic"});
        let err = |secret: Option<&[(&str, &str)]>, interval| {
            NewRelic::new(&Setup::new(spec.clone(), interval, secret).config()).err()
        };
        assert_eq!(
            err(Some(&[(QUERY_KEY, "secret-q")]), "1m").as_deref(),
            Some("newrelic credentials does not contain the key 'newrelic_account_id'")
        );
        assert_eq!(
            err(Some(&[(ACCOUNT_ID, "100")]), "1m").as_deref(),
            Some("newrelic credentials does not contain the key ''newrelic_query_key")
        );
        let bad = err(Some(KEYS), "soon").unwrap_or_default();
        assert!(bad.starts_with("error parsing metric interval: "), "{bad}");
        let setup = Setup::new(spec.clone(), "1m", Some(KEYS));
        let provider = NewRelic::new(&setup.config()).unwrap();
        assert_eq!(
            provider.endpoint,
            "https://insights-api.newrelic.com/v1/accounts/100/query"
        );
    }

    #[tokio::test]
    async fn is_online_runs_a_query() {
        let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
        let provider = provider(&vendor, "1m");
        assert_eq!(provider.is_online(deadline(10)).await, Ok(()));
        assert_eq!(
            vendor.last().param("nrql"),
            Some("SELECT * FROM Metric SINCE 60 seconds ago")
        );
        vendor.then(Answer::status(401, "unauthorized"));
        assert_eq!(
            provider.is_online(deadline(10)).await,
            Err(QueryError::Failed("error response: unauthorized".into()))
        );
    }
}
