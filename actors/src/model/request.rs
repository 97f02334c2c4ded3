//! Serin only: requests from the command line (`promote`, `abort`,
//! `retry`), read from the Canary with its spec, and what became of them,
//! kept in the status so each request is acted on once.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::status::Timestamp;

/// The latest request written on the Canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Unique per request.
    pub id: String,
    pub action: RequestAction,
    /// Who asked, as the API server told the command line.
    pub requested_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestAction {
    Promote,
    Abort,
    Retry,
    /// The annotation could not be read; the text says why.
    Unreadable(String),
}

impl RequestAction {
    pub fn as_str(&self) -> &str {
        match self {
            RequestAction::Promote => "promote",
            RequestAction::Abort => "abort",
            RequestAction::Retry => "retry",
            RequestAction::Unreadable(_) => "unknown",
        }
    }
}

impl fmt::Display for RequestAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the operator answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestResult {
    /// Acted on.
    Accepted,
    /// What it asks for is already under way or done: nothing more to do.
    Repeated,
    /// It makes no sense in the canary's state.
    Refused,
}

impl RequestResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestResult::Accepted => "Accepted",
            RequestResult::Repeated => "Repeated",
            RequestResult::Refused => "Refused",
        }
    }

    pub fn parse(value: &str) -> Option<RequestResult> {
        [
            RequestResult::Accepted,
            RequestResult::Repeated,
            RequestResult::Refused,
        ]
        .into_iter()
        .find(|r| r.as_str() == value)
    }
}

/// `status.lastRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandledRequest {
    pub id: String,
    /// `promote`, `abort`, `retry` (or `unknown`).
    pub action: String,
    pub requested_by: Option<String>,
    pub result: RequestResult,
    pub message: String,
    pub at: Timestamp,
}

/// One check of an analysis step (`status.checks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub name: String,
    /// `metric`, or the webhook's type (`confirm-promotion`, ...).
    pub kind: String,
    /// Passed; for a gate, open; for a rollback hook, not asking for one.
    pub passed: bool,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub message: Option<String>,
    pub at: Timestamp,
}
