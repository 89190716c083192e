//! End-to-end behaviour of the cache: reruns, invalidation, early cutoff, determinism, crash safety, locking.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const DEMO: &str = "tests/data/pipelines/ingest.toml";

#[test]
fn second_run_recomputes_nothing_and_parameter_change_reruns_only_dependents() {
    let store = tempfile::tempdir().unwrap();
    let first = json(store.path(), &["run", DEMO]);
    assert!(
        statuses(&first).iter().all(|(_, s, _)| s == "ran"),
        "{first}"
    );
    let rows: Vec<u64> = first["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rows"].as_u64().unwrap())
        .collect();
    // 2 languages x (5,000 train + 2,000 dev + 2,000 test) OPUS-100 pairs; FLORES 2 x (997 + 1,012); 2 x 2,000 sampled.
    assert_eq!(rows, vec![18_000, 4_018, 4_000]);

    let second = json(store.path(), &["run", DEMO]);
    assert!(
        statuses(&second).iter().all(|(_, s, _)| s == "cached"),
        "{second}"
    );
    assert_eq!(
        statuses(&first),
        statuses(&second)
            .into_iter()
            .map(|(n, _, d)| (n, "ran".to_string(), d))
            .collect::<Vec<_>>()
    );

    let status = json(
        store.path(),
        &["status", DEMO, "--set", "sample.per_lang=500"],
    );
    let sample = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "sample")
        .unwrap();
    assert_eq!(sample["state"], "stale");
    assert_eq!(sample["reasons"][0], "param per_lang: 2000 -> 500");

    let third = json(store.path(), &["run", DEMO, "--set", "sample.per_lang=500"]);
    assert_eq!(status_of(&third, "opus"), "cached");
    assert_eq!(status_of(&third, "flores"), "cached");
    assert_eq!(status_of(&third, "sample"), "ran");
    assert_eq!(third["stages"][2]["reason"], "param per_lang: 2000 -> 500");
    assert_eq!(third["stages"][2]["rows"], 1000);
}

#[test]
fn artifacts_are_byte_identical_for_any_thread_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = json(a.path(), &["--threads", "1", "run", DEMO, "-j", "1"]);
    let four = json(b.path(), &["--threads", "4", "run", DEMO, "-j", "3"]);
    assert_eq!(statuses(&one), statuses(&four));
}

/// A pipeline over a TSV file, for tests that edit their input.
fn tsv_pipeline(dir: &Path, extra_stage: &str) -> PathBuf {
    write(
        dir,
        "p.toml",
        &format!(
            r#"
[stages.corpus]
kind = "ingest.parallel"
inputs = {{ file = "corpus.tsv" }}
src_lang = "be"
tgt_lang = "en"

[stages.sample]
kind = "sample"
inputs = {{ pairs = "corpus" }}
per_lang = 2
{extra_stage}"#
        ),
    )
}

#[test]
fn early_cutoff_keeps_downstream_cached_when_output_bytes_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write(
        dir.path(),
        "corpus.tsv",
        "src\ttgt\tnote\nДобры дзень\tGood afternoon\ta\nДзякуй\tThank you\tb\nЯк справы?\tHow are you?\tc\n",
    );
    let p = tsv_pipeline(dir.path(), "");
    let p = p.to_str().unwrap();
    json(&store, &["run", p]);
    // Same pairs, different unused column: the file's digest changes, the ingested table does not.
    write(
        dir.path(),
        "corpus.tsv",
        "src\ttgt\tnote\nДобры дзень\tGood afternoon\tx\nДзякуй\tThank you\ty\nЯк справы?\tHow are you?\tz\n",
    );
    let status = json(&store, &["status", p]);
    assert!(
        status[0]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("input file changed"),
        "{status}"
    );
    let rerun = json(&store, &["run", p]);
    assert_eq!(status_of(&rerun, "corpus"), "ran");
    assert_eq!(status_of(&rerun, "sample"), "cached");
    // A real change of the pairs does reach the sample.
    write(
        dir.path(),
        "corpus.tsv",
        "src\ttgt\tnote\nДобры вечар\tGood evening\tx\nДзякуй\tThank you\ty\nЯк справы?\tHow are you?\tz\n",
    );
    let rerun = json(&store, &["run", p]);
    assert_eq!(status_of(&rerun, "sample"), "ran");
}

