//! Test support for the end-to-end tests: the local control plane started by
//! `make cluster-up` (see tests/cluster/), a kube-rs client, a namespace per
//! test, and the Prometheus URL. A test that needs the cluster fails with a
//! clear message when the testbed environment is missing: it never skips.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod api_cost;
pub mod audit;
pub mod cli;
pub mod external_metrics;
pub mod fleet;
pub mod gateway;
pub mod helm;
pub mod hooks;
pub mod istio;
pub mod nginx;
pub mod operator;
pub mod podinfo;
pub mod scrape;
pub mod third_party;
pub mod traffic;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, Config};

const HOW_TO: &str = "start the local control plane with `make cluster-up` and `source target/testbed/env`, \
or run everything with `make test`";

/// reqwest is built without a TLS provider (the binary installs ring at
/// start): tests that make HTTP clients install the same one first.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What `tests/cluster/cluster-up.sh` writes into `target/testbed/env`.
#[derive(Clone, Debug)]
pub struct TestEnv {
    pub kubeconfig: PathBuf,
    pub prometheus_url: String,
    pub prometheus_targets_file: PathBuf,
    pub bin: PathBuf,
}

impl TestEnv {
    /// Reads the testbed environment from the process environment.
    pub fn from_env() -> TestEnv {
        install_crypto();
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        match Self::from_vars(&vars) {
            Ok(env) => env,
            Err(msg) => panic!("{msg}"),
        }
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<TestEnv, String> {
        let need = |name: &str| {
            vars.get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("this test needs the local Kubernetes control plane, but {name} is not set: {HOW_TO}"))
        };
        let env = TestEnv {
            kubeconfig: need("KUBECONFIG")?.into(),
            prometheus_url: need("PROMETHEUS_URL")?,
            prometheus_targets_file: need("PROMETHEUS_TARGETS_FILE")?.into(),
            bin: need("TESTBED_BIN")?.into(),
        };
        if !env.kubeconfig.is_file() {
            return Err(format!(
                "KUBECONFIG {} does not exist: {HOW_TO}",
                env.kubeconfig.display()
            ));
        }
        Ok(env)
    }

    /// A kube-rs client for the testbed's admin user.
    pub async fn client(&self) -> Client {
        let options = kube::config::KubeConfigOptions::default();
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", self.kubeconfig.display()));
        Client::try_from(config).expect("kube client")
    }

    /// A testbed tool (kubectl, helm) by name.
    pub fn tool(&self, name: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin.join(name));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }
}

/// The testbed, a client, and a namespace that is deleted when this is dropped
/// (also when the test fails).
pub struct TestCluster {
    pub env: TestEnv,
    pub client: Client,
    pub namespace: String,
    started: Instant,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Gap between two tests' starts. The suite starts dozens of tests at once
/// (RUST_TEST_THREADS), each with its own operator whose first lists and
/// writes, all in the same second, starved the API server on two cores (a
/// 60 s request timeout); spread over half a minute they do not. Pacing
/// only: nothing is measured against it.
const START_GAP: Duration = Duration::from_millis(400);
static NEXT_START: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// Waits for this test's start slot, [`START_GAP`] after the previous one's.
async fn paced_start() {
    let slot = {
        let mut next = NEXT_START.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + START_GAP);
        slot
    };
    tokio::time::sleep_until(slot.into()).await;
}

impl TestCluster {
    /// Connects and creates a fresh namespace named after `test`.
    pub async fn new(test: &str) -> TestCluster {
        paced_start().await;
        let env = TestEnv::from_env();
        let client = env.client().await;
        third_party::install_all(&client).await;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let slug: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(30)
            .collect();
        let namespace = format!(
            "t-{}-{:x}{:x}{}",
            slug.trim_matches('-'),
            std::process::id(),
            nanos % 0xfff,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": namespace, "labels": { "serin.dev/test": "true" } }
        }))
        .expect("namespace object");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace {namespace} on the testbed: {e}"));
        TestCluster {
            env,
            client,
            namespace,
            started: Instant::now(),
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        record_time(self.started.elapsed());
        // The test's runtime may be unwinding or blocked here, so the delete
        // runs on a runtime and a client of its own.
        let env = self.env.clone();
        let namespace = self.namespace.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async move {
                let client = env.client().await;
                Api::<Namespace>::all(client)
                    .delete(&namespace, &DeleteParams::background())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(done, Ok(Some(_))) {
            eprintln!(
                "warning: could not delete test namespace {}",
                self.namespace
            );
        }
    }
}

/// Where `make test` wants each test's wall time (tests/run.sh prints them).
const TIMES_VAR: &str = "SERIN_TEST_TIMES";

/// Appends `<test name>\t<seconds>` to the file named by `SERIN_TEST_TIMES`,
/// if set. libtest names each test's thread after the test, and a test's
/// body (with its `TestCluster`) lives on that thread.
fn record_time(elapsed: Duration) {
    let Some(path) = std::env::var_os(TIMES_VAR) else {
        return;
    };
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    let line = format!("{name}\t{:.1}\n", elapsed.as_secs_f64());
    // One short write with O_APPEND: lines from parallel tests do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = written {
        eprintln!("warning: cannot record the test time in {path:?}: {e}");
    }
}

/// Polls `check` until it returns `Some`, or fails the test after `timeout`
/// with `what` and the last observation.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Path of a file under `../shared` (the shared data beside the repository).
pub fn shared(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(path)
}

/// Runs an instant query against the testbed's Prometheus and returns the
/// `data.result` array.
pub async fn prometheus_query(env: &TestEnv, query: &str) -> Vec<serde_json::Value> {
    let url = format!("{}/api/v1/query", env.prometheus_url);
    let body: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .query(&[("query", query)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("prometheus at {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("prometheus answer: {e}"));
    assert_eq!(body["status"], "success", "query {query} failed: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The first sample of `query`, a finite number, or what Prometheus said.
pub async fn query_value(env: &TestEnv, query: &str) -> Result<f64, String> {
    let result = prometheus_query(env, query).await;
    result
        .first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{query} -> {result:?}"))
}
