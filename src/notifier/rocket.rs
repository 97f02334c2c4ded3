//! Rocket.Chat: the Slack payload with Teams-like hex colours.

use super::message::Message;
use super::slack::{self, Colors, SlackPayload};

pub const ROCKET_COLORS: Colors = ("#0076D7", "#FF0000");

pub fn payload(channel: &str, username: &str, msg: &Message) -> SlackPayload {
    slack::payload(channel, username, msg, ROCKET_COLORS)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use serin_actors::events::Severity;

    use super::*;
    use crate::notifier::message::sample;

    #[test]
    fn rocket_payload_is_slacks_with_hex_colours() {
        assert_eq!(
            serde_json::to_value(payload("ops", "bot", &sample(Severity::Info))).unwrap(),
            json!({
                "channel": "ops",
                "username": "bot",
                "icon_url": "",
                "icon_emoji": ":rocket:",
                "attachments": [{
                    "color": "#0076D7",
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
        let red = payload("ops", "bot", &sample(Severity::Error));
        assert_eq!(red.attachments[0].color, "#FF0000");
    }
}
