//! sacrebleu 2.6.0's significance tests reproduced bit for bit: its own test_significance.py
//! vectors (16 WMT17 en-de systems, paired bootstrap with 2000 resamples and approximate
//! randomization with 10,000 trials) and live cases on real Flores-200 lines in six scripts under
//! several BLEU / chrF configurations (paired bootstrap, AR with and without confidence
//! intervals, single-system confidence intervals). Expected values come from
//! tests/data/make_significance.py, which runs sacrebleu itself; floats are compared by their bits.

use std::io::Read;
use std::path::{Path, PathBuf};

use alinea_metrics::significance::{
    self, Metric, PairedReport, TestConfig, TestKind, TestResult, confidence_intervals,
    confidence_signature, paired_test_on_stats,
};
use alinea_metrics::{Bleu, ScoreConfig, Tokenizer, read_lines};
use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/significance")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bits(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn to_bits(v: Option<f64>) -> Option<u64> {
    v.map(f64::to_bits)
}

fn check_result(got: &TestResult, want: &Value, what: &str) {
    let pairs = [
        ("score", Some(got.score)),
        ("p_value", got.p_value),
        ("mean", got.mean),
        ("ci", got.ci),
    ];
    for (field, value) in pairs {
        assert_eq!(
            to_bits(value),
            bits(&want[field]),
            "{what} {field}: alinea {value:?} vs sacrebleu {:?}",
            bits(&want[field]).map(f64::from_bits)
        );
    }
}

fn check_report(results: &[Vec<TestResult>], names: &[String], want: &Value, what: &str) {
    for (m, name) in names.iter().enumerate() {
        let rows = want["results"][name].as_array().unwrap();
        assert_eq!(rows.len(), results.len(), "{what} {name}: systems");
        for (s, row) in rows.iter().enumerate() {
            check_result(&results[s][m], row, &format!("{what} {name} system {s}"));
        }
    }
}

fn check_signatures(report: &PairedReport, want: &Value, what: &str) {
    for (name, sig) in report.metrics.iter().zip(&report.signatures) {
        assert_eq!(
            sig,
            want["signatures"][name].as_str().unwrap(),
            "{what} {name}"
        );
    }
}