#[test]
fn corrupt_object_is_detected_and_repaired() {
    let store = tempfile::tempdir().unwrap();
    let report = json(store.path(), &["run", DEMO]);
    let digest = statuses(&report)
        .into_iter()
        .find(|(n, _, _)| n == "opus")
        .unwrap()
        .2;
    let object = store
        .path()
        .join("objects")
        .join(&digest[..2])
        .join(&digest);
    let mut bytes = std::fs::read(&object).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&object, &bytes).unwrap();

    let verify = alinea(store.path()).arg("verify").output().unwrap();
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains(&format!("corrupt  {digest}")));
    let err = fails(store.path(), &["show", "opus"]);
    assert!(
        err.contains("corrupt object") && err.contains(&digest),
        "{err}"
    );
    // The read that found it moved it to quarantine/: the store now lacks it, and says so.
    let quarantined = store.path().join("quarantine").join(&digest);
    assert!(
        err.contains(&format!("moved to {}", quarantined.display())),
        "{err}"
    );
    assert_eq!(std::fs::read(&quarantined).unwrap(), bytes);

    let repaired = json(store.path(), &["verify", "--repair"]);
    assert!(
        repaired["corrupt"].as_array().unwrap().is_empty(),
        "{repaired}"
    );
    assert_eq!(repaired["missing"][0], digest.as_str());
    let rerun = json(store.path(), &["run", DEMO]);
    assert_eq!(status_of(&rerun, "opus"), "ran");
    assert_eq!(
        statuses(&rerun)[0].2,
        digest,
        "recomputed object has its original content"
    );
    assert!(
        json(store.path(), &["verify"])["corrupt"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn run_killed_mid_stage_leaves_store_consistent_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = write(
        dir.path(),
        "crash.toml",
        &format!(
            "[pipeline]\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\"]\n\
             [stages.crash]\nkind = \"debug.fail\"\ninputs = {{ table = \"flores\" }}\nmode = \"abort\"\n",
            repo().display()
        ),
    );
    let p = p.to_str().unwrap();
    let out = alinea(&store).args(["run", p]).output().unwrap();
    assert!(!out.status.success(), "the process must have aborted");
    let verify = json(&store, &["verify"]);
    assert_eq!(verify["corrupt"].as_array().unwrap().len(), 0, "{verify}");
    assert_eq!(verify["missing"].as_array().unwrap().len(), 0, "{verify}");

    // gc keeps the scratch space of the interrupted attempt (where a training keeps its checkpoints), and of each
    // pipeline stage only the newest attempt.
    let scratch = |store: &Path| -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join("work"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|d| d.join("half-written.parquet").exists())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs
    };
    assert_eq!(scratch(&store).len(), 1);
    json(&store, &["gc"]);
    let first = scratch(&store);
    assert_eq!(
        first.len(),
        1,
        "gc keeps the interrupted attempt's scratch space"
    );

    let rerun = json(&store, &["run", p, "--set", "crash.mode=pass"]);
    assert_eq!(
        status_of(&rerun, "flores"),
        "cached",
        "the completed stage survives the crash and gc"
    );
    assert_eq!(status_of(&rerun, "crash"), "ran");

    let out = alinea(&store)
        .args(["run", p, "--set", "flores.langs=[\"li\"]"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the process must have aborted again");
    assert_eq!(scratch(&store).len(), 2);
    json(&store, &["gc"]);
    let left = scratch(&store);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(
        left, first,
        "the newer attempt of the same stage supersedes the older"
    );
}

#[test]
fn failing_stage_reports_error_and_keep_going_runs_independent_branches() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = write(
        dir.path(),
        "fail.toml",
        &format!(
            "[pipeline]\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\"]\n\
             [stages.bad]\nkind = \"debug.fail\"\ninputs = {{ table = \"flores\" }}\nmode = \"error\"\n\
             [stages.after_bad]\nkind = \"debug.fail\"\ninputs = {{ table = \"bad\" }}\n\
             [stages.good]\nkind = \"sample\"\ninputs = {{ pairs = \"flores\" }}\nsplits = [\"dev\"]\nper_lang = 3\n",
            repo().display()
        ),
    );
    let p = p.to_str().unwrap();
    let out = alinea(&store)
        .args(["--json", "run", p, "--keep-going", "-j", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status_of(&report, "bad"), "failed");
    assert!(
        report["stages"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("failing on purpose")
    );
    assert_eq!(status_of(&report, "after_bad"), "skipped");
    assert_eq!(status_of(&report, "good"), "ran");
}

#[test]
fn concurrent_runs_on_one_store_do_not_corrupt_it() {
    let store = tempfile::tempdir().unwrap();
    let spawn = || {
        alinea(store.path())
            .arg("--json")
            .args(["run", DEMO])
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success() && b.status.success());
    let (ra, rb): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&a.stdout).unwrap(),
        serde_json::from_slice(&b.stdout).unwrap(),
    );
    let digests = |r: &serde_json::Value| {
        statuses(r)
            .into_iter()
            .map(|(n, _, d)| (n, d))
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&ra), digests(&rb));
    // The lock serialised them: one ran everything, the other found it cached.
    let ran = |r: &serde_json::Value| statuses(r).iter().filter(|(_, s, _)| s == "ran").count();
    assert_eq!(ran(&ra) + ran(&rb), 3);
    assert!(
        json(store.path(), &["verify"])["corrupt"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn no_wait_fails_clearly_when_the_store_is_locked() {
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path()).unwrap();
    let lock = std::fs::File::create(store.path().join("LOCK")).unwrap();
    lock.lock().unwrap();
    let err = fails(store.path(), &["run", DEMO, "--no-wait"]);
    assert!(err.contains("is locked by another alinea run"), "{err}");
}

#[test]
fn gc_drops_unreferenced_objects_only() {
    let store = tempfile::tempdir().unwrap();
    json(store.path(), &["run", DEMO, "--set", "sample.per_lang=100"]);
    json(store.path(), &["run", DEMO]);
    // Every run is kept by default: the per_lang=100 run's sample stays.
    let keep_all = json(store.path(), &["gc", "--dry-run"]);
    assert_eq!(
        keep_all["objects_removed"].as_array().unwrap().len(),
        0,
        "{keep_all}"
    );
    let dry = json(store.path(), &["gc", "--dry-run", "--keep-last", "1"]);
    assert_eq!(dry["objects_removed"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry["runs_dropped"].as_array().unwrap().len(), 1, "{dry}");
    // Code manifests: one per kind's code; one that no kept record names (an older build's) goes with gc.
    let code_files = || {
        let mut names: Vec<String> = std::fs::read_dir(store.path().join("code"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    };
    let live = code_files();
    assert!(!live.is_empty());
    std::fs::write(
        store
            .path()
            .join("code")
            .join(format!("{}.json", "0".repeat(32))),
        "{}",
    )
    .unwrap();
    let gc = json(store.path(), &["gc", "--keep-last", "1"]);
    assert_eq!(gc["objects_removed"], dry["objects_removed"]);
    assert_eq!(
        code_files(),
        live,
        "gc keeps the manifests of kept records and drops the others"
    );
    let rerun = json(store.path(), &["run", DEMO]);
    assert!(statuses(&rerun).iter().all(|(_, s, _)| s == "cached"));
    assert_eq!(
        json(store.path(), &["gc", "--dry-run"])["objects_removed"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn matrix_instances_are_cached_separately_and_fan_out_downstream() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = write(
        dir.path(),
        "m.toml",
        &format!(
            "[pipeline]\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\", \"li\"]\n\
             [stages.s]\nkind = \"sample\"\ninputs = {{ pairs = \"flores\" }}\nsplits = [\"dev\"]\nmatrix = {{ per_lang = [10, 20] }}\n\
             [stages.t]\nkind = \"sample\"\ninputs = {{ pairs = \"s\" }}\nsplits = [\"dev\"]\nper_lang = 5\n",
            repo().display()
        ),
    );
    let p = p.to_str().unwrap();
    let report = json(&store, &["run", p]);
    let names: Vec<String> = statuses(&report).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["flores", "s_10", "s_20", "t_10", "t_20"]);
    assert_eq!(report["stages"][1]["rows"], 20);
    assert_eq!(report["stages"][2]["rows"], 40);
    let rerun = json(&store, &["run", p, "--set", "t.per_lang=6"]);
    assert_eq!(
        statuses(&rerun)
            .iter()
            .map(|(_, s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["cached", "cached", "cached", "ran", "ran"]
    );
    let q = json(&store, &["query", "SELECT count(*) AS n FROM t_20"]);
    assert_eq!(q[0]["n"], 12);
}

#[test]
fn outputs_that_drift_from_the_declaration_fail_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = write(
        dir.path(),
        "drift.toml",
        &format!(
            "[pipeline]\nroot = \"{}\"\n[stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\"]\n\
             [stages.drift]\nkind = \"debug.fail\"\ninputs = {{ table = \"flores\" }}\nmode = \"drift\"\n",
            repo().display()
        ),
    );
    let out = alinea(&store)
        .args(["--json", "run", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status_of(&report, "flores"), "ran");
    assert_eq!(status_of(&report, "drift"), "failed");
    let reason = report["stages"][1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("outputs do not match the declaration of kind `debug.fail`")
            && reason.contains("produced table `undeclared`, which the kind does not declare"),
        "{reason}"
    );
}
