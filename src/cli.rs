//! Command line: Flagger's flags (one dash or two, `-flag value` or
//! `-flag=value`, as Go's `flag` package takes them) and its environment
//! variables, so a Flagger Deployment's args carry over unchanged.

use clap::{ArgAction, Args, Parser, Subcommand};

/// Serin: progressive delivery for Kubernetes, compatible with Flagger.
#[derive(Debug, Parser)]
#[command(
    name = "serin",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    // Go's flag package lets the last of a repeated flag win.
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of the default mode, the operator.
    #[command(flatten)]
    pub operator: OperatorFlags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator (the default when no subcommand is given).
    Operator(Box<OperatorFlags>),
    /// Replay Flagger's NGINX walkthrough on the in-memory simulated cluster.
    #[cfg(feature = "demo")]
    Demo(DemoFlags),
}

#[derive(Debug, Clone, Args)]
pub struct DemoFlags {
    /// One scenario: promote, rollback-errors or rollback-latency.
    #[arg(long, value_parser = ["promote", "rollback-errors", "rollback-latency"])]
    pub scenario: Option<String>,
    /// Run this many canaries at once (a mix of good and faulty revisions).
    #[arg(long)]
    pub canaries: Option<usize>,
}

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

/// Rewrites Go-style single-dash long flags (`-kubeconfig-qps=5`) to the
/// double-dash form clap parses. Short options and plain values are left
/// alone; everything after a bare `--` is too.
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for arg in args {
        if passthrough || arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let name = arg.split('=').next().unwrap_or_default();
        let single_dash_long = name.len() > 2 && name.starts_with('-') && !name.starts_with("--");
        if single_dash_long
            && name[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
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

/// Parses the process arguments, then applies Flagger's environment overrides.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, clap::Error> {
    let mut cli = Cli::try_parse_from(normalize_args(args))?;
    let env = |name: &str| std::env::var(name).ok();
    cli.operator.apply_env(env);
    if let Some(Command::Operator(flags)) = cli.command.as_mut() {
        flags.apply_env(env);
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> OperatorFlags {
        let argv = std::iter::once("serin")
            .chain(args.iter().copied())
            .map(String::from);
        let cli = parse(argv).unwrap();
        match cli.command {
            Some(Command::Operator(f)) => *f,
            None => cli.operator,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_are_flaggers() {
        let f = flags(&[]);
        assert_eq!(f.kubeconfig_qps, 100);
        assert_eq!(f.kubeconfig_burst, 250);
        assert_eq!(f.metrics_server, "http://prometheus:9090");
        assert_eq!(f.mesh_provider, "istio");
        assert_eq!(f.port, 8080);
        assert_eq!(f.slack_user, "flagger");
        assert_eq!(
            f.selector_labels(),
            ["app", "name", "app.kubernetes.io/name"]
        );
        assert_eq!(f.ingress_annotations_prefix, "nginx.ingress.kubernetes.io");
        assert_eq!(f.leader_election_namespace(), "kube-system");
        assert!(f.enable_config_tracking);
        assert!(!f.enable_leader_election);
    }

    #[test]
    fn one_or_two_dashes_with_or_without_equals() {
        let f = flags(&[
            "-kubeconfig-qps=5",
            "--kubeconfig-burst",
            "7",
            "-mesh-provider",
            "nginx",
            "-enable-leader-election",
            "-enable-config-tracking=false",
            "-namespace=test",
        ]);
        assert_eq!((f.kubeconfig_qps, f.kubeconfig_burst), (5, 7));
        assert_eq!(f.mesh_provider, "nginx");
        assert!(f.enable_leader_election);
        assert!(!f.enable_config_tracking);
        assert_eq!(f.leader_election_namespace(), "test");
    }

    #[test]
    fn operator_subcommand_takes_the_same_flags() {
        let f = flags(&["operator", "-mesh-provider=kubernetes", "-port=9999"]);
        assert_eq!(f.mesh_provider, "kubernetes");
        assert_eq!(f.port, 9999);
    }

    #[test]
    #[cfg(feature = "demo")]
    fn demo_subcommand() {
        let cli = parse(["serin", "demo", "--scenario", "promote"].map(String::from)).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Demo(DemoFlags { scenario: Some(ref s), canaries: None })) if s == "promote")
        );
        let cli = parse(["serin", "demo", "-canaries", "2000"].map(String::from)).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Demo(DemoFlags {
                canaries: Some(2000),
                ..
            }))
        ));
    }

    #[test]
    fn unknown_flag_and_bad_value_are_errors() {
        assert!(parse(["serin", "-no-such-flag"].map(String::from)).is_err());
        assert!(parse(["serin", "-kubeconfig-qps=lots"].map(String::from)).is_err());
        assert!(parse(["serin", "demo", "--scenario", "nope"].map(String::from)).is_err());
    }

    #[test]
    fn normalize_leaves_values_and_short_options() {
        let out = normalize_args(
            ["-h", "-kubeconfig", "/tmp/k", "--port", "-1", "--", "-x-y"].map(String::from),
        );
        assert_eq!(
            out,
            ["-h", "--kubeconfig", "/tmp/k", "--port", "-1", "--", "-x-y"]
        );
    }

    #[test]
    fn a_set_environment_variable_beats_the_flag_as_in_flagger() {
        let mut f = flags(&[
            "-slack-url",
            "https://flag",
            "-event-webhook",
            "http://flag",
        ]);
        f.apply_env(|name| match name {
            "SLACK_URL" => Some("https://env".to_string()),
            "EVENT_WEBHOOK_URL" => Some(String::new()),
            _ => None,
        });
        assert_eq!(f.slack_url, "https://env");
        // An empty variable leaves the flag alone.
        assert_eq!(f.event_webhook, "http://flag");
    }

    /// Every Flagger flag the issue lists appears in `serin --help`.
    #[test]
    fn help_lists_flaggers_flags() {
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for flag in [
            "kubeconfig",
            "kubeconfig-qps",
            "kubeconfig-burst",
            "metrics-server",
            "mesh-provider",
            "namespace",
            "selector-labels",
            "include-label-prefix",
            "enable-config-tracking",
            "enable-leader-election",
            "leader-election-namespace",
            "port",
            "log-level",
            "cluster-name",
            "no-cross-namespace-refs",
            "slack-url",
            "slack-channel",
            "slack-user",
            "slack-token",
            "slack-proxy-url",
            "msteams-url",
            "msteams-proxy-url",
            "event-webhook",
            "ingress-annotations-prefix",
            "version",
        ] {
            let listed = help.lines().any(|line| {
                line.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
                    .any(|word| word == format!("--{flag}"))
            });
            assert!(listed, "--{flag} is missing from the help:\n{help}");
        }
    }

    #[test]
    fn string_and_numeric_flags_take_either_form() {
        let equals = flags(&[
            "-slack-url=https://hooks.example/x",
            "-leader-election-namespace=flagger",
            "-port=9090",
            "-log-level=info",
            "-no-cross-namespace-refs=true",
        ]);
        let spaced = flags(&[
            "--slack-url",
            "https://hooks.example/x",
            "--leader-election-namespace",
            "flagger",
            "--port",
            "9090",
            "--log-level",
            "info",
            "--no-cross-namespace-refs",
        ]);
        assert_eq!(equals, spaced);
        assert_eq!(equals.slack_url, "https://hooks.example/x");
        assert_eq!(equals.leader_election_namespace(), "flagger");
        assert_eq!((equals.port, equals.log_level.as_str()), (9090, "info"));
        assert!(equals.no_cross_namespace_refs);
    }

    #[test]
    fn a_repeated_flag_takes_the_last_value_as_go_does() {
        let f = flags(&["-mesh-provider", "kubernetes", "-mesh-provider=nginx"]);
        assert_eq!(f.mesh_provider, "nginx");
    }
}
