//! The `externalmetrics` provider: one metric of the Kubernetes external
//! metrics API (`external.metrics.k8s.io/v1beta1`), read through the API
//! server with the operator's own client, or from `spec.provider.address`
//! with the Secret's `token`, as Flagger's client-go client does.

mod quantity;
mod selector;

use std::time::Duration;

use futures::FutureExt;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::time::Instant;

use super::http::chain;
use super::provider::{Config, Provider, QueryError, QueryFuture};

pub use quantity::approximate_f64;

const GROUP: &str = "external.metrics.k8s.io";
const API_PATH: &str = "/apis/external.metrics.k8s.io/v1beta1";
/// Flagger sets this client's `rest.Config.Timeout`.
const TIMEOUT: Duration = Duration::from_secs(5);
const QUERY_FORM: &str = "<namespace>/<metricName>?labelSelector=<urlencoded label selectors>";

/// Where the metrics API is.
enum Server {
    /// Through the API server, with the operator's client and credentials.
    Cluster(kube::Client),
    /// `spec.provider.address`: its own server, the Secret's bearer token.
    Address {
        client: reqwest::Client,
        base: Url,
        token: Option<String>,
    },
}

pub struct ExternalMetrics {
    server: Server,
}

/// What the template's query names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub namespace: String,
    pub metric: String,
    /// The selector as Flagger sends it; empty selects everything.
    pub selector: String,
}

/// An HTTP answer: status, content type and body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl ExternalMetrics {
    pub fn new(config: &Config<'_>) -> Result<ExternalMetrics, String> {
        let address = config.address();
        if address.is_empty() {
            return Ok(ExternalMetrics {
                server: Server::Cluster(config.kube.clone()),
            });
        }
        // client-go takes a bare host:port as an https URL.
        let full = if address.contains("://") {
            address.to_owned()
        } else {
            format!("https://{address}")
        };
        let base = Url::parse(&full)
            .ok()
            .filter(|u| u.has_host() && u.query().is_none())
            .ok_or_else(|| {
                "error creating external metric client: host must be a URL or a host:port pair"
                    .to_owned()
            })?;
        Ok(ExternalMetrics {
            server: Server::Address {
                client: config.client()?,
                base,
                token: config.credentials.get("token"),
            },
        })
    }

    pub async fn run_query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let parsed = parse_query(query)
            .map_err(|e| QueryError::Failed(format!("error parsing metric query: {e}")))?;
        let failed =
            |e: String| QueryError::Failed(format!("error querying external metrics API: {e}"));
        let answer = self.list(&parsed, deadline).await.map_err(|e| match e {
            QueryError::Failed(text) => failed(text),
            other => other,
        })?;
        if !(200..300).contains(&answer.status) {
            return Err(failed(api_error(&answer, &parsed.metric)));
        }
        first_value(&answer.body).map_err(|e| match e {
            QueryError::Failed(text) => failed(text),
            other => other,
        })
    }

    /// Flagger's `IsOnline`: listing `dummy-metric` in kube-system must not
    /// fail (an empty list is fine, an error answer is not).
    pub async fn is_online(&self, deadline: Instant) -> Result<(), QueryError> {
        let dummy = Query {
            namespace: "kube-system".to_owned(),
            metric: "dummy-metric".to_owned(),
            selector: String::new(),
        };
        let unavailable =
            |e: String| QueryError::Failed(format!("external metrics service unavailable: {e}"));
        let answer = self.list(&dummy, deadline).await.map_err(|e| match e {
            QueryError::Failed(text) => unavailable(text),
            other => other,
        })?;
        if !(200..300).contains(&answer.status) {
            return Err(unavailable(api_error(&answer, &dummy.metric)));
        }
        serde_json::from_str::<ValueList>(&answer.body)
            .map(|_| ())
            .map_err(|e| unavailable(e.to_string()))
    }

    /// GET `<api>/namespaces/<ns>/<metric>?labelSelector=...`, bounded by
    /// Flagger's five seconds and the caller's deadline.
    async fn list(&self, query: &Query, deadline: Instant) -> Result<Answer, QueryError> {
        let path = request_path(query);
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(QueryError::Deadline);
        }
        let limit = remaining.min(TIMEOUT);
        let shown = match &self.server {
            Server::Cluster(_) => path.clone(),
            Server::Address { base, .. } => join(base, &path),
        };
        let sent = tokio::time::timeout(limit, self.send(&path));
        match sent.await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(cause)) => Err(QueryError::Failed(format!("Get \"{shown}\": {cause}"))),
            Err(_) if remaining < TIMEOUT => Err(QueryError::Deadline),
            Err(_) => Err(QueryError::Failed(format!(
                "Get \"{shown}\": context deadline exceeded"
            ))),
        }
    }

    async fn send(&self, path: &str) -> Result<Answer, String> {
        match &self.server {
            Server::Cluster(client) => {
                let request = http::Request::get(path)
                    .header(http::header::ACCEPT, "application/json")
                    .body(kube::client::Body::from(Vec::new()))
                    .map_err(|e| e.to_string())?;
                let response = client.send(request).await.map_err(|e| chain(&e))?;
                let status = response.status().as_u16();
                let content_type = header_text(response.headers().get(CONTENT_TYPE));
                let bytes = response
                    .into_body()
                    .collect_bytes()
                    .await
                    .map_err(|e| chain(&e))?;
                Ok(Answer {
                    status,
                    content_type,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                })
            }
            Server::Address {
                client,
                base,
                token,
            } => {
                let mut request = client
                    .get(join(base, path))
                    .header(http::header::ACCEPT, "application/json");
                if let Some(token) = token.as_ref().filter(|t| !t.is_empty()) {
                    request = request.header(AUTHORIZATION, format!("Bearer {token}"));
                }
                let response = request.send().await.map_err(|e| chain(&e))?;
                let status = response.status().as_u16();
                let content_type = header_text(response.headers().get(CONTENT_TYPE));
                let body = response.text().await.map_err(|e| chain(&e))?;
                Ok(Answer {
                    status,
                    content_type,
                    body,
                })
            }
        }
    }
}

