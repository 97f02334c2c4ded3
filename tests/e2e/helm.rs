//! The Helm charts in deploy/helm/ (`serin` and `serin-loadtester`): their
//! CRDs match deploy/crds/, `helm lint --strict`, what `helm template`
//! renders with default and non-default values (Flagger's value names and
//! flags), the failures for values the chart cannot honour, a server-side dry
//! run of the rendered objects, the dashboard's PromQL against the testbed's
//! Prometheus, and a promotion on the CRDs the chart ships. The run with only
//! the chart's RBAC is in helm_rbac.rs. helm and kubectl are the
//! testbed's (tests/cluster/), so these tests need `make cluster-up`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use crate::support::helm::{
    LOADTESTER, SERIN, all_of, chart_dir, container_args, find, install_chart_crds, inventory,
    kubectl_apply, lint, str_at, template, try_template,
};
use crate::support::hooks::HookServer;
use crate::support::operator::{Operator, OperatorTest};
use crate::support::podinfo::{
    assert_deployment_initialized, assert_promoted, blue_green, canary, podinfo_deployment,
    set_image,
};
use crate::support::{TestCluster, TestEnv, prometheus_query};
use serde_json::{Value, json};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the operator does with each kind (grep src/ for the requests), as
/// (API group, resource, verbs). Nothing more may be in the chart's role.
const RBAC: &[(&str, &str, &[&str])] = &[
    (
        "flagger.app",
        "canaries",
        &["get", "list", "watch", "patch"],
    ),
    ("flagger.app", "canaries/status", &["patch"]),
    ("flagger.app", "canaries/finalizers", &["update"]),
    ("flagger.app", "metrictemplates", &["get", "list", "watch"]),
    ("flagger.app", "alertproviders", &["get", "list", "watch"]),
    (
        "apps",
        "deployments",
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "apps",
        "daemonsets",
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "autoscaling",
        "horizontalpodautoscalers",
        &["get", "list", "watch", "create", "patch"],
    ),
    ("", "services", &["get", "list", "watch", "create", "patch"]),
    (
        "gateway.networking.k8s.io",
        "httproutes",
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "split.smi-spec.io",
        "trafficsplits",
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "networking.istio.io",
        "virtualservices",
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "networking.istio.io",
        "destinationrules",
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "",
        "configmaps",
        &["get", "list", "watch", "create", "update"],
    ),
    ("", "secrets", &["get", "list", "watch", "create", "update"]),
    ("", "events", &["create", "patch"]),
    (
        "networking.k8s.io",
        "ingresses",
        &["get", "list", "watch", "create", "patch"],
    ),
    ("coordination.k8s.io", "leases", &["get", "create", "patch"]),
    // Any metric name: the external metrics API's resources are metrics.
    ("external.metrics.k8s.io", "*", &["list"]),
    ("metrics.keptn.sh", "keptnmetrics", &["get"]),
    ("metrics.keptn.sh", "analyses", &["get", "create", "delete"]),
];

fn expected_rbac() -> BTreeSet<(String, String, String)> {
    RBAC.iter()
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(move |v| (group.to_string(), resource.to_string(), v.to_string()))
        })
        .collect()
}

