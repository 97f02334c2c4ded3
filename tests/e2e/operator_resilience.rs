//! End-to-end tests of the operator's resilience: a `kill -9` in the middle
//! of an analysis, and an invalid Canary next to a valid one. The operator
//! runs as a separate process against the local control plane
//! (`make cluster-up`); see operator.rs for the setup and
//! tests/e2e/support/podinfo.rs for the manifests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::support::eventually;
use crate::support::operator::OperatorTest;
use crate::support::podinfo::{
    INIT, RUN, SHORT, assert_deployment_initialized, assert_promoted, blue_green, canary,
    podinfo_deployment, set_image,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

/// `kill -9` of the operator in the middle of an analysis: the restarted
/// operator finishes the run without repeating or skipping an iteration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_analysis_resumes_the_run() {
    let mut t = OperatorTest::start("sigkill").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(4, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_event(&format!("Advance podinfo.{ns} canary iteration 1/4"), RUN)
        .await;
    eventually(
        "status.iterations to record the first iteration",
        SHORT,
        || async {
            let status = t.status("podinfo").await;
            match status["iterations"].as_i64() {
                Some(i) if i >= 1 => Ok(()),
                _ => Err(status.to_string()),
            }
        },
    )
    .await;
    assert_eq!(t.phase("podinfo").await, "Progressing");
    t.op.kill_hard().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    t.op.restart().await;

    assert_promoted(&t, "6.0.1").await;
    let events = t.events().await;
    for i in 1..=4 {
        let message = format!("Advance podinfo.{ns} canary iteration {i}/4");
        let seen: Vec<_> = events.iter().filter(|e| e.message == message).collect();
        assert_eq!(seen.len(), 1, "one Event for {message:?}: {events:#?}");
        assert_eq!(seen[0].count, 1, "{message:?} happened once: {events:#?}");
    }
    assert_eq!(
        t.event_count(&format!("New revision detected! Scaling up podinfo.{ns}"))
            .await,
        1
    );
    assert_eq!(
        t.event_count(&format!("Starting canary analysis for podinfo.{ns}"))
            .await,
        1
    );
}

/// A Canary whose target is missing gets a Warning naming the problem and
/// does not stop a valid Canary in the same namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_canary_does_not_block_a_valid_one() {
    let mut t = OperatorTest::start("invalid").await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "broken",
        "Deployment",
        "podinfo-missing",
        &blue_green(1, ""),
    ))
    .await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(1, ""),
    ))
    .await;

    let warning = eventually("a Warning event on canary broken", INIT, || async {
        let events = t.events().await;
        match events
            .iter()
            .find(|e| e.object == "broken" && e.type_ == "Warning")
        {
            Some(e) => Ok(e.clone()),
            None => {
                tokio::time::sleep(Duration::from_millis(750)).await;
                Err(format!("{events:?}"))
            }
        }
    })
    .await;
    assert!(
        warning.message.contains("podinfo-missing") && warning.message.contains("not found"),
        "the Warning names the missing target: {warning:?}"
    );
    assert_deployment_initialized(&t).await;
    assert_ne!(t.phase("broken").await, "Initialized");
    let api: Api<Deployment> = t.tc.api();
    assert!(
        api.get_opt("podinfo-missing-primary")
            .await
            .unwrap()
            .is_none()
    );
    // The reason is also on the object, where `kubectl describe` shows it.
    let valid = eventually("a Valid=False condition on canary broken", INIT, || async {
        let status = t.status("broken").await;
        let found = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Valid")
            .cloned();
        match found {
            Some(c) => Ok(c),
            None => {
                tokio::time::sleep(Duration::from_millis(750)).await;
                Err(format!("{status}"))
            }
        }
    })
    .await;
    assert_eq!(valid["status"], "False", "{valid}");
    assert_eq!(valid["reason"], "InvalidSpec", "{valid}");
    assert!(
        valid["message"]
            .as_str()
            .is_some_and(|m| m.contains("podinfo-missing")),
        "{valid}"
    );
    assert!(t.op.is_running(), "the operator keeps running");
    assert!(t.op.healthy().await, "/healthz still answers");
}
