//! Serin's memory in a big cluster (issue 11, item 7): what it costs to run
//! beside 10,000 unrelated Deployments and 20,000 unrelated ConfigMaps and
//! Secrets, and what each managed canary costs on top.
//!
//! One `serin` watching every namespace of the local control plane:
//! 1. started on the testbed as it is: RSS "floor";
//! 2. the clutter applied (namespace `clutter`, kept between runs unless
//!    `BIG_CLUSTER_CLEAN=1`), 30 s to settle: RSS "cluster";
//! 3. `BIG_CLUSTER_CANARIES` (100) podinfo Deployments with NGINX Canaries,
//!    all initialised: RSS "managed". Cost per canary = (managed - cluster) / N.
//!
//! `make cluster-up && source target/testbed/env && cargo bench --bench big_cluster`
//! (`SERIN_BIN=<path>` measures another build of `serin`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/e2e/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::TestEnv;
use support::fleet::{self, proc_stats};

const CLUTTER_NS: &str = "clutter";
const DEPLOYMENTS: usize = 10_000;
/// ConfigMaps, and as many Secrets.
const CONFIGS: usize = 10_000;
const SETTLE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "big_cluster: run with `cargo bench --bench big_cluster` on the local control plane"
        );
        return ExitCode::SUCCESS;
    }
    let canaries: usize = std::env::var("BIG_CLUSTER_CANARIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let env = TestEnv::from_env();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(&env, canaries));
    ExitCode::SUCCESS
}

async fn run(env: &TestEnv, size: usize) {
    let client = env.client().await;
    support::operator::install_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let managed_ns = format!("big-cluster-{size}");
    let _ = namespaces
        .delete(&managed_ns, &DeleteParams::background())
        .await;
    wait_gone(&namespaces, &managed_ns).await;

    let log_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fleet");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = std::fs::File::create(log_dir.join("big-cluster.log")).unwrap();
    // `SERIN_BIN` runs another build, e.g. the one before a change.
    let binary = std::env::var("SERIN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_serin").into());
    let mut child = Command::new(&binary)
        .arg(format!(
            "-kubeconfig={}",
            std::env::var("SERIN_KUBECONFIG")
                .unwrap_or_else(|_| env.kubeconfig.display().to_string())
        ))
        .arg("-mesh-provider=nginx")
        .arg(format!("-metrics-server={}", env.prometheus_url))
        .arg("-log-level=info")
        .arg("-port=0")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start serin");
    let pid = child.id();
    tokio::time::sleep(SETTLE).await;
    let floor = proc_stats(pid);

    ensure_clutter(&client, &namespaces).await;
    tokio::time::sleep(SETTLE).await;
    let cluster = proc_stats(pid);

    let _ = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": managed_ns}})).unwrap(),
        )
        .await;
    let mut objects = Vec::new();
    for i in 0..size {
        objects.push(fleet::deployment(i, "6.0.0"));
        objects.push(fleet::ingress(i));
    }
    fleet::apply_all(&client, &managed_ns, objects).await;
    fleet::apply_all(&client, &managed_ns, (0..size).map(fleet::canary).collect()).await;
    let (took, phases) = fleet::wait_phases(&client, &managed_ns, Duration::from_secs(900), |p| {
        p.get("Initialized").copied().unwrap_or(0) == size
    })
    .await;
    assert_eq!(
        phases.get("Initialized").copied().unwrap_or(0),
        size,
        "not all initialised: {phases:?}"
    );
    tokio::time::sleep(SETTLE).await;
    let managed = proc_stats(pid);
    let _ = child.kill();
    let _ = child.wait();

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "\n== Serin in a big cluster: {DEPLOYMENTS} Deployments, {CONFIGS} ConfigMaps, {CONFIGS} Secrets unrelated; {size} canaries =="
    );
    println!(
        "  RSS on the testbed alone:        {:>8.1} MiB",
        mib(floor.rss_bytes)
    );
    println!(
        "  RSS with the clutter:            {:>8.1} MiB (+{:.1} MiB for the cluster)",
        mib(cluster.rss_bytes),
        mib(cluster.rss_bytes.saturating_sub(floor.rss_bytes))
    );
    println!(
        "  RSS with {size} canaries initialised ({:.0}s): {:>8.1} MiB (+{:.1} KB per managed canary)",
        took.as_secs_f64(),
        mib(managed.rss_bytes),
        managed.rss_bytes.saturating_sub(cluster.rss_bytes) as f64 / 1000.0 / size as f64
    );
    println!(
        "  peak RSS:                        {:>8.1} MiB",
        mib(managed.peak_rss_bytes)
    );

    let _ = namespaces
        .delete(&managed_ns, &DeleteParams::background())
        .await;
    if std::env::var("BIG_CLUSTER_CLEAN").is_ok_and(|v| v == "1") {
        let _ = namespaces
            .delete(CLUTTER_NS, &DeleteParams::background())
            .await;
    }
}

/// Applies the clutter unless a previous run left it complete.
async fn ensure_clutter(client: &kube::Client, namespaces: &Api<Namespace>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), CLUTTER_NS);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), CLUTTER_NS);
    let count = |n: Result<usize, kube::Error>| n.unwrap_or(0);
    let have_deployments = count(
        deployments
            .list_metadata(&ListParams::default())
            .await
            .map(|l| l.items.len()),
    );
    let have_configmaps = count(
        configmaps
            .list_metadata(&ListParams::default())
            .await
            .map(|l| l.items.len()),
    );
    if have_deployments >= DEPLOYMENTS && have_configmaps >= CONFIGS {
        eprintln!("[big-cluster] clutter already there");
        return;
    }
    let _ = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": CLUTTER_NS}})).unwrap(),
        )
        .await;
    eprintln!("[big-cluster] applying {DEPLOYMENTS} Deployments, {CONFIGS} ConfigMaps and Secrets");
    let mut objects = Vec::new();
    for i in 0..DEPLOYMENTS {
        objects.push(clutter_deployment(i));
    }
    for i in 0..CONFIGS {
        objects.push(clutter_config("ConfigMap", "data", i, "x".repeat(1000)));
        objects.push(clutter_config("Secret", "stringData", i, "y".repeat(1000)));
    }
    fleet::apply_all(client, CLUTTER_NS, objects).await;
}

/// An unrelated Deployment the size of a typical one, with no replicas.
fn clutter_deployment(i: usize) -> Value {
    let name = format!("other-{i}");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "team": "other"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "registry.example.com/other/app:1.2.3",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "CONFIG", "valueFrom": {"configMapKeyRef": {"name": format!("other-{i}"), "key": "k"}}}
                    ],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}
                }]}
            }
        }
    })
}

fn clutter_config(kind: &str, field: &str, i: usize, value: String) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": format!("other-{i}"), "labels": {"team": "other"}},
        field: {"k": value}
    })
}

async fn wait_gone(namespaces: &Api<Namespace>, name: &str) {
    for _ in 0..120 {
        if namespaces.get_opt(name).await.ok().flatten().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("namespace {name} was not deleted");
}
