//! Unit tests of `serin lint`: fixtures and helpers, then one file per
//! group of rules.

mod inputs;
mod references;
mod schema_rules;
mod semantics;

use super::{Input, Report, lint_documents};

/// A Canary that passes every rule with [`TEMPLATE`] and [`PROVIDER`].
/// Its line numbers are used by the tests: keep them.
pub(super) const CANARY: &str = "\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
    targetPort: http
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: latency
      templateRef:
        name: latency
      templateVariables:
        direction: inbound
      thresholdRange:
        max: 500
      interval: 1m
    webhooks:
    - name: load-test
      type: rollout
      url: http://loadtester.test/
      timeout: 5s
    alerts:
    - name: on-call
      severity: error
      providerRef:
        name: on-call
";

pub(super) const TEMPLATE: &str = "\
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: latency
  namespace: test
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
  query: |
    histogram_quantile(0.99, sum(rate(
      request_duration_bucket{namespace=\"{{ namespace }}\", workload=\"{{ target }}\", direction=\"{{ variables.direction }}\"}[{{ interval }}]
    )) by (le))
";

pub(super) const PROVIDER: &str = "\
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata:
  name: on-call
  namespace: test
spec:
  type: slack
  channel: on-call
  address: https://hooks.slack.com/services/x
";

/// Another kind in the same file: ignored.
pub(super) const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: test
spec:
  replicas: 1
";

/// The fixtures as one multi-document file.
pub(super) fn all() -> String {
    [CANARY, TEMPLATE, PROVIDER, DEPLOYMENT].join("---\n")
}

/// Lints `files` (name, text) with mesh provider `istio`.
pub(super) fn lint_files(files: &[(&str, &str)]) -> Report {
    let inputs: Vec<Input> = files.iter().map(|(n, t)| Input::new(*n, *t)).collect();
    lint_documents(&inputs, "istio")
}

/// Lints one file `f.yaml`.
pub(super) fn lint(text: &str) -> Report {
    lint_files(&[("f.yaml", text)])
}

/// Lints a Canary as `f.yaml` beside [`TEMPLATE`] and [`PROVIDER`] in
/// other files, so that its references resolve.
pub(super) fn lint_canary(text: &str) -> Report {
    lint_files(&[("f.yaml", text), ("t.yaml", TEMPLATE), ("p.yaml", PROVIDER)])
}

/// The printed findings, without the summary.
pub(super) fn lines(report: &Report) -> Vec<String> {
    report.findings.iter().map(ToString::to_string).collect()
}

/// `text` with the first `from` replaced (which must be there).
pub(super) fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in the fixture");
    text.replacen(from, to, 1)
}

/// The only finding is `want` (a printed line), whatever else is allowed.
#[track_caller]
pub(super) fn assert_only(report: &Report, want: &str) {
    assert_eq!(lines(report), [want], "{report:#?}");
}

/// Some finding starts with `want`.
#[track_caller]
pub(super) fn assert_has(report: &Report, want: &str) {
    assert!(
        lines(report).iter().any(|l| l.starts_with(want)),
        "no finding starting with {want:?} in {:#?}",
        lines(report)
    );
}
