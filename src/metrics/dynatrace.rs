//! The Dynatrace provider: a metrics v2 query over ten metric intervals at
//! resolution `Inf`, reduced as Flagger does, with Flagger's texts.

use futures::FutureExt;
use serde_json::Value;
use tokio::time::Instant;

use super::gojson;
use super::http;
use super::provider::unix_now;
use super::provider::{Config, Provider, QueryError, QueryFuture};

const QUERY_PATH: &str = "/api/v2/metrics/query";
const VALIDATE_PATH: &str = "/api/v2/metrics?pageSize=1";
const TOKEN: &str = "dynatrace_token";
/// Flagger asks for `from = now - 10 * interval`, in milliseconds.
const WINDOW_MULTIPLIER: u64 = 10;
/// Flagger wraps a nil error with `%w` after a non-200 answer; Go prints it so.
const NIL_ERROR: &str = "%!w(<nil>)";

pub struct Dynatrace {
    client: reqwest::Client,
    address: String,
    token: String,
    /// Milliseconds from `from` to `to`.
    window_ms: u64,
}

impl Dynatrace {
    pub fn new(config: &Config<'_>) -> Result<Dynatrace, String> {
        // Dynatrace has no default address: every tenant has its own.
        let address = config.address();
        if address.is_empty() {
            return Err("dynatrace endpoint is not set".to_owned());
        }
        let token = config.credentials.require("dynatrace", TOKEN)?;
        let interval = config.interval()?;
        let window_ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(WINDOW_MULTIPLIER);
        Ok(Dynatrace {
            // Flagger uses Go's default client: no headers, no insecureSkipVerify.
            client: config.http.client(false)?,
            address: address.to_owned(),
            token,
            window_ms,
        })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        // Flagger concatenates the address and the path as they are.
        self.client
            .get(format!("{}{path}", self.address))
            .header("Authorization", format!("Api-Token {}", self.token))
    }

