//! Start-up failures of the operator that need no cluster: a fake API server
//! on 127.0.0.1 that knows no Flagger CRD.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// Answers every request as an API server without the resource would.
async fn not_found() -> impl IntoResponse {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "code": 404
    });
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

#[tokio::test]
async fn a_missing_crd_stops_the_operator_with_its_name() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().fallback(not_found))
            .await
            .unwrap();
    });
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(["-master", &format!("http://{addr}")])
        .args(["-port", &http_port.to_string()])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("serin should exit on its own")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Canary CRD is not registered"),
        "the error names the CRD: {stderr}"
    );
}
