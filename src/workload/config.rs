//! Flagger's config tracker: which ConfigMaps and Secrets a pod template
//! references, their checksums, and the `-primary` copies used by the primary.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use super::metadata::include_by_prefix;
use crate::k8s::cache::CHECKSUM_KEY;

/// Annotation that opts one ConfigMap/Secret out of tracking.
pub const TRACKING_ANNOTATION: &str = "flagger.app/config-tracking";

/// Secret types Flagger tracks; registry secrets belong to service accounts.
const TRACKED_SECRET_TYPES: [&str; 4] = [
    "Opaque",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

impl ConfigKind {
    /// The prefix of `status.trackedConfigs` keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "configmap",
            ConfigKind::Secret => "secret",
        }
    }
}

/// One ConfigMap or Secret a pod template references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRef {
    pub kind: ConfigKind,
    pub name: String,
    /// True only when every reference to it is optional.
    pub optional: bool,
}

impl ConfigRef {
    /// `configmap/<name>` or `secret/<name>`, the `status.trackedConfigs` key.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.name)
    }
}

/// `flagger.app/config-tracking: disabled` (any value starting with `disable`).
pub fn tracking_disabled(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(TRACKING_ANNOTATION))
        .is_some_and(|v| v.starts_with("disable"))
}

/// Whether Flagger tracks Secrets of this type (a missing type is `Opaque`).
pub fn secret_type_tracked(secret: &Secret) -> bool {
    let kind = secret.type_.as_deref().unwrap_or("Opaque");
    TRACKED_SECRET_TYPES.contains(&kind)
}

/// Flagger's ConfigMap checksum: hex of the first 8 bytes of sha256 over
/// Go's `json.Marshal(cm.Data)`.
pub fn configmap_checksum(cm: &ConfigMap) -> String {
    let json = go_json_map(
        cm.data
            .iter()
            .flatten()
            .map(|(k, v)| (k, go_json_string(v))),
    );
    checksum(&json)
}

/// Flagger's Secret checksum (`[]byte` values base64-encoded like Go does);
/// `None` for Secret types Flagger does not track.
pub fn secret_checksum(secret: &Secret) -> Option<String> {
    if !secret_type_tracked(secret) {
        return None;
    }
    let json = go_json_map(
        secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k, format!("\"{}\"", base64(&v.0)))),
    );
    Some(checksum(&json))
}

fn checksum(json: &str) -> String {
    let digest = Sha256::digest(json.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `json.Marshal` of a `map[string]T`: keys sorted, a nil/empty map
/// from the API decodes to nil and marshals as `null`.
fn go_json_map<'a>(entries: impl Iterator<Item = (&'a String, String)>) -> String {
    let sorted: BTreeMap<&String, String> = entries.collect();
    if sorted.is_empty() {
        return "null".to_string();
    }
    let body: Vec<String> = sorted
        .into_iter()
        .map(|(k, v)| format!("{}:{}", go_json_string(k), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A string as Go's encoding/json writes it, HTML-safe escaping included.
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Standard base64 with padding, as Go encodes `[]byte`.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(TABLE[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// The checksum of a cached ConfigMap: the watch stores it under
/// [`CHECKSUM_KEY`]; an object with its data still in place is hashed here.
pub fn cached_configmap_checksum(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get(CHECKSUM_KEY))
        .cloned()
        .unwrap_or_else(|| configmap_checksum(cm))
}

/// The checksum of a cached Secret, `None` for untracked types.
pub fn cached_secret_checksum(secret: &Secret) -> Option<String> {
    if !secret_type_tracked(secret) {
        return None;
    }
    let stored = secret
        .data
        .as_ref()
        .and_then(|d| d.get(CHECKSUM_KEY))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(CHECKSUM_KEY))
                .cloned()
        });
    stored.or_else(|| secret_checksum(secret))
}

/// Every ConfigMap and Secret the pod spec references: volumes (also
/// projected), `env.valueFrom` and `envFrom` of containers and init containers.
pub fn referenced_configs(pod: &PodSpec) -> Vec<ConfigRef> {
    let mut found: Vec<ConfigRef> = Vec::new();
    let mut add = |kind: ConfigKind, name: &str, optional: Option<bool>| {
        if name.is_empty() {
            return;
        }
        let optional = optional.unwrap_or(false);
        match found.iter_mut().find(|r| r.kind == kind && r.name == name) {
            // One mandatory reference makes the config mandatory.
            Some(existing) => existing.optional &= optional,
            None => found.push(ConfigRef {
                kind,
                name: name.to_string(),
                optional,
            }),
        }
    };
    for volume in pod.volumes.iter().flatten() {
        if let Some(cm) = &volume.config_map {
            add(ConfigKind::ConfigMap, &cm.name, cm.optional);
        }
        if let Some(secret) = &volume.secret {
            let name = secret.secret_name.as_deref().unwrap_or_default();
            add(ConfigKind::Secret, name, secret.optional);
        }
        let sources = volume.projected.as_ref().and_then(|p| p.sources.as_ref());
        for source in sources.into_iter().flatten() {
            if let Some(cm) = &source.config_map {
                add(ConfigKind::ConfigMap, &cm.name, cm.optional);
            }
            if let Some(secret) = &source.secret {
                add(ConfigKind::Secret, &secret.name, secret.optional);
            }
        }
    }
    for container in containers(pod) {
        for env in container.env.iter().flatten() {
            let Some(from) = &env.value_from else {
                continue;
            };
            if let Some(r) = &from.config_map_key_ref {
                add(ConfigKind::ConfigMap, &r.name, r.optional);
            } else if let Some(r) = &from.secret_key_ref {
                add(ConfigKind::Secret, &r.name, r.optional);
            }
        }
        for from in container.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                add(ConfigKind::ConfigMap, &r.name, r.optional);
            } else if let Some(r) = &from.secret_ref {
                add(ConfigKind::Secret, &r.name, r.optional);
            }
        }
    }
    found
}

