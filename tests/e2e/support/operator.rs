//! The operator under test as a separate process (`serin` with Flagger's
//! flags, restricted to the test's namespace), its captured logs, and a test
//! rig (`OperatorTest`) that bundles a namespace, the CRDs, a webhook server
//! and the operator, and prints the operator's logs, `kubectl describe
//! canary` and the namespace's events when the test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::hooks::HookServer;
use super::{TestCluster, TestEnv, eventually};

/// How many operator log lines a failure report shows.
const LOG_TAIL: usize = 100;

type Logs = Arc<Mutex<Vec<String>>>;

/// A running `serin` operator process.
pub struct Operator {
    env: TestEnv,
    namespace: String,
    extra_args: Vec<String>,
    child: Option<Child>,
    logs: Logs,
    /// The `-port` of the current process (a fresh one on every start).
    pub port: u16,
}

impl Operator {
    /// Spawns `serin -kubeconfig .. -namespace <namespace> -mesh-provider
    /// kubernetes -port <free> -log-level debug -enable-config-tracking=true
    /// -metrics-server <testbed prometheus> <extra_args>` and waits for
    /// `/healthz`. `extra_args` must not repeat those flags.
    pub async fn start(env: &TestEnv, namespace: &str, extra_args: &[&str]) -> Operator {
        let mut op = Operator {
            env: env.clone(),
            namespace: namespace.to_string(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            logs: Arc::default(),
            port: 0,
        };
        op.spawn().await;
        op
    }

    async fn spawn(&mut self) {
        self.port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_serin"));
        cmd.arg("-kubeconfig")
            .arg(&self.env.kubeconfig)
            .args(["-namespace", &self.namespace])
            .args(["-mesh-provider", "kubernetes"])
            .args(["-port", &self.port.to_string()])
            .args(["-log-level", "debug"])
            .arg("-enable-config-tracking=true")
            .args(["-metrics-server", &self.env.prometheus_url])
            .args(&self.extra_args)
            .env("KUBECONFIG", &self.env.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn the serin binary");
        pump(child.stdout.take().unwrap(), self.logs.clone());
        pump(child.stderr.take().unwrap(), self.logs.clone());
        self.child = Some(child);
        self.wait_healthy().await;
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                // Let the pumps drain the last lines.
                tokio::time::sleep(Duration::from_millis(300)).await;
                panic!(
                    "the operator exited with {status} before /healthz answered; its last log lines:\n{}",
                    self.tail(LOG_TAIL)
                );
            }
            if healthz(self.port).await {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the operator's /healthz on port {} did not answer 200 OK within 60s; its last log lines:\n{}",
                    self.port,
                    self.tail(LOG_TAIL)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// SIGKILL (`kill -9`), then reaps the process.
    pub async fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.note("---- test: operator killed with SIGKILL ----");
    }

    /// Kills the process if it still runs and starts it again with the same
    /// arguments (on a fresh port), waiting for `/healthz`.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.kill_hard().await;
        }
        self.note("---- test: operator restarted ----");
        self.spawn().await;
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `/healthz` answers 200 `OK`.
    pub async fn healthy(&self) -> bool {
        healthz(self.port).await
    }

    /// Every line both output streams printed so far (all runs).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last `n` lines, one string.
    pub fn tail(&self, n: usize) -> String {
        let logs = self.logs();
        logs[logs.len().saturating_sub(n)..].join("\n")
    }

    /// The `msg` of every JSON log line whose `canary` is `<name>.<namespace>`,
    /// in order.
    pub fn messages(&self, canary: &str) -> Vec<String> {
        self.logs()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v["canary"].as_str() == Some(canary))
            .filter_map(|v| v["msg"].as_str().map(str::to_string))
            .collect()
    }

