//! End to end, with a real rebuild: a copy of this workspace whose language registry renames one language is
//! compiled into a second binary, which then runs against a store the first binary filled. Exactly the stages
//! whose kind reaches the registry go stale, for the reason `code … changed: <the registry file>`; where their
//! bytes come out equal, early cutoff keeps everything downstream cached.
//!
//! Every package of the copy is renamed (`alinea-mutant`, `alinea-instruct-mutant`, …; each library keeps its
//! name in code), so that its binary and libraries never replace the ones that other tests and doctests use: the
//! names cargo gives artifacts of path packages depend on the package name, not on where the workspace lies. It
//! shares this build's target directory, so only the workspace's own crates are recompiled. Package names are in
//! no code fingerprint (digests name packages by their directory).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn copy_sources(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let keep = matches!(
            first.as_str(),
            "src" | "crates" | "benches" | "build.rs" | "Cargo.toml" | "Cargo.lock"
        );
        let in_crate_target = rel.components().any(|c| c.as_os_str() == "target");
        if keep && !in_crate_target {
            let dest = to.join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&entry, dest).unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | ".git" | "cache" | "datasets" | "tests" | "pipelines"
            ) {
                out.extend(walk(&path));
            }
        } else {
            out.push(path);
        }
    }
    out
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The file of the workspace that holds the language registry's English names.
fn registry_file(root: &Path) -> PathBuf {
    walk(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .find(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.contains("\"Afrikaans\",")
                && text.contains("\"Belarusian\",")
                && text.contains("\"Limburgish\",")
        })
        .expect("a language registry naming Belarusian")
}

fn stages(json: &[u8]) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_slice(json).unwrap();
    let list = v
        .get("stages")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| v.as_array().cloned())
        .unwrap();
    list.iter()
        .map(|s| {
            let field = |k: &str| {
                s.get(k)
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .unwrap_or_default()
            };
            let state = if s.get("state").is_some() {
                field("state")
            } else {
                field("status")
            };
            let reason = if s.get("reasons").is_some() {
                field("reasons")
            } else {
                field("reason")
            };
            (field("name"), state, reason)
        })
        .collect()
}

const PIPELINE: &str = r#"
[pipeline]
name = "code_change"
root = "REPO"

[stages.opus]
kind = "ingest.opus100"
inputs = { root = "datasets/opus-100" }
langs = ["be", "li"]
splits = ["train"]

[stages.sample]
kind = "sample"
inputs = { pairs = "opus" }
per_lang = 40

[stages.align]
kind = "align.ibm2"
inputs = { pairs = "sample" }

[stages.mt]
kind = "instruct.mt"
inputs = { pairs = "sample" }

[stages.train_set]
kind = "instruct.curriculum"
inputs = { tasks = ["mt"] }
objective = "MT"

[stages.copy]       # a pass-through whose kind reaches only the engine: the early-cutoff witness
kind = "debug.fail"
inputs = { table = "mt" }
mode = "pass"
"#;

