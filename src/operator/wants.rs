//! The objects an owner uses, by name: what the filtered watches keep
//! ([`Interest`](crate::k8s::interest::Interest)).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use kube::ResourceExt;

use crate::api::Canary;
use crate::api::canary::{AutoscalerKind, TargetKind};
use crate::k8s::interest::{Kind, Owner, Want};
use crate::workload::config::{self, ConfigKind};

pub fn canary_owner(canary: &Canary) -> Owner {
    Owner::Canary {
        namespace: canary.namespace().unwrap_or_default(),
        name: canary.name_any(),
    }
}

/// The target and its primary, the three services, the user's Ingress and
/// its canary copy, the autoscaler and its primary copy, and the routing
/// object a mesh router names after the apex service (wanted whatever the
/// provider: `-mesh-provider` is not known here, and a name costs nothing
/// until such an object exists).
pub fn of_canary(canary: &Canary) -> BTreeSet<Want> {
    let ns = canary.namespace().unwrap_or_default();
    let spec = &canary.spec;
    let mut wants = BTreeSet::new();
    let mut both = |kind: Kind, name: &str, suffix: &str| {
        wants.insert(Want::new(kind, &ns, name));
        wants.insert(Want::new(kind, &ns, format!("{name}-{suffix}")));
    };
    let target = spec.target_ref.name.as_str();
    match spec.target_ref.kind {
        TargetKind::Deployment => both(Kind::Deployment, target, "primary"),
        TargetKind::DaemonSet => both(Kind::DaemonSet, target, "primary"),
        TargetKind::Service => both(Kind::Service, target, "primary"),
    }
    let service = spec.service_name();
    both(Kind::Service, service, "primary");
    both(Kind::Service, service, "canary");
    if let Some(ingress) = &spec.ingress_ref {
        both(Kind::Ingress, &ingress.name, "canary");
    }
    if let Some(scaler) = &spec.autoscaler_ref
        && scaler.kind == AutoscalerKind::HorizontalPodAutoscaler
    {
        both(Kind::HorizontalPodAutoscaler, &scaler.name, "primary");
    }
    wants.insert(Want::new(Kind::HttpRoute, &ns, service));
    wants.insert(Want::new(Kind::TrafficSplit, &ns, service));
    wants.insert(Want::new(Kind::VirtualService, &ns, service));
    for suffix in ["primary", "canary"] {
        wants.insert(Want::new(
            Kind::DestinationRule,
            &ns,
            format!("{service}-{suffix}"),
        ));
    }
    wants
}

pub fn workload_owner(kind: Kind, namespace: &str, name: &str) -> Owner {
    Owner::Workload {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// The ConfigMaps and Secrets a pod template references, and their
/// `-primary` copies.
pub fn of_pod(namespace: &str, pod: Option<&PodSpec>) -> BTreeSet<Want> {
    let mut wants = BTreeSet::new();
    for r in pod.map(config::referenced_configs).unwrap_or_default() {
        let kind = match r.kind {
            ConfigKind::ConfigMap => Kind::ConfigMap,
            ConfigKind::Secret => Kind::Secret,
        };
        wants.insert(Want::new(kind, namespace, format!("{}-primary", r.name)));
        wants.insert(Want::new(kind, namespace, r.name));
    }
    wants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(wants: &BTreeSet<Want>, kind: Kind) -> Vec<&str> {
        wants
            .iter()
            .filter(|w| w.kind == kind)
            .map(|w| w.name.as_str())
            .collect()
    }

    #[test]
    fn a_canary_wants_what_its_adapters_read() {
        let canary: Canary = serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "provider": "nginx",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "autoscalerRef": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo-hpa"},
                "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"},
                "service": {"name": "front", "port": 80},
                "analysis": {"interval": "1m", "threshold": 5}
            }
        }))
        .unwrap();
        let wants = of_canary(&canary);
        assert_eq!(
            names(&wants, Kind::Deployment),
            ["podinfo", "podinfo-primary"]
        );
        assert_eq!(
            names(&wants, Kind::Service),
            ["front", "front-canary", "front-primary"]
        );
        assert_eq!(names(&wants, Kind::Ingress), ["web", "web-canary"]);
        assert_eq!(names(&wants, Kind::HttpRoute), ["front"]);
        assert_eq!(names(&wants, Kind::TrafficSplit), ["front"]);
        assert_eq!(names(&wants, Kind::VirtualService), ["front"]);
        assert_eq!(
            names(&wants, Kind::HorizontalPodAutoscaler),
            ["podinfo-hpa", "podinfo-hpa-primary"]
        );
        assert!(wants.iter().all(|w| w.namespace == "test"));
    }

    #[test]
    fn a_pod_wants_its_configs_and_their_primary_copies() {
        let pod: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "env"}}]}],
            "volumes": [{"name": "s", "secret": {"secretName": "creds"}}]
        }))
        .unwrap();
        let wants = of_pod("test", Some(&pod));
        assert_eq!(names(&wants, Kind::ConfigMap), ["env", "env-primary"]);
        assert_eq!(names(&wants, Kind::Secret), ["creds", "creds-primary"]);
    }
}
