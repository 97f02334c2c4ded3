use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
use serin_actors::ports::{CanaryKey, PortError};

use super::build::{LAST_APPLIED, canary_spec};
use super::*;
use crate::api::Canary;
use crate::k8s::cache::testing::{empty, store_of};
use crate::workload::metadata::Labels;

mod routes;

pub(super) const PREFIX: &str = "nginx.ingress.kubernetes.io";

pub(super) fn keys() -> Keys {
    Keys::new(PREFIX)
}

pub(super) fn key() -> CanaryKey {
    CanaryKey::new("test", "podinfo")
}

pub(super) fn map(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn user_ingress() -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                "nginx.ingress.kubernetes.io/canary-weight": "40",
                "nginx.ingress.kubernetes.io/affinity": "cookie",
                LAST_APPLIED: "{}",
            },
        },
        "spec": {
            "rules": [{
                "host": "app.example.com",
                "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "podinfo", "port": {"number": 80}}}},
                    {"path": "/static", "pathType": "Prefix",
                     "backend": {"service": {"name": "assets", "port": {"number": 80}}}},
                ]},
            }],
        },
    }))
    .expect("ingress")
}

pub(super) fn canary(extra_analysis: serde_json::Value) -> Canary {
    let mut analysis =
        json!({"interval": "15s", "threshold": 2, "maxWeight": 50, "stepWeight": 10});
    if let (Some(a), Some(extra)) = (analysis.as_object_mut(), extra_analysis.as_object()) {
        a.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "uid-1"},
        "spec": {
            "provider": "nginx",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": analysis,
        },
    }))
    .expect("canary")
}

pub(super) fn ab_canary() -> Canary {
    canary(json!({"iterations": 10, "match": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"exact": "canary"}}},
    ]}))
}

pub(super) fn caches(canary: Canary, ingresses: Vec<Ingress>) -> Caches {
    let mut caches = empty();
    caches.canaries = store_of(vec![canary]);
    caches.ingresses = store_of(ingresses);
    caches
}

/// The Canary a test put in `caches`, as the actor's step carries it.
pub(super) fn source(caches: &Caches) -> Arc<Canary> {
    caches.canaries.state()[0].clone()
}

pub(super) fn created(caches: &Caches) -> Ingress {
    match plan_reconcile(caches, &keys(), &source(caches)) {
        Ok(Some(Write::Create(ingress))) => *ingress,
        other => panic!("expected a create, got {other:?}"),
    }
}

pub(super) fn with_annotations(mut ingress: Ingress, pairs: &[(&str, &str)]) -> Ingress {
    ingress
        .metadata
        .annotations
        .get_or_insert_with(Labels::new)
        .extend(map(pairs));
    ingress
}

#[test]
fn the_clone_routes_the_apex_backend_to_the_canary_service() {
    let ingress = created(&caches(canary(json!({})), vec![user_ingress()]));
    assert_eq!(ingress.metadata.name.as_deref(), Some("podinfo-canary"));
    assert_eq!(ingress.metadata.namespace.as_deref(), Some("test"));
    let rules = ingress.spec.and_then(|s| s.rules).expect("rules");
    assert_eq!(rules[0].host.as_deref(), Some("app.example.com"));
    let paths = &rules[0].http.as_ref().expect("http").paths;
    let service = |i: usize| paths[i].backend.service.as_ref().expect("service");
    assert_eq!(service(0).name, "podinfo-canary");
    assert_eq!(service(0).port.as_ref().and_then(|p| p.number), Some(80));
    // Other backends are left alone.
    assert_eq!(service(1).name, "assets");
    assert_eq!(ingress.metadata.labels, Some(map(&[("app", "podinfo")])));
    let owner = &ingress.metadata.owner_references.expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Canary", "podinfo")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        ingress.metadata.annotations,
        Some(map(&[
            ("helm.toolkit.fluxcd.io/driftDetection", "disabled"),
            ("kubernetes.io/ingress.class", "nginx"),
            ("kustomize.toolkit.fluxcd.io/reconcile", "disabled"),
            ("nginx.ingress.kubernetes.io/affinity", "cookie"),
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "0"),
        ]))
    );
}

