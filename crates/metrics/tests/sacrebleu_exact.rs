//! Exactness against sacrebleu 2.6.0 on real Flores-200 / NTREX-128 lines with realistic
//! corruptions. Expected values were produced by `tests/data/make_cases.py` and, for spBLEU (the
//! SentencePiece tokenizers), `tests/data/make_spm_cases.py` (see there).

use std::path::PathBuf;

use alinea_metrics::{
    Bleu, Chrf, MetricsError, ScoreOptions, Smoothing, SpmModel, Tokenizer, read_lines,
    score_files, sentence_scores,
};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"))
}

fn spm_dir() -> PathBuf {
    data_dir().join("spm")
}

fn read_json(p: PathBuf) -> Value {
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("fixture parses")
}

/// A JSON array of strings.
fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect()
}

fn expected() -> Value {
    read_json(data_dir().join("expected.json"))
}

/// The options of one expected run; a case naming `spm_model` loads it from `tests/data/spm/`.
fn options(case: &Value, cfg: &Value) -> ScoreOptions {
    let smooth_value = cfg["smooth_value"].as_f64();
    let spm = case["spm_model"]
        .as_str()
        .map(|m| SpmModel::open(&spm_dir().join(m)).unwrap());
    ScoreOptions {
        tokenize: Tokenizer::from_name(cfg["tokenize"].as_str().unwrap(), spm).unwrap(),
        lowercase: cfg["lowercase"].as_bool().unwrap(),
        chrf_lowercase: cfg["chrf_lowercase"].as_bool().unwrap(),
        smoothing: Smoothing::from_name(cfg["smooth"].as_str().unwrap(), smooth_value).unwrap(),
        ..ScoreOptions::default()
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9,
        "{what}: alinea {a:.15} vs sacrebleu {b:.15}"
    );
}

