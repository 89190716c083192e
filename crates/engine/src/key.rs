//! Cache keys: the canonical encoding of everything a stage's result depends on, and code fingerprints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The code a stage kind can reach, as the build of the binary that registers it discovered it.
#[derive(Debug, Clone, Copy)]
pub struct KindCode {
    /// blake3 over every component below: what enters the action key.
    pub digest: &'static str,
    /// `(workspace-relative source file, blake3 of its bytes)` for every file of the kind's closure.
    pub files: &'static [(&'static str, &'static str)],
    /// `(package, version and source)` of every `Cargo.lock` package the closure reaches, and the dependency
    /// specifications (features) under which the workspace uses them.
    pub deps: &'static [(&'static str, &'static str)],
    /// `(what, value)` of the build: toolchain, target, enabled features.
    pub build: &'static [(&'static str, &'static str)],
}

/// Rewrites a JSON value with object keys sorted at every level, so equal parameters encode to equal bytes.
pub fn canonicalize(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, canonicalize(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(canonicalize).collect())
        }
        other => other,
    }
}

/// Everything an action key is made of. Stored beside each result so `alinea status` can say *why* a stage is stale.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyComponents {
    /// The stage kind.
    pub kind: String,
    /// The kind's code fingerprint (`<blake3>+v<version>`).
    pub fingerprint: String,
    /// An explicit version given in the pipeline file (`version = "2"`), to force a recomputation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Canonical parameters.
    pub params: serde_json::Value,
    /// Per input slot, the digests of what fills it (upstream objects or files), in slot order.
    pub inputs: BTreeMap<String, Vec<String>>,
}

impl KeyComponents {
    /// The action key: blake3 over the canonical JSON of the components.
    pub fn action_key(&self) -> String {
        let canonical = canonicalize(serde_json::to_value(self).expect("key components serialize"));
        let bytes = serde_json::to_vec(&canonical).expect("canonical JSON serializes");
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// Human explanations of how `self` differs from an earlier `before`, cargo-fingerprint style.
    pub fn explain_change(&self, before: &KeyComponents) -> Vec<String> {
        let mut why = Vec::new();
        if self.kind != before.kind {
            why.push(format!("kind: {} -> {}", before.kind, self.kind));
        }
        if self.fingerprint != before.fingerprint {
            why.push(format!(
                "code of stage kind {} changed ({} -> {})",
                self.kind,
                short(&before.fingerprint),
                short(&self.fingerprint)
            ));
        }
        if self.version != before.version {
            why.push(format!(
                "version: {:?} -> {:?}",
                before.version, self.version
            ));
        }
        diff_values("", &before.params, &self.params, &mut why);
        let slots: std::collections::BTreeSet<&String> =
            self.inputs.keys().chain(before.inputs.keys()).collect();
        for slot in slots {
            match (before.inputs.get(slot), self.inputs.get(slot)) {
                (Some(a), Some(b)) if a != b => why.push(format!(
                    "input {slot} changed ({} -> {})",
                    a.iter().map(|d| short(d)).collect::<Vec<_>>().join(","),
                    b.iter().map(|d| short(d)).collect::<Vec<_>>().join(",")
                )),
                (None, Some(_)) => why.push(format!("input {slot} added")),
                (Some(_), None) => why.push(format!("input {slot} removed")),
                _ => {}
            }
        }
        why
    }
}

/// The first 12 hex digits of a digest, for messages.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

fn diff_values(
    path: &str,
    before: &serde_json::Value,
    after: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value::Object;
    match (before, after) {
        (Object(a), Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_values(&p, x, y, out),
                    (None, Some(y)) => out.push(format!("param {p}: (absent) -> {y}")),
                    (Some(x), None) => out.push(format!("param {p}: {x} -> (absent)")),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a != b => out.push(format!(
            "param {}: {a} -> {b}",
            if path.is_empty() { "(all)" } else { path }
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn components(per_lang: u64) -> KeyComponents {
        KeyComponents {
            kind: "sample".into(),
            fingerprint: "abc+v1".into(),
            version: None,
            params: canonicalize(json!({"seed": 1, "per_lang": per_lang})),
            inputs: BTreeMap::from([("pairs".to_string(), vec!["d1".to_string()])]),
        }
    }

    #[test]
    fn key_ignores_field_order_but_not_values() {
        let a = components(5);
        let mut b = a.clone();
        b.params = canonicalize(json!({"per_lang": 5, "seed": 1}));
        assert_eq!(a.action_key(), b.action_key());
        assert_ne!(a.action_key(), components(6).action_key());
    }

    #[test]
    fn explanation_names_the_changed_parameter_and_input() {
        let mut after = components(6);
        after.inputs.insert("pairs".into(), vec!["d2".into()]);
        let why = after.explain_change(&components(5));
        assert_eq!(
            why,
            vec![
                "param per_lang: 5 -> 6".to_string(),
                "input pairs changed (d1 -> d2)".to_string()
            ]
        );
    }
}
