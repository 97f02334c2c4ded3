//! One chat endpoint, validated as Flagger's `notifier.Factory` does.

use reqwest::Url;
use serde::Serialize;

use super::error::NotifyError;
use super::message::Message;
use super::{discord, gchat, msteams, rocket, slack};
use crate::api::AlertProviderType;

/// The unvalidated settings of an `AlertProvider` or of the global flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    /// Sent as `Authorization: Bearer`; Slack only, as in Flagger.
    pub token: String,
    pub proxy: String,
    pub username: String,
    pub channel: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: AlertProviderType,
    pub url: Url,
    pub token: Option<String>,
    pub proxy: Option<String>,
    pub username: String,
    pub channel: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Slack(slack::SlackPayload),
    Teams(msteams::TeamsPayload),
    Chat(gchat::ChatPayload),
}

pub fn provider_name(kind: AlertProviderType) -> &'static str {
    match kind {
        AlertProviderType::Slack => "Slack",
        AlertProviderType::Msteams => "MS Teams",
        AlertProviderType::Discord => "Discord",
        AlertProviderType::Rocket => "Rocket",
        AlertProviderType::Gchat => "Google Chat",
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Target {
    /// `Ok(None)` for an empty address: Flagger's no-op notifier.
    pub fn build(kind: AlertProviderType, ep: Endpoint) -> Result<Option<Target>, NotifyError> {
        if ep.url.is_empty() {
            return Ok(None);
        }
        let provider = provider_name(kind);
        let mut url = Url::parse(&ep.url).map_err(|_| NotifyError::InvalidUrl {
            provider,
            url: ep.url.clone(),
        })?;
        let slack_like = matches!(
            kind,
            AlertProviderType::Slack | AlertProviderType::Discord | AlertProviderType::Rocket
        );
        if slack_like && ep.username.is_empty() {
            return Err(NotifyError::EmptyUsername(provider));
        }
        if slack_like && ep.channel.is_empty() {
            return Err(NotifyError::EmptyChannel(provider));
        }
        if kind == AlertProviderType::Discord {
            url = discord::slack_endpoint(url);
        }
        let token = match kind {
            AlertProviderType::Slack => non_empty(ep.token),
            _ => None,
        };
        Ok(Some(Target {
            kind,
            url,
            token,
            proxy: non_empty(ep.proxy),
            username: ep.username,
            channel: ep.channel,
        }))
    }

    pub fn payload(&self, msg: &Message) -> Payload {
        let (channel, user) = (self.channel.as_str(), self.username.as_str());
        match self.kind {
            AlertProviderType::Slack => {
                Payload::Slack(slack::payload(channel, user, msg, slack::SLACK_COLORS))
            }
            AlertProviderType::Discord => Payload::Slack(discord::payload(channel, user, msg)),
            AlertProviderType::Rocket => Payload::Slack(rocket::payload(channel, user, msg)),
            AlertProviderType::Msteams => Payload::Teams(msteams::payload(msg)),
            AlertProviderType::Gchat => Payload::Chat(gchat::payload(msg)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint {
            url: url.into(),
            username: "flagger".into(),
            channel: "general".into(),
            ..Endpoint::default()
        }
    }

    #[test]
    fn empty_address_is_a_no_op() {
        assert_eq!(Target::build(AlertProviderType::Slack, ep("")), Ok(None));
    }

    #[test]
    fn validation_matches_flaggers_factory() {
        assert_eq!(
            Target::build(AlertProviderType::Msteams, ep("not a url")),
            Err(NotifyError::InvalidUrl {
                provider: "MS Teams",
                url: "not a url".into()
            })
        );
        let mut no_channel = ep("https://hooks.slack.com/x");
        no_channel.channel.clear();
        assert_eq!(
            Target::build(AlertProviderType::Slack, no_channel.clone()),
            Err(NotifyError::EmptyChannel("Slack"))
        );
        // Teams and Google Chat have neither channel nor username.
        assert!(matches!(
            Target::build(AlertProviderType::Gchat, no_channel),
            Ok(Some(_))
        ));
    }

    #[test]
    fn token_is_slack_only_and_discord_gets_its_slack_path() {
        let mut with_token = ep("https://discord.com/api/webhooks/1/abc");
        with_token.token = "t".into();
        with_token.proxy = "http://proxy:3128".into();
        let Ok(Some(d)) = Target::build(AlertProviderType::Discord, with_token.clone()) else {
            panic!("discord target");
        };
        assert_eq!(d.token, None);
        assert_eq!(d.proxy.as_deref(), Some("http://proxy:3128"));
        assert_eq!(
            d.url.as_str(),
            "https://discord.com/api/webhooks/1/abc/slack"
        );
        let Ok(Some(s)) = Target::build(AlertProviderType::Slack, with_token) else {
            panic!("slack target");
        };
        assert_eq!(s.token.as_deref(), Some("t"));
    }
}
