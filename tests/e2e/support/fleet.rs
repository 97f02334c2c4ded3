//! A fleet of canaries on the local control plane, for `cargo bench --bench
//! fleet`: N podinfo Deployments, each with an Ingress and an NGINX Canary;
//! a fleet traffic simulator (one Ingress watch, healthy traffic for every
//! canary Ingress it sees, published as ingress-nginx's series); a log of
//! every canary weight written; and the CPU and memory of an operator
//! process read from /proc.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::TestEnv;
use super::scrape::ScrapeTarget;

/// What every canary of the fleet runs: Flagger's NGINX tutorial shape,
/// with the shortest interval Flagger allows.
pub const INTERVAL: Duration = Duration::from_secs(10);
pub const STEP_WEIGHT: i64 = 10;
pub const MAX_WEIGHT: i64 = 50;
/// Objects written at once while setting the fleet up.
const WRITES_AT_ONCE: usize = 32;

pub fn name(i: usize) -> String {
    format!("app-{i}")
}

pub fn deployment(i: usize, tag: &str) -> Value {
    let name = name(i);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "podinfod",
                    "image": format!("ghcr.io/stefanprodan/podinfo:{tag}"),
                    "ports": [{"name": "http", "containerPort": 9898}]
                }]}
            }
        }
    })
}

pub fn ingress(i: usize) -> Value {
    let name = name(i);
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{
                "host": format!("{name}.example.com"),
                "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": name, "port": {"number": 80}}}
                }]}
            }]
        }
    })
}

pub fn canary(i: usize) -> Value {
    let name = name(i);
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "provider": "nginx",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": name},
            "progressDeadlineSeconds": 600,
            "service": {"port": 80, "targetPort": 9898},
            "analysis": {
                "interval": format!("{}s", INTERVAL.as_secs()),
                "threshold": 5,
                "maxWeight": MAX_WEIGHT,
                "stepWeight": STEP_WEIGHT,
                "metrics": [{
                    "name": "request-success-rate",
                    "thresholdRange": {"min": 99},
                    "interval": "1m"
                }]
            }
        }
    })
}

/// Server-side applies `objects` into `namespace`, a few at a time.
pub async fn apply_all(client: &Client, namespace: &str, objects: Vec<Value>) {
    stream::iter(objects)
        .map(|obj| {
            let client = client.clone();
            async move { apply(&client, namespace, &obj).await }
        })
        .buffer_unordered(WRITES_AT_ONCE)
        .collect::<Vec<()>>()
        .await;
}

