//! The simulator's cumulative series and their text exposition.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::clients::Tally;
use super::routes::{Services, Workload};
use super::{Fault, Observed, Route, SimulatorConfig};

/// podinfo's histogram buckets in seconds (Prometheus' default buckets).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Linkerd's `response_latency_ms` buckets.
const LINKERD_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];
/// Istio's `istio_request_duration_milliseconds` buckets.
const ISTIO_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
/// How long a 503 without endpoint takes, in seconds.
const NO_ENDPOINT: f64 = 0.001;

#[derive(Default)]
struct Histogram {
    buckets: Vec<f64>,
    sum: f64,
    count: f64,
}

impl Histogram {
    /// `n` observations of `value`.
    fn observe(&mut self, bounds: &[f64], value: f64, n: f64) {
        self.buckets.resize(bounds.len(), 0.0);
        for (bucket, le) in self.buckets.iter_mut().zip(bounds) {
            if value <= *le {
                *bucket += n;
            }
        }
        self.sum += n * value;
        self.count += n;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        for (i, le) in bounds.iter().enumerate() {
            let v = self.buckets.get(i).copied().unwrap_or(0.0);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {v}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {count}\n{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}",
            count = self.count,
            sum = self.sum,
        );
    }
}

/// Istio's two reporters: the client side (the gateway or the caller's
/// sidecar) and the server side (the pod's sidecar).
const SOURCE: &str = "source";
const DESTINATION: &str = "destination";

