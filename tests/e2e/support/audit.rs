//! The API server's audit log (`AUDIT_LOG`, written by
//! tests/cluster/cluster-up.sh): the requests one user made in a window,
//! counted from the server's side, so two operators are measured the same
//! way whatever they count themselves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Requests by `(verb, resource)`.
pub type Requests = BTreeMap<(String, String), u64>;

/// A position in the audit log; what was appended after it can be read.
pub struct Mark {
    path: PathBuf,
    offset: u64,
}

impl Mark {
    /// The end of the log now.
    pub fn now(path: &Path) -> Mark {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Mark {
            path: path.to_path_buf(),
            offset,
        }
    }

    /// Requests `user` made since this mark, each counted once (a watch
    /// logs when it starts and when it ends).
    pub fn requests_since(&self, user: &str) -> Requests {
        let mut file = std::fs::File::open(&self.path)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", self.path.display()));
        file.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        count(&text, user)
    }
}

/// Counts the requests of `user` in audit log lines.
pub fn count(text: &str, user: &str) -> Requests {
    let mut seen = HashSet::new();
    let mut requests = Requests::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["user"]["username"] != user {
            continue;
        }
        let id = event["auditID"].as_str().unwrap_or_default().to_string();
        if !seen.insert(id) {
            continue;
        }
        let verb = event["verb"].as_str().unwrap_or_default().to_string();
        let resource = match event["objectRef"]["subresource"].as_str() {
            Some(sub) => format!(
                "{}/{sub}",
                event["objectRef"]["resource"].as_str().unwrap_or_default()
            ),
            None => event["objectRef"]["resource"]
                .as_str()
                .unwrap_or("(none)")
                .to_string(),
        };
        *requests.entry((verb, resource)).or_default() += 1;
    }
    requests
}

/// The total of some requests.
pub fn total(requests: &Requests) -> u64 {
    requests.values().sum()
}

/// The total by verb.
pub fn by_verb(requests: &Requests) -> BTreeMap<String, u64> {
    let mut verbs = BTreeMap::new();
    for ((verb, _), n) in requests {
        *verbs.entry(verb.clone()).or_default() += n;
    }
    verbs
}

#[cfg(test)]
mod tests {
    // Benches include this file too, compiled with cfg(test) but no test
    // harness, so the tests below vanish there and leave the import unused.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn each_request_counts_once_by_verb_and_resource() {
        let lines = [
            r#"{"auditID":"a","stage":"ResponseComplete","verb":"get","user":{"username":"serin"},"objectRef":{"resource":"deployments"}}"#,
            r#"{"auditID":"w","stage":"ResponseStarted","verb":"watch","user":{"username":"serin"},"objectRef":{"resource":"canaries"}}"#,
            r#"{"auditID":"w","stage":"ResponseComplete","verb":"watch","user":{"username":"serin"},"objectRef":{"resource":"canaries"}}"#,
            r#"{"auditID":"p","stage":"ResponseComplete","verb":"patch","user":{"username":"serin"},"objectRef":{"resource":"canaries","subresource":"status"}}"#,
            r#"{"auditID":"f","stage":"ResponseComplete","verb":"get","user":{"username":"flagger"},"objectRef":{"resource":"deployments"}}"#,
        ]
        .join("\n");
        let serin = count(&lines, "serin");
        assert_eq!(total(&serin), 3);
        assert_eq!(serin[&("patch".into(), "canaries/status".into())], 1);
        assert_eq!(by_verb(&count(&lines, "flagger"))["get"], 1);
    }
}
