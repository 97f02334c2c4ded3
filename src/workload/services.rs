//! The ClusterIP Services Flagger generates (`kubernetes_default.go`):
//! `<svc>` (apex), `<svc>-primary` and `<svc>-canary`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::metadata::{Labels, owned_by_canary, with_flux_disabled};
use super::patch::merge_diff;
use crate::api::canary::{CanaryService, CustomMetadata};

/// Mesh sidecars whose ports are never discovered.
const SIDECARS: [&str; 2] = ["istio-proxy", "envoy"];

/// kubectl's record of the user's own manifest.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `portDiscovery`: every container port except sidecars' and the service's
/// target port, named after the port or `tcp-<container>-<index>`.
pub fn discover_ports(pod: &PodSpec, svc: &CanaryService) -> BTreeMap<String, i32> {
    let target = svc.target_port();
    let mut ports = BTreeMap::new();
    for container in pod.containers.iter() {
        if SIDECARS.contains(&container.name.as_str()) {
            continue;
        }
        for (i, port) in container.ports.iter().flatten().enumerate() {
            let excluded = match target.clone() {
                IntOrString::Int(n) => port.container_port == n,
                IntOrString::String(name) => port.name.as_deref() == Some(name.as_str()),
            };
            if excluded {
                continue;
            }
            let name = match port.name.as_deref() {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => format!("tcp-{}-{i}", container.name),
            };
            ports.insert(name, port.container_port);
        }
    }
    ports
}

/// One generated Service: its name, the pods it selects and its metadata.
#[derive(Debug, Clone)]
pub struct ServicePlan<'a> {
    pub name: String,
    pub selector_key: &'a str,
    pub selector_value: String,
    pub custom: Option<&'a CustomMetadata>,
}

/// The main port and the discovered ones, sorted by port like Flagger compares.
pub fn desired_ports(svc: &CanaryService, discovered: &BTreeMap<String, i32>) -> Vec<ServicePort> {
    let mut ports = vec![ServicePort {
        name: Some(svc.port_name().to_string()),
        protocol: Some("TCP".into()),
        port: svc.port,
        target_port: Some(svc.target_port()),
        app_protocol: svc.app_protocol.clone().filter(|p| !p.is_empty()),
        ..Default::default()
    }];
    ports.extend(discovered.iter().map(|(name, port)| ServicePort {
        name: Some(name.clone()),
        protocol: Some("TCP".into()),
        port: *port,
        target_port: Some(IntOrString::Int(*port)),
        ..Default::default()
    }));
    ports
}

fn sorted(mut ports: Vec<ServicePort>) -> Vec<ServicePort> {
    ports.sort_by_key(|p| p.port);
    ports
}

/// Custom labels plus `<selector label>: <service name>`.
fn desired_labels(plan: &ServicePlan<'_>) -> Labels {
    let mut labels = plan
        .custom
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    labels.insert(plan.selector_key.to_string(), plan.name.clone());
    labels
}

fn desired_annotations(plan: &ServicePlan<'_>) -> Labels {
    with_flux_disabled(
        plan.custom
            .and_then(|c| c.annotations.clone())
            .unwrap_or_default(),
    )
}

/// `unmanagedMetadata` keys keep whatever the live object has.
fn keep_unmanaged(desired: &mut Labels, live: Option<&Labels>, keys: &[String]) {
    for key in keys {
        match live.and_then(|l| l.get(key)) {
            Some(v) => desired.insert(key.clone(), v.clone()),
            None => desired.remove(key),
        };
    }
}

fn selector(plan: &ServicePlan<'_>) -> Labels {
    BTreeMap::from([(plan.selector_key.to_string(), plan.selector_value.clone())])
}

/// A new generated Service.
pub fn new_service(
    plan: &ServicePlan<'_>,
    svc: &CanaryService,
    discovered: &BTreeMap<String, i32>,
    namespace: &str,
    owner: OwnerReference,
) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(desired_labels(plan)),
            annotations: Some(desired_annotations(plan)),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: svc.headless().then(|| "None".to_string()),
            selector: Some(selector(plan)),
            ports: Some(desired_ports(svc, discovered)),
            traffic_distribution: traffic_distribution(svc),
            ..Default::default()
        }),
        status: None,
    }
}

