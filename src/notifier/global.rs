//! The notifier of Canaries without `analysis.alerts` (Flagger's
//! `initNotifier`): MS Teams when `-msteams-url` is set, else Slack.

use super::target::{Endpoint, Target, provider_name};
use crate::api::AlertProviderType;
use crate::cli::OperatorFlags;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalNotifiers {
    pub(super) target: Option<Target>,
    /// `-cluster-name`: added as the first `Cluster` field of every alert.
    pub(super) cluster_name: String,
}

impl GlobalNotifiers {
    /// Flags whose env fallbacks (`SLACK_URL`, `MSTEAMS_URL`, ...) clap has
    /// already applied. An invalid setting is logged and disables the global
    /// notifier, as Flagger falls back to its no-op notifier.
    pub fn from_flags(flags: &OperatorFlags) -> GlobalNotifiers {
        let (kind, proxy, url) = if flags.msteams_url.is_empty() {
            (
                AlertProviderType::Slack,
                &flags.slack_proxy_url,
                &flags.slack_url,
            )
        } else {
            (
                AlertProviderType::Msteams,
                &flags.msteams_proxy_url,
                &flags.msteams_url,
            )
        };
        let endpoint = Endpoint {
            url: url.clone(),
            token: flags.slack_token.clone(),
            proxy: proxy.clone(),
            username: flags.slack_user.clone(),
            channel: flags.slack_channel.clone(),
        };
        let target = match Target::build(kind, endpoint) {
            Ok(target) => target,
            Err(err) => {
                tracing::error!(error = %err, "Notifier disabled");
                None
            }
        };
        if let Some(t) = &target {
            // The webhook path is a credential: log the host only.
            tracing::info!(
                provider = provider_name(t.kind),
                host = t.url.host_str().unwrap_or_default(),
                "Notifications enabled"
            );
        }
        GlobalNotifiers {
            target,
            cluster_name: flags.cluster_name.clone(),
        }
    }

    /// No global notifier and no cluster name.
    pub fn disabled() -> GlobalNotifiers {
        GlobalNotifiers::default()
    }

    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(args: &[&str]) -> GlobalNotifiers {
        let argv = std::iter::once("serin")
            .chain(args.iter().copied())
            .map(String::from);
        let cli = crate::cli::parse(argv).unwrap();
        GlobalNotifiers::from_flags(&cli.operator)
    }

    #[test]
    fn nothing_configured_is_disabled() {
        assert!(!global(&[]).is_enabled());
    }

    #[test]
    fn slack_needs_a_channel() {
        assert!(!global(&["-slack-url", "https://hooks.slack.com/x"]).is_enabled());
        let g = global(&[
            "-slack-url",
            "https://slack.com/api/chat.postMessage",
            "-slack-channel",
            "ops",
            "-slack-token",
            "xoxb",
            "-slack-proxy-url",
            "http://proxy:3128",
            "-cluster-name",
            "prod",
        ]);
        let t = g.target.unwrap();
        assert_eq!(t.kind, AlertProviderType::Slack);
        assert_eq!(t.token.as_deref(), Some("xoxb"));
        assert_eq!(t.proxy.as_deref(), Some("http://proxy:3128"));
        assert_eq!(
            (t.username.as_str(), t.channel.as_str()),
            ("flagger", "ops")
        );
        assert_eq!(g.cluster_name, "prod");
    }

    #[test]
    fn teams_wins_over_slack() {
        let g = global(&[
            "-slack-url",
            "https://hooks.slack.com/x",
            "-slack-channel",
            "ops",
            "-msteams-url",
            "https://outlook.office.com/webhook/x",
            "-msteams-proxy-url",
            "http://teams-proxy:3128",
        ]);
        let t = g.target.unwrap();
        assert_eq!(t.kind, AlertProviderType::Msteams);
        assert_eq!(t.url.as_str(), "https://outlook.office.com/webhook/x");
        assert_eq!(t.proxy.as_deref(), Some("http://teams-proxy:3128"));
        assert_eq!(t.token, None);
    }
}
