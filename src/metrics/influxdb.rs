//! The InfluxDB provider: a Flux query sent as Flagger's official Go client
//! sends it (`POST /api/v2/query?org=`, annotated CSV back), reduced as
//! Flagger does: the `_value` of the first record.

use futures::FutureExt;
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use super::gojson;
use super::http::{self, Reply};
use super::provider::{Config, Provider, QueryError, QueryFuture};

const ONLINE_QUERY: &str = r#"from(bucket: "default") |> range(start: -2h)"#;
/// The client's default dialect: every annotation, comma, a header row.
const DIALECT: &str =
    r#"{"annotations":["datatype","group","default"],"delimiter":",","header":true}"#;

pub struct InfluxDb {
    client: reqwest::Client,
    url: Url,
    /// `Token <token>`, absent without a token as in the client.
    authorization: Option<String>,
}

impl InfluxDb {
    pub fn new(config: &Config<'_>) -> Result<InfluxDb, String> {
        let address = config.address();
        let invalid = || format!("influxdb address {address} is not a valid URL");
        if address.is_empty() {
            return Err(invalid());
        }
        let (mut token, mut org) = (String::new(), String::new());
        // Flagger reads credentials only when the template names a Secret.
        if config.spec.secret_ref.is_some() {
            token = config.credentials.get("token").ok_or_else(|| {
                "influxdb credentials does not contain an authentication token".to_owned()
            })?;
            org = config.credentials.get("org").ok_or_else(|| {
                "influxdb credentials does not contain an organisation".to_owned()
            })?;
        }
        // The client appends `/` then resolves `api/v2/`, then joins `query`.
        let base = if address.ends_with('/') {
            address.to_owned()
        } else {
            format!("{address}/")
        };
        let mut url = Url::parse(&base)
            .and_then(|u| u.join("api/v2/query"))
            .map_err(|_| invalid())?;
        url.query_pairs_mut().append_pair("org", &org);
        Ok(InfluxDb {
            // The client is built without Flagger's TLS or header settings.
            client: config.http.client(false)?,
            url,
            authorization: (!token.is_empty()).then(|| format!("Token {token}")),
        })
    }

    async fn post(&self, query: &str, deadline: Instant) -> Result<Reply, QueryError> {
        let body = format!(
            r#"{{"dialect":{DIALECT},"query":{},"type":"flux"}}"#,
            go_json(query)
        );
        let mut request = self
            .client
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        let access = |text: String| {
            QueryError::Failed(format!("error accessing influxdb query api: {text}"))
        };
        let reply = match http::send(request, deadline).await {
            // The client's transport errors are Go's `Post "url": ...` bare.
            Err(QueryError::Failed(text)) => match text.strip_prefix("request failed: ") {
                Some(cause) => return Err(access(cause.to_owned())),
                None => return Err(QueryError::Failed(text)),
            },
            other => other?,
        };
        if !reply.status.is_success() {
            return Err(access(client_error(&reply)));
        }
        Ok(reply)
    }

    async fn query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let reply = self.post(query, deadline).await?;
        // Flagger answers 0 without error when no record could be read (an
        // empty result, a parse error or an error table), which passes a
        // `max` threshold on no data at all; Serin says there were no values.
        let Some(record) = first_record(&reply.body) else {
            return Err(QueryError::no_values_in(
                "invalid response: the answer has no record",
            ));
        };
        match record
            .iter()
            .rev()
            .find(|(name, _)| name == "_value")
            .map(|(_, cell)| cell)
        {
            Some(Cell::Double(value)) => Ok(*value),
            None | Some(Cell::Nil) => Err(QueryError::no_values_in(format!(
                "invalid response: {}",
                record_string(&record)
            ))),
            Some(_) => Err(QueryError::Failed(format!(
                "invalid response: {}",
                record_string(&record)
            ))),
        }
    }

    /// Flagger's `IsOnline`: the query API answers a query on `default`.
    async fn online(&self, deadline: Instant) -> Result<(), QueryError> {
        self.post(ONLINE_QUERY, deadline).await.map(|_| ())
    }
}

impl Provider for InfluxDb {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        self.query(query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        self.online(deadline).boxed()
    }
}

/// A JSON string as Go's `json.Marshal` writes it (`<`, `>`, `&` escaped).
fn go_json(text: &str) -> String {
    serde_json::to_string(text)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The client's error for a non-2xx answer: `code: message` from a JSON
/// body, else the status and the body, else its defaults. `send` keeps no
/// headers, so a body that parses as a JSON object stands for the client's
/// `Content-Type: application/json` test (InfluxDB's errors are JSON), and
/// `X-Influxdb-Error` is not consulted.
fn client_error(reply: &Reply) -> String {
    let json = gojson::parse(&reply.body).ok().filter(Value::is_object);
    let (mut code, mut message) = match &json {
        Some(json) => {
            let mut found = [String::new(), String::new()];
            for (name, slot) in ["Code", "Message"].into_iter().zip(found.iter_mut()) {
                match gojson::field(json, name) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => *slot = s.clone(),
                    Some(other) => {
                        return gojson::type_error(other, &format!("Error.{name}"), "string");
                    }
                }
            }
            let [code, message] = found;
            (code, message)
        }
        None => (reply.status_text(), reply.body.clone()),
    };
    if code.is_empty() && message.is_empty() {
        match reply.status.as_u16() {
            429 => return "too many requests: exceeded rate limit".to_owned(),
            503 => return "unavailable: service temporarily unavailable".to_owned(),
            _ => (code, message) = (reply.status_text(), String::new()),
        }
    }
    if code.is_empty() || message.is_empty() {
        return format!("Unexpected status code {}", reply.status.as_u16());
    }
    format!("{code}: {message}")
}