impl Provider for ExternalMetrics {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        ExternalMetrics::run_query(self, query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        ExternalMetrics::is_online(self, deadline).boxed()
    }
}

fn header_text(value: Option<&http::HeaderValue>) -> String {
    value
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The address's path with the API path after it (client-go's `APIPath`).
fn join(base: &Url, path: &str) -> String {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_owned();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    url.set_path(&format!("{prefix}{path}"));
    url.set_query((!query.is_empty()).then_some(query));
    url.to_string()
}

/// The request path, each segment escaped, the selector as a parameter.
pub fn request_path(query: &Query) -> String {
    let mut url = match Url::parse("http://x") {
        Ok(url) => url,
        Err(_) => return String::new(),
    };
    url.set_path(API_PATH);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.extend(["namespaces", &query.namespace, &query.metric]);
    }
    if !query.selector.is_empty() {
        url.query_pairs_mut()
            .append_pair("labelSelector", &query.selector);
    }
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Flagger's `<namespace>/<metricName>?labelSelector=<selector>` (only the
/// metric is required; the namespace defaults to `default`), read the way
/// Go's `url.Parse("dummy:///" + query)` reads it.
pub fn parse_query(query: &str) -> Result<Query, String> {
    let malformed = || format!("malformed query string, expected {QUERY_FORM}, got {query}");
    if query.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(malformed());
    }
    let without_fragment = query.split('#').next().unwrap_or_default();
    let (raw_path, raw_query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let path = unescape(raw_path, false).ok_or_else(malformed)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let parts: Vec<&str> = path.split('/').collect();
    let (namespace, metric) = match parts.as_slice() {
        [metric] => ("default", *metric),
        ["", metric] => ("default", *metric),
        [namespace, metric] => (*namespace, *metric),
        _ => {
            return Err(format!(
                "malformed query string, too many slashes, expected {QUERY_FORM}, got {query}"
            ));
        }
    };
    if metric.is_empty() {
        return Err("metric name cannot be empty".to_owned());
    }
    let raw_selector = query_param(raw_query, "labelSelector").unwrap_or_default();
    let selector = if raw_selector.is_empty() {
        String::new()
    } else {
        selector::normalize(&raw_selector)
            .map_err(|e| format!("error parsing label selector from string {raw_selector}: {e}"))?
    };
    Ok(Query {
        namespace: namespace.to_owned(),
        metric: metric.to_owned(),
        selector,
    })
}

