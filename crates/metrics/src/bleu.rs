//! BLEU exactly as sacrebleu 2.6.0 computes it (`sacrebleu.metrics.bleu`).

use std::str::FromStr;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::packed::{Interner, MAX_PACKED_TOKENS, bleu_counts};
use crate::text::py_rstrip;
use crate::tokenize::{Tokenizer, tokens};
use crate::{MetricsError, SACREBLEU_VERSION, check_streams};

/// BLEU smoothing method (sacrebleu `smooth_method` + `smooth_value`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "method", content = "value", rename_all = "kebab-case")]
pub enum Smoothing {
    /// `exp`: NIST geometric sequence smoothing (the default).
    #[default]
    Exp,
    /// `floor`: zero precisions replaced by `value / total` (`None` = sacrebleu default 0.1).
    Floor(Option<f64>),
    /// `add-k`: `k` added to counts and totals of orders ≥ 2 (`None` = sacrebleu default 1).
    AddK(Option<f64>),
    /// `none`: no smoothing.
    None,
}

impl Smoothing {
    /// sacrebleu's method name.
    pub fn name(self) -> &'static str {
        match self {
            Smoothing::Exp => "exp",
            Smoothing::Floor(_) => "floor",
            Smoothing::AddK(_) => "add-k",
            Smoothing::None => "none",
        }
    }

    /// The value in effect (the method's default when none was given).
    pub fn value(self) -> Option<f64> {
        match self {
            Smoothing::Floor(v) => Some(v.unwrap_or(0.1)),
            Smoothing::AddK(v) => Some(v.unwrap_or(1.0)),
            Smoothing::Exp | Smoothing::None => None,
        }
    }

    /// The signature fragment, e.g. `exp` or `floor[0.10]`.
    pub fn signature(self) -> String {
        match self.value() {
            Some(v) => format!("{}[{}]", self.name(), crate::config::py_float(v, 2)),
            None => self.name().to_string(),
        }
    }

    /// Builds a smoothing from sacrebleu's method name and optional value.
    pub fn from_name(name: &str, value: Option<f64>) -> Result<Self, MetricsError> {
        Ok(match name {
            "exp" => Smoothing::Exp,
            "floor" => Smoothing::Floor(value),
            "add-k" => Smoothing::AddK(value),
            "none" => Smoothing::None,
            other => {
                return Err(MetricsError::UnknownOption {
                    field: "smooth_method",
                    value: other.to_string(),
                    allowed: "exp, floor, add-k, none",
                });
            }
        })
    }
}

impl FromStr for Smoothing {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Smoothing::from_name(s, None)
    }
}

/// BLEU configuration, mirroring `sacrebleu.metrics.BLEU(...)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bleu {
    /// Tokenizer (default `13a`).
    pub tokenizer: Tokenizer,
    /// Lowercase hypotheses and references first.
    pub lowercase: bool,
    /// Smoothing (default `exp`).
    pub smoothing: Smoothing,
    /// Drop n-gram orders the hypothesis has no n-grams for (sacrebleu `effective_order`).
    pub effective_order: bool,
    /// Maximum n-gram order (default 4).
    pub max_ngram_order: usize,
}

impl Default for Bleu {
    fn default() -> Self {
        Bleu {
            tokenizer: Tokenizer::default(),
            lowercase: false,
            smoothing: Smoothing::Exp,
            effective_order: false,
            max_ngram_order: 4,
        }
    }
}

/// A BLEU result with sacrebleu's fields, full-precision floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BleuScore {
    /// The score in [0, 100].
    pub score: f64,
    /// Matched n-grams per order (before any add-k smoothing; sacrebleu shows them after).
    pub counts: Vec<u64>,
    /// Hypothesis n-grams per order (before any add-k smoothing).
    pub totals: Vec<u64>,
    /// Precisions per order in percent, as used for the score.
    pub precisions: Vec<f64>,
    /// Brevity penalty.
    pub bp: f64,
    /// Hypothesis length in tokens.
    pub sys_len: u64,
    /// Effective (closest) reference length in tokens.
    pub ref_len: u64,
    /// `sys_len / ref_len` (0 when `ref_len` is 0).
    pub ratio: f64,
    /// sacrebleu signature, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
    pub signature: String,
}

impl BleuScore {
    /// `str(score)` in sacrebleu: `BLEU = 25.12 56.3/31.0/19.1/12.2 (BP = 1.000 ratio = …)`.
    pub fn formatted(&self) -> String {
        format!("BLEU = {:.2} {}", self.score, self.verbose())
    }

    /// The sacrebleu CLI text line: `BLEU|<signature> = 25.12 56.3/… (BP = …)`.
    pub fn line(&self) -> String {
        format!(
            "BLEU|{} = {:.2} {}",
            self.signature,
            self.score,
            self.verbose()
        )
    }

    /// The part after the score: precisions, brevity penalty, ratio and lengths.
    pub fn verbose(&self) -> String {
        let prec: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        format!(
            "{} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            prec.join("/"),
            self.bp,
            self.ratio,
            self.sys_len,
            self.ref_len
        )
    }
}

