//! Smoke tests of the local control plane (tests/cluster/): the things every
//! later end-to-end test relies on. They need `make cluster-up` (or `make test`)
//! and fail, never skip, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{TestCluster, TestEnv, eventually, prometheus_query, shared};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.0.0" }] }
            }
        }
    }))
    .unwrap()
}

#[test]
fn missing_testbed_environment_is_a_clear_error() {
    let err = TestEnv::from_vars(&BTreeMap::new()).unwrap_err();
    assert!(err.contains("KUBECONFIG is not set"), "{err}");
    assert!(err.contains("make cluster-up"), "{err}");
}

#[tokio::test]
async fn deployment_with_two_replicas_becomes_available() {
    let tc = TestCluster::new("deployment-available").await;
    let api: Api<Deployment> = tc.api();
    api.create(&PostParams::default(), &deployment("web", 2))
        .await
        .unwrap();
    eventually(
        "deployment web to be Available with 2 replicas",
        Duration::from_secs(60),
        || async {
            let d = api.get("web").await.map_err(|e| e.to_string())?;
            let status = d.status.unwrap_or_default();
            let available = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True");
            match (available, status.available_replicas) {
                (true, Some(2)) => Ok(()),
                other => Err(format!("available condition and replicas: {other:?}")),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn autoscaling_v2_hpa_is_accepted() {
    let tc = TestCluster::new("hpa").await;
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_yaml_doc(
        &std::fs::read_to_string(shared(
            "flagger-compat/workloads/kustomize-podinfo-hpa.yaml",
        ))
        .unwrap(),
    ))
    .unwrap();
    let api: Api<HorizontalPodAutoscaler> = tc.api();
    let created = api.create(&PostParams::default(), &hpa).await.unwrap();
    let read = api
        .get(&created.metadata.name.clone().unwrap())
        .await
        .unwrap();
    let spec = read.spec;
    assert_eq!(spec.scale_target_ref.kind, "Deployment");
    assert_eq!(spec.max_replicas, hpa.spec.max_replicas);
}

fn serde_yaml_doc(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// The API group Flagger's CRDs are installed under here. The suite runs its
/// tests side by side, and the others need Serin's own CRDs under
/// `flagger.app` (whose schema allows the `Valid` condition) and `kubectl get
/// canaries` to mean them: Flagger's are applied with their schemas and
/// columns unchanged, but under this group and with names prefixed
/// `flagger` (`flaggercanaries`, kind `FlaggerCanary`), no short names and
/// no categories, so they never replace or shadow Serin's.
const FLAGGER_GROUP: &str = "flagger-crd.test.serin.dev";

/// Applies Flagger's CRDs from the shared folder (under [`FLAGGER_GROUP`])
/// and waits until they are served.
async fn apply_flagger_crds(client: &Client) {
    let text = std::fs::read_to_string(shared("flagger-compat/crd.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        let mut crd: CustomResourceDefinition = serde_json::from_value(doc).unwrap();
        assert_eq!(crd.spec.group, "flagger.app");
        crd.spec.group = FLAGGER_GROUP.to_string();
        let crd_names = &mut crd.spec.names;
        crd_names.plural = format!("flagger{}", crd_names.plural);
        crd_names.singular = crd_names.singular.as_ref().map(|s| format!("flagger{s}"));
        crd_names.kind = format!("Flagger{}", crd_names.kind);
        crd_names.list_kind = crd_names.list_kind.as_ref().map(|k| format!("Flagger{k}"));
        crd_names.short_names = None;
        crd_names.categories = None;
        let name = format!("{}.{FLAGGER_GROUP}", crd_names.plural);
        crd.metadata.name = Some(name.clone());
        api.patch(
            &name,
            &PatchParams::apply("serin-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        names.push(name);
    }
    assert_eq!(
        names.len(),
        3,
        "crd.yaml should hold Flagger's three CRDs: {names:?}"
    );
    for name in names {
        eventually(
            &format!("CRD {name} to be Established"),
            Duration::from_secs(30),
            || async {
                let crd = api.get(&name).await.map_err(|e| e.to_string())?;
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                if conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                {
                    Ok(())
                } else {
                    Err(format!("{conditions:?}"))
                }
            },
        )
        .await;
    }
}

fn canary_api(tc: &TestCluster) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(FLAGGER_GROUP, "v1beta1", "FlaggerCanary");
    Api::namespaced_with(
        tc.client.clone(),
        &tc.namespace,
        &ApiResource::from_gvk(&gvk),
    )
}

/// The NGINX tutorial's Canary, with its source comment line dropped.
fn nginx_canary() -> Value {
    let path = shared(
        "flagger-compat/manifests/docs-gitbook-tutorials-nginx-progressive-delivery--canary-podinfo-cd8aa0.yaml",
    );
    serde_yaml_doc(&std::fs::read_to_string(path).unwrap())
}

#[tokio::test]
async fn flagger_canary_is_accepted_and_read_back() {
    let tc = TestCluster::new("canary-crd").await;
    apply_flagger_crds(&tc.client).await;
    let mut manifest = nginx_canary();
    manifest["metadata"]["namespace"] = json!(tc.namespace);
    manifest["apiVersion"] = json!(format!("{FLAGGER_GROUP}/v1beta1"));
    manifest["kind"] = json!("FlaggerCanary");
    let obj: DynamicObject = serde_json::from_value(manifest.clone()).unwrap();
    let api = canary_api(&tc);
    api.create(&PostParams::default(), &obj).await.unwrap();
    let read = api.get("podinfo").await.unwrap();
    // The API server prunes nothing of a valid manifest: the spec comes back as sent.
    assert_eq!(read.data["spec"], manifest["spec"]);
}

#[tokio::test]
async fn kubectl_get_canaries_shows_flagger_columns() {
    let tc = TestCluster::new("canary-columns").await;
    apply_flagger_crds(&tc.client).await;
    let mut manifest = nginx_canary();
    manifest["metadata"]["namespace"] = json!(tc.namespace);
    manifest["apiVersion"] = json!(format!("{FLAGGER_GROUP}/v1beta1"));
    manifest["kind"] = json!("FlaggerCanary");
    let obj: DynamicObject = serde_json::from_value(manifest).unwrap();
    canary_api(&tc)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();

    let out = tc
        .env
        .tool("kubectl")
        .args(["get", &format!("flaggercanaries.{FLAGGER_GROUP}"), "-A"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "STATUS",
            "WEIGHT",
            "LASTTRANSITIONTIME"
        ],
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&tc.namespace) && l.contains("podinfo")),
        "{stdout}"
    );
}

#[tokio::test]
async fn prometheus_answers_an_instant_query() {
    let env = TestEnv::from_env();
    let result = prometheus_query(&env, "vector(1)").await;
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0]["value"][1], "1");
}

#[test]
fn helm_runs() {
    let env = TestEnv::from_env();
    let out = env.tool("helm").arg("version").output().unwrap();
    assert!(
        out.status.success(),
        "helm version failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Version:\"v3."));
}

#[tokio::test]
async fn prometheus_scrapes_a_target_written_to_the_targets_file() {
    let env = TestEnv::from_env();
    let label = format!("smoke-{}", std::process::id());
    let target = support::scrape::ScrapeTarget::start(&env.prometheus_targets_file, &label).await;
    target.set("# TYPE serin_testbed_probe gauge\nserin_testbed_probe 42\n");
    let query = format!("serin_testbed_probe{{testbed_target=\"{label}\"}}");
    let value = eventually(
        "Prometheus to scrape the test target",
        Duration::from_secs(30),
        || async {
            let result = prometheus_query(&env, &query).await;
            result
                .first()
                .map(|r| r["value"][1].clone())
                .ok_or_else(|| "no samples yet".to_string())
        },
    )
    .await;
    assert_eq!(value, "42");
}
