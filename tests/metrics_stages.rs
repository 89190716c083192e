//! Metrics through the binary: `alinea score` against sacrebleu 2.6.0's committed values, and a
//! `lid.train` → `metrics.score` → `report` pipeline on real FLORES-200 devtest lines.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn metrics_data() -> PathBuf {
    repo().join("crates/metrics/tests/data")
}

fn close(a: &Value, b: &Value, what: &str) {
    let (a, b) = (
        a.as_f64().unwrap_or_else(|| panic!("{what}: {a}")),
        b.as_f64().unwrap_or_else(|| panic!("{what}: {b}")),
    );
    assert!(
        (a - b).abs() <= 1e-9,
        "{what}: alinea {a:.15} vs sacrebleu {b:.15}"
    );
}

#[test]
fn score_json_equals_sacrebleu_on_every_committed_case() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(metrics_data().join("expected.json")).unwrap(),
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let cases = metrics_data().join("cases");
    let mut checked = 0;
    for case in expected["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        for run in case["runs"].as_array().unwrap() {
            let cfg = &run["config"];
            let hyp = cases.join(case["hyp"].as_str().unwrap());
            let mut args: Vec<String> =
                vec!["score".into(), "--hyp".into(), hyp.display().to_string()];
            for r in case["refs"].as_array().unwrap() {
                args.extend([
                    "--ref".into(),
                    cases.join(r.as_str().unwrap()).display().to_string(),
                ]);
            }
            args.extend([
                "--tokenize".into(),
                cfg["tokenize"].as_str().unwrap().into(),
            ]);
            args.extend([
                "--smooth-method".into(),
                cfg["smooth"].as_str().unwrap().into(),
            ]);
            if let Some(v) = cfg["smooth_value"].as_f64() {
                args.extend(["--smooth-value".into(), v.to_string()]);
            }
            if cfg["lowercase"].as_bool().unwrap() {
                args.push("--lowercase".into());
            }
            if cfg["chrf_lowercase"].as_bool().unwrap() {
                args.push("--chrf-lowercase".into());
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let got = json(store.path(), &argv);
            let what = format!("{name} {cfg}");
            // Exactly the issue's object: bleu, chrf, chrf++ (no COMET key without a COMET command).
            let keys: Vec<&str> = got
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["bleu", "chrf", "chrf++"], "{what}");
            for m in ["bleu", "chrf", "chrf++"] {
                close(&got[m]["score"], &run[m]["score"], &format!("{what} {m}"));
                assert_eq!(got[m]["signature"], run[m]["signature"], "{what} {m}");
                // The printed score (two decimals) is sacrebleu's too.
                let (a, b) = (
                    got[m]["score"].as_f64().unwrap(),
                    run[m]["score"].as_f64().unwrap(),
                );
                assert_eq!(format!("{a:.2}"), format!("{b:.2}"), "{what} {m}");
            }
            // sacrebleu reports add-k counts after smoothing; alinea keeps the raw counts (crate-documented).
            if cfg["smooth"] != "add-k" {
                assert_eq!(got["bleu"]["counts"], run["bleu"]["counts"], "{what}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} runs checked");
}

#[test]
fn score_text_output_is_sacrebleu_like_and_errors_name_the_file() {
    let store = tempfile::tempdir().unwrap();
    let cases = metrics_data().join("cases");
    let (hyp, r0) = (cases.join("eng_flores.hyp"), cases.join("eng_flores.ref0"));
    let out = alinea(store.path())
        .args([
            "score",
            "--hyp",
            hyp.to_str().unwrap(),
            "--ref",
            r0.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = "),
        "{text}"
    );
    assert!(
        lines[1].starts_with("chrF2|nrefs:1|") && lines[2].starts_with("chrF2++|nrefs:1|"),
        "{text}"
    );
    assert_eq!(lines[3], "COMET = absent (no local COMET command given)");

    let short = write(store.path(), "eng_short.hyp", "One line.\nTwo lines.\n");
    let err = fails(
        store.path(),
        &[
            "score",
            "--hyp",
            short.to_str().unwrap(),
            "--ref",
            r0.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("eng_flores.ref0") && err.contains("eng_short.hyp"),
        "{err}"
    );
    let err = fails(
        store.path(),
        &[
            "score",
            "--hyp",
            "/nonexistent.hyp",
            "--ref",
            r0.to_str().unwrap(),
        ],
    );
    assert!(err.contains("/nonexistent.hyp"), "{err}");
    let err = fails(
        store.path(),
        &[
            "score",
            "--hyp",
            hyp.to_str().unwrap(),
            "--ref",
            r0.to_str().unwrap(),
            "--tokenize",
            "spm",
        ],
    );
    assert!(err.contains("spm"), "{err}");
}

/// `n` FLORES-200 devtest lines of `flores_code`.
fn devtest(flores_code: &str, n: usize) -> Vec<String> {
    let p = shared("datasets/flores200/flores200_dataset/devtest")
        .join(format!("{flores_code}.devtest"));
    std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .take(n)
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// Drops every `k`-th word: a realistic imperfect translation.
fn drop_words(s: &str, k: usize) -> String {
    s.split(' ')
        .enumerate()
        .filter(|(i, _)| i % k != k - 1)
        .map(|(_, w)| w)
        .collect::<Vec<_>>()
        .join(" ")
}

const N: usize = 40;

/// A small SentencePiece model trained on Flores-200 dev (crates/metrics/tests/data/make_spm_cases.py).
fn spm_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/metrics/tests/data/spm/unigram.model")
}

/// A generations file with the columns of the `generate` stage's output (instruction table + hypothesis), built
/// from real devtest lines: be→en and li→en are corrupted references (li→en with 10 oscillating outputs), en→be
/// answers in Russian (off-target), en→li copies the English source.
fn generations(dir: &Path) -> PathBuf {
    let (en, be, ru, li) = (
        devtest("eng_Latn", N),
        devtest("bel_Cyrl", N),
        devtest("rus_Cyrl", N),
        devtest("lim_Latn", N),
    );
    let names = [
        ("en", "English"),
        ("be", "Belarusian"),
        ("li", "Limburgish"),
    ];
    let name = |c: &str| names.iter().find(|(k, _)| *k == c).unwrap().1;
    let mut out = String::new();
    let mut row = |y: &str, x: &str, i: usize, src: &str, reference: &str, hyp: String| {
        let instruction = format!(
            "Translate from {} to {}.\n{}: {src}\n{}:",
            name(y),
            name(x),
            name(y),
            name(x)
        );
        let v = serde_json::json!({
            "task": "mt", "src_lang": y, "tgt_lang": x, "direction": format!("{y}-{x}"), "pair_id": i,
            "instruction": instruction, "input": "", "output": format!(" {reference}"), "hypothesis": hyp,
        });
        out.push_str(&v.to_string());
        out.push('\n');
    };
    for i in 0..N {
        row("be", "en", i, &be[i], &en[i], drop_words(&en[i], 4));
    }
    for i in 0..N {
        row("en", "be", i, &en[i], &be[i], ru[i].clone());
    }
    for i in 0..N {
        let h = if i % 4 == 0 {
            format!("{} the the the the the", drop_words(&en[i], 5))
        } else {
            drop_words(&en[i], 3)
        };
        row("li", "en", i, &li[i], &en[i], h);
    }
    for i in 0..N {
        row("en", "li", i, &en[i], &li[i], en[i].clone());
    }
    write(dir, "generations.jsonl", &out)
}

#[test]
fn lid_score_report_pipeline_on_real_flores_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generations(dir.path()); // writes the generations file the pipeline below reads
    // A bring-your-own COMET command: here a stand-in script, to check the plumbing (files in, last number out).
    let comet = write(
        dir.path(),
        "comet.sh",
        "#!/bin/sh\n[ -s \"$2\" ] && [ -s \"$4\" ] && [ -s \"$6\" ] && echo \"$4 score: 0.8125\"\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&comet, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let flores = shared("datasets/flores200/flores200_dataset");
    let pipeline = write(
        dir.path(),
        "p.toml",
        &format!(
            r#"
[stages.lid]
kind = "lid.train"
inputs = {{ root = "{flores}" }}
langs = ["en", "be", "ru", "li", "nl", "de"]

[stages.score_mt]
kind = "metrics.score"
inputs = {{ generations_file = "generations.jsonl", lid = "lid" }}
test_set = "flores200"

[stages.score_comet]
kind = "metrics.score"
inputs = {{ generations_file = "generations.jsonl" }}
test_set = "flores200"
lowercase = true
comet = "{comet} -s {{src}} -t {{hyp}} -r {{ref}}"

[stages.score_spm]
kind = "metrics.score"
inputs = {{ generations_file = "generations.jsonl", spm_model = "{spm}" }}
test_set = "flores200"
tokenize = "flores200"

[stages.rep]
kind = "report"
inputs = {{ scores = ["score_mt", "score_comet"] }}
title = "metrics test"
paper_reference = true
paper_match = {{ score_mt = "MT+Align" }}
"#,
            flores = flores.display(),
            comet = comet.display(),
            spm = spm_model().display()
        ),
    );
    let p = pipeline.to_str().unwrap();
    let first = json(&store, &["run", p]);
    assert!(
        statuses(&first).iter().all(|(_, s, _)| s == "ran"),
        "{first}"
    );

    // The identifier: six languages, accurate on devtest.
    let lid = json(&store, &["show", "lid", "--rows", "10"]);
    let lid = lid.as_array().unwrap();
    assert_eq!(lid.len(), 6);
    for l in lid {
        assert_eq!(l["eval_lines"], 1012, "{l}");
        assert!(l["train_lines"].as_u64().unwrap() == 997, "{l}");
        if ["en", "be", "ru"].contains(&l["lang"].as_str().unwrap()) {
            assert!(l["accuracy"].as_f64().unwrap() > 0.95, "{l}");
        }
    }

    let scores = json(&store, &["show", "score_mt"]);
    let scores = scores.as_array().unwrap();
    let dirs: Vec<&str> = scores
        .iter()
        .map(|r| r["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["be-en", "en-be", "li-en", "en-li"]);
    let by = |d: &str| scores.iter().find(|r| r["direction"] == d).unwrap();
    for r in scores {
        assert_eq!(r["segments"], N as u64, "{r}");
        assert_eq!(r["test_set"], "flores200");
        assert!(
            r["comet"].is_null(),
            "no COMET command: absent, not estimated: {r}"
        );
        assert_eq!(
            r["bleu_signature"],
            "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
        );
        assert!(
            r["source_copy_rate"].is_number(),
            "sources come from the MTInstruct prompt: {r}"
        );
    }
    assert_eq!(by("en-be")["lang"], "be");
    assert_eq!(by("li-en")["lang"], "li");
    // Russian answers to en→be are off-target; English copies to en→li are off-target source copies.
    assert!(
        by("en-be")["off_target_rate"].as_f64().unwrap() >= 0.9,
        "{}",
        by("en-be")
    );
    assert!(
        by("be-en")["off_target_rate"].as_f64().unwrap() <= 0.05,
        "{}",
        by("be-en")
    );
    assert_eq!(by("en-li")["source_copy_rate"], 1.0);
    assert!(by("en-li")["off_target_rate"].as_f64().unwrap() >= 0.9);
    assert_eq!(by("be-en")["source_copy_rate"], 0.0);
    let osc = by("li-en")["oscillation_rate"].as_f64().unwrap();
    assert!((0.25..0.35).contains(&osc), "{osc}");
    assert_eq!(by("be-en")["oscillation_rate"], 0.0);
    assert!(by("be-en")["length_ratio"].as_f64().unwrap() < 0.9);

    // The stage's corpus scores are `alinea score`'s on the same lines.
    let hyp_file = write(
        dir.path(),
        "be-en.hyp",
        &(0..N)
            .map(|i| drop_words(&devtest("eng_Latn", N)[i], 4) + "\n")
            .collect::<String>(),
    );
    let ref_file = write(
        dir.path(),
        "be-en.ref",
        &(devtest("eng_Latn", N).join("\n") + "\n"),
    );
    // `alinea score` of a hypothesis file against the be→en references, with `options`.
    let score_files = |hyp: &Path, options: &[&str]| {
        let (hyp, reference) = (hyp.to_str().unwrap(), ref_file.to_str().unwrap());
        let mut args = vec!["score", "--hyp", hyp, "--ref", reference];
        args.extend_from_slice(options);
        json(&store, &args)
    };
    let cli = score_files(&hyp_file, &[]);
    assert_eq!(by("be-en")["bleu"], cli["bleu"]["score"]);
    assert_eq!(by("be-en")["chrf"], cli["chrf"]["score"]);
    assert_eq!(by("be-en")["chrfpp"], cli["chrf++"]["score"]);

    // The copy baseline: the sources scored as hypotheses. en→li's hypotheses are its sources, so there the
    // baseline is the score itself; for be→en it is `alinea score` of the Belarusian sources.
    assert_eq!(by("en-li")["copy_chrfpp"], by("en-li")["chrfpp"]);
    assert_eq!(by("en-li")["copy_bleu"], by("en-li")["bleu"]);
    let src_file = write(
        dir.path(),
        "be-en.src",
        &(devtest("bel_Cyrl", N).join("\n") + "\n"),
    );
    let copy = score_files(&src_file, &[]);
    assert_eq!(by("be-en")["copy_chrfpp"], copy["chrf++"]["score"]);
    assert_eq!(by("be-en")["copy_bleu"], copy["bleu"]["score"]);
    assert!(by("be-en")["copy_chrfpp"].as_f64().unwrap() < by("be-en")["chrfpp"].as_f64().unwrap());

    // spBLEU: the stage and `alinea score --tokenize flores200 --spm-model` agree (both sacrebleu-exact, see
    // crates/metrics/tests); the signature names the tokenizer.
    let spm_scores = json(&store, &["show", "score_spm"]);
    let spm_be_en = spm_scores
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["direction"] == "be-en")
        .unwrap();
    assert_eq!(
        spm_be_en["bleu_signature"],
        "nrefs:1|case:mixed|eff:no|tok:flores200|smooth:exp|version:2.6.0"
    );
    let spm = spm_model();
    let spm_cli = score_files(
        &hyp_file,
        &[
            "--tokenize",
            "flores200",
            "--spm-model",
            spm.to_str().unwrap(),
        ],
    );
    assert_eq!(spm_be_en["bleu"], spm_cli["bleu"]["score"]);
    assert_ne!(
        spm_be_en["bleu"],
        by("be-en")["bleu"],
        "SentencePiece pieces are not 13a tokens"
    );
    assert_eq!(
        spm_be_en["chrfpp"],
        by("be-en")["chrfpp"],
        "chrF does not tokenize"
    );

    // Per-segment verdicts.
    let seg_rows = json(&store, &["show", "score_mt.segments", "--rows", "1000"]);
    assert_eq!(seg_rows.as_array().unwrap().len(), 4 * N);
    let first_seg = &seg_rows[0];
    assert_eq!(first_seg["direction"], "be-en");
    assert_eq!(first_seg["pair_id"], 0);
    assert_eq!(first_seg["detected_lang"], "eng_Latn");

    // The COMET command's number is taken as given; the lowercase run's signature says so.
    let comet_scores = json(&store, &["show", "score_comet"]);
    for r in comet_scores.as_array().unwrap() {
        assert_eq!(r["comet"], 0.8125, "{r}");
        assert!(r["off_target_rate"].is_null(), "no identifier given: {r}");
        assert!(
            r["bleu_signature"].as_str().unwrap().contains("case:lc"),
            "{r}"
        );
    }

    // The report: files on disk, every direction present, the paper's reference numbers, charts.
    let out_dir = dir.path().join("report");
    let written = json(&store, &["report", "rep", "-o", out_dir.to_str().unwrap()]);
    assert_eq!(written["files"].as_array().unwrap().len(), 3, "{written}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let csv = std::fs::read_to_string(out_dir.join("report.csv")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "self-contained"
    );
    assert!(html.contains("<svg"));
    for d in [
        "be-en",
        "en-be",
        "li-en",
        "en-li",
        "score_mt",
        "score_comet",
        "paper: MT+Align",
    ] {
        assert!(html.contains(d), "HTML lacks {d}");
        assert!(md.contains(d), "Markdown lacks {d}");
    }
    assert!(
        md.contains("### flores200 · BLEU · en→xx") && md.contains("### flores200 · COMET · xx→en"),
        "{md}"
    );
    assert!(md.contains("| run | be | li | Avg |"), "{md}");
    // 2 runs × 4 directions × 3 metrics; the copy baseline's 4 directions × 3 metrics (COMET empty, as for a run
    // without it); the paper's numbers
    // for the same directions (3 objectives of Tables 11–13); Table 1's printed averages (6 objectives × 2 test
    // sets × 2 groups × 3 metrics).
    assert!(md.contains("| baseline: copy source |"), "{md}");
    assert_eq!(
        csv.lines().count(),
        1 + 2 * 4 * 3 + 4 * 3 + 3 * 4 * 3 + 6 * 2 * 2 * 3,
        "{csv}"
    );
    // Table 12, Flores-200 en→xx BLEU: be 0.7, li 3.3.
    assert!(
        md.replace("**", "")
            .contains("| paper: MTInstruct | 0.70 | 3.30 | 2.00 |"),
        "{md}"
    );
    assert!(md.contains("### Paper reference · flores200 · BLEU: bloomz+24, bloomz-7b1 (Table 1) beside this report's runs"), "{md}");
    assert!(
        md.contains("| paper: MT+Align | 3.26 | 11.60 |"),
        "Table 1, Flores averages: {md}"
    );
    assert!(
        md.contains("### Paper reference · opus100 · BLEU")
            && md.contains("No run scored a test set named like `opus100`"),
        "{md}"
    );
    assert!(
        md.contains(
            "### Distance to the paper · score_mt vs the paper's MT+Align (BLOOMZ-7b1) · flores200"
        ),
        "{md}"
    );
    let delta = json(
        &store,
        &[
            "query",
            "SELECT * FROM rep WHERE source = 'distance' AND metric = 'BLEU' AND \"group\" = 'overall'",
        ],
    );
    let paper_mt_align = [3.6, 0.8, 12.5, 3.1]; // Table 13, Flores-200 BLEU: be-en, en-be, li-en, en-li
    let ours: Vec<f64> = ["be-en", "en-be", "li-en", "en-li"]
        .iter()
        .map(|d| by(d)["bleu"].as_f64().unwrap())
        .collect();
    let expected = ours
        .iter()
        .zip(paper_mt_align)
        .map(|(a, b)| a - b)
        .sum::<f64>()
        / 4.0;
    assert_eq!(delta[0]["directions"], 4, "{delta}");
    assert!(
        (delta[0]["mean"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{delta}"
    );
    assert!(
        csv.contains("score_mt,flores200,en-be,en→xx,en→unseen,be,BLEU,"),
        "{csv}"
    );

    let summary = json(
        &store,
        &[
            "query",
            "SELECT * FROM rep WHERE run = 'score_mt' AND metric = 'BLEU' AND \"group\" = 'en→xx'",
        ],
    );
    assert_eq!(summary[0]["directions"], 2, "{summary}");
    let expected =
        (by("en-be")["bleu"].as_f64().unwrap() + by("en-li")["bleu"].as_f64().unwrap()) / 2.0;
    assert!(
        (summary[0]["mean"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{summary}"
    );

    // Everything is cached the second time.
    let second = json(&store, &["run", p]);
    assert!(
        statuses(&second).iter().all(|(_, s, _)| s == "cached"),
        "{second}"
    );
}

#[test]
fn bad_inputs_give_errors_that_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write(
        dir.path(),
        "g.jsonl",
        "{\"direction\": \"be-en\", \"ref\": \"a\"}\n",
    );
    let p = write(
        dir.path(),
        "p.toml",
        "[stages.s]\nkind = \"metrics.score\"\ninputs = { generations_file = \"g.jsonl\" }\n",
    );
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(
        err.contains("no hyp column") && err.contains("hypothesis, hyp"),
        "{err}"
    );

    let p = write(
        dir.path(),
        "p.toml",
        "[stages.s]\nkind = \"metrics.score\"\ninputs = { generations_file = \"g.jsonl\" }\nsmoothing = \"nope\"\n",
    );
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(
        err.contains("nope") && err.contains("exp, floor, add-k, none"),
        "{err}"
    );

    let p = write(
        dir.path(),
        "p.toml",
        "[stages.s]\nkind = \"metrics.score\"\ninputs = { generations_file = \"g.jsonl\" }\ntokenize = \"sentencepiece\"\n",
    );
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(
        err.contains("sentencepiece") && err.contains("13a") && err.contains("flores200"),
        "{err}"
    );

    // spBLEU needs its model file as an input, and the file must be a SentencePiece model.
    let p = write(
        dir.path(),
        "p.toml",
        "[stages.s]\nkind = \"metrics.score\"\ninputs = { generations_file = \"g.jsonl\" }\ntokenize = \"flores200\"\n",
    );
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(
        err.contains("spm_model") && err.contains("flores200") && err.contains("model file"),
        "{err}"
    );
    let p = write(
        dir.path(),
        "p.toml",
        "[stages.s]\nkind = \"metrics.score\"\ninputs = { generations_file = \"g.jsonl\", spm_model = \"g.jsonl\" }\ntokenize = \"flores200\"\n",
    );
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(
        err.contains("g.jsonl") && err.contains("not a SentencePiece model"),
        "{err}"
    );

    let p = write(
        dir.path(),
        "p.toml",
        "[stages.r]\nkind = \"report\"\ninputs = { scores = \"s\" }\nmetrics = [\"TER\"]\n[stages.s]\nkind = \"metrics.score\"\ninputs = { generations_file = \"g.jsonl\" }\n",
    );
    let err = fails(&store, &["run", p.to_str().unwrap()]);
    assert!(err.contains("TER"), "{err}");

    let err = fails(
        &store,
        &[
            "report",
            "nothing",
            "-o",
            dir.path().join("o").to_str().unwrap(),
        ],
    );
    assert!(err.contains("nothing"), "{err}");
}

#[test]
fn the_generate_stage_output_is_scored_as_is() {
    // The real chain: prompts → generate (a tiny random model, so the numbers are low but real) → metrics.score.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = write(
        dir.path(),
        "p.toml",
        &format!(
            r#"[pipeline]
root = "{}"
[stages.flores]
kind = "ingest.flores200"
inputs = {{ root = "datasets/flores200" }}
langs = ["be"]
[stages.test_pairs]
kind = "sample"
inputs = {{ pairs = "flores" }}
splits = ["devtest"]
per_lang = 6
[stages.tiny]
kind = "model.tiny"
inputs = {{ texts = "test_pairs" }}
vocab_size = 400
[stages.prompts]
kind = "instruct.prompts"
inputs = {{ pairs = "test_pairs" }}
[stages.hyp]
kind = "generate"
inputs = {{ model = "tiny", prompts = "prompts" }}
max_new_tokens = 6
[stages.score]
kind = "metrics.score"
inputs = {{ generations = "hyp" }}
test_set = "flores200"
"#,
            repo().display()
        ),
    );
    json(&store, &["run", p.to_str().unwrap()]);
    let scores = json(&store, &["show", "score"]);
    let scores = scores.as_array().unwrap();
    assert_eq!(scores.len(), 2, "{scores:?}");
    let gens = json(
        &store,
        &["query", "SELECT direction, hypothesis, output FROM hyp"],
    );
    for r in scores {
        assert_eq!(r["segments"], 6, "{r}");
        // The stage's scores are those of the generated text as it is: corpus BLEU and chrF++ (sacrebleu-exact,
        // checked against sacrebleu in crates/metrics/tests) of the `hyp` table's hypotheses against its references,
        // lines compared as sacrebleu reads them (trailing whitespace removed).
        let (hyps, refs): (Vec<String>, Vec<String>) = gens
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["direction"] == r["direction"])
            .map(|g| {
                let line = |k: &str| g[k].as_str().unwrap().trim_end().to_string();
                (line("hypothesis"), line("output"))
            })
            .unzip();
        assert_eq!(hyps.len(), 6, "{r}");
        let refs = [refs];
        let opts = alinea_metrics::ScoreOptions::default();
        let bleu = opts.bleu().corpus_score(&hyps, &refs).unwrap().score;
        let chrfpp = opts.chrf_pp().corpus_score(&hyps, &refs).unwrap().score;
        assert!(
            (r["bleu"].as_f64().unwrap() - bleu).abs() < 1e-9,
            "{r}: want BLEU {bleu}"
        );
        assert!(
            (r["chrfpp"].as_f64().unwrap() - chrfpp).abs() < 1e-9,
            "{r}: want chrF++ {chrfpp}"
        );
        assert!(
            r["source_copy_rate"].is_number(),
            "the source is read back from the MTInstruct prompt: {r}"
        );
    }
    let log = json(&store, &["log", "score"]);
    assert_eq!(
        log["stats"]["counters"]["source_from_instruction"], 12,
        "{log}"
    );
    assert_eq!(
        json(&store, &["show", "score.segments", "--rows", "100"])
            .as_array()
            .unwrap()
            .len(),
        12
    );
}
