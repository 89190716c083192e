//! Snapshot test (golden files), not a check against an outside reference: it proves only that the report is what
//! it was when last blessed. The demo's scoring and report stages (pipelines/demo.toml) run on generations the
//! demo made (committed under tests/data/demo/ by `make_demo_generations.sh`), and the report files compared byte
//! for byte with the committed ones. A deliberate change to scoring or to the report layout shows up here as a diff
//! to review; regenerate with `ALINEA_BLESS=1 cargo test --test report_golden`.

mod common;

use std::path::Path;

use common::*;

fn pipeline(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("golden.toml");
    std::fs::write(
        &p,
        format!(
            r#"[pipeline]
root = "{root}"

[stages.lid]
kind = "lid.train"
inputs = {{ root = "datasets/flores200" }}
langs = ["en", "be", "li"]

[stages.score_mt]
kind = "metrics.score"
inputs = {{ generations_file = "tests/data/demo/generations_mt.jsonl", lid = "lid" }}
test_set = "flores200"

[stages.score_mt_align]
kind = "metrics.score"
inputs = {{ generations_file = "tests/data/demo/generations_mt_align.jsonl", lid = "lid" }}
test_set = "flores200"

[stages.report]
kind = "report"
inputs = {{ scores = ["score_mt", "score_mt_align"] }}
title = "alinea demo: tiny BLOOM, MTInstruct vs MT+AlignInstruct (be, li)"
paper_reference = "bloomz+24"
paper_match = {{ score_mt = "MTInstruct", score_mt_align = "MT+Align" }}
"#,
            root = repo().display()
        ),
    )
    .unwrap();
    p
}

/// The id of the one run recorded in `store`.
fn first_run_id(store: &Path) -> String {
    let runs = json(store, &["runs"]);
    runs.as_array().and_then(|r| r.first()).map_or_else(
        || panic!("no run recorded: {runs}"),
        |r| r["id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn snapshot_demo_report_equals_the_blessed_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = pipeline(dir.path());
    json(&store, &["run", p.to_str().unwrap()]);
    let out = dir.path().join("report");
    json(&store, &["report", "report", "-o", out.to_str().unwrap()]);
    let golden = repo().join("tests/data/demo");
    let bless = std::env::var_os("ALINEA_BLESS").is_some();
    for name in ["report.md", "report.csv", "report.html"] {
        let got = std::fs::read_to_string(out.join(name)).unwrap();
        // The provenance appendix names the run and its wall time, which differ on every run: the snapshot is the
        // stage's documents before it (tests/report_appendix.rs checks the appendix).
        let got = match got
            .find("\n## Appendix: provenance")
            .or_else(|| got.find("<section class=\"appendix\">"))
        {
            Some(at) => {
                assert!(
                    got.contains(first_run_id(&store).as_str()),
                    "{name} names its run"
                );
                let mut cut = got[..at].to_string();
                if name.ends_with(".html") {
                    cut.push_str("</body></html>\n");
                }
                cut
            }
            None => got,
        };
        let want_path = golden.join(name);
        if bless {
            std::fs::write(&want_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&want_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with ALINEA_BLESS=1 to create it)",
                want_path.display()
            )
        });
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            panic!(
                "{name} differs from {} at line {}:\n  got:  {:?}\n  want: {:?}\n(ALINEA_BLESS=1 rewrites the golden files after a deliberate change)",
                want_path.display(),
                line + 1,
                got.lines().nth(line),
                want.lines().nth(line)
            );
        }
    }

    // What the golden file must hold whatever its numbers: every direction of both runs, the paper's runs beside them
    // (Table 12, Flores-200 en→be BLEU 0.7), Table 1's averages and the distance sections.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "| score_mt | flores200 | en-be |",
        "| score_mt | flores200 | li-en |",
        "| score_mt_align | flores200 | be-en |",
        "| score_mt_align | flores200 | en-li |",
        "### Paper reference · flores200 · BLEU: bloomz+24, bloomz-7b1 (Table 1)",
        "| paper: MT+Align | 3.26 | 11.60 |",
        "### Distance to the paper · score_mt vs the paper's MTInstruct (BLOOMZ-7b1) · flores200",
        "### Distance to the paper · score_mt_align vs the paper's MT+Align (BLOOMZ-7b1) · flores200",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}");
    }
    assert!(
        md.replace("**", "")
            .contains("| paper: MTInstruct | 0.70 | 3.30 |"),
        "{md}"
    );
}