/// Every (group, resource, verb) a role grants; fails on wildcards (but
/// the external metrics API's any-metric) and nonResourceURLs.
fn granted(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(rule.get("nonResourceURLs").is_none(), "{rule}");
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .unwrap_or_else(|| panic!("rule without {key}: {rule}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    let any_metric = group == "external.metrics.k8s.io" && resource == "*";
                    assert!(
                        group != "*" && (resource != "*" || any_metric) && verb != "*",
                        "a wildcard: {rule}"
                    );
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn pod_spec(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

fn container(deployment: &Value) -> &Value {
    &pod_spec(deployment)["containers"][0]
}

/// The rendered args parse in the real binary: `serin <args> -version`
/// prints the version and exits 0 (an unknown flag or bad value exits 2).
fn assert_serin_accepts(args: &[String]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .arg("-version")
        .output()
        .expect("run serin -version");
    assert!(
        out.status.success(),
        "serin refused the chart's args {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chart_file(chart: &str, path: &str) -> String {
    let file = chart_dir(chart).join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `values.yaml` of a chart as JSON.
fn chart_values(chart: &str) -> Value {
    serde_saphyr::from_str(&chart_file(chart, "values.yaml")).unwrap()
}

// ---- files ------------------------------------------------------------------

#[test]
fn chart_crds_are_byte_copies_of_deploy_crds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let source = root.join("deploy/crds");
    let copies = chart_dir(SERIN).join("crds");
    assert_eq!(
        names(&source),
        names(&copies),
        "deploy/helm/serin/crds/ must hold exactly the files of deploy/crds/"
    );
    for name in names(&source) {
        let a = std::fs::read(source.join(&name)).unwrap();
        let b = std::fs::read(copies.join(&name)).unwrap();
        assert!(
            a == b,
            "deploy/helm/serin/crds/{name} differs from deploy/crds/{name}: \
             run `cp deploy/crds/*.yaml deploy/helm/serin/crds/`"
        );
    }
}

#[test]
fn chart_versions_follow_the_crate() {
    for chart in [SERIN, LOADTESTER] {
        let meta: Value = serde_saphyr::from_str(&chart_file(chart, "Chart.yaml")).unwrap();
        assert_eq!(meta["apiVersion"], "v2", "{chart}");
        assert_eq!(meta["name"], chart);
        assert_eq!(meta["appVersion"], VERSION, "{chart}: appVersion");
        assert_eq!(meta["version"], VERSION, "{chart}: version");
    }
}

/// The dashboard is valid JSON over the series the operator exports, and
/// every query parses in the testbed's Prometheus.
#[tokio::test]
async fn dashboard_covers_the_operator_series_and_its_promql_parses() {
    let env = TestEnv::from_env();
    let text = chart_file(SERIN, "dashboards/serin.json");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "serin-canaries");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for series in [
        "flagger_canary_status",
        "flagger_canary_weight",
        "flagger_canary_total",
        "flagger_canary_duration_seconds_bucket",
        "flagger_canary_successes_total",
        "flagger_canary_failures_total",
        "flagger_canary_metric_analysis",
        "serin_api_requests_total",
        "serin_tick_lateness_seconds_bucket",
        "serin_actor_restarts_total",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(series)),
            "no panel queries {series}"
        );
    }
    for expr in &exprs {
        // Grafana's variables, as Grafana expands "All" and the range.
        let query = expr
            .replace("$namespace", ".*")
            .replace("$canary", ".*")
            .replace("$__range", "1h");
        prometheus_query(&env, &query).await;
    }
}

// ---- lint -------------------------------------------------------------------

#[test]
fn both_charts_pass_helm_lint_strict() {
    let env = TestEnv::from_env();
    lint(&env, SERIN, "");
    lint(
        &env,
        SERIN,
        "namespace: team-a\nleaderElection:\n  enabled: true\n  replicaCount: 2\n\
         serviceMonitor:\n  enabled: true\npodMonitor:\n  enabled: true\n\
         podDisruptionBudget:\n  enabled: true\ndashboard:\n  enabled: true\n",
    );
    lint(&env, LOADTESTER, "");
    lint(
        &env,
        LOADTESTER,
        "rbac:\n  create: true\n  scope: cluster\n  rules:\n    - apiGroups: [\"\"]\n      resources: [\"pods\"]\n      verbs: [\"list\"]\n\
         podDisruptionBudget:\n  enabled: true\n",
    );
}

// ---- the serin chart ----------------------------------------------------------

#[test]
fn default_values_render_a_least_privilege_cluster_install() {
    let env = TestEnv::from_env();
    let objs = template(&env, SERIN, "serin", "serin-system", "");
    assert_eq!(
        inventory(&objs),
        [
            "ClusterRole/serin",
            "ClusterRoleBinding/serin",
            "Deployment/serin",
            "Service/serin",
            "ServiceAccount/serin",
        ]
    );

    let d = find(&objs, "Deployment", "serin");
    assert_eq!(str_at(d, "/metadata/namespace"), "serin-system");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"]["type"], "Recreate",
        "one operator at a time without leader election"
    );
    let pod = pod_spec(d);
    assert_eq!(pod["serviceAccountName"], "serin");
    let c = container(d);
    assert_eq!(c["image"], format!("ghcr.io/serin-dev/serin:{VERSION}"));
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"],
        json!({ "prometheus.io/scrape": "true", "prometheus.io/port": "8080" })
    );
    let security = &c["securityContext"];
    assert_eq!(security["runAsNonRoot"], true, "{security}");
    assert_eq!(security["runAsUser"], 10001, "{security}");
    assert_eq!(security["readOnlyRootFilesystem"], true, "{security}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "10m", "memory": "32Mi" }, "limits": { "cpu": "1000m", "memory": "512Mi" } })
    );
    assert_eq!(
        c["ports"],
        json!([{ "name": "http", "containerPort": 8080, "protocol": "TCP" }])
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["httpGet"],
            json!({ "path": "/healthz", "port": "http" }),
            "{probe}: the image has no wget"
        );
    }
    assert!(c.get("env").is_none(), "{c}");
    let args = container_args(d);
    assert_eq!(
        args,
        [
            "-log-level=info",
            "-metrics-server=http://prometheus:9090",
            "-enable-config-tracking=true",
            "-slack-user=flagger",
        ]
    );
    assert_serin_accepts(&args);

    let role = find(&objs, "ClusterRole", "serin");
    assert_eq!(granted(role), expected_rbac());
    let binding = find(&objs, "ClusterRoleBinding", "serin");
    assert_eq!(
        binding["roleRef"],
        json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "serin" })
    );
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "serin", "namespace": "serin-system" }])
    );

    let svc = find(&objs, "Service", "serin");
    assert_eq!(
        svc["spec"]["selector"],
        d["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
}

/// A Flagger values file carries over: every flag Flagger's chart passes,
/// with its value names, Flagger-only keys ignored, Slack from a Secret.
#[test]
fn flagger_values_render_flaggers_flags() {
    let env = TestEnv::from_env();
    let values = r#"
image:
  repository: registry.example.com/serin
  tag: 0.1.0-rc1
  pullPolicy: Always
  pullSecret: regcred
logLevel: debug
meshProvider: kubernetes
metricsServer: http://prometheus.monitoring:9090
selectorLabels: app,name
configTracking:
  enabled: false
includeLabelPrefix: app.kubernetes.io,team
ingressAnnotationsPrefix: custom.ingress.kubernetes.io
eventWebhook: https://events.example.com/hook
clusterName: prod-eu
slack:
  user: serin
  channel: deploys
  url: https://hooks.slack.com/services/T/B/X
  proxyUrl: http://proxy:3128
msteams:
  url: https://example.webhook.office.com/x
  proxyUrl: http://proxy:3128
kubeconfigQPS: 50
kubeconfigBurst: 100
noCrossNamespaceRefs: true
env:
  - name: SLACK_URL
    valueFrom:
      secretKeyRef:
        name: slack
        key: url
podAnnotations:
  example.com/team: platform
nodeSelector:
  kubernetes.io/os: linux
tolerations:
  - key: dedicated
    operator: Equal
    value: ops
    effect: NoSchedule
# Flagger-only values: accepted and ignored.
threadiness: 4
ingressClass: contour
crd:
  create: false
linkerdAuthPolicy:
  create: false
"#;
    let objs = template(&env, SERIN, "flagger", "flagger-system", values);
    let d = find(&objs, "Deployment", "flagger-serin");
    let args = container_args(d);
    assert_eq!(
        args,
        [
            "-log-level=debug",
            "-mesh-provider=kubernetes",
            "-metrics-server=http://prometheus.monitoring:9090",
            "-selector-labels=app,name",
            "-enable-config-tracking=false",
            "-include-label-prefix=app.kubernetes.io,team",
            "-ingress-annotations-prefix=custom.ingress.kubernetes.io",
            "-slack-url=https://hooks.slack.com/services/T/B/X",
            "-slack-proxy-url=http://proxy:3128",
            "-slack-user=serin",
            "-slack-channel=deploys",
            "-msteams-url=https://example.webhook.office.com/x",
            "-msteams-proxy-url=http://proxy:3128",
            "-event-webhook=https://events.example.com/hook",
            "-cluster-name=prod-eu",
            "-kubeconfig-qps=50",
            "-kubeconfig-burst=100",
            "-no-cross-namespace-refs=true",
        ]
    );
    assert_serin_accepts(&args);
    let c = container(d);
    assert_eq!(c["image"], "registry.example.com/serin:0.1.0-rc1");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        pod_spec(d)["imagePullSecrets"],
        json!([{ "name": "regcred" }])
    );
    assert_eq!(
        c["env"],
        json!([{ "name": "SLACK_URL", "valueFrom": { "secretKeyRef": { "name": "slack", "key": "url" } } }])
    );
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["example.com/team"],
        "platform"
    );
    assert_eq!(
        pod_spec(d)["nodeSelector"],
        json!({ "kubernetes.io/os": "linux" })
    );
    assert_eq!(pod_spec(d)["tolerations"][0]["key"], "dedicated");
    assert!(
        all_of(&objs, "CustomResourceDefinition").is_empty(),
        "CRDs come from crds/, not templates"
    );
}

