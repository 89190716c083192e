//! The store's Parquet, read by the tools people open it with (issue 13): pandas with the current and the
//! previous pyarrow, polars, duckdb and HF datasets, one table of every kind the demo pipeline makes.
//!
//! Needs Python readers, so it is `#[ignore]`d in a plain `cargo test`; `.ci/run` makes them with
//! `.ci/readers-venv.sh DIR` and runs `ALINEA_READERS_VENV=DIR cargo test --test readers -- --ignored`.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The venv made by `.ci/readers-venv.sh`, or a panic saying how to make one.
fn readers_venv() -> PathBuf {
    let dir = std::env::var_os("ALINEA_READERS_VENV").map(PathBuf::from).expect(
        "ALINEA_READERS_VENV is not set: make the readers with `.ci/readers-venv.sh DIR` and set it to DIR",
    );
    assert!(
        dir.join("bin/python").exists(),
        "{}/bin/python missing: run `.ci/readers-venv.sh {0}`",
        dir.display()
    );
    dir
}

/// Writes the run's outputs with `alinea checkout -o dir` and returns the manifest `{path: {"rows": N}}` of its
/// tables (`dir/<pipeline>/<stage>/<output>.parquet`) that the Python side checks against.
fn checkout_tables(store: &Path, report: &serde_json::Value, dir: &Path) -> serde_json::Value {
    json(
        store,
        &[
            "checkout",
            "--run",
            report["run"].as_str().unwrap(),
            "-o",
            dir.to_str().unwrap(),
        ],
    );
    let mut manifest = serde_json::Map::new();
    for stage in report["stages"].as_array().unwrap() {
        for out in stage["outputs"].as_array().unwrap() {
            if out["kind"] != "table" {
                continue;
            }
            let file = dir
                .join("demo")
                .join(stage["name"].as_str().unwrap())
                .join(format!("{}.parquet", out["name"].as_str().unwrap()));
            assert!(file.exists(), "checkout wrote no {}", file.display());
            manifest.insert(
                file.display().to_string(),
                serde_json::json!({ "rows": out["rows"] }),
            );
        }
    }
    serde_json::Value::Object(manifest)
}

fn python(venv: &Path, pythonpath: Option<&Path>, args: &[&Path], extra: &[&str]) {
    let mut cmd = std::process::Command::new(venv.join("bin/python"));
    cmd.arg(repo().join("tests/readers.py"))
        .args(args)
        .args(extra);
    if let Some(p) = pythonpath {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output().expect("spawn python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "readers failed:\n{text}");
    println!("{text}");
}

#[test]
#[ignore = "needs the Python readers of .ci/readers-venv.sh (ALINEA_READERS_VENV); .ci/run runs it"]
fn every_table_kind_reads_in_pandas_old_and_new_pyarrow_polars_duckdb_and_hf_datasets() {
    let venv = readers_venv();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // The demo, made small: every stage kind it has, tables with list, struct and float columns included.
    let report = json(
        &store,
        &["run", "pipelines/demo.toml"]
            .into_iter()
            .chain(SMALL_DEMO)
            .collect::<Vec<_>>(),
    );
    let tables = tmp.path().join("out");
    let manifest = checkout_tables(&store, &report, &tables);
    assert!(
        manifest.as_object().unwrap().len() >= 15,
        "expected a table from every stage: {manifest}"
    );
    let manifest_file = tmp.path().join("manifest.json");
    std::fs::write(&manifest_file, manifest.to_string()).unwrap();
    python(&venv, None, &[&manifest_file], &[]);
    let previous = venv.join("pyarrow-previous");
    python(
        &venv,
        Some(&previous),
        &[&manifest_file],
        &["--pandas-only"],
    );
}
