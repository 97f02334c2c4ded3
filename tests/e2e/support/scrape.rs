//! A Prometheus scrape target for tests: a tiny HTTP server on 127.0.0.1 that
//! serves whatever metrics text the test sets, registered in the testbed's
//! `file_sd` targets file for as long as it lives.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct ScrapeTarget {
    pub address: String,
    pub label: String,
    body: Arc<Mutex<String>>,
    targets_file: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl ScrapeTarget {
    /// Starts serving and registers the target with the label `testbed_target=<label>`.
    pub async fn start(targets_file: &Path, label: &str) -> ScrapeTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let body = Arc::new(Mutex::new(String::new()));
        let served = body.clone();
        let server = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let text = served.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        text.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(text.as_bytes()).await;
                });
            }
        });
        let target = ScrapeTarget {
            address,
            label: label.to_string(),
            body,
            targets_file: targets_file.to_path_buf(),
            server,
        };
        edit_targets(&target.targets_file, |groups| {
            groups.push(json!({ "targets": [target.address], "labels": { "testbed_target": target.label } }));
        });
        target
    }

    /// Replaces the metrics text served from now on.
    pub fn set(&self, text: &str) {
        *self.body.lock().unwrap() = text.to_string();
    }
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        self.server.abort();
        let address = self.address.clone();
        edit_targets(&self.targets_file, |groups| {
            groups.retain(|g| g["targets"][0] != Value::String(address.clone()));
        });
    }
}

/// Read-modify-write of the shared targets file under an exclusive lock, since
/// tests run in parallel. Prometheus re-reads it every second.
fn edit_targets(path: &Path, edit: impl FnOnce(&mut Vec<Value>)) {
    let mut file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    file.lock().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let mut groups: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
    edit(&mut groups);
    let out = serde_json::to_string_pretty(&groups).unwrap();
    file.set_len(0).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(out.as_bytes()).unwrap();
    file.unlock().unwrap();
}
