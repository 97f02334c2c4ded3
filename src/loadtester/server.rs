//! The HTTP API: `POST /` tasks, the manual gates, `/healthz`, `/metrics`.
//! Like Go's `ServeMux`, routes answer any method and `/` catches every other
//! path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Deserialize;

use super::gates::{Gates, gate_key, rollback_key};
use super::tasks::{Invocation, Runner, Submitted};
use regex::Regex;

/// Shared state of the server.
#[derive(Debug)]
pub struct App {
    pub runner: Arc<Runner>,
    pub gates: Gates,
    /// `-namespace-regexp`; `None` accepts every namespace.
    pub namespaces: Option<Regex>,
}

/// Flagger's `CanaryWebhookPayload`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub checksum: String,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

/// What a `POST /` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Asynchronous `sh -c`.
    Cmd { cmd: String, log_output: bool },
    /// Blocking; answers with the output when `return_output`.
    Blocking {
        inv: Invocation,
        return_output: bool,
    },
}

/// A request refused before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub message: String,
}

fn reject(status: StatusCode, message: impl Into<String>) -> Rejection {
    Rejection {
        status,
        message: message.into(),
    }
}

/// Decides what a task payload asks for.
pub fn plan(payload: &Payload, namespaces: Option<&Regex>) -> Result<Task, Rejection> {
    if namespaces.is_some_and(|p| !p.is_match(&payload.namespace)) {
        return Err(reject(StatusCode::FORBIDDEN, "Forbidden"));
    }
    let Some(metadata) = payload.metadata.as_ref().filter(|m| !m.is_empty()) else {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "metadata not found in payload",
        ));
    };
    let typ = metadata.get("type").map_or("cmd", String::as_str);
    let flag = |key: &str| metadata.get(key).is_some_and(|v| go_parse_bool(v));
    let cmd = metadata.get("cmd").cloned().unwrap_or_default();
    let blocking = |inv| {
        Ok(Task::Blocking {
            inv,
            return_output: flag("returnCmdOutput"),
        })
    };
    match typ {
        "cmd" => match metadata.get("cmd") {
            Some(cmd) => Ok(Task::Cmd {
                cmd: cmd.clone(),
                log_output: flag("logCmdOutput"),
            }),
            None => Err(reject(StatusCode::BAD_REQUEST, "cmd not found in metadata")),
        },
        "bash" => blocking(Invocation::bash(&cmd)),
        "kubectl" => blocking(Invocation::tool("kubectl", &cmd)),
        // Flagger's image ships Helm v3 as `helm`; `helmv3` is the old name.
        "helm" | "helmv3" => blocking(Invocation::tool("helm", &cmd)),
        "concord" | "ngrinder" => Err(reject(
            StatusCode::BAD_REQUEST,
            format!("task type {typ} is not supported by serin-loadtester"),
        )),
        other => Err(reject(
            StatusCode::BAD_REQUEST,
            format!("unknown task type {other}"),
        )),
    }
}

/// Go's `strconv.ParseBool`, with errors read as false.
pub fn go_parse_bool(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

type St = State<Arc<App>>;

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", any(|| async { (StatusCode::OK, "OK") }))
        .route("/metrics", any(metrics))
        .route(
            "/gate/approve",
            any(|| async { (StatusCode::OK, "Approved") }),
        )
        .route(
            "/gate/halt",
            any(|| async { (StatusCode::FORBIDDEN, "Forbidden") }),
        )
        .route(
            "/gate/check",
            any(|s: St, b: Bytes| gate(s, b, Kind::Gate, Action::Check)),
        )
        .route(
            "/gate/open",
            any(|s: St, b: Bytes| gate(s, b, Kind::Gate, Action::Open)),
        )
        .route(
            "/gate/close",
            any(|s: St, b: Bytes| gate(s, b, Kind::Gate, Action::Close)),
        )
        .route(
            "/rollback/check",
            any(|s: St, b: Bytes| gate(s, b, Kind::Rollback, Action::Check)),
        )
        .route(
            "/rollback/open",
            any(|s: St, b: Bytes| gate(s, b, Kind::Rollback, Action::Open)),
        )
        .route(
            "/rollback/close",
            any(|s: St, b: Bytes| gate(s, b, Kind::Rollback, Action::Close)),
        )
        .fallback(task)
        .with_state(app)
}

/// The payload, or `None` (answered 400 with no body, as Flagger does).
fn decode(body: &[u8]) -> Option<Payload> {
    serde_json::from_slice(body)
        .inspect_err(|e| tracing::error!(error = %e, "decoding the request body failed"))
        .ok()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Gate,
    Rollback,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Check,
    Open,
    Close,
}

async fn gate(State(app): State<Arc<App>>, body: Bytes, kind: Kind, action: Action) -> Response {
    let Some(payload) = decode(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (key, noun) = match kind {
        Kind::Gate => (gate_key(&payload.name, &payload.namespace), "gate"),
        Kind::Rollback => (rollback_key(&payload.name, &payload.namespace), "rollback"),
    };
    match action {
        Action::Check => {
            let approved = app.gates.is_open(&key);
            tracing::info!("{key} {noun} check: approved {approved}");
            if approved {
                (StatusCode::OK, "Approved").into_response()
            } else {
                (StatusCode::FORBIDDEN, "Forbidden").into_response()
            }
        }
        Action::Open => {
            app.gates.open(&key);
            tracing::info!("{key} {noun} opened");
            StatusCode::ACCEPTED.into_response()
        }
        Action::Close => {
            app.gates.close(&key);
            tracing::info!("{key} {noun} closed");
            StatusCode::ACCEPTED.into_response()
        }
    }
}

async fn task(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let Some(payload) = decode(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let canary = gate_key(&payload.name, &payload.namespace);
    match plan(&payload, app.namespaces.as_ref()) {
        Err(rejection) => (rejection.status, rejection.message).into_response(),
        Ok(Task::Cmd { cmd, log_output }) => {
            if app.runner.submit(&canary, &cmd, log_output) == Submitted::Started {
                tracing::debug!(canary, "task queued {cmd}");
            }
            StatusCode::ACCEPTED.into_response()
        }
        Ok(Task::Blocking { inv, return_output }) => {
            tracing::info!(canary, "running command {} {}", inv.program, inv.command);
            match app.runner.run(&inv).await {
                Ok(out) => {
                    tracing::info!(canary, "{}", String::from_utf8_lossy(&out));
                    tracing::info!(canary, "command finished {}", inv.command);
                    let body = if return_output { out } else { Vec::new() };
                    (StatusCode::OK, body).into_response()
                }
                Err(e) => {
                    tracing::error!(canary, "{e}");
                    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                }
            }
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let stats = &app.runner.stats;
    let lines = [
        (
            "tasks_started_total",
            "counter",
            "Task commands started.",
            stats.started.load(Ordering::Relaxed),
        ),
        (
            "tasks_failed_total",
            "counter",
            "Task commands that failed or timed out.",
            stats.failed.load(Ordering::Relaxed),
        ),
        (
            "tasks_skipped_total",
            "counter",
            "cmd tasks skipped because the same one was running.",
            stats.skipped.load(Ordering::Relaxed),
        ),
        (
            "tasks_running",
            "gauge",
            "cmd tasks running now.",
            app.runner.running() as u64,
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in lines {
        text.push_str(&format!(
            "# HELP serin_loadtester_{name} {help}\n# TYPE serin_loadtester_{name} {kind}\nserin_loadtester_{name} {value}\n"
        ));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
