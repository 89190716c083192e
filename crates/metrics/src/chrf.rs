//! chrF and chrF++ exactly as sacrebleu 2.6.0 computes them (`sacrebleu.metrics.chrf`).

use std::borrow::Cow;
use std::hash::Hash;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::packed::{CharInterner, Interner, MAX_PACKED_CHARS, MAX_PACKED_TOKENS, chrf_triples};
use crate::text::{is_py_space, py_split};
use crate::{MetricsError, SACREBLEU_VERSION, check_streams};

/// chrF configuration, mirroring `sacrebleu.metrics.CHRF(...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chrf {
    /// Character n-gram order (default 6).
    pub char_order: usize,
    /// Word n-gram order: 0 for chrF, 2 for chrF++.
    pub word_order: usize,
    /// Recall weight (default 2).
    pub beta: u32,
    /// Lowercase hypotheses and references first.
    pub lowercase: bool,
    /// Keep whitespace inside character n-grams (default false).
    pub whitespace: bool,
    /// chrF++.py-style epsilon smoothing instead of effective order (default false).
    pub eps_smoothing: bool,
}

impl Default for Chrf {
    fn default() -> Self {
        Chrf::chrf()
    }
}

/// A chrF/chrF++ result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChrfScore {
    /// The score in [0, 100].
    pub score: f64,
    /// sacrebleu's metric name: `chrF2`, `chrF2++`.
    pub name: String,
    /// sacrebleu signature, e.g. `nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0`.
    pub signature: String,
}

impl ChrfScore {
    /// `str(score)` in sacrebleu: `chrF2++ = 45.67`.
    pub fn formatted(&self) -> String {
        format!("{} = {:.2}", self.name, self.score)
    }

    /// The sacrebleu CLI text line: `chrF2++|<signature> = 45.67`.
    pub fn line(&self) -> String {
        format!("{}|{} = {:.2}", self.name, self.signature, self.score)
    }
}

/// Per-segment statistics: `[hyp, ref, match]` for each char order then each word order.
pub type ChrfStats = Vec<u64>;

/// sacrebleu's `string.punctuation` set for chrF++'s word splitting.
fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// `CHRF._remove_punctuation`.
fn remove_punctuation(sent: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for w in py_split(sent) {
        let mut chars = w.char_indices();
        let (_, first) = chars.next().expect("py_split yields non-empty words");
        if chars.next().is_none() {
            out.push(w);
            continue;
        }
        let (last_i, last) = w.char_indices().next_back().expect("non-empty");
        if is_punct(last) {
            out.push(&w[..last_i]);
            out.push(&w[last_i..]);
        } else if is_punct(first) {
            let k = first.len_utf8();
            out.push(&w[..k]);
            out.push(&w[k..]);
        } else {
            out.push(w);
        }
    }
    out
}

/// Counts of every n-gram for n = 1..=order, one map per order.
struct Ngrams<K> {
    per_order: Vec<FxHashMap<K, u32>>,
}

/// The line whose characters chrF counts, with the byte offset of every character boundary.
fn char_ngrams(line: &str, whitespace: bool) -> (String, Vec<usize>) {
    let s: String = if whitespace {
        line.to_string()
    } else {
        line.chars().filter(|&c| !is_py_space(c)).collect()
    };
    let mut bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    bounds.push(s.len());
    (s, bounds)
}

fn count_char<'a>(s: &'a str, bounds: &[usize], order: usize) -> Ngrams<&'a str> {
    let len = bounds.len() - 1;
    let mut per_order = Vec::with_capacity(order);
    for n in 1..=order {
        let mut m: FxHashMap<&str, u32> = FxHashMap::default();
        if len >= n {
            m.reserve(len + 1 - n);
            for i in 0..=(len - n) {
                *m.entry(&s[bounds[i]..bounds[i + n]]).or_insert(0) += 1;
            }
        }
        per_order.push(m);
    }
    Ngrams { per_order }
}

