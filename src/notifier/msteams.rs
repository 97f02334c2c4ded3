//! Microsoft Teams: Flagger still posts the legacy Office 365 connector
//! `MessageCard` (Adaptive Cards are an open request, fluxcd/flagger#1753).

use serde::Serialize;

use super::message::Message;

#[derive(Debug, Serialize)]
pub struct TeamsPayload {
    #[serde(rename = "@type")]
    pub type_: &'static str,
    #[serde(rename = "@context")]
    pub context: &'static str,
    #[serde(rename = "themeColor")]
    pub theme_color: &'static str,
    pub summary: String,
    pub sections: Vec<TeamsSection>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsSection {
    pub activity_title: String,
    pub activity_subtitle: String,
    pub facts: Vec<TeamsFact>,
}

#[derive(Debug, Serialize)]
pub struct TeamsFact {
    pub name: String,
    pub value: String,
}

pub fn payload(msg: &Message) -> TeamsPayload {
    TeamsPayload {
        type_: "MessageCard",
        context: "http://schema.org/extensions",
        theme_color: if msg.is_error() { "FF0000" } else { "0076D7" },
        summary: msg.title(),
        sections: vec![TeamsSection {
            activity_title: msg.text.clone(),
            activity_subtitle: msg.title(),
            facts: msg
                .fields
                .iter()
                .map(|(name, value)| TeamsFact {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use serin_actors::events::Severity;

    use super::*;
    use crate::notifier::message::sample;

    #[test]
    fn teams_payload_is_flaggers_message_card() {
        assert_eq!(
            serde_json::to_value(payload(&sample(Severity::Warn))).unwrap(),
            json!({
                "@type": "MessageCard",
                "@context": "http://schema.org/extensions",
                "themeColor": "0076D7",
                "summary": "podinfo.test",
                "sections": [{
                    "activityTitle": "New revision detected, progressing canary analysis.",
                    "activitySubtitle": "podinfo.test",
                    "facts": [
                        {"name": "Cluster", "value": "prod"},
                        {"name": "Target", "value": "Deployment/podinfo.test"}
                    ]
                }]
            })
        );
    }

    #[test]
    fn error_is_red() {
        assert_eq!(payload(&sample(Severity::Error)).theme_color, "FF0000");
    }
}
