//! Runs the `serin-loadtester` binary on a free port and talks to it over
//! HTTP as Flagger would. No cluster needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use serde_json::{Value, json};

struct Loadtester {
    base: String,
    log: std::path::PathBuf,
    _dir: TempDir,
    _child: tokio::process::Child,
}

/// A scratch directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("serin-lt-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

impl Loadtester {
    async fn start() -> Self {
        let dir = TempDir::new();
        let log = dir.0.join("loadtester.log");
        let port = free_port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_serin-loadtester"))
            .args(["-port", &port.to_string(), "-timeout", "30s"])
            .args(["-namespace-regexp", "^(test|loadtester)$"])
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(r) = client().get(format!("{base}/healthz")).send().await {
                assert_eq!(r.text().await.unwrap(), "OK");
                return Self {
                    base,
                    log,
                    _dir: dir,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serin-loadtester did not start");
    }

    async fn post(&self, path: &str, body: Value) -> (u16, String) {
        let response = client()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn hook(metadata: Value) -> Value {
    json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc", "metadata": metadata})
}

/// A tiny HTTP server counting requests and remembering Host headers.
async fn target() -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let (h, seen) = (hits.clone(), hosts.clone());
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let (h, seen) = (h.clone(), seen.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            let host = headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            seen.lock().unwrap().push(host.to_string());
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits, hosts)
}

#[tokio::test]
async fn gates_open_close_and_check() {
    let lt = Loadtester::start().await;
    let canary = json!({"name": "podinfo", "namespace": "test", "phase": "Progressing"});
    assert_eq!(
        lt.post("/gate/check", canary.clone()).await,
        (403, "Forbidden".into())
    );
    assert_eq!(lt.post("/gate/open", canary.clone()).await.0, 202);
    assert_eq!(
        lt.post("/gate/check", canary.clone()).await,
        (200, "Approved".into())
    );
    let other = json!({"name": "podinfo", "namespace": "other"});
    assert_eq!(lt.post("/gate/check", other).await.0, 403);
    assert_eq!(lt.post("/gate/close", canary.clone()).await.0, 202);
    assert_eq!(lt.post("/gate/check", canary.clone()).await.0, 403);

    assert_eq!(lt.post("/rollback/check", canary.clone()).await.0, 403);
    assert_eq!(lt.post("/rollback/open", canary.clone()).await.0, 202);
    assert_eq!(
        lt.post("/rollback/check", canary.clone()).await,
        (200, "Approved".into())
    );
    assert_eq!(
        lt.post("/gate/check", canary.clone()).await.0,
        403,
        "separate keys"
    );
    assert_eq!(lt.post("/rollback/close", canary.clone()).await.0, 202);
    assert_eq!(lt.post("/rollback/check", canary.clone()).await.0, 403);

    assert_eq!(
        lt.post("/gate/approve", canary.clone()).await,
        (200, "Approved".into())
    );
    assert_eq!(
        lt.post("/gate/halt", canary).await,
        (403, "Forbidden".into())
    );
    let bad = client()
        .post(format!("{}/gate/open", lt.base))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let metrics = client()
        .get(format!("{}/metrics", lt.base))
        .send()
        .await
        .unwrap();
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("serin_loadtester_tasks_started_total")
    );
}

#[tokio::test]
async fn bad_payloads_are_refused() {
    let lt = Loadtester::start().await;
    let no_metadata = json!({"name": "podinfo", "namespace": "test"});
    assert_eq!(
        lt.post("/", no_metadata).await,
        (400, "metadata not found in payload".into())
    );
    let prod = json!({"name": "podinfo", "namespace": "prod", "metadata": {"cmd": "true"}});
    assert_eq!(lt.post("/", prod).await, (403, "Forbidden".into()));
    let unknown = hook(json!({"type": "wrk", "cmd": "x"}));
    assert_eq!(
        lt.post("/", unknown).await,
        (400, "unknown task type wrk".into())
    );
    let (status, body) = lt.post("/", hook(json!({"type": "ngrinder"}))).await;
    assert_eq!(status, 400);
    assert!(body.contains("not supported"), "{body}");
}

#[tokio::test]
async fn bash_tasks_block_and_return_output() {
    let lt = Loadtester::start().await;
    let ok = hook(json!({"type": "bash", "cmd": "echo hello from $0", "returnCmdOutput": "true"}));
    assert_eq!(lt.post("/", ok).await, (200, "hello from bash\n".into()));
    let quiet = hook(json!({"type": "bash", "cmd": "echo hidden"}));
    assert_eq!(lt.post("/", quiet).await, (200, String::new()));
    let (status, body) = lt
        .post(
            "/",
            hook(json!({"type": "bash", "cmd": "echo nope; exit 3"})),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "command echo nope; exit 3 failed: nope\n: exit status 3"
    );

    // The bundled hey answers a bash script too.
    let (url, hits, _) = target().await;
    let run_hey = hook(
        json!({"type": "bash", "cmd": format!("hey -n 4 -c 2 {url}"), "returnCmdOutput": "true"}),
    );
    let (status, body) = lt.post("/", run_hey).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[200]\t4 responses"), "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn cmd_tasks_run_hey_in_the_background() {
    let lt = Loadtester::start().await;
    let (url, hits, hosts) = target().await;
    let cmd = format!("hey -z 1s -q 10 -c 2 -host app.example.com {url}");
    let started = std::time::Instant::now();
    assert_eq!(
        lt.post("/", hook(json!({"cmd": cmd, "logCmdOutput": "true"})))
            .await
            .0,
        202
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "cmd is asynchronous"
    );
    for _ in 0..100 {
        if lt.logs().contains("command finished") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = hits.load(Ordering::SeqCst);
    // Two workers at 10 requests/s for one second.
    assert!(
        (10..=24).contains(&count),
        "{count} requests\n{}",
        lt.logs()
    );
    assert!(hosts.lock().unwrap().iter().all(|h| h == "app.example.com"));
    assert!(
        lt.logs().contains("Status code distribution"),
        "{}",
        lt.logs()
    );
}

#[tokio::test]
async fn a_running_cmd_is_deduplicated() {
    let lt = Loadtester::start().await;
    let marker = lt.log.with_file_name("runs");
    let cmd = format!("echo run >> {}; sleep 1", marker.display());
    for _ in 0..3 {
        assert_eq!(lt.post("/", hook(json!({"cmd": cmd}))).await.0, 202);
    }
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let runs = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(runs.lines().count(), 1, "{runs}");
    assert!(lt.logs().contains("command skipped"), "{}", lt.logs());
    assert!(lt.logs().contains("is already running"));
    // Finished, so it runs again.
    assert_eq!(lt.post("/", hook(json!({"cmd": cmd}))).await.0, 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 2);
}
