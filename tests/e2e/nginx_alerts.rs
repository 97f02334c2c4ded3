//! Flagger's NGINX walkthrough end to end (see nginx.rs): the alerts of
//! a promotion and of a rollback, through AlertProviders of type `slack` and
//! `msteams` posting to a receiver in the test (BEHAVIOUR.md §7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::eventually;
use crate::support::nginx::chat::ChatReceiver;
use crate::support::nginx::rig::NginxTest;
use crate::support::nginx::{alert_provider, canary, with_alerts};
use crate::support::podinfo::{INIT, RUN, SHORT};
use crate::support::traffic::Fault;
use serde_json::{Value, json};

const INITIALIZED: &str = "New Deployment detected, initialization completed.";
const NEW_REVISION: &str = "New revision detected, progressing canary analysis.";
const SUCCEEDED: &str = "Canary analysis completed successfully, promotion finished.";

/// The walkthrough's Canary with `threshold` and alerts (severity info) to
/// the `slack` and `teams` providers of `chat`.
async fn start(test: &str, threshold: u32) -> (NginxTest, ChatReceiver) {
    let n = NginxTest::start(test).await;
    let chat = ChatReceiver::start().await;
    n.t.apply(&alert_provider("slack", "slack", &chat.url("/slack")))
        .await;
    n.t.apply(&alert_provider("teams", "msteams", &chat.url("/teams")))
        .await;
    n.t.apply(&with_alerts(canary(&n.lt, threshold))).await;
    (n, chat)
}

/// Waits until `path` received `texts.len()` posts and returns them.
async fn wait_posts(chat: &ChatReceiver, path: &str, texts: &[&str]) -> Vec<Value> {
    eventually(
        &format!("{} alerts on {path}", texts.len()),
        SHORT,
        || async {
            let posts = chat.posts(path);
            match posts.len() >= texts.len() {
                true => Ok(posts),
                false => Err(format!("{posts:#?}")),
            }
        },
    )
    .await
}

/// An expected alert: text, severity error, metadata fields.
type Alert<'a> = (&'a str, bool, Vec<(String, String)>);

/// Flagger's metadata fields of the walkthrough's Canary.
fn fields(ns: &str, threshold: u32) -> Vec<(String, String)> {
    [
        ("Target", format!("Deployment/podinfo.{ns}")),
        ("Failed checks threshold", threshold.to_string()),
        ("Progress deadline", "60s".to_string()),
        ("Traffic routing", "Weight step: 5 max: 50".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Each Slack post: Flagger's payload with `text`, colour and fields.
fn assert_slack(posts: &[Value], ns: &str, expected: &[Alert]) {
    let texts: Vec<_> = posts
        .iter()
        .map(|p| p["attachments"][0]["text"].clone())
        .collect();
    let wanted: Vec<_> = expected.iter().map(|e| json!(e.0)).collect();
    assert_eq!(texts, wanted, "Slack alerts: {posts:#?}");
    for (post, (text, error, fields)) in posts.iter().zip(expected) {
        let fields: Vec<Value> = fields
            .iter()
            .map(|(k, v)| json!({ "title": k, "value": v, "short": false }))
            .collect();
        let color = if *error { "danger" } else { "good" };
        assert_eq!(
            post,
            &json!({ "channel": "general", "username": "flagger", "icon_url": "",
                "icon_emoji": ":rocket:", "attachments": [{ "color": color,
                "author_name": format!("podinfo.{ns}"), "text": text,
                "mrkdwn_in": ["text"], "fields": fields }] }),
        );
    }
}

/// Each Teams post: a MessageCard with `activityTitle`, colour and facts.
fn assert_teams(posts: &[Value], ns: &str, expected: &[Alert]) {
    let texts: Vec<_> = posts
        .iter()
        .map(|p| p["sections"][0]["activityTitle"].clone())
        .collect();
    let wanted: Vec<_> = expected.iter().map(|e| json!(e.0)).collect();
    assert_eq!(texts, wanted, "Teams alerts: {posts:#?}");
    for (post, (text, error, facts)) in posts.iter().zip(expected) {
        let facts: Vec<Value> = facts
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        let color = if *error { "FF0000" } else { "0076D7" };
        assert_eq!(
            post,
            &json!({ "@type": "MessageCard", "@context": "http://schema.org/extensions",
                "themeColor": color, "summary": format!("podinfo.{ns}"),
                "sections": [{ "activityTitle": text,
                "activitySubtitle": format!("podinfo.{ns}"), "facts": facts }] }),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_alerts_on_promotion() {
    let (n, chat) = start("nginx-alerts-ok", 10).await;
    let ns = n.ns().to_string();
    n.t.wait_phase("podinfo", "Initialized", INIT).await;
    n.set_revision("6.0.1", None).await;
    n.t.wait_phase("podinfo", "Succeeded", RUN).await;
    let expected = [
        (INITIALIZED, false, fields(&ns, 10)),
        (NEW_REVISION, false, fields(&ns, 10)),
        (SUCCEEDED, false, vec![]),
    ];
    let texts: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_slack(&wait_posts(&chat, "/slack", &texts).await, &ns, &expected);
    assert_teams(&wait_posts(&chat, "/teams", &texts).await, &ns, &expected);
    n.assert_kubectl_row("Succeeded", "0").await;
}

/// The failure alert is Flagger's `Failed checks threshold reached <n>`
/// (severity error); Flagger sends none for `Canary failed!`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_alerts_on_rollback() {
    let (n, chat) = start("nginx-alerts-fail", 3).await;
    let ns = n.ns().to_string();
    n.t.wait_phase("podinfo", "Initialized", INIT).await;
    n.set_revision("6.0.1", Some(Fault::errors(50.0))).await;
    n.t.wait_phase("podinfo", "Failed", RUN).await;
    let expected = [
        (INITIALIZED, false, fields(&ns, 3)),
        (NEW_REVISION, false, fields(&ns, 3)),
        ("Failed checks threshold reached 3", true, vec![]),
    ];
    let texts: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_slack(&wait_posts(&chat, "/slack", &texts).await, &ns, &expected);
    assert_teams(&wait_posts(&chat, "/teams", &texts).await, &ns, &expected);
    n.assert_kubectl_row("Failed", "0").await;
}