async fn apply(client: &Client, namespace: &str, obj: &Value) {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj["kind"].as_str().unwrap();
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
    let name = obj["metadata"]["name"].as_str().unwrap();
    let params = PatchParams::apply("serin-fleet").force();
    for attempt in 0..5 {
        match api.patch(name, &params, &Patch::Apply(obj)).await {
            Ok(_) => return,
            Err(e) if attempt < 4 => {
                eprintln!("retrying {kind} {name}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("applying {kind} {namespace}/{name}: {e}"),
        }
    }
}

/// Canaries of `namespace` by phase.
pub async fn phases(client: &Client, namespace: &str) -> BTreeMap<String, usize> {
    let gvk = GroupVersionKind::gvk("flagger.app", "v1beta1", "Canary");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
    let mut phases = BTreeMap::new();
    let Ok(list) = api.list(&ListParams::default()).await else {
        return phases;
    };
    for canary in list {
        let phase = canary.data["status"]["phase"]
            .as_str()
            .unwrap_or("")
            .to_string();
        *phases.entry(phase).or_default() += 1;
    }
    phases
}

/// Polls until `done` says the phases are there, or `limit` passes; returns
/// the time it took and the last phases.
pub async fn wait_phases(
    client: &Client,
    namespace: &str,
    limit: Duration,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> (Duration, BTreeMap<String, usize>) {
    let start = Instant::now();
    loop {
        let now = phases(client, namespace).await;
        if done(&now) || start.elapsed() > limit {
            return (start.elapsed(), now);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Every canary Ingress (`<name>-canary`) of a namespace and its weight.
type Weights = HashMap<String, (String, i64)>;
/// Canary Ingress -> (time, weight) of each change.
type WeightLog = HashMap<String, Vec<(Instant, i64)>>;

/// Watches the canary Ingresses of one namespace: serves healthy traffic
/// for each (10 requests a second split by its weight, published as
/// ingress-nginx's series for Prometheus), and logs every weight change.
pub struct FleetTraffic {
    scrape: Arc<ScrapeTarget>,
    log: Arc<Mutex<WeightLog>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FleetTraffic {
    pub async fn start(env: &TestEnv, client: Client, namespace: &str) -> FleetTraffic {
        let label = format!("fleet-traffic-{namespace}");
        let scrape = Arc::new(ScrapeTarget::start(&env.prometheus_targets_file, &label).await);
        let weights: Arc<Mutex<Weights>> = Arc::default();
        let log: Arc<Mutex<WeightLog>> = Arc::default();
        let api: Api<Ingress> = Api::namespaced(client, namespace);
        let (seen, changes) = (weights.clone(), log.clone());
        let ns = namespace.to_string();
        let watch = tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Ok(Some(event)) = events.try_next().await {
                let (Event::Apply(ing) | Event::InitApply(ing)) = event else {
                    continue;
                };
                let Some((name, upstream, weight)) = canary_ingress(&ns, &ing) else {
                    continue;
                };
                let mut all = seen.lock().unwrap();
                let changed = all.get(&name).is_none_or(|(_, w)| *w != weight);
                all.insert(name.clone(), (upstream, weight));
                if changed {
                    changes
                        .lock()
                        .unwrap()
                        .entry(name)
                        .or_default()
                        .push((Instant::now(), weight));
                }
            }
        });
        let publish = scrape.clone();
        let ns = namespace.to_string();
        let serve = tokio::spawn(async move {
            let mut totals: BTreeMap<(String, String), f64> = BTreeMap::new();
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                let now: Vec<(String, String, i64)> = weights
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(name, (up, w))| (name.clone(), up.clone(), *w))
                    .collect();
                for (name, upstream, weight) in now {
                    let ingress = name.trim_end_matches("-canary").to_string();
                    let canary = 10.0 * weight as f64 / 100.0;
                    *totals.entry((ingress.clone(), upstream)).or_default() += canary;
                    *totals.entry((ingress, String::new())).or_default() += 10.0 - canary;
                }
                publish.set(&render(&ns, &totals));
            }
        });
        FleetTraffic {
            scrape,
            log,
            tasks: vec![watch, serve],
        }
    }

    /// For each canary, how late its weight writes 2..=n came against the
    /// grid of its first one (`first + k × interval`).
    pub fn step_lateness(&self) -> Vec<Duration> {
        let log = self.log.lock().unwrap();
        let mut late = Vec::new();
        for changes in log.values() {
            let steps: Vec<Instant> = changes
                .iter()
                .filter(|(_, w)| *w > 0)
                .map(|(t, _)| *t)
                .collect();
            let Some(first) = steps.first() else {
                continue;
            };
            for (k, t) in steps.iter().enumerate().skip(1) {
                let due = *first + INTERVAL * k as u32;
                late.push(t.saturating_duration_since(due));
            }
        }
        late
    }

    /// Forgets the weights logged so far (before a rollout).
    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for FleetTraffic {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `(<name>-canary, upstream label, weight)` of a canary Ingress.
fn canary_ingress(namespace: &str, ing: &Ingress) -> Option<(String, String, i64)> {
    let name = ing.metadata.name.clone()?;
    if !name.ends_with("-canary") {
        return None;
    }
    let annotations = ing.metadata.annotations.clone().unwrap_or_default();
    let weight = annotations
        .get("nginx.ingress.kubernetes.io/canary-weight")
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let svc = ing
        .spec
        .as_ref()?
        .rules
        .as_ref()?
        .first()?
        .http
        .as_ref()?
        .paths
        .first()?
        .backend
        .service
        .as_ref()?;
    let port = svc.port.as_ref()?.number?;
    Some((name, format!("{namespace}-{}-{port}", svc.name), weight))
}

/// ingress-nginx's request counter and response time for every ingress.
fn render(namespace: &str, totals: &BTreeMap<(String, String), f64>) -> String {
    let mut out = String::new();
    out.push_str("# TYPE nginx_ingress_controller_requests counter\n");
    for ((ingress, canary), n) in totals {
        let _ = writeln!(
            out,
            "nginx_ingress_controller_requests{{namespace=\"{namespace}\",ingress=\"{ingress}\",canary=\"{canary}\",status=\"200\"}} {n}"
        );
    }
    out.push_str("# TYPE nginx_ingress_controller_response_duration_seconds summary\n");
    for ((ingress, canary), n) in totals {
        let labels = format!("namespace=\"{namespace}\",ingress=\"{ingress}\",canary=\"{canary}\"");
        let _ = writeln!(
            out,
            "nginx_ingress_controller_response_duration_seconds_sum{{{labels}}} {}",
            n * 0.05
        );
        let _ = writeln!(
            out,
            "nginx_ingress_controller_response_duration_seconds_count{{{labels}}} {n}"
        );
    }
    out
}

/// CPU time and memory of a process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

pub fn proc_stats(pid: u32) -> ProcStats {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 11 and 12 here; 100 Hz.
    let cpu_seconds = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    ProcStats {
        cpu_seconds,
        rss_bytes: kib("VmRSS:"),
        peak_rss_bytes: kib("VmHWM:"),
    }
}

/// The `p`-th percentile (0..=100) of some durations.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Patches every Deployment of the fleet to a new image at once.
pub async fn revise_all(client: &Client, namespace: &str, size: usize, tag: &str) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    stream::iter(0..size)
        .map(|i| {
            let api = api.clone();
            let tag = tag.to_string();
            async move {
                let patch = json!({"spec": {"template": {"spec": {"containers": [{
                    "name": "podinfod",
                    "image": format!("ghcr.io/stefanprodan/podinfo:{tag}")
                }]}}}});
                api.patch(&name(i), &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                    .unwrap_or_else(|e| panic!("revising {}: {e}", name(i)));
            }
        })
        .buffer_unordered(WRITES_AT_ONCE)
        .collect::<Vec<()>>()
        .await;
}
