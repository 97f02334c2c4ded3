//! `serin-loadtester` (the drop-in for flagger-loadtester) as a process on
//! 127.0.0.1, its output captured for failure reports.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::eventually;

/// `serin-loadtester -port <free>` on 127.0.0.1, killed on drop.
pub struct LoadTester {
    pub port: u16,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl LoadTester {
    pub async fn start() -> LoadTester {
        let bin = env!("CARGO_BIN_EXE_serin-loadtester");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut child = Command::new(bin)
            .args(["-port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn serin-loadtester");
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let lt = LoadTester { port, child, logs };
        let healthz = lt.url("/healthz");
        eventually("serin-loadtester /healthz", Duration::from_secs(30), || {
            let url = healthz.clone();
            async move {
                match reqwest::get(&url).await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
        lt
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn logs(&self) -> String {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

impl Drop for LoadTester {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
