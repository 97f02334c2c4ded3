//! Reverse indexes of the bridge: which canaries use a target workload, and
//! which use a ConfigMap or Secret (through their target's pod template), so
//! a watch event wakes exactly those canaries without scanning them all.

use std::collections::{BTreeSet, HashMap};

use serin_actors::ports::CanaryKey;

use crate::workload::config::ConfigKind;

/// A namespaced object by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey<K> {
    pub namespace: String,
    pub kind: K,
    pub name: String,
}

/// A target workload (`Deployment`, `DaemonSet`).
pub type TargetKey = ObjectKey<&'static str>;
/// A tracked config.
pub type ConfigKey = ObjectKey<ConfigKind>;

/// What one canary uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Uses {
    target: Option<TargetKey>,
    configs: BTreeSet<ConfigKey>,
}

#[derive(Debug, Default)]
pub struct Index {
    uses: HashMap<CanaryKey, Uses>,
    by_target: HashMap<TargetKey, BTreeSet<CanaryKey>>,
    by_config: HashMap<ConfigKey, BTreeSet<CanaryKey>>,
}

impl Index {
    /// Records what `canary` uses now, replacing what it used before.
    pub fn set(
        &mut self,
        canary: &CanaryKey,
        target: Option<TargetKey>,
        configs: impl IntoIterator<Item = ConfigKey>,
    ) {
        let uses = Uses {
            target,
            configs: configs.into_iter().collect(),
        };
        if self.uses.get(canary) == Some(&uses) {
            return;
        }
        self.remove(canary);
        if let Some(target) = &uses.target {
            insert(&mut self.by_target, target, canary);
        }
        for config in &uses.configs {
            insert(&mut self.by_config, config, canary);
        }
        self.uses.insert(canary.clone(), uses);
    }

    /// Forgets `canary`.
    pub fn remove(&mut self, canary: &CanaryKey) {
        let Some(old) = self.uses.remove(canary) else {
            return;
        };
        if let Some(target) = &old.target {
            drop_entry(&mut self.by_target, target, canary);
        }
        for config in &old.configs {
            drop_entry(&mut self.by_config, config, canary);
        }
    }

    pub fn users_of_target(&self, target: &TargetKey) -> Vec<CanaryKey> {
        self.by_target
            .get(target)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn users_of_config(&self, config: &ConfigKey) -> Vec<CanaryKey> {
        self.by_config
            .get(config)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The target `canary` was last recorded with.
    pub fn target_of(&self, canary: &CanaryKey) -> Option<&TargetKey> {
        self.uses.get(canary)?.target.as_ref()
    }
}

fn insert<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, BTreeSet<CanaryKey>>,
    key: &K,
    canary: &CanaryKey,
) {
    map.entry(key.clone()).or_default().insert(canary.clone());
}

fn drop_entry<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, BTreeSet<CanaryKey>>,
    key: &K,
    canary: &CanaryKey,
) {
    if let Some(set) = map.get_mut(key) {
        set.remove(canary);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str) -> TargetKey {
        ObjectKey {
            namespace: "test".into(),
            kind: "Deployment",
            name: name.into(),
        }
    }

    fn config_map(name: &str) -> ConfigKey {
        ObjectKey {
            namespace: "test".into(),
            kind: ConfigKind::ConfigMap,
            name: name.into(),
        }
    }

    #[test]
    fn finds_the_users_and_forgets_what_they_stopped_using() {
        let mut index = Index::default();
        let a = CanaryKey::new("test", "a");
        let b = CanaryKey::new("test", "b");
        index.set(&a, Some(deployment("app")), [config_map("cfg")]);
        index.set(&b, Some(deployment("app")), []);
        assert_eq!(
            index.users_of_target(&deployment("app")),
            [a.clone(), b.clone()]
        );
        assert_eq!(
            index.users_of_config(&config_map("cfg")),
            std::slice::from_ref(&a)
        );

        // a's target no longer mounts the ConfigMap, and b moves to another target.
        index.set(&a, Some(deployment("app")), []);
        index.set(&b, Some(deployment("other")), []);
        assert!(index.users_of_config(&config_map("cfg")).is_empty());
        assert_eq!(
            index.users_of_target(&deployment("app")),
            std::slice::from_ref(&a)
        );
        assert_eq!(index.target_of(&b), Some(&deployment("other")));

        index.remove(&a);
        index.remove(&b);
        assert!(index.users_of_target(&deployment("app")).is_empty());
        assert!(index.by_target.is_empty() && index.by_config.is_empty());
    }
}