/// Namespaced mode with leader election and two replicas, Slack from a
/// Secret, and every optional object on.
#[test]
fn namespaced_mode_with_leader_election_and_monitoring_renders() {
    let env = TestEnv::from_env();
    let values = r#"
namespace: team-a
leaderElection:
  enabled: true
  replicaCount: 2
env:
  - name: SLACK_URL
    valueFrom:
      secretKeyRef:
        name: slack
        key: url
serviceMonitor:
  enabled: true
  additionalLabels:
    release: kube-prometheus-stack
podMonitor:
  enabled: true
  interval: 30s
podDisruptionBudget:
  enabled: true
dashboard:
  enabled: true
"#;
    let objs = template(&env, SERIN, "serin", "serin-system", values);
    assert_eq!(
        inventory(&objs),
        [
            "ConfigMap/serin-dashboard",
            "Deployment/serin",
            "PodDisruptionBudget/serin",
            "PodMonitor/serin",
            "Role/serin",
            "RoleBinding/serin",
            "Service/serin",
            "ServiceAccount/serin",
            "ServiceMonitor/serin",
        ],
        "a Role instead of a ClusterRole"
    );

    let d = find(&objs, "Deployment", "serin");
    assert_eq!(d["spec"]["replicas"], 2);
    assert!(
        d["spec"].get("strategy").is_none(),
        "a rolling update: the Lease keeps one leader"
    );
    let args = container_args(d);
    for arg in [
        "-namespace=team-a",
        "-enable-leader-election=true",
        "-leader-election-namespace=serin-system",
    ] {
        assert!(args.contains(&arg.to_string()), "{arg} in {args:?}");
    }
    assert_serin_accepts(&args);
    assert_eq!(
        container(d)["env"][0]["valueFrom"]["secretKeyRef"],
        json!({ "name": "slack", "key": "url" })
    );
    assert!(
        !args.iter().any(|a| a.starts_with("-slack-url")),
        "the URL comes from the Secret only: {args:?}"
    );

    let role = find(&objs, "Role", "serin");
    assert_eq!(str_at(role, "/metadata/namespace"), "team-a");
    assert_eq!(granted(role), expected_rbac());
    let binding = find(&objs, "RoleBinding", "serin");
    assert_eq!(str_at(binding, "/metadata/namespace"), "team-a");
    assert_eq!(
        binding["roleRef"],
        json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "serin" })
    );
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "serin", "namespace": "serin-system" }])
    );

    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    let selects_pods = |selector: &Value| {
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(
                &pod_labels[k], v,
                "selector {selector} vs pod labels {pod_labels}"
            );
        }
    };
    let svc = find(&objs, "Service", "serin");
    let sm = find(&objs, "ServiceMonitor", "serin");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the Service"
        );
    }
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        sm["spec"]["namespaceSelector"]["matchNames"],
        json!(["serin-system"])
    );
    let pm = find(&objs, "PodMonitor", "serin");
    selects_pods(&pm["spec"]["selector"]["matchLabels"]);
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "http");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["interval"], "30s");
    let pdb = find(&objs, "PodDisruptionBudget", "serin");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    selects_pods(&pdb["spec"]["selector"]["matchLabels"]);

    let cm = find(&objs, "ConfigMap", "serin-dashboard");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value = serde_json::from_str(str_at(cm, "/data/serin.json")).unwrap();
    let file: Value = serde_json::from_str(&chart_file(SERIN, "dashboards/serin.json")).unwrap();
    assert_eq!(embedded, file);
}

