//! Cache keys: the canonical encoding of everything a stage's result depends on, and code fingerprints.
//!
//! An action key is blake3 over the canonical JSON of [`KeyComponents`]. A stage is reused when a record under
//! its key exists and its outputs are in the store; otherwise it runs, and [`KeyComponents::explain_change`] (with
//! [`CodeManifest::explain_change`] for code) says which component moved, against the record the pipeline's ref
//! last pointed at. What each component covers, in the manner of cargo's `fingerprint` module:
//!
//! | component | in the key? | why |
//! |---|---|---|
//! | stage kind name | key | two kinds never share a result |
//! | code fingerprint: every workspace source file the kind's folder reaches through its imports, transitively (`alinea_fingerprint` documents the rule: paths, `use` aliases, globs, macro bodies, `impl` blocks, includes, workspace crates) | key (as one digest); file list and per-file hashes in the store's `code/<digest>.json`, one per build of the kind's code | an edit anywhere in that closure can change the bytes; an edit outside it cannot, so it reruns nothing |
//! | `Cargo.lock` entries (name, version, source, checksum) of every registry crate that closure names, and their dependencies transitively | key; names and versions in `code/<digest>.json` | a polars, tokenizers, candle or rand bump can change bytes; a bump of a crate the kind cannot reach (clap, indicatif, comfy-table, a test-only crate) reruns nothing |
//! | the dependency specification (version requirement, features) under which each reached workspace package uses those crates, and the package's edition | key | features and editions change code |
//! | rustc version (`rustc -vV`: release, commit, LLVM), target triple, target features, enabled features of `alinea` (e.g. `cuda`) | key | the compiler and the enabled code paths are part of the code |
//! | `Stage::VERSION` | key (`<digest>+v<N>`) | a manual bump, for what no file shows (e.g. a behaviour of data outside the workspace) |
//! | the pipeline's `version = "…"` | key | forces one stage to recompute without touching code |
//! | canonical parameters (defaults filled in, keys sorted) | key | parameters shape outputs; an omitted default and the default written out are the same key |
//! | parameters a kind declares byte-neutral ([`crate::Stage::UNKEYED_PARAMS`]: `train.lora`'s `checkpoint_every`) | left out (the stage still receives them) | how often a checkpoint is written, progress or logging cannot change the result, so changing them must rerun nothing |
//! | input digests: upstream output objects; path inputs hashed by content (relative path + blake3 of each file) | key | content, not timestamps: touching a file reruns nothing |
//! | `command` stages: the argv (placeholders unexpanded), the output declarations (name, folder/file/table format), the input formats, the names of the allowlisted environment variables | key (they are parameters) | they say what runs and what is kept |
//! | `command` stages: the contents of each file listed in `tools` (`ambient.tool:<path>` = its blake3) and the value of each allowlisted variable (`ambient.env:<NAME>` = blake3 of the value, or `unset`) | key (`ambient`, absent for kinds that declare none, so no other key moved) | a script edit or a new `CUDA_VISIBLE_DEVICES` can change what the tool makes; values enter as digests so a secret never lands in a record |
//! | `command` stages: the interpreter or binary found on `PATH`, the scratch directory's location | left out | a shared cache must hit across machines whose `python` lives elsewhere; list a binary in `tools` to key on its bytes |
//! | input file paths, sizes, mtimes; upstream stage names | record only | provenance for `alinea log`; renaming a stage or moving the data root keeps the cache |
//! | thread count, timings, alinea's own version string, host name | record only | outputs are byte-identical whatever the thread count; the version string says nothing the code digest does not |
//! | build profile (debug/release, opt-level, LTO, codegen units) | left out | it changes speed, not results: Rust does no fast-math, and overflow checks only turn a wrap into a failure; so a debug test build and a release build share one cache |
//! | engine code outside the closure (scheduler, plan parsing, the CLI) | left out | it decides *whether* and *where* a stage runs, not what it produces; the engine code that shapes bytes (Parquet writer settings in `table.rs`, the readers in `ctx.rs`, the store) is reached by every kind and so is in every key |
//!
//! Known limits: a reached file counts whole (editing one function of `lang.rs` reaches every user of any of its
//! items); comments and formatting count as edits, as in cargo; dependency closures include build and proc-macro
//! dependencies; CPU features chosen at run time by a dependency (SIMD dispatch in gemm) are not in the key, so
//! byte-identity across machines rests on those kernels being deterministic; data read from outside the declared
//! inputs (there is none today: stages read only through [`crate::StageCtx`]) would be invisible.
//!
//! On upgrade from the folder-plus-`fingerprint-include` rule, every kind's fingerprint changes once (the digest
//! now covers its closure, its dependencies and the toolchain), so every stage reruns once; outputs of unchanged
//! code are byte-identical to before, so early cutoff stops the propagation wherever a stage's bytes are equal.

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

