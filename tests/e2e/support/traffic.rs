//! A traffic simulator standing in for the router (ingress-nginx, a Gateway
//! API implementation, Linkerd's SMI TrafficSplit, Istio's VirtualService) and the podinfo pods
//! behind it, since no real pods and no ingress or gateway controller run on
//! the testbed. It sends no real requests.
//!
//! Every second it reads from the API server the routing object its
//! [`Route`] names, turns it into [`Rule`]s (header matches, weighted
//! backends, mirrors, `Set-Cookie`s; see [`routes`]), and the target and
//! primary Deployments (their fault profile, the pod template annotation
//! [`FAULT_ANNOTATION`], e.g. `errors=50,latency=1500ms`, and whether the
//! target has available replicas). It then "serves" a steady request rate
//! for the elapsed time, split between client classes ([`ClientClass`]:
//! plain clients, insiders sending a header, sticky clients with cookie
//! jars; see [`clients`]), and publishes, through a [`ScrapeTarget`], the
//! cumulative series Prometheus would scrape:
//!
//! - ingress-nginx (the NGINX route only): `nginx_ingress_controller_requests{namespace,ingress,canary,status}`
//!   and `nginx_ingress_controller_response_duration_seconds_{sum,count}{namespace,ingress,canary}`,
//!   where `canary` is `""` for the primary and the canary upstream
//!   `<ns>-<svc>-canary-<port>` for canary traffic (Flagger's queries filter
//!   `canary!=""`);
//! - podinfo: `http_request_duration_seconds_{bucket,sum,count}{kubernetes_namespace,kubernetes_pod_name,method,path,status}`
//!   (Flagger's builtin queries for `kubernetes` and `gatewayapi*`, and the
//!   walkthrough's `latency` MetricTemplate),
//!   with pod names `<target>-<rev>-sim` (canary) and `<target>-primary-<rev>-sim`;
//! - Linkerd: `response_total{namespace,deployment,direction="inbound",classification,status_code}`
//!   and `response_latency_ms_{bucket,sum,count}{namespace,deployment,direction="inbound"}`,
//!   `deployment` being `<target>` or `<target>-primary`;
//! - Istio: `istio_requests_total{reporter,destination_workload_namespace,destination_workload,destination_service_name,response_code}`
//!   and `istio_request_duration_milliseconds_{bucket,sum,count}`, for both
//!   reporters: `source` (what clients got) and `destination` (what the pods
//!   served).
//!
//! The canary's series exist from the first tick, at 0. Canary requests
//! answer 503 while the target has no available replica (seen only by
//! ingress-nginx and Istio's `source` reporter: no pod is involved),
//! otherwise 500 for the fault's share of errors, with the fault's latency.
//! Mirrored copies are served by their workload's pods (podinfo, Linkerd,
//! Istio `destination`) but are no response to a client.
//!
//! For a Gateway API `HTTPRoute`, the simulator can also play the gateway
//! controller ([`ParentMode`]): it writes `status.parents[]`.

pub mod clients;
pub mod istio;
pub mod routes;
mod series;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::TestEnv;
use super::scrape::ScrapeTarget;
// Re-exported for the scenarios, whichever they use.
#[allow(unused_imports)]
pub use clients::{ClassObserved, ClientClass, Population, StickyCounts, StickyObserved};
#[allow(unused_imports)]
pub use routes::{Rule, Services, Workload};
use series::{Series, render, serve};

/// The pod template annotation holding a revision's fault profile.
pub const FAULT_ANNOTATION: &str = "test.serin.dev/fault";
/// ingress-nginx's annotation prefix (Flagger's `-ingress-annotations-prefix`).
pub const PREFIX: &str = "nginx.ingress.kubernetes.io";
/// The `controllerName` the simulator writes in an HTTPRoute's status.
pub const CONTROLLER_NAME: &str = "serin.dev/traffic-simulator";

/// How a revision misbehaves: a share of HTTP 500s and a response latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fault {
    pub error_percent: f64,
    pub latency: Duration,
}

impl Fault {
    /// A healthy podinfo: no errors, 50 ms.
    pub const HEALTHY: Fault = Fault {
        error_percent: 0.0,
        latency: Duration::from_millis(50),
    };

    pub fn errors(percent: f64) -> Fault {
        Fault {
            error_percent: percent,
            ..Fault::HEALTHY
        }
    }

    pub fn latency(latency: Duration) -> Fault {
        Fault {
            latency,
            ..Fault::HEALTHY
        }
    }