#[test]
fn values_the_chart_cannot_honour_fail_the_render() {
    let env = TestEnv::from_env();
    let fails = |values: &str, expect: &str| {
        let err = try_template(&env, SERIN, "serin", "serin-system", values, &[])
            .err()
            .unwrap_or_else(|| panic!("rendered with values {values:?}"));
        assert!(err.contains(expect), "{expect:?} not in:\n{err}");
    };
    fails(
        "leaderElection:\n  replicaCount: 2\n",
        "more than one replica needs leader election",
    );
    fails(
        "prometheus:\n  install: true\n",
        "prometheus.install is not supported",
    );
    fails("logLevel: verbose\n", "logLevel");
    fails("leaderElection:\n  replicaCount: two\n", "replicaCount");
    fails(
        "serviceMonitor:\n  enabled: true\nservice:\n  enabled: false\n",
        "serviceMonitor.enabled needs service.enabled",
    );
}

// ---- the loadtester chart -------------------------------------------------------

/// Installed as Flagger documents it (`helm upgrade -i flagger-loadtester
/// ... -n test`), the Service is `flagger-loadtester.test` on port 80, so
/// Canaries calling `http://flagger-loadtester.test/` work unchanged.
#[test]
fn loadtester_chart_keeps_flaggers_service_name() {
    let env = TestEnv::from_env();
    let objs = template(&env, LOADTESTER, "flagger-loadtester", "test", "");
    assert_eq!(
        inventory(&objs),
        [
            "Deployment/flagger-loadtester",
            "Service/flagger-loadtester"
        ]
    );
    let svc = find(&objs, "Service", "flagger-loadtester");
    assert_eq!(str_at(svc, "/metadata/namespace"), "test");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{ "name": "http", "port": 80, "targetPort": "http", "protocol": "TCP" }])
    );
    let d = find(&objs, "Deployment", "flagger-loadtester");
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v);
    }
    let c = container(d);
    assert_eq!(
        c["image"],
        format!("ghcr.io/serin-dev/serin-loadtester:{VERSION}")
    );
    assert_eq!(
        c["ports"],
        json!([{ "name": "http", "containerPort": 9090, "protocol": "TCP" }])
    );
    assert_eq!(
        container_args(d),
        ["-port=9090", "-log-level=info", "-timeout=1h"]
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/tmp");
    assert!(pod_spec(d).get("serviceAccountName").is_none());

    let values = r#"
cmd:
  timeout: 30m
  namespaceRegexp: "^(test|staging)$"
logLevel: debug
service:
  port: 8080
rbac:
  create: true
  rules:
    - apiGroups: ["apps"]
      resources: ["deployments"]
      verbs: ["get", "list"]
"#;
    let objs = template(&env, LOADTESTER, "lt", "test", values);
    assert_eq!(
        inventory(&objs),
        [
            "Deployment/lt-loadtester",
            "Role/lt-loadtester",
            "RoleBinding/lt-loadtester",
            "Service/lt-loadtester",
            "ServiceAccount/lt-loadtester",
        ]
    );
    let d = find(&objs, "Deployment", "lt-loadtester");
    let args = container_args(d);
    assert_eq!(
        args,
        [
            "-port=9090",
            "-log-level=debug",
            "-timeout=30m",
            "-namespace-regexp=^(test|staging)$",
        ]
    );
    assert_eq!(pod_spec(d)["serviceAccountName"], "lt-loadtester");
    assert_eq!(
        find(&objs, "Service", "lt-loadtester")["spec"]["ports"][0]["port"],
        8080
    );
    // The loadtester binary accepts the rendered flags (`--help` after them
    // exits 0 only when they parse).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_serin-loadtester"))
        .args(&args)
        .arg("--help")
        .output()
        .expect("run serin-loadtester");
    assert!(
        out.status.success(),
        "serin-loadtester refused {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        chart_values(LOADTESTER)["service"]["port"],
        80,
        "Flagger's default"
    );
}

