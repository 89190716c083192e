//! Robustness end to end: exit codes, a closed stdout, panics in workers, hand-edited refs and records, corrupt
//! objects (quarantined and recomputed in the same run), malformed Parquet input, and a no-op rerun that writes
//! nothing.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;

const INGEST: &str = "tests/data/pipelines/ingest.toml";

/// FLORES-200 (be, dev) and a stage reading it, `extra` appended (e.g. a debug.fail stage).
fn flores_pipeline(dir: &Path, extra: &str) -> String {
    write(
        dir,
        "p.toml",
        &format!(
            "[pipeline]\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\"]\nsplits = [\"dev\"]\n\
             [stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"flores\" }}\nsplits = [\"dev\"]\nper_lang = 100\n{extra}",
            repo().display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited, not killed by a signal")
}

fn object(store: &Path, digest: &str) -> PathBuf {
    store.join("objects").join(&digest[..2]).join(digest)
}

fn digest_of(report: &serde_json::Value, stage: &str) -> String {
    statuses(report)
        .into_iter()
        .find(|(n, _, _)| n == stage)
        .unwrap_or_else(|| panic!("no stage {stage}"))
        .2
}

/// Flips one byte in the middle of a file, in place (same size, same inode).
fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(path, &bytes).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Every object file of a store.
fn objects(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(store.join("objects")).unwrap().flatten() {
        for o in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(o.path());
        }
    }
    out
}

#[test]
fn exit_codes_distinguish_stage_failure_usage_and_store_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let failing = flores_pipeline(
        dir.path(),
        "[stages.bad]\nkind = \"debug.fail\"\ninputs = { table = \"flores\" }\nmode = \"error\"\n",
    );
    let out = alinea(&store).args(["run", &failing]).output().unwrap();
    assert_eq!(code(&out), 1, "a failed stage: {out:?}");

    let bad_toml = write(dir.path(), "bad.toml", "[stages.x\nkind = 1\n");
    let out = alinea(&store)
        .args(["run", bad_toml.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "bad TOML: {out:?}");
    let unknown = write(
        dir.path(),
        "k.toml",
        "[stages.x]\nkind = \"no.such.kind\"\n",
    );
    let out = alinea(&store)
        .args(["run", unknown.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "unknown kind: {out:?}");
    let out = alinea(&store)
        .args(["run", INGEST, "--set", "nodot=1"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "bad --set: {out:?}");
    let out = alinea(&store)
        .args(["help", "no.such.kind"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "unknown kind in help: {out:?}");

    std::fs::create_dir_all(&store).unwrap();
    let lock = std::fs::File::create(store.join("LOCK")).unwrap();
    lock.lock().unwrap();
    let out = alinea(&store)
        .args(["run", INGEST, "--no-wait"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "locked store: {out:?}");
    drop(lock);

    let help = alinea(&store).arg("--help").output().unwrap();
    assert_eq!(code(&help), 0);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit status: 0 success; 1 a stage") && help.contains("3 store error"),
        "{help}"
    );
}

#[test]
fn closed_stdout_stops_printing_but_the_run_completes_and_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("alinea"))
        .args(["--store", store.to_str().unwrap(), "run", &p])
        .current_dir(repo())
        .env_remove("ALINEA_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is printed, as `alinea run | head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Every stage completed and is recorded: the next run finds all of it cached.
    let rerun = json(&store, &["run", &p]);
    assert!(
        statuses(&rerun).iter().all(|(_, s, _)| s == "cached"),
        "{rerun}"
    );
    let log = json(&store, &["log", "sample"]);
    assert_eq!(log["stats"]["rows_out"], 100);
}

#[test]
fn a_panic_in_input_resolution_or_in_a_stage_fails_that_stage_and_never_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write(dir.path(), "any.txt", "x\n");
    let p = flores_pipeline(
        dir.path(),
        &format!(
            "[stages.listing]\nkind = \"debug.fail\"\ninputs = {{ table = \"flores\", file = \"{}\" }}\nmode = \"panic-inputs\"\n\
             [stages.running]\nkind = \"debug.fail\"\ninputs = {{ table = \"flores\" }}\nmode = \"panic\"\n\
             [stages.after]\nkind = \"debug.fail\"\ninputs = {{ table = \"listing\" }}\n",
            dir.path().join("any.txt").display()
        ),
    );
    let out = alinea(&store)
        .args(["--json", "run", &p, "--keep-going", "-j", "2"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status_of(&report, "listing"), "failed");
    assert!(
        reason_of(&report, "listing")
            .contains("stage panicked (a bug in alinea, please report it): debug.fail: panicking on purpose while listing input files"),
        "{report}"
    );
    assert_eq!(status_of(&report, "running"), "failed");
    assert!(reason_of(&report, "running").contains("panicking on purpose (mode = \"panic\")"));
    assert_eq!(status_of(&report, "after"), "skipped");
    assert_eq!(status_of(&report, "sample"), "ran");
}

#[test]
fn hand_edited_ref_or_record_digest_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    let report = json(&store, &["run", &p]);
    let ref_file = store.join("refs/p.json");
    let text = std::fs::read_to_string(&ref_file).unwrap();
    let key = report["stages"][0]["key"].as_str().unwrap();
    // A record with a bad output digest.
    let record = store
        .join("actions")
        .join(&key[..2])
        .join(format!("{key}.json"));
    let rec = std::fs::read_to_string(&record).unwrap();
    let digest = digest_of(&report, "flores");
    std::fs::write(&record, rec.replace(&digest, "x")).unwrap();
    let out = alinea(&store).args(["show", "flores"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(
        err.contains(&record.display().to_string())
            && err.contains("`outputs[0].digest` is `x`, not a digest"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    std::fs::write(&record, rec).unwrap();

    // A ref with a bad key: named by every command that needs it, with the repair that sets it aside.
    std::fs::write(&ref_file, text.replacen(key, "ZZ", 1)).unwrap();
    let out = alinea(&store).args(["log", "flores"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(
        err.contains(&ref_file.display().to_string())
            && err.contains("`stages.flores.key` is `ZZ`, not a digest")
            && err.contains("alinea verify --repair"),
        "{err}"
    );
    // `run` is not blocked: it sets the damaged ref aside, finds every stage by its key (cached) and writes a
    // new ref.
    let out = alinea(&store).args(["--json", "run", &p]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains("unreadable pipeline ref") && err.contains("quarantine/refs/p.json"),
        "{err}"
    );
    let rerun: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        statuses(&rerun).iter().all(|(_, s, _)| s == "cached"),
        "{rerun}"
    );
    assert_eq!(std::fs::read_to_string(&ref_file).unwrap(), text);
    assert!(
        json(&store, &["verify"])["bad_refs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn same_size_corrupt_object_is_quarantined_and_recomputed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    let first = json(&store, &["run", &p]);
    let digest = digest_of(&first, "flores");
    let obj = object(&store, &digest);
    let size = std::fs::metadata(&obj).unwrap().len();
    flip_byte(&obj);
    assert_eq!(std::fs::metadata(&obj).unwrap().len(), size);

    let rerun = json(&store, &["run", &p]);
    assert_eq!(status_of(&rerun, "flores"), "ran", "{rerun}");
    assert_eq!(status_of(&rerun, "sample"), "cached", "{rerun}");
    assert_eq!(
        statuses(&rerun),
        statuses(&first)
            .into_iter()
            .map(|(n, s, d)| (
                n.clone(),
                if n == "flores" { s } else { "cached".into() },
                d
            ))
            .collect::<Vec<_>>(),
        "recomputed with its original content"
    );
    let quarantined = store.join("quarantine").join(&digest);
    assert_eq!(std::fs::metadata(&quarantined).unwrap().len(), size);
    assert_ne!(
        std::fs::read(&quarantined).unwrap(),
        std::fs::read(&obj).unwrap()
    );
    let verify = json(&store, &["verify"]);
    assert!(verify["corrupt"].as_array().unwrap().is_empty(), "{verify}");
    assert!(verify["missing"].as_array().unwrap().is_empty(), "{verify}");
}

#[test]
fn corrupt_input_found_on_read_recomputes_its_producer_in_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    let fresh = json(
        &dir.path().join("fresh"),
        &["run", &p, "--set", "sample.per_lang=50"],
    );
    let first = json(&store, &["run", &p]);
    let digest = digest_of(&first, "flores");
    let obj = object(&store, &digest);
    // Old enough for the stat cache to trust its stamp, and a no-op rerun records that stamp as verified.
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&obj, old);
    json(&store, &["run", &p]);
    // Damage that keeps size, inode and mtime (bit rot): the stamp check cannot see it, the read does.
    flip_byte(&obj);
    set_mtime(&obj, old);

    let rerun = json(&store, &["run", &p, "--set", "sample.per_lang=50"]);
    assert_eq!(status_of(&rerun, "flores"), "ran", "{rerun}");
    assert!(reason_of(&rerun, "flores").contains("was corrupt (quarantined); recomputed"));
    assert_eq!(status_of(&rerun, "sample"), "ran", "{rerun}");
    assert!(reason_of(&rerun, "sample").contains("reran after recomputing it"));
    assert_eq!(
        statuses(&rerun)
            .into_iter()
            .map(|(n, _, d)| (n, d))
            .collect::<Vec<_>>(),
        statuses(&fresh)
            .into_iter()
            .map(|(n, _, d)| (n, d))
            .collect::<Vec<_>>(),
        "outputs byte-identical to a run on a fresh store"
    );
    assert!(store.join("quarantine").join(&digest).exists());
    assert_eq!(
        std::fs::read(&obj).unwrap().len(),
        std::fs::read(store.join("quarantine").join(&digest))
            .unwrap()
            .len()
    );
}

#[test]
fn verify_names_the_exact_repair_command() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    let report = json(&store, &["run", &p]);
    flip_byte(&object(&store, &digest_of(&report, "flores")));
    let out = alinea(&store).arg("verify").output().unwrap();
    assert_eq!(code(&out), 3);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "fix with `alinea verify --repair --store {}`",
            store.display()
        )),
        "{text}"
    );
    let repaired = json(&store, &["verify", "--repair"]);
    assert_eq!(repaired["corrupt"].as_array().unwrap().len(), 1);
    assert!(
        store
            .join("quarantine")
            .join(digest_of(&report, "flores"))
            .exists(),
        "repair quarantines, never deletes"
    );
}

#[test]
fn truncated_or_damaged_parquet_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    json(&store, &["run", &p]);
    let good = dir.path().join("good.parquet");
    json(&store, &["export", "flores", "-o", good.to_str().unwrap()]);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    // Flipped bytes at the start of the footer (the Thrift file metadata: version, schema), located through the
    // footer length that precedes the trailing `PAR1`.
    let damaged = dir.path().join("damaged.parquet");
    let mut d = bytes.clone();
    let n = d.len();
    let footer_len = u32::from_le_bytes(d[n - 8..n - 4].try_into().unwrap()) as usize;
    let start = n - 8 - footer_len;
    for b in &mut d[start..start + 16] {
        *b ^= 0xFF;
    }
    std::fs::write(&damaged, &d).unwrap();
    for (file, ok) in [(&good, true), (&truncated, false), (&damaged, false)] {
        let q = write(
            dir.path(),
            "q.toml",
            &format!(
                "[stages.c]\nkind = \"ingest.parallel\"\ninputs = {{ file = \"{}\" }}\nsrc_lang = \"be\"\ntgt_lang = \"en\"\n",
                file.display()
            ),
        );
        let out = alinea(&dir.path().join("s2"))
            .args(["run", q.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if ok {
            assert_eq!(code(&out), 0, "{err}");
            continue;
        }
        assert_eq!(code(&out), 1, "{}: {err}", file.display());
        assert!(
            err.contains(&format!("{}: not a readable Parquet table", file.display())),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_no_op_rerun_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    json(&store, &["run", &p]);
    // Age the objects past the stat cache's racy window, so the next run records them as verified once.
    let old = SystemTime::now() - Duration::from_secs(3600);
    for o in objects(&store) {
        set_mtime(&o, old);
    }
    json(&store, &["run", &p]);
    let watched: Vec<PathBuf> = ["refs/p.json", "refs/HEAD", "statcache.json"]
        .iter()
        .map(|f| store.join(f))
        .collect();
    let before: Vec<SystemTime> = watched.iter().map(|f| mtime(f)).collect();
    let listing = |d: &str| {
        let mut v: Vec<_> = std::fs::read_dir(store.join(d))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        v.sort();
        v
    };
    let (tmp, work) = (listing("tmp"), listing("work"));
    let rerun = json(&store, &["run", &p]);
    assert!(statuses(&rerun).iter().all(|(_, s, _)| s == "cached"));
    let after: Vec<SystemTime> = watched.iter().map(|f| mtime(f)).collect();
    assert_eq!(before, after, "{watched:?} rewritten by a no-op rerun");
    assert_eq!((tmp, work), (listing("tmp"), listing("work")));

    // A change of one stage rewrites the ref (it now points elsewhere), once more the stat cache is left alone.
    json(&store, &["run", &p, "--set", "sample.per_lang=10"]);
    assert_ne!(mtime(&watched[0]), before[0]);
    assert_eq!(mtime(&watched[2]), before[2]);
}

#[test]
fn query_scans_tables_lazily_but_refuses_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = flores_pipeline(dir.path(), "");
    let first = json(&store, &["run", &p]);
    let rows = json(&store, &["query", "SELECT count(*) AS n FROM sample"]);
    assert_eq!(rows[0]["n"], 100, "{rows}");
    // Every table is checked before the scan (by its verified stamp: no read when unchanged), so a damaged one is
    // quarantined and never scanned: a query that reads it fails naming it, one that does not still works.
    let obj = object(&store, &digest_of(&first, "sample"));
    flip_byte(&obj);
    let rows = json(&store, &["query", "SELECT count(*) AS n FROM flores"]);
    assert_eq!(rows[0]["n"], 997, "{rows}");
    let out = alinea(&store)
        .args(["query", "SELECT count(*) AS n FROM sample"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("table `pairs` of stage `sample` is missing or damaged"),
        "{err}"
    );
    assert!(
        store
            .join("quarantine")
            .join(digest_of(&first, "sample"))
            .exists()
    );
}