    /// The annotation value, `errors=<pct>,latency=<ms>ms`.
    pub fn annotation(&self) -> String {
        format!(
            "errors={},latency={}ms",
            self.error_percent,
            self.latency.as_millis()
        )
    }

    /// Parses the annotation; missing or unknown parts keep the healthy values.
    pub fn parse(text: &str) -> Fault {
        let mut fault = Fault::HEALTHY;
        for part in text.split(',') {
            match part.trim().split_once('=') {
                Some(("errors", v)) => fault.error_percent = v.trim().parse().unwrap_or(0.0),
                Some(("latency", v)) => {
                    let ms = v.trim().trim_end_matches("ms").parse().unwrap_or(50);
                    fault.latency = Duration::from_millis(ms);
                }
                _ => {}
            }
        }
        fault
    }
}

/// How the simulator plays the gateway controller for an `HTTPRoute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentMode {
    /// Writes `status.parents[]`: for each `spec.parentRefs[]` entry,
    /// `Accepted=True` (reason `Accepted`) at the route's generation.
    Accept,
    /// Writes `Accepted=False`, reason `NotAllowedByListeners`.
    Refuse,
    /// Writes nothing (no controller serves the route's parents).
    Ignore,
}

/// The routing object the simulator reads, in the simulator's namespace.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::enum_variant_names)] // the routers' own kind names
pub enum Route {
    /// ingress-nginx: the canary Ingress `<ingress>-canary` and its
    /// `canary*` annotations; without it all traffic goes to the primary.
    NginxIngress { ingress: String },
    /// A Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`); without
    /// it no request is routed (the gateway answers 404).
    HttpRoute { name: String, parents: ParentMode },
    /// An SMI `TrafficSplit`, read as `split.smi-spec.io/v1alpha2`; without
    /// it all traffic goes to the apex Service (the primary).
    TrafficSplit { name: String },
    /// An Istio `VirtualService` (`networking.istio.io/v1`, Flagger's is
    /// named after the apex Service), its `spec.http[]` routes, a route
    /// that `delegate`s replaced by the delegate VirtualService's routes
    /// (read on every tick too); without it all traffic goes to the apex
    /// Service (the primary).
    VirtualService { name: String },
}

impl Route {
    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Route::NginxIngress { ingress } => ingress,
            Route::HttpRoute { name, .. }
            | Route::TrafficSplit { name }
            | Route::VirtualService { name } => name,
        }
    }

    /// `Kind/name` of the object read (`Ingress/<ingress>-canary` for NGINX).
    pub fn describe(&self) -> String {
        match self {
            Route::NginxIngress { ingress } => format!("Ingress/{ingress}-canary"),
            Route::HttpRoute { name, .. } => format!("HTTPRoute/{name}"),
            Route::TrafficSplit { name } => format!("TrafficSplit/{name}"),
            Route::VirtualService { name } => format!("VirtualService/{name}"),
        }
    }

    /// The API of the routing objects read as `DynamicObject`s.
    fn api_resource(&self) -> Option<ApiResource> {
        let (group, version, kind, plural) = match self {
            Route::NginxIngress { .. } => return None,
            Route::HttpRoute { .. } => {
                ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
            }
            Route::TrafficSplit { .. } => (
                "split.smi-spec.io",
                "v1alpha2",
                "TrafficSplit",
                "trafficsplits",
            ),
            Route::VirtualService { .. } => (
                "networking.istio.io",
                "v1",
                "VirtualService",
                "virtualservices",
            ),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        Some(ApiResource::from_gvk_with_plural(&gvk, plural))
    }

    /// The routing object as rules.
    fn rules(&self, object: &Value) -> Vec<Rule> {
        match self {
            Route::NginxIngress { .. } => Vec::new(),
            Route::HttpRoute { .. } => routes::httproute_rules(object),
            Route::TrafficSplit { .. } => routes::trafficsplit_rules(object),
            Route::VirtualService { .. } => istio::virtualservice_rules(object),
        }
    }
}

/// What the simulator stands in for and how much traffic it makes.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorConfig {
    pub namespace: String,
    pub route: Route,
    /// The target Deployment; the primary is `<target>-primary`.
    pub target: String,
    /// Flagger's Service name (`spec.service.name`, by default the target):
    /// backends `<service>-primary` and the apex `<service>` reach the
    /// primary, `<service>-canary` the target.
    pub service: String,
    pub requests_per_second: f64,
    /// Who sends the requests; shares are normalised by their sum.
    pub classes: Vec<ClientClass>,
}