// ---- on the API server --------------------------------------------------------------

/// Everything both charts render passes the API server's validation and
/// admission (`kubectl apply --dry-run=server`): cluster mode, namespaced
/// mode with every option, and the loadtester with RBAC.
#[tokio::test]
async fn rendered_manifests_pass_a_server_side_dry_run() {
    let tc = TestCluster::new("helm-dry-run").await;
    let ns = tc.namespace.clone();
    let everything = format!(
        "namespace: {ns}\nleaderElection:\n  enabled: true\n  replicaCount: 2\n\
         serviceMonitor:\n  enabled: true\npodMonitor:\n  enabled: true\n\
         podDisruptionBudget:\n  enabled: true\ndashboard:\n  enabled: true\n\
         env:\n  - name: SLACK_URL\n    valueFrom:\n      secretKeyRef:\n        name: slack\n        key: url\n"
    );
    let renders = [
        template(&tc.env, SERIN, "serin", &ns, ""),
        template(&tc.env, SERIN, "serin", &ns, &everything),
        template(
            &tc.env,
            LOADTESTER,
            "flagger-loadtester",
            &ns,
            "rbac:\n  create: true\n  rules:\n    - apiGroups: [\"\"]\n      resources: [\"pods\"]\n      verbs: [\"get\"]\npodDisruptionBudget:\n  enabled: true\n",
        ),
    ];
    for objs in &renders {
        // The testbed has no Prometheus Operator, so the API server does not
        // know monitoring.coreos.com: those two kinds are checked by the
        // render tests above, not here.
        let known: Vec<&Value> = objs
            .iter()
            .filter(|o| !str_at(o, "/apiVersion").starts_with("monitoring.coreos.com/"))
            .collect();
        assert!(!known.is_empty());
        let said = kubectl_apply(&tc.env, &ns, &known, true);
        assert!(said.contains("(server dry run)"), "{said}");
    }
}

/// The CRDs the chart ships (`helm template --include-crds`) on the local
/// control plane, and one Blue/Green promotion on them with the Kubernetes
/// provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_crds_install_and_a_canary_is_promoted() {
    let tc = TestCluster::new("helm-crds").await;
    let names = install_chart_crds(&tc.env, &tc.client).await;
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>(),
        [
            "alertproviders.flagger.app",
            "canaries.flagger.app",
            "metrictemplates.flagger.app",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .iter()
        .collect::<BTreeSet<_>>()
    );
    let hooks = HookServer::start().await;
    let op = Operator::start(&tc.env, &tc.namespace, &[]).await;
    let t = OperatorTest { op, hooks, tc };

    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(1, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;
    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    assert_promoted(&t, "6.0.1").await;
}