/// The cumulative series, keyed by their labels.
#[derive(Default)]
pub(super) struct Series {
    /// ingress-nginx: (canary label, status) -> requests.
    requests: BTreeMap<(String, u16), f64>,
    /// ingress-nginx: canary label -> (sum of seconds, count).
    durations: BTreeMap<String, (f64, f64)>,
    /// podinfo: (pod name, status) -> histogram in seconds.
    pods: BTreeMap<(String, u16), Histogram>,
    /// Linkerd inbound: (deployment, status) -> responses.
    linkerd: BTreeMap<(String, u16), f64>,
    /// Linkerd inbound: deployment -> latency histogram in ms.
    linkerd_latency: BTreeMap<String, Histogram>,
    /// Istio: (reporter, workload, service, response code) -> requests.
    istio: BTreeMap<(&'static str, String, String, u16), f64>,
    /// Istio: (reporter, workload, service) -> duration histogram in ms.
    istio_duration: BTreeMap<(&'static str, String, String), Histogram>,
}

/// The Deployment behind a workload.
fn deployment(config: &SimulatorConfig, w: Workload) -> String {
    match w {
        Workload::Canary => config.target.clone(),
        Workload::Primary => format!("{}-primary", config.target),
    }
}

/// Serves a tick's requests (`tally`) into the cumulative series.
pub(super) fn serve(config: &SimulatorConfig, seen: &Observed, tally: &Tally, series: &mut Series) {
    let services = Services::new(&config.service);
    // Both workloads' series exist from the start, so rates are 0 and not absent.
    let mut served = tally.served.clone();
    served
        .entry((Workload::Primary, services.primary()))
        .or_default();
    served
        .entry((Workload::Canary, services.canary()))
        .or_default();
    let mut mirrored = tally.mirrored.clone();
    for ((w, service), n) in served {
        let m = mirrored.remove(&(w, service.clone())).unwrap_or(0.0);
        record(config, seen, series, w, &service, n, m);
    }
    for ((w, service), m) in mirrored {
        record(config, seen, series, w, &service, 0.0, m);
    }
}

/// `n` client requests and `m` mirrored copies reaching workload `w` through
/// `service`. While the canary has no available replica its client requests
/// answer 503 without reaching a pod, and its copies are dropped; otherwise
/// the pods answer with the fault's errors and latency.
fn record(
    config: &SimulatorConfig,
    seen: &Observed,
    series: &mut Series,
    w: Workload,
    service: &str,
    n: f64,
    m: f64,
) {
    let (fault, available) = match w {
        Workload::Primary => (seen.primary_fault, true),
        Workload::Canary => (seen.canary_fault, seen.canary_available),
    };
    let fault = fault.unwrap_or(Fault::HEALTHY);
    let unavailable = if available { 0.0 } else { n };
    let answered = n - unavailable;
    let at_pods = answered + if available { m } else { 0.0 };
    let error = fault.error_percent.clamp(0.0, 100.0) / 100.0;
    let latency = fault.latency.as_secs_f64();
    let ms = latency * 1000.0;
    let name = deployment(config, w);
    let split = |k: f64| [(200, k * (1.0 - error)), (500, k * error)];

    // podinfo, in its pods.
    let pod = pod_name(&name, &fault);
    for (status, k) in split(at_pods) {
        series
            .pods
            .entry((pod.clone(), status))
            .or_default()
            .observe(&BUCKETS, latency, k);
    }
    // Linkerd's proxy in the pods (inbound).
    for (status, k) in split(at_pods) {
        *series.linkerd.entry((name.clone(), status)).or_default() += k;
    }
    series
        .linkerd_latency
        .entry(name.clone())
        .or_default()
        .observe(&LINKERD_MS, ms, at_pods);
    // Istio: the pods' sidecars see the copies, the clients' side does not.
    let key = |reporter| (reporter, name.clone(), service.to_string());
    for (status, k) in split(at_pods) {
        let (r, n, s) = key(DESTINATION);
        *series.istio.entry((r, n, s, status)).or_default() += k;
    }
    series
        .istio_duration
        .entry(key(DESTINATION))
        .or_default()
        .observe(&ISTIO_MS, ms, at_pods);
    for (status, k) in split(answered) {
        let (r, n, s) = key(SOURCE);
        *series.istio.entry((r, n, s, status)).or_default() += k;
    }
    let (r, n_, s) = key(SOURCE);
    *series.istio.entry((r, n_, s, 503)).or_default() += unavailable;
    let source = series.istio_duration.entry(key(SOURCE)).or_default();
    source.observe(&ISTIO_MS, ms, answered);
    source.observe(&ISTIO_MS, NO_ENDPOINT * 1000.0, unavailable);

    // ingress-nginx, for the NGINX route only: `canary` is "" for the
    // primary and the canary upstream for the canary.
    if matches!(config.route, Route::NginxIngress { .. }) {
        let label = match w {
            Workload::Primary => String::new(),
            Workload::Canary if seen.upstream.is_empty() => {
                format!("{}-{}-canary-80", config.namespace, config.target)
            }
            Workload::Canary => seen.upstream.clone(),
        };
        let errors = answered * error;
        *series.requests.entry((label.clone(), 200)).or_default() += answered - errors;
        *series.requests.entry((label.clone(), 500)).or_default() += errors;
        *series.requests.entry((label.clone(), 503)).or_default() += unavailable;
        let d = series.durations.entry(label).or_default();
        d.0 += answered * latency + unavailable * NO_ENDPOINT;
        d.1 += n;
    }
}

/// `<prefix>-<rev>-sim`, `<rev>` an alphanumeric digest of the fault profile
/// (the revision as the simulator knows it).
fn pod_name(prefix: &str, fault: &Fault) -> String {
    let digest = fault
        .annotation()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    format!("{prefix}-{:08x}-sim", digest as u32)
}

/// The Prometheus text exposition of every series.
pub(super) fn render(config: &SimulatorConfig, series: &Series) -> String {
    let ns = &config.namespace;
    let mut out = String::new();
    if let Route::NginxIngress { ingress: ing } = &config.route {
        out.push_str("# TYPE nginx_ingress_controller_requests counter\n");
        for ((canary, status), v) in &series.requests {
            let _ = writeln!(
                out,
                "nginx_ingress_controller_requests{{namespace=\"{ns}\",ingress=\"{ing}\",host=\"app.example.com\",canary=\"{canary}\",status=\"{status}\"}} {v}"
            );
        }
        out.push_str("# TYPE nginx_ingress_controller_response_duration_seconds summary\n");
        for (canary, (sum, count)) in &series.durations {
            let labels = format!("namespace=\"{ns}\",ingress=\"{ing}\",canary=\"{canary}\"");
            let _ = writeln!(
                out,
                "nginx_ingress_controller_response_duration_seconds_sum{{{labels}}} {sum}\n\
                 nginx_ingress_controller_response_duration_seconds_count{{{labels}}} {count}"
            );
        }
    }
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for ((pod, status), h) in &series.pods {
        let labels = format!(
            "kubernetes_namespace=\"{ns}\",kubernetes_pod_name=\"{pod}\",method=\"GET\",path=\"/\",status=\"{status}\""
        );
        h.render(&mut out, "http_request_duration_seconds", &labels, &BUCKETS);
    }
    out.push_str("# TYPE response_total counter\n");
    for ((deployment, status), v) in &series.linkerd {
        let classification = if *status >= 500 { "failure" } else { "success" };
        let _ = writeln!(
            out,
            "response_total{{namespace=\"{ns}\",deployment=\"{deployment}\",direction=\"inbound\",classification=\"{classification}\",status_code=\"{status}\"}} {v}"
        );
    }
    out.push_str("# TYPE response_latency_ms histogram\n");
    for (deployment, h) in &series.linkerd_latency {
        let labels =
            format!("namespace=\"{ns}\",deployment=\"{deployment}\",direction=\"inbound\"");
        h.render(&mut out, "response_latency_ms", &labels, &LINKERD_MS);
    }
    let istio_labels = |reporter: &str, workload: &str, service: &str| {
        format!(
            "reporter=\"{reporter}\",destination_workload_namespace=\"{ns}\",destination_workload=\"{workload}\",destination_service_name=\"{service}\",destination_service_namespace=\"{ns}\""
        )
    };
    out.push_str("# TYPE istio_requests_total counter\n");
    for ((reporter, workload, service, code), v) in &series.istio {
        let labels = istio_labels(reporter, workload, service);
        let _ = writeln!(
            out,
            "istio_requests_total{{{labels},response_code=\"{code}\"}} {v}"
        );
    }
    out.push_str("# TYPE istio_request_duration_milliseconds histogram\n");
    for ((reporter, workload, service), h) in &series.istio_duration {
        let labels = istio_labels(reporter, workload, service);
        h.render(
            &mut out,
            "istio_request_duration_milliseconds",
            &labels,
            &ISTIO_MS,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn httproute() -> SimulatorConfig {
        SimulatorConfig::httproute("ns", "podinfo", super::super::ParentMode::Accept)
    }

    /// The value of the sample whose line starts with `prefix`.
    fn sample(text: &str, prefix: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    fn seen(available: bool) -> Observed {
        Observed {
            canary_available: available,
            canary_fault: Some(Fault::errors(50.0)),
            primary_fault: Some(Fault::HEALTHY),
            ..Observed::default()
        }
    }

    const CANARY_SOURCE: &str = r#"istio_requests_total{reporter="source",destination_workload_namespace="ns",destination_workload="podinfo",destination_service_name="podinfo-canary",destination_service_namespace="ns",response_code="#;
    const CANARY_DESTINATION: &str = r#"istio_requests_total{reporter="destination",destination_workload_namespace="ns",destination_workload="podinfo",destination_service_name="podinfo-canary",destination_service_namespace="ns",response_code="#;
    const CANARY_LINKERD: &str =
        r#"response_total{namespace="ns",deployment="podinfo",direction="inbound",classification="#;

    #[test]
    fn canary_series_exist_at_zero() {
        let config = httproute();
        let mut series = Series::default();
        serve(&config, &seen(true), &Tally::default(), &mut series);
        let text = render(&config, &series);
        assert_eq!(sample(&text, &format!("{CANARY_SOURCE}\"200\"")), 0.0);
        assert_eq!(sample(&text, &format!("{CANARY_DESTINATION}\"500\"")), 0.0);
        assert_eq!(sample(&text, &format!("{CANARY_LINKERD}\"success\"")), 0.0);
        assert_eq!(
            sample(
                &text,
                r#"response_latency_ms_count{namespace="ns",deployment="podinfo","#
            ),
            0.0
        );
        assert!(text.contains(r#"kubernetes_pod_name="podinfo-"#), "{text}");
        assert!(!text.contains("nginx_ingress_controller"), "NGINX only");
    }

    #[test]
    fn mirrored_copies_reach_the_pods_but_answer_no_client() {
        let config = httproute();
        let mut tally = Tally::default();
        tally
            .served
            .insert((Workload::Primary, "podinfo-primary".into()), 10.0);
        tally
            .mirrored
            .insert((Workload::Canary, "podinfo-canary".into()), 10.0);
        let mut series = Series::default();
        serve(&config, &seen(true), &tally, &mut series);
        let text = render(&config, &series);
        assert_eq!(sample(&text, &format!("{CANARY_SOURCE}\"200\"")), 0.0);
        assert_eq!(sample(&text, &format!("{CANARY_SOURCE}\"500\"")), 0.0);
        assert_eq!(sample(&text, &format!("{CANARY_DESTINATION}\"200\"")), 5.0);
        assert_eq!(sample(&text, &format!("{CANARY_DESTINATION}\"500\"")), 5.0);
        assert_eq!(sample(&text, &format!("{CANARY_LINKERD}\"failure\"")), 5.0);
        let primary = r#"response_total{namespace="ns",deployment="podinfo-primary",direction="inbound",classification="success",status_code="200"}"#;
        assert_eq!(sample(&text, primary), 10.0);
    }

    #[test]
    fn an_unavailable_canary_answers_503_without_pods() {
        let config = httproute();
        let mut tally = Tally::default();
        tally
            .served
            .insert((Workload::Canary, "podinfo-canary".into()), 4.0);
        tally
            .mirrored
            .insert((Workload::Canary, "podinfo-canary".into()), 2.0);
        let mut series = Series::default();
        serve(&config, &seen(false), &tally, &mut series);
        let text = render(&config, &series);
        assert_eq!(sample(&text, &format!("{CANARY_SOURCE}\"503\"")), 4.0);
        assert_eq!(sample(&text, &format!("{CANARY_DESTINATION}\"200\"")), 0.0);
        assert_eq!(sample(&text, &format!("{CANARY_LINKERD}\"success\"")), 0.0);
        // ingress-nginx sees them too, for the NGINX route.
        let config = SimulatorConfig::walkthrough("ns");
        let mut series = Series::default();
        serve(&config, &seen(false), &tally, &mut series);
        let text = render(&config, &series);
        let nginx = r#"nginx_ingress_controller_requests{namespace="ns",ingress="podinfo",host="app.example.com",canary="ns-podinfo-canary-80",status="503"}"#;
        assert_eq!(sample(&text, nginx), 4.0);
    }
}