fn traffic_distribution(svc: &CanaryService) -> Option<String> {
    svc.traffic_distribution
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The merge patch that brings an existing Service in line, or `None`.
/// Ports and selector are always managed (existing NodePorts kept);
/// metadata only when the Canary owns the Service.
pub fn service_patch(
    live: &Service,
    plan: &ServicePlan<'_>,
    svc: &CanaryService,
    discovered: &BTreeMap<String, i32>,
    canary_name: &str,
) -> Option<Value> {
    let live_spec = live.spec.clone().unwrap_or_default();
    let live_ports = live_spec.ports.clone().unwrap_or_default();
    let mut ports = desired_ports(svc, discovered);
    for port in ports.iter_mut() {
        port.node_port = live_ports
            .iter()
            .find(|p| p.name == port.name && p.node_port.unwrap_or(0) > 0)
            .and_then(|p| p.node_port);
    }
    let old_spec = json!({
        "ports": sorted(live_ports),
        "selector": live_spec.selector,
    });
    let new_spec = json!({
        "ports": sorted(ports),
        "selector": selector(plan),
    });
    let spec_patch = merge_diff(&old_spec, &new_spec);

    let meta = &live.metadata;
    let meta_patch = if owned_by_canary(meta, canary_name) {
        let unmanaged = svc.unmanaged_metadata.clone().unwrap_or_default();
        let mut labels = desired_labels(plan);
        keep_unmanaged(
            &mut labels,
            meta.labels.as_ref(),
            &unmanaged.labels.unwrap_or_default(),
        );
        let mut annotations = desired_annotations(plan);
        let keys = unmanaged.annotations.unwrap_or_default();
        keep_unmanaged(&mut annotations, meta.annotations.as_ref(), &keys);
        let old = json!({"labels": meta.labels, "annotations": meta.annotations});
        let new = json!({"labels": labels, "annotations": annotations});
        merge_diff(&old, &new)
    } else if spec_patch.is_some() {
        // Flagger marks every Service it rewrites against Flux reverts.
        let mut annotations = meta.annotations.clone().unwrap_or_default();
        let old = json!({"annotations": annotations.clone()});
        annotations = with_flux_disabled(annotations);
        merge_diff(&old, &json!({"annotations": annotations}))
    } else {
        None
    };
    let owned_spec_patch = if owned_by_canary(meta, canary_name) {
        let old = json!({"trafficDistribution": live_spec.traffic_distribution});
        let new = json!({"trafficDistribution": traffic_distribution(svc)});
        merge_diff(&old, &new)
    } else {
        None
    };
    let spec_patch = match (spec_patch, owned_spec_patch) {
        (Some(Value::Object(mut a)), Some(Value::Object(b))) => {
            a.extend(b);
            Some(Value::Object(a))
        }
        (a, b) => a.or(b),
    };
    let mut patch = serde_json::Map::new();
    if let Some(m) = meta_patch {
        patch.insert("metadata".into(), m);
    }
    if let Some(s) = spec_patch {
        patch.insert("spec".into(), s);
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The selector kubectl last applied to a user-created Service.
pub fn last_applied_selector(live: &Service) -> Option<Result<Labels, serde_json::Error>> {
    let text = live.metadata.annotations.as_ref()?.get(LAST_APPLIED)?;
    Some(
        serde_json::from_str::<Service>(text)
            .map(|s| s.spec.and_then(|spec| spec.selector).unwrap_or_default()),
    )
}

/// The merge patch that sets a Service's selector, or `None` if it is set.
pub fn selector_patch(live: &Service, selector: &Labels) -> Option<Value> {
    let current = live.spec.as_ref().and_then(|s| s.selector.clone());
    merge_diff(
        &json!({"spec": {"selector": current}}),
        &json!({"spec": {"selector": selector}}),
    )
}

#[cfg(test)]
mod tests;
