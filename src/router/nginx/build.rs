//! Pure builders: the canary Ingress cloned from the user's, the merge
//! patches that keep it in line, and the canary annotations for a split.

use k8s_openapi::api::networking::v1::{Ingress, IngressSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Map, Value, json};
use serin_actors::model::observe::Routes;

use super::NginxError;
use crate::api::canary::AbMatch;
use crate::workload::metadata::{Labels, drop_toolkit, with_flux_disabled};
use crate::workload::patch::merge_diff;

/// kubectl's record of the user's manifest: never copied to the clone.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub const CANARY: &str = "canary";
pub const WEIGHT: &str = "canary-weight";
pub const BY_HEADER: &str = "canary-by-header";
pub const BY_HEADER_VALUE: &str = "canary-by-header-value";
pub const BY_HEADER_PATTERN: &str = "canary-by-header-pattern";
pub const BY_COOKIE: &str = "canary-by-cookie";

/// The annotations `set_routes` owns; any other `canary*` key is left alone.
const ROUTE_KEYS: [&str; 6] = [
    CANARY,
    WEIGHT,
    BY_HEADER,
    BY_HEADER_VALUE,
    BY_HEADER_PATTERN,
    BY_COOKIE,
];

/// Annotation keys under `-ingress-annotations-prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// `<prefix>/<suffix>`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.prefix)
    }

    /// Whether `key` is one of the controller's canary annotations.
    fn is_canary(&self, key: &str) -> bool {
        key.strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| rest.starts_with(CANARY))
    }
}

/// `<ingressRef>-canary`.
pub fn canary_ingress_name(ingress: &str) -> String {
    format!("{ingress}-canary")
}

/// The user's spec with every rule backend on `apex` moved to `<apex>-canary`.
pub fn canary_spec(user: &Ingress, apex: &str) -> Result<IngressSpec, NginxError> {
    let mut spec = user.spec.clone().unwrap_or_default();
    let canary = format!("{apex}-canary");
    let mut found = false;
    let paths = spec
        .rules
        .iter_mut()
        .flatten()
        .filter_map(|rule| rule.http.as_mut())
        .flat_map(|http| http.paths.iter_mut());
    for path in paths {
        if let Some(service) = path.backend.service.as_mut()
            && service.name == apex
        {
            service.name.clone_from(&canary);
            found = true;
        }
    }
    if !found {
        return Err(NginxError::BackendNotFound {
            service: apex.to_string(),
            ingress: user.metadata.name.clone().unwrap_or_default(),
        });
    }
    Ok(spec)
}

/// The user's annotations without the canary ones and kubectl's record,
/// with Flux kept off the generated object.
pub fn base_annotations(user: Option<&Labels>, keys: &Keys) -> Labels {
    let kept = drop_toolkit(user)
        .into_iter()
        .filter(|(k, _)| !keys.is_canary(k) && k != LAST_APPLIED)
        .collect();
    with_flux_disabled(kept)
}

/// What the canary Ingress should hold, apart from the canary annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub spec: IngressSpec,
    pub labels: Labels,
    pub annotations: Labels,
}

impl Desired {
    pub fn build(user: &Ingress, apex: &str, keys: &Keys) -> Result<Desired, NginxError> {
        Ok(Desired {
            spec: canary_spec(user, apex)?,
            labels: drop_toolkit(user.metadata.labels.as_ref()),
            annotations: base_annotations(user.metadata.annotations.as_ref(), keys),
        })
    }

    /// The object to create: no traffic until the first split.
    pub fn to_ingress(
        &self,
        name: &str,
        namespace: &str,
        owner: OwnerReference,
        keys: &Keys,
    ) -> Ingress {
        let mut annotations = self.annotations.clone();
        annotations.extend(route_annotations(keys, None, 0));
        Ingress {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                labels: Some(self.labels.clone()),
                annotations: Some(annotations),
                owner_references: Some(vec![owner]),
                ..ObjectMeta::default()
            },
            spec: Some(self.spec.clone()),
            status: None,
        }
    }

    /// The merge patch bringing `current` in line, keeping its canary
    /// annotations (the weights) as they are; `None` when nothing differs.
    pub fn patch(&self, current: &Ingress, keys: &Keys) -> Option<Value> {
        let current_annotations = current.metadata.annotations.clone().unwrap_or_default();
        let mut annotations = self.annotations.clone();
        annotations.extend(
            current_annotations
                .iter()
                .filter(|(k, _)| keys.is_canary(k))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        // Without it the controller would serve the clone as a second main Ingress.
        annotations
            .entry(keys.key(CANARY))
            .or_insert_with(|| "true".to_string());
        let old = json!({
            "metadata": {
                "labels": current.metadata.labels,
                "annotations": current_annotations,
            },
            "spec": current.spec,
        });
        let new = json!({
            "metadata": {"labels": self.labels, "annotations": annotations},
            "spec": self.spec,
        });
        merge_diff(&old, &new)
    }
}

