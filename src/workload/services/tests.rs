use k8s_openapi::api::core::v1::{Container, ContainerPort};
use serde_json::json;

use super::*;
use crate::api::canary::UnmanagedMetadata;
use crate::workload::metadata::controller_ref;

fn canary_service() -> CanaryService {
    serde_json::from_value(json!({"port": 80, "targetPort": 9898, "appProtocol": "http"}))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn plan<'a>(custom: Option<&'a CustomMetadata>) -> ServicePlan<'a> {
    ServicePlan {
        name: "podinfo".into(),
        selector_key: "app",
        selector_value: "podinfo-primary".into(),
        custom,
    }
}

#[test]
fn discovers_ports_except_sidecars_and_target_port() {
    let port = |name: Option<&str>, n: i32| ContainerPort {
        name: name.map(str::to_string),
        container_port: n,
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![
            Container {
                name: "app".into(),
                ports: Some(vec![
                    port(Some("http"), 9898),
                    port(Some("grpc"), 9999),
                    port(None, 8080),
                ]),
                ..Default::default()
            },
            Container {
                name: "istio-proxy".into(),
                ports: Some(vec![port(Some("envoy"), 15090)]),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let ports = discover_ports(&pod, &canary_service());
    assert_eq!(
        ports,
        BTreeMap::from([("grpc".to_string(), 9999), ("tcp-app-2".to_string(), 8080)])
    );
}

#[test]
fn new_service_carries_ports_metadata_and_owner() {
    let custom = CustomMetadata {
        labels: Some(BTreeMap::from([("team".to_string(), "a".to_string())])),
        annotations: Some(BTreeMap::from([("note".to_string(), "x".to_string())])),
    };
    let mut svc = canary_service();
    svc.headless = Some(true);
    let discovered = BTreeMap::from([("grpc".to_string(), 9999)]);
    let out = new_service(
        &plan(Some(&custom)),
        &svc,
        &discovered,
        "test",
        controller_ref("podinfo", "u1"),
    );
    let value = serde_json::to_value(&out).unwrap_or_default();
    assert_eq!(
        value,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "podinfo",
                "namespace": "test",
                "labels": {"app": "podinfo", "team": "a"},
                "annotations": {
                    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
                    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
                    "note": "x"
                },
                "ownerReferences": [{
                    "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "podinfo",
                    "uid": "u1", "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "None",
                "selector": {"app": "podinfo-primary"},
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9898, "appProtocol": "http"},
                    {"name": "grpc", "protocol": "TCP", "port": 9999, "targetPort": 9999}
                ]
            }
        })
    );
}

#[test]
fn identical_service_needs_no_patch() {
    let svc = canary_service();
    let none = BTreeMap::new();
    let live = new_service(
        &plan(None),
        &svc,
        &none,
        "test",
        controller_ref("podinfo", "u1"),
    );
    assert_eq!(
        service_patch(&live, &plan(None), &svc, &none, "podinfo"),
        None
    );
}

#[test]
fn owned_service_patch_keeps_node_ports_and_unmanaged_keys() {
    let mut svc = canary_service();
    svc.unmanaged_metadata = Some(UnmanagedMetadata {
        annotations: Some(vec!["keep".into()]),
        labels: None,
    });
    let none = BTreeMap::new();
    let mut live = new_service(
        &plan(None),
        &svc,
        &none,
        "test",
        controller_ref("podinfo", "u1"),
    );
    if let Some(spec) = live.spec.as_mut() {
        spec.selector = Some(BTreeMap::from([("app".to_string(), "podinfo".to_string())]));
        if let Some(p) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
            p.node_port = Some(30080);
        }
    }
    if let Some(a) = live.metadata.annotations.as_mut() {
        a.insert("keep".into(), "by-user".into());
        a.insert("stale".into(), "x".into());
    }
    let patch = service_patch(&live, &plan(None), &svc, &none, "podinfo");
    assert_eq!(
        patch,
        Some(json!({
            "metadata": {"annotations": {"stale": null}},
            "spec": {"selector": {"app": "podinfo-primary"}}
        }))
    );
}

#[test]
fn user_apex_service_gets_only_ports_and_selector() {
    let svc = canary_service();
    let none = BTreeMap::new();
    let live = Service {
        metadata: ObjectMeta {
            name: Some("podinfo".into()),
            labels: Some(BTreeMap::from([("owner".to_string(), "me".to_string())])),
            annotations: Some(BTreeMap::from([(
                LAST_APPLIED.to_string(),
                r#"{"spec":{"selector":{"app":"podinfo"}}}"#.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("NodePort".into()),
            selector: Some(BTreeMap::from([("app".to_string(), "podinfo".to_string())])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 8080,
                node_port: Some(30001),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    let patch = service_patch(&live, &plan(None), &svc, &none, "podinfo").unwrap_or_default();
    assert_eq!(patch["spec"]["selector"], json!({"app": "podinfo-primary"}));
    assert_eq!(patch["spec"]["ports"][0]["nodePort"], json!(30001));
    assert_eq!(patch["spec"]["ports"][0]["port"], json!(80));
    assert_eq!(patch["metadata"].get("labels"), None);
    assert_eq!(
        patch["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"],
        json!("disabled")
    );
    let restored = last_applied_selector(&live).and_then(Result::ok);
    assert_eq!(
        restored.clone(),
        Some(BTreeMap::from([("app".to_string(), "podinfo".to_string())]))
    );
    assert_eq!(selector_patch(&live, &restored.unwrap_or_default()), None);
}
