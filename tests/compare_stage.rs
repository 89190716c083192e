//! `metrics.compare` in a pipeline: three runs of a direction (made from real Flores-200 lines, the
//! `deu` case of crates/metrics/tests/data/make_significance.py) compared with sacrebleu's paired
//! bootstrap test, equal to sacrebleu 2.6.0's own results for those files, and the report marking
//! the significant difference.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn significance_data(name: &str) -> std::path::PathBuf {
    repo()
        .join("crates/metrics/tests/data/significance")
        .join(name)
}

/// The gzipped case file as a plain text file in `dir` (`ingest.parallel` reads plain text).
fn plain(dir: &Path, name: &str) -> String {
    let lines = alinea_metrics::read_lines(significance_data(&format!("deu.{name}.gz"))).unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write(dir, &format!("{name}.txt"), &text)
        .display()
        .to_string()
}

#[test]
fn compare_stage_equals_sacrebleu_and_the_report_marks_significance() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let reference = plain(dir.path(), "ref");
    let mut stages = String::new();
    for run in ["baseline", "worse", "near"] {
        let hyp = plain(dir.path(), run);
        // A generations-like table: the hypotheses as `src`, the references as `tgt`.
        stages.push_str(&format!(
            "[stages.gen_{run}]\nkind = \"ingest.parallel\"\ninputs = {{ src = \"{hyp}\", tgt = \"{reference}\" }}\nsrc_lang = \"en\"\ntgt_lang = \"de\"\nkeep_empty = true\n\n[stages.score_{run}]\nkind = \"metrics.score\"\ninputs = {{ generations = \"gen_{run}\" }}\ntest_set = \"flores200\"\nhyp_column = \"src\"\nref_column = \"tgt\"\nsrc_column = \"src\"\n\n"
        ));
    }
    stages.push_str(
        "[stages.compare]\nkind = \"metrics.compare\"\ninputs = { generations = [\"gen_baseline\", \"gen_worse\", \"gen_near\"] }\ntest_set = \"flores200\"\nbaseline = \"gen_baseline\"\nhyp_column = \"src\"\nref_column = \"tgt\"\n\n[stages.report]\nkind = \"report\"\ninputs = { scores = [\"score_baseline\", \"score_worse\", \"score_near\"], comparisons = \"compare\" }\nmetrics = [\"BLEU\", \"chrF\", \"chrF++\"]\n",
    );
    let p = write(dir.path(), "p.toml", &stages);
    json(&store, &["run", p.to_str().unwrap()]);

    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(significance_data("expected.json")).unwrap())
            .unwrap();
    let case = &expected["live"][0];
    assert_eq!(case["name"], "deu");
    let rows = json(&store, &["show", "compare", "--rows", "100"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6, "2 systems x 3 metrics");
    let bit = |v: &Value| f64::from_bits(v.as_u64().unwrap());
    let close = |got: &Value, want: f64, what: &str| {
        let g = got.as_f64().unwrap();
        assert!(
            (g - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{what}: {g} vs {want}"
        );
    };
    for r in rows {
        assert_eq!(
            (r["direction"].as_str(), r["baseline"].as_str()),
            (Some("en-de"), Some("gen_baseline"))
        );
        let system = match r["system"].as_str().unwrap() {
            "gen_worse" => 1,
            "gen_near" => 2,
            other => panic!("unexpected system {other}"),
        };
        let metric = r["metric"].as_str().unwrap();
        let want = &case["bs"]["results"][metric][system];
        let what = format!("{metric} system {system}");
        close(&r["score"], bit(&want["score"]), &what);
        close(&r["p_value"], bit(&want["p_value"]), &what);
        close(&r["mean"], bit(&want["mean"]), &what);
        close(&r["ci"], bit(&want["ci"]), &what);
        assert_eq!(
            r["significant"].as_bool().unwrap(),
            bit(&want["p_value"]) <= 0.05,
            "{what}"
        );
        assert_eq!(r["signature"], case["bs"]["signatures"][metric], "{what}");
    }
    let out = dir.path().join("report");
    json(&store, &["report", "report", "-o", out.to_str().unwrap()]);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Significance"), "{md}");
    let worse_bleu = &case["bs"]["results"]["BLEU"][1];
    let line = format!(
        "| en-de | {:.2} | gen_worse | {:.2} ({:+.2}, p = {:.4})*",
        bit(&case["bs"]["results"]["BLEU"][0]["score"]),
        bit(&worse_bleu["score"]),
        bit(&worse_bleu["score"]) - bit(&case["bs"]["results"]["BLEU"][0]["score"]),
        bit(&worse_bleu["p_value"])
    );
    assert!(md.contains(&line), "{line} not in\n{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"significance\""));
}