fn containers(pod: &PodSpec) -> impl Iterator<Item = &Container> {
    pod.containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
}

/// Points every reference to a tracked config at its `-primary` copy.
pub fn rename_tracked(pod: &mut PodSpec, tracked: &BTreeSet<(ConfigKind, String)>) {
    let rename = |kind: ConfigKind, name: &mut String| {
        if tracked.contains(&(kind, name.clone())) {
            name.push_str("-primary");
        }
    };
    for volume in pod.volumes.iter_mut().flatten() {
        if let Some(cm) = volume.config_map.as_mut() {
            rename(ConfigKind::ConfigMap, &mut cm.name);
        }
        if let Some(name) = volume.secret.as_mut().and_then(|s| s.secret_name.as_mut()) {
            rename(ConfigKind::Secret, name);
        }
        let sources = volume.projected.as_mut().and_then(|p| p.sources.as_mut());
        for source in sources.into_iter().flatten() {
            if let Some(cm) = source.config_map.as_mut() {
                rename(ConfigKind::ConfigMap, &mut cm.name);
            }
            if let Some(secret) = source.secret.as_mut() {
                rename(ConfigKind::Secret, &mut secret.name);
            }
        }
    }
    let all = pod
        .containers
        .iter_mut()
        .chain(pod.init_containers.iter_mut().flatten());
    for container in all {
        for env in container.env.iter_mut().flatten() {
            let Some(from) = env.value_from.as_mut() else {
                continue;
            };
            if let Some(r) = from.config_map_key_ref.as_mut() {
                rename(ConfigKind::ConfigMap, &mut r.name);
            } else if let Some(r) = from.secret_key_ref.as_mut() {
                rename(ConfigKind::Secret, &mut r.name);
            }
        }
        for from in container.env_from.iter_mut().flatten() {
            if let Some(r) = from.config_map_ref.as_mut() {
                rename(ConfigKind::ConfigMap, &mut r.name);
            } else if let Some(r) = from.secret_ref.as_mut() {
                rename(ConfigKind::Secret, &mut r.name);
            }
        }
    }
}

/// What the caches say about one referenced config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Missing,
    /// Opted out by annotation, or a Secret type Flagger ignores.
    Untracked,
    Tracked {
        checksum: String,
    },
}

/// Classifies a cached ConfigMap.
pub fn lookup_configmap(cm: Option<&ConfigMap>) -> Lookup {
    match cm {
        None => Lookup::Missing,
        Some(cm) if tracking_disabled(&cm.metadata) => Lookup::Untracked,
        Some(cm) => Lookup::Tracked {
            checksum: cached_configmap_checksum(cm),
        },
    }
}

