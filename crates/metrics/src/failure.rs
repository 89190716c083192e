//! Translation failure analysis after mFTI (Li et al., 2023, arXiv 2305.15083): off-target
//! language, source copy, oscillatory hallucination (repeated n-grams) and over/under-translation
//! (length ratio to the reference), per direction.

use std::collections::BTreeMap;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::chrf::Chrf;
use crate::lid::LidModel;
use crate::tokenize::{Tokenizer, tokens};

/// Thresholds and tokenization of the analysis. The defaults are alinea's choices (mFTI does not
/// publish its thresholds); they are recorded in every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureConfig {
    /// Tokenizer for repetition and length (`13a`; use `char` for unsegmented scripts).
    pub tokenizer: Tokenizer,
    /// A hypothesis is a source copy when its sentence chrF against the source is at least this
    /// and higher than against the reference.
    pub copy_chrf_threshold: f64,
    /// Longest n-gram (in tokens) checked for back-to-back repetition, and the order of the
    /// "same n-gram scattered" check.
    pub repeat_order: usize,
    /// Occurrences that make a repetition oscillatory.
    pub min_repeats: usize,
    /// A segment is over-translated when `hyp_len > over_ratio * ref_len`.
    pub over_ratio: f64,
    /// A non-empty segment is under-translated when `hyp_len < under_ratio * ref_len` (empty
    /// hypotheses are counted apart).
    pub under_ratio: f64,
}

impl Default for FailureConfig {
    fn default() -> Self {
        FailureConfig {
            tokenizer: Tokenizer::Thirteen13a,
            copy_chrf_threshold: 70.0,
            repeat_order: 4,
            min_repeats: 3,
            over_ratio: 2.0,
            under_ratio: 0.5,
        }
    }
}

impl FailureConfig {
    /// Defaults for a Flores-style target code: character tokens (and longer repeat n-grams) for
    /// scripts written without spaces between words (Han, Khmer, Myanmar, Thai, Lao, Japanese).
    pub fn for_target(lang: &str) -> FailureConfig {
        let unsegmented = ["Hans", "Hant", "Khmr", "Mymr", "Thai", "Laoo", "Jpan"]
            .iter()
            .any(|s| lang.ends_with(s))
            || [
                "zh", "zho", "khm", "mya", "th", "tha", "lo", "lao", "ja", "jpn",
            ]
            .contains(&lang);
        if unsegmented {
            FailureConfig {
                tokenizer: Tokenizer::Char,
                repeat_order: 8,
                ..FailureConfig::default()
            }
        } else {
            FailureConfig::default()
        }
    }
}

/// The verdicts for one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentFailure {
    /// Language the identifier saw (`None` for an empty hypothesis or no identifier).
    pub detected: Option<String>,
    /// Non-empty and identified as another language than the target.
    pub off_target: bool,
    /// Copies the source (see [`FailureConfig::copy_chrf_threshold`]).
    pub source_copy: bool,
    /// Contains an oscillatory repetition absent from the reference.
    pub oscillation: bool,
    /// Hypothesis tokens.
    pub hyp_len: usize,
    /// Reference tokens.
    pub ref_len: usize,
}

/// Rates for one direction (all over `n_segments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureReport {
    /// Expected target language label.
    pub target_lang: String,
    /// Number of segments.
    pub n_segments: usize,
    /// Share of empty hypotheses.
    pub empty_rate: f64,
    /// Share of off-target hypotheses (`None` when no identifier was given or the target is not
    /// one of its languages).
    pub off_target_rate: Option<f64>,
    /// Share of source copies.
    pub source_copy_rate: f64,
    /// Share of oscillatory hallucinations.
    pub oscillation_rate: f64,
    /// Corpus length ratio `Σ hyp tokens / Σ ref tokens`.
    pub length_ratio: f64,
    /// Share of segments longer than `over_ratio` × reference.
    pub over_translation_rate: f64,
    /// Share of non-empty segments shorter than `under_ratio` × reference.
    pub under_translation_rate: f64,
    /// How often each language was detected.
    pub detected_languages: BTreeMap<String, usize>,
    /// The configuration used.
    pub config: FailureConfig,
    /// Per-segment verdicts, in order.
    pub segments: Vec<SegmentFailure>,
}

/// Longest run of back-to-back copies of one n-gram (n ≤ `max_n`) in `toks`.
fn max_tandem(toks: &[&str], max_n: usize) -> usize {
    let mut best = 1;
    for n in 1..=max_n.min(toks.len() / 2) {
        let mut i = 0;
        while i + 2 * n <= toks.len() {
            let mut k = 1;
            while i + (k + 1) * n <= toks.len()
                && toks[i..i + n] == toks[i + k * n..i + (k + 1) * n]
            {
                k += 1;
            }
            best = best.max(k);
            i += if k > 1 { (k - 1) * n } else { 1 };
        }
    }
    best
}

