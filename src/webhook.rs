//! Flagger's webhooks over HTTP (`pkg/controller/webhook.go`): a JSON POST
//! of `{name, namespace, phase, checksum, metadata}`, success when the status
//! is at most 202, retried the way `hashicorp/go-retryablehttp` does.
//!
//! One reqwest client (one connection pool) serves every hook; hooks with
//! `disableTLS` share a second one, built on first use.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serin_actors::events::EventType;
use serin_actors::model::observe::WebhookAnswer;
use serin_actors::ports::{PortError, PortFuture, WebhookCall, WebhookPort};
use tokio::time::Instant;

/// The name Flagger gives the global `-event-webhook` hook.
pub const GLOBAL_EVENT_HOOK_NAME: &str = "events";

/// go-retryablehttp's `RetryWaitMin`/`RetryWaitMax`.
const RETRY_WAIT_MIN: Duration = Duration::from_secs(1);
const RETRY_WAIT_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The webhook port over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct HttpWebhooks {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    insecure: OnceLock<reqwest::Client>,
    event_webhook: Option<String>,
    wait_min: Duration,
    wait_max: Duration,
}

impl HttpWebhooks {
    pub fn new() -> Result<HttpWebhooks, WebhookError> {
        install_crypto_provider();
        Ok(HttpWebhooks {
            inner: Arc::new(Inner {
                client: reqwest::Client::builder().build()?,
                insecure: OnceLock::new(),
                event_webhook: None,
                wait_min: RETRY_WAIT_MIN,
                wait_max: RETRY_WAIT_MAX,
            }),
        })
    }

    /// Flagger's `-event-webhook` / `EVENT_WEBHOOK_URL` (`""` = none): the
    /// URL of an event call whose hook has no URL of its own (see
    /// [`HttpWebhooks::global_event_hook`]).
    pub fn with_event_webhook(self, url: impl Into<String>) -> HttpWebhooks {
        let url = url.into();
        self.map(|inner| inner.event_webhook = (!url.is_empty()).then_some(url))
    }

    /// The backoff between retries (go-retryablehttp: 1s doubling, up to 30s).
    pub fn with_retry_wait(self, min: Duration, max: Duration) -> HttpWebhooks {
        self.map(|inner| {
            inner.wait_min = min;
            inner.wait_max = max;
        })
    }

    /// The configured global event webhook URL.
    pub fn event_webhook(&self) -> Option<&str> {
        self.inner.event_webhook.as_deref()
    }

    /// The hook to put in an event call when the Canary has no `event`
    /// hook: named `events` like Flagger's, its empty URL stands for the
    /// global one. `None` when no global hook is configured.
    pub fn global_event_hook(&self) -> Option<serin_actors::model::spec::WebhookSpec> {
        use serin_actors::model::spec::{HookType, WebhookSpec};
        self.event_webhook()
            .map(|_| WebhookSpec::new(GLOBAL_EVENT_HOOK_NAME, HookType::Event, ""))
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> HttpWebhooks {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                client: shared.client.clone(),
                insecure: OnceLock::new(),
                event_webhook: shared.event_webhook.clone(),
                wait_min: shared.wait_min,
                wait_max: shared.wait_max,
            },
        };
        f(&mut inner);
        HttpWebhooks {
            inner: Arc::new(inner),
        }
    }
}

/// reqwest is built without a default rustls provider; kube uses ring too.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: one is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl WebhookPort for HttpWebhooks {
    fn call(&self, call: &WebhookCall, deadline: Instant) -> PortFuture<WebhookAnswer> {
        let inner = self.inner.clone();
        let call = call.clone();
        Box::pin(async move { inner.call(&call, deadline).await })
    }
}

/// `CanaryWebhookPayload`; a map serializes with sorted keys, as Go's does.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    name: &'a str,
    namespace: &'a str,
    phase: &'a str,
    checksum: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