    async fn query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        // Whole seconds in milliseconds, as Flagger computes `now`.
        let now = unix_now() * 1000;
        // Go encodes query parameters sorted by name.
        let request = self.get(QUERY_PATH).query(&[
            ("from", now.saturating_sub(self.window_ms).to_string()),
            ("metricSelector", query.to_owned()),
            ("resolution", "Inf".to_owned()),
            ("to", now.to_string()),
        ]);
        let reply = http::send(request, deadline).await?;
        if !reply.is_ok() {
            return Err(QueryError::Failed(format!(
                "error response: {}: {NIL_ERROR}",
                reply.body
            )));
        }
        value_of(&reply.body)
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

impl Provider for Dynatrace {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        self.query(query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        self.online(deadline).boxed()
    }
}

/// Flagger's pick: the first value of the last data entry of the first result.
fn value_of(body: &str) -> Result<f64, QueryError> {
    let unmarshal =
        |e: String| QueryError::Failed(format!("error unmarshaling result: {e}, '{body}'"));
    let no_values = || QueryError::no_values_in(format!("invalid response: {body}"));
    let json = gojson::parse(body).map_err(unmarshal)?;
    let results = decode(&json).map_err(unmarshal)?;
    let data = results.first().ok_or_else(no_values)?;
    let values = data.last().ok_or_else(no_values)?;
    values.first().copied().ok_or_else(no_values)
}

/// Go's decoding into `{Result []struct{Data []struct{Timestamps []int64;
/// Values []float64}}}`, keeping the values; a null value reads as 0.
fn decode(json: &Value) -> Result<Vec<Vec<Vec<f64>>>, String> {
    const POINTS: &str = r#"struct { Timestamps []int64 "json:\"timestamps\""; Values []float64 "json:\"values\"" }"#;
    let result_item = format!(r#"struct {{ Data []{POINTS} "json:\"data\"" }}"#);
    if !matches!(json, Value::Object(_) | Value::Null) {
        return Err(gojson::top_type_error(json, "providers.dynatraceResponse"));
    }
    let field = "dynatraceResponse.result";
    let results = gojson::slice(
        gojson::field(json, "result"),
        field,
        &format!("[]{result_item}"),
    )?;
    let mut out = Vec::new();
    for result in results {
        if !matches!(result, Value::Object(_) | Value::Null) {
            return Err(gojson::type_error(result, field, &result_item));
        }
        let mut data = Vec::new();
        let field = ".result.data";
        for entry in gojson::slice(gojson::field(result, "data"), field, &format!("[]{POINTS}"))? {
            if !matches!(entry, Value::Object(_) | Value::Null) {
                return Err(gojson::type_error(entry, field, POINTS));
            }
            let stamps = ".result.data.timestamps";
            for stamp in gojson::slice(gojson::field(entry, "timestamps"), stamps, "[]int64")? {
                match stamp {
                    Value::Null => {}
                    Value::Number(n) if n.is_i64() => {}
                    // Go names the number it could not fit.
                    Value::Number(n) => {
                        return Err(format!(
                            "json: cannot unmarshal number {n} into Go struct field {stamps} of type int64"
                        ));
                    }
                    other => return Err(gojson::type_error(other, stamps, "int64")),
                }
            }
            let field = ".result.data.values";
            let values = gojson::slice(gojson::field(entry, "values"), field, "[]float64")?;
            data.push(
                values
                    .iter()
                    .map(|v| gojson::float(v, field))
                    .collect::<Result<_, _>>()?,
            );
        }
        out.push(data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::metrics::fake::{Answer, FakeVendor, Setup, deadline};

    const KEYS: &[(&str, &str)] = &[(TOKEN, "dt0c01.k")];
    // The documented metrics v2 query answer.
    const ANSWER: &str = r#"{"totalCount":2,"nextPageKey":null,"resolution":"Inf","result":[{"metricId":"builtin:service.response.time:avg","dataPointCountRatio":0.0001,"dimensionCountRatio":0.01,"data":[{"dimensions":["SERVICE-1"],"dimensionMap":{"dt.entity.service":"SERVICE-1"},"timestamps":[1700000600000],"values":[2000.5]},{"dimensions":["SERVICE-2"],"dimensionMap":{"dt.entity.service":"SERVICE-2"},"timestamps":[1700000600000],"values":[1234.5]}]}]}"#;

    fn provider(vendor: &FakeVendor, interval: &str) -> Dynatrace {
        let setup = Setup::new(
            json!({"type": "dynatrace", "address": vendor.url()}),
            interval,
            Some(KEYS),
        );
        Dynatrace::new(&setup.config()).unwrap()
    }

    async fn run(vendor: &FakeVendor, answer: Answer) -> Result<f64, QueryError> {
        vendor.then(answer);
        provider(vendor, "1m")
            .run_query("builtin:service.response.time:avg", deadline(10))
            .await
    }

    #[tokio::test]
    async fn sends_flaggers_request_and_takes_the_last_entrys_value() {
        let vendor = FakeVendor::start(Answer::ok(ANSWER)).await;
        let selector =
            "builtin:service.response.time:filter(eq(\"dt.entity.service\",\"SERVICE-1\")):avg";
        assert_eq!(
            provider(&vendor, "30s")
                .run_query(selector, deadline(10))
                .await,
            Ok(1234.5)
        );
        let seen = vendor.last();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("GET", "/api/v2/metrics/query")
        );
        let names: Vec<&str> = seen.query.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["from", "metricSelector", "resolution", "to"]);
        assert_eq!(seen.param("metricSelector"), Some(selector));
        assert_eq!(seen.param("resolution"), Some("Inf"));
        let number = |name| {
            seen.param(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap()
        };
        assert_eq!(number("to") - number("from"), 10 * 30_000);
        assert!(number("to").abs_diff(unix_now() * 1000) <= 2000);
        assert_eq!(seen.header("authorization"), Some("Api-Token dt0c01.k"));
        assert_eq!(seen.body, "");
    }

    #[tokio::test]
    async fn answers_map_to_flaggers_results() {
        let vendor = FakeVendor::start(Answer::ok("{}")).await;
        // Dynatrace sends null for a missing point; Go's decoding makes it 0.
        let null = r#"{"result":[{"data":[{"timestamps":[1700000600000],"values":[null]}]}]}"#;
        assert_eq!(run(&vendor, Answer::ok(null)).await, Ok(0.0));
        for empty in [
            r#"{"totalCount":0,"result":[]}"#,
            r#"{"result":[{"metricId":"m","data":[]}]}"#,
            r#"{"result":[{"data":[{"timestamps":[],"values":[]}]}]}"#,
        ] {
            assert_eq!(
                run(&vendor, Answer::ok(empty)).await,
                Err(QueryError::NoValues(format!(
                    "invalid response: {empty}: no values found"
                )))
            );
        }
        assert_eq!(
            run(&vendor, Answer::ok("{\"result\":[}")).await,
            Err(QueryError::Failed(
                "error unmarshaling result: invalid character '}' looking for beginning of value, '{\"result\":[}'".into()
            ))
        );
        let typed = r#"{"result":[{"data":[{"timestamps":[1.5],"values":[1]}]}]}"#;
        assert_eq!(
            run(&vendor, Answer::ok(typed)).await,
            Err(QueryError::Failed(format!(
                "error unmarshaling result: json: cannot unmarshal number 1.5 into Go struct field .result.data.timestamps of type int64, '{typed}'"
            )))
        );
        let denied = r#"{"error":{"code":401,"message":"Missing authorization parameter."}}"#;
        assert_eq!(
            run(&vendor, Answer::status(401, denied)).await,
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
            provider(&slow, "1m").run_query("m", deadline(1)).await,
            Err(QueryError::Deadline)
        );
    }

    #[tokio::test]
    async fn factory_errors_are_flaggers() {
        let err = |spec: serde_json::Value, secret: Option<&[(&str, &str)]>, interval| {
            Dynatrace::new(&Setup::new(spec, interval, secret).config()).err()
        };
        let spec = json!({"type": "dynatrace", "address": "https://abc.live.dynatrace.com"});
        let no_address = err(json!({"type": "dynatrace"}), Some(KEYS), "1m");
        assert_eq!(no_address.as_deref(), Some("dynatrace endpoint is not set"));
        assert_eq!(
            err(spec.clone(), Some(&[("token", "secret-t")]), "1m").as_deref(),
            Some("dynatrace credentials does not contain dynatrace_token")
        );
        let bad = err(spec, Some(KEYS), "soon").unwrap_or_default();
        assert!(bad.starts_with("error parsing metric interval: "), "{bad}");
    }

    #[tokio::test]
    async fn is_online_lists_one_metric() {
        let vendor = FakeVendor::start(Answer::ok(r#"{"totalCount":1,"metrics":[]}"#)).await;
        let provider = provider(&vendor, "1m");
        assert_eq!(provider.is_online(deadline(10)).await, Ok(()));
        let seen = vendor.last();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("GET", "/api/v2/metrics")
        );
        assert_eq!(seen.query, [("pageSize".to_owned(), "1".to_owned())]);
        assert_eq!(seen.header("authorization"), Some("Api-Token dt0c01.k"));
        vendor.then(Answer::status(403, "forbidden"));
        assert_eq!(
            provider.is_online(deadline(10)).await,
            Err(QueryError::Failed("error response: forbidden".into()))
        );
    }
}
