//! What every HTTP metrics provider shares: Flagger's five-second query
//! timeout, its `request failed` / `error reading body` texts, and one answer
//! to a rate limit (HTTP 429), which Flagger would count as a failed check.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, StatusCode};
use tokio::time::Instant;

use super::provider::QueryError;

/// Flagger's per-query timeout.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest `Retry-After` Serin waits for inside one query; a longer one
/// defers the step (the canary is not judged by a provider that is busy).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The two HTTP clients every provider shares (certificate checks on/off).
#[derive(Clone)]
pub struct HttpClients {
    verified: Result<reqwest::Client, String>,
    insecure: Result<reqwest::Client, String>,
}

impl HttpClients {
    pub fn new() -> HttpClients {
        // reqwest is built without a default crypto provider; install ring's
        // unless the process already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|e| format!("building HTTP client failed: {}", chain(&e)))
        };
        HttpClients {
            verified: build(false),
            insecure: build(true),
        }
    }

    /// The client with or without certificate checks (`insecureSkipVerify`).
    pub fn client(&self, insecure_skip_verify: bool) -> Result<reqwest::Client, String> {
        if insecure_skip_verify {
            self.insecure.clone()
        } else {
            self.verified.clone()
        }
    }
}

impl Default for HttpClients {
    fn default() -> Self {
        HttpClients::new()
    }
}

/// An HTTP answer: the status as Go prints it (`404 Not Found`) and the body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
}

impl Reply {
    /// Go's `Response.Status`: `"429 Too Many Requests"`.
    pub fn status_text(&self) -> String {
        match self.status.canonical_reason() {
            Some(reason) => format!("{} {reason}", self.status.as_u16()),
            None => self.status.as_u16().to_string(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == StatusCode::OK
    }
}

/// Sends `request` with Flagger's timeout bounded by the caller's deadline.
/// Transport errors read as Go's (`request failed: Get "url": ...`). A 429 is
/// asked again once after its `Retry-After` when that fits the deadline, else
/// it is [`QueryError::Throttled`]: a delay, never a verdict on the canary.
pub async fn send(request: RequestBuilder, deadline: Instant) -> Result<Reply, QueryError> {
    let again = request.try_clone();
    let (reply, wait) = send_once(request, deadline).await?;
    if reply.status != StatusCode::TOO_MANY_REQUESTS {
        return Ok(reply);
    }
    let pause = wait.unwrap_or(Duration::from_secs(1));
    let fits = Instant::now() + pause + Duration::from_millis(100) < deadline;
    match again {
        Some(again) if pause <= MAX_RETRY_AFTER && fits => {
            tokio::time::sleep(pause).await;
            let (second, wait) = send_once(again, deadline).await?;
            if second.status == StatusCode::TOO_MANY_REQUESTS {
                return Err(throttled(&second, wait));
            }
            Ok(second)
        }
        _ => Err(throttled(&reply, wait)),
    }
}

fn throttled(reply: &Reply, retry_after: Option<Duration>) -> QueryError {
    let after = retry_after
        .map(|d| format!(", retry after {}s", d.as_secs()))
        .unwrap_or_default();
    QueryError::Throttled(format!(
        "rate limited ({}{after}): {}",
        reply.status_text(),
        reply.body.trim()
    ))
}

async fn send_once(
    request: RequestBuilder,
    deadline: Instant,
) -> Result<(Reply, Option<Duration>), QueryError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(QueryError::Deadline);
    }
    let (client, built) = request.timeout(remaining.min(QUERY_TIMEOUT)).build_split();
    let built =
        built.map_err(|e| QueryError::Failed(format!("error http.NewRequest: {}", chain(&e))))?;
    let what = format!("{} \"{}\"", go_method(built.method()), built.url());
    let failed = |e: reqwest::Error, lead: &str| {
        if e.is_timeout() && remaining < QUERY_TIMEOUT {
            return QueryError::Deadline;
        }
        let cause = if e.is_timeout() {
            "context deadline exceeded".to_owned()
        } else {
            chain(&e)
        };
        QueryError::Failed(format!("{lead}: {what}: {cause}"))
    };
    let response = client
        .execute(built)
        .await
        .map_err(|e| failed(e, "request failed"))?;
    let status = response.status();
    let wait = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let body = response
        .bytes()
        .await
        .map_err(|e| failed(e, "error reading body"))?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok((Reply { status, body }, wait))
}

/// Go prints methods as `Get`, `Post`.
fn go_method(method: &reqwest::Method) -> String {
    let text = method.as_str();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.map(|c| c.to_ascii_lowercase()))
            .collect(),
        None => String::new(),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its causes, the way Go's wrapped errors read.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    // reqwest's own outer text names the URL, which the caller already shows.
    if parts.len() > 1 && parts[0].starts_with("error sending request") {
        parts.remove(0);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::fake::{Answer, FakeVendor, deadline};

    fn get(vendor: &FakeVendor) -> RequestBuilder {
        let client = HttpClients::new().client(false).unwrap();
        client.get(format!("{}/api/v1/query?query=up", vendor.url()))
    }

    #[tokio::test]
    async fn a_short_retry_after_is_waited_for_once() {
        let vendor = FakeVendor::start(Answer::ok("{}")).await;
        vendor.then(Answer::status(429, "slow down").header("retry-after", "1"));
        let started = Instant::now();
        let reply = send(get(&vendor), deadline(10)).await.unwrap();
        assert_eq!(reply.body, "{}");
        assert_eq!(vendor.requests().len(), 2);
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_long_retry_after_defers_instead_of_failing_the_check() {
        let vendor = FakeVendor::start(Answer::ok("{}")).await;
        vendor.then(Answer::status(429, "quota exceeded").header("retry-after", "120"));
        let err = send(get(&vendor), deadline(10)).await.unwrap_err();
        assert_eq!(
            err,
            QueryError::Throttled(
                "rate limited (429 Too Many Requests, retry after 120s): quota exceeded".into()
            )
        );
        assert_eq!(vendor.requests().len(), 1);
        // Twice in a row: no third request.
        let vendor =
            FakeVendor::start(Answer::status(429, "again").header("retry-after", "0")).await;
        let err = send(get(&vendor), deadline(10)).await.unwrap_err();
        assert!(matches!(err, QueryError::Throttled(_)), "{err:?}");
        assert_eq!(vendor.requests().len(), 2);
    }

    #[tokio::test]
    async fn slow_answers_end_at_the_deadline_or_at_flaggers_timeout() {
        let vendor = FakeVendor::start(Answer::ok("{}").after(Duration::from_secs(7))).await;
        // The caller's deadline comes first: not an answer of the provider.
        let err = send(get(&vendor), deadline(1)).await.unwrap_err();
        assert_eq!(err, QueryError::Deadline);
        // Flagger's five seconds come first: a failed query, worded as Go's.
        let err = send(get(&vendor), deadline(30)).await.unwrap_err();
        let QueryError::Failed(text) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            text,
            format!(
                "request failed: Get \"{}/api/v1/query?query=up\": context deadline exceeded",
                vendor.url()
            )
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
        let reply = Reply {
            status: StatusCode::NOT_FOUND,
            body: String::new(),
        };
        assert_eq!(reply.status_text(), "404 Not Found");
    }
}
