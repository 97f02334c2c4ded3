//! The Datadog provider: a v1 timeseries query over ten metric intervals,
//! reduced to the first point of the first series, with Flagger's texts.

use futures::FutureExt;
use serde_json::Value;
use tokio::time::Instant;

use super::provider::{Config, Provider, QueryError, QueryFuture, unix_now};
use super::{gojson, http};

const DEFAULT_ADDRESS: &str = "https://api.datadoghq.com";
const QUERY_PATH: &str = "/api/v1/query";
const VALIDATE_PATH: &str = "/api/v1/validate";
const API_KEY: &str = "datadog_api_key";
const APPLICATION_KEY: &str = "datadog_application_key";
/// Flagger asks for `from = now - 10 * interval`.
const WINDOW_MULTIPLIER: f64 = 10.0;

pub struct Datadog {
    client: reqwest::Client,
    address: String,
    api_key: String,
    application_key: String,
    /// Seconds from `from` to `to`.
    window: u64,
}

impl Datadog {
    pub fn new(config: &Config<'_>) -> Result<Datadog, String> {
        let address = match config.address() {
            "" => DEFAULT_ADDRESS,
            address => address,
        };
        let api_key = config.credentials.require("datadog", API_KEY)?;
        let application_key = config.credentials.require("datadog", APPLICATION_KEY)?;
        let interval = config.interval()?;
        Ok(Datadog {
            // Flagger uses Go's default client: no headers, no insecureSkipVerify.
            client: config.http.client(false)?,
            address: address.to_owned(),
            api_key,
            application_key,
            // Go truncates the seconds after multiplying.
            window: (WINDOW_MULTIPLIER * interval.as_secs_f64()) as u64,
        })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        // Flagger concatenates the address and the path as they are.
        self.client
            .get(format!("{}{path}", self.address))
            .header("DD-API-KEY", &self.api_key)
            .header("DD-APPLICATION-KEY", &self.application_key)
    }

    async fn query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let now = unix_now();
        // Go encodes query parameters sorted by name.
        let request = self.get(QUERY_PATH).query(&[
            ("from", now.saturating_sub(self.window).to_string()),
            ("query", query.to_owned()),
            ("to", now.to_string()),
        ]);
        let reply = http::send(request, deadline).await?;
        if !reply.is_ok() {
            return Err(QueryError::Failed(format!(
                "error response: {}: {}",
                reply.body,
                reply.status_text()
            )));
        }
        first_point(&reply.body)
    }

    async fn online(&self, deadline: Instant) -> Result<(), QueryError> {
        let reply = http::send(self.get(VALIDATE_PATH), deadline).await?;
        if !reply.is_ok() {
            return Err(QueryError::Failed(format!(
                "error response: {}",
                reply.body
            )));
        }
        Ok(())
    }
}

impl Provider for Datadog {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        self.query(query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        self.online(deadline).boxed()
    }
}

/// The value of the first (oldest) point of the first series: the newest
/// bucket is almost always incomplete (Flagger 1.41+).
fn first_point(body: &str) -> Result<f64, QueryError> {
    let unmarshal =
        |e: String| QueryError::Failed(format!("error unmarshaling result: {e}, '{body}'"));
    let no_values = || QueryError::no_values_in(format!("invalid response: {body}"));
    let json = gojson::parse(body).map_err(unmarshal)?;
    let series = decode(&json).map_err(unmarshal)?;
    let point = series
        .first()
        .and_then(|s| s.first())
        .ok_or_else(no_values)?;
    // Flagger indexes the pair's value; a lone timestamp would crash it.
    point.get(1).copied().ok_or_else(no_values)
}

