//! `test/istio/test-canary.sh`'s take-over end to end: the user's Service
//! `podinfo` and VirtualService `podinfo` exist before the Canary
//! (`revertOnDeletion`); Serin rewrites the VirtualService without owning
//! it and, when the Canary goes, gives both back as the user wrote them.
//! The original spec comes from `flagger.kubernetes.io/original-configuration`
//! (objects made without kubectl) or from kubectl's
//! `last-applied-configuration` (`kubectl apply`, as Flagger's suite does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use crate::support::eventually;
use crate::support::gateway::MeshTest;
use crate::support::istio::{ORIGINAL_CONFIGURATION, istio_canary};
use crate::support::podinfo::{
    SHORT, assert_deployment_initialized, deployment, labels, replicas, selector, wait_gone, yaml,
};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The user's own Service and VirtualService, made before the Canary.
fn user_objects() -> Vec<Value> {
    let service = yaml(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: podinfo
  labels: {app: podinfo}
spec:
  type: ClusterIP
  selector: {app: podinfo}
  ports:
    - {name: http, port: 9898, protocol: TCP, targetPort: http}
"#,
    );
    let vs = yaml(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: podinfo
spec:
  gateways: [public-gateway]
  hosts: [app.example.com, podinfo]
  http:
    - retries:
        attempts: 3
        perTryTimeout: 1s
        retryOn: gateway-error,connect-failure,refused-stream
      route:
        - destination: {host: podinfo}
"#,
    );
    vec![service, vs]
}

/// `kubectl apply -f` of `objects` (a List) in the test's namespace.
async fn kubectl_apply(m: &MeshTest, objects: Vec<Value>) {
    let file = std::env::temp_dir().join(format!("{}-user-objects.json", m.ns()));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(&file, list.to_string()).unwrap();
    // The API server validates against the CRDs anyway; kubectl's own
    // validation would first download /openapi/v2, which with Istio's and
    // Gateway API's CRDs installed can take over its 32 s timeout when the
    // suite is busy.
    let args = ["apply", "--validate=false", "-f", file.to_str().unwrap()];
    let out = m.t.kubectl(&args).await;
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The take-over and the revert; `kubectl`: the user's objects are made by
/// `kubectl apply` (else by a server-side apply, which leaves no
/// last-applied annotation).
async fn takes_over_and_reverts(test: &str, kubectl: bool) {
    let m = MeshTest::start_istio(test, |s| s).await;
    match kubectl {
        true => kubectl_apply(&m, user_objects()).await,
        false => {
            for obj in user_objects() {
                m.t.apply(&obj).await;
            }
        }
    }
    let original = m.vs("podinfo").await;
    let service_uid =
        m.t.tc
            .api::<Service>()
            .get("podinfo")
            .await
            .unwrap()
            .metadata
            .uid;
    assert_eq!(
        original["metadata"]["annotations"]
            .get(LAST_APPLIED)
            .is_some(),
        kubectl,
        "{original:#}"
    );
    let mut c = istio_canary(&m.t.hooks, "{iterations: 2}");
    c["spec"]["revertOnDeletion"] = json!(true);
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    m.wait_vs_weights(100, 0, SHORT).await;

    let vs = m.vs("podinfo").await;
    assert_eq!(vs["metadata"]["uid"], original["metadata"]["uid"]);
    let stored = vs["metadata"]["annotations"][ORIGINAL_CONFIGURATION].as_str();
    match kubectl {
        // kubectl's annotation already holds it: no second copy.
        true => assert_eq!(stored, None, "{vs:#}"),
        false => {
            let stored = stored.unwrap_or_else(|| panic!("no {ORIGINAL_CONFIGURATION}: {vs:#}"));
            let stored: Value = serde_json::from_str(stored).unwrap();
            assert_eq!(stored, original["spec"], "the original spec is kept");
        }
    }
    assert!(
        vs["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|o| o.is_empty()),
        "the user's VirtualService gets no owner: {vs:#}"
    );
    assert_eq!(vs["spec"]["hosts"], json!(["podinfo"]), "{vs:#}");
    assert_eq!(vs["spec"]["gateways"], json!(["mesh"]), "{vs:#}");
    let svc = m.t.tc.api::<Service>().get("podinfo").await.unwrap();
    assert!(
        svc.metadata.owner_references.unwrap_or_default().is_empty(),
        "the user's Service gets no owner"
    );
    assert_eq!(
        selector(&m.t, "podinfo").await,
        labels(&[("app", "podinfo-primary")])
    );
    let primary_replicas = replicas(&deployment(&m.t, "podinfo-primary").await);

    m.delete_canary().await;
    eventually(
        "the VirtualService's spec to be restored",
        SHORT,
        || async {
            let vs = m.vs("podinfo").await;
            match vs["spec"] == original["spec"] {
                true => Ok(()),
                false => Err(format!("{:#}", vs["spec"])),
            }
        },
    )
    .await;
    eventually("the Service to select the target again", SHORT, || async {
        match selector(&m.t, "podinfo").await {
            s if s == labels(&[("app", "podinfo")]) => Ok(()),
            s => Err(format!("{s:?}")),
        }
    })
    .await;
    m.wait_target_back(primary_replicas).await;
    wait_gone(m.t.tc.api::<Deployment>(), "podinfo-primary").await;
    // Both still there, with the user's identity.
    assert_eq!(
        m.vs("podinfo").await["metadata"]["uid"],
        original["metadata"]["uid"]
    );
    let svc = m.t.tc.api::<Service>().get_opt("podinfo").await.unwrap();
    assert_eq!(svc.and_then(|s| s.metadata.uid), service_uid);
}

/// Objects made without kubectl: the original spec goes into
/// `flagger.kubernetes.io/original-configuration` and comes back from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_takes_over_and_reverts_a_users_virtualservice() {
    takes_over_and_reverts("istio-takeover", false).await;
}

/// Objects made by `kubectl apply`, as in Flagger's suite: the original
/// spec comes back from kubectl's last-applied annotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_takes_over_and_reverts_a_kubectl_applied_virtualservice() {
    takes_over_and_reverts("istio-takeover-kubectl", true).await;
}
