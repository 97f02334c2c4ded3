//! Manual gates: an in-memory set of opened keys, closed by default, as
//! flagger-loadtester's `in-memory` gate storage.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// Opened gates, keyed `<name>.<namespace>` or `rollback.<name>.<namespace>`.
#[derive(Debug, Default)]
pub struct Gates {
    open: Mutex<HashSet<String>>,
}

impl Gates {
    pub fn open(&self, key: &str) {
        self.lock().insert(key.to_string());
    }

    pub fn close(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn is_open(&self, key: &str) -> bool {
        self.lock().contains(key)
    }

    // A panic while holding the lock cannot leave the set half-written, so a
    // poisoned lock is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The gate key of a canary.
pub fn gate_key(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}")
}

/// The rollback gate key of a canary.
pub fn rollback_key(name: &str, namespace: &str) -> String {
    format!("rollback.{name}.{namespace}")
}
