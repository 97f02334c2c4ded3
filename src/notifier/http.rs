//! The HTTP side: one reqwest client per proxy, Flagger's 5 s timeout capped
//! by the caller's deadline, non-2xx answers turned into errors.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Client, Proxy, Response};
use tokio::time::Instant;

use super::error::NotifyError;
use super::target::{Payload, Target};
use crate::api::AlertProviderType;

/// Flagger's `postMessage` timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an error answer ends up in the error text.
const ERROR_BODY_LIMIT: usize = 1024;
/// `chat.postMessage` answers are small; this bounds a misbehaving server.
const SLACK_API_BODY_LIMIT: usize = 64 * 1024;

pub struct Http {
    /// Keyed by proxy URL, `""` for a direct connection; built lazily so a
    /// client that cannot be built is an error of the send, not of startup.
    clients: Mutex<HashMap<String, Client>>,
    /// Whether a direct client reads `HTTP(S)_PROXY`, as Go's default transport does.
    env_proxy: bool,
}

impl Http {
    pub fn new() -> Http {
        Http {
            clients: Mutex::new(HashMap::new()),
            env_proxy: true,
        }
    }

    /// Ignores the environment's proxies (tests talk to 127.0.0.1).
    #[cfg(test)]
    pub fn direct() -> Http {
        Http {
            clients: Mutex::new(HashMap::new()),
            env_proxy: false,
        }
    }

    fn client(&self, proxy: Option<&str>) -> Result<Client, NotifyError> {
        let key = proxy.unwrap_or_default();
        // A panic elsewhere cannot leave the map half-written; keep using it.
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(key) {
            return Ok(client.clone());
        }
        ensure_crypto_provider();
        let mut builder = Client::builder();
        if let Some(proxy) = proxy {
            let proxy = Proxy::all(proxy).map_err(|e| NotifyError::InvalidProxy {
                proxy: proxy.to_owned(),
                reason: e.to_string(),
            })?;
            builder = builder.proxy(proxy);
        } else if !self.env_proxy {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        clients.insert(key.to_owned(), client.clone());
        Ok(client)
    }

    pub async fn post(
        &self,
        target: &Target,
        payload: &Payload,
        deadline: Instant,
    ) -> Result<(), NotifyError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(NotifyError::Timeout);
        }
        let client = self.client(target.proxy.as_deref())?;
        let mut request = client
            .post(target.url.clone())
            .json(payload)
            .timeout(REQUEST_TIMEOUT.min(remaining));
        if let Some(token) = &target.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(send_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(NotifyError::BadResponse {
                status: status.as_u16(),
                body: read_limited(response, ERROR_BODY_LIMIT).await,
            });
        }
        if target.kind == AlertProviderType::Slack && target.token.is_some() {
            return slack_api_result(&read_limited(response, SLACK_API_BODY_LIMIT).await);
        }
        Ok(())
    }
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

fn send_error(err: reqwest::Error) -> NotifyError {
    if err.is_timeout() {
        NotifyError::Timeout
    } else {
        NotifyError::Send(error_chain(&err))
    }
}

/// reqwest's top-level message hides the cause ("error sending request").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_limited(mut response: Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(limit);
    String::from_utf8_lossy(&body).into_owned()
}

/// `chat.postMessage` reports failures as `{"ok": false, "error": "..."}` with
/// a 200; an incoming webhook answers plain `ok`, which is not JSON.
fn slack_api_result(body: &str) -> Result<(), NotifyError> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Ok(());
    };
    if value.get("ok") == Some(&serde_json::Value::Bool(false)) {
        let reason = value
            .get("error")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown error");
        return Err(NotifyError::SlackApi(reason.to_owned()));
    }
    Ok(())
}

/// reqwest is built with `rustls-no-provider`: it needs a process-wide
/// provider before the first client; `ring` is the one Serin links.
pub(super) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_api_errors_are_reported() {
        assert_eq!(slack_api_result("ok"), Ok(()));
        assert_eq!(slack_api_result(r#"{"ok":true}"#), Ok(()));
        assert_eq!(
            slack_api_result(r#"{"ok":false,"error":"channel_not_found"}"#),
            Err(NotifyError::SlackApi("channel_not_found".into()))
        );
    }

    #[test]
    fn a_bad_proxy_is_an_error() {
        let http = Http::direct();
        assert!(matches!(
            http.client(Some("::not a proxy::")),
            Err(NotifyError::InvalidProxy { .. })
        ));
    }
}
