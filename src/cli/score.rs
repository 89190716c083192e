//! `score`: corpus BLEU / chrF / chrF++ of hypothesis files against reference files, exactly as
//! sacrebleu 2.6.0, with its confidence intervals (`--confidence`) and paired significance tests
//! (`--paired-bs`, `--paired-ar`) and sentence-level scores (`--sentence-level`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::Global;
use alinea_metrics::significance::{
    self, DEFAULT_AR_TRIALS, DEFAULT_BOOTSTRAP_SAMPLES, DEFAULT_SEED, PairedReport, TestConfig,
    TestKind,
};
use alinea_metrics::text::display_name;
use alinea_metrics::{CometCommand, ScoreConfig, ScoreOptions, SpmModel, read_lines};

/// Arguments of `score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Hypothesis file (one segment per line, UTF-8; `.gz` is gunzipped; `-` reads standard input).
    /// Repeat for several systems: with --paired-bs/--paired-ar the first is the baseline
    #[arg(long = "hyp", required = true)]
    hyps: Vec<PathBuf>,
    /// Reference file, line-aligned with the hypotheses; repeat for multiple references
    #[arg(long = "ref", required = true)]
    refs: Vec<PathBuf>,
    /// BLEU tokenizer; flores200, flores101 and spBLEU-1K are spBLEU and need --spm-model
    #[arg(long, default_value = "13a", value_parser = ["13a", "intl", "zh", "char", "none", "flores200", "flores101", "spm", "spBLEU-1K"])]
    tokenize: String,
    /// The SentencePiece model file of --tokenize flores200|flores101|spBLEU-1K (e.g. a local copy of
    /// flores200_sacrebleu_tokenizer_spm.model, which sacrebleu keeps in ~/.sacrebleu/models/)
    #[arg(long, value_name = "FILE")]
    spm_model: Option<PathBuf>,
    /// Lowercase for BLEU (sacrebleu -lc; chrF stays case-sensitive)
    #[arg(long, short = 'l')]
    lowercase: bool,
    /// Lowercase for chrF and chrF++ (sacrebleu --chrf-lowercase)
    #[arg(long)]
    chrf_lowercase: bool,
    /// BLEU smoothing method
    #[arg(long, default_value = "exp", value_parser = ["exp", "floor", "add-k", "none"])]
    smooth_method: String,
    /// Value of the floor / add-k smoothing, a finite number >= 0 [default: sacrebleu's]
    #[arg(long)]
    smooth_value: Option<f64>,
    /// BLEU's maximum n-gram order
    #[arg(long, default_value_t = 4)]
    bleu_max_ngram_order: usize,
    /// Corpus-level effective order for BLEU (orders without hypothesis n-grams are dropped)
    #[arg(long)]
    bleu_effective_order: bool,
    /// chrF character n-gram order (sacrebleu --chrf-char-order)
    #[arg(long, default_value_t = 6)]
    chrf_char_order: usize,
    /// chrF recall weight beta (sacrebleu --chrf-beta)
    #[arg(long, default_value_t = 2)]
    chrf_beta: u32,
    /// Keep whitespace in chrF character n-grams (sacrebleu --chrf-whitespace)
    #[arg(long)]
    chrf_whitespace: bool,
    /// chrF++.py-style epsilon smoothing (sacrebleu --chrf-eps-smoothing)
    #[arg(long)]
    chrf_eps_smoothing: bool,
    /// Per-segment BLEU (effective order, as sacrebleu.sentence_bleu), chrF and chrF++
    #[arg(long, conflicts_with_all = ["confidence", "paired_bs", "paired_ar"])]
    sentence_level: bool,
    /// 95% confidence intervals by bootstrap resampling (one system)
    #[arg(long, conflicts_with_all = ["paired_bs", "paired_ar"])]
    confidence: bool,
    /// Bootstrap resamples of --confidence
    #[arg(long, default_value_t = DEFAULT_BOOTSTRAP_SAMPLES)]
    confidence_n: usize,
    /// Paired bootstrap resampling test of each system against the first (the baseline)
    #[arg(long, conflicts_with = "paired_ar")]
    paired_bs: bool,
    /// Paired approximate randomization test of each system against the first (the baseline)
    #[arg(long)]
    paired_ar: bool,
    /// Resamples of --paired-bs
    #[arg(long, default_value_t = DEFAULT_BOOTSTRAP_SAMPLES)]
    paired_bs_n: usize,
    /// Trials of --paired-ar
    #[arg(long, default_value_t = DEFAULT_AR_TRIALS)]
    paired_ar_n: usize,
    /// Seed of the resampling (sacrebleu's SACREBLEU_SEED); nonzero
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Decimals in the paired-test table (sacrebleu --width)
    #[arg(long, default_value_t = 1)]
    width: usize,
    /// A local COMET command with {src}, {hyp}, {ref} placeholders (bring-your-own; absent without it)
    #[arg(long, requires = "src")]
    comet: Option<String>,
    /// Source file, for COMET
    #[arg(long)]
    src: Option<PathBuf>,
}

