//! A chat receiver for alerts: Slack- and MS Teams-compatible incoming
//! webhooks on 127.0.0.1 that record every JSON post.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde_json::Value;
use tokio::net::TcpListener;

/// (path, payload) of every post, in arrival order.
type Posts = Arc<Mutex<Vec<(String, Value)>>>;

/// A Slack- and Teams-compatible incoming-webhook receiver recording every
/// JSON post, by path (`/slack`, `/teams`).
pub struct ChatReceiver {
    pub port: u16,
    posts: Posts,
    server: tokio::task::JoinHandle<()>,
}

impl ChatReceiver {
    pub async fn start() -> ChatReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts: Posts = Arc::default();
        let app = Router::new()
            .fallback(
                |State(posts): State<Posts>, uri: Uri, body: Bytes| async move {
                    let payload = serde_json::from_slice(&body)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
                    posts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((uri.path().to_string(), payload));
                    (StatusCode::OK, "ok")
                },
            )
            .with_state(posts.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ChatReceiver {
            port,
            posts,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The payloads posted to `path`, in arrival order.
    pub fn posts(&self, path: &str) -> Vec<Value> {
        let posts = self.posts.lock().unwrap_or_else(|e| e.into_inner());
        posts
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for ChatReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