#[test]
fn renaming_a_language_reruns_exactly_the_stages_that_reach_the_registry() {
    let repo = common::repo();
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let pipeline = work.path().join("code_change.toml");
    std::fs::write(
        &pipeline,
        PIPELINE.replace("REPO", &repo.display().to_string()),
    )
    .unwrap();
    let run = |bin: &Path, args: &[&str]| {
        let out = Command::new(bin)
            .env("ALINEA_DEBUG_STAGES", "1")
            .args(args)
            .arg("--store")
            .arg(&store)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stages(&out.stdout)
    };
    let original = PathBuf::from(env!("CARGO_BIN_EXE_alinea"));
    let first = run(&original, &["run", pipeline.to_str().unwrap()]);
    assert!(
        first.iter().all(|(_, status, _)| status == "ran"),
        "{first:?}"
    );

    // The mutant: Afrikaans (not in this pipeline) renamed in the registry, built into the same target dir.
    let copy = work.path().join("copy");
    copy_sources(&repo, &copy);
    edit(
        &copy.join("Cargo.toml"),
        "name = \"alinea\"",
        "name = \"alinea-mutant\"",
    );
    edit(
        &copy.join("Cargo.toml"),
        "default-run = \"alinea\"",
        "default-run = \"alinea-mutant\"",
    );
    edit(
        &copy.join("src/main.rs"),
        "alinea::cli::main()",
        "alinea_mutant::cli::main()",
    );
    for member in std::fs::read_dir(copy.join("crates")).unwrap() {
        let dir = member.unwrap().path();
        let short = dir.file_name().unwrap().to_string_lossy().to_string();
        let manifest = dir.join("Cargo.toml");
        edit(
            &manifest,
            &format!("name = \"alinea-{short}\""),
            &format!("name = \"alinea-{short}-mutant\""),
        );
        let mut text = std::fs::read_to_string(&manifest).unwrap();
        text.push_str(&format!("\n[lib]\nname = \"alinea_{short}\"\n"));
        std::fs::write(&manifest, text).unwrap();
        edit(
            &copy.join("Cargo.toml"),
            &format!("alinea-{short} = {{ path = \"crates/{short}\" }}"),
            &format!(
                "alinea-{short} = {{ path = \"crates/{short}\", package = \"alinea-{short}-mutant\" }}"
            ),
        );
    }
    let registry = registry_file(&copy);
    edit(&registry, "\"Afrikaans\"", "\"Afrikaans (renamed)\"");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let build = Command::new(env!("CARGO"))
        .args([
            "build",
            "--offline",
            "--bin",
            "alinea-mutant",
            "--manifest-path",
        ])
        .arg(copy.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "building the mutant: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let mutant = target
        .join("debug")
        .join(format!("alinea-mutant{}", std::env::consts::EXE_SUFFIX));
    let registry_rel = registry
        .strip_prefix(&copy)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");

    let status = run(&mutant, &["status", pipeline.to_str().unwrap()]);
    for (name, state, reason) in &status {
        match name.as_str() {
            "opus" | "sample" | "align" => assert_eq!(state, "fresh", "{name}: {reason}"),
            "mt" => {
                assert_eq!(state, "stale");
                assert!(
                    reason.contains("code of stage kind instruct.mt changed")
                        && reason.contains(&registry_rel),
                    "{reason}"
                );
            }
            "train_set" | "copy" => assert_eq!(state, "stale", "{name} waits on mt"),
            other => panic!("unexpected stage {other}"),
        }
    }
    // Running it: mt recomputes byte-identical instructions (Afrikaans is not in the data), so `copy`, whose kind
    // does not reach the registry, stays cached (early cutoff); the curriculum's kind reaches it, and reruns.
    let rerun = run(&mutant, &["run", pipeline.to_str().unwrap()]);
    let status_of = |n: &str| {
        rerun
            .iter()
            .find(|(name, _, _)| name == n)
            .map(|(_, s, r)| (s.clone(), r.clone()))
            .unwrap()
    };
    assert_eq!(status_of("opus").0, "cached");
    assert_eq!(status_of("align").0, "cached");
    assert_eq!(status_of("mt").0, "ran");
    assert_eq!(
        status_of("copy").0,
        "cached",
        "early cutoff: {:?}",
        status_of("copy")
    );
    let (cur_status, cur_reason) = status_of("train_set");
    assert!(
        cur_status == "ran"
            && cur_reason.contains("code of stage kind instruct.curriculum changed"),
        "{cur_status} {cur_reason}"
    );
    // And the original binary still finds everything it made: nothing was overwritten.
    let back = run(&original, &["status", pipeline.to_str().unwrap()]);
    assert!(
        back.iter().all(|(_, state, _)| state == "fresh"),
        "{back:?}"
    );
}