impl ScoreArgs {
    fn config(&self) -> ScoreConfig {
        ScoreConfig {
            tokenize: self.tokenize.clone(),
            lowercase: self.lowercase,
            chrf_lowercase: self.chrf_lowercase,
            smoothing: self.smooth_method.clone(),
            smooth_value: self.smooth_value,
            bleu_max_ngram_order: self.bleu_max_ngram_order,
            bleu_effective_order: self.bleu_effective_order,
            chrf_char_order: self.chrf_char_order,
            chrf_beta: self.chrf_beta,
            chrf_whitespace: self.chrf_whitespace,
            chrf_eps_smoothing: self.chrf_eps_smoothing,
        }
    }

    fn paired(&self) -> Option<TestConfig> {
        let kind = if self.paired_bs {
            TestKind::Bootstrap
        } else if self.paired_ar {
            TestKind::ApproximateRandomization
        } else {
            return None;
        };
        Some(TestConfig {
            samples: match kind {
                TestKind::Bootstrap => self.paired_bs_n,
                TestKind::ApproximateRandomization => self.paired_ar_n,
            },
            seed: self.seed,
            ..TestConfig::new(kind)
        })
    }
}

/// `alinea score`.
pub fn score(global: &Global, args: ScoreArgs) -> anyhow::Result<ExitCode> {
    if args
        .hyps
        .iter()
        .filter(|h| h.as_path() == Path::new("-"))
        .count()
        + args
            .refs
            .iter()
            .filter(|r| r.as_path() == Path::new("-"))
            .count()
        > 1
    {
        bail!("standard input (-) can be read only once: give it to one --hyp or --ref");
    }
    let spm_model = args.spm_model.as_deref().map(SpmModel::open).transpose()?;
    let opts = args.config().options(spm_model)?;
    let paired = args.paired();
    match (&paired, args.hyps.len()) {
        (Some(_), 1) => bail!(
            "--paired-bs/--paired-ar compare systems with a baseline: give the baseline and at least one more --hyp"
        ),
        (None, n) if n > 1 => bail!(
            "{n} hypothesis files given: several systems are compared with --paired-bs or --paired-ar"
        ),
        _ => {}
    }
    let refs = read_refs(&args.refs)?;
    if let Some(config) = paired {
        config.check()?;
        return paired_test(global, &args, &opts, &refs, &config);
    }
    let hyp_path = &args.hyps[0];
    let hyps = read_lines(hyp_path)?;
    check_lengths(hyp_path, &hyps, &args.refs, &refs)?;
    if args.sentence_level {
        return sentence_level(global, &opts, &hyps, &refs);
    }
    let mut report = alinea_metrics::score_corpus(&hyps, &refs, &opts)?;
    if let (Some(cmd), Some(src)) = (&args.comet, &args.src) {
        if hyp_path.as_path() == Path::new("-") {
            bail!("--comet runs a command on the hypothesis file: give a file, not standard input");
        }
        let cmd = CometCommand::parse(cmd).context("--comet: empty command")?;
        report.comet = alinea_metrics::run_comet(Some(&cmd), src, hyp_path, &args.refs[0])?;
        if report.comet.is_none() {
            eprintln!(
                "warning: COMET program `{}` not found; COMET is absent",
                cmd.program
            );
        }
    }
    if args.confidence {
        return confidence(global, &args, &opts, &hyps, &refs, report);
    }
    if global.json {
        outln!("{}", serde_json::to_string(&report.to_json())?);
    } else {
        out!("{}", report.text_lines());
    }
    Ok(ExitCode::SUCCESS)
}