/// Classifies a cached Secret.
pub fn lookup_secret(secret: Option<&Secret>) -> Lookup {
    match secret {
        None => Lookup::Missing,
        Some(s) if tracking_disabled(&s.metadata) => Lookup::Untracked,
        Some(s) => match cached_secret_checksum(s) {
            Some(checksum) => Lookup::Tracked { checksum },
            None => Lookup::Untracked,
        },
    }
}

/// A mandatory config the target references does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {name}.{namespace} get query error: {resource} \"{name}\" not found")]
pub struct MissingConfig {
    pub kind: &'static str,
    pub resource: &'static str,
    pub name: String,
    pub namespace: String,
}

/// `status.trackedConfigs` for the references, given how each one looks up.
/// Missing optional configs are skipped, missing mandatory ones are errors.
pub fn tracked_configs(
    refs: &[ConfigRef],
    namespace: &str,
    lookup: impl Fn(&ConfigRef) -> Lookup,
) -> Result<BTreeMap<String, String>, MissingConfig> {
    let mut out = BTreeMap::new();
    for r in refs {
        match lookup(r) {
            Lookup::Tracked { checksum } => {
                out.insert(r.key(), checksum);
            }
            Lookup::Untracked => {}
            Lookup::Missing if r.optional => {}
            Lookup::Missing => {
                let resource = match r.kind {
                    ConfigKind::ConfigMap => "configmaps",
                    ConfigKind::Secret => "secrets",
                };
                return Err(MissingConfig {
                    kind: r.kind.as_str(),
                    resource,
                    name: r.name.clone(),
                    namespace: namespace.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// The `(kind, name)` set of tracked configs, from `trackedConfigs` keys.
pub fn tracked_set(tracked: &BTreeMap<String, String>) -> BTreeSet<(ConfigKind, String)> {
    tracked
        .keys()
        .filter_map(|key| {
            let (kind, name) = key.split_once('/')?;
            let kind = match kind {
                "configmap" => ConfigKind::ConfigMap,
                "secret" => ConfigKind::Secret,
                _ => return None,
            };
            Some((kind, name.to_string()))
        })
        .collect()
}

/// Owner references of a `-primary` copy: the Canary as controller, plus the
/// source's other (non-controller) owners.
fn copy_owners(source: &ObjectMeta, canary: OwnerReference) -> Vec<OwnerReference> {
    let mut owners = vec![canary];
    owners.extend(
        source
            .owner_references
            .iter()
            .flatten()
            .filter(|r| r.controller != Some(true))
            .cloned(),
    );
    owners
}

fn copy_meta(source: &ObjectMeta, canary: OwnerReference, prefixes: &[String]) -> ObjectMeta {
    let name = source.name.as_deref().unwrap_or_default();
    let labels = include_by_prefix(source.labels.as_ref(), prefixes);
    ObjectMeta {
        name: Some(format!("{name}-primary")),
        namespace: source.namespace.clone(),
        labels: (!labels.is_empty()).then_some(labels),
        owner_references: Some(copy_owners(source, canary)),
        ..Default::default()
    }
}

/// `<name>-primary` copy of a ConfigMap.
pub fn primary_configmap(
    source: &ConfigMap,
    canary: OwnerReference,
    prefixes: &[String],
) -> ConfigMap {
    ConfigMap {
        metadata: copy_meta(&source.metadata, canary, prefixes),
        data: source.data.clone(),
        binary_data: source.binary_data.clone(),
        immutable: None,
    }
}

/// `<name>-primary` copy of a Secret, same type.
pub fn primary_secret(source: &Secret, canary: OwnerReference, prefixes: &[String]) -> Secret {
    Secret {
        metadata: copy_meta(&source.metadata, canary, prefixes),
        data: source.data.clone(),
        type_: source.type_.clone(),
        string_data: None,
        immutable: None,
    }
}

/// Whether a cached `-primary` copy already holds the source's data.
pub fn copy_is_current(source_checksum: &str, copy: Option<&Lookup>) -> bool {
    matches!(copy, Some(Lookup::Tracked { checksum }) if checksum == source_checksum)
}

#[cfg(test)]
mod tests;
