//! The Graphite provider: the template's query is a render API query string
//! (`target=...&from=-5min`, the window is the user's), sent with
//! `format=json`; the answer's last non-null datapoint is the value.

use std::collections::BTreeMap;

use futures::FutureExt;
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use super::gojson;
use super::http;
use super::provider::{Config, Provider, QueryError, QueryFuture};

const ONLINE_QUERY: &str = "target=test";

pub struct Graphite {
    client: reqwest::Client,
    url: Url,
    /// Basic auth, used when both are non-empty as in Flagger.
    username: String,
    password: String,
}

impl Graphite {
    pub fn new(config: &Config<'_>) -> Result<Graphite, String> {
        let address = config.address();
        let url = Url::parse(address)
            .ok()
            .filter(|_| !address.is_empty())
            .ok_or_else(|| format!("graphite address {address} is not a valid URL"))?;
        let (mut username, mut password) = (String::new(), String::new());
        // Flagger reads credentials only when the template names a Secret.
        if config.spec.secret_ref.is_some() {
            let get = |key: &str, what: &str| {
                config
                    .credentials
                    .get(key)
                    .ok_or_else(|| format!("graphite credentials does not contain a {what}"))
            };
            username = get("username", "username")?;
            password = get("password", "password")?;
        }
        Ok(Graphite {
            // Graphite honours insecureSkipVerify in Flagger; headers are ignored.
            client: config.client()?,
            url,
            username,
            password,
        })
    }

    /// Flagger's URL: `<address path>/render` with the query's parameters,
    /// `format=json` set, sorted and escaped as Go's `url.Values.Encode`.
    fn render_url(&self, query: &str) -> Result<Url, QueryError> {
        let query = query
            .split([' ', '\t', '\n', '\r', '\x0c'])
            .filter(|s| !s.is_empty());
        let query = query.collect::<Vec<_>>().join(" ");
        if query.chars().any(|c| c.is_ascii_control()) {
            return Err(QueryError::Failed(format!(
                "url.Parse failed: parse {}: net/url: invalid control character in URL",
                go_quote(&format!("./render?{query}"))
            )));
        }
        let raw = query.split('#').next().unwrap_or_default();
        let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in raw.split('&') {
            // Go drops pairs with a semicolon or a bad escape.
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(key), Some(value)) = (unescape(key), unescape(value)) {
                params.entry(key).or_default().push(value);
            }
        }
        params.insert("format".into(), vec!["json".into()]);
        let encoded: Vec<String> = params
            .iter()
            .flat_map(|(k, vs)| {
                vs.iter()
                    .map(move |v| format!("{}={}", escape(k), escape(v)))
            })
            .collect();
        let mut url = self.url.clone();
        let base: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
        url.set_path(&format!(
            "/{}",
            [base.as_slice(), &["render"]].concat().join("/")
        ));
        url.set_query(Some(&encoded.join("&")));
        url.set_fragment(None);
        Ok(url)
    }

    async fn query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let mut request = self.client.get(self.render_url(query)?);
        if !self.username.is_empty() && !self.password.is_empty() {
            request = request.basic_auth(&self.username, Some(&self.password));
        }
        let reply = http::send(request, deadline).await?;
        if reply.status.as_u16() >= 400 {
            return Err(QueryError::Failed(format!(
                "error response: {}",
                reply.body
            )));
        }
        let unmarshal = |e: String| {
            QueryError::Failed(format!("error unmarshaling result: {e}, '{}'", reply.body))
        };
        let json = gojson::parse(&reply.body).map_err(unmarshal)?;
        last_value(&json)
            .map_err(unmarshal)?
            .ok_or_else(QueryError::no_values)
    }

    /// Flagger's `IsOnline`: `target=test` answers, with or without values.
    async fn online(&self, deadline: Instant) -> Result<(), QueryError> {
        match self.query(ONLINE_QUERY, deadline).await {
            Ok(_) | Err(QueryError::NoValues(_)) => Ok(()),
            Err(e @ (QueryError::Deadline | QueryError::Throttled(_))) => Err(e),
            Err(e) => Err(QueryError::Failed(format!("running query failed: {e}"))),
        }
    }
}

impl Provider for Graphite {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        self.query(query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        self.online(deadline).boxed()
    }
}

/// Go's `QueryUnescape`; `None` for a bad escape.
fn unescape(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b => out.push(b),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `QueryEscape`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The last non-null datapoint value over all targets, decoded as Flagger's
/// `[]{target, datapoints: [[value, timestamp]]}` with its errors.
fn last_value(json: &Value) -> Result<Option<f64>, String> {
    let targets = match json {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        other => return Err(gojson::top_type_error(other, "providers.graphiteResponse")),
    };
    let mut last = None;
    for target in targets {
        if !matches!(target, Value::Object(_) | Value::Null) {
            return Err(gojson::top_type_error(
                target,
                "providers.graphiteTargetResp",
            ));
        }
        if let Some(name) = gojson::field(target, "target")
            && !matches!(name, Value::String(_) | Value::Null)
        {
            return Err(gojson::type_error(
                name,
                "graphiteTargetResp.target",
                "string",
            ));
        }
        let field = "graphiteTargetResp.datapoints";
        let points = gojson::field(target, "datapoints");
        for point in gojson::slice(points, field, "[]providers.graphiteDataPoint")? {
            if let Some(value) = datapoint(point, field)? {
                last = Some(value);
            }
        }
    }
    Ok(last)
}

/// One `[value, timestamp]` pair as Flagger's `UnmarshalJSON` reads it.
fn datapoint(point: &Value, field: &str) -> Result<Option<f64>, String> {
    let pair = match point {
        Value::Null => &[][..],
        Value::Array(items) => items.as_slice(),
        other => return Err(gojson::type_error(other, field, "[]interface {}")),
    };
    let [value, stamp] = pair else {
        // A null point prints as Go's empty slice.
        let shown = gojson::value_v(&Value::Array(pair.to_vec()));
        return Err(format!("error unmarshaling data point: {shown}"));
    };
    let value = match value {
        Value::Null => None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) => Some(parse_float(s)?),
        other => {
            return Err(format!(
                "error unmarshaling value: {}",
                gojson::value_v(other)
            ));
        }
    };
    match stamp {
        Value::Null | Value::Number(_) => {}
        Value::String(s) => {
            if let Err(e) = s.parse::<i64>() {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        "value out of range"
                    }
                    _ => "invalid syntax",
                };
                return Err(format!("strconv.ParseInt: parsing {}: {why}", go_quote(s)));
            }
        }
        // Flagger prints the value, not the timestamp, here.
        _ => {
            return Err(format!(
                "error unmarshaling timestamp: {}",
                gojson::value_v(value_of(pair))
            ));
        }
    }
    Ok(value)
}

fn value_of(pair: &[Value]) -> &Value {
    pair.first().unwrap_or(&Value::Null)
}

/// Go's `strconv.ParseFloat` with its error texts.
fn parse_float(s: &str) -> Result<f64, String> {
    let parsed = s.parse::<f64>();
    let why = match parsed {
        Ok(f) if f.is_infinite() && !s.to_ascii_lowercase().contains("inf") => "value out of range",
        Ok(f) => return Ok(f),
        Err(_) => "invalid syntax",
    };
    Err(format!(
        "strconv.ParseFloat: parsing {}: {why}",
        go_quote(s)
    ))
}

/// Go's `%q` of a string (printable text and ASCII controls).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