/// The WMT17 per-segment BLEU statistics, `stats[system][0][segment]`.
fn wmt17_stats() -> Vec<Vec<Vec<Vec<u64>>>> {
    let file = std::fs::File::open(data_dir().join("wmt17_bleu_stats.txt.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    let mut systems: Vec<Vec<Vec<Vec<u64>>>> = Vec::new();
    for line in text.lines() {
        let (sys, nums) = line.split_once('\t').unwrap();
        let sys: usize = sys.parse().unwrap();
        if sys == systems.len() {
            systems.push(vec![Vec::new()]);
        }
        systems[sys][0].push(nums.split(' ').map(|n| n.parse().unwrap()).collect());
    }
    systems
}

/// P-values sacrebleu's test_significance.py checks its own against (within 1e-2): Moses'
/// bootstrap script and multeval's AR, for the systems after the baseline.
const MOSES_P_VALS: [(&str, f64); 15] = [
    ("newstest2017.C-3MA.4959.en-de", 0.00000),
    ("newstest2017.FBK.4870.en-de", 0.01267),
    ("newstest2017.KIT.4950.en-de", 0.02233),
    ("newstest2017.LMU-nmt-reranked.4934.en-de", 0.04383),
    ("newstest2017.LMU-nmt-single.4893.en-de", 0.20783),
    ("newstest2017.online-A.0.en-de", 0.00000),
    ("newstest2017.online-B.0.en-de", 0.38100),
    ("newstest2017.online-F.0.en-de", 0.00000),
    ("newstest2017.online-G.0.en-de", 0.00000),
    ("newstest2017.PROMT-Rule-based.4735.en-de", 0.00000),
    ("newstest2017.RWTH-nmt-ensemble.4921.en-de", 0.01167),
    ("newstest2017.SYSTRAN.4847.en-de", 0.20983),
    ("newstest2017.TALP-UPC.4834.en-de", 0.00000),
    ("newstest2017.uedin-nmt.4722.en-de", 0.00000),
    ("newstest2017.xmu.4910.en-de", 0.25483),
];
const MULTEVAL_BLEU_P_VALS: [f64; 15] = [
    0.0001, 0.0218, 0.0410, 0.09029, 0.58494, 0.0001, 0.94111, 0.0001, 0.0001, 0.0001, 0.0207,
    0.59914, 0.0001, 0.0001, 0.71073,
];

#[test]
fn sacrebleu_own_significance_vectors() {
    let want = expected();
    let wmt = &want["wmt17"];
    let names: Vec<&str> = wmt["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let stats = wmt17_stats();
    assert_eq!((stats.len(), stats[0][0].len()), (16, 3004));
    let metrics = [Metric::Bleu(Bleu {
        tokenizer: Tokenizer::None,
        ..Bleu::default()
    })];
    let metric_names = vec!["BLEU".to_string()];
    for (kind, samples, key, reference) in [
        (TestKind::Bootstrap, 2000, "bs", MOSES_P_VALS.map(|p| p.1)),
        (
            TestKind::ApproximateRandomization,
            10_000,
            "ar",
            MULTEVAL_BLEU_P_VALS,
        ),
    ] {
        let config = TestConfig {
            samples,
            ..TestConfig::new(kind)
        };
        let results = paired_test_on_stats(&metrics, &stats, &config);
        check_report(&results, &metric_names, &wmt[key], &format!("wmt17 {key}"));
        // The assertion of sacrebleu's own test, against the outside implementations.
        for (s, p) in reference.iter().enumerate() {
            let ours = results[s + 1][0].p_value.unwrap();
            assert_eq!(names[s + 1], MOSES_P_VALS[s].0);
            assert!(
                (ours - p).abs() < 1e-2,
                "{key} {}: {ours} vs {p}",
                names[s + 1]
            );
        }
    }
}

/// The scoring configuration of a live case from sacrebleu's keyword arguments.
fn config_of(case: &Value) -> ScoreConfig {
    let (b, c) = (&case["bleu"], &case["chrf"]);
    let mut cfg = ScoreConfig::default();
    if let Some(t) = b["tokenize"].as_str() {
        cfg.tokenize = t.into();
    }
    if let Some(s) = b["smooth_method"].as_str() {
        cfg.smoothing = s.into();
    }
    cfg.smooth_value = b["smooth_value"].as_f64();
    cfg.lowercase = b["lowercase"].as_bool().unwrap_or(false);
    cfg.bleu_effective_order = b["effective_order"].as_bool().unwrap_or(false);
    cfg.bleu_max_ngram_order = b["max_ngram_order"].as_u64().unwrap_or(4) as usize;
    cfg.chrf_beta = c["beta"].as_u64().unwrap_or(2) as u32;
    cfg.chrf_eps_smoothing = c["eps_smoothing"].as_bool().unwrap_or(false);
    cfg.chrf_char_order = c["char_order"].as_u64().unwrap_or(6) as usize;
    cfg.chrf_whitespace = c["whitespace"].as_bool().unwrap_or(false);
    cfg.chrf_lowercase = c["lowercase"].as_bool().unwrap_or(false);
    cfg
}

#[test]
fn live_flores_cases_equal_sacrebleu_bit_for_bit() {
    let want = expected();
    let cases = want["live"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let file = |k: &str| data_dir().join(case["files"][k].as_str().unwrap());
        let refs = vec![read_lines(file("ref")).unwrap()];
        let systems: Vec<(String, Vec<String>)> = ["baseline", "worse", "near"]
            .iter()
            .map(|s| (s.to_string(), read_lines(file(s)).unwrap()))
            .collect();
        let metrics = config_of(case).options(None).unwrap().metrics();
        let names: Vec<String> = metrics.iter().map(Metric::name).collect();
        let runs = [
            ("bs", TestConfig::new(TestKind::Bootstrap)),
            ("ar", TestConfig::new(TestKind::ApproximateRandomization)),
            (
                "ar_confidence",
                TestConfig {
                    samples: 2000,
                    ar_confidence: Some(300),
                    ..TestConfig::new(TestKind::ApproximateRandomization)
                },
            ),
        ];
        for (key, config) in runs {
            let report = significance::paired_test(&metrics, &refs, &systems, &config).unwrap();
            let what = format!("{name} {key}");
            check_report(&report.results, &names, &case[key], &what);
            check_signatures(&report, &case[key], &what);
        }
        for (m, metric) in metrics.iter().enumerate() {
            // make_significance.py keys its single-system runs by metric kind.
            let key = ["BLEU", "chrF", "chrF++"][m];
            let rows = case["confidence"][key].as_array().unwrap();
            for (s, (_, hyps)) in systems.iter().enumerate() {
                let stats = vec![metric.corpus_stats(hyps, &refs).unwrap()];
                let ci = confidence_intervals(std::slice::from_ref(metric), &stats, 1000, 12345);
                let what = format!("{name} confidence {} system {s}", names[m]);
                assert_eq!(
                    Some(ci[0].mean.to_bits()),
                    bits(&rows[s]["mean"]),
                    "{what} mean {}",
                    ci[0].mean
                );
                assert_eq!(Some(ci[0].ci.to_bits()), bits(&rows[s]["ci"]), "{what} ci");
                assert_eq!(
                    confidence_signature(&metric.signature(1), 1000, 12345),
                    rows[s]["signature"].as_str().unwrap(),
                    "{what} signature"
                );
            }
        }
    }
}