fn payload(call: &WebhookCall, now: SystemTime) -> Payload<'_> {
    let mut metadata = BTreeMap::new();
    if let Some(event) = &call.event {
        let millis = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let event_type = match event.event_type {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        metadata.insert("eventMessage".to_string(), event.message.clone());
        metadata.insert("eventType".to_string(), event_type.to_string());
        metadata.insert("timestamp".to_string(), millis.to_string());
    }
    // The hook's own keys never override the event's.
    for (key, value) in &call.hook.metadata {
        metadata.entry(key.clone()).or_insert_with(|| value.clone());
    }
    Payload {
        name: &call.key.name,
        namespace: &call.key.namespace,
        phase: call.phase.as_str(),
        checksum: &call.checksum,
        metadata,
    }
}

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
    async fn call(
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

    fn insecure_client(&self) -> Result<reqwest::Client, PortError> {
        if let Some(client) = self.insecure.get() {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .map_err(|err| {
                PortError::Failed(format!("cannot build the disableTLS client: {err}"))
            })?;
        Ok(self.insecure.get_or_init(|| client).clone())
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use serde_json::{Value, json};
    use serin_actors::events::Event;
    use serin_actors::model::spec::{HookType, WebhookSpec};
    use serin_actors::model::status::Phase;
    use serin_actors::ports::CanaryKey;

    use super::*;

    /// Status, delay in ms, body.
    type Reply = (u16, u64, &'static str);

    #[derive(Clone, Default)]
    struct Hook {
        replies: Arc<Mutex<VecDeque<Reply>>>,
        seen: Arc<Mutex<Vec<(String, Value)>>>,
    }

    impl Hook {
        fn seen(&self) -> Vec<(String, Value)> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn reply(
        State(hook): State<Hook>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&body).unwrap();
        hook.seen.lock().unwrap().push((content_type, body));
        let next = hook.replies.lock().unwrap().pop_front();
        let (status, delay_ms, text) = next.unwrap_or((200, 0, ""));
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        (StatusCode::from_u16(status).unwrap(), text.to_string())
    }

    /// A webhook receiver on 127.0.0.1 answering `replies` in order, then 200.
    async fn serve(replies: &[Reply]) -> (String, Hook) {
        let hook = Hook::default();
        hook.replies.lock().unwrap().extend(replies.iter().copied());
        let app = Router::new()
            .route("/hook", axum::routing::post(reply))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, hook)
    }

    fn call(url: &str) -> WebhookCall {
        WebhookCall {
            key: CanaryKey::new("test", "podinfo"),
            hook: WebhookSpec::new("check", HookType::Rollout, url),
            phase: Phase::Progressing,
            checksum: "abc123".to_string(),
            event: None,
        }
    }

    fn webhooks() -> HttpWebhooks {
        HttpWebhooks::new()
            .unwrap()
            .with_retry_wait(Duration::from_millis(10), Duration::from_millis(40))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn posts_flaggers_payload() {
        let (url, hook) = serve(&[]).await;
        let mut with_metadata = call(&url);
        with_metadata
            .hook
            .metadata
            .insert("cmd".into(), "hey -z 1m".into());
        let hooks = webhooks();
        assert_eq!(
            hooks.call(&with_metadata, soon()).await,
            Ok(WebhookAnswer::Ok)
        );
        assert_eq!(hooks.call(&call(&url), soon()).await, Ok(WebhookAnswer::Ok));
        let seen = hook.seen();
        assert_eq!(seen[0].0, "application/json");
        assert_eq!(
            seen[0].1,
            json!({"name": "podinfo", "namespace": "test", "phase": "Progressing",
                   "checksum": "abc123", "metadata": {"cmd": "hey -z 1m"}})
        );
        assert_eq!(
            seen[1].1,
            json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc123"})
        );
    }

    #[tokio::test]
    async fn success_is_at_most_202_and_the_body_is_the_error() {
        let (url, _) = serve(&[
            (202, 0, "queued"),
            (203, 0, "not quite"),
            (403, 0, "Forbidden"),
        ])
        .await;
        let hooks = webhooks();
        let c = call(&url);
        assert_eq!(hooks.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
        assert_eq!(
            hooks.call(&c, soon()).await,
            Ok(WebhookAnswer::Failed("not quite".into()))
        );
        assert_eq!(
            hooks.call(&c, soon()).await,
            Ok(WebhookAnswer::Failed("Forbidden".into()))
        );
    }

    #[tokio::test]
    async fn event_metadata_wins_over_the_hooks() {
        let (url, hook) = serve(&[]).await;
        let mut c = call(&url);
        c.hook.hook_type = HookType::Event;
        c.hook.metadata.insert("eventType".into(), "mine".into());
        c.hook.metadata.insert("team".into(), "a".into());
        c.event = Some(Event::warning("Halt advancement podinfo.test"));
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert_eq!(webhooks().call(&c, soon()).await, Ok(WebhookAnswer::Ok));
        let metadata = &hook.seen()[0].1["metadata"];
        assert_eq!(metadata["eventMessage"], "Halt advancement podinfo.test");
        assert_eq!(metadata["eventType"], "Warning");
        assert_eq!(metadata["team"], "a");
        let stamp: u128 = metadata["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(stamp >= before && stamp < before + 10_000, "{stamp}");
    }

    #[tokio::test]
    async fn retries_503_then_succeeds() {
        let (url, hook) = serve(&[(503, 0, "busy"), (503, 0, "busy")]).await;
        let mut c = call(&url);
        c.hook.retries = 2;
        assert_eq!(webhooks().call(&c, soon()).await, Ok(WebhookAnswer::Ok));
        assert_eq!(hook.seen().len(), 3);
    }

    #[tokio::test]
    async fn gives_up_like_retryablehttp() {
        let (url, hook) = serve(&[(503, 0, "busy"), (500, 0, "boom"), (429, 0, "slow down")]).await;
        let mut c = call(&url);
        c.hook.retries = 2;
        let want = format!("POST {url} giving up after 3 attempt(s)");
        assert_eq!(
            webhooks().call(&c, soon()).await,
            Ok(WebhookAnswer::Failed(want))
        );
        assert_eq!(hook.seen().len(), 3);
    }

    #[tokio::test]
    async fn does_not_retry_501_or_4xx() {
        let (url, hook) = serve(&[(501, 0, "no such thing"), (404, 0, "gone")]).await;
        let mut c = call(&url);
        c.hook.retries = 3;
        let hooks = webhooks();
        assert_eq!(
            hooks.call(&c, soon()).await,
            Ok(WebhookAnswer::Failed("no such thing".into()))
        );
        assert_eq!(
            hooks.call(&c, soon()).await,
            Ok(WebhookAnswer::Failed("gone".into()))
        );
        assert_eq!(hook.seen().len(), 2);
    }

    #[tokio::test]
    async fn the_hook_timeout_bounds_each_attempt() {
        let (url, hook) = serve(&[(200, 2000, ""), (200, 2000, "")]).await;
        let mut c = call(&url);
        c.hook.timeout = "200ms".into();
        c.hook.retries = 1;
        let start = Instant::now();
        let answer = webhooks().call(&c, soon()).await;
        assert!(start.elapsed() < Duration::from_millis(1500));
        let Ok(WebhookAnswer::Failed(text)) = answer else {
            panic!("{answer:?}")
        };
        assert!(
            text.starts_with(&format!("POST {url} giving up after 2 attempt(s): ")),
            "{text}"
        );
        assert!(text.contains("Client.Timeout"), "{text}");
        assert_eq!(hook.seen().len(), 2);
    }

    #[tokio::test]
    async fn the_deadline_caps_the_attempt_and_the_retries() {
        let (url, hook) = serve(&[(200, 2000, ""), (503, 0, ""), (503, 0, "")]).await;
        let hooks = HttpWebhooks::new().unwrap();
        let start = Instant::now();
        let answer = hooks
            .call(&call(&url), start + Duration::from_millis(200))
            .await;
        assert_eq!(answer, Err(PortError::Timeout));
        assert!(start.elapsed() < Duration::from_secs(1));
        // Default 1s backoff does not fit in a 500ms deadline: one attempt.
        let mut c = call(&url);
        c.hook.retries = 5;
        let answer = hooks
            .call(&c, Instant::now() + Duration::from_millis(500))
            .await;
        assert_eq!(
            answer,
            Ok(WebhookAnswer::Failed(format!(
                "POST {url} giving up after 1 attempt(s)"
            )))
        );
        assert_eq!(hook.seen().len(), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_then_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        let mut c = call(&url);
        c.hook.retries = 1;
        let answer = webhooks().call(&c, soon()).await;
        let Ok(WebhookAnswer::Failed(text)) = answer else {
            panic!("{answer:?}")
        };
        assert!(
            text.starts_with(&format!("POST {url} giving up after 2 attempt(s): Post")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_global_event_hook_serves_canaries_without_one() {
        let (url, hook) = serve(&[]).await;
        let hooks = webhooks().with_event_webhook(url.clone());
        let mut c = call("");
        c.hook = hooks.global_event_hook().unwrap();
        c.event = Some(Event::normal(
            "New revision detected! Scaling up podinfo.test",
        ));
        assert_eq!(hooks.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
        assert_eq!(hook.seen()[0].1["metadata"]["eventType"], "Normal");
        let none = webhooks().with_event_webhook("");
        assert!(none.global_event_hook().is_none());
        assert_eq!(none.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
        assert_eq!(hook.seen().len(), 1);
    }

    #[tokio::test]
    async fn disable_tls_builds_one_insecure_client() {
        let (url, _) = serve(&[]).await;
        let hooks = webhooks();
        let mut c = call(&url);
        c.hook.disable_tls = true;
        assert_eq!(hooks.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
        assert!(hooks.inner.insecure.get().is_some());
    }
}
