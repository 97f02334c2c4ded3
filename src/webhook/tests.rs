use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use serin_actors::events::Event;
use serin_actors::model::spec::{HookType, WebhookSpec};
use serin_actors::model::status::Phase;
use serin_actors::ports::CanaryKey;

use super::*;

/// Status, delay in ms, body.
type Reply = (u16, u64, &'static str);

#[derive(Clone, Default)]
struct Hook {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Hook {
    fn seen(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn reply(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap();
    hook.seen.lock().unwrap().push((content_type, body));
    let next = hook.replies.lock().unwrap().pop_front();
    let (status, delay_ms, text) = next.unwrap_or((200, 0, ""));
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    (StatusCode::from_u16(status).unwrap(), text.to_string())
}

/// A webhook receiver on 127.0.0.1 answering `replies` in order, then 200.
async fn serve(replies: &[Reply]) -> (String, Hook) {
    let hook = Hook::default();
    hook.replies.lock().unwrap().extend(replies.iter().copied());
    let app = Router::new()
        .route("/hook", axum::routing::post(reply))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hook)
}

fn call(url: &str) -> WebhookCall {
    WebhookCall {
        key: CanaryKey::new("test", "podinfo"),
        hook: WebhookSpec::new("check", HookType::Rollout, url),
        phase: Phase::Progressing,
        checksum: "abc123".to_string(),
        event: None,
    }
}

fn webhooks() -> HttpWebhooks {
    HttpWebhooks::new()
        .unwrap()
        .with_retry_wait(Duration::from_millis(10), Duration::from_millis(40))
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn posts_flaggers_payload() {
    let (url, hook) = serve(&[]).await;
    let mut with_metadata = call(&url);
    with_metadata
        .hook
        .metadata
        .insert("cmd".into(), "hey -z 1m".into());
    let hooks = webhooks();
    assert_eq!(
        hooks.call(&with_metadata, soon()).await,
        Ok(WebhookAnswer::Ok)
    );
    assert_eq!(hooks.call(&call(&url), soon()).await, Ok(WebhookAnswer::Ok));
    let seen = hook.seen();
    assert_eq!(seen[0].0, "application/json");
    assert_eq!(
        seen[0].1,
        json!({"name": "podinfo", "namespace": "test", "phase": "Progressing",
               "checksum": "abc123", "metadata": {"cmd": "hey -z 1m"}})
    );
    assert_eq!(
        seen[1].1,
        json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc123"})
    );
}

#[tokio::test]
async fn success_is_at_most_202_and_the_body_is_the_error() {
    let (url, _) = serve(&[
        (202, 0, "queued"),
        (203, 0, "not quite"),
        (403, 0, "Forbidden"),
    ])
    .await;
    let hooks = webhooks();
    let c = call(&url);
    assert_eq!(hooks.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
    assert_eq!(
        hooks.call(&c, soon()).await,
        Ok(WebhookAnswer::Failed("not quite".into()))
    );
    assert_eq!(
        hooks.call(&c, soon()).await,
        Ok(WebhookAnswer::Failed("Forbidden".into()))
    );
}

#[tokio::test]
async fn event_metadata_wins_over_the_hooks() {
    let (url, hook) = serve(&[]).await;
    let mut c = call(&url);
    c.hook.hook_type = HookType::Event;
    c.hook.metadata.insert("eventType".into(), "mine".into());
    c.hook.metadata.insert("team".into(), "a".into());
    c.event = Some(Event::warning("Halt advancement podinfo.test"));
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(webhooks().call(&c, soon()).await, Ok(WebhookAnswer::Ok));
    let metadata = &hook.seen()[0].1["metadata"];
    assert_eq!(metadata["eventMessage"], "Halt advancement podinfo.test");
    assert_eq!(metadata["eventType"], "Warning");
    assert_eq!(metadata["team"], "a");
    let stamp: u128 = metadata["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(stamp >= before && stamp < before + 10_000, "{stamp}");
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let (url, hook) = serve(&[(503, 0, "busy"), (503, 0, "busy")]).await;
    let mut c = call(&url);
    c.hook.retries = 2;
    assert_eq!(webhooks().call(&c, soon()).await, Ok(WebhookAnswer::Ok));
    assert_eq!(hook.seen().len(), 3);
}

#[tokio::test]
async fn gives_up_like_retryablehttp() {
    let (url, hook) = serve(&[(503, 0, "busy"), (500, 0, "boom"), (429, 0, "slow down")]).await;
    let mut c = call(&url);
    c.hook.retries = 2;
    let want = format!("POST {url} giving up after 3 attempt(s)");
    assert_eq!(
        webhooks().call(&c, soon()).await,
        Ok(WebhookAnswer::Failed(want))
    );
    assert_eq!(hook.seen().len(), 3);
}

#[tokio::test]
async fn does_not_retry_501_or_4xx() {
    let (url, hook) = serve(&[(501, 0, "no such thing"), (404, 0, "gone")]).await;
    let mut c = call(&url);
    c.hook.retries = 3;
    let hooks = webhooks();
    assert_eq!(
        hooks.call(&c, soon()).await,
        Ok(WebhookAnswer::Failed("no such thing".into()))
    );
    assert_eq!(
        hooks.call(&c, soon()).await,
        Ok(WebhookAnswer::Failed("gone".into()))
    );
    assert_eq!(hook.seen().len(), 2);
}

#[tokio::test]
async fn the_hook_timeout_bounds_each_attempt() {
    let (url, hook) = serve(&[(200, 5000, ""), (200, 5000, "")]).await;
    let mut c = call(&url);
    c.hook.timeout = "200ms".into();
    c.hook.retries = 1;
    let start = Instant::now();
    let answer = webhooks().call(&c, soon()).await;
    // Without the hook's timeout the first answer alone would take 5 s.
    assert!(start.elapsed() < Duration::from_secs(5));
    let Ok(WebhookAnswer::Failed(text)) = answer else {
        panic!("{answer:?}")
    };
    assert!(
        text.starts_with(&format!("POST {url} giving up after 2 attempt(s): ")),
        "{text}"
    );
    assert!(text.contains("Client.Timeout"), "{text}");
    assert_eq!(hook.seen().len(), 2);
}

#[tokio::test]
async fn the_deadline_caps_the_attempt_and_the_retries() {
    let (url, hook) = serve(&[(200, 5000, ""), (503, 0, ""), (503, 0, "")]).await;
    let hooks = HttpWebhooks::new().unwrap();
    let start = Instant::now();
    let answer = hooks
        .call(&call(&url), start + Duration::from_millis(200))
        .await;
    assert_eq!(answer, Err(PortError::Timeout));
    // Without the deadline the answer would take 5 s.
    assert!(start.elapsed() < Duration::from_secs(5));
    // Default 1s backoff does not fit in a 500ms deadline: one attempt.
    let mut c = call(&url);
    c.hook.retries = 5;
    let answer = hooks
        .call(&c, Instant::now() + Duration::from_millis(500))
        .await;
    assert_eq!(
        answer,
        Ok(WebhookAnswer::Failed(format!(
            "POST {url} giving up after 1 attempt(s)"
        )))
    );
    assert_eq!(hook.seen().len(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let mut c = call(&url);
    c.hook.retries = 1;
    let answer = webhooks().call(&c, soon()).await;
    let Ok(WebhookAnswer::Failed(text)) = answer else {
        panic!("{answer:?}")
    };
    assert!(
        text.starts_with(&format!("POST {url} giving up after 2 attempt(s): Post")),
        "{text}"
    );
}

#[tokio::test]
async fn the_global_event_hook_serves_canaries_without_one() {
    let (url, hook) = serve(&[]).await;
    let hooks = webhooks().with_event_webhook(url.clone());
    let mut c = call("");
    c.hook = hooks.global_event_hook().unwrap();
    c.event = Some(Event::normal(
        "New revision detected! Scaling up podinfo.test",
    ));
    assert_eq!(hooks.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
    assert_eq!(hook.seen()[0].1["metadata"]["eventType"], "Normal");
    let none = webhooks().with_event_webhook("");
    assert!(none.global_event_hook().is_none());
    assert_eq!(none.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
    assert_eq!(hook.seen().len(), 1);
}

#[tokio::test]
async fn disable_tls_builds_one_insecure_client() {
    let (url, _) = serve(&[]).await;
    let hooks = webhooks();
    let mut c = call(&url);
    c.hook.disable_tls = true;
    assert_eq!(hooks.call(&c, soon()).await, Ok(WebhookAnswer::Ok));
    assert!(hooks.inner.insecure.get().is_some());
}