impl SimulatorConfig {
    /// The NGINX walkthrough: Ingress `podinfo`, Deployment `podinfo`, 10
    /// rps, 20% of the requests with `x-user: insider` (class `insider`),
    /// the rest plain (class `plain`).
    pub fn walkthrough(namespace: &str) -> SimulatorConfig {
        SimulatorConfig {
            namespace: namespace.to_string(),
            route: Route::NginxIngress {
                ingress: "podinfo".into(),
            },
            target: "podinfo".into(),
            service: "podinfo".into(),
            requests_per_second: 10.0,
            classes: vec![
                ClientClass::plain(0.8),
                ClientClass::header("insider", 0.2, "x-user", "insider"),
            ],
        }
    }

    /// HTTPRoute `name` for Deployment `podinfo`, 10 rps, 20% of the
    /// requests with `x-canary: insider` (class `insider`), the rest plain.
    pub fn httproute(namespace: &str, name: &str, parents: ParentMode) -> SimulatorConfig {
        SimulatorConfig {
            route: Route::HttpRoute {
                name: name.into(),
                parents,
            },
            classes: vec![
                ClientClass::plain(0.8),
                ClientClass::header("insider", 0.2, "x-canary", "insider"),
            ],
            ..SimulatorConfig::walkthrough(namespace)
        }
    }

    /// TrafficSplit `name` for Deployment `podinfo`, 10 rps, as
    /// [`SimulatorConfig::httproute`] otherwise.
    pub fn trafficsplit(namespace: &str, name: &str) -> SimulatorConfig {
        SimulatorConfig {
            route: Route::TrafficSplit { name: name.into() },
            ..SimulatorConfig::httproute(namespace, name, ParentMode::Ignore)
        }
    }

    /// VirtualService `name` for Deployment `podinfo`, 10 rps, as
    /// [`SimulatorConfig::httproute`] otherwise (insiders send
    /// `x-canary: insider`).
    pub fn virtualservice(namespace: &str, name: &str) -> SimulatorConfig {
        SimulatorConfig {
            route: Route::VirtualService { name: name.into() },
            ..SimulatorConfig::httproute(namespace, name, ParentMode::Ignore)
        }
    }

    /// The target Deployment (and Service name) instead of `podinfo`.
    pub fn target(mut self, target: &str) -> SimulatorConfig {
        self.target = target.into();
        self.service = target.into();
        self
    }

    pub fn rps(mut self, requests_per_second: f64) -> SimulatorConfig {
        self.requests_per_second = requests_per_second;
        self
    }

    pub fn classes(mut self, classes: Vec<ClientClass>) -> SimulatorConfig {
        self.classes = classes;
        self
    }

    /// Adds `clients` sticky clients (class `sticky`) sending `share` of
    /// the requests; the other classes keep their relative shares. Each
    /// sticky client sends `rps * share / clients` requests a second.
    pub fn sticky(mut self, share: f64, clients: usize) -> SimulatorConfig {
        let share = share.clamp(0.0, 1.0);
        let rest: f64 = self.classes.iter().map(|c| c.share.max(0.0)).sum();
        for c in &mut self.classes {
            c.share = match rest > 0.0 {
                true => c.share.max(0.0) / rest * (1.0 - share),
                false => 0.0,
            };
        }
        self.classes.push(ClientClass::sticky(share, clients));
        self
    }
}

/// What the simulator read and served on its last tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// NGINX: the canary Ingress' annotations (empty when it does not exist).
    pub annotations: BTreeMap<String, String>,
    /// NGINX: the canary upstream label, `<ns>-<svc>-<port>` of the canary Ingress' backend.
    pub upstream: String,
    /// The share of all requests routed to the canary (client traffic, not
    /// mirrored copies), rounded to 1e-9.
    pub canary_share: f64,
    /// The share of all requests whose copy the route mirrors to the canary.
    pub mirror_share: f64,
    /// The share of all requests that no workload serves.
    pub unrouted_share: f64,
    pub canary_fault: Option<Fault>,
    pub primary_fault: Option<Fault>,
    pub canary_available: bool,
    pub ticks: u64,
    /// The routing object exists (for NGINX: the canary Ingress).
    pub route_found: bool,
    /// Its `metadata.generation`.
    pub generation: Option<i64>,
    /// The routing object as the simulator evaluates it, in order.
    pub rules: Vec<Rule>,
    /// Per client class, in the configuration's order.
    pub classes: Vec<ClassObserved>,
    /// The sticky clients and their cookies.
    pub sticky: StickyObserved,
    /// HTTPRoute with `ParentMode::Accept`/`Refuse`: the generation that
    /// the simulator's `status.parents[]` reflects, once written.
    pub status_generation: Option<i64>,
    /// The last error reading the routing object or writing its status.
    pub error: Option<String>,
}

