//! Helpers for the end-to-end tests: run the real `alinea` binary against a temporary store.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/<rel>` next to the repository, or a panic naming what is missing.
pub fn shared(rel: &str) -> PathBuf {
    let p = repo().join("..").join("shared").join(rel);
    assert!(
        p.exists(),
        "reference data missing: {} (the tests expect ../shared next to the repository)",
        p.display()
    );
    p
}

/// An `alinea` command using `store`.
pub fn alinea(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("alinea").expect("binary built");
    cmd.arg("--store")
        .arg(store)
        .current_dir(repo())
        .env("ALINEA_DEBUG_STAGES", "1")
        .env_remove("ALINEA_STORE");
    cmd
}

/// Runs `alinea --json <args>` and parses stdout; panics with stderr when it fails.
pub fn json(store: &Path, args: &[&str]) -> serde_json::Value {
    let out = alinea(store)
        .arg("--json")
        .args(args)
        .output()
        .expect("spawn alinea");
    assert!(
        out.status.success(),
        "alinea {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from {args:?}: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `alinea <args>` expecting failure; returns stderr.
pub fn fails(store: &Path, args: &[&str]) -> String {
    let out: Output = alinea(store).args(args).output().expect("spawn alinea");
    assert!(
        !out.status.success(),
        "alinea {args:?} should have failed; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `--set` overrides that make the demo small enough for a debug-build test: every stage kind it has, in seconds.
pub const SMALL_DEMO: [&str; 14] = [
    "--set",
    "sample.per_lang=40",
    "--set",
    "test.per_lang=3",
    "--set",
    "tiny.vocab_size=300",
    "--set",
    "gen.max_new_tokens=3",
    "--set",
    "test_opus.per_lang=3",
    "--set",
    "gen_opus.max_new_tokens=3",
    "--set",
    "tiny.pretrain_epochs=1",
];

/// `(stage, key, digests of its outputs)` of every stage of a `run --json` report.
pub fn keys_and_digests(report: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["key"].as_str().unwrap_or_default().to_string(),
                s["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["digest"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// Per stage: (name, status, first output digest, or "" when it has none).
pub fn statuses(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                s["outputs"]
                    .get(0)
                    .and_then(|o| o["digest"].as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

/// The status of stage `name` in a run report.
pub fn status_of(report: &serde_json::Value, name: &str) -> String {
    statuses(report)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, s, _)| s)
        .unwrap_or_else(|| panic!("no stage {name}"))
}

/// Why stage `stage` ran, was cached or failed, in a run report.
pub fn reason_of(report: &serde_json::Value, stage: &str) -> String {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap_or_else(|| panic!("no stage {stage}"))["reason"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}
