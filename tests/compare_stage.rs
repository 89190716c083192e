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
        "[stages.compare]\nkind = \"metrics.compare\"\ninputs = { generations = [\"gen_baseline\", \"gen_worse\", \"gen_near\"] }\ntest_set = \"flores200\"\nbaseline = \"gen_baseline\"\nhyp_column = \"src\"\nref_column = \"tgt\"\n\n[stages.report]\nkind = \"report\"\ninputs = { scores = [\"score_baseline\", \"score_worse\", \"score_near\"], comparisons = \"compare\" }\nmetrics = [\"BLEU\", \"chrF\", \"chrF++\"]\nsignificance_runs = { score_baseline = \"gen_baseline\", score_worse = \"gen_worse\", score_near = \"gen_near\" }\n",
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
    // The paper-style tables mark the cells of significant differences, with a legend.
    for (run, system) in [("score_worse", 1), ("score_near", 2), ("score_baseline", 0)] {
        for (metric, name) in [("BLEU", "BLEU"), ("chrF2++", "chrF++")] {
            let want = &case["bs"]["results"][metric][system];
            let significant = want["p_value"]
                .as_u64()
                .is_some_and(|p| f64::from_bits(p) <= 0.05);
            let value = format!("{:.2}", bit(&want["score"]));
            let row = md
                .split(&format!("### flores200 · {name} · en→xx"))
                .nth(1)
                .and_then(|t| t.lines().find(|l| l.starts_with(&format!("| {run} |"))))
                .unwrap_or_else(|| panic!("no {run} row in the {name} table:\n{md}"));
            let cell = row.split(" | ").nth(1).unwrap().replace("**", "");
            assert_eq!(
                cell,
                format!("{value}{}", if significant { "†" } else { "" }),
                "{run} {name}: {row}"
            );
        }
    }
    assert!(
        md.contains("† significantly different from the baseline `gen_baseline` (p <= 0.05; sacrebleu's paired bootstrap resampling, 1000 resamples, seed 12345)"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"significance\""));
}

/// The three `case` runs (`baseline`, `worse`, `near`) as `ingest.parallel` tables `gen_<run>`.
fn ingest_runs(dir: &Path, case: &str) -> String {
    let lines = |name: &str| {
        let l =
            alinea_metrics::read_lines(significance_data(&format!("{case}.{name}.gz"))).unwrap();
        let text: String = l.iter().map(|l| format!("{l}\n")).collect();
        write(dir, &format!("{case}.{name}.txt"), &text)
            .display()
            .to_string()
    };
    let reference = lines("ref");
    let mut stages = String::new();
    for run in ["baseline", "worse", "near"] {
        let hyp = lines(run);
        stages.push_str(&format!(
            "[stages.gen_{run}]\nkind = \"ingest.parallel\"\ninputs = {{ src = \"{hyp}\", tgt = \"{reference}\" }}\nsrc_lang = \"en\"\ntgt_lang = \"zh\"\nkeep_empty = true\n\n"
        ));
    }
    stages
}

#[test]
fn compare_stage_spbleu_equals_sacrebleu_with_the_same_sentencepiece_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let spm = significance_data("../spm/unigram.model");
    let mut stages = ingest_runs(dir.path(), "zho");
    stages.push_str(&format!(
        "[stages.compare]\nkind = \"metrics.compare\"\ninputs = {{ generations = [\"gen_baseline\", \"gen_worse\", \"gen_near\"], spm_model = \"{}\" }}\ntest_set = \"flores200\"\ntokenize = \"flores200\"\nhyp_column = \"src\"\nref_column = \"tgt\"\n",
        spm.display()
    ));
    let p = write(dir.path(), "p.toml", &stages);
    json(&store, &["run", p.to_str().unwrap()]);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(significance_data("spm_expected.json")).unwrap(),
    )
    .unwrap();
    let rows = json(&store, &["show", "compare", "--rows", "100"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6, "2 systems x 3 metrics");
    let bit = |v: &Value| f64::from_bits(v.as_u64().unwrap());
    for r in rows {
        let system = match r["system"].as_str().unwrap() {
            "gen_worse" => 1,
            "gen_near" => 2,
            other => panic!("unexpected system {other}"),
        };
        let metric = r["metric"].as_str().unwrap();
        let want = &expected["results"][metric][system];
        for field in ["score", "p_value", "mean", "ci"] {
            let (g, w) = (r[field].as_f64().unwrap(), bit(&want[field]));
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{metric} system {system} {field}: {g} vs sacrebleu {w}"
            );
        }
        assert_eq!(r["signature"], expected["signatures"][metric], "{metric}");
    }
    // Without the model the stage says which input it needs.
    let p = write(
        dir.path(),
        "nomodel.toml",
        &stages.replace(&format!(", spm_model = \"{}\"", spm.display()), ""),
    );
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(err.contains("spm_model"), "{err}");
}