    fn note(&self, line: &str) {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.to_string());
    }

    /// Sends SIGKILL without waiting (for `Drop`).
    fn kill_now(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill_now();
    }
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(stream: R, logs: Logs) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            logs.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// `GET /healthz` with a plain HTTP/1.1 request: 200 with body `OK`.
async fn healthz(port: u16) -> bool {
    let exchange = async {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.ok()?;
        Some(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(3), exchange).await {
        Ok(Some(answer)) => {
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
            head.split_whitespace().nth(1) == Some("200") && body.contains("OK")
        }
        _ => false,
    }
}

/// Applies Serin's CRDs (deploy/crds/*.yaml) with server-side apply (the
/// smoke tests' field manager, so the last writer owns every field) and
/// waits until they are Established.
pub async fn install_crds(client: &Client) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for file in [
        "canaries.yaml",
        "metrictemplates.yaml",
        "alertproviders.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for doc in docs.into_iter().filter(Value::is_object) {
            let crd: CustomResourceDefinition = serde_json::from_value(doc).unwrap();
            let name = crd.metadata.name.clone().unwrap();
            api.patch(
                &name,
                &PatchParams::apply("serin-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
            names.push(name);
        }
    }
    for name in names {
        eventually(
            &format!("CRD {name} to be Established"),
            Duration::from_secs(30),
            || async {
                let crd = api.get(&name).await.map_err(|e| e.to_string())?;
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                match conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                {
                    true => Ok(()),
                    false => Err(format!("{conditions:?}")),
                }
            },
        )
        .await;
    }
}

/// A Kubernetes Event about a Canary, as the tests read it.
#[derive(Clone, Debug)]
pub struct CanaryEvent {
    pub object: String,
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// `count` or `series.count`, at least 1.
    pub count: i32,
    pub first: Option<Timestamp>,
}

/// The test's namespace, CRDs, webhook server and operator. Fields drop in
/// order: operator first, the namespace last.
pub struct OperatorTest {
    pub op: Operator,
    pub hooks: HookServer,
    pub tc: TestCluster,
}

impl OperatorTest {
    pub async fn start(test: &str) -> OperatorTest {
        let tc = TestCluster::new(test).await;
        install_crds(&tc.client).await;
        let hooks = HookServer::start().await;
        let op = Operator::start(&tc.env, &tc.namespace, &[]).await;
        OperatorTest { op, hooks, tc }
    }

    pub fn ns(&self) -> &str {
        &self.tc.namespace
    }

    /// `<name>.<namespace>`, the form Flagger's messages use.
    pub fn key(&self, name: &str) -> String {
        format!("{name}.{}", self.tc.namespace)
    }

    /// Server-side applies any namespaced object given as JSON (with
    /// `apiVersion`, `kind`, `metadata.name`) into the test's namespace.
    pub async fn apply(&self, obj: &Value) {
        let api_version = obj["apiVersion"].as_str().expect("apiVersion");
        let kind = obj["kind"].as_str().expect("kind");
        let name = obj["metadata"]["name"].as_str().expect("metadata.name");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> = Api::namespaced_with(self.tc.client.clone(), self.ns(), &ar);
        api.patch(
            name,
            &PatchParams::apply("serin-e2e").force(),
            &Patch::Apply(obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }

    pub fn canaries(&self) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("flagger.app", "v1beta1", "Canary");
        Api::namespaced_with(
            self.tc.client.clone(),
            self.ns(),
            &ApiResource::from_gvk(&gvk),
        )
    }

    /// The Canary's `.status` (`Null` before the operator wrote one).
    pub async fn status(&self, name: &str) -> Value {
        let canary = self
            .canaries()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get canary {name}: {e}"));
        canary.data["status"].clone()
    }

    pub async fn phase(&self, name: &str) -> String {
        self.status(name).await["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls every second until `status.phase == phase`; a Canary that
    /// reaches `Failed` while another phase is awaited fails at once.
    pub async fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> Value {
        eventually(
            &format!("canary {name} to reach phase {phase}"),
            timeout,
            || async {
                let status = self.status(name).await;
                let now = status["phase"].as_str().unwrap_or_default();
                if now == phase {
                    return Ok(status);
                }
                if now == "Failed" {
                    panic!("canary {name} failed while waiting for {phase}: {status}");
                }
                tokio::time::sleep(Duration::from_millis(750)).await;
                Err(format!("phase {now:?}, status {status}"))
            },
        )
        .await
    }

    /// Every Event about a Canary in the namespace, oldest first.
    pub async fn events(&self) -> Vec<CanaryEvent> {
        let api: Api<Event> = self.tc.api();
        let list = api.list(&ListParams::default()).await.expect("list events");
        let mut events: Vec<CanaryEvent> = list
            .items
            .into_iter()
            .filter(|e| e.involved_object.kind.as_deref() == Some("Canary"))
            .map(|e| {
                let series = e.series.as_ref().and_then(|s| s.count).unwrap_or(0);
                CanaryEvent {
                    object: e.involved_object.name.clone().unwrap_or_default(),
                    type_: e.type_.clone().unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    message: e.message.clone().unwrap_or_default(),
                    count: e.count.unwrap_or(1).max(series).max(1),
                    first: e
                        .event_time
                        .map(|t| t.0)
                        .or(e.first_timestamp.map(|t| t.0))
                        .or(e.metadata.creation_timestamp.map(|t| t.0)),
                }
            })
            .collect();
        events.sort_by_key(|e| e.first);
        events
    }

    /// The total count of Events whose message is exactly `message`.
    pub async fn event_count(&self, message: &str) -> i32 {
        self.events()
            .await
            .iter()
            .filter(|e| e.message == message)
            .map(|e| e.count)
            .sum()
    }

    /// Waits for an Event whose message starts with `prefix`.
    pub async fn wait_event(&self, prefix: &str, timeout: Duration) -> CanaryEvent {
        eventually(
            &format!("an event starting with {prefix:?}"),
            timeout,
            || async {
                let events = self.events().await;
                match events.iter().find(|e| e.message.starts_with(prefix)) {
                    Some(e) => Ok(e.clone()),
                    None => {
                        tokio::time::sleep(Duration::from_millis(750)).await;
                        Err(format!(
                            "{} events, last {:?}",
                            events.len(),
                            events.last().map(|e| &e.message)
                        ))
                    }
                }
            },
        )
        .await
    }

    /// Runs kubectl with `-n <namespace>` without blocking the runtime.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::from(self.tc.env.tool("kubectl"));
        cmd.args(["-n", self.ns()]).args(args);
        cmd.output().await.expect("run kubectl")
    }

    /// The operator's log tail, `kubectl describe canary`, the namespace's
    /// events and objects, and the webhook calls.
    pub fn report(&self) -> String {
        let kubectl = |args: &[&str]| {
            let out = self
                .tc
                .env
                .tool("kubectl")
                .args(["-n", self.ns()])
                .args(args)
                .output();
            match out {
                Ok(o) => format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => format!("kubectl failed: {e}"),
            }
        };
        format!(
            "\n===== operator logs (last {LOG_TAIL} lines) =====\n{}\n\
             ===== kubectl describe canary =====\n{}\n\
             ===== kubectl get events =====\n{}\n\
             ===== workloads =====\n{}\n\
             ===== webhook calls =====\n{}",
            self.op.tail(LOG_TAIL),
            kubectl(&["describe", "canary"]),
            kubectl(&["get", "events", "--sort-by=.metadata.creationTimestamp"]),
            kubectl(&["get", "deploy,ds,svc,hpa,cm", "-o", "wide"]),
            self.hooks.summary(),
        )
    }
}

impl Drop for OperatorTest {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
        self.op.kill_now();
        // A Canary left with Flagger's finalizer would hold the namespace in
        // Terminating once the operator is gone.
        let names = self
            .tc
            .env
            .tool("kubectl")
            .args(["-n", self.ns(), "get", "canaries", "-o", "name"])
            .output();
        if let Ok(out) = names {
            for name in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self
                    .tc
                    .env
                    .tool("kubectl")
                    .args(["-n", self.ns(), "patch", name, "--type=merge"])
                    .args(["-p", r#"{"metadata":{"finalizers":null}}"#])
                    .output();
            }
        }
    }
}