/// Go's decoding into `{Series []struct{Pointlist [][]float64}}`, with its
/// type errors; `null` numbers read as 0 as in Go.
fn decode(json: &Value) -> Result<Vec<Vec<Vec<f64>>>, String> {
    const ITEM: &str = r#"struct { Pointlist [][]float64 "json:\"pointlist\"" }"#;
    if !matches!(json, Value::Object(_) | Value::Null) {
        return Err(gojson::top_type_error(json, "providers.datadogResponse"));
    }
    let series = gojson::slice(
        gojson::field(json, "Series"),
        "datadogResponse.Series",
        &format!("[]{ITEM}"),
    )?;
    let mut out = Vec::new();
    for item in series {
        if !matches!(item, Value::Object(_) | Value::Null) {
            return Err(gojson::type_error(item, "datadogResponse.Series", ITEM));
        }
        let field = ".Series.pointlist";
        let mut points = Vec::new();
        for point in gojson::slice(gojson::field(item, "pointlist"), field, "[][]float64")? {
            let pair = gojson::slice(Some(point), field, "[]float64")?;
            points.push(
                pair.iter()
                    .map(|v| gojson::float(v, field))
                    .collect::<Result<_, _>>()?,
            );
        }
        out.push(points);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::metrics::fake::{Answer, FakeVendor, Setup, deadline};

    const KEYS: &[(&str, &str)] = &[(API_KEY, "api-k"), (APPLICATION_KEY, "app-k")];
    // The documented v1 answer: series with [timestamp ms, value] points.
    const ANSWER: &str = r#"{"status":"ok","res_type":"time_series","from_date":1577231400000,"to_date":1577232000000,"query":"avg:system.cpu.user{*}","series":[{"metric":"system.cpu.user","display_name":"system.cpu.user","pointlist":[[1577232000000,1.11111],[1577318400000,56294.46758591842],[1577404800000,29325.1]],"scope":"*","interval":60,"length":3,"aggr":"avg","unit":null},{"metric":"other","pointlist":[[1577232000000,9]]}]}"#;

    fn setup(vendor: &FakeVendor, interval: &str) -> Setup {
        Setup::new(
            json!({"type": "datadog", "address": vendor.url()}),
            interval,
            Some(KEYS),
        )
    }

    async fn run(vendor: &FakeVendor, answer: Answer) -> Result<f64, QueryError> {
        vendor.then(answer);
        let setup = setup(vendor, "1m");
        let provider = Datadog::new(&setup.config()).unwrap();
        provider
            .run_query("avg:system.cpu.user{*}by{host}", deadline(10))
            .await
    }

    #[tokio::test]
    async fn sends_flaggers_request_and_takes_the_oldest_point() {
        let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
        let setup = Setup::new(
            json!({"type": "datadog", "address": vendor.url(), "headers": {"X-Ignored": ["1"]}}),
            "2m",
            Some(KEYS),
        );
        let provider = Datadog::new(&setup.config()).unwrap();
        let value = provider
            .run_query("avg:system.cpu.user{*}by{host}", deadline(10))
            .await;
        assert_eq!(value, Ok(1.11111));
        let seen = vendor.last();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("GET", "/api/v1/query")
        );
        let names: Vec<&str> = seen.query.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["from", "query", "to"]);
        assert_eq!(seen.param("query"), Some("avg:system.cpu.user{*}by{host}"));
        let number = |name| {
            seen.param(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap()
        };
        assert_eq!(number("to") - number("from"), 10 * 120);
        assert!(number("to").abs_diff(unix_now()) <= 2);
        assert_eq!(seen.header("dd-api-key"), Some("api-k"));
        assert_eq!(seen.header("dd-application-key"), Some("app-k"));
        assert_eq!(seen.header("x-ignored"), None);
        assert_eq!(seen.body, "");
    }

    #[tokio::test]
    async fn answers_map_to_flaggers_results() {
        let vendor = FakeVendor::start(Answer::ok("{}")).await;
        // A null value reads as 0 in Go's decoding.
        let null = r#"{"series":[{"pointlist":[[1577232000000,null],[1577232060000,2]]}]}"#;
        assert_eq!(run(&vendor, Answer::ok(null)).await, Ok(0.0));
        for empty in [
            r#"{"series":[]}"#,
            r#"{"series":[{"pointlist":[]}]}"#,
            "{}",
            "null",
        ] {
            assert_eq!(
                run(&vendor, Answer::ok(empty)).await,
                Err(QueryError::NoValues(format!(
                    "invalid response: {empty}: no values found"
                )))
            );
        }
        assert_eq!(
            run(&vendor, Answer::ok("<html>")).await,
            Err(QueryError::Failed(
                "error unmarshaling result: invalid character '<' looking for beginning of value, '<html>'".into()
            ))
        );
        let typed = r#"{"series":[{"pointlist":[[1,"x"]]}]}"#;
        assert_eq!(
            run(&vendor, Answer::ok(typed)).await,
            Err(QueryError::Failed(format!(
                "error unmarshaling result: json: cannot unmarshal string into Go struct field .Series.pointlist of type float64, '{typed}'"
            )))
        );
        let forbidden = r#"{"errors":["Forbidden"]}"#;
        assert_eq!(
            run(&vendor, Answer::status(403, forbidden)).await,
            Err(QueryError::Failed(format!(
                "error response: {forbidden}: 403 Forbidden"
            )))
        );
        let limited = Answer::status(429, "{}").header("retry-after", "120");
        assert!(matches!(
            run(&vendor, limited).await,
            Err(QueryError::Throttled(_))
        ));
    }

    #[tokio::test]
    async fn a_slow_answer_ends_at_the_deadline() {
        let vendor = FakeVendor::start(Answer::ok(ANSWER).after(Duration::from_secs(7))).await;
        let setup = setup(&vendor, "1m");
        let provider = Datadog::new(&setup.config()).unwrap();
        assert_eq!(
            provider.run_query("q", deadline(1)).await,
            Err(QueryError::Deadline)
        );
    }

    #[tokio::test]
    async fn factory_errors_are_flaggers() {
        let spec = json!({"type": "datadog"});
        let err = |secret: Option<&[(&str, &str)]>, interval| {
            Datadog::new(&Setup::new(spec.clone(), interval, secret).config()).err()
        };
        let msg = "datadog credentials does not contain datadog_api_key";
        assert_eq!(err(None, "1m").as_deref(), Some(msg));
        assert_eq!(
            err(Some(&[(APPLICATION_KEY, "secret-app")]), "1m").as_deref(),
            Some(msg)
        );
        let only_api = err(Some(&[(API_KEY, "secret-api")]), "1m").unwrap_or_default();
        assert_eq!(
            only_api,
            "datadog credentials does not contain datadog_application_key"
        );
        let bad = err(Some(KEYS), "soon").unwrap_or_default();
        assert!(bad.starts_with("error parsing metric interval: "), "{bad}");
        let setup = Setup::new(spec.clone(), "1m", Some(KEYS));
        let provider = Datadog::new(&setup.config()).unwrap();
        assert_eq!(provider.address, "https://api.datadoghq.com");
        assert_eq!(provider.window, 600);
    }

    #[tokio::test]
    async fn is_online_validates_the_keys() {
        let vendor = FakeVendor::start(Answer::ok(r#"{"valid":true}"#)).await;
        let setup = setup(&vendor, "1m");
        let provider = Datadog::new(&setup.config()).unwrap();
        assert_eq!(provider.is_online(deadline(10)).await, Ok(()));
        let seen = vendor.last();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("GET", "/api/v1/validate")
        );
        assert_eq!(seen.header("dd-api-key"), Some("api-k"));
        assert_eq!(seen.header("dd-application-key"), Some("app-k"));
        vendor.then(Answer::status(403, r#"{"errors":["Forbidden"]}"#));
        assert_eq!(
            provider.is_online(deadline(10)).await,
            Err(QueryError::Failed(
                r#"error response: {"errors":["Forbidden"]}"#.into()
            ))
        );
    }
}