#[test]
fn compare_stage_matches_segments_by_pair_id_and_names_the_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut stages = ingest_runs(dir.path(), "zho");
    // 140 of the 150 segments of the worse run, in their order: ten pair_ids missing.
    stages.push_str(
        "[stages.worse_part]\nkind = \"sample\"\ninputs = { pairs = \"gen_worse\" }\nper_lang = 140\nsplits = [\"train\"]\ndedup = false\ndrop_identical = false\nmin_words = 0\n\n[stages.compare]\nkind = \"metrics.compare\"\ninputs = { generations = [\"gen_baseline\", \"worse_part\"] }\ntest_set = \"flores200\"\ntokenize = \"zh\"\nhyp_column = \"src\"\nref_column = \"tgt\"\n",
    );
    let p = write(dir.path(), "p.toml", &stages);
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(
        err.contains("run `worse_part`, direction en-zh: lacks pair_id ")
            && err.contains("of the baseline `gen_baseline`")
            && err.contains("and 5 more"),
        "{err}"
    );
}

#[test]
fn diff_shows_the_paired_test_of_two_runs_scores_as_sacrebleu_computes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let reference = plain(dir.path(), "ref");
    let pipeline = |run: &str| {
        let hyp = plain(dir.path(), run);
        let text = format!(
            "[stages.gen]\nkind = \"ingest.parallel\"\ninputs = {{ src = \"{hyp}\", tgt = \"{reference}\" }}\nsrc_lang = \"en\"\ntgt_lang = \"de\"\nkeep_empty = true\n\n[stages.score]\nkind = \"metrics.score\"\ninputs = {{ generations = \"gen\" }}\ntest_set = \"flores200\"\nhyp_column = \"src\"\nref_column = \"tgt\"\nsrc_column = \"src\"\n"
        );
        write(dir.path(), &format!("{run}.toml"), &text)
    };
    let (pa, pb) = (pipeline("baseline"), pipeline("worse"));
    let id = |report: Value| report["run"].as_str().unwrap().to_string();
    let a = id(json(&store, &["run", pa.to_str().unwrap()]));
    let b = id(json(&store, &["run", pb.to_str().unwrap()]));
    let diff = json(&store, &["diff", &a, &b]);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(significance_data("expected.json")).unwrap())
            .unwrap();
    let case = &expected["live"][0];
    let bit = |v: &Value| f64::from_bits(v.as_u64().unwrap());
    let lines = diff["significance"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "BLEU, chrF2, chrF2++ of en-de: {diff}");
    for l in lines {
        let metric = l["metric"].as_str().unwrap();
        assert_eq!(
            (l["stage"].as_str(), l["direction"].as_str()),
            (Some("score"), Some("en-de"))
        );
        let results = &case["bs"]["results"][metric];
        // Run b (the `worse` system) against run a (the baseline), as sacrebleu tested them.
        for (field, want) in [
            ("a", bit(&results[0]["score"])),
            ("b", bit(&results[1]["score"])),
            ("p_value", bit(&results[1]["p_value"])),
        ] {
            let got = l[field].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{metric} {field}: {got} vs {want}"
            );
        }
        assert_eq!(
            l["significant"].as_bool(),
            Some(bit(&results[1]["p_value"]) <= 0.05)
        );
    }
    // The text form prints the same test with sacrebleu's marker.
    let out = alinea(&store).args(["diff", &a, &b]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("significance (sacrebleu's paired bootstrap"),
        "{text}"
    );
    let bleu_p = bit(&case["bs"]["results"]["BLEU"][1]["p_value"]);
    assert!(
        text.contains(&format!(
            "{bleu_p:.4}{}",
            if bleu_p <= 0.05 { "*" } else { "" }
        )),
        "{text}"
    );
}
