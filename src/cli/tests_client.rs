//! The client's commands: short flags as written, the operator's flags
//! untouched.

use std::time::Duration;

use super::*;

fn client(args: &[&str]) -> ClientCommand {
    let argv = std::iter::once("serin")
        .chain(args.iter().copied())
        .map(String::from);
    match parse(argv).unwrap().command {
        Some(Command::Client(c)) => c,
        other => panic!("not a client command: {other:?}"),
    }
}

fn get(args: &[&str]) -> GetArgs {
    match client(args) {
        ClientCommand::Get(a) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_flags_are_not_go_flags() {
    let a = get(&["get", "canaries", "-n", "test", "-oyaml"]);
    assert_eq!(a.connection.namespace.as_deref(), Some("test"));
    assert_eq!(a.output, Some(OutputFormat::Yaml));
    let a = get(&["get", "canaries", "-A", "-o", "json"]);
    assert!(a.all_namespaces);
    assert_eq!(a.output, Some(OutputFormat::Json));
    let a = get(&["get", "canary", "podinfo", "-w", "--timeout", "90s"]);
    assert_eq!(a.name.as_deref(), Some("podinfo"));
    assert!(a.watch);
    assert_eq!(a.timeout, Some(Duration::from_secs(90)));
    let a = get(&[
        "get",
        "canary",
        "podinfo",
        "--kubeconfig",
        "/tmp/k",
        "--context",
        "kind",
        "--namespace=prod",
    ]);
    assert_eq!(
        a.connection,
        Connection {
            kubeconfig: Some("/tmp/k".into()),
            context: Some("kind".into()),
            namespace: Some("prod".into()),
        }
    );
}

#[test]
fn status_and_requests() {
    match client(&["status", "podinfo", "--timeout", "10m", "-n", "test"]) {
        ClientCommand::Status(a) => {
            assert_eq!(a.name, "podinfo");
            assert_eq!(a.timeout, Some(Duration::from_secs(600)));
        }
        other => panic!("{other:?}"),
    }
    match client(&["status", "podinfo"]) {
        ClientCommand::Status(a) => assert_eq!(a.timeout, None),
        other => panic!("{other:?}"),
    }
    for (word, wait) in [("promote", 30), ("abort", 30), ("retry", 60)] {
        let args: &[&str] = if word == "retry" {
            &["retry", "podinfo", "--wait", "1m"]
        } else {
            &[word, "podinfo"]
        };
        let a = match client(args) {
            ClientCommand::Promote(a) | ClientCommand::Abort(a) | ClientCommand::Retry(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (a.name.as_str(), a.wait),
            ("podinfo", Duration::from_secs(wait))
        );
    }
    assert!(matches!(
        client(&["pause", "podinfo"]),
        ClientCommand::Pause(_)
    ));
    assert!(matches!(
        client(&["resume", "podinfo", "-n", "x"]),
        ClientCommand::Resume(_)
    ));
    assert!(matches!(
        client(&["completion", "zsh"]),
        ClientCommand::Completion(CompletionArgs {
            shell: clap_complete::Shell::Zsh
        })
    ));
}

#[test]
fn bad_client_usage_is_an_error() {
    for args in [
        &["serin", "status"][..],
        &["serin", "status", "podinfo", "--timeout", "soon"],
        &["serin", "get", "canaries", "-o", "wide"],
        &["serin", "promote"],
        &["serin", "completion", "tcsh"],
    ] {
        assert!(
            parse(args.iter().map(|s| s.to_string())).is_err(),
            "{args:?}"
        );
    }
}

#[test]
fn only_client_commands_skip_the_go_rewrite() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(is_client_command(&args(&["serin", "get", "canaries"])));
    assert!(!is_client_command(&args(&["serin"])));
    assert!(!is_client_command(&args(&["serin", "-namespace", "get"])));
    assert!(!is_client_command(&args(&["serin", "operator"])));
    assert!(!is_client_command(&args(&[
        "serin",
        "demo",
        "-canaries",
        "5"
    ])));
}

#[test]
fn the_plugin_name() {
    assert!(invoked_as_plugin("kubectl-serin"));
    assert!(invoked_as_plugin("/home/me/.local/bin/kubectl-serin"));
    assert!(!invoked_as_plugin("/usr/bin/serin"));
    assert!(!invoked_as_plugin("kubectl"));
}

#[test]
fn lint_flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct Lint {
        #[command(flatten)]
        args: LintArgs,
    }
    let l = Lint::try_parse_from([
        "lint",
        "-f",
        "a.yaml",
        "-f",
        "-",
        "--mesh-provider",
        "nginx",
    ])
    .unwrap();
    assert_eq!(l.args.files, ["a.yaml", "-"]);
    assert_eq!(l.args.mesh_provider, "nginx");
    assert!(Lint::try_parse_from(["lint"]).is_err());
}

#[test]
fn every_command_has_examples() {
    let mut command = command_named("serin");
    command.build();
    for name in CLIENT_COMMANDS {
        let sub = command
            .find_subcommand_mut(name)
            .unwrap_or_else(|| panic!("no command {name}"));
        let help = sub.render_long_help().to_string();
        assert!(help.contains("Examples:"), "{name}:\n{help}");
    }
}