/// Per-segment sufficient statistics: `[hyp_len, ref_len, correct_1..N, total_1..N]`.
pub type BleuStats = Vec<u64>;

type NgramCounts<'a> = FxHashMap<&'a [&'a str], u32>;

fn count_ngrams<'a>(toks: &'a [&'a str], max_order: usize, into: &mut NgramCounts<'a>) {
    for n in 1..=max_order {
        if toks.len() < n {
            break;
        }
        for w in toks.windows(n) {
            *into.entry(w).or_insert(0) += 1;
        }
    }
}

/// `_get_closest_ref_len`: smallest |diff|, ties to the shorter reference.
fn closest_ref_len(hyp_len: u64, ref_lens: impl Iterator<Item = u64>) -> u64 {
    let mut closest: Option<(u64, u64)> = None;
    for rl in ref_lens {
        let diff = hyp_len.abs_diff(rl);
        closest = match closest {
            None => Some((diff, rl)),
            Some((d, l)) if diff < d || (diff == d && rl < l) => Some((diff, rl)),
            keep => keep,
        };
    }
    closest.map_or(0, |(_, l)| l)
}

impl Bleu {
    /// sacrebleu's signature for this configuration and `nrefs` references.
    pub fn signature(&self, nrefs: usize) -> String {
        format!(
            "nrefs:{nrefs}|case:{}|eff:{}|tok:{}|smooth:{}|version:{SACREBLEU_VERSION}",
            if self.lowercase { "lc" } else { "mixed" },
            if self.effective_order { "yes" } else { "no" },
            self.tokenizer.signature(),
            self.smoothing.signature()
        )
    }

    /// `_preprocess_segment`: optional lowercasing, `rstrip`, tokenization.
    pub fn preprocess(&self, sent: &str) -> String {
        if self.lowercase {
            self.tokenizer.tokenize(py_rstrip(&sent.to_lowercase()))
        } else {
            self.tokenizer.tokenize(py_rstrip(sent))
        }
    }

    /// Statistics of one segment against its references (`_compute_segment_statistics`).
    pub fn segment_stats(&self, hyp: &str, refs: &[&str]) -> BleuStats {
        if self.max_ngram_order <= MAX_PACKED_TOKENS {
            self.segment_stats_packed(hyp, refs)
        } else {
            self.segment_stats_generic(hyp, refs)
        }
    }

    /// Packed-key path (orders ≤ 4): interned tokens, sorted n-gram keys, merge counting.
    fn segment_stats_packed(&self, hyp: &str, refs: &[&str]) -> BleuStats {
        let n_max = self.max_ngram_order;
        let ref_strs: Vec<String> = refs.iter().map(|r| self.preprocess(r)).collect();
        let ref_toks: Vec<Vec<&str>> = ref_strs.iter().map(|r| tokens(r)).collect();
        let hyp_str = self.preprocess(hyp);
        let hyp_toks = tokens(&hyp_str);
        let mut interner = Interner::default();
        let h_ids = interner.ids(hyp_toks.iter().copied());
        let r_ids: Vec<Vec<u32>> = ref_toks
            .iter()
            .map(|t| interner.ids(t.iter().copied()))
            .collect();
        let (correct, total) = bleu_counts(&h_ids, &r_ids, n_max, interner.len());
        let hyp_len = hyp_toks.len() as u64;
        let mut stats = Vec::with_capacity(2 + 2 * n_max);
        stats.push(hyp_len);
        stats.push(closest_ref_len(
            hyp_len,
            ref_toks.iter().map(|t| t.len() as u64),
        ));
        stats.extend(correct);
        stats.extend(total);
        stats
    }

    /// The direct port with hash maps of token-slice n-grams (any order).
    fn segment_stats_generic(&self, hyp: &str, refs: &[&str]) -> BleuStats {
        let n_max = self.max_ngram_order;
        let ref_strs: Vec<String> = refs.iter().map(|r| self.preprocess(r)).collect();
        let ref_toks: Vec<Vec<&str>> = ref_strs.iter().map(|r| tokens(r)).collect();
        let mut ref_ngrams: NgramCounts = FxHashMap::default();
        let mut one: NgramCounts = FxHashMap::default();
        for (k, rt) in ref_toks.iter().enumerate() {
            if k == 0 {
                count_ngrams(rt, n_max, &mut ref_ngrams);
            } else {
                one.clear();
                count_ngrams(rt, n_max, &mut one);
                for (g, &c) in &one {
                    let e = ref_ngrams.entry(g).or_insert(0);
                    *e = (*e).max(c);
                }
            }
        }
        let hyp_str = self.preprocess(hyp);
        let hyp_toks = tokens(&hyp_str);
        let hyp_len = hyp_toks.len() as u64;
        let ref_len = closest_ref_len(hyp_len, ref_toks.iter().map(|t| t.len() as u64));
        let mut hyp_ngrams: NgramCounts = FxHashMap::default();
        count_ngrams(&hyp_toks, n_max, &mut hyp_ngrams);
        let mut stats = vec![0u64; 2 + 2 * n_max];
        stats[0] = hyp_len;
        stats[1] = ref_len;
        for (g, &c) in &hyp_ngrams {
            let n = g.len() - 1;
            stats[2 + n_max + n] += u64::from(c);
            if let Some(&r) = ref_ngrams.get(g) {
                stats[2 + n] += u64::from(c.min(r));
            }
        }
        stats
    }

    /// `compute_bleu` from summed statistics.
    pub fn score_from_stats(&self, stats: &[u64], nrefs: usize) -> BleuScore {
        let n_max = self.max_ngram_order;
        let sys_len = stats[0];
        let ref_len = stats[1];
        let counts = stats[2..2 + n_max].to_vec();
        let totals = stats[2 + n_max..2 + 2 * n_max].to_vec();
        let mut bp = 1.0f64;
        if sys_len < ref_len {
            bp = if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            };
        }
        let ratio = if ref_len > 0 {
            sys_len as f64 / ref_len as f64
        } else {
            0.0
        };
        let mut precisions = vec![0.0f64; n_max];
        let mut result = BleuScore {
            score: 0.0,
            counts: counts.clone(),
            totals: totals.clone(),
            precisions: precisions.clone(),
            bp,
            sys_len,
            ref_len,
            ratio,
            signature: self.signature(nrefs),
        };
        // Early stop if there are no matches (sacrebleu #141).
        if counts.iter().all(|&c| c == 0) {
            return result;
        }
        let smooth_value = self.smoothing.value();
        let mut correct: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let mut total: Vec<f64> = totals.iter().map(|&c| c as f64).collect();
        let mut smooth_mteval = 1.0f64;
        let mut eff_order = n_max;
        for n in 1..=n_max {
            if let Smoothing::AddK(_) = self.smoothing
                && n > 1
            {
                let k = smooth_value.unwrap_or(1.0);
                correct[n - 1] += k;
                total[n - 1] += k;
            }
            if total[n - 1] == 0.0 {
                break;
            }
            if self.effective_order {
                eff_order = n;
            }
            if correct[n - 1] == 0.0 {
                match self.smoothing {
                    Smoothing::Exp => {
                        smooth_mteval *= 2.0;
                        precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1]);
                    }
                    Smoothing::Floor(_) => {
                        precisions[n - 1] = 100.0 * smooth_value.unwrap_or(0.1) / total[n - 1];
                    }
                    Smoothing::AddK(_) | Smoothing::None => {}
                }
            } else {
                precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
            }
        }
        // `my_log` floors log(0) at -9999999999; Python's `sum` adds left to right from 0.
        let mut sum = 0.0f64;
        for &p in &precisions[..eff_order] {
            sum += if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
        }
        result.score = bp * (sum / eff_order as f64).exp();
        result.precisions = precisions;
        result
    }

    /// Per-segment statistics of a corpus; `refs` holds one stream per reference, each as long
    /// as `hyps`. Parallel over segments, output in segment order.
    pub fn corpus_stats(
        &self,
        hyps: &[String],
        refs: &[Vec<String>],
    ) -> Result<Vec<BleuStats>, MetricsError> {
        check_streams(hyps, refs)?;
        Ok((0..hyps.len())
            .into_par_iter()
            .with_min_len(64)
            .map(|i| {
                let rs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
                self.segment_stats(&hyps[i], &rs)
            })
            .collect())
    }

    /// Corpus BLEU (`BLEU.corpus_score`).
    pub fn corpus_score(
        &self,
        hyps: &[String],
        refs: &[Vec<String>],
    ) -> Result<BleuScore, MetricsError> {
        let stats = self.corpus_stats(hyps, refs)?;
        let mut sum = vec![0u64; 2 + 2 * self.max_ngram_order];
        for s in &stats {
            for (a, b) in sum.iter_mut().zip(s) {
                *a += b;
            }
        }
        Ok(self.score_from_stats(&sum, refs.len()))
    }

    /// Sentence BLEU (`BLEU.sentence_score`); use `effective_order: true` as
    /// `sacrebleu.sentence_bleu` does.
    pub fn sentence_score(&self, hyp: &str, refs: &[&str]) -> BleuScore {
        let stats = self.segment_stats(hyp, refs);
        self.score_from_stats(&stats, refs.len())
    }

    /// A configuration for sentence-level scoring: this one with `effective_order` on.
    pub fn for_sentences(&self) -> Bleu {
        Bleu {
            effective_order: true,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_path_equals_generic_port() {
        let hyp = "The cat sat on the mat , the cat sat .";
        let refs = [
            "the cat sat on a mat .",
            "The cat is on the mat , the cat sat",
            "",
        ];
        for b in [
            Bleu::default(),
            Bleu {
                lowercase: true,
                ..Bleu::default()
            },
            Bleu {
                tokenizer: Tokenizer::Char,
                ..Bleu::default()
            },
        ] {
            for k in 1..=3 {
                assert_eq!(
                    b.segment_stats_packed(hyp, &refs[..k]),
                    b.segment_stats_generic(hyp, &refs[..k])
                );
                assert_eq!(
                    b.segment_stats_packed("", &refs[..k]),
                    b.segment_stats_generic("", &refs[..k])
                );
            }
        }
    }
}