/// The header or cookie an A/B run routes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbRule {
    pub header: Option<HeaderRule>,
    /// The cookie name: nginx routes to the canary when its value is `always`.
    pub cookie: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    pub name: String,
    pub exact: Option<String>,
    pub regex: Option<String>,
}

/// The first header match and the first `cookie` match with an exact value:
/// nginx takes a single header and a single cookie per canary Ingress.
pub fn ab_rule(matches: &[AbMatch]) -> AbRule {
    let mut rule = AbRule::default();
    let headers = matches.iter().flat_map(|m| m.headers.iter().flatten());
    for (name, value) in headers {
        if name == "cookie" {
            if rule.cookie.is_none() {
                rule.cookie = value.exact.clone().filter(|v| !v.is_empty());
            }
        } else if rule.header.is_none() {
            rule.header = Some(HeaderRule {
                name: name.clone(),
                exact: value.exact.clone().filter(|v| !v.is_empty()),
                regex: value.regex.clone().filter(|v| !v.is_empty()),
            });
        }
    }
    rule
}

/// The route annotations for a split: a header/cookie rule while an A/B run
/// sends traffic to the canary, with the weight held at 0 as Flagger leaves
/// it (only matching requests go to the canary); else the weight.
pub fn route_annotations(keys: &Keys, ab: Option<&AbRule>, canary_weight: i32) -> Labels {
    let mut out = Labels::new();
    out.insert(keys.key(CANARY), "true".to_string());
    match ab {
        Some(rule) if canary_weight > 0 => {
            out.insert(keys.key(WEIGHT), "0".to_string());
            if let Some(header) = &rule.header {
                out.insert(keys.key(BY_HEADER), header.name.clone());
                if let Some(exact) = &header.exact {
                    out.insert(keys.key(BY_HEADER_VALUE), exact.clone());
                }
                if let Some(regex) = &header.regex {
                    out.insert(keys.key(BY_HEADER_PATTERN), regex.clone());
                }
            }
            if let Some(cookie) = &rule.cookie {
                out.insert(keys.key(BY_COOKIE), cookie.clone());
            }
        }
        _ => {
            out.insert(keys.key(WEIGHT), canary_weight.to_string());
        }
    }
    out
}

/// The merge patch setting the route annotations to `wanted`, `None` when
/// they already are. Every route key not wanted is nulled, present in the
/// cache or not, so a lagging cache cannot leave a stale header rule behind.
pub fn routes_patch(current: &Ingress, wanted: &Labels, keys: &Keys) -> Option<Value> {
    let annotations = current.metadata.annotations.as_ref();
    let changed = ROUTE_KEYS.iter().any(|suffix| {
        let key = keys.key(suffix);
        annotations.and_then(|a| a.get(&key)) != wanted.get(&key)
    });
    if !changed {
        return None;
    }
    let patch: Map<String, Value> = ROUTE_KEYS
        .iter()
        .map(|suffix| {
            let key = keys.key(suffix);
            let value = wanted.get(&key).map_or(Value::Null, |v| json!(v));
            (key, value)
        })
        .collect();
    Some(json!({"metadata": {"annotations": patch}}))
}

/// The split the canary Ingress expresses: all on the canary while an A/B
/// header or cookie rule is set, else the weight (none means 0).
pub fn read_routes(
    annotations: Option<&Labels>,
    keys: &Keys,
    ab: bool,
) -> Result<Routes, NginxError> {
    let get = |suffix: &str| annotations.and_then(|a| a.get(&keys.key(suffix)));
    let all_canary = Routes {
        primary: 0,
        canary: 100,
        mirrored: false,
    };
    if ab && (get(BY_COOKIE).is_some() || get(BY_HEADER).is_some()) {
        return Ok(all_canary);
    }
    let canary = match get(WEIGHT) {
        Some(value) => value
            .parse::<i32>()
            .map_err(|source| NginxError::BadWeight {
                value: value.clone(),
                source,
            })?,
        None => 0,
    };
    Ok(Routes {
        primary: 100 - canary,
        canary,
        mirrored: false,
    })
}
