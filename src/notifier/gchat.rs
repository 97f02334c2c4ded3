//! Google Chat card (the v1 `cards` format Flagger posts).

use serde::Serialize;

use super::message::Message;

const GREY_BOLD_OPEN: &str = "<font color=#848484><strong>";
const GREY_BOLD_CLOSE: &str = "</strong></font>";

#[derive(Debug, Serialize)]
pub struct ChatPayload {
    pub cards: Vec<ChatCard>,
}

#[derive(Debug, Serialize)]
pub struct ChatCard {
    pub header: ChatHeader,
    pub sections: Vec<ChatSection>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatHeader {
    pub title: &'static str,
    pub subtitle: String,
    pub image_url: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ChatSection {
    pub widgets: Vec<ChatWidget>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatWidget {
    pub text_paragraph: ChatText,
}

#[derive(Debug, Serialize)]
pub struct ChatText {
    pub text: String,
}

fn section(text: String) -> ChatSection {
    ChatSection {
        widgets: vec![ChatWidget {
            text_paragraph: ChatText { text },
        }],
    }
}

/// The message in one section, then one section per field; no colour per severity.
pub fn payload(msg: &Message) -> ChatPayload {
    let mut sections = Vec::with_capacity(msg.fields.len() + 1);
    sections.push(section(format!(
        "{GREY_BOLD_OPEN}{}{GREY_BOLD_CLOSE}",
        msg.text
    )));
    sections.extend(msg.fields.iter().map(|(name, value)| {
        section(format!(
            "{name}<br>{GREY_BOLD_OPEN}{value}{GREY_BOLD_CLOSE}"
        ))
    }));
    ChatPayload {
        cards: vec![ChatCard {
            header: ChatHeader {
                title: "Flagger",
                subtitle: msg.title(),
                image_url: "https://flagger.app/favicon.png",
            },
            sections,
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
    fn gchat_payload_is_flaggers() {
        assert_eq!(
            serde_json::to_value(payload(&sample(Severity::Error))).unwrap(),
            json!({
                "cards": [{
                    "header": {
                        "title": "Flagger",
                        "subtitle": "podinfo.test",
                        "imageUrl": "https://flagger.app/favicon.png"
                    },
                    "sections": [
                        {"widgets": [{"textParagraph": {"text":
                            "<font color=#848484><strong>New revision detected, progressing canary analysis.</strong></font>"}}]},
                        {"widgets": [{"textParagraph": {"text":
                            "Cluster<br><font color=#848484><strong>prod</strong></font>"}}]},
                        {"widgets": [{"textParagraph": {"text":
                            "Target<br><font color=#848484><strong>Deployment/podinfo.test</strong></font>"}}]}
                    ]
                }]
            })
        );
    }
}
