//! The simulator's cumulative series and their text exposition.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Fault, Observed, SimulatorConfig};

/// podinfo's histogram buckets (Prometheus' default buckets).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [f64; BUCKETS.len()],
    sum: f64,
    count: f64,
}

/// The cumulative series, keyed by their labels.
#[derive(Default)]
pub(super) struct Series {
    /// (canary label, status) -> requests.
    requests: BTreeMap<(String, u16), f64>,
    /// canary label -> (sum of seconds, count).
    durations: BTreeMap<String, (f64, f64)>,
    /// pod name -> histogram.
    pods: BTreeMap<String, Histogram>,
}

/// Serves `elapsed` seconds of traffic into the cumulative series.
pub(super) fn serve(config: &SimulatorConfig, seen: &Observed, elapsed: f64, series: &mut Series) {
    let total = config.requests_per_second * elapsed;
    let canary = total * seen.canary_share;
    let primary_fault = seen.primary_fault.unwrap_or(Fault::HEALTHY);
    let primary_pod = pod_name(&format!("{}-primary", config.target), &primary_fault);
    record(
        series,
        "",
        &primary_pod,
        total - canary,
        &primary_fault,
        0.0,
    );
    // The canary series exist from the start, so rates are 0 and not absent.
    let label = if seen.upstream.is_empty() {
        format!("{}-{}-canary-80", config.namespace, config.target)
    } else {
        seen.upstream.clone()
    };
    let fault = seen.canary_fault.unwrap_or(Fault::HEALTHY);
    let canary_pod = pod_name(&config.target, &fault);
    let unavailable = if seen.canary_available { 0.0 } else { canary };
    record(series, &label, &canary_pod, canary, &fault, unavailable);
}

/// `n` requests: `unavailable` of them 503 (no endpoint, no pod involved),
/// the rest served by `pod` with the fault's errors and latency.
fn record(series: &mut Series, canary: &str, pod: &str, n: f64, fault: &Fault, unavailable: f64) {
    let served = n - unavailable;
    let errors = served * fault.error_percent / 100.0;
    *series.requests.entry((canary.into(), 200)).or_default() += served - errors;
    *series.requests.entry((canary.into(), 500)).or_default() += errors;
    *series.requests.entry((canary.into(), 503)).or_default() += unavailable;
    let latency = fault.latency.as_secs_f64();
    let d = series.durations.entry(canary.into()).or_default();
    d.0 += served * latency + unavailable * 0.001;
    d.1 += n;
    let h = series.pods.entry(pod.into()).or_default();
    for (bucket, le) in h.buckets.iter_mut().zip(BUCKETS) {
        if latency <= le {
            *bucket += served;
        }
    }
    h.sum += served * latency;
    h.count += served;
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
    let (ns, ing) = (&config.namespace, &config.ingress);
    let mut out = String::new();
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
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (pod, h) in &series.pods {
        let labels = format!("kubernetes_namespace=\"{ns}\",kubernetes_pod_name=\"{pod}\"");
        for (le, v) in BUCKETS.iter().zip(h.buckets) {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {v}"
            );
        }
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             http_request_duration_seconds_sum{{{labels}}} {}\n\
             http_request_duration_seconds_count{{{labels}}} {}",
            h.count, h.sum, h.count
        );
    }
    out
}