fn read_refs(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<String>>> {
    Ok(paths
        .iter()
        .map(read_lines)
        .collect::<Result<Vec<_>, _>>()?)
}

fn check_lengths(
    hyp_path: &Path,
    hyps: &[String],
    ref_paths: &[PathBuf],
    refs: &[Vec<String>],
) -> anyhow::Result<()> {
    if hyps.is_empty() {
        return Err(alinea_metrics::MetricsError::EmptyCorpus(display_name(hyp_path)).into());
    }
    for (index, (path, lines)) in ref_paths.iter().zip(refs).enumerate() {
        if lines.len() != hyps.len() {
            return Err(alinea_metrics::MetricsError::LengthMismatch {
                index,
                name: display_name(path),
                hyp_name: display_name(hyp_path),
                expected: hyps.len(),
                found: lines.len(),
            }
            .into());
        }
    }
    Ok(())
}

fn sentence_level(
    global: &Global,
    opts: &ScoreOptions,
    hyps: &[String],
    refs: &[Vec<String>],
) -> anyhow::Result<ExitCode> {
    let scores = alinea_metrics::sentence_scores(hyps, refs, opts)?;
    let (chrf, chrf_pp) = (opts.chrf().name(), opts.chrf_pp().name());
    for s in &scores {
        if global.json {
            outln!("{}", serde_json::to_string(s)?);
        } else {
            outln!(
                "BLEU = {:.2} {chrf} = {:.2} {chrf_pp} = {:.2}",
                s.bleu,
                s.chrf,
                s.chrf_pp
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn confidence(
    global: &Global,
    args: &ScoreArgs,
    opts: &ScoreOptions,
    hyps: &[String],
    refs: &[Vec<String>],
    report: alinea_metrics::ScoreReport,
) -> anyhow::Result<ExitCode> {
    let config = TestConfig {
        samples: args.confidence_n,
        seed: args.seed,
        ..TestConfig::new(TestKind::Bootstrap)
    };
    config.check()?;
    let metrics = opts.metrics();
    let stats = metrics
        .iter()
        .map(|m| m.corpus_stats(hyps, refs))
        .collect::<Result<Vec<_>, _>>()?;
    let cis = significance::confidence_intervals(&metrics, &stats, config.samples, config.seed);
    let sig = |s: &str| significance::confidence_signature(s, config.samples, config.seed);
    // sacrebleu shows an interval only when its mean is positive.
    let shown = |c: &significance::Confidence| {
        if c.mean > 0.0 {
            format!(" (μ = {:.2} ± {:.2})", c.mean, c.ci)
        } else {
            String::new()
        }
    };
    if global.json {
        let mut v = report.to_json();
        for (key, ci) in ["bleu", "chrf", "chrf++"].iter().zip(&cis) {
            let m = &mut v[*key];
            let s = sig(m["signature"].as_str().unwrap_or_default());
            m["signature"] = s.into();
            m["mean"] = ci.mean.into();
            m["ci"] = ci.ci.into();
        }
        outln!("{}", serde_json::to_string(&v)?);
    } else {
        let (b, c, cpp) = (&report.bleu, &report.chrf, &report.chrf_pp);
        outln!(
            "BLEU|{} = {:.2}{} {}",
            sig(&b.signature),
            b.score,
            shown(&cis[0]),
            b.verbose()
        );
        outln!(
            "{}|{} = {:.2}{}",
            c.name,
            sig(&c.signature),
            c.score,
            shown(&cis[1])
        );
        outln!(
            "{}|{} = {:.2}{}",
            cpp.name,
            sig(&cpp.signature),
            cpp.score,
            shown(&cis[2])
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn paired_test(
    global: &Global,
    args: &ScoreArgs,
    opts: &ScoreOptions,
    refs: &[Vec<String>],
    config: &TestConfig,
) -> anyhow::Result<ExitCode> {
    let mut systems = Vec::with_capacity(args.hyps.len());
    for (i, path) in args.hyps.iter().enumerate() {
        let hyps = read_lines(path)?;
        check_lengths(path, &hyps, &args.refs, refs)?;
        let name = display_name(path);
        systems.push((
            if i == 0 {
                format!("Baseline: {name}")
            } else {
                name
            },
            hyps,
        ));
    }
    let report = significance::paired_test(&opts.metrics(), refs, &systems, config)?;
    if global.json {
        outln!("{}", serde_json::to_string(&paired_json(&report))?);
    } else {
        out!("{}", paired_text(&report, args.width));
    }
    Ok(ExitCode::SUCCESS)
}

/// sacrebleu's JSON of a paired test (`[{"system": …, "BLEU": {score, p_value, mean, ci}, …}]`),
/// wrapped with the test and the signatures.
fn paired_json(report: &PairedReport) -> serde_json::Value {
    let systems: Vec<serde_json::Value> = report
        .systems
        .iter()
        .zip(&report.results)
        .map(|(name, results)| {
            let mut o = serde_json::Map::new();
            o.insert("system".into(), name.clone().into());
            for (metric, r) in report.metrics.iter().zip(results) {
                o.insert(metric.clone(), serde_json::to_value(r).expect("plain data"));
            }
            o.into()
        })
        .collect();
    let signatures: serde_json::Map<String, serde_json::Value> = report
        .metrics
        .iter()
        .zip(&report.signatures)
        .map(|(m, s)| (m.clone(), s.clone().into()))
        .collect();
    serde_json::json!({
        "test": report.config.kind.key(),
        "samples": report.config.samples,
        "seed": report.config.seed,
        "systems": systems,
        "signatures": signatures,
    })
}

/// The table sacrebleu prints for a paired test (plain columns instead of its box drawing), the
/// test's description and the signatures.
fn paired_text(report: &PairedReport, width: usize) -> String {
    let bootstrap = report.config.kind == TestKind::Bootstrap;
    let mut header = vec!["System".to_string()];
    for m in &report.metrics {
        header.push(if bootstrap {
            format!("{m} (μ ± 95% CI)")
        } else {
            m.clone()
        });
    }
    let mut rows = vec![header];
    for (name, results) in report.systems.iter().zip(&report.results) {
        let mut row = vec![name.clone()];
        row.extend(results.iter().map(|r| r.cell(width)));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                let pad = w - cell.chars().count();
                if i == 0 {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let (test, unit) = if bootstrap {
        ("bootstrap resampling", "resampling trials")
    } else {
        ("approximate randomization", "trials")
    };
    out.push_str(&format!(
        "\nPaired {test} test with {} {unit}: each system against {}; p-values < 0.05 are marked with \"*\"\n\n",
        report.config.samples, report.systems[0]
    ));
    out.push_str("Metric signatures\n");
    for (m, s) in report.metrics.iter().zip(&report.signatures) {
        out.push_str(&format!(" - {m:<10} {s}\n"));
    }
    out
}