fn count_words<'a>(words: &'a [&'a str], order: usize) -> Ngrams<&'a [&'a str]> {
    let mut per_order = Vec::with_capacity(order);
    for n in 1..=order {
        let mut m: FxHashMap<&[&str], u32> = FxHashMap::default();
        if words.len() >= n {
            for w in words.windows(n) {
                *m.entry(w).or_insert(0) += 1;
            }
        }
        per_order.push(m);
    }
    Ngrams { per_order }
}

/// `_get_match_statistics` for one order.
fn match_stats<K: Hash + Eq>(h: &FxHashMap<K, u32>, r: &FxHashMap<K, u32>, out: &mut Vec<u64>) {
    let mut matched = 0u64;
    let mut hyp_count = 0u64;
    for (g, &c) in h {
        hyp_count += u64::from(c);
        if let Some(&rc) = r.get(g) {
            matched += u64::from(c.min(rc));
        }
    }
    let ref_count: u64 = r.values().map(|&c| u64::from(c)).sum();
    out.push(if r.is_empty() { 0 } else { hyp_count });
    out.push(ref_count);
    out.push(matched);
}

impl Chrf {
    /// chrF (char order 6, no word n-grams, beta 2), sacrebleu's default.
    #[allow(clippy::self_named_constructors)] // `Chrf::chrf()` / `Chrf::chrf_pp()` read as the metric names
    pub fn chrf() -> Chrf {
        Chrf {
            char_order: 6,
            word_order: 0,
            beta: 2,
            lowercase: false,
            whitespace: false,
            eps_smoothing: false,
        }
    }

    /// chrF++ (char order 6, word order 2, beta 2).
    pub fn chrf_pp() -> Chrf {
        Chrf {
            word_order: 2,
            ..Chrf::chrf()
        }
    }

    /// sacrebleu's metric name (`chrF2`, `chrF2++`).
    pub fn name(&self) -> String {
        format!("chrF{}{}", self.beta, "+".repeat(self.word_order))
    }

    /// sacrebleu's signature for `nrefs` references.
    pub fn signature(&self, nrefs: usize) -> String {
        format!(
            "nrefs:{nrefs}|case:{}|eff:{}|nc:{}|nw:{}|space:{}|version:{SACREBLEU_VERSION}",
            if self.lowercase { "lc" } else { "mixed" },
            if self.eps_smoothing { "no" } else { "yes" },
            self.char_order,
            self.word_order,
            if self.whitespace { "yes" } else { "no" }
        )
    }

    /// `_compute_f_score` over flattened `[hyp, ref, match]` triples.
    pub fn f_score(&self, stats: &[u64]) -> f64 {
        let eps = 1e-16;
        let factor = f64::from(self.beta * self.beta);
        let order = self.char_order + self.word_order;
        let mut score = 0.0f64;
        let mut effective_order = 0usize;
        let (mut avg_prec, mut avg_rec) = (0.0f64, 0.0f64);
        for i in 0..order {
            let (n_hyp, n_ref, n_match) = (stats[3 * i], stats[3 * i + 1], stats[3 * i + 2]);
            let prec = if n_hyp > 0 {
                n_match as f64 / n_hyp as f64
            } else {
                eps
            };
            let rec = if n_ref > 0 {
                n_match as f64 / n_ref as f64
            } else {
                eps
            };
            let denom = factor * prec + rec;
            score += if denom > 0.0 {
                (1.0 + factor) * prec * rec / denom
            } else {
                eps
            };
            if n_hyp > 0 && n_ref > 0 {
                avg_prec += prec;
                avg_rec += rec;
                effective_order += 1;
            }
        }
        if self.eps_smoothing {
            return 100.0 * score / order as f64;
        }
        if effective_order == 0 {
            avg_prec = 0.0;
            avg_rec = 0.0;
        } else {
            avg_prec /= effective_order as f64;
            avg_rec /= effective_order as f64;
        }
        if avg_prec + avg_rec != 0.0 {
            let mut s = (1.0 + factor) * avg_prec * avg_rec;
            s /= (factor * avg_prec) + avg_rec;
            100.0 * s
        } else {
            0.0
        }
    }

    fn prep<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if self.lowercase {
            Cow::Owned(s.to_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    }

    /// Statistics of one segment: those of the reference with the best F score (first wins ties).
    pub fn segment_stats(&self, hyp: &str, refs: &[&str]) -> ChrfStats {
        self.best(self.per_ref_stats(hyp, refs))
    }

    /// Picks the statistics of the reference with the highest F score, the first on ties, as
    /// sacrebleu does.
    fn best(&self, per_ref: Vec<Vec<u64>>) -> ChrfStats {
        let mut best: Vec<u64> = Vec::new();
        let mut best_f = -1.0f64;
        for stats in per_ref {
            let f = self.f_score(&stats);
            if f > best_f {
                best_f = f;
                best = stats;
            }
        }
        best
    }

    /// chrF (this configuration without word n-grams) and chrF++ (this configuration) statistics
    /// of one segment, sharing the character n-gram work.
    pub(crate) fn segment_stats_pair(&self, hyp: &str, refs: &[&str]) -> (ChrfStats, ChrfStats) {
        let per_ref = self.per_ref_stats(hyp, refs);
        let chars_only = Chrf {
            word_order: 0,
            ..self.clone()
        };
        let nc = 3 * self.char_order;
        let c = chars_only.best(per_ref.iter().map(|s| s[..nc].to_vec()).collect());
        (c, self.best(per_ref))
    }

    /// `[hyp, ref, match]` triples of every order against each reference.
    fn per_ref_stats(&self, hyp: &str, refs: &[&str]) -> Vec<Vec<u64>> {
        if self.char_order <= MAX_PACKED_CHARS && self.word_order <= MAX_PACKED_TOKENS {
            self.per_ref_stats_packed(hyp, refs)
        } else {
            self.per_ref_stats_generic(hyp, refs)
        }
    }

    fn chars_of<'a>(&self, s: &'a str) -> impl Iterator<Item = char> + 'a {
        let ws = self.whitespace;
        s.chars().filter(move |&c| ws || !is_py_space(c))
    }

    fn per_ref_stats_packed(&self, hyp: &str, refs: &[&str]) -> Vec<Vec<u64>> {
        let hyp = self.prep(hyp);
        let refs: Vec<Cow<str>> = refs.iter().map(|r| self.prep(r)).collect();
        let mut chars = CharInterner::default();
        let h_chars = chars.ids(self.chars_of(&hyp));
        let r_chars: Vec<Vec<u32>> = refs.iter().map(|r| chars.ids(self.chars_of(r))).collect();
        let char_stats = chrf_triples(&h_chars, &r_chars, self.char_order, chars.len());
        let word_stats = if self.word_order > 0 {
            let mut words = Interner::default();
            let h_words = words.ids(remove_punctuation(&hyp));
            let r_words: Vec<Vec<u32>> = refs
                .iter()
                .map(|r| words.ids(remove_punctuation(r)))
                .collect();
            chrf_triples(&h_words, &r_words, self.word_order, words.len())
        } else {
            vec![Vec::new(); refs.len()]
        };
        char_stats
            .into_iter()
            .zip(word_stats)
            .map(|(c, w)| c.iter().chain(&w).flat_map(|t| t.iter().copied()).collect())
            .collect()
    }

    /// The direct port with hash maps of string n-grams, for orders beyond the packed limits.
    fn per_ref_stats_generic(&self, hyp: &str, refs: &[&str]) -> Vec<Vec<u64>> {
        let hyp = self.prep(hyp);
        let (hs, hb) = char_ngrams(&hyp, self.whitespace);
        let h_chars = count_char(&hs, &hb, self.char_order);
        let h_words_v = if self.word_order > 0 {
            remove_punctuation(&hyp)
        } else {
            Vec::new()
        };
        let h_words = count_words(&h_words_v, self.word_order);
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let r = self.prep(r);
            let (rs, rb) = char_ngrams(&r, self.whitespace);
            let r_chars = count_char(&rs, &rb, self.char_order);
            let r_words_v = if self.word_order > 0 {
                remove_punctuation(&r)
            } else {
                Vec::new()
            };
            let r_words = count_words(&r_words_v, self.word_order);
            let mut stats = Vec::with_capacity(3 * (self.char_order + self.word_order));
            for n in 0..self.char_order {
                match_stats(&h_chars.per_order[n], &r_chars.per_order[n], &mut stats);
            }
            for n in 0..self.word_order {
                match_stats(&h_words.per_order[n], &r_words.per_order[n], &mut stats);
            }
            out.push(stats);
        }
        out
    }

    /// Per-segment statistics of a corpus, in segment order (parallel over segments).
    pub fn corpus_stats(
        &self,
        hyps: &[String],
        refs: &[Vec<String>],
    ) -> Result<Vec<ChrfStats>, MetricsError> {
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

    /// The score from summed statistics.
    pub fn score_from_stats(&self, stats: &[u64], nrefs: usize) -> ChrfScore {
        ChrfScore {
            score: self.f_score(stats),
            name: self.name(),
            signature: self.signature(nrefs),
        }
    }

    /// Corpus chrF (`CHRF.corpus_score`).
    pub fn corpus_score(
        &self,
        hyps: &[String],
        refs: &[Vec<String>],
    ) -> Result<ChrfScore, MetricsError> {
        let stats = self.corpus_stats(hyps, refs)?;
        let mut sum = vec![0u64; 3 * (self.char_order + self.word_order)];
        for s in &stats {
            for (a, b) in sum.iter_mut().zip(s) {
                *a += b;
            }
        }
        Ok(self.score_from_stats(&sum, refs.len()))
    }

    /// Sentence chrF (`CHRF.sentence_score`).
    pub fn sentence_score(&self, hyp: &str, refs: &[&str]) -> ChrfScore {
        let stats = self.segment_stats(hyp, refs);
        self.score_from_stats(&stats, refs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_path_equals_generic_port() {
        let hyp = "Ein (kleiner) Test, ein Test... mit \u{1c}Leerzeichen und 日本語 «Zitaten»";
        let refs = [
            "ein kleiner Test mit Leerzeichen, und 日本 «Zitat»",
            "",
            "Test test test.",
        ];
        for c in [
            Chrf::chrf(),
            Chrf::chrf_pp(),
            Chrf {
                lowercase: true,
                whitespace: true,
                ..Chrf::chrf_pp()
            },
        ] {
            assert_eq!(
                c.per_ref_stats_packed(hyp, &refs),
                c.per_ref_stats_generic(hyp, &refs)
            );
            assert_eq!(
                c.per_ref_stats_packed("", &refs),
                c.per_ref_stats_generic("", &refs)
            );
        }
    }

    #[test]
    fn punctuation_split_like_sacrebleu() {
        assert_eq!(
            remove_punctuation("(hi) a, \"b c."),
            vec!["(hi", ")", "a", ",", "\"", "b", "c", "."]
        );
    }
}
