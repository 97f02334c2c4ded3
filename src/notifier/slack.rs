//! Slack incoming webhook / `chat.postMessage` payload, also spoken by
//! Discord's `/slack` endpoint and Rocket.Chat.

use serde::Serialize;

use super::message::Message;

#[derive(Debug, Serialize)]
pub struct SlackPayload {
    pub channel: String,
    pub username: String,
    pub icon_url: String,
    pub icon_emoji: String,
    pub attachments: Vec<SlackAttachment>,
}

#[derive(Debug, Serialize)]
pub struct SlackAttachment {
    pub color: String,
    pub author_name: String,
    pub text: String,
    pub mrkdwn_in: Vec<String>,
    pub fields: Vec<SlackField>,
}

#[derive(Debug, Serialize)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    pub short: bool,
}

/// Attachment colours: (normal, error).
pub type Colors = (&'static str, &'static str);

/// Slack's own colour names.
pub const SLACK_COLORS: Colors = ("good", "danger");

pub fn payload(channel: &str, username: &str, msg: &Message, colors: Colors) -> SlackPayload {
    let color = if msg.is_error() { colors.1 } else { colors.0 };
    SlackPayload {
        channel: channel.to_owned(),
        username: username.to_owned(),
        icon_url: String::new(),
        icon_emoji: ":rocket:".to_owned(),
        attachments: vec![SlackAttachment {
            color: color.to_owned(),
            author_name: msg.title(),
            text: msg.text.clone(),
            mrkdwn_in: vec!["text".to_owned()],
            fields: msg
                .fields
                .iter()
                .map(|(title, value)| SlackField {
                    title: title.clone(),
                    value: value.clone(),
                    short: false,
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
    use crate::notifier::message::sample as msg;

    #[test]
    fn slack_payload_is_flaggers() {
        let p = payload("general", "flagger", &msg(Severity::Info), SLACK_COLORS);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({
                "channel": "general",
                "username": "flagger",
                "icon_url": "",
                "icon_emoji": ":rocket:",
                "attachments": [{
                    "color": "good",
                    "author_name": "podinfo.test",
                    "text": "New revision detected, progressing canary analysis.",
                    "mrkdwn_in": ["text"],
                    "fields": [
                        {"title": "Cluster", "value": "prod", "short": false},
                        {"title": "Target", "value": "Deployment/podinfo.test", "short": false}
                    ]
                }]
            })
        );
    }

    #[test]
    fn error_is_danger_and_warn_is_good() {
        let p = payload("c", "u", &msg(Severity::Error), SLACK_COLORS);
        assert_eq!(p.attachments[0].color, "danger");
        let p = payload("c", "u", &msg(Severity::Warn), SLACK_COLORS);
        assert_eq!(p.attachments[0].color, "good");
    }
}
