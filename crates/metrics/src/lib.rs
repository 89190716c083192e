//! alinea-metrics: translation metrics that reproduce sacrebleu 2.6.0 exactly (BLEU with the
//! `13a`/`intl`/`zh`/`char`/`none` tokenizers and all smoothings, chrF, chrF++, corpus and
//! sentence level, signatures), a bring-your-own COMET hook, a character n-gram language
//! identifier trained on Flores-200 and the mFTI failure analysis (off-target, source copy,
//! oscillatory hallucination, length ratio), and the report of the `report` stage ([`report`], with the
//! shared [`html`] escaper and [`chart`] SVG charts).

#![warn(missing_docs)]

pub mod bleu;
pub mod chart;
pub mod chrf;
pub mod comet;
pub mod config;
pub mod failure;
pub mod html;
pub mod lid;
mod packed;
pub mod report;
pub mod significance;
pub mod spm;
pub mod text;
pub mod tokenize;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use bleu::{Bleu, BleuScore, Smoothing};
pub use chrf::{Chrf, ChrfScore};
pub use comet::{CometCommand, CometScore, run_comet};
pub use config::ScoreConfig;
pub use failure::{FailureConfig, FailureReport, SegmentFailure, analyze_failures};
pub use lid::{LidConfig, LidModel, LidPrediction};
pub use report::{
    DirectionScores, Report, ReportOptions, ReportSpec, ScoreRow, SummaryRow, bucket_of,
    build_report, render_csv, render_html, render_markdown,
};
pub use spm::{SPM_TOKENIZERS, SpmModel, spm_signature};
pub use text::{read_lines, split_lines_py};
pub use tokenize::{TOKENIZER_NAMES, Tokenizer};

/// The sacrebleu version whose numbers and signatures this crate reproduces.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// Everything that can go wrong in this crate; each variant names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not valid UTF-8 (sacrebleu refuses it too).
    #[error("{path}: line {line}: invalid UTF-8 at byte offset {byte_offset}")]
    Utf8 {
        /// The file.
        path: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// Byte offset of the first invalid byte.
        byte_offset: usize,
    },
    /// An option value is not one of the allowed ones.
    #[error("unknown {field} {value:?} (allowed: {allowed})")]
    UnknownOption {
        /// The option.
        field: &'static str,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// An option value is out of its range.
    #[error("bad {field} {value:?}: expected {expected}")]
    BadValue {
        /// The option.
        field: &'static str,
        /// The value given, as text.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A reference stream's length differs from the hypotheses'.
    #[error(
        "reference {index} ({name}) has {found} lines but the hypotheses ({hyp_name}) have {expected}"
    )]
    LengthMismatch {
        /// 0-based index of the reference stream.
        index: usize,
        /// The reference's name (its path for files).
        name: String,
        /// The hypotheses' name (its path for files).
        hyp_name: String,
        /// Number of hypothesis lines.
        expected: usize,
        /// Number of reference lines.
        found: usize,
    },
    /// No reference stream was given.
    #[error("no reference given")]
    NoReferences,
    /// The hypotheses are empty (sacrebleu fails on an empty corpus too).
    #[error("{0}: no hypotheses, the corpus is empty")]
    EmptyCorpus(String),
    /// A SentencePiece model file cannot be used.
    #[error("{path}: {message}")]
    SpmModel {
        /// The model file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A tokenizer needs a model file that was not given, or was given one it does not use.
    #[error("{0}")]
    TokenizerModel(String),
    /// Language identification input or model problem.
    #[error("language identifier: {0}")]
    Lid(String),
    /// A failure-analysis input problem.
    #[error("failure analysis: {0}")]
    Failure(String),
    /// The user's COMET command failed or printed something unparseable.
    #[error("COMET command `{command}`: {message}")]
    Comet {
        /// The command as given.
        command: String,
        /// What went wrong.
        message: String,
    },
}

