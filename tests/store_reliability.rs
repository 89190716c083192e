//! The store under hostile use: `gc` killed at random instants, `verify` beside `gc` and beside a run, and every
//! kind of damage (objects, records, refs, the stat cache, code manifests) taken through `verify`, `--repair`,
//! `verify` again and a run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// FLORES-200 (be, dev) and a sample of it: a small real pipeline.
fn flores_pipeline(dir: &Path, per_lang: u32) -> String {
    write(
        dir,
        &format!("p{per_lang}.toml"),
        &format!(
            "[pipeline]\nname = \"p\"\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\"]\nsplits = [\"dev\"]\n\
             [stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"flores\" }}\nsplits = [\"dev\"]\nper_lang = {per_lang}\n",
            repo().display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

/// A small deterministic generator (xorshift64*), so every failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn shard_path(store: &Path, sub: &str, name: &str, ext: &str) -> PathBuf {
    store
        .join(sub)
        .join(&name[..2])
        .join(format!("{name}{ext}"))
}

/// Adds `n` unreachable results, the way superseded runs leave them: an object and an action record naming it
/// (made from a real record), so that `gc` has records and objects to remove in an order that matters.
fn add_garbage(store: &Path, template: &serde_json::Value, tag: &str, n: usize) {
    for i in 0..n {
        let bytes = format!("garbage {tag} {i}").into_bytes();
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let obj = shard_path(store, "objects", &digest, "");
        std::fs::create_dir_all(obj.parent().unwrap()).unwrap();
        std::fs::write(&obj, &bytes).unwrap();
        let key = blake3::hash(format!("key {tag} {i}").as_bytes())
            .to_hex()
            .to_string();
        let mut rec = template.clone();
        rec["key"] = key.clone().into();
        rec["outputs"][0]["digest"] = digest.into();
        rec["outputs"][0]["bytes"] = bytes.len().into();
        let path = shard_path(store, "actions", &key, ".json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    }
}

fn record_of(
    store: &Path,
    report: &serde_json::Value,
    stage: &str,
) -> (PathBuf, serde_json::Value) {
    let key = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let path = shard_path(store, "actions", &key, ".json");
    let rec = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, rec)
}

/// Starts `alinea <args>` in the background (assert_cmd's `Command` only runs to completion).
fn spawn(store: &Path, args: &[&str]) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_alinea"))
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(repo())
        .env_remove("ALINEA_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A verify report with long lists cut to their first entries and length, for assertion messages.
fn brief(report: &serde_json::Value) -> String {
    let mut v = report.clone();
    for (_, field) in v.as_object_mut().into_iter().flatten() {
        if let Some(list) = field.as_array_mut()
            && list.len() > 3
        {
            let n = list.len();
            list.truncate(3);
            list.push(format!("... {n} in all").into());
        }
    }
    v.to_string()
}

fn verify(store: &Path) -> (i32, serde_json::Value) {
    let out = alinea(store).args(["--json", "verify"]).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn gc_killed_at_random_instants_always_leaves_a_store_verify_calls_clean() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), 100);
    let first = json(&store, &["run", &p]);
    let (_, template) = record_of(&store, &first, "sample");
    // How long a whole gc takes here, so the kills land anywhere in it (process start included).
    add_garbage(&store, &template, "timing", 1500);
    let t = Instant::now();
    assert!(spawn(&store, &["gc"]).wait().unwrap().success());
    let full = t.elapsed();
    let mut rng = Rng(0x5eed_0017);
    let mut killed_midway = 0;
    for round in 0..16 {
        add_garbage(&store, &template, &format!("round {round}"), 1500);
        let mut gc = spawn(&store, &["gc"]);
        std::thread::sleep(Duration::from_micros(
            rng.below(full.as_micros() as u64 + 1),
        ));
        let _ = gc.kill();
        let status = gc.wait().unwrap();
        if !status.success() {
            killed_midway += 1;
        }
        let (code, report) = verify(&store);
        assert_eq!(
            code,
            0,
            "round {round}: verify after a killed gc: {}",
            brief(&report)
        );
    }
    assert!(
        killed_midway >= 8,
        "only {killed_midway} of 16 kills landed while gc ran (gc took {full:?})"
    );
    // The pipeline's results survived every kill, byte for byte.
    let again = json(&store, &["run", &p]);
    assert_eq!(
        statuses(&again),
        statuses(&first)
            .into_iter()
            .map(|(n, _, d)| (n, "cached".into(), d))
            .collect::<Vec<_>>()
    );
}

#[test]
fn verify_beside_gc_or_a_run_never_reports_false_problems() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = json(&store, &["run", &flores_pipeline(dir.path(), 100)]);
    let (_, template) = record_of(&store, &first, "sample");
    let mut checks = 0;
    for round in 0..4 {
        add_garbage(&store, &template, &format!("beside {round}"), 1500);
        // gc, then a run writing new objects, records and a ref, each with verify running beside it.
        let per_lang = 50 + round;
        let writers = [
            spawn(&store, &["gc"]),
            spawn(&store, &["run", &flores_pipeline(dir.path(), per_lang)]),
        ];
        for mut w in writers {
            while w.try_wait().unwrap().is_none() {
                let (code, report) = verify(&store);
                assert_eq!(
                    code,
                    0,
                    "round {round}: verify beside a writer: {}",
                    brief(&report)
                );
                checks += 1;
            }
            assert!(w.wait().unwrap().success());
        }
    }
    assert!(
        checks >= 4,
        "verify ran only {checks} times beside the writers"
    );
}

/// Damages a fresh store in one way, then checks: `verify` names the problem (exit 3), `verify --repair` fixes it,
/// `verify` is clean at once, and a run succeeds with every stage it could keep cached.
fn damage_case(
    name: &str,
    problem_field: &str,
    damage: impl FnOnce(&Path, &serde_json::Value),
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), 100);
    let first = json(&store, &["run", &p]);
    damage(&store, &first);
    let (code, report) = verify(&store);
    assert_eq!(code, 3, "{name}: verify should find the damage: {report}");
    let found = &report[problem_field];
    assert!(
        found.as_array().is_some_and(|a| !a.is_empty()) || found == true,
        "{name}: expected `{problem_field}` in {report}"
    );
    let repaired = json(&store, &["verify", "--repair"]);
    let (code, after) = verify(&store);
    assert_eq!(
        code, 0,
        "{name}: not clean after one --repair ({repaired}): {after}"
    );
    let rerun = json(&store, &["run", &p]);
    assert_eq!(
        statuses(&rerun)
            .iter()
            .map(|(n, _, d)| (n.clone(), d.clone()))
            .collect::<Vec<_>>(),
        statuses(&first)
            .iter()
            .map(|(n, _, d)| (n.clone(), d.clone()))
            .collect::<Vec<_>>(),
        "{name}: the rerun must give the same bytes"
    );
    assert_eq!(verify(&store).0, 0, "{name}: clean after the rerun");
    rerun
}

