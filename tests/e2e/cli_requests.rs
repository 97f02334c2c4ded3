//! The command line's writes end to end: `serin promote`, `abort` and
//! `retry` (the `serin.dev/request` annotation and the operator's answer in
//! `status.lastRequest`), their refusals, `pause`/`resume`, the kubectl
//! plugin and `completion`, on Blue/Green canaries of the Kubernetes
//! provider (tests/e2e/support/podinfo.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use crate::support::cli::{PluginDir, output, serin};
use crate::support::operator::OperatorTest;
use crate::support::podinfo::{
    INTERVAL, RUN, SHORT, assert_deployment_initialized, blue_green, canary, podinfo_deployment,
    set_image, webhook,
};

/// podinfo and a Blue/Green Canary of `iterations` with `hooks`, Initialized.
async fn initialized(
    test: &str,
    iterations: u32,
    hooks: impl Fn(&OperatorTest) -> String,
) -> OperatorTest {
    let t = OperatorTest::start(test).await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    let analysis = blue_green(iterations, &hooks(&t));
    t.apply(&canary("podinfo", "Deployment", "podinfo", &analysis))
        .await;
    assert_deployment_initialized(&t).await;
    t
}

/// The Canary's `spec.suspend`.
async fn suspended(t: &OperatorTest) -> Option<bool> {
    let canary = t.canaries().get("podinfo").await.unwrap();
    canary.data["spec"]["suspend"].as_bool()
}

