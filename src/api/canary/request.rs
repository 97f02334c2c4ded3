//! Serin only: requests to act on a Canary now (`serin promote`, `abort`,
//! `retry`), written as an annotation so they need nothing but permission
//! to patch the Canary and leave its spec, which GitOps tools own, alone.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The annotation holding the latest request, as JSON.
pub const REQUEST_ANNOTATION: &str = "serin.dev/request";

/// What the annotation says.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Unique per request: the operator acts on each id once.
    pub id: String,
    pub action: RequestAction,
    /// The user the API server named to the command line, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RequestAction {
    /// Skip the rest of the analysis and promote now.
    Promote,
    /// Roll back now.
    Abort,
    /// Run the analysis of the current revision again after a failure.
    Retry,
}

impl RequestAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestAction::Promote => "promote",
            RequestAction::Abort => "abort",
            RequestAction::Retry => "retry",
        }
    }
}

impl RequestAction {
    /// The core's action.
    pub fn to_core(self) -> serin_actors::model::request::RequestAction {
        use serin_actors::model::request::RequestAction as Core;
        match self {
            RequestAction::Promote => Core::Promote,
            RequestAction::Abort => Core::Abort,
            RequestAction::Retry => Core::Retry,
        }
    }
}

impl fmt::Display for RequestAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Request {
    /// The request in the Canary's annotations; `Err` when it is there but
    /// unreadable.
    pub fn of(
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<Request>, serde_json::Error> {
        annotations
            .get(REQUEST_ANNOTATION)
            .map(|value| serde_json::from_str(value))
            .transpose()
    }
}