/// What a kind's code fingerprint covered, kept once per digest in the store (`code/<digest>.json`; the key and the
/// records hold only the digest) so that a stale stage can be explained file by file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CodeManifest {
    /// Workspace-relative source file → the first 12 hex digits of its blake3.
    pub files: BTreeMap<String, String>,
    /// Dependency entry (`lock <name> <version>`, `spec <package> <dep>`, `edition <package>`) → 12 hex digits of
    /// its value's blake3.
    pub deps: BTreeMap<String, String>,
    /// Toolchain, target, features → value.
    pub build: BTreeMap<String, String>,
}

fn short_hash(value: &str) -> String {
    blake3::hash(value.as_bytes()).to_hex()[..12].to_string()
}

/// At most five names, then how many more.
fn some_names(names: &[&str]) -> String {
    let mut text = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

impl CodeManifest {
    /// The manifest of `code`.
    pub fn of(code: &KindCode) -> CodeManifest {
        CodeManifest {
            files: code
                .files
                .iter()
                .map(|(f, h)| (f.to_string(), h[..h.len().min(12)].to_string()))
                .collect(),
            deps: code
                .deps
                .iter()
                .map(|(k, v)| (k.to_string(), short_hash(v)))
                .collect(),
            build: code
                .build
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// What changed since `before`, one phrase per kind of change: edited, added and removed files, dependency
    /// entries, build facts.
    pub fn explain_change(&self, before: &CodeManifest) -> Vec<String> {
        let mut why = Vec::new();
        let changed =
            |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> [Vec<String>; 3] {
                let edited = a
                    .iter()
                    .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
                    .map(|(k, _)| k.clone())
                    .collect();
                let added = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
                let removed = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
                [edited, added, removed]
            };
        let [edited, added, removed] = changed(&self.files, &before.files);
        for (what, list) in [
            ("", edited),
            ("now reaches ", added),
            ("no longer reaches ", removed),
        ] {
            if !list.is_empty() {
                why.push(format!(
                    "{what}{}",
                    some_names(&list.iter().map(String::as_str).collect::<Vec<_>>())
                ));
            }
        }
        let [edited, added, removed] = changed(&self.deps, &before.deps);
        for (what, list) in [
            ("dependency changed: ", edited),
            ("dependency added: ", added),
            ("dependency removed: ", removed),
        ] {
            if !list.is_empty() {
                why.push(format!(
                    "{what}{}",
                    some_names(&list.iter().map(String::as_str).collect::<Vec<_>>())
                ));
            }
        }
        for (k, v) in &self.build {
            if before.build.get(k).is_some_and(|w| w != v) {
                let old = before.build[k]
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                why.push(format!(
                    "{k}: {old} -> {}",
                    v.lines().next().unwrap_or_default()
                ));
            }
        }
        why
    }
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
    /// What the result depends on outside parameters and inputs (see [`crate::Stage::ambient`]): name → digest.
    /// Empty for every built-in kind, and then left out of the encoding, so their keys are what they were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ambient: BTreeMap<String, String>,
}

impl KeyComponents {
    /// The action key: blake3 over the canonical JSON of the components.
    pub fn action_key(&self) -> String {
        let canonical = canonicalize(serde_json::to_value(self).expect("key components serialize"));
        let bytes = serde_json::to_vec(&canonical).expect("canonical JSON serializes");
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// Human explanations of how `self` differs from an earlier `before`, cargo-fingerprint style. `code` gives the
    /// code manifests (now, before) when both are known, to name the files behind a changed fingerprint.
    pub fn explain_change(
        &self,
        before: &KeyComponents,
        code: Option<(&CodeManifest, &CodeManifest)>,
    ) -> Vec<String> {
        let mut why = Vec::new();
        if self.kind != before.kind {
            why.push(format!("kind: {} -> {}", before.kind, self.kind));
        }
        if self.fingerprint != before.fingerprint {
            let detail = code
                .map(|(now, then)| now.explain_change(then))
                .unwrap_or_default();
            if detail.is_empty() {
                why.push(format!(
                    "code of stage kind {} changed ({} -> {})",
                    self.kind,
                    short(&before.fingerprint),
                    short(&self.fingerprint)
                ));
            } else {
                why.push(format!(
                    "code of stage kind {} changed: {}",
                    self.kind,
                    detail.join("; ")
                ));
            }
        }
        if self.version != before.version {
            why.push(format!(
                "version: {:?} -> {:?}",
                before.version, self.version
            ));
        }
        diff_values("", &before.params, &self.params, &mut why);
        let names: std::collections::BTreeSet<&String> =
            self.ambient.keys().chain(before.ambient.keys()).collect();
        for name in names {
            match (before.ambient.get(name), self.ambient.get(name)) {
                (Some(a), Some(b)) if a != b => why.push(format!("{name} changed")),
                (None, Some(_)) => why.push(format!("{name} added")),
                (Some(_), None) => why.push(format!("{name} removed")),
                _ => {}
            }
        }
        let slots: std::collections::BTreeSet<&String> =
            self.inputs.keys().chain(before.inputs.keys()).collect();
        for slot in slots {
            match (before.inputs.get(slot), self.inputs.get(slot)) {
                (Some(a), Some(b)) if a != b => {
                    // Only the entries that moved: a folder input lists every file as `name:digest`.
                    let gone: Vec<String> = a
                        .iter()
                        .filter(|d| !b.contains(d))
                        .map(|d| short_input(d))
                        .collect();
                    let new: Vec<String> = b
                        .iter()
                        .filter(|d| !a.contains(d))
                        .map(|d| short_input(d))
                        .collect();
                    why.push(format!(
                        "input {slot} changed ({} -> {})",
                        if gone.is_empty() {
                            "-".into()
                        } else {
                            gone.join(",")
                        },
                        if new.is_empty() {
                            "-".into()
                        } else {
                            new.join(",")
                        }
                    ))
                }
                (None, Some(_)) => why.push(format!("input {slot} added")),
                (Some(_), None) => why.push(format!("input {slot} removed")),
                _ => {}
            }
        }
        why
    }
}

/// An input entry for messages: a digest shortened to 12 hex digits, or `name:<12 hex>` for a file of a folder
/// input (the name kept whole, so the reason says which file changed).
fn short_input(entry: &str) -> String {
    match entry.rsplit_once(':') {
        Some((name, digest)) => format!("{name}:{}", short(digest)),
        None => short(entry).to_string(),
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
            ambient: BTreeMap::new(),
        }
    }

    #[test]
    fn an_empty_ambient_leaves_the_key_of_a_built_in_kind_unchanged() {
        // The key of these components as computed before `ambient` existed (same canonical JSON).
        let c = components(5);
        let canonical = serde_json::json!({
            "fingerprint": "abc+v1", "inputs": {"pairs": ["d1"]}, "kind": "sample",
            "params": {"per_lang": 5, "seed": 1}
        });
        let old = blake3::hash(&serde_json::to_vec(&canonical).unwrap())
            .to_hex()
            .to_string();
        assert_eq!(c.action_key(), old);
        let mut tool = c.clone();
        tool.ambient.insert("tool:scripts/x.py".into(), "aa".into());
        assert_ne!(tool.action_key(), old);
        let mut edited = tool.clone();
        edited
            .ambient
            .insert("tool:scripts/x.py".into(), "bb".into());
        assert_eq!(
            edited.explain_change(&tool, None),
            vec!["tool:scripts/x.py changed".to_string()]
        );
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
        let why = after.explain_change(&components(5), None);
        assert_eq!(
            why,
            vec![
                "param per_lang: 5 -> 6".to_string(),
                "input pairs changed (d1 -> d2)".to_string()
            ]
        );
    }

    #[test]
    fn a_changed_folder_input_names_the_file_that_changed_with_its_digests() {
        let folder = |weights: &str| {
            let mut c = components(5);
            c.inputs.insert(
                "model".into(),
                vec![
                    format!("config.json:{}", "a".repeat(64)),
                    format!("model.safetensors:{}", weights.repeat(64)),
                    format!("tokenizer.json:{}", "c".repeat(64)),
                ],
            );
            c
        };
        assert_eq!(
            folder("e").explain_change(&folder("b"), None),
            vec![format!(
                "input model changed (model.safetensors:{} -> model.safetensors:{})",
                "b".repeat(12),
                "e".repeat(12)
            )]
        );
    }
}

#[cfg(test)]
mod code_tests {
    use super::*;

    static FILES_A: &[(&str, &str)] = &[
        ("src/support/lang.rs", "aaaaaaaaaaaaaaaa"),
        ("src/stages/instruct_mt/mod.rs", "bbbbbbbbbbbb"),
    ];
    static FILES_B: &[(&str, &str)] = &[
        ("src/support/lang.rs", "cccccccccccccccc"),
        ("src/stages/instruct_mt/mod.rs", "bbbbbbbbbbbb"),
    ];

    fn code(files: &'static [(&'static str, &'static str)], polars: &'static str) -> KindCode {
        let deps: &'static [(&'static str, &'static str)] = if polars == "0.55.2" {
            &[("lock polars 0.55.2", "registry+x sum1")]
        } else {
            &[("lock polars 0.55.3", "registry+x sum2")]
        };
        KindCode {
            digest: "d",
            files,
            deps,
            build: &[("rustc", "rustc 1.95.0")],
        }
    }

    #[test]
    fn a_changed_fingerprint_is_explained_by_the_file_that_changed() {
        let before = KeyComponents {
            kind: "instruct.mt".into(),
            fingerprint: "a+v1".into(),
            version: None,
            params: serde_json::json!({}),
            inputs: BTreeMap::new(),
            ambient: BTreeMap::new(),
        };
        let now = KeyComponents {
            fingerprint: "b+v1".into(),
            ..before.clone()
        };
        let (a, b) = (
            CodeManifest::of(&code(FILES_A, "0.55.2")),
            CodeManifest::of(&code(FILES_B, "0.55.2")),
        );
        assert_eq!(
            now.explain_change(&before, Some((&b, &a))),
            vec!["code of stage kind instruct.mt changed: src/support/lang.rs".to_string()]
        );
        let c = CodeManifest::of(&code(FILES_A, "0.55.3"));
        assert_eq!(
            c.explain_change(&a),
            vec![
                "dependency added: lock polars 0.55.3".to_string(),
                "dependency removed: lock polars 0.55.2".to_string()
            ]
        );
        assert_eq!(
            now.explain_change(&before, None),
            vec!["code of stage kind instruct.mt changed (a+v1 -> b+v1)".to_string()]
        );
    }
}
