//! Flagger's flags (one dash or two, `-flag value` or `-flag=value`, as
//! Go's `flag` package takes them) and its environment variables, so a
//! Flagger Deployment's args carry over unchanged.

use clap::{ArgAction, Args};

use super::Cli;
use clap::Parser;

/// Go's `flag` treats `-x`, `-x=true` and `-x true`-less booleans alike.
fn go_bool() -> ArgAction {
    ArgAction::Set
}

/// Flagger's flags with Flagger's defaults (`cmd/flagger/main.go`).
#[derive(Debug, Clone, Args, PartialEq)]
pub struct OperatorFlags {
    /// Path to a kubeconfig; empty means in-cluster configuration.
    #[arg(long, default_value = "")]
    pub kubeconfig: String,
    /// The address of the Kubernetes API server (overrides the kubeconfig).
    #[arg(long, default_value = "")]
    pub master: String,
    #[arg(long = "kubeconfig-qps", default_value_t = 100)]
    pub kubeconfig_qps: u32,
    #[arg(long = "kubeconfig-burst", default_value_t = 250)]
    pub kubeconfig_burst: u32,
    #[arg(long = "kubeconfig-service-mesh", default_value = "")]
    pub kubeconfig_service_mesh: String,
    #[arg(long = "metrics-server", default_value = "http://prometheus:9090")]
    pub metrics_server: String,
    #[arg(long = "control-loop-interval", default_value = "10s")]
    pub control_loop_interval: String,
    #[arg(long = "log-level", default_value = "debug")]
    pub log_level: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long = "slack-url", default_value = "")]
    pub slack_url: String,
    #[arg(long = "slack-token", default_value = "")]
    pub slack_token: String,
    #[arg(long = "slack-proxy-url", default_value = "")]
    pub slack_proxy_url: String,
    #[arg(long = "slack-user", default_value = "flagger")]
    pub slack_user: String,
    #[arg(long = "slack-channel", default_value = "")]
    pub slack_channel: String,
    #[arg(long = "event-webhook", default_value = "")]
    pub event_webhook: String,
    #[arg(long = "msteams-url", default_value = "")]
    pub msteams_url: String,
    #[arg(long = "msteams-proxy-url", default_value = "")]
    pub msteams_proxy_url: String,
    /// Comma-separated label prefixes copied to generated objects; `*` for all.
    #[arg(long = "include-label-prefix", default_value = "")]
    pub include_label_prefix: String,
    #[arg(long, default_value_t = 2)]
    pub threadiness: u32,
    #[arg(long = "zap-replace-globals", action = go_bool(), num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub zap_replace_globals: bool,
    #[arg(long = "zap-encoding", default_value = "json")]
    pub zap_encoding: String,
    /// Namespace to watch; empty means all namespaces.
    #[arg(long, default_value = "")]
    pub namespace: String,
    #[arg(long = "mesh-provider", default_value = "istio")]
    pub mesh_provider: String,
    #[arg(
        long = "selector-labels",
        default_value = "app,name,app.kubernetes.io/name"
    )]
    pub selector_labels: String,
    #[arg(
        long = "ingress-annotations-prefix",
        default_value = "nginx.ingress.kubernetes.io"
    )]
    pub ingress_annotations_prefix: String,
    #[arg(long = "ingress-class", default_value = "")]
    pub ingress_class: String,
    #[arg(long = "enable-leader-election", action = go_bool(), num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub enable_leader_election: bool,
    #[arg(long = "leader-election-namespace", default_value = "kube-system")]
    pub leader_election_namespace: String,
    #[arg(long = "enable-config-tracking", action = go_bool(), num_args = 0..=1, default_value = "true", default_missing_value = "true")]
    pub enable_config_tracking: bool,
    #[arg(long = "cluster-name", default_value = "")]
    pub cluster_name: String,
    #[arg(long = "no-cross-namespace-refs", action = go_bool(), num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub no_cross_namespace_refs: bool,
    /// Print the version and exit.
    #[arg(long, action = go_bool(), num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub version: bool,
}

impl OperatorFlags {
    /// Flagger's defaults: the flags of a bare `serin`, environment aside.
    pub fn defaults() -> Option<OperatorFlags> {
        Cli::try_parse_from(["serin"]).ok().map(|cli| cli.operator)
    }

    /// Flagger lets `-namespace` override the leader election namespace.
    pub fn leader_election_namespace(&self) -> &str {
        if self.namespace.is_empty() {
            &self.leader_election_namespace
        } else {
            &self.namespace
        }
    }

    /// `-selector-labels` as a list.
    pub fn selector_labels(&self) -> Vec<&str> {
        split_list(&self.selector_labels)
    }

    /// `-include-label-prefix` as a list.
    pub fn include_label_prefixes(&self) -> Vec<&str> {
        split_list(&self.include_label_prefix)
    }
}

fn split_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Environment variables Flagger reads, and the flag each overrides
/// (`fromEnv` in Flagger's main: a non-empty variable beats the flag).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SLACK_URL", "slack-url"),
    ("SLACK_TOKEN", "slack-token"),
    ("SLACK_PROXY_URL", "slack-proxy-url"),
    ("MSTEAMS_URL", "msteams-url"),
    ("MSTEAMS_PROXY_URL", "msteams-proxy-url"),
    ("EVENT_WEBHOOK_URL", "event-webhook"),
];

impl OperatorFlags {
    /// Applies [`ENV_OVERRIDES`] from `lookup`.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        for (var, _) in ENV_OVERRIDES {
            let Some(value) = lookup(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let field = match *var {
                "SLACK_URL" => &mut self.slack_url,
                "SLACK_TOKEN" => &mut self.slack_token,
                "SLACK_PROXY_URL" => &mut self.slack_proxy_url,
                "MSTEAMS_URL" => &mut self.msteams_url,
                "MSTEAMS_PROXY_URL" => &mut self.msteams_proxy_url,
                _ => &mut self.event_webhook,
            };
            *field = value;
        }
    }
}