fn object_of(store: &Path, report: &serde_json::Value, stage: &str) -> PathBuf {
    let (_, rec) = record_of(store, report, stage);
    shard_path(
        store,
        "objects",
        rec["outputs"][0]["digest"].as_str().unwrap(),
        "",
    )
}

#[test]
fn every_kind_of_damage_is_found_repaired_in_one_pass_and_recomputed() {
    let rerun = damage_case("corrupt object", "corrupt", |store, first| {
        let obj = object_of(store, first, "sample");
        let mut bytes = std::fs::read(&obj).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        std::fs::write(&obj, bytes).unwrap();
    });
    assert_eq!(status_of(&rerun, "sample"), "ran");
    assert_eq!(status_of(&rerun, "flores"), "cached");

    let rerun = damage_case("deleted object", "missing", |store, first| {
        std::fs::remove_file(object_of(store, first, "flores")).unwrap();
    });
    assert_eq!(status_of(&rerun, "flores"), "ran");
    assert_eq!(
        status_of(&rerun, "sample"),
        "cached",
        "same bytes upstream: early cutoff"
    );

    let rerun = damage_case("truncated record", "bad_records", |store, first| {
        let (path, _) = record_of(store, first, "sample");
        let text = std::fs::read(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    });
    assert_eq!(status_of(&rerun, "sample"), "ran");

    let rerun = damage_case("garbage ref", "bad_refs", |store, _| {
        std::fs::write(store.join("refs/p.json"), "{\"file\": 3").unwrap();
    });
    assert!(
        statuses(&rerun).iter().all(|(_, s, _)| s == "cached"),
        "{rerun}"
    );

    damage_case("dangling ref entry", "dangling", |store, first| {
        let (path, _) = record_of(store, first, "sample");
        std::fs::remove_file(path).unwrap();
    });

    damage_case("garbage stat cache", "bad_stat_cache", |store, _| {
        std::fs::write(store.join("statcache.json"), "not json").unwrap();
    });

    damage_case(
        "wrong stat-cache digest",
        "wrong_stat_entries",
        |store, _| {
            poison_stat_cache(store);
        },
    );

    damage_case("garbage code manifest", "bad_code_manifests", |store, _| {
        let code = std::fs::read_dir(store.join("code"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(code, "[").unwrap();
    });
}

/// Gives every stat-cache entry of an input file a wrong (well-formed) digest, keeping its stamp.
fn poison_stat_cache(store: &Path) {
    let path = store.join("statcache.json");
    let mut cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut poisoned = 0;
    for (file, entry) in cache["entries"].as_object_mut().unwrap() {
        if file.contains("flores200") {
            entry["digest"] = "ab".repeat(32).into();
            poisoned += 1;
        }
    }
    assert!(
        poisoned > 0,
        "no stat-cache entry for the FLORES files: {cache}"
    );
    std::fs::write(&path, serde_json::to_vec(&cache).unwrap()).unwrap();
}

#[test]
fn a_run_that_meets_a_wrong_stat_cache_digest_rehashes_once_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), 100);
    let first = json(&store, &["run", &p]);
    poison_stat_cache(&store);
    // The poisoned digest gives another key: the stage starts, reads its file, sees the lie, drops the entry and
    // starts over with the file re-hashed, which finds the real key cached.
    let second = json(&store, &["run", &p]);
    assert_eq!(status_of(&second, "flores"), "cached", "{second}");
    assert_eq!(statuses(&second).len(), statuses(&first).len());
    assert_eq!(verify(&store).0, 0);
    let third = json(&store, &["run", &p]);
    assert!(statuses(&third).iter().all(|(_, s, _)| s == "cached"));
}

#[test]
fn gc_refuses_to_act_on_a_partial_view_when_a_ref_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    json(&store, &["run", &flores_pipeline(dir.path(), 100)]);
    let objects_before = walk(&store.join("objects"));
    std::fs::write(store.join("refs/p.json"), "{").unwrap();
    let err = fails(&store, &["gc"]);
    assert!(
        err.contains("refs/p.json: unreadable pipeline ref")
            && err.contains("alinea verify --repair"),
        "{err}"
    );
    assert_eq!(
        walk(&store.join("objects")),
        objects_before,
        "gc deleted nothing"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect();
    out.sort();
    out
}