#[test]
fn errors_read_like_flaggers() {
    let mut no_backend = user_ingress();
    no_backend.metadata.name = Some("web".into());
    let err = canary_spec(&no_backend, "frontend").expect_err("no backend");
    assert_eq!(err.to_string(), "backend frontend not found in ingress web");

    let mut no_ref = canary(json!({}));
    no_ref.spec.ingress_ref = None;
    let c = caches(no_ref, vec![user_ingress()]);
    let err = plan_reconcile(&c, &keys(), &source(&c)).expect_err("no ref");
    assert_eq!(err.to_string(), "ingress selector is empty");

    let c = caches(canary(json!({})), vec![]);
    let err = plan_reconcile(&c, &keys(), &source(&c)).expect_err("missing");
    let text =
        "ingress podinfo.test get query error: ingresses.networking.k8s.io \"podinfo\" not found";
    assert_eq!(err.to_string(), text);
    let port = PortError::from(err);
    assert!(matches!(port, PortError::NotFound(_)));
    assert_eq!(port.to_string(), text);

    let c = caches(canary(json!({})), vec![user_ingress()]);
    let err = current_routes(&c, &keys(), &source(&c)).expect_err("no clone");
    assert_eq!(
        err.to_string(),
        "ingress podinfo-canary.test get query error: ingresses.networking.k8s.io \"podinfo-canary\" not found"
    );
}

/// The router acts on the Canary the step carries, never on a cache read:
/// without one it refuses.
#[tokio::test]
async fn a_step_without_its_canary_is_refused() {
    let clients = crate::k8s::client::testing::unreachable();
    let router = NginxRouter::new(clients, empty(), PREFIX);
    let target = Target {
        key: key(),
        target: serin_actors::model::spec::TargetRef {
            kind: "Deployment".into(),
            name: "podinfo".into(),
        },
        provider: "nginx".into(),
        priority: Default::default(),
        source: Default::default(),
        iterations: 0,
        session: Default::default(),
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let err = router
        .get_routes(&target, deadline)
        .await
        .expect_err("no canary");
    assert_eq!(err.to_string(), "canary podinfo.test not found");
}

#[test]
fn reconcile_keeps_the_weights_and_follows_the_users_ingress() {
    let clone = created(&caches(canary(json!({})), vec![user_ingress()]));
    let shifted = with_annotations(
        clone,
        &[("nginx.ingress.kubernetes.io/canary-weight", "30")],
    );
    let c = caches(canary(json!({})), vec![user_ingress(), shifted.clone()]);
    assert_eq!(
        plan_reconcile(&c, &keys(), &source(&c)).expect("plan"),
        None
    );

    let mut user = user_ingress();
    if let Some(rules) = user.spec.as_mut().and_then(|s| s.rules.as_mut()) {
        rules[0].host = Some("www.example.com".into());
    }
    user.metadata.labels = Some(map(&[("app", "podinfo"), ("tier", "web")]));
    let c = caches(canary(json!({})), vec![user, shifted]);
    let Some(Write::Patch { name, patch }) =
        plan_reconcile(&c, &keys(), &source(&c)).expect("plan")
    else {
        panic!("expected a patch");
    };
    assert_eq!(name, "podinfo-canary");
    assert_eq!(patch["metadata"], json!({"labels": {"tier": "web"}}));
    assert_eq!(patch["spec"]["rules"][0]["host"], "www.example.com");
    assert_eq!(
        patch["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "podinfo-canary"
    );
}

#[test]
fn reconcile_reverts_edits_but_restores_only_a_missing_canary_switch() {
    let mut clone = created(&caches(canary(json!({})), vec![user_ingress()]));
    if let Some(a) = clone.metadata.annotations.as_mut() {
        a.remove("nginx.ingress.kubernetes.io/canary");
        a.insert(
            "nginx.ingress.kubernetes.io/canary-weight".into(),
            "60".into(),
        );
        a.insert("edited".into(), "by-hand".into());
    }
    let c = caches(canary(json!({})), vec![user_ingress(), clone]);
    let Some(Write::Patch { patch, .. }) = plan_reconcile(&c, &keys(), &source(&c)).expect("plan")
    else {
        panic!("expected a patch");
    };
    assert_eq!(
        patch,
        json!({"metadata": {"annotations": {
            "edited": null,
            "nginx.ingress.kubernetes.io/canary": "true",
        }}})
    );
}
