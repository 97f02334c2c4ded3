//! Flagger's webhooks over HTTP (`pkg/controller/webhook.go`): a JSON POST
//! of `{name, namespace, phase, checksum, metadata}`, success when the status
//! is at most 202, retried the way `hashicorp/go-retryablehttp` does.
//!
//! One reqwest client (one connection pool) serves every hook; hooks with
//! `disableTLS` share a second one, built on first use.

mod payload;
mod retry;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serin_actors::model::observe::WebhookAnswer;
use serin_actors::ports::{PortError, PortFuture, WebhookCall, WebhookPort};
use tokio::time::Instant;

use retry::{RETRY_WAIT_MAX, RETRY_WAIT_MIN};

/// The name Flagger gives the global `-event-webhook` hook.
pub const GLOBAL_EVENT_HOOK_NAME: &str = "events";

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

impl Inner {
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
}
