//! The operator runs with nothing but the RBAC the Helm chart grants: the
//! chart's ServiceAccount, Role and RoleBinding (namespaced mode) are
//! applied to a test namespace, the API server issues a token for the
//! ServiceAccount (TokenRequest), and `serin` runs with a kubeconfig holding
//! that token, with leader election on. A promotion (with a tracked
//! ConfigMap and an HPA), a rollback and the `revertOnDeletion` finalizer
//! must complete without one `forbidden` in the operator's logs or events.
//! A missing permission is fixed in the chart, not here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::support::helm::{
    SERIN, find, kubectl_apply, scratch_dir, service_account_kubeconfig, template,
};
use crate::support::hooks::HookServer;
use crate::support::operator::{Operator, OperatorTest, install_crds};
use crate::support::podinfo::{
    INIT, INTERVAL, RUN, SHORT, assert_promoted, blue_green, canary, podinfo_config,
    podinfo_deployment_with_config, podinfo_hpa, set_image, wait_replicas, webhook,
};
use crate::support::{TestCluster, TestEnv, eventually};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::{Value, json};

/// Log lines that mention `forbidden` (an API request the RBAC denied).
fn denied(op: &Operator) -> Vec<String> {
    op.logs()
        .into_iter()
        .filter(|l| l.to_lowercase().contains("forbidden"))
        .collect()
}

/// `wait_phase` that fails at once when the operator logs `forbidden`, so a
/// missing permission fails in seconds with the denied request, not after
/// the phase's timeout.
async fn wait_phase_permitted(t: &OperatorTest, phase: &str, timeout: Duration) {
    eventually(
        &format!("canary podinfo to reach {phase}"),
        timeout,
        || async {
            let denied = denied(&t.op);
            assert!(
                denied.is_empty(),
                "the chart's RBAC is missing something; the operator logged:\n{}",
                denied.join("\n")
            );
            let status = t.status("podinfo").await;
            match status["phase"].as_str() {
                Some(now) if now == phase => Ok(()),
                _ => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Err(status.to_string())
                }
            }
        },
    )
    .await;
}

fn podinfo_canary(analysis: &str) -> Value {
    let mut c = canary("podinfo", "Deployment", "podinfo", analysis);
    c["spec"]["revertOnDeletion"] = json!(true);
    c["spec"]["autoscalerRef"] = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "name": "podinfo"
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_with_only_the_charts_rbac_promotes_and_rolls_back() {
    let tc = TestCluster::new("helm-rbac").await;
    let ns = tc.namespace.clone();
    install_crds(&tc.client).await;

    // The chart's identity and permissions, namespaced mode, released into
    // the test namespace.
    let values = format!("namespace: {ns}\nleaderElection:\n  enabled: true\n");
    let objs = template(&tc.env, SERIN, "serin", &ns, &values);
    let identity = [
        find(&objs, "ServiceAccount", "serin"),
        find(&objs, "Role", "serin"),
        find(&objs, "RoleBinding", "serin"),
    ];
    kubectl_apply(&tc.env, &ns, &identity, false);
    let dir = scratch_dir("helm-rbac");
    let kubeconfig = service_account_kubeconfig(&tc.env, &ns, "serin", &dir);
    let as_sa = TestEnv {
        kubeconfig,
        ..tc.env.clone()
    };
    let hooks = HookServer::start().await;
    // Operator::start adds -namespace (the chart's `namespace` value) and
    // the test flags; the Lease goes to -namespace, under the Role.
    let op = Operator::start(&as_sa, &ns, &["-enable-leader-election=true"]).await;
    let mut t = OperatorTest { op, hooks, tc };

    t.apply(&podinfo_config("blue")).await;
    t.apply(&podinfo_deployment_with_config("6.0.0")).await;
    t.apply(&podinfo_hpa(4, 99)).await;
    t.apply(&podinfo_canary(&blue_green(1, ""))).await;
    wait_phase_permitted(&t, "Initialized", INIT).await;
    let leases: Api<Lease> = t.tc.api();
    let lease = leases
        .get("flagger-leader-election")
        .await
        .expect("the Lease in the namespace");
    assert!(
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| !h.is_empty()),
        "the operator holds the Lease"
    );
    let hpas: Api<HorizontalPodAutoscaler> = t.tc.api();
    hpas.get("podinfo-primary").await.expect("the primary HPA");
    let configmaps: Api<ConfigMap> = t.tc.api();
    configmaps
        .get("podinfo-config-primary")
        .await
        .expect("the primary's ConfigMap copy");

    // A promotion, with a changed ConfigMap synced to the copy.
    t.apply(&podinfo_config("green")).await;
    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    wait_phase_permitted(&t, "Succeeded", RUN).await;
    assert_promoted(&t, "6.0.1").await;
    eventually("the ConfigMap copy to be synced", SHORT, || async {
        let copy = configmaps
            .get("podinfo-config-primary")
            .await
            .map_err(|e| e.to_string())?;
        match copy
            .data
            .unwrap_or_default()
            .get("color")
            .map(String::as_str)
        {
            Some("green") => Ok(()),
            other => Err(format!("color {other:?}")),
        }
    })
    .await;

    // A rollback: a rollout webhook that always fails.
    let failing = webhook("load", "rollout", &t.hooks.url("/fail"));
    t.apply(&podinfo_canary(&blue_green(3, &failing))).await;
    set_image(&t, "Deployment", "podinfo", "6.0.2").await;
    wait_phase_permitted(&t, "Failed", RUN).await;
    wait_replicas(&t, "podinfo", 0).await;
    t.wait_event(&format!("Canary failed! Scaling down podinfo.{ns}"), SHORT)
        .await;

    // revertOnDeletion: the finalizer flow.
    t.canaries()
        .delete("podinfo", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the Canary to be finalized and deleted",
        3 * INTERVAL + SHORT,
        || async {
            match t.canaries().get_opt("podinfo").await {
                Ok(None) => Ok(()),
                Ok(Some(c)) => Err(format!("status {}", c.data["status"])),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    t.wait_event(&format!("Terminating canary podinfo.{ns}"), SHORT)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert!(t.op.is_running(), "the operator is still running");
    let logged = denied(&t.op);
    assert!(
        logged.is_empty(),
        "the chart's RBAC is missing something; the operator logged:\n{}",
        logged.join("\n")
    );
    let events = t.events().await;
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e.message.to_lowercase().contains("forbidden"))
        .collect();
    assert!(denied.is_empty(), "{denied:#?}");
    let _ = std::fs::remove_dir_all(dir);
}
