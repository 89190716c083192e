//! The run history (issue 13): `runs`, `exp show`, `diff`, `pin`, `gc --keep-last`, targets and `--force`, on the
//! ingestion part of the demo (real data from `datasets/`).

mod common;

use common::*;

const PIPELINE: &str = "tests/data/pipelines/ingest.toml";

fn run_id(report: &serde_json::Value) -> String {
    report["run"]
        .as_str()
        .expect("run --json names its run")
        .to_string()
}

fn sample_digest(report: &serde_json::Value) -> String {
    statuses(report)
        .into_iter()
        .find(|(n, _, _)| n == "sample")
        .unwrap()
        .2
}

#[test]
fn every_run_is_kept_listed_compared_and_gc_keeps_what_kept_or_pinned_runs_reach() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let a = json(store, &["run", PIPELINE, "--set", "sample.per_lang=100"]);
    let b = json(store, &["run", PIPELINE]);
    let c = json(store, &["run", PIPELINE, "--set", "sample.per_lang=50"]);
    let (ida, idb, idc) = (run_id(&a), run_id(&b), run_id(&c));

    let runs = json(store, &["runs"]);
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [ida.as_str(), idb.as_str(), idc.as_str()],
        "oldest first"
    );
    assert_eq!(
        runs[0]["overrides"],
        serde_json::json!(["sample.per_lang=100"])
    );
    assert_eq!(runs[1]["overrides"], serde_json::json!([]));
    assert_eq!(runs[0]["pipeline"], "ingest");

    // exp show: only the parameter that differs, one value per run.
    let exp = json(store, &["exp", "show"]);
    let shown: Vec<serde_json::Value> = exp
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["params"].clone())
        .collect();
    assert_eq!(
        shown,
        [
            serde_json::json!({"sample.per_lang": "100"}),
            serde_json::json!({"sample.per_lang": "2000"}),
            serde_json::json!({"sample.per_lang": "50"}),
        ]
    );

    // diff by unique prefixes: the parameter and the one stage key that moved.
    let diff = json(store, &["diff", &ida, &idb]);
    assert_eq!(
        diff["params"],
        serde_json::json!([{"name": "sample.per_lang", "a": "100", "b": "2000"}])
    );
    let moved: Vec<&str> = diff["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(moved, ["sample"]);
    let unknown = fails(store, &["diff", "19990101", &idb]);
    assert!(unknown.contains("no run `19990101`"), "{unknown}");

    // gc: every run kept by default; --keep-last 1 keeps run c and the pinned run a, drops b's sample.
    assert_eq!(
        json(store, &["gc", "--dry-run"])["objects_removed"],
        serde_json::json!([])
    );
    json(store, &["pin", &ida]);
    let gc = json(store, &["gc", "--keep-last", "1"]);
    assert_eq!(gc["runs_dropped"], serde_json::json!([idb]));
    assert_eq!(
        gc["objects_removed"],
        serde_json::json!([sample_digest(&b)]),
        "only the dropped run's own output goes"
    );
    for kept in [&a, &c] {
        let d = sample_digest(kept);
        assert!(
            store.join("objects").join(&d[..2]).join(&d).exists(),
            "a kept or pinned run's objects stay"
        );
    }
    let left: Vec<String> = json(store, &["runs"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [ida.clone(), idc.clone()]);
    // The pinned run still runs from cache.
    let again = json(store, &["run", PIPELINE, "--set", "sample.per_lang=100"]);
    assert!(statuses(&again).iter().all(|(_, s, _)| s == "cached"));
}

#[test]
fn a_target_runs_with_its_ancestors_only_and_force_recomputes_and_compares_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let only = json(store, &["run", PIPELINE, "sample"]);
    let names: Vec<String> = statuses(&only).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names,
        ["opus", "sample"],
        "flores is not an ancestor of sample"
    );
    let runs = json(store, &["runs"]);
    assert_eq!(runs[0]["targets"], serde_json::json!(["sample"]));

    let forced = json(store, &["run", PIPELINE, "sample", "--force", "sample"]);
    let by_name: Vec<(String, String, String)> = statuses(&forced);
    assert_eq!(by_name[0].1, "cached", "opus is not forced");
    assert_eq!(by_name[1].1, "ran");
    let reason = forced["stages"][1]["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "forced: outputs byte-identical to the cached result"
    );

    let bad = fails(store, &["run", PIPELINE, "nosuch"]);
    assert!(
        bad.contains("no stage named `nosuch`") && bad.contains("opus, flores, sample"),
        "{bad}"
    );
    let bad_force = fails(store, &["run", PIPELINE, "sample", "--force", "flores"]);
    assert!(bad_force.contains("--force flores"), "{bad_force}");
}

#[test]
fn path_names_the_object_and_checkout_writes_stable_readable_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = json(&store, &["run", PIPELINE, "--set", "sample.per_lang=100"]);
    let second = json(&store, &["run", PIPELINE]);
    let path = json(&store, &["path", "sample.pairs"]);
    let object = std::path::PathBuf::from(path["path"].as_str().unwrap());
    let bytes = std::fs::read(&object).unwrap();
    assert_eq!(
        blake3::hash(&bytes).to_hex().to_string(),
        sample_digest(&second),
        "the path holds the latest run's table"
    );
    // --run reads an older run's view.
    let older = json(&store, &["path", "sample", "--run", &run_id(&first)]);
    assert!(
        older["path"]
            .as_str()
            .unwrap()
            .ends_with(&sample_digest(&first))
    );

    let out = dir.path().join("out");
    json(
        &store,
        &[
            "checkout",
            "--run",
            &run_id(&first),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let file = out.join("ingest").join("sample").join("pairs.parquet");
    let written = std::fs::read(&file).unwrap();
    assert_eq!(
        blake3::hash(&written).to_hex().to_string(),
        sample_digest(&first)
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let exported = dir.path().join("sample.parquet");
    json(
        &store,
        &["export", "sample", "-o", exported.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::metadata(&exported).unwrap().permissions().mode() & 0o777,
        0o644,
        "exported files get the usual mode"
    );
}

#[test]
fn query_sees_every_table_of_one_run_and_only_decodes_what_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let first = json(store, &["run", PIPELINE, "--set", "sample.per_lang=100"]);
    json(store, &["run", PIPELINE]);
    let rows_of = |report: &serde_json::Value| {
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "sample")
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    let count = |args: &[&str]| json(store, args)[0]["n"].as_u64().expect("a count");
    let id = run_id(&first);
    assert_eq!(
        count(&["query", "SELECT count(*) AS n FROM sample", "--run", &id]),
        rows_of(&first),
        "--run gives that run's configuration, not the latest"
    );
    assert_eq!(
        count(&[
            "query",
            r#"SELECT count(*) AS n FROM "sample.pairs""#,
            "--run",
            &id
        ]),
        rows_of(&first),
        "every table is reachable as \"STAGE.OUTPUT\""
    );
    // A missing object breaks only the queries that read it.
    let flores = json(store, &["path", "flores"]);
    std::fs::remove_file(flores["path"].as_str().unwrap()).unwrap();
    assert!(count(&["query", "SELECT count(*) AS n FROM opus"]) > 0);
}

#[test]
fn ctrl_c_says_what_was_kept_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_alinea"))
        .arg("--store")
        .arg(&store)
        .args(["run", PIPELINE])
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The lock appears when the run starts; ingesting OPUS-100 takes longer than this wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !store.join("LOCK").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: sends SIGINT to the child we spawned, as Ctrl-C in a terminal would.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: every stage that finished is kept")
            && stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
}
