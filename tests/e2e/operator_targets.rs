//! End-to-end tests of the operator on other targets and tracked resources:
//! DaemonSet Blue/Green, `revertOnDeletion`, the primary HPA and ConfigMap
//! tracking. The operator runs as a separate process against the local
//! control plane (`make cluster-up`); see operator.rs for the setup and
//! tests/e2e/support/podinfo.rs for the manifests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::eventually;
use crate::support::operator::OperatorTest;
use crate::support::podinfo::{
    INIT, INTERVAL, REPO, RUN, SHORT, assert_deployment_initialized, assert_promoted, blue_green,
    canary, deployment, image_of, labels, pod_spec_of, podinfo_config, podinfo_daemonset,
    podinfo_deployment, podinfo_deployment_with_config, podinfo_hpa, replicas, selector, set_image,
    wait_deployment_available, wait_gone, wait_replicas,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::api::DeleteParams;
use serde_json::json;

/// Flagger's `test/kubernetes/test-daemonset.sh`: DaemonSet Blue/Green with
/// the scale-to-zero node selector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_blue_green_promotes() {
    let t = OperatorTest::start("ds-bg").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_daemonset("6.0.0")).await;
    t.apply(&canary(
        "podinfo-ds",
        "DaemonSet",
        "podinfo-ds",
        &blue_green(1, ""),
    ))
    .await;
    t.wait_phase("podinfo-ds", "Initialized", INIT).await;

    let api: Api<DaemonSet> = t.tc.api();
    let primary = api
        .get("podinfo-ds-primary")
        .await
        .expect("primary DaemonSet");
    let status = primary.status.clone().unwrap_or_default();
    assert!(status.desired_number_scheduled > 0, "{status:?}");
    assert_eq!(
        status.number_ready, status.desired_number_scheduled,
        "the primary is ready: {status:?}"
    );
    let primary_sel = labels(&[("app.kubernetes.io/name", "podinfo-ds-primary")]);
    assert_eq!(selector(&t, "podinfo-ds").await, primary_sel);
    assert_eq!(selector(&t, "podinfo-ds-primary").await, primary_sel);
    assert_eq!(
        selector(&t, "podinfo-ds-canary").await,
        labels(&[("app.kubernetes.io/name", "podinfo-ds")])
    );
    let scaled_down = |ds: &DaemonSet| {
        let spec = serde_json::to_value(&ds.spec.as_ref().unwrap().template.spec).unwrap();
        spec["nodeSelector"]["flagger.app/scale-to-zero"] == "true"
    };
    assert!(
        scaled_down(&api.get("podinfo-ds").await.unwrap()),
        "the target gets the scale-to-zero selector"
    );
    eventually(
        "the target DaemonSet to schedule no pods",
        SHORT,
        || async {
            let s = api
                .get("podinfo-ds")
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            if s.desired_number_scheduled == 0 {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        },
    )
    .await;

    set_image(&t, "DaemonSet", "podinfo-ds", "6.0.1").await;
    t.wait_phase("podinfo-ds", "Succeeded", RUN).await;
    let primary = api.get("podinfo-ds-primary").await.unwrap();
    let spec = serde_json::to_value(&primary.spec.as_ref().unwrap().template.spec).unwrap();
    assert_eq!(image_of(&spec), format!("{REPO}:6.0.1"));
    assert!(
        scaled_down(&api.get("podinfo-ds").await.unwrap()),
        "the target is scaled down again"
    );
    t.wait_event(
        &format!("Promotion completed! Scaling down podinfo-ds.{ns}"),
        SHORT,
    )
    .await;
}

