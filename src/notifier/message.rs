//! What every provider renders: Flagger's `Post(workload, namespace, message, fields, severity)`.

use serin_actors::events::Severity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub name: String,
    pub namespace: String,
    pub text: String,
    pub severity: Severity,
    /// `Cluster` first when configured, then the alert's metadata fields.
    pub fields: Vec<(String, String)>,
}

impl Message {
    /// `<name>.<namespace>`, the author/subtitle of every payload.
    pub fn title(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }

    /// Only `error` changes a payload's colour.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The message the payload tests render.
#[cfg(test)]
pub fn sample(severity: Severity) -> Message {
    Message {
        name: "podinfo".into(),
        namespace: "test".into(),
        text: "New revision detected, progressing canary analysis.".into(),
        severity,
        fields: vec![
            ("Cluster".into(), "prod".into()),
            ("Target".into(), "Deployment/podinfo.test".into()),
        ],
    }
}
