#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use super::gates::{Gates, gate_key, rollback_key};
use super::hey::{self, HeyOptions};
use super::server::{Payload, Task, go_parse_bool, plan};
use super::tasks::{Invocation, Runner, Submitted, TaskError, mentions_hey, split_fields};
use super::{Flags, app};
use regex::Regex;

fn payload(namespace: &str, metadata: &[(&str, &str)]) -> Payload {
    Payload {
        name: "podinfo".into(),
        namespace: namespace.into(),
        metadata: (!metadata.is_empty()).then(|| {
            metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        }),
        ..Payload::default()
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn payload_without_metadata_is_refused() {
    let err = plan(&payload("test", &[]), None).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.message, "metadata not found in payload");
}

#[test]
fn namespace_outside_the_regexp_is_forbidden() {
    let only_test = Regex::new("^test$").unwrap();
    let p = payload("prod", &[("cmd", "true")]);
    let err = plan(&p, Some(&only_test)).unwrap_err();
    assert_eq!(
        (err.status, err.message.as_str()),
        (StatusCode::FORBIDDEN, "Forbidden")
    );
    assert!(plan(&payload("test", &[("cmd", "true")]), Some(&only_test)).is_ok());
}

#[test]
fn task_types_map_to_their_runners() {
    let cmd = plan(
        &payload("t", &[("cmd", "hey -z 1m x"), ("logCmdOutput", "true")]),
        None,
    );
    assert_eq!(
        cmd.unwrap(),
        Task::Cmd {
            cmd: "hey -z 1m x".into(),
            log_output: true
        }
    );
    let bash = plan(
        &payload(
            "t",
            &[
                ("type", "bash"),
                ("cmd", "echo hi"),
                ("returnCmdOutput", "1"),
            ],
        ),
        None,
    );
    assert_eq!(
        bash.unwrap(),
        Task::Blocking {
            inv: Invocation::bash("echo hi"),
            return_output: true
        }
    );
    for (typ, program) in [("kubectl", "kubectl"), ("helm", "helm"), ("helmv3", "helm")] {
        let Task::Blocking { inv, return_output } = plan(
            &payload("t", &[("type", typ), ("cmd", "get  pods -n test")]),
            None,
        )
        .unwrap() else {
            panic!("{typ} should block");
        };
        assert_eq!(inv.program, program);
        assert_eq!(inv.args, strings(&["get", "pods", "-n", "test"]));
        assert!(!return_output);
    }
}

#[test]
fn unknown_and_unsupported_types_are_bad_requests() {
    let err = plan(&payload("t", &[("type", "wrk"), ("cmd", "x")]), None).unwrap_err();
    assert_eq!(
        (err.status, err.message.as_str()),
        (StatusCode::BAD_REQUEST, "unknown task type wrk")
    );
    let err = plan(&payload("t", &[("type", "concord")]), None).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert!(err.message.contains("not supported"), "{}", err.message);
    let err = plan(&payload("t", &[("logCmdOutput", "true")]), None).unwrap_err();
    assert_eq!(err.message, "cmd not found in metadata");
}

#[test]
fn go_booleans() {
    assert!(
        ["1", "t", "T", "true", "TRUE", "True"]
            .iter()
            .all(|v| go_parse_bool(v))
    );
    assert!(!["0", "false", "yes", ""].iter().any(|v| go_parse_bool(v)));
}

#[test]
fn gates_start_closed_and_keys_follow_flagger() {
    let gates = Gates::default();
    let key = gate_key("podinfo", "test");
    assert_eq!(key, "podinfo.test");
    assert_eq!(rollback_key("podinfo", "test"), "rollback.podinfo.test");
    assert!(!gates.is_open(&key));
    gates.open(&key);
    assert!(gates.is_open(&key));
    assert!(!gates.is_open(&rollback_key("podinfo", "test")));
    gates.close(&key);
    assert!(!gates.is_open(&key));
}

#[test]
fn args_split_like_strings_fields() {
    assert_eq!(
        split_fields("  upgrade -i  app\tchart \n"),
        strings(&["upgrade", "-i", "app", "chart"])
    );
    assert!(split_fields("   ").is_empty());
}

#[test]
fn hey_is_found_as_a_command_word() {
    assert!(mentions_hey("hey -z 1m http://x/"));
    assert!(mentions_hey("curl -s x && hey -n 10 http://x/"));
    assert!(mentions_hey("for i in 1 2; do hey http://x; done"));
    assert!(!mentions_hey("echo they said heyo"));
}

#[test]
fn namespace_patterns() {
    let cases = [
        ("test", "my-test-ns", true),
        ("^test$", "my-test-ns", false),
        ("^(test|prod)$", "prod", true),
        ("^team-[a-z]+-\\d{2,3}$", "team-web-42", true),
        ("^team-[a-z]+-\\d{2,3}$", "team-web-4", false),
        ("^[^k].*", "kube-system", false),
        ("^a?b+c*$", "bbb", true),
        ("(?:dev|stg)-.*", "x-stg-1", true),
    ];
    for (pattern, text, want) in cases {
        assert_eq!(
            Regex::new(pattern).unwrap().is_match(text),
            want,
            "{pattern} on {text}"
        );
    }
    for bad in ["(", "[a-", "*a", "a{3,1}"] {
        assert!(Regex::new(bad).is_err(), "{bad}");
    }
}

#[test]
fn flags_take_one_or_two_dashes_and_have_flagger_defaults() {
    let f = Flags::parse_args(strings(&["serin-loadtester"])).unwrap();
    assert_eq!(
        (f.port, f.timeout.as_str(), f.log_level.as_str()),
        (9090, "1h", "info")
    );
    assert_eq!(
        (f.namespace_regexp.as_str(), f.zap_encoding.as_str()),
        ("", "json")
    );
    let f = Flags::parse_args(strings(&[
        "x",
        "-port",
        "8080",
        "--timeout=5m",
        "-namespace-regexp=^test$",
        "-zap-replace-globals",
    ]))
    .unwrap();
    assert_eq!(
        (f.port, f.timeout.as_str(), f.namespace_regexp.as_str()),
        (8080, "5m", "^test$")
    );
    assert!(app(&f, None).is_ok());
    let bad = Flags::parse_args(strings(&["x", "-timeout", "soon"])).unwrap();
    assert!(app(&bad, None).is_err());
}

#[test]
fn hey_flags() {
    let o = hey::parse_args(&strings(&[
        "-z",
        "1m",
        "-q",
        "10",
        "-c",
        "2",
        "-host",
        "app.example.com",
        "-H",
        "X-A: 1",
        "-m",
        "post",
        "http://nginx/",
    ]))
    .unwrap();
    assert_eq!(o.duration, Some(Duration::from_secs(60)));
    assert_eq!((o.qps, o.concurrency, o.method.as_str()), (10.0, 2, "POST"));
    assert_eq!(o.host.as_deref(), Some("app.example.com"));
    assert_eq!(o.headers, vec![("X-A".to_string(), "1".to_string())]);
    assert_eq!(o.url, "http://nginx/");
    let defaults: HeyOptions = hey::parse_args(&strings(&["http://x/"])).unwrap();
    assert_eq!(
        (defaults.requests, defaults.concurrency, defaults.duration),
        (200, 50, None)
    );
    for bad in [
        &["-z", "1m"][..],
        &["-n", "1", "-c", "2", "http://x"],
        &["-bogus", "http://x"],
        &["-H", "nocolon", "http://x"],
    ] {
        assert!(hey::parse_args(&strings(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn hey_report_renders_percentiles_and_codes() {
    let mut report = hey::Report {
        total: Duration::from_secs(2),
        latencies: (1..=10).map(Duration::from_millis).collect(),
        ..Default::default()
    };
    report.status_codes.insert(200, 10);
    report.errors.insert("GET x: refused".into(), 2);
    let text = report.render();
    assert!(text.contains("Requests/sec:\t6.0000"), "{text}");
    assert!(text.contains("50% in 0.0060 secs"), "{text}");
    assert!(text.contains("[200]\t10 responses"), "{text}");
    assert!(text.contains("[2]\tGET x: refused"), "{text}");
}

#[tokio::test]
async fn blocking_runs_return_combined_output_or_go_style_errors() {
    let runner = Runner::new(Duration::from_secs(10), None);
    let out = runner
        .run(&Invocation::bash("echo out; echo err >&2"))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "out\nerr\n");
    let err = runner
        .run(&Invocation::bash("echo bad; exit 3"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "command echo bad; exit 3 failed: bad\n: exit status 3"
    );
    let missing = runner
        .run(&Invocation::tool("serin-no-such-tool", "x"))
        .await;
    assert!(matches!(missing, Err(TaskError::Spawn { .. })));
}

#[tokio::test]
async fn the_timeout_kills_the_process_group() {
    let runner = Runner::new(Duration::from_millis(300), None);
    let started = std::time::Instant::now();
    let err = runner
        .run(&Invocation::shell("sleep 30 & sleep 30; echo never"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("signal: killed"), "{err}");
}

#[tokio::test]
async fn a_running_cmd_is_not_started_twice() {
    let runner = Arc::new(Runner::new(Duration::from_secs(10), None));
    assert_eq!(
        runner.submit("a.test", "sleep 0.5", false),
        Submitted::Started
    );
    assert_eq!(
        runner.submit("a.test", "sleep 0.5", false),
        Submitted::Skipped
    );
    // Another canary or another command is a different task.
    assert_eq!(
        runner.submit("b.test", "sleep 0.5", false),
        Submitted::Started
    );
    assert_eq!(
        runner.submit("a.test", "sleep 0.4", false),
        Submitted::Started
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(runner.running(), 0);
    assert_eq!(
        runner.submit("a.test", "sleep 0.5", false),
        Submitted::Started
    );
}