/// Checks that there is at least one reference stream and that every stream is as long as the
/// hypotheses.
pub(crate) fn check_streams(hyps: &[String], refs: &[Vec<String>]) -> Result<(), MetricsError> {
    if refs.is_empty() {
        return Err(MetricsError::NoReferences);
    }
    if hyps.is_empty() {
        return Err(MetricsError::EmptyCorpus("hypotheses".into()));
    }
    for (index, r) in refs.iter().enumerate() {
        if r.len() != hyps.len() {
            return Err(MetricsError::LengthMismatch {
                index,
                name: format!("reference stream {index}"),
                hyp_name: "hypotheses".into(),
                expected: hyps.len(),
                found: r.len(),
            });
        }
    }
    Ok(())
}

/// Options of `alinea score`, with the sacrebleu CLI's defaults and semantics (build them from a
/// [`ScoreConfig`], which checks the values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreOptions {
    /// BLEU tokenizer (`--tokenize`, default `13a`).
    pub tokenize: Tokenizer,
    /// Lowercase for BLEU only (sacrebleu `-lc` leaves chrF case-sensitive).
    pub lowercase: bool,
    /// Lowercase for chrF/chrF++ (sacrebleu `--chrf-lowercase`).
    pub chrf_lowercase: bool,
    /// BLEU smoothing (default `exp`).
    pub smoothing: Smoothing,
    /// BLEU's maximum n-gram order (default 4).
    pub bleu_max_ngram_order: usize,
    /// Corpus-level effective order for BLEU.
    pub bleu_effective_order: bool,
    /// chrF character order (default 6).
    pub chrf_char_order: usize,
    /// chrF beta (default 2).
    pub chrf_beta: u32,
    /// Keep whitespace in chrF character n-grams.
    pub chrf_whitespace: bool,
    /// chrF epsilon smoothing.
    pub chrf_eps_smoothing: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            tokenize: Tokenizer::default(),
            lowercase: false,
            chrf_lowercase: false,
            smoothing: Smoothing::Exp,
            bleu_max_ngram_order: 4,
            bleu_effective_order: false,
            chrf_char_order: 6,
            chrf_beta: 2,
            chrf_whitespace: false,
            chrf_eps_smoothing: false,
        }
    }
}

impl ScoreOptions {
    /// The corpus BLEU configuration these options describe.
    pub fn bleu(&self) -> Bleu {
        Bleu {
            tokenizer: self.tokenize.clone(),
            lowercase: self.lowercase,
            smoothing: self.smoothing,
            effective_order: self.bleu_effective_order,
            max_ngram_order: self.bleu_max_ngram_order,
        }
    }

    /// The chrF configuration.
    pub fn chrf(&self) -> Chrf {
        Chrf {
            char_order: self.chrf_char_order,
            word_order: 0,
            beta: self.chrf_beta,
            lowercase: self.chrf_lowercase,
            whitespace: self.chrf_whitespace,
            eps_smoothing: self.chrf_eps_smoothing,
        }
    }

    /// The chrF++ configuration (the chrF one with word bigrams).
    pub fn chrf_pp(&self) -> Chrf {
        Chrf {
            word_order: 2,
            ..self.chrf()
        }
    }

    /// BLEU, chrF and chrF++ as the significance tests take them.
    pub fn metrics(&self) -> Vec<significance::Metric> {
        vec![
            significance::Metric::Bleu(self.bleu()),
            significance::Metric::Chrf(self.chrf()),
            significance::Metric::Chrf(self.chrf_pp()),
        ]
    }
}

/// Corpus scores of one hypothesis file; serializes to the JSON object of `alinea score --json`:
/// `{"bleu":{"score":…,"signature":…,…},"chrf":{"score":…,…},"chrf++":{"score":…,…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreReport {
    /// Corpus BLEU.
    pub bleu: BleuScore,
    /// Corpus chrF.
    pub chrf: ChrfScore,
    /// Corpus chrF++.
    #[serde(rename = "chrf++")]
    pub chrf_pp: ChrfScore,
    /// COMET when the user supplied a command; absent otherwise (never estimated).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub comet: Option<CometScore>,
}

