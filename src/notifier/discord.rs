//! Discord: the Slack payload posted to the webhook's Slack-compatible
//! endpoint (`<address>/slack`), as Flagger does.

use reqwest::Url;

use super::message::Message;
use super::slack::{self, SLACK_COLORS, SlackPayload};

/// Appends `/slack` to the path unless the address already ends with it.
pub fn slack_endpoint(mut url: Url) -> Url {
    if url.as_str().ends_with("/slack") {
        return url;
    }
    let path = format!("{}/slack", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

pub fn payload(channel: &str, username: &str, msg: &Message) -> SlackPayload {
    slack::payload(channel, username, msg, SLACK_COLORS)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use serin_actors::events::Severity;

    use super::*;
    use crate::notifier::message::sample;

    fn endpoint(url: &str) -> String {
        slack_endpoint(Url::parse(url).unwrap()).to_string()
    }

    #[test]
    fn slack_suffix_is_added_once() {
        assert_eq!(
            endpoint("https://discord.com/api/webhooks/1/abc"),
            "https://discord.com/api/webhooks/1/abc/slack"
        );
        assert_eq!(
            endpoint("https://discord.com/api/webhooks/1/abc/"),
            "https://discord.com/api/webhooks/1/abc/slack"
        );
        assert_eq!(
            endpoint("https://discord.com/api/webhooks/1/abc/slack"),
            "https://discord.com/api/webhooks/1/abc/slack"
        );
        assert_eq!(
            endpoint("https://discord.com/api/webhooks/1/abc?wait=true"),
            "https://discord.com/api/webhooks/1/abc/slack?wait=true"
        );
    }

    #[test]
    fn discord_payload_is_slacks() {
        let value =
            serde_json::to_value(payload("general", "flagger", &sample(Severity::Error))).unwrap();
        assert_eq!(value["attachments"][0]["color"], json!("danger"));
        assert_eq!(value["icon_emoji"], json!(":rocket:"));
        assert_eq!(value["channel"], json!("general"));
    }
}
