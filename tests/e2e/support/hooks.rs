//! A webhook test server on 127.0.0.1 that plays flagger-loadtester's gate
//! endpoints (BEHAVIOUR.md §6.1) and records every payload it receives.
//!
//! | path | answer |
//! |---|---|
//! | `/gate/check` | 200 `Approved` when the gate of `<name>.<namespace>` is open, else 403 `Forbidden` (default closed) |
//! | `/gate/open`, `/gate/close` | 202, open/close that gate |
//! | `/gate/approve` | 200 always |
//! | `/gate/halt` | 403 always |
//! | `/rollback/check` | 200 when the rollback gate of `<name>.<namespace>` is open, else 403 |
//! | `/rollback/open`, `/rollback/close` | 202 |
//! | `/ok` | 200 |
//! | `/fail` | 500 with [`FAIL_BODY`] |
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde_json::Value;
use tokio::net::TcpListener;

/// The body `/fail` answers with (the operator puts it in its Warning event).
pub const FAIL_BODY: &str = "hook failed on purpose";

/// One request the server received.
#[derive(Clone, Debug)]
pub struct HookCall {
    pub path: String,
    /// The JSON payload (`Value::String` with the raw text when it was not JSON).
    pub payload: Value,
}

impl HookCall {
    pub fn field(&self, name: &str) -> &str {
        self.payload[name].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    gates: HashSet<String>,
    rollback_gates: HashSet<String>,
    calls: Vec<HookCall>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct HookServer {
    pub port: u16,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl HookServer {
    pub async fn start() -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state: Shared = Arc::default();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HookServer {
            port,
            state,
            server,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn open_gate(&self, name: &str, namespace: &str) {
        self.lock().gates.insert(format!("{name}.{namespace}"));
    }

    pub fn close_gate(&self, name: &str, namespace: &str) {
        self.lock().gates.remove(&format!("{name}.{namespace}"));
    }

    pub fn open_rollback(&self, name: &str, namespace: &str) {
        self.lock()
            .rollback_gates
            .insert(format!("{name}.{namespace}"));
    }

    /// Every call received so far, in arrival order.
    pub fn calls(&self) -> Vec<HookCall> {
        self.lock().calls.clone()
    }

    /// The calls received on `path`.
    pub fn calls_to(&self, path: &str) -> Vec<HookCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect()
    }

    /// One line per call, for failure reports.
    pub fn summary(&self) -> String {
        self.calls()
            .iter()
            .map(|c| format!("{} {}\n", c.path, c.payload))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(State(state): State<Shared>, uri: Uri, body: Bytes) -> (StatusCode, String) {
    let path = uri.path().to_string();
    let payload: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let key = format!(
        "{}.{}",
        payload["name"].as_str().unwrap_or_default(),
        payload["namespace"].as_str().unwrap_or_default()
    );
    let mut inner = state.lock().unwrap_or_else(|e| e.into_inner());
    inner.calls.push(HookCall {
        path: path.clone(),
        payload,
    });
    let approved = (StatusCode::OK, "Approved".to_string());
    let forbidden = (StatusCode::FORBIDDEN, "Forbidden".to_string());
    let accepted = (StatusCode::ACCEPTED, String::new());
    match path.as_str() {
        "/gate/check" if inner.gates.contains(&key) => approved,
        "/gate/check" => forbidden,
        "/gate/open" => {
            inner.gates.insert(key);
            accepted
        }
        "/gate/close" => {
            inner.gates.remove(&key);
            accepted
        }
        "/gate/approve" => approved,
        "/gate/halt" => forbidden,
        "/rollback/check" if inner.rollback_gates.contains(&key) => approved,
        "/rollback/check" => forbidden,
        "/rollback/open" => {
            inner.rollback_gates.insert(key);
            accepted
        }
        "/rollback/close" => {
            inner.rollback_gates.remove(&key);
            accepted
        }
        "/ok" => (StatusCode::OK, "ok".to_string()),
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, FAIL_BODY.to_string()),
        _ => (StatusCode::NOT_FOUND, format!("no such hook {path}")),
    }
}