impl Observed {
    /// The client class called `name`.
    pub fn class(&self, name: &str) -> Option<&ClassObserved> {
        self.classes.iter().find(|c| c.name == name)
    }
}

pub struct TrafficSimulator {
    /// Shared with the task, so the target leaves the `file_sd` file when
    /// both are gone.
    scrape: Arc<ScrapeTarget>,
    observed: Arc<Mutex<Observed>>,
    task: tokio::task::JoinHandle<()>,
}

impl TrafficSimulator {
    /// Registers a scrape target and starts simulating, one tick a second.
    pub async fn start(env: &TestEnv, client: Client, config: SimulatorConfig) -> TrafficSimulator {
        let label = format!("traffic-simulator-{}", config.namespace);
        let scrape = Arc::new(ScrapeTarget::start(&env.prometheus_targets_file, &label).await);
        let publish = scrape.clone();
        let observed: Arc<Mutex<Observed>> = Arc::default();
        let shared = observed.clone();
        let task = tokio::spawn(async move {
            let mut series = Series::default();
            let mut population = Population::new(&config.classes);
            let services = Services::new(&config.service);
            let mut last = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                let mut seen = observe(&client, &config).await;
                let elapsed = last.elapsed().as_secs_f64();
                last = Instant::now();
                let served =
                    population.serve(&seen.rules, &services, config.requests_per_second, elapsed);
                serve(&config, &seen, &served.tally, &mut series);
                publish.set(&render(&config, &series));
                seen.canary_share = served.canary_share;
                seen.mirror_share = served.mirror_share;
                seen.unrouted_share = served.unrouted_share;
                seen.classes = served.classes;
                seen.sticky = served.sticky;
                let mut slot = shared.lock().unwrap_or_else(|e| e.into_inner());
                seen.ticks = slot.ticks + 1;
                *slot = seen;
            }
        });
        TrafficSimulator {
            scrape,
            observed,
            task,
        }
    }

    /// The last tick's reading.
    pub fn observed(&self) -> Observed {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The `testbed_target` label Prometheus puts on the simulator's series.
    pub fn label(&self) -> &str {
        &self.scrape.label
    }
}

impl Drop for TrafficSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the routing object and both Deployments; writes the HTTPRoute's
/// parents status when the simulator plays the gateway controller.
async fn observe(client: &Client, config: &SimulatorConfig) -> Observed {
    let mut seen = Observed::default();
    match &config.route {
        Route::NginxIngress { ingress } => {
            observe_ingress(client, config, ingress, &mut seen).await
        }
        route => observe_dynamic(client, config, route, &mut seen).await,
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &config.namespace);
    let target = deployments.get_opt(&config.target).await.ok().flatten();
    let primary = deployments
        .get_opt(&format!("{}-primary", config.target))
        .await
        .ok()
        .flatten();
    seen.canary_fault = target.as_ref().map(fault_of);
    seen.primary_fault = primary.as_ref().map(fault_of);
    seen.canary_available = target
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
        > 0;
    seen
}

/// The canary Ingress `<ingress>-canary`: its annotations and backend.
async fn observe_ingress(
    client: &Client,
    config: &SimulatorConfig,
    ingress: &str,
    seen: &mut Observed,
) {
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &config.namespace);
    let services = Services::new(&config.service);
    let mut canary_service = services.canary();
    match ingresses.get_opt(&format!("{ingress}-canary")).await {
        Ok(Some(ing)) => {
            seen.route_found = true;
            seen.generation = ing.metadata.generation;
            seen.annotations = ing.metadata.annotations.clone().unwrap_or_default();
            let backend = ing
                .spec
                .as_ref()
                .and_then(|s| s.rules.as_ref())
                .and_then(|r| r.first())
                .and_then(|r| r.http.as_ref())
                .and_then(|h| h.paths.first())
                .and_then(|p| p.backend.service.as_ref());
            if let Some(svc) = backend {
                let port = svc
                    .port
                    .as_ref()
                    .and_then(|p| p.number.map(|n| n.to_string()).or(p.name.clone()))
                    .unwrap_or_default();
                seen.upstream = format!("{}-{}-{port}", config.namespace, svc.name);
                canary_service = svc.name.clone();
            }
        }
        Ok(None) => {}
        Err(e) => seen.error = Some(format!("get Ingress {ingress}-canary: {e}")),
    }
    let annotations = &seen.annotations;
    let lookup = |name: &str| annotations.get(&format!("{PREFIX}/{name}")).cloned();
    seen.rules = routes::nginx_rules(&lookup, &services.apex, &canary_service);
}