/// Go's `url.Values.Get`: the first value; pairs with `;` or bad escapes
/// are skipped, as `url.ParseQuery` skips them.
fn query_param(raw: &str, name: &str) -> Option<String> {
    raw.split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(key, true)?, unescape(value, true)?))
        })
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Percent-decoding; `+` is a space in query components only.
fn unescape(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Deserialize)]
struct ValueList {
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    value: serde_json::Value,
}

/// The first item's value; every item's quantity must parse, as the whole
/// list is decoded before Flagger looks at it.
pub fn first_value(body: &str) -> Result<f64, QueryError> {
    let list: ValueList =
        serde_json::from_str(body).map_err(|e| QueryError::Failed(e.to_string()))?;
    let mut values = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let value = match &item.value {
            serde_json::Value::Null => Ok(0.0),
            serde_json::Value::String(text) => approximate_f64(text.trim()),
            other => approximate_f64(other.to_string().trim()),
        };
        values.push(value.map_err(QueryError::Failed)?);
    }
    values
        .first()
        .copied()
        .ok_or_else(|| QueryError::no_values_in("no external metrics found"))
}

/// A failed answer as client-go words it for the metric's list.
fn api_error(answer: &Answer, metric: &str) -> String {
    client_go_error(
        answer.status,
        &answer.content_type,
        &answer.body,
        &format!("get {metric}.{GROUP}"),
    )
}

/// client-go's error for a failed answer: a `Status`'s message, else its
/// generic text for the code followed by what was asked (`get <resource>`).
pub(super) fn client_go_error(code: u16, content_type: &str, body: &str, what: &str) -> String {
    let json_body = content_type.is_empty() || content_type.contains("json");
    if json_body && let Some(message) = status_message(body) {
        return message;
    }
    let media = content_type.split(';').next().unwrap_or_default();
    let server_message = if media.trim().starts_with("text/") {
        body.trim().to_owned()
    } else {
        "unknown".to_owned()
    };
    let message = match code {
        409 => "the server reported a conflict".to_owned(),
        404 => "the server could not find the requested resource".to_owned(),
        400 => "the server rejected our request for an unknown reason".to_owned(),
        401 => "the server has asked for the client to provide credentials".to_owned(),
        403 => server_message,
        405 => "the server does not allow this method on the requested resource".to_owned(),
        422 => "the server rejected our request due to an error in our request".to_owned(),
        504 => "the server was unable to return a response in the time allotted, but may still be processing the request".to_owned(),
        429 => "the server has received too many requests and has asked us to try again later".to_owned(),
        c if c >= 500 => format!(
            "an error on the server ({server_message:?}) has prevented the request from succeeding"
        ),
        c => format!("the server responded with the status code {c} but did not return more information"),
    };
    format!("{message} ({what})")
}

/// The message of a `Status` object with `status: Failure`.
fn status_message(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    if json.get("kind")?.as_str()? != "Status" || json.get("status")?.as_str()? != "Failure" {
        return None;
    }
    Some(
        json.get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned(),
    )
}

#[cfg(test)]
mod tests;