/// `revertOnDeletion`: deleting the Canary gives the target its replicas
/// back, and what the operator generated is garbage-collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_on_deletion_restores_the_target() {
    let t = OperatorTest::start("revert").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    let mut c = canary("podinfo", "Deployment", "podinfo", &blue_green(1, ""));
    c["spec"]["revertOnDeletion"] = json!(true);
    t.apply(&c).await;
    assert_deployment_initialized(&t).await;
    let finalizers = t
        .canaries()
        .get("podinfo")
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap_or_default();
    assert!(
        finalizers.contains(&"finalizer.flagger.app".to_string()),
        "{finalizers:?}"
    );
    let primary_replicas = replicas(&deployment(&t, "podinfo-primary").await);

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
    wait_replicas(&t, "podinfo", primary_replicas).await;
    wait_deployment_available(&t, "podinfo").await;
    t.wait_event(&format!("Terminating canary podinfo.{ns}"), SHORT)
        .await;
    wait_gone(t.tc.api::<Deployment>(), "podinfo-primary").await;
    for svc in ["podinfo", "podinfo-primary", "podinfo-canary"] {
        wait_gone(t.tc.api::<Service>(), svc).await;
    }
}

/// Flagger's `test/kubernetes/test-hpa.sh`: the primary HPA follows the
/// target's HPA at promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_primary_follows_target_autoscaler() {
    let t = OperatorTest::start("hpa").await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&podinfo_hpa(4, 99)).await;
    let mut c = canary("podinfo", "Deployment", "podinfo", &blue_green(1, ""));
    c["spec"]["autoscalerRef"] = json!({ "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo" });
    t.apply(&c).await;
    t.wait_phase("podinfo", "Initialized", INIT).await;

    let api: Api<HorizontalPodAutoscaler> = t.tc.api();
    let spec = api.get("podinfo-primary").await.expect("primary HPA").spec;
    assert_eq!(
        (
            spec.scale_target_ref.kind.as_str(),
            spec.scale_target_ref.name.as_str()
        ),
        ("Deployment", "podinfo-primary")
    );
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 4));
    assert_eq!(
        api.get("podinfo").await.unwrap().spec.scale_target_ref.name,
        "podinfo"
    );

    t.apply(&podinfo_hpa(6, 50)).await;
    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    assert_promoted(&t, "6.0.1").await;
    eventually(
        "the primary HPA to get the target's new spec",
        SHORT,
        || async {
            let spec =
                serde_json::to_value(api.get("podinfo-primary").await.unwrap().spec).unwrap();
            let utilization = &spec["metrics"][0]["resource"]["target"]["averageUtilization"];
            if spec["maxReplicas"] == 6 && *utilization == 50 {
                Ok(())
            } else {
                Err(spec.to_string())
            }
        },
    )
    .await;
}

/// Config tracking: the primary mounts a `-primary` copy of the ConfigMap,
/// and a change of its data starts a run that updates the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_change_starts_a_run() {
    let t = OperatorTest::start("configmap").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_config("blue")).await;
    t.apply(&podinfo_deployment_with_config("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(1, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;

    let status = t.status("podinfo").await;
    let before = status["trackedConfigs"]["configmap/podinfo-config"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        before.len(),
        16,
        "a 16-hex checksum for configmap/podinfo-config: {status}"
    );
    let cms: Api<ConfigMap> = t.tc.api();
    let color = |cm: ConfigMap| {
        cm.data
            .unwrap_or_default()
            .get("color")
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        color(
            cms.get("podinfo-config-primary")
                .await
                .expect("the primary copy")
        ),
        "blue"
    );
    let volume = |d: &Deployment| {
        pod_spec_of(d)["volumes"][0]["configMap"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        volume(&deployment(&t, "podinfo-primary").await),
        "podinfo-config-primary"
    );
    assert_eq!(
        volume(&deployment(&t, "podinfo").await),
        "podinfo-config",
        "the target keeps its own"
    );

    t.apply(&podinfo_config("green")).await;
    t.wait_event(
        &format!("New revision detected! Scaling up podinfo.{ns}"),
        3 * INTERVAL + SHORT,
    )
    .await;
    let status = t.wait_phase("podinfo", "Succeeded", RUN).await;
    let after = status["trackedConfigs"]["configmap/podinfo-config"]
        .as_str()
        .unwrap_or_default();
    assert!(
        after.len() == 16 && after != before,
        "the checksum follows the data: {status}"
    );
    assert_eq!(
        color(cms.get("podinfo-config-primary").await.unwrap()),
        "green"
    );
    assert_eq!(
        volume(&deployment(&t, "podinfo-primary").await),
        "podinfo-config-primary"
    );
    wait_replicas(&t, "podinfo", 0).await;
}