fn ngram_counts<'a>(toks: &'a [&'a str], n: usize) -> FxHashMap<&'a [&'a str], usize> {
    let mut m = FxHashMap::default();
    if toks.len() >= n {
        for w in toks.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// Oscillatory hallucination: an n-gram repeated back to back `min_repeats` times, or an
/// n-gram of order `repeat_order` occurring `min_repeats` times, where the reference shows no
/// such repetition (so genuine repetitions in the reference are not flagged).
fn oscillates(hyp: &[&str], reference: &[&str], cfg: &FailureConfig) -> bool {
    let tandem = max_tandem(hyp, cfg.repeat_order);
    if tandem >= cfg.min_repeats && max_tandem(reference, cfg.repeat_order) < tandem {
        return true;
    }
    let r = ngram_counts(reference, cfg.repeat_order);
    ngram_counts(hyp, cfg.repeat_order)
        .iter()
        .any(|(g, &c)| c >= cfg.min_repeats && r.get(g).copied().unwrap_or(0) < cfg.min_repeats)
}

/// Analyses one direction: `src`, `hyps` and `refs` are line-aligned; `target_lang` is the label
/// the identifier should give (e.g. `hau_Latn`). Off-target needs `lid`; without it (or when the
/// target is unknown to it) the rate is `None`, never guessed.
pub fn analyze_failures(
    src: &[String],
    hyps: &[String],
    refs: &[String],
    target_lang: &str,
    lid: Option<&LidModel>,
    cfg: &FailureConfig,
) -> Result<FailureReport, MetricsError> {
    if src.len() != hyps.len() || refs.len() != hyps.len() {
        return Err(MetricsError::Failure(format!(
            "unaligned inputs: {} source, {} hypothesis, {} reference lines",
            src.len(),
            hyps.len(),
            refs.len()
        )));
    }
    if cfg.repeat_order == 0 || cfg.min_repeats < 2 {
        return Err(MetricsError::Failure(
            "repeat_order must be ≥ 1 and min_repeats ≥ 2".into(),
        ));
    }
    let lid = lid.filter(|m| m.languages.iter().any(|l| l == target_lang));
    let chrf = Chrf::chrf();
    let segments: Vec<SegmentFailure> = (0..hyps.len())
        .into_par_iter()
        .map(|i| {
            let (h, s, r) = (hyps[i].as_str(), src[i].as_str(), refs[i].as_str());
            let ht = cfg.tokenizer.tokenize(h);
            let rt = cfg.tokenizer.tokenize(r);
            let (htoks, rtoks) = (tokens(&ht), tokens(&rt));
            let empty = htoks.is_empty();
            let detected = if empty {
                None
            } else {
                lid.and_then(|m| m.identify(h)).map(|p| p.lang)
            };
            let off_target = detected.as_deref().is_some_and(|d| d != target_lang);
            let source_copy = !empty && {
                let to_src = chrf.sentence_score(h, &[s]).score;
                to_src >= cfg.copy_chrf_threshold && to_src > chrf.sentence_score(h, &[r]).score
            };
            SegmentFailure {
                detected,
                off_target,
                source_copy,
                oscillation: !empty && oscillates(&htoks, &rtoks, cfg),
                hyp_len: htoks.len(),
                ref_len: rtoks.len(),
            }
        })
        .collect();
    let n = segments.len();
    let rate = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let count = |f: &dyn Fn(&SegmentFailure) -> bool| segments.iter().filter(|s| f(s)).count();
    let mut detected_languages = BTreeMap::new();
    for s in &segments {
        if let Some(d) = &s.detected {
            *detected_languages.entry(d.clone()).or_insert(0) += 1;
        }
    }
    let (hl, rl): (usize, usize) = segments
        .iter()
        .fold((0, 0), |(a, b), s| (a + s.hyp_len, b + s.ref_len));
    Ok(FailureReport {
        target_lang: target_lang.to_string(),
        n_segments: n,
        empty_rate: rate(count(&|s| s.hyp_len == 0)),
        off_target_rate: lid.map(|_| rate(count(&|s| s.off_target))),
        source_copy_rate: rate(count(&|s| s.source_copy)),
        oscillation_rate: rate(count(&|s| s.oscillation)),
        length_ratio: if rl == 0 { 0.0 } else { hl as f64 / rl as f64 },
        over_translation_rate: rate(count(&|s| {
            s.ref_len > 0 && s.hyp_len as f64 > cfg.over_ratio * s.ref_len as f64
        })),
        under_translation_rate: rate(count(&|s| {
            s.ref_len > 0
                && s.hyp_len > 0
                && (s.hyp_len as f64) < cfg.under_ratio * s.ref_len as f64
        })),
        detected_languages,
        config: cfg.clone(),
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tandem_repeats() {
        let t: Vec<&str> = "a b a b a b c".split(' ').collect();
        assert_eq!(max_tandem(&t, 4), 3);
        let t: Vec<&str> = "x y z".split(' ').collect();
        assert_eq!(max_tandem(&t, 4), 1);
        let t: Vec<&str> = "the the the the".split(' ').collect();
        assert_eq!(max_tandem(&t, 1), 4);
    }

    #[test]
    fn repetition_in_reference_is_not_flagged() {
        let cfg = FailureConfig::default();
        let h: Vec<&str> = "no no no".split(' ').collect();
        assert!(!oscillates(&h, &h, &cfg));
        let r: Vec<&str> = "no".split(' ').collect();
        assert!(oscillates(&h, &r, &cfg));
    }
}