/// Checks every corpus score of an expected file whose case files lie in `dir`; returns the runs checked.
fn check_corpus_scores(exp: &Value, dir: &std::path::Path) -> usize {
    assert_eq!(exp["sacrebleu_version"], "2.6.0");
    let mut checked = 0;
    for case in exp["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let hyp = dir.join(case["hyp"].as_str().unwrap());
        let refs: Vec<PathBuf> = case["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| dir.join(r.as_str().unwrap()))
            .collect();
        for run in case["runs"].as_array().unwrap() {
            let cfg = &run["config"];
            let what = format!("{name} {cfg}");
            let rep = score_files(&hyp, &refs, &options(case, cfg))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let eb = &run["bleu"];
            close(
                rep.bleu.score,
                eb["score"].as_f64().unwrap(),
                &format!("{what} BLEU"),
            );
            assert_eq!(
                rep.bleu.formatted(),
                eb["formatted"].as_str().unwrap(),
                "{what}"
            );
            assert_eq!(
                rep.bleu.signature,
                eb["signature"].as_str().unwrap(),
                "{what}"
            );
            assert_eq!(
                format!("{:.2}", rep.bleu.score),
                format!("{:.2}", eb["score"].as_f64().unwrap()),
                "{what}"
            );
            assert_eq!(rep.bleu.sys_len, eb["sys_len"].as_u64().unwrap(), "{what}");
            assert_eq!(rep.bleu.ref_len, eb["ref_len"].as_u64().unwrap(), "{what}");
            close(
                rep.bleu.bp,
                eb["bp"].as_f64().unwrap(),
                &format!("{what} bp"),
            );
            for (a, b) in rep
                .bleu
                .precisions
                .iter()
                .zip(eb["precisions"].as_array().unwrap())
            {
                close(*a, b.as_f64().unwrap(), &format!("{what} precision"));
            }
            // sacrebleu reports add-k counts after smoothing; alinea keeps the raw counts.
            if cfg["smooth"] != "add-k" {
                let counts: Vec<u64> = eb["counts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect();
                assert_eq!(rep.bleu.counts, counts, "{what}");
            }
            for (key, got) in [("chrf", &rep.chrf), ("chrf++", &rep.chrf_pp)] {
                let e = &run[key];
                close(
                    got.score,
                    e["score"].as_f64().unwrap(),
                    &format!("{what} {key}"),
                );
                assert_eq!(
                    got.formatted(),
                    e["formatted"].as_str().unwrap(),
                    "{what} {key}"
                );
                assert_eq!(
                    got.signature,
                    e["signature"].as_str().unwrap(),
                    "{what} {key}"
                );
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn corpus_scores_equal_sacrebleu() {
    let checked = check_corpus_scores(&expected(), &data_dir().join("cases"));
    assert!(checked >= 50, "only {checked} runs checked");
}

#[test]
fn spbleu_corpus_scores_equal_sacrebleu() {
    let exp = read_json(spm_dir().join("expected.json"));
    let checked = check_corpus_scores(&exp, &spm_dir());
    assert_eq!(checked, 24, "12 cases × 2 configurations");
}

/// Checks every sentence-level score of an expected file; returns the segments checked.
fn check_sentence_scores(exp: &Value, dir: &std::path::Path) -> usize {
    let mut n = 0;
    for case in exp["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let hyps = read_lines(dir.join(case["hyp"].as_str().unwrap())).unwrap();
        let refs: Vec<Vec<String>> = case["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| read_lines(dir.join(r.as_str().unwrap())).unwrap())
            .collect();
        for run in case["runs"].as_array().unwrap() {
            let opts = options(case, &run["config"]);
            assert_eq!(
                opts.bleu().for_sentences().signature(refs.len()),
                run["sentence_bleu_signature"].as_str().unwrap()
            );
            let got = sentence_scores(&hyps, &refs, &opts).unwrap();
            for (i, (g, e)) in got
                .iter()
                .zip(run["segments"].as_array().unwrap())
                .enumerate()
            {
                let what = format!("{name} {} segment {i}", run["config"]);
                close(g.bleu, e["bleu"].as_f64().unwrap(), &format!("{what} BLEU"));
                close(g.chrf, e["chrf"].as_f64().unwrap(), &format!("{what} chrF"));
                close(
                    g.chrf_pp,
                    e["chrf++"].as_f64().unwrap(),
                    &format!("{what} chrF++"),
                );
                assert_eq!(
                    format!("{:.2}", g.bleu),
                    format!("{:.2}", e["bleu"].as_f64().unwrap()),
                    "{what}"
                );
                n += 1;
            }
        }
    }
    n
}

#[test]
fn sentence_scores_equal_sacrebleu() {
    let n = check_sentence_scores(&expected(), &data_dir().join("cases"));
    assert!(n > 1000, "only {n} segments checked");
}

#[test]
fn spbleu_sentence_scores_equal_sacrebleu() {
    let n = check_sentence_scores(&read_json(spm_dir().join("expected.json")), &spm_dir());
    assert_eq!(n, 12 * 40 * 2);
}

#[test]
fn sentencepiece_pieces_equal_the_reference_implementation() {
    // EncodeAsPieces of Google's sentencepiece on real lines of 16 scripts and edge cases (NFKC folding,
    // unknown characters, byte fallback, the meta symbol in the input, empty and space-only lines).
    let exp = read_json(spm_dir().join("pieces.json"));
    let lines = strings(&exp["lines"]);
    assert!(lines.len() > 100);
    for model in ["unigram", "bpe", "bpe_bytes"] {
        let spm = SpmModel::open(&spm_dir().join(format!("{model}.model"))).unwrap();
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(
                spm.pieces(line),
                strings(&exp[model][i]),
                "{model} line {i}: {line:?}"
            );
        }
    }
}

#[test]
fn spbleu_needs_a_usable_model_and_says_so() {
    let err = Tokenizer::from_name("flores200", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("flores200") && err.contains("model file"),
        "{err}"
    );
    let err = "flores200".parse::<Tokenizer>().unwrap_err().to_string();
    assert!(err.contains("SentencePiece model"), "{err}");
    let not_a_model = data_dir().join("cases").join("eng_flores.hyp");
    let err = SpmModel::open(&not_a_model).unwrap_err();
    assert!(matches!(err, MetricsError::SpmModel { .. }), "{err:?}");
    assert!(err.to_string().contains("eng_flores.hyp"), "{err}");
    let err = SpmModel::open(&spm_dir().join("missing.model"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.model"), "{err}");
    let model = SpmModel::open(&spm_dir().join("unigram.model")).unwrap();
    let err = Tokenizer::from_name("13a", Some(model.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenize is 13a"), "{err}");
    let spm = Tokenizer::from_name("spm", Some(model)).unwrap();
    assert_eq!(
        spm.signature(),
        "flores101",
        "sacrebleu's old name signs as flores101"
    );
    let err = "sentencepiece"
        .parse::<Tokenizer>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("flores200"),
        "the allowed names include spBLEU's: {err}"
    );
}

#[test]
fn json_object_has_the_issue_shape() {
    let case = data_dir().join("cases");
    let rep = score_files(
        case.join("eng_flores.hyp"),
        &[case.join("eng_flores.ref0")],
        &ScoreOptions::default(),
    )
    .unwrap();
    let v = rep.to_json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["bleu", "chrf", "chrf++"]);
    // The scores are sacrebleu 2.6.0's for the same files (data/single_ref.json, made by data/make_single_ref.py).
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir().join("single_ref.json")).unwrap())
            .unwrap();
    for m in ["bleu", "chrf", "chrf++"] {
        close(
            v[m]["score"].as_f64().unwrap(),
            want[m]["score"].as_f64().unwrap(),
            m,
        );
        assert_eq!(v[m]["signature"], want[m]["signature"], "{m}");
    }
    assert_eq!(
        v["bleu"]["signature"],
        "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    );
    assert_eq!(
        v["chrf++"]["signature"],
        "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"
    );
    // Round trip keeps full precision.
    let back: alinea_metrics::ScoreReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, rep);
    // Lines printed by `sacrebleu eng_flores.ref0 -i eng_flores.hyp -m bleu|chrf -f text -w 2`.
    assert_eq!(
        rep.bleu.line(),
        "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 72.83 86.9/80.9/76.6/72.4 \
         (BP = 0.922 ratio = 0.925 hyp_len = 822 ref_len = 889)"
    );
    assert_eq!(
        rep.chrf_pp.line(),
        "chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0 = 79.83"
    );
    let text = rep.text_lines();
    assert!(text.starts_with("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = "));
    assert!(text.contains("COMET = absent"));
}

#[test]
fn mismatched_files_name_the_file() {
    let case = data_dir().join("cases");
    let err = score_files(
        case.join("eng_flores.hyp"),
        &[case.join("all_empty.ref0")],
        &ScoreOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("all_empty.ref0") && msg.contains("has 5 lines"),
        "{msg}"
    );
}

#[test]
fn per_metric_api_agrees_with_fused_scoring() {
    let case = data_dir().join("cases");
    let hyps = read_lines(case.join("zho_flores_2ref.hyp")).unwrap();
    let refs = vec![
        read_lines(case.join("zho_flores_2ref.ref0")).unwrap(),
        read_lines(case.join("zho_flores_2ref.ref1")).unwrap(),
    ];
    let opts = ScoreOptions {
        tokenize: Tokenizer::Zh,
        ..ScoreOptions::default()
    };
    let rep = alinea_metrics::score_corpus(&hyps, &refs, &opts).unwrap();
    let bleu = Bleu {
        tokenizer: Tokenizer::Zh,
        ..Bleu::default()
    };
    assert_eq!(bleu.corpus_score(&hyps, &refs).unwrap(), rep.bleu);
    assert_eq!(Chrf::chrf().corpus_score(&hyps, &refs).unwrap(), rep.chrf);
    assert_eq!(
        Chrf::chrf_pp().corpus_score(&hyps, &refs).unwrap(),
        rep.chrf_pp
    );
    // Same bytes whatever the thread count.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let rep1 = one.install(|| alinea_metrics::score_corpus(&hyps, &refs, &opts).unwrap());
    assert_eq!(
        serde_json::to_string(&rep1.to_json()).unwrap(),
        serde_json::to_string(&rep.to_json()).unwrap()
    );
}

#[test]
fn tokenizers_and_lowercasing_equal_python() {
    let p = data_dir().join("tokenizers.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let lines = strings(&v["lines"]);
    assert!(lines.len() > 100);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(
            l.to_lowercase(),
            v["lower"][i].as_str().unwrap(),
            "lowercase of line {i}: {l:?}"
        );
        for name in ["13a", "intl", "zh", "char", "none"] {
            let t: Tokenizer = name.parse().unwrap();
            assert_eq!(
                t.tokenize(l),
                v[name][i].as_str().unwrap(),
                "{name} on line {i}: {l:?}"
            );
        }
    }
}
