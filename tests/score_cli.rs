//! `alinea score` beyond single corpus scores, through the binary: the paired bootstrap and AR tests
//! and confidence intervals against sacrebleu 2.6.0's values (tests/data/make_significance.py),
//! gzipped inputs, `--hyp -` for standard input, sentence-level scores against sacrebleu's, and the
//! errors for bad values.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

fn data() -> PathBuf {
    repo().join("crates/metrics/tests/data")
}

fn sig_data(name: &str) -> String {
    data().join("significance").join(name).display().to_string()
}

fn significance_expected() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(data().join("significance/expected.json")).unwrap(),
    )
    .unwrap()
}

/// An expected float stored as its IEEE bits.
fn f(bits: &Value) -> Option<f64> {
    bits.as_u64().map(f64::from_bits)
}

/// JSON numbers are printed shortest-round-trip; parsing them back may lose the last bit, so the
/// binary is checked to 1e-12 here (the crate's own test compares bits).
fn near(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: {got} should be null"),
        Some(w) => {
            let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{what}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn paired_bootstrap_and_ar_equal_sacrebleu_on_gzipped_flores_files() {
    let store = tempfile::tempdir().unwrap();
    let expected = significance_expected();
    let case = &expected["live"][0];
    assert_eq!(case["name"], "deu");
    let (r, b, w, n) = (
        sig_data("deu.ref.gz"),
        sig_data("deu.baseline.gz"),
        sig_data("deu.worse.gz"),
        sig_data("deu.near.gz"),
    );
    for (flag, key) in [("--paired-bs", "bs"), ("--paired-ar", "ar")] {
        let got = json(
            store.path(),
            &[
                "score", "--ref", &r, "--hyp", &b, "--hyp", &w, "--hyp", &n, flag,
            ],
        );
        let systems = got["systems"].as_array().unwrap();
        assert_eq!(systems.len(), 3);
        assert_eq!(systems[0]["system"], format!("Baseline: {b}"));
        for metric in ["BLEU", "chrF2", "chrF2++"] {
            assert_eq!(got["signatures"][metric], case[key]["signatures"][metric]);
            for (s, want) in case[key]["results"][metric]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                for field in ["score", "p_value", "mean", "ci"] {
                    let what = format!("{key} {metric} system {s} {field}");
                    near(&systems[s][metric][field], f(&want[field]), &what);
                }
            }
        }
    }
    // The text table: sacrebleu's cells (width 1), its marker and the signatures.
    let out = alinea(store.path())
        .args([
            "score",
            "--ref",
            &r,
            "--hyp",
            &b,
            "--hyp",
            &w,
            "--paired-bs",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let want = &case["bs"]["results"]["BLEU"][1];
    let cell = format!(
        "{:.1} ({:.1} ± {:.1}) (p = {:.4})",
        f(&want["score"]).unwrap(),
        f(&want["mean"]).unwrap(),
        f(&want["ci"]).unwrap(),
        f(&want["p_value"]).unwrap()
    );
    assert!(text.contains(&cell), "{cell} not in\n{text}");
    assert!(
        text.contains("BLEU (μ ± 95% CI)") && text.contains("bs:1000|seed:12345"),
        "{text}"
    );
}

#[test]
fn confidence_intervals_equal_sacrebleu() {
    let store = tempfile::tempdir().unwrap();
    let expected = significance_expected();
    let case = &expected["live"][0];
    let got = json(
        store.path(),
        &[
            "score",
            "--ref",
            &sig_data("deu.ref.gz"),
            "--hyp",
            &sig_data("deu.worse.gz"),
            "--confidence",
        ],
    );
    for (key, fixture) in [("bleu", "BLEU"), ("chrf", "chrF"), ("chrf++", "chrF++")] {
        let want = &case["confidence"][fixture][1];
        near(&got[key]["score"], f(&want["score"]), key);
        near(&got[key]["mean"], f(&want["mean"]), key);
        near(&got[key]["ci"], f(&want["ci"]), key);
        assert_eq!(got[key]["signature"], want["signature"], "{key}");
    }
}

#[test]
fn stdin_and_sentence_level_scores_equal_sacrebleu() {
    let store = tempfile::tempdir().unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(data().join("expected.json")).unwrap())
            .unwrap();
    let case = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "fra_Latn_flores")
        .unwrap();
    let run = &case["runs"][0];
    assert_eq!(run["config"]["tokenize"], "13a");
    let cases = data().join("cases");
    let hyp = cases.join("fra_Latn_flores.hyp");
    let r0 = cases.join("fra_Latn_flores.ref0").display().to_string();
    let out = alinea(store.path())
        .args([
            "--json",
            "score",
            "--hyp",
            "-",
            "--ref",
            &r0,
            "--sentence-level",
        ])
        .write_stdin(std::fs::read(&hyp).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let segments = run["segments"].as_array().unwrap();
    assert_eq!(lines.len(), segments.len());
    for (i, (got, want)) in lines.iter().zip(segments).enumerate() {
        for m in ["bleu", "chrf", "chrf++"] {
            near(&got[m], want[m].as_f64(), &format!("segment {i} {m}"));
        }
    }
    // Corpus scores from standard input equal those from the file.
    let from_file = json(
        store.path(),
        &["score", "--hyp", hyp.to_str().unwrap(), "--ref", &r0],
    );
    let out = alinea(store.path())
        .args(["--json", "score", "--hyp", "-", "--ref", &r0])
        .write_stdin(std::fs::read(&hyp).unwrap())
        .output()
        .unwrap();
    let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_stdin, from_file);
}

#[test]
fn bad_values_are_refused_and_os_errors_printed_once() {
    let store = tempfile::tempdir().unwrap();
    let cases = data().join("cases");
    let hyp = cases.join("fra_Latn_flores.hyp").display().to_string();
    let r0 = cases.join("fra_Latn_flores.ref0").display().to_string();
    for v in ["nan", "inf", "-1"] {
        let err = fails(
            store.path(),
            &[
                "score",
                "--hyp",
                &hyp,
                "--ref",
                &r0,
                "--smooth-method",
                "floor",
                &format!("--smooth-value={v}"),
            ],
        );
        assert!(
            err.contains("smooth_value") && err.contains(">= 0"),
            "{v}: {err}"
        );
    }
    let err = fails(
        store.path(),
        &["score", "--hyp", "/nonexistent/hyp.txt", "--ref", &r0],
    );
    assert!(err.contains("/nonexistent/hyp.txt"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let err = fails(
        store.path(),
        &["score", "--hyp", &hyp, "--ref", &r0, "--paired-bs"],
    );
    assert!(err.contains("baseline"), "{err}");
    let err = fails(
        store.path(),
        &[
            "score",
            "--hyp",
            &hyp,
            "--hyp",
            &hyp,
            "--ref",
            &r0,
            "--paired-bs",
            "--seed",
            "0",
        ],
    );
    assert!(err.contains("seed"), "{err}");
    let err = fails(
        store.path(),
        &["score", "--hyp", &hyp, "--hyp", &hyp, "--ref", &r0],
    );
    assert!(err.contains("--paired-bs"), "{err}");
}
