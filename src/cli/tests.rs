//! The operator's flags as Flagger takes them, and the demo's.

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