impl ScoreReport {
    /// The JSON object of `alinea score --json` (full-precision floats).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data serializes")
    }

    /// sacrebleu-like text lines (`sacrebleu -f text` style), one per metric; COMET shows as
    /// absent when no command was supplied.
    pub fn text_lines(&self) -> String {
        let comet = match &self.comet {
            Some(c) => format!("COMET|{} = {:.4}", c.command, c.score),
            None => "COMET = absent (no local COMET command given)".to_string(),
        };
        format!(
            "{}\n{}\n{}\n{}\n",
            self.bleu.line(),
            self.chrf.line(),
            self.chrf_pp.line(),
            comet
        )
    }
}

/// Corpus BLEU, chrF and chrF++ of `hyps` against line-aligned reference streams. One parallel
/// pass over segments; chrF and chrF++ share their character n-gram work.
pub fn score_corpus(
    hyps: &[String],
    refs: &[Vec<String>],
    opts: &ScoreOptions,
) -> Result<ScoreReport, MetricsError> {
    use rayon::prelude::*;
    check_streams(hyps, refs)?;
    let (bleu, chrf, chrf_pp) = (opts.bleu(), opts.chrf(), opts.chrf_pp());
    type Triple = (Vec<u64>, Vec<u64>, Vec<u64>);
    let per: Vec<Triple> = (0..hyps.len())
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            let rs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
            let b = bleu.segment_stats(&hyps[i], &rs);
            let (c, cpp) = chrf_pp.segment_stats_pair(&hyps[i], &rs);
            (b, c, cpp)
        })
        .collect();
    let sum = |pick: &dyn Fn(&Triple) -> &Vec<u64>| {
        let mut acc = vec![0u64; pick(&per[0]).len()];
        for p in &per {
            for (a, b) in acc.iter_mut().zip(pick(p)) {
                *a += b;
            }
        }
        acc
    };
    Ok(ScoreReport {
        bleu: bleu.score_from_stats(&sum(&|p| &p.0), refs.len()),
        chrf: chrf.score_from_stats(&sum(&|p| &p.1), refs.len()),
        chrf_pp: chrf_pp.score_from_stats(&sum(&|p| &p.2), refs.len()),
        comet: None,
    })
}

/// [`score_corpus`] on files read as sacrebleu reads them; errors name the files.
pub fn score_files(
    hyp: impl AsRef<Path>,
    refs: &[impl AsRef<Path>],
    opts: &ScoreOptions,
) -> Result<ScoreReport, MetricsError> {
    let hyp = hyp.as_ref();
    let hyps = read_lines(hyp)?;
    if hyps.is_empty() {
        return Err(MetricsError::EmptyCorpus(text::display_name(hyp)));
    }
    let mut streams = Vec::with_capacity(refs.len());
    for (index, r) in refs.iter().enumerate() {
        let lines = read_lines(r)?;
        if lines.len() != hyps.len() {
            return Err(MetricsError::LengthMismatch {
                index,
                name: text::display_name(r.as_ref()),
                hyp_name: text::display_name(hyp),
                expected: hyps.len(),
                found: lines.len(),
            });
        }
        streams.push(lines);
    }
    score_corpus(&hyps, &streams, opts)
}

/// Sentence-level scores of one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceScores {
    /// Sentence BLEU (effective order, as `sacrebleu.sentence_bleu`).
    pub bleu: f64,
    /// Sentence chrF.
    pub chrf: f64,
    /// Sentence chrF++.
    #[serde(rename = "chrf++")]
    pub chrf_pp: f64,
}

/// Per-segment BLEU (effective order), chrF and chrF++, in segment order.
pub fn sentence_scores(
    hyps: &[String],
    refs: &[Vec<String>],
    opts: &ScoreOptions,
) -> Result<Vec<SentenceScores>, MetricsError> {
    use rayon::prelude::*;
    check_streams(hyps, refs)?;
    let bleu = opts.bleu().for_sentences();
    let (chrf, chrf_pp) = (opts.chrf(), opts.chrf_pp());
    Ok((0..hyps.len())
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            let rs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
            let (c, cpp) = chrf_pp.segment_stats_pair(&hyps[i], &rs);
            SentenceScores {
                bleu: bleu.sentence_score(&hyps[i], &rs).score,
                chrf: chrf.f_score(&c),
                chrf_pp: chrf_pp.f_score(&cpp),
            }
        })
        .collect())
}
