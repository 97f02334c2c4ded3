//! Third-party CRDs for the end-to-end tests: Gateway API's (the real ones,
//! `../shared/crds/gateway-api/`), SMI's TrafficSplit
//! (`tests/crds/smi-trafficsplits.yaml`) and Istio's networking ones
//! (`../shared/crds/istio/networking.yaml`). CRDs are cluster-wide and tests
//! run in parallel: the first test of the process to need them applies
//! them (server-side apply, one field manager, `force`, so a second process
//! may install at once), the others wait for it: a dozen applies of Gateway
//! API's large schemas at once slowed the API server enough for kubectl's
//! OpenAPI reads in other tests to time out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;

use super::eventually;

/// The field manager of every test's CRD applies.
const MANAGER: &str = "serin-tests";

/// Every third-party CRD, once per test process, before the first test goes
/// on (`TestCluster::new`). Installed mid-suite, their large schemas slowed
/// the API server while dozens of operators started (request timeouts), and
/// an operator started before them picked the new APIs up a minute later,
/// inside another test's measured idle window.
pub async fn install_all(client: &Client) {
    install_gateway_api(client).await;
    install_smi(client).await;
    install_istio(client).await;
}

/// Applies every CRD of Gateway API (`../shared/crds/gateway-api/*.yaml`:
/// GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant) and waits
/// until they are Established.
pub async fn install_gateway_api(client: &Client) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| gateway_api(client)).await;
}

async fn gateway_api(client: &Client) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/crds/gateway-api");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the Gateway API CRDs in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CRD in {}", dir.display());
    install(client, &files).await;
}

/// Applies SMI's TrafficSplit CRD (`split.smi-spec.io`, v1alpha1 to
/// v1alpha3) and waits until it is Established.
pub async fn install_smi(client: &Client) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/crds/smi-trafficsplits.yaml");
    DONE.get_or_init(|| install(client, std::slice::from_ref(&file)))
        .await;
}

/// The minimal Keptn CRDs of the keptn metrics provider's tests
/// (`tests/crds/keptn-metrics.yaml`: KeptnMetric and Analysis).
pub async fn install_keptn(client: &Client) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/crds/keptn-metrics.yaml");
    DONE.get_or_init(|| install(client, std::slice::from_ref(&file)))
        .await;
}

/// The Istio CRDs the tests need: `networking.istio.io`'s VirtualService,
/// DestinationRule and Gateway.
const ISTIO_CRDS: [&str; 3] = [
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "gateways.networking.istio.io",
];

/// Applies Istio's VirtualService, DestinationRule and Gateway CRDs (from
/// `../shared/crds/istio/networking.yaml`, any other CRD there left out)
/// and waits until they are Established.
pub async fn install_istio(client: &Client) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/crds/istio/networking.yaml");
    DONE.get_or_init(|| async {
        let wanted = |crd: &Value| {
            crd["metadata"]["name"]
                .as_str()
                .is_some_and(|n| ISTIO_CRDS.contains(&n))
        };
        let found = crds(&file).into_iter().filter(|c| wanted(c)).count();
        assert_eq!(
            found,
            ISTIO_CRDS.len(),
            "{} should hold the CRDs {ISTIO_CRDS:?}",
            file.display()
        );
        install_only(client, std::slice::from_ref(&file), &wanted).await
    })
    .await;
}

/// Server-side applies every CRD in `files`, then waits for them.
async fn install(client: &Client, files: &[PathBuf]) {
    install_only(client, files, &|_| true).await
}

/// Server-side applies the CRDs in `files` that `wanted` keeps, then waits
/// for them.
async fn install_only(client: &Client, files: &[PathBuf], wanted: &dyn Fn(&Value) -> bool) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for file in files {
        for crd in crds(file).into_iter().filter(|c| wanted(c)) {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("a CRD without a name in {}", file.display()))
                .to_string();
            apply(&api, &name, &crd).await;
            names.push(name);
        }
    }
    for name in names {
        eventually(
            &format!("CRD {name} to be Established"),
            Duration::from_secs(60),
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

/// The CRD documents of a YAML file.
fn crds(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("bad YAML in {}: {e}", file.display()));
    docs.into_iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect()
}

/// One apply, retried a few times: a concurrent apply of the same CRD by
/// another test can still race with this one.
async fn apply(api: &Api<CustomResourceDefinition>, name: &str, crd: &Value) {
    let params = PatchParams::apply(MANAGER).force();
    let mut last = None;
    for attempt in 0..5u64 {
        match api.patch(name, &params, &Patch::Apply(crd)).await {
            Ok(_) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
    }
    panic!("applying CRD {name}: {last:?}");
}