/// Starts a run and waits until its analysis has begun.
async fn progressing(t: &OperatorTest) {
    set_image(t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_phase("podinfo", "Progressing", 3 * INTERVAL + SHORT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_promote_skips_the_rest_of_the_analysis() {
    // 12 iterations: two minutes of analysis the promotion skips.
    let t = initialized("cli-promote", 12, |_| String::new()).await;
    let env = t.tc.env.clone();
    let ns = t.ns().to_string();
    let idle = serin(&env, &["promote", "podinfo", "-n", &ns]).await;
    assert_eq!(idle.code, 1, "{idle:?}");
    assert_eq!(
        idle.stderr.trim(),
        format!("podinfo.{ns} is Initialized: no analysis to promote")
    );

    progressing(&t).await;
    let asked = Instant::now();
    let promote = serin(&env, &["promote", "podinfo", "-n", &ns]).await;
    // A measurement for the log, not a timed assertion.
    eprintln!("serin promote answered in {:?}", asked.elapsed());
    assert_eq!(promote.code, 0, "{promote:?}");
    assert!(
        !promote.stdout.trim().is_empty(),
        "the operator's message: {promote:?}"
    );
    let status = t.status("podinfo").await;
    assert_eq!(status["lastRequest"]["action"], "promote", "{status}");
    assert_eq!(status["lastRequest"]["result"], "Accepted", "{status}");
    t.wait_event(&format!("Promotion of podinfo.{ns} requested by "), SHORT)
        .await;
    t.wait_phase("podinfo", "Succeeded", 6 * INTERVAL).await;
    assert!(
        asked.elapsed() < 8 * INTERVAL,
        "promoted well before 12 iterations would end"
    );

    // The operator answers a second promote as done already.
    let again = serin(&env, &["promote", "podinfo", "-n", &ns]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.stdout.trim(),
        format!("podinfo.{ns} is already promoted")
    );
    let retry = serin(&env, &["retry", "podinfo", "-n", &ns]).await;
    assert_eq!(retry.code, 1, "{retry:?}");
    assert_eq!(
        retry.stderr.trim(),
        format!("podinfo.{ns} is Succeeded: a succeeded analysis is not retried")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_abort_rolls_back_mid_analysis() {
    let t = initialized("cli-abort", 12, |_| String::new()).await;
    let env = t.tc.env.clone();
    let ns = t.ns().to_string();
    progressing(&t).await;
    let asked = Instant::now();
    let abort = serin(&env, &["abort", "podinfo", "-n", &ns]).await;
    assert_eq!(abort.code, 0, "{abort:?}");
    t.wait_phase("podinfo", "Failed", 4 * INTERVAL).await;
    assert!(asked.elapsed() < 5 * INTERVAL);
    t.wait_event(
        &format!("Rolling back podinfo.{ns}: abort requested by "),
        SHORT,
    )
    .await;
    let status = t.status("podinfo").await;
    assert_eq!(status["lastRequest"]["action"], "abort", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_retry_runs_a_failed_analysis_again() {
    // A rollout gate, closed: two failed checks roll the run back.
    let t = initialized("cli-retry", 2, |t| {
        webhook("gate", "rollout", &t.hooks.url("/gate/check"))
    })
    .await;
    let env = t.tc.env.clone();
    let ns = t.ns().to_string();
    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_phase("podinfo", "Failed", RUN).await;
    t.hooks.open_gate("podinfo", &ns);
    let retry = serin(&env, &["retry", "podinfo", "-n", &ns]).await;
    assert_eq!(retry.code, 0, "{retry:?}");
    t.wait_event(&format!("Retry of podinfo.{ns} requested by "), SHORT)
        .await;
    t.wait_phase("podinfo", "Progressing", 3 * INTERVAL).await;
    let status = serin(&env, &["status", "podinfo", "-n", &ns, "--timeout", "4m"]).await;
    assert_eq!(
        status.code, 0,
        "the second run passes the open gate: {status:?}"
    );
    assert_eq!(status.last_line(), "Succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_pause_resume_plugin_and_completion() {
    let t = initialized("cli-pause", 2, |_| String::new()).await;
    let env = t.tc.env.clone();
    let ns = t.ns().to_string();
    let pause = serin(&env, &["pause", "podinfo", "-n", &ns]).await;
    assert_eq!(
        (pause.code, pause.stdout.trim()),
        (0, format!("podinfo.{ns} paused").as_str())
    );
    assert_eq!(suspended(&t).await, Some(true));
    let again = serin(&env, &["pause", "podinfo", "-n", &ns]).await;
    assert_eq!(
        (again.code, again.stdout.trim()),
        (0, format!("podinfo.{ns} is already paused").as_str())
    );
    let abort = serin(&env, &["abort", "podinfo", "-n", &ns]).await;
    assert_eq!(abort.code, 1, "{abort:?}");
    assert_eq!(
        abort.stderr.trim(),
        format!("podinfo.{ns} is paused; run serin resume podinfo first")
    );
    let resume = serin(&env, &["resume", "podinfo", "-n", &ns]).await;
    assert_eq!(
        (resume.code, resume.stdout.trim()),
        (0, format!("podinfo.{ns} resumed").as_str())
    );
    assert_eq!(suspended(&t).await, Some(false));

    // kubectl serin, through a kubectl-serin symlink on PATH.
    let plugin = PluginDir::new(&ns);
    let kubectl = |args: &[&str]| {
        let mut cmd = tokio::process::Command::from(env.tool("kubectl"));
        cmd.args(args)
            .env("PATH", plugin.path_var())
            .kill_on_drop(true);
        cmd
    };
    let listed = output(
        kubectl(&["serin", "get", "canaries", "-n", &ns]),
        "kubectl serin get canaries",
    )
    .await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.starts_with("NAME "), "{listed:?}");
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with("podinfo ") && l.contains("Initialized")),
        "{listed:?}"
    );
    let bare = output(kubectl(&["serin"]), "kubectl serin").await;
    assert_eq!(bare.code, 0, "{bare:?}");
    assert!(bare.stdout.contains("Usage: kubectl serin"), "{bare:?}");

    let completion = serin(&env, &["completion", "bash"]).await;
    assert_eq!(completion.code, 0, "{completion:?}");
    assert!(
        completion.stdout.contains("_serin()"),
        "{}",
        &completion.stdout[..200.min(completion.stdout.len())]
    );
}
