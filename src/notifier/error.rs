//! Why one notification was not delivered.

use serin_actors::ports::PortError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("invalid {provider} hook URL {url}")]
    InvalidUrl { provider: &'static str, url: String },
    #[error("empty {0} username")]
    EmptyUsername(&'static str),
    #[error("empty {0} channel")]
    EmptyChannel(&'static str),
    #[error("unable to parse proxy URL '{proxy}', error: {reason}")]
    InvalidProxy { proxy: String, reason: String },
    #[error("building the HTTP client failed: {0}")]
    Client(String),
    #[error("sending notification failed: {0}")]
    Send(String),
    #[error("sending notification bad response {status}: {body}")]
    BadResponse { status: u16, body: String },
    /// `chat.postMessage` answers 200 with `"ok": false` on errors.
    #[error("sending notification failed: Slack API error {0}")]
    SlackApi(String),
    #[error("deadline exceeded")]
    Timeout,
    #[error("alert provider {name}.{namespace} not found")]
    ProviderNotFound { name: String, namespace: String },
    #[error("alert provider {name}.{namespace} secretRef error: {reason}")]
    Secret {
        name: String,
        namespace: String,
        reason: String,
    },
    #[error("alert provider {name}.{namespace} secret does not contain an address")]
    SecretWithoutAddress { name: String, namespace: String },
    /// A provider-level failure, named after the `AlertProvider` it came from.
    #[error("alert provider {name}.{namespace} send error: {source}")]
    Provider {
        name: String,
        namespace: String,
        source: Box<NotifyError>,
    },
}

impl NotifyError {
    fn is_timeout(&self) -> bool {
        match self {
            NotifyError::Timeout => true,
            NotifyError::Provider { source, .. } => source.is_timeout(),
            _ => false,
        }
    }
}

impl From<NotifyError> for PortError {
    fn from(err: NotifyError) -> PortError {
        match err {
            NotifyError::Timeout => PortError::Timeout,
            NotifyError::ProviderNotFound { name, namespace } => {
                PortError::NotFound(format!("alert provider {name}.{namespace}"))
            }
            other => PortError::Failed(other.to_string()),
        }
    }
}

/// One `PortError` for the failures of one notification: a lone error keeps its
/// kind; several are joined, and count as a timeout only when all timed out.
pub fn combine(mut errors: Vec<NotifyError>) -> Result<(), PortError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0).into()),
        _ if errors.iter().all(NotifyError::is_timeout) => Err(PortError::Timeout),
        _ => {
            let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
            Err(PortError::Failed(texts.join("; ")))
        }
    }
}
