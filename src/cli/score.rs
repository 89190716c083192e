//! `score`: corpus BLEU / chrF / chrF++ of a hypothesis file against reference files, exactly as sacrebleu 2.6.0.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::Global;
use alinea_metrics::{CometCommand, ScoreOptions, Smoothing, SpmModel, Tokenizer};

/// Arguments of `score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Hypothesis file (one segment per line, UTF-8)
    #[arg(long)]
    hyp: PathBuf,
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
    /// Value of the floor / add-k smoothing [default: sacrebleu's]
    #[arg(long)]
    smooth_value: Option<f64>,
    /// A local COMET command with {src}, {hyp}, {ref} placeholders (bring-your-own; absent without it)
    #[arg(long, requires = "src")]
    comet: Option<String>,
    /// Source file, for COMET
    #[arg(long)]
    src: Option<PathBuf>,
}

/// `alinea score`.
pub fn score(global: &Global, args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let spm_model = args.spm_model.as_deref().map(SpmModel::open).transpose()?;
    let opts = ScoreOptions {
        tokenize: Tokenizer::from_name(&args.tokenize, spm_model)?,
        lowercase: args.lowercase,
        chrf_lowercase: args.chrf_lowercase,
        smoothing: Smoothing::from_name(&args.smooth_method, args.smooth_value)?,
    };
    let mut report = alinea_metrics::score_files(&args.hyp, &args.refs, &opts)?;
    if let (Some(cmd), Some(src)) = (&args.comet, &args.src) {
        let cmd = CometCommand::parse(cmd).context("--comet: empty command")?;
        report.comet = alinea_metrics::run_comet(Some(&cmd), src, &args.hyp, &args.refs[0])?;
        if report.comet.is_none() {
            eprintln!(
                "warning: COMET program `{}` not found; COMET is absent",
                cmd.program
            );
        }
    }
    if global.json {
        outln!("{}", serde_json::to_string(&report.to_json())?);
    } else {
        out!("{}", report.text_lines());
    }
    Ok(ExitCode::SUCCESS)
}