/// An HTTPRoute, TrafficSplit or VirtualService, read as a `DynamicObject`.
async fn observe_dynamic(
    client: &Client,
    config: &SimulatorConfig,
    route: &Route,
    seen: &mut Observed,
) {
    let Some(resource) = route.api_resource() else {
        return;
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &config.namespace, &resource);
    let object = match api.get_opt(route.name()).await {
        Ok(object) => object,
        Err(e) => {
            seen.error = Some(format!("get {}: {e}", route.describe()));
            None
        }
    };
    let Some(object) = object else {
        if let Route::TrafficSplit { .. } | Route::VirtualService { .. } = route {
            // Without a split or a VirtualService, the apex Service gets the
            // traffic.
            seen.rules = vec![Rule::weighted(&[(&config.service, 1.0)])];
        }
        return;
    };
    seen.route_found = true;
    seen.generation = object.metadata.generation;
    seen.rules = match route {
        Route::VirtualService { .. } => {
            let namespace = &config.namespace;
            let mut delegates = BTreeMap::new();
            for (ns, name) in istio::virtualservice_delegates(&object.data, namespace) {
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
                match api.get_opt(&name).await {
                    Ok(Some(delegate)) => {
                        delegates.insert((ns, name), delegate.data);
                    }
                    Ok(None) => {}
                    Err(e) => seen.error = Some(format!("get VirtualService {ns}/{name}: {e}")),
                }
            }
            istio::virtualservice_rules_with(&object.data, namespace, &delegates)
        }
        _ => route.rules(&object.data),
    };
    if let Route::HttpRoute { parents, .. } = route {
        match write_parents(&api, &object, *parents).await {
            Ok(generation) => seen.status_generation = generation,
            Err(e) => seen.error = Some(e),
        }
    }
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Writes (merge patch on the status subresource) one `status.parents[]`
/// entry per `spec.parentRefs[]` entry, with `parentRef` as the API server
/// returns the spec's, the simulator's `controllerName` and an `Accepted`
/// condition at the route's generation, unless they are already there.
/// Other controllers' entries are kept. Returns the generation the status
/// reflects (`None` with `ParentMode::Ignore`).
async fn write_parents(
    api: &Api<DynamicObject>,
    route: &DynamicObject,
    mode: ParentMode,
) -> Result<Option<i64>, String> {
    let (status, reason, message) = match mode {
        ParentMode::Ignore => return Ok(None),
        ParentMode::Accept => (
            "True",
            "Accepted",
            "Route accepted by the traffic simulator",
        ),
        ParentMode::Refuse => (
            "False",
            "NotAllowedByListeners",
            "The traffic simulator refuses the route: no listener allows it",
        ),
    };
    let generation = route.metadata.generation.unwrap_or(0);
    let refs = items(&route.data["spec"]["parentRefs"]);
    let current = items(&route.data["status"]["parents"]);
    let ours = |p: &Value| p["controllerName"] == CONTROLLER_NAME;
    let accepted = |p: &Value| {
        items(&p["conditions"])
            .iter()
            .find(|c| c["type"] == "Accepted")
            .cloned()
    };
    let entry = |r: &Value| current.iter().find(|p| ours(p) && p["parentRef"] == *r);
    let up_to_date = current.iter().filter(|p| ours(p)).count() == refs.len()
        && refs.iter().all(|r| {
            entry(r).and_then(accepted).is_some_and(|c| {
                c["status"] == status
                    && c["reason"] == reason
                    && c["observedGeneration"] == generation
            })
        });
    if up_to_date {
        return Ok(Some(generation));
    }
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let now = k8s_openapi::jiff::Timestamp::from_second(now)
        .map(|t| t.to_string())
        .map_err(|e| format!("timestamp: {e}"))?;
    let mut parents: Vec<Value> = current.iter().filter(|p| !ours(p)).cloned().collect();
    for r in refs {
        // The transition time moves only when the status does.
        let since = entry(r)
            .and_then(accepted)
            .filter(|c| c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
            .unwrap_or_else(|| now.clone());
        parents.push(json!({
            "parentRef": r,
            "controllerName": CONTROLLER_NAME,
            "conditions": [{
                "type": "Accepted",
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": since,
            }],
        }));
    }
    let name = route.metadata.name.clone().unwrap_or_default();
    let patch = json!({ "status": { "parents": parents } });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("write the status of HTTPRoute {name}: {e}"))?;
    Ok(Some(generation))
}

fn fault_of(d: &Deployment) -> Fault {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(FAULT_ANNOTATION))
        .map(|v| Fault::parse(v))
        .unwrap_or(Fault::HEALTHY)
}
