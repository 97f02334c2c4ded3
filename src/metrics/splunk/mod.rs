//! The Splunk Observability (SignalFx) provider. Flagger runs the template's
//! SignalFlow program through the WebSocket client (`/v2/signalflow/connect`);
//! Serin runs it through the same service's HTTP endpoint,
//! `POST /v2/signalflow/execute`, which answers the same messages as
//! Server-Sent Events and ends the stream when an `immediate` computation over
//! a past window is done: one request, read whole, under the shared timeout,
//! deadline and 429 rules.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use super::http;
use super::provider::{Config, MULTIPLE_VALUES, NO_VALUES, Provider, QueryError, QueryFuture};

const SIGNALFLOW_PATH: &str = "/v2/signalflow";
const VALIDATION_PATH: &str = "/v2/metric?limit=1";
const TOKEN_KEY: &str = "sf_token_key";
const TOKEN_HEADER: &str = "X-SF-Token";
/// Flagger reads `10 * interval` back from now.
const FROM_DELTA_MULTIPLIER: u32 = 10;

pub struct Splunk {
    client: reqwest::Client,
    execute: Url,
    validation: Url,
    token: String,
    from_delta: Duration,
}

impl Splunk {
    pub fn new(config: &Config<'_>) -> Result<Splunk, String> {
        let address = config.address();
        if address.is_empty() {
            return Err("splunk endpoint is not set".to_owned());
        }
        let token = config.credentials.require("splunk", TOKEN_KEY)?;
        let from_delta = config.interval()? * FROM_DELTA_MULTIPLIER;
        // Flagger's rewrites, first match only: `https://api.<realm>...` gives
        // the stream `wss://stream.<realm>...` and the API stays `api`.
        let stream = format!("{address}{SIGNALFLOW_PATH}")
            .replacen("http", "ws", 1)
            .replacen("api", "stream", 1);
        // The same stream host over HTTP(S), for the SSE endpoint.
        let stream = match stream.strip_prefix("ws") {
            Some(rest) => format!("http{rest}/execute"),
            None => format!("{stream}/execute"),
        };
        let validation = format!("{address}{VALIDATION_PATH}")
            .replacen("ws", "http", 1)
            .replacen("stream", "api", 1);
        let url = |text: &str| {
            Url::parse(text).map_err(|_| format!("splunk address {address} is not a valid URL"))
        };
        Ok(Splunk {
            client: config.client()?,
            execute: url(&stream)?,
            validation: url(&validation)?,
            token,
            from_delta,
        })
    }

    /// Runs the program over the last `10 * interval`: the last value of its
    /// only time series.
    pub async fn run_query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let start = now.saturating_sub(self.from_delta.as_millis());
        let mut url = self.execute.clone();
        url.query_pairs_mut()
            .append_pair("start", &start.to_string())
            .append_pair("stop", &now.to_string())
            .append_pair("immediate", "true");
        let request = self
            .client
            .post(url)
            .header(TOKEN_HEADER, &self.token)
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(query.to_owned());
        let failed = |text: String| QueryError::Failed(format!("error executing query: {text}"));
        let reply = match http::send(request, deadline).await {
            Ok(reply) => reply,
            Err(QueryError::Failed(text)) => return Err(failed(text)),
            Err(e) => return Err(e),
        };
        if !reply.is_ok() {
            return Err(failed(format!(
                "{}: {}",
                reply.status_text(),
                reply.body.trim()
            )));
        }
        last_value(&reply.body)
    }

    /// Flagger's `IsOnline`: `GET /v2/metric?limit=1` on the API host must
    /// answer 200.
    pub async fn is_online(&self, deadline: Instant) -> Result<(), QueryError> {
        let request = self
            .client
            .get(self.validation.clone())
            .header(TOKEN_HEADER, &self.token);
        let reply = http::send(request, deadline).await?;
        if !reply.is_ok() {
            return Err(QueryError::Failed(format!(
                "error response: {}",
                reply.body
            )));
        }
        Ok(())
    }
}

impl Provider for Splunk {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        Splunk::run_query(self, query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        Splunk::is_online(self, deadline).boxed()
    }
}

/// One Server-Sent Event: its `event:` name and its `data:` lines joined.
fn events(stream: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut event, mut data) = (String::new(), Vec::new());
    for line in stream.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                out.push((std::mem::take(&mut event), data.join("\n")));
            }
            event.clear();
            data.clear();
        } else if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_owned();
        } else if let Some(text) = line.strip_prefix("data:") {
            data.push(text.strip_prefix(' ').unwrap_or(text));
        }
    }
    out
}

/// Flagger's reduction of a computation's data: values that are null are
/// dropped; none left is "no values"; more than one time series is
/// "multiple values"; else the last value received. An `error` message
/// fails the query (the Go client's `ComputationError` text).
fn last_value(stream: &str) -> Result<f64, QueryError> {
    let mut points: Vec<(String, Value)> = Vec::new();
    for (event, data) in events(stream) {
        // Messages that do not parse are skipped, as the Go client does.
        let Ok(message) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        match event.as_str() {
            "data" => {
                let entries = message.get("data").and_then(Value::as_array);
                for entry in entries.into_iter().flatten() {
                    let value = entry.get("value").cloned().unwrap_or(Value::Null);
                    if value.is_null() {
                        continue;
                    }
                    let ts_id = entry
                        .get("tsId")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    points.push((ts_id.to_owned(), value));
                }
            }
            "error" => return Err(computation_error(&message)),
            "control-message"
                if matches!(
                    message.get("event").and_then(Value::as_str),
                    Some("END_OF_CHANNEL" | "CHANNEL_ABORT")
                ) =>
            {
                break;
            }
            _ => {}
        }
    }
    let series: BTreeSet<&str> = points.iter().map(|(id, _)| id.as_str()).collect();
    if series.len() > 1 {
        return Err(QueryError::Failed(format!(
            "invalid response: {MULTIPLE_VALUES}"
        )));
    }
    match points.last() {
        None => Err(QueryError::NoValues(format!(
            "invalid response: {NO_VALUES}"
        ))),
        Some((_, value)) => value
            .as_f64()
            .ok_or_else(|| QueryError::Failed("invalid response: UnsupportedValueType".to_owned())),
    }
}

/// `400 (ANALYTICS_PROGRAM_ERROR): message`, as the Go client words it.
fn computation_error(message: &Value) -> QueryError {
    let code = message
        .get("error")
        .and_then(Value::as_f64)
        .unwrap_or_default() as i64;
    let mut text = code.to_string();
    if let Some(kind) = message
        .get("errorType")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    {
        text = format!("{text} ({kind})");
    }
    if let Some(detail) = message
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        text = format!("{text}: {detail}");
    }
    QueryError::Failed(format!("error executing query: {text}"))
}

#[cfg(test)]
mod tests;
