//! Attempts and retries the way `hashicorp/go-retryablehttp` makes them:
//! its retry policy, backoff and "giving up" words.

use std::time::{Duration, SystemTime};

use serin_actors::model::observe::WebhookAnswer;
use serin_actors::ports::{PortError, WebhookCall};
use tokio::time::Instant;

use super::Inner;
use super::payload::payload;

/// go-retryablehttp's `RetryWaitMin`/`RetryWaitMax`.
pub(super) const RETRY_WAIT_MIN: Duration = Duration::from_secs(1);
pub(super) const RETRY_WAIT_MAX: Duration = Duration::from_secs(30);

/// Why an attempt may be retried.
enum Retryable {
    Status { retry_after: Option<Duration> },
    Transport(String),
}

enum Attempt {
    Done(WebhookAnswer),
    Retry(Retryable),
}

impl Inner {
    pub(super) async fn call(
        &self,
        call: &WebhookCall,
        deadline: Instant,
    ) -> Result<WebhookAnswer, PortError> {
        let url = if call.hook.url.is_empty() && call.event.is_some() {
            match &self.event_webhook {
                Some(url) => url.as_str(),
                None => return Ok(WebhookAnswer::Ok),
            }
        } else {
            call.hook.url.as_str()
        };
        let body = serde_json::to_vec(&payload(call, SystemTime::now()))
            .map_err(|err| PortError::Failed(err.to_string()))?;
        let client = if call.hook.disable_tls {
            self.insecure_client()?
        } else {
            self.client.clone()
        };
        let retries = u32::try_from(call.hook.retries).unwrap_or(0);
        let timeout = call.hook.timeout();
        let mut attempts = 0;
        let mut last = Retryable::Transport(String::new());
        while attempts <= retries {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PortError::Timeout);
            }
            attempts += 1;
            let attempt = tokio::time::timeout(timeout.min(left), post(&client, url, &body)).await;
            last = match attempt {
                Ok(Attempt::Done(answer)) => return Ok(answer),
                Ok(Attempt::Retry(why)) => why,
                Err(_) if left < timeout => return Err(PortError::Timeout),
                Err(_) => Retryable::Transport(format!(
                    "Post \"{url}\": context deadline exceeded (Client.Timeout {timeout:?} exceeded)"
                )),
            };
            if attempts > retries {
                break;
            }
            let wait = self.backoff(attempts - 1, &last);
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        // go-retryablehttp's words once it stops retrying.
        let mut text = format!("POST {url} giving up after {attempts} attempt(s)");
        if let Retryable::Transport(err) = last {
            text.push_str(": ");
            text.push_str(&err);
        }
        Ok(WebhookAnswer::Failed(text))
    }
    /// `DefaultBackoff`: `Retry-After` on 429/503, else `min * 2^n` up to `max`.
    fn backoff(&self, retry: u32, last: &Retryable) -> Duration {
        if let Retryable::Status {
            retry_after: Some(wait),
        } = last
        {
            return *wait;
        }
        let factor = 2u32.saturating_pow(retry);
        self.wait_min.saturating_mul(factor).min(self.wait_max)
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &[u8]) -> Attempt {
    let sent = client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        // A malformed URL is final, as `url.Parse` failing is in Flagger.
        Err(err) if err.is_builder() => {
            return Attempt::Done(WebhookAnswer::Failed(err.to_string()));
        }
        Err(err) => return Attempt::Retry(Retryable::Transport(transport_text(url, &err))),
    };
    let status = response.status();
    let retry_after = retry_after(&response);
    if retryable(status) {
        return Attempt::Retry(Retryable::Status { retry_after });
    }
    let text = match response.bytes().await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) => {
            return Attempt::Done(WebhookAnswer::Failed(format!("error reading body: {err}")));
        }
    };
    if status.as_u16() > 202 {
        Attempt::Done(WebhookAnswer::Failed(text))
    } else {
        Attempt::Done(WebhookAnswer::Ok)
    }
}

/// `DefaultRetryPolicy`: 429 and 5xx other than 501.
fn retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != reqwest::StatusCode::NOT_IMPLEMENTED)
}

/// Seconds of `Retry-After` on 429/503 (the HTTP-date form is ignored).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let status = response.status();
    if status != reqwest::StatusCode::TOO_MANY_REQUESTS
        && status != reqwest::StatusCode::SERVICE_UNAVAILABLE
    {
        return None;
    }
    let value = response.headers().get(http::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// reqwest's error plus its causes (the "connection refused" is a source).
fn transport_text(url: &str, err: &reqwest::Error) -> String {
    let mut text = format!("Post \"{url}\": {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