/// One decoded cell of the client's annotated CSV.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Nil,
    Double(f64),
    /// Any other type, already printed as Go's `%v` prints it.
    Other(String),
}

/// The first record of the first table, as the client's `Next` reads it;
/// `None` when it would stop without one (end, parse error, error table).
fn first_record(body: &str) -> Option<Vec<(String, Cell)>> {
    let mut columns: Option<Vec<Column>> = None;
    let mut annotating = false;
    let mut has_datatype = false;
    for row in csv_rows(body)? {
        if row.len() <= 1 {
            continue;
        }
        if row[0].starts_with('#') && !annotating {
            columns = Some(vec![Column::default(); row.len() - 1]);
            annotating = true;
        }
        let columns = columns.as_mut()?;
        if row.len() - 1 != columns.len() {
            return None;
        }
        let cells = row[1..].iter().zip(columns.iter_mut());
        match row[0].as_str() {
            "#datatype" => {
                has_datatype = true;
                cells.for_each(|(v, c)| c.datatype = v.clone());
            }
            "#default" => cells.for_each(|(v, c)| c.default = v.clone()),
            "#group" => {}
            // The header row, or an error table's, which stops the reader.
            "" if annotating => {
                if !has_datatype || row[1] == "error" {
                    return None;
                }
                cells.for_each(|(v, c)| c.name = v.clone());
                annotating = false;
            }
            "" => {
                let record = cells
                    .map(|(v, c)| {
                        let text = if v.is_empty() { &c.default } else { v };
                        Some((c.name.clone(), cell(text, &c.datatype)?))
                    })
                    .collect::<Option<Vec<_>>>()?;
                return Some(record);
            }
            _ => return None,
        }
    }
    None
}

#[derive(Debug, Clone, Default)]
struct Column {
    name: String,
    datatype: String,
    default: String,
}

/// The client's `toValue`; `None` where it fails.
fn cell(text: &str, datatype: &str) -> Option<Cell> {
    if text.is_empty() {
        return Some(Cell::Nil);
    }
    let other = |s: String| Some(Cell::Other(s));
    match datatype {
        "double" => text.parse().ok().map(Cell::Double),
        "string" | "duration" | "base64Binary" => other(text.to_owned()),
        "boolean" => other((!text.eq_ignore_ascii_case("false")).to_string()),
        "long" => other(text.parse::<i64>().ok()?.to_string()),
        "unsignedLong" => other(text.parse::<u64>().ok()?.to_string()),
        "dateTime:RFC3339" | "dateTime:RFC3339Nano" => other(go_time(text)?),
        _ => None,
    }
}

/// An RFC 3339 time as Go's `Time.String` prints it
/// (`2024-01-01 00:00:00.5 +0000 UTC`).
fn go_time(text: &str) -> Option<String> {
    let (date, rest) = text.split_once(['T', 't'])?;
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let (seconds, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let shape = |s: &str, pattern: &str| {
        s.len() == pattern.len()
            && s.bytes().zip(pattern.bytes()).all(|(c, p)| {
                if p == b'9' {
                    c.is_ascii_digit()
                } else {
                    c == p
                }
            })
    };
    if !shape(date, "9999-99-99")
        || !shape(seconds, "99:99:99")
        || !fraction.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    let zone = match zone {
        "Z" | "z" | "+00:00" | "-00:00" => "+0000 UTC".to_owned(),
        offset if shape(&offset[1..], "99:99") => {
            let offset = offset.replace(':', "");
            format!("{offset} {offset}")
        }
        _ => return None,
    };
    Some(format!("{date} {seconds}{fraction} {zone}"))
}

/// Go's `FluxRecord.String`: `name:value` sorted by name, comma separated.
fn record_string(record: &[(String, Cell)]) -> String {
    let mut fields: std::collections::BTreeMap<&str, String> = Default::default();
    for (name, cell) in record {
        let shown = match cell {
            Cell::Nil => "<nil>".to_owned(),
            Cell::Double(f) => gojson::float_v(*f),
            Cell::Other(s) => s.clone(),
        };
        fields.insert(name, shown);
    }
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    parts.join(",")
}

/// Rows of Go's `encoding/csv` reader (quotes, CRLF, blank lines skipped);
/// `None` on a quoting error.
fn csv_rows(body: &str) -> Option<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let (mut row, mut field) = (Vec::new(), String::new());
        let mut quoted_field = false;
        loop {
            match chars.next() {
                None | Some('\n') => break,
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some(',') => {
                    row.push(std::mem::take(&mut field));
                    quoted_field = false;
                }
                Some('"') if field.is_empty() && !quoted_field => {
                    quoted_field = true;
                    loop {
                        match chars.next()? {
                            '"' if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            '"' => break,
                            c => field.push(c),
                        }
                    }
                    if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                        return None;
                    }
                }
                Some('"') => return None,
                Some(c) => field.push(c),
            }
        }
        row.push(field);
        if !(row.len() == 1 && row[0].is_empty() && !quoted_field) {
            rows.push(row);
        }
    }
    Some(rows)
}

#[cfg(test)]
mod tests;
