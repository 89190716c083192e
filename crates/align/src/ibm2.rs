//! IBM Model 2 with fast_align's diagonal reparameterization, trained with EM or mean-field VB.
//!
//! # Choices (read this before comparing with fast_align)
//! - Defaults follow fast_align's recommended invocation `-d -o -v` with `-I 5`: diagonal prior with λ₀ = 4,
//!   p0 = 0.08 (never re-estimated), VB M-step with α = 0.01, 4 E+M passes and 1 Viterbi pass, with one exception:
//!   in the default [`Model::Fixed`] mode tension optimisation is OFF (λ stays 4), see the measured consequence
//!   below; `optimize_tension = true` turns it on. In [`Model::FastAlign`] mode it is on by default (`-o`). As
//!   upstream, t(f|e) is the constant 1e-9 until the first M-step, so the first posteriors are the prior itself.
//! - [`Model::Fixed`] (default) corrects upstream's two tension bugs: the empirical feature uses the 1-based target
//!   position (upstream uses the 0-based one) and the model expectation E\[h\] = dlnZ/dλ is normalised with Z(j, m, n)
//!   (upstream uses Z(j, n, m)). It also weights each token's model expectation by its non-NULL posterior mass
//!   1 − q(0), which is the exact gradient of the expected complete log-likelihood in λ (upstream weights every
//!   token by 1). The step rule (8 steps of λ += 20·(emp − model)/T, clamped to [0.1, 14], after E-steps 2..I−1) is
//!   upstream's. [`Model::FastAlign`] keeps both bugs (and the unweighted expectation) to reproduce published
//!   pipelines: it matches single-threaded fast_align's λ trajectory and 99.999% of its links on be-en.
//! - Measured consequence (AER protocol, gdfa): the fixed maths drive λ towards its maximum-likelihood value
//!   (≈ 12–14 on en-fr/ro-en), which scores 23.0 / 48.5 AER against fast_align's 22.5 / 48.3; without tension
//!   optimisation (λ = 4) both modes score 20.7 / 47.6. Maximum likelihood in λ is not what minimises AER, so the
//!   default is `fixed` without tension optimisation (20.7 / 47.6, better than fast_align on both sets).
//! - In both modes a pair with an empty side or a side longer than `max_sentence_len` is skipped and reported in
//!   [`AlignStats::skipped`] with its index; it gets an empty alignment. Upstream instead poisons λ with NaN and loses
//!   the whole corpus (notes §7). λ is also kept finite: a non-finite gradient step leaves λ unchanged.
//! - Tokens are opaque strings: `|||`, `<eps>` or a tab inside a token are ordinary words here (upstream treats
//!   them as separators / the NULL word); [`AlignStats::suspicious_tokens`] counts them so a caller can warn.
//! - Determinism: the t-table is a CSR array over interned ids (vocabularies numbered in first-occurrence order);
//!   the E-step runs on fixed-size sentence chunks in parallel and writes posteriors into a flat buffer, counts are
//!   then accumulated in corpus order, and every reduction is summed in a fixed order. The output is therefore
//!   byte-identical for any rayon thread count, and counts are summed in the same order as single-threaded
//!   fast_align (only the per-row normalisation order differs from its hash-map order).
//! - Memory: the corpus is interned into flat id buffers ([`Corpus`]); nothing is stored per (i, j) cell for the
//!   corpus. Work chunks are planned by cells (at most 2^18, a longer sentence split into runs of generated
//!   positions), the table index and posterior of each cell are held for one batch of at most 2^19 cells, and the
//!   diagonal prior is cached for at most 2^18 shape cells: working memory is the translation table (one entry per
//!   co-occurring word pair, built from an inverted index) plus a constant, whatever the sentence lengths. Measured
//!   on be-en 67k (forward, reverse and gdfa in one process, 2 threads): 68 MiB peak for the align bench, 75.3 MB for
//!   `alinea align --symmetrize gdfa`; fast_align takes 78 MB for one direction.

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::diag;
use crate::error::AlignError;
use crate::sentences::Sentences;

/// Which tension maths to use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// fast_align's model with its tension bugs fixed (correct dE\[h\]/dλ, 1-based feature). Default.
    #[default]
    Fixed,
    /// Upstream behaviour bug for bug (0-based empirical feature, swapped Z in dlnZ/dλ), for comparisons.
    FastAlign,
}

/// Parameters of one IBM Model 2 run. Defaults = `fast_align -d -v` (5 passes) with the fixed maths; with
/// `model = "fast_align"` the defaults are exactly `fast_align -d -o -v`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Ibm2Params {
    /// Tension maths: `fixed` (default) or `fast_align`.
    pub model: Model,
    /// Number of passes (`-I`, default 5): `iterations − 1` E+M passes then one Viterbi pass. At least 1.
    pub iterations: u32,
    /// Diagonal prior (`-d`, default true); without it the prior is uniform (IBM Model 1).
    pub favor_diagonal: bool,
    /// Re-estimate the tension λ after E-steps 2.. (`-o`); only with `favor_diagonal`. Unset (the default) means
    /// the mode's default: off for [`Model::Fixed`] (λ stays at `diagonal_tension`, see the module docs for why),
    /// on for [`Model::FastAlign`] (upstream's recommended `-d -o -v`). See [`Ibm2Params::optimizes_tension`].
    pub optimize_tension: Option<bool>,
    /// Mean-field VB M-step with a symmetric Dirichlet(α) prior (`-v`, default true); EM otherwise.
    pub variational_bayes: bool,
    /// Dirichlet α for VB (`-a`, default 0.01), > 0.
    pub alpha: f64,
    /// Starting tension λ (`-T`, default 4.0), > 0.
    pub diagonal_tension: f64,
    /// Null-alignment probability p0 (`-q`, default 0.08), in [0, 1); used with `favor_diagonal`.
    pub p0: f64,
    /// No NULL word (`-N`, default false).
    pub no_null_word: bool,
    /// Model P(src | tgt) instead of P(tgt | src) (`-r`, default false). Links stay in src-tgt orientation.
    pub reverse: bool,
    /// Pairs with a side longer than this many tokens are skipped and counted (default 1000; 0 = no limit other
    /// than IBM Model 2's own cap of 65,535 tokens per side, see [`length_limit`]).
    pub max_sentence_len: usize,
    /// Keep the dense final posterior matrix of every sentence (default false; needed for posterior-scored pairs
    /// on non-Viterbi links).
    pub keep_posteriors: bool,
}

impl Default for Ibm2Params {
    fn default() -> Self {
        Self {
            model: Model::Fixed,
            iterations: 5,
            favor_diagonal: true,
            optimize_tension: None,
            variational_bayes: true,
            alpha: 0.01,
            diagonal_tension: 4.0,
            p0: 0.08,
            no_null_word: false,
            reverse: false,
            max_sentence_len: 1000,
            keep_posteriors: false,
        }
    }
}

impl Ibm2Params {
    /// Whether λ is re-estimated: `optimize_tension` when set, else true for [`Model::FastAlign`] and false for
    /// [`Model::Fixed`].
    pub fn optimizes_tension(&self) -> bool {
        self.optimize_tension
            .unwrap_or(self.model == Model::FastAlign)
    }

    /// Checks every field's range (the alignment entry points call it too).
    pub fn validate(&self) -> Result<(), AlignError> {
        let bad = |field, reason: &str| {
            Err(AlignError::InvalidParam {
                field,
                reason: reason.to_string(),
            })
        };
        if self.iterations == 0 {
            return bad("iterations", "must be at least 1");
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return bad("alpha", "must be a finite number > 0");
        }
        if !(self.diagonal_tension > 0.0 && self.diagonal_tension.is_finite()) {
            return bad("diagonal_tension", "must be a finite number > 0");
        }
        if !(0.0..1.0).contains(&self.p0) {
            return bad("p0", "must be in [0, 1)");
        }
        Ok(())
    }
}

/// Why a sentence pair was not aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The source side has no token.
    EmptySource,
    /// The target side has no token.
    EmptyTarget,
    /// A side has more than `max_sentence_len` tokens.
    TooLong,
}

/// One skipped sentence pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// 0-based index of the pair in the input.
    pub index: usize,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Diagnostics of one pass (as fast_align prints them on stderr).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationLog {
    /// Natural-log likelihood of the generated side.
    pub log_likelihood: f64,
    /// Cross entropy in bits per generated token.
    pub cross_entropy: f64,
    /// Posterior mass on NULL per generated token (0 in the Viterbi pass).
    pub posterior_p0: f64,
    /// Empirical feature per generated token (0 in the Viterbi pass).
    pub posterior_feat: f64,
    /// Tension after this pass's update.
    pub tension: f64,
}

/// Counts and diagnostics of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AlignStats {
    /// Input pairs.
    pub sentences: usize,
    /// Pairs trained on and aligned.
    pub aligned: usize,
    /// Skipped pairs, in input order.
    pub skipped: Vec<Skipped>,
    /// Tokens equal to `|||` or `<eps>`, or containing whitespace: special to fast_align, ordinary words here.
    pub suspicious_tokens: usize,
    /// Distinct conditioning-side words (NULL excluded).
    pub vocab_conditioning: usize,
    /// Distinct generated-side words.
    pub vocab_generated: usize,
    /// Cells of the sparse translation table.
    pub ttable_cells: usize,
    /// Final tension λ.
    pub final_tension: f64,
    /// mean(|generated| / |conditioning|) (fast_align's length multiplier).
    pub mean_length_ratio: f64,
    /// One entry per pass.
    pub iterations: Vec<IterationLog>,
}

impl AlignStats {
    /// Number of pairs skipped for the given reason.
    pub fn count(&self, reason: SkipReason) -> usize {
        self.skipped.iter().filter(|s| s.reason == reason).count()
    }
}

/// The alignment of one sentence pair.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SentenceAlignment {
    /// Links (src index, tgt index), 0-based, in fast_align's order (increasing generated position).
    pub links: Vec<(u32, u32)>,
    /// Posterior q(a = link) of each link under the final parameters.
    pub posteriors: Vec<f32>,
    /// Translation probability t(generated | conditioning) of each link (VB values do not sum to 1).
    pub ttable: Vec<f32>,
}

/// Dense posterior matrix of one pair in src-tgt orientation: `p[i * n_tgt + j]` = q(src i ↔ tgt j).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Posteriors {
    /// Source length.
    pub n_src: u32,
    /// Target length.
    pub n_tgt: u32,
    /// Row-major values (empty for a skipped pair).
    pub p: Vec<f32>,
}

impl Posteriors {
    /// q(src i ↔ tgt j), 0 outside the matrix.
    pub fn get(&self, i: u32, j: u32) -> f32 {
        if i < self.n_src && j < self.n_tgt {
            self.p[(i * self.n_tgt + j) as usize]
        } else {
            0.0
        }
    }
}

/// Interned vocabulary (ids in first-occurrence order).
#[derive(Debug, Default, Clone)]
pub(crate) struct Vocab {
    pub(crate) index: FxHashMap<Box<str>, u32>,
}

impl Vocab {
    /// The words by id: `words()[id]` is the word interned as `id` (index 0, NULL's id, is empty).
    pub(crate) fn words(&self) -> Vec<&str> {
        let mut words = vec![""; self.index.len() + 1];
        for (word, &id) in &self.index {
            words[id as usize] = word;
        }
        words
    }
}

/// The trained translation table of one direction, for scoring arbitrary word pairs.
#[derive(Debug)]
pub struct TranslationTable {
    cond: Arc<Vocab>,
    gen_: Arc<Vocab>,
    pub(crate) row_start: Vec<usize>,
    cols: Vec<u32>,
    pub(crate) probs: Vec<f64>,
}

/// Deep copy of a table (used when an `Arc` is still shared).
pub(crate) fn clone_table(t: &TranslationTable) -> TranslationTable {
    TranslationTable {
        cond: Arc::clone(&t.cond),
        gen_: Arc::clone(&t.gen_),
        row_start: t.row_start.clone(),
        cols: t.cols.clone(),
        probs: t.probs.clone(),
    }
}

impl TranslationTable {
    pub(crate) fn from_parts(
        cond: Arc<Vocab>,
        gen_: Arc<Vocab>,
        row_start: Vec<usize>,
        cols: Vec<u32>,
        probs: Vec<f64>,
    ) -> Self {
        TranslationTable {
            cond,
            gen_,
            row_start,
            cols,
            probs,
        }
    }

    /// Stored cells.
    pub(crate) fn cells(&self) -> usize {
        self.cols.len()
    }

    /// t(f | e) by interned ids (e = 0 is NULL).
    pub(crate) fn prob_ids(&self, e: u32, f: u32) -> Option<f64> {
        let (a, b) = (self.row_start[e as usize], self.row_start[e as usize + 1]);
        self.cols[a..b]
            .binary_search(&f)
            .ok()
            .map(|k| self.probs[a + k])
    }

    /// t(generated | conditioning) for two words; `None` for an unseen word or a pair that never co-occurred.
    /// Pass `None` as `conditioning` for the NULL word.
    pub fn prob(&self, conditioning: Option<&str>, generated: &str) -> Option<f64> {
        let e = match conditioning {
            None => 0,
            Some(w) => *self.cond.index.get(w)?,
        } as usize;
        let f = *self.gen_.index.get(generated)?;
        let row = &self.cols[self.row_start[e]..self.row_start[e + 1]];
        row.binary_search(&f)
            .ok()
            .map(|k| self.probs[self.row_start[e] + k])
    }
}

/// Result of one direction.
#[derive(Debug)]
pub struct Alignment {
    /// True when this is P(src | tgt).
    pub reverse: bool,
    /// One entry per input pair (empty for skipped pairs).
    pub sentences: Sentences,
    /// Dense posteriors per pair when `keep_posteriors` was set.
    pub posteriors: Option<Vec<Posteriors>>,
    /// Counts and diagnostics.
    pub stats: AlignStats,
    /// Final translation table (shared, cheap to clone).
    pub ttable: Arc<TranslationTable>,
}

impl Alignment {
    /// Frees the translation table (with its CSR index, most of a finished run's memory) when only the links and
    /// their scores are needed, e.g. before the other direction is trained; `ttable.prob` is `None` afterwards.
    pub fn release_table(&mut self) {
        self.ttable = Arc::new(TranslationTable {
            cond: Arc::default(),
            gen_: Arc::default(),
            row_start: vec![0],
            cols: Vec::new(),
            probs: Vec::new(),
        });
    }

    /// Links of every pair, as needed by [`crate::symmetrize()`] and the Pharaoh writer.
    pub fn links(&self) -> Vec<Vec<(u32, u32)>> {
        self.sentences.iter().map(|s| s.links.to_vec()).collect()
    }
}

/// A tokenized parallel corpus interned into two flat id buffers (4 bytes per token, one offset per line): the
/// representation every model trains on, shared by both directions. Build it with [`Corpus::from_lines`] to
/// tokenize and intern line by line without ever holding one string per token.
#[derive(Debug)]
pub struct Corpus {
    /// Token ids of each side, pairs back to back: pair k's source is `src_ids[src_off[k]..src_off[k + 1]]`.
    /// A skipped pair keeps no token (an empty range); a usable pair has both sides non-empty. Src ids are in
    /// `src_vocab`, tgt ids in `tgt_vocab`; 0 is free for NULL in both numbering schemes, so words start at 1.
    src_ids: Vec<u32>,
    tgt_ids: Vec<u32>,
    src_off: Vec<usize>,
    tgt_off: Vec<usize>,
    pub(crate) src_vocab: Arc<Vocab>,
    pub(crate) tgt_vocab: Arc<Vocab>,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) suspicious: usize,
    /// The longest side kept (see [`length_limit`]).
    limit: usize,
}

fn is_suspicious(tok: &str) -> bool {
    tok == "|||" || tok == "<eps>" || tok.chars().any(char::is_whitespace)
}

/// One side of the corpus while it is interned: every line's ids, back to back.
#[derive(Default)]
struct Side {
    vocab: Vocab,
    ids: Vec<u32>,
    off: Vec<usize>,
    suspicious: usize,
}

impl Side {
    /// Interns the tokens of `lines` lines in order; `line_tokens(k, push)` calls `push` once per token of line k.
    /// Ids are numbered in first-occurrence order.
    fn intern<F>(lines: usize, mut line_tokens: F) -> Result<Side, AlignError>
    where
        F: FnMut(usize, &mut dyn FnMut(&str)),
    {
        let mut s = Side {
            off: Vec::with_capacity(lines + 1),
            ..Default::default()
        };
        s.off.push(0);
        let mut full = false;
        for k in 0..lines {
            line_tokens(k, &mut |t: &str| {
                if is_suspicious(t) {
                    s.suspicious += 1;
                }
                let id = match s.vocab.index.get(t) {
                    Some(&id) => id,
                    None => {
                        let Ok(id) = u32::try_from(s.vocab.index.len() + 1) else {
                            full = true;
                            return;
                        };
                        s.vocab.index.insert(t.into(), id);
                        id
                    }
                };
                s.ids.push(id);
            });
            if full {
                return Err(AlignError::TooLarge {
                    what: "vocabulary size",
                });
            }
            s.off.push(s.ids.len());
        }
        Ok(s)
    }

    fn len_of(&self, k: usize) -> usize {
        self.off[k + 1] - self.off[k]
    }

    /// Drops the tokens of the lines not kept and renumbers the words in first-occurrence order over the kept
    /// lines, forgetting words seen only in dropped ones: the result is what interning the kept lines alone gives.
    fn retain(&mut self, keep: &[bool]) {
        let mut ids = Vec::with_capacity(self.ids.len());
        let mut off = Vec::with_capacity(self.off.len());
        off.push(0);
        let mut new_id = vec![0u32; self.vocab.index.len() + 1];
        let mut next = 0u32;
        for (k, &kp) in keep.iter().enumerate() {
            if kp {
                for &id in &self.ids[self.off[k]..self.off[k + 1]] {
                    if new_id[id as usize] == 0 {
                        next += 1;
                        new_id[id as usize] = next;
                    }
                    ids.push(new_id[id as usize]);
                }
            }
            off.push(ids.len());
        }
        self.vocab.index.retain(|_, id| {
            *id = new_id[*id as usize];
            *id != 0
        });
        self.vocab.index.shrink_to_fit();
        ids.shrink_to_fit();
        self.ids = ids;
        self.off = off;
    }
}

/// The longest side a model accepts for `max_sentence_len` (0 = no limit). IBM Model 2 (`shape_cap`) keeps one
/// prior table per (m, n) sentence shape, so it caps sides at 65,535 tokens even without a limit; the Bayesian
/// models have no cap.
pub fn length_limit(max_len: usize, shape_cap: bool) -> usize {
    let cap = if shape_cap {
        u16::MAX as usize
    } else {
        usize::MAX
    };
    if max_len == 0 { cap } else { max_len.min(cap) }
}

impl Corpus {
    /// Number of input pairs, skipped ones included.
    pub fn len(&self) -> usize {
        self.src_off.len() - 1
    }

    /// Whether the corpus has no pair (never true for a built corpus: building fails without a usable pair).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token ids of pair k's (source, target), empty for a skipped pair (ids in each side's own vocabulary).
    pub(crate) fn pair_ids(&self, k: usize) -> (&[u32], &[u32]) {
        (
            &self.src_ids[self.src_off[k]..self.src_off[k + 1]],
            &self.tgt_ids[self.tgt_off[k]..self.tgt_off[k + 1]],
        )
    }

    /// The longest side this corpus kept.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Skipped pairs, in input order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The usable pairs as (pair index, conditioning side, generated side): `src` conditions unless `reverse`.
    /// Both models' directions iterate this.
    pub(crate) fn oriented(&self, reverse: bool) -> Vec<(usize, &[u32], &[u32])> {
        // Exact capacity: at paper scale this vector is one of the larger allocations of a direction.
        let mut out = Vec::with_capacity(self.len().saturating_sub(self.skipped.len()));
        out.extend((0..self.len()).filter_map(|k| {
            let s = &self.src_ids[self.src_off[k]..self.src_off[k + 1]];
            let t = &self.tgt_ids[self.tgt_off[k]..self.tgt_off[k + 1]];
            (!s.is_empty()).then_some(if reverse { (k, t, s) } else { (k, s, t) })
        }));
        out
    }

    /// Interns pre-tokenized sides (each `Vec` one line's tokens), as [`Corpus::from_lines`] does.
    pub fn from_tokens<S: AsRef<str> + Sync>(
        src: &[Vec<S>],
        tgt: &[Vec<S>],
        limit: usize,
    ) -> Result<Self, AlignError> {
        if src.len() != tgt.len() {
            return Err(AlignError::LengthMismatch {
                src: src.len(),
                tgt: tgt.len(),
            });
        }
        let side = |v: &[Vec<S>]| {
            Side::intern(v.len(), |k, push| {
                for t in &v[k] {
                    push(t.as_ref());
                }
            })
        };
        let (s, t) = rayon::join(|| side(src), || side(tgt));
        Self::from_sides(s?, t?, limit)
    }

    /// Tokenizes and interns two line-aligned sides: `tokens(line, push)` calls `push` once per token of `line`.
    /// Pairs with an empty side or a side longer than `limit` tokens (see [`length_limit`]) are skipped and
    /// reported. Memory is 4 bytes per token plus the vocabulary: no string is kept per token.
    pub fn from_lines<F>(
        src: &[&str],
        tgt: &[&str],
        limit: usize,
        tokens: F,
    ) -> Result<Self, AlignError>
    where
        F: Fn(&str, &mut dyn FnMut(&str)) + Sync,
    {
        Self::from_lines_each(src, tgt, limit, &tokens, &tokens)
    }

    /// [`Corpus::from_lines`] with one tokenizer per side (e.g. character tokens for an unspaced script on one side
    /// only).
    pub fn from_lines_each<F, G>(
        src: &[&str],
        tgt: &[&str],
        limit: usize,
        src_tokens: F,
        tgt_tokens: G,
    ) -> Result<Self, AlignError>
    where
        F: Fn(&str, &mut dyn FnMut(&str)) + Sync,
        G: Fn(&str, &mut dyn FnMut(&str)) + Sync,
    {
        if src.len() != tgt.len() {
            return Err(AlignError::LengthMismatch {
                src: src.len(),
                tgt: tgt.len(),
            });
        }
        // The two sides are interned concurrently; each side is numbered sequentially in corpus order, so ids do
        // not depend on the thread count.
        let (s, t) = rayon::join(
            || Side::intern(src.len(), |k, push| src_tokens(src[k], push)),
            || Side::intern(tgt.len(), |k, push| tgt_tokens(tgt[k], push)),
        );
        Self::from_sides(s?, t?, limit)
    }

    fn from_sides(mut s: Side, mut t: Side, limit: usize) -> Result<Self, AlignError> {
        let n = s.off.len() - 1;
        let mut skipped = Vec::new();
        let mut keep = Vec::with_capacity(n);
        for index in 0..n {
            let (ls, lt) = (s.len_of(index), t.len_of(index));
            let reason = if ls == 0 {
                Some(SkipReason::EmptySource)
            } else if lt == 0 {
                Some(SkipReason::EmptyTarget)
            } else if ls > limit || lt > limit {
                Some(SkipReason::TooLong)
            } else {
                None
            };
            if let Some(reason) = reason {
                skipped.push(Skipped { index, reason });
            }
            keep.push(reason.is_none());
        }
        if skipped.len() == n {
            let empty = skipped
                .iter()
                .filter(|s| s.reason != SkipReason::TooLong)
                .count();
            return Err(AlignError::NothingToAlign {
                total: n,
                empty,
                too_long: skipped.len() - empty,
            });
        }
        // Words of skipped pairs must not exist for the models (the vocabulary size is a model constant).
        let dropped_tokens = skipped
            .iter()
            .any(|sk| s.len_of(sk.index) + t.len_of(sk.index) > 0);
        if dropped_tokens {
            rayon::join(|| s.retain(&keep), || t.retain(&keep));
        }
        // Suspicious tokens are counted over the pairs that are aligned, as before.
        if dropped_tokens {
            let count = |side: &Side, vocab: &Vocab| {
                let sus: std::collections::HashSet<u32> = vocab
                    .index
                    .iter()
                    .filter(|(w, _)| is_suspicious(w))
                    .map(|(_, &id)| id)
                    .collect();
                if sus.is_empty() {
                    0
                } else {
                    side.ids.iter().filter(|id| sus.contains(id)).count()
                }
            };
            s.suspicious = count(&s, &s.vocab);
            t.suspicious = count(&t, &t.vocab);
        }
        Ok(Corpus {
            src_ids: s.ids,
            tgt_ids: t.ids,
            src_off: s.off,
            tgt_off: t.off,
            src_vocab: Arc::new(s.vocab),
            tgt_vocab: Arc::new(t.vocab),
            skipped,
            suspicious: s.suspicious + t.suspicious,
            limit,
        })
    }

    /// The corpus of a model with `max_len` (0 = no limit; `shape_cap`: the model caps sides, see
    /// [`length_limit`]).
    pub(crate) fn new<S: AsRef<str> + Sync>(
        src: &[Vec<S>],
        tgt: &[Vec<S>],
        max_len: usize,
        shape_cap: bool,
    ) -> Result<Self, AlignError> {
        Self::from_tokens(src, tgt, length_limit(max_len, shape_cap))
    }
}

/// Sentences per parallel work item: fixed, so the work split never depends on the thread count.
pub(crate) const CHUNK: usize = 512;
/// Chunks per E-step batch (posteriors of one batch are buffered, then added to the counts in corpus order).
pub(crate) const BATCH: usize = 32;
/// At most this many (generated token × conditioning position) cells per IBM2 work chunk: a chunk holds up to
/// `CHUNK` sentences but is cut before it would exceed this, and a sentence larger than this on its own is split
/// into runs of generated positions. Working memory therefore never depends on sentence lengths.
pub(crate) const MAX_CHUNK_CELLS: usize = 1 << 18;
/// At most this many cells per IBM2 E-step batch (12 bytes each: a posterior and a table index), a batch being at
/// most `BATCH` chunks; a single chunk above it (one generated token of a side longer than this) is its own batch.
pub(crate) const MAX_BATCH_CELLS: usize = 1 << 19;
/// Prior values cached per sentence shape (m, n): shapes up to `MAX_SHAPE_CACHE` values each, up to
/// `MAX_PRIOR_CACHE` values in all (2 MB), spent on the shapes that cover the most corpus cells; the priors of the
/// other shapes are computed row by row when used (bit-identical values, see [`Prior::row`]).
const MAX_SHAPE_CACHE: usize = 1 << 16;
const MAX_PRIOR_CACHE: usize = 1 << 18;

/// Generated positions j0..j1 of sentence k (an index into `Direction::sents`): the unit of IBM2 work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) k: usize,
    pub(crate) j0: u32,
    pub(crate) j1: u32,
}

/// Cuts sentences of `(n, m)` = (conditioning, generated) lengths into pieces and chunks: at most `CHUNK`
/// sentences and at most `max_cells` cells ((n + 1) per generated token) per chunk, a sentence larger than
/// `max_cells` split into runs of ⌊max_cells / (n + 1)⌋ positions (at least one). Returns the pieces and each
/// chunk's first piece (one more entry at the end).
pub(crate) fn plan_chunks(
    lens: impl Iterator<Item = (usize, usize)>,
    max_cells: usize,
) -> (Vec<Piece>, Vec<usize>) {
    let mut pieces = Vec::new();
    let mut starts = vec![0usize];
    let (mut cells, mut sents) = (0usize, 0usize);
    for (k, (n, m)) in lens.enumerate() {
        let row = n + 1;
        if row * m > max_cells {
            if sents > 0 {
                starts.push(pieces.len());
                (cells, sents) = (0, 0);
            }
            let step = (max_cells / row).max(1);
            for j0 in (0..m).step_by(step) {
                let j1 = (j0 + step).min(m);
                pieces.push(Piece {
                    k,
                    j0: j0 as u32,
                    j1: j1 as u32,
                });
                starts.push(pieces.len());
            }
            continue;
        }
        if sents == CHUNK || cells + row * m > max_cells {
            starts.push(pieces.len());
            (cells, sents) = (0, 0);
        }
        pieces.push(Piece {
            k,
            j0: 0,
            j1: m as u32,
        });
        cells += row * m;
        sents += 1;
    }
    if sents > 0 {
        starts.push(pieces.len());
    }
    (pieces, starts)
}

/// Training state of one direction. Nothing is stored per (i, j) cell: the table index of each cell is looked up
/// again for the batch being processed.
pub(crate) struct Direction<'a> {
    /// Usable pairs as (input index, conditioning ids, generated ids).
    pub(crate) sents: Vec<(usize, &'a [u32], &'a [u32])>,
    /// Offset of each sentence's cells in the corpus's (virtual) cell sequence (len = sents + 1). Cells are
    /// j-major: for each generated position j, NULL then conditioning positions 1..n.
    pub(crate) offsets: Vec<usize>,
    pub(crate) row_start: Vec<usize>,
    pub(crate) cols: Vec<u32>,
    /// Work pieces and the first piece of each chunk (see [`plan_chunks`]).
    pieces: Vec<Piece>,
    chunk_start: Vec<usize>,
    /// Distinct (m, n) shapes in sorted order, each sentence's shape index, and each shape's offset in the
    /// per-pass prior table (m·(n+1) values per cached shape; `usize::MAX` for a shape computed when used).
    shapes: Vec<(u32, u32)>,
    shape_of: Vec<u32>,
    shape_off: Vec<usize>,
    prior_len: usize,
}

impl Direction<'_> {
    /// Cells of the largest batch of `BATCH` sentence chunks: the buffer size of the HMM's batches.
    pub(crate) fn batch_cells(&self) -> usize {
        let n_chunks = self.sents.len().div_ceil(CHUNK);
        (0..n_chunks)
            .step_by(BATCH)
            .map(|b0| {
                self.offsets[((b0 + BATCH) * CHUNK).min(self.sents.len())]
                    - self.offsets[b0 * CHUNK]
            })
            .max()
            .unwrap_or(0)
    }

    /// Table index of (conditioning word e, generated word f), which co-occur.
    #[inline]
    fn find(&self, e: u32, f: u32) -> u32 {
        let (a, b) = (self.row_start[e as usize], self.row_start[e as usize + 1]);
        let row = &self.cols[a..b];
        // Dense rows (always the NULL row, which holds every generated word) are indexed directly; the binary
        // search over big rows is the slowest part of the look-up.
        if f >= row[0] && row.get((f - row[0]) as usize) == Some(&f) {
            return (a + (f - row[0]) as usize) as u32;
        }
        let k = row
            .binary_search(&f)
            .expect("co-occurring pair is in the table");
        (a + k) as u32
    }

    /// Table indices of the cells of sentence k's generated positions j0..j1 into `out` ((j1 − j0)·(n + 1)).
    pub(crate) fn cells_of(&self, k: usize, j0: usize, j1: usize, out: &mut [u32]) {
        let (_, e, f) = self.sents[k];
        let mut w = 0;
        for &fj in &f[j0..j1] {
            out[w] = self.find(0, fj);
            w += 1;
            for &ei in e {
                out[w] = self.find(ei, fj);
                w += 1;
            }
        }
    }

    /// Table indices of the cells of sentences s0..s1 into `out`, in parallel on `CHUNK`-sentence slices.
    pub(crate) fn cells_range(&self, s0: usize, s1: usize, out: &mut [u32]) {
        let parts = split_by_offsets(out, &self.offsets[s0..=s1], CHUNK);
        parts.into_par_iter().enumerate().for_each(|(c, part)| {
            let lo = s0 + c * CHUNK;
            let hi = (lo + CHUNK).min(s1);
            let mut w = 0;
            for k in lo..hi {
                let len = self.offsets[k + 1] - self.offsets[k];
                let m = self.sents[k].2.len();
                self.cells_of(k, 0, m, &mut part[w..w + len]);
                w += len;
            }
        });
    }

    fn n_chunks(&self) -> usize {
        self.chunk_start.len() - 1
    }

    fn chunk_pieces(&self, c: usize) -> &[Piece] {
        &self.pieces[self.chunk_start[c]..self.chunk_start[c + 1]]
    }

    /// First cell of a piece in the corpus's cell sequence, and its number of cells.
    fn piece_cells(&self, p: &Piece) -> (usize, usize) {
        let row = self.sents[p.k].1.len() + 1;
        (
            self.offsets[p.k] + p.j0 as usize * row,
            (p.j1 - p.j0) as usize * row,
        )
    }

    /// Cell range of chunks c0..c1 (consecutive pieces cover consecutive cells).
    fn chunks_cells(&self, c0: usize, c1: usize) -> (usize, usize) {
        let first = self.piece_cells(&self.pieces[self.chunk_start[c0]]).0;
        let (lo, len) = self.piece_cells(&self.pieces[self.chunk_start[c1] - 1]);
        (first, lo + len)
    }

    /// E-step batches as chunk ranges: at most `BATCH` chunks and `MAX_BATCH_CELLS` cells each (at least one chunk).
    fn batches(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut c0 = 0;
        while c0 < self.n_chunks() {
            let mut c1 = c0 + 1;
            while c1 < self.n_chunks()
                && c1 - c0 < BATCH
                && self.chunks_cells(c0, c1 + 1).1 - self.chunks_cells(c0, c1 + 1).0
                    <= MAX_BATCH_CELLS
            {
                c1 += 1;
            }
            out.push((c0, c1));
            c0 = c1;
        }
        out
    }

    /// The prior row of sentence k at generated position j: cached, or computed into `scratch`.
    fn prior_row<'t>(
        &self,
        table: &'t [f64],
        prior: &Prior,
        k: usize,
        j: usize,
        scratch: &'t mut Vec<f64>,
    ) -> &'t [f64] {
        let shape = self.shape_of[k] as usize;
        let (m, n) = self.shapes[shape];
        let row = n as usize + 1;
        let off = self.shape_off[shape];
        if off != usize::MAX {
            &table[off + j * row..off + (j + 1) * row]
        } else {
            scratch.resize(row, 0.0);
            prior.row(j, m, n, scratch);
            scratch
        }
    }
}

/// The co-occurrence table of one direction in CSR form: row e (0 = NULL, then the conditioning words) holds, in
/// increasing order, every generated word that shares a sentence with e (the NULL row: every generated word).
///
/// Built from an inverted index (the sentences of each conditioning word, 4 bytes per distinct word of a sentence)
/// rather than by sorting every (e, f) key: memory is the table itself plus the index and one stamp array of the
/// generated vocabulary per worker, whatever the corpus size or sentence lengths. Rows are counted, then filled
/// into their final place, each sorted on its own: the result does not depend on the thread count.
fn cooccurrence_table(
    sents: &[(usize, &[u32], &[u32])],
    n_cond_vocab: usize,
    n_gen_vocab: usize,
) -> Result<(Vec<usize>, Vec<u32>), AlignError> {
    let rows = n_cond_vocab + 1;
    // Inverted index: for each conditioning word, the sentences (indices into `sents`) it occurs in, once each.
    let mut post_start = vec![0usize; rows + 1];
    let mut last_seen = vec![u32::MAX; rows];
    for (k, (_, e, _)) in sents.iter().enumerate() {
        for &ei in *e {
            if last_seen[ei as usize] != k as u32 {
                last_seen[ei as usize] = k as u32;
                post_start[ei as usize + 1] += 1;
            }
        }
    }
    for r in 1..post_start.len() {
        post_start[r] += post_start[r - 1];
    }
    let mut postings = vec![0u32; post_start[rows]];
    let mut fill = post_start.clone();
    last_seen.iter_mut().for_each(|v| *v = u32::MAX);
    for (k, (_, e, _)) in sents.iter().enumerate() {
        for &ei in *e {
            if last_seen[ei as usize] != k as u32 {
                last_seen[ei as usize] = k as u32;
                postings[fill[ei as usize]] = k as u32;
                fill[ei as usize] += 1;
            }
        }
    }
    drop((last_seen, fill));
    // Row e's distinct generated words, marked in a per-worker stamp array (stamp e + 1 is unique to row e).
    let each_row = |e: usize, seen: &mut Vec<u32>, out: &mut dyn FnMut(u32)| {
        let stamp = e as u32 + 1;
        let mut visit = |f: &[u32]| {
            for &fj in f {
                if seen[fj as usize] != stamp {
                    seen[fj as usize] = stamp;
                    out(fj);
                }
            }
        };
        if e == 0 {
            sents.iter().for_each(|(_, _, f)| visit(f));
        } else {
            for &k in &postings[post_start[e]..post_start[e + 1]] {
                visit(sents[k as usize].2);
            }
        }
    };
    let stamps = || vec![0u32; n_gen_vocab + 1];
    let mut row_start = vec![0usize; rows + 1];
    row_start[1..]
        .par_iter_mut()
        .enumerate()
        .for_each_init(stamps, |seen, (e, len)| {
            let mut n = 0usize;
            each_row(e, seen, &mut |_| n += 1);
            *len = n;
        });
    for r in 1..row_start.len() {
        row_start[r] += row_start[r - 1];
    }
    if row_start[rows] > u32::MAX as usize {
        return Err(AlignError::TooLarge {
            what: "translation table cells",
        });
    }
    // Filled in blocks of whole rows of about 2^16 cells, each block by one worker.
    let mut blocks = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let mut r1 = r0 + 1;
        while r1 < rows && row_start[r1 + 1] - row_start[r0] <= 1 << 16 {
            r1 += 1;
        }
        blocks.push((r0, r1));
        r0 = r1;
    }
    let mut cols = vec![0u32; row_start[rows]];
    let mut parts = Vec::with_capacity(blocks.len());
    let mut rest = cols.as_mut_slice();
    for &(r0, r1) in &blocks {
        let (a, b) = rest.split_at_mut(row_start[r1] - row_start[r0]);
        parts.push((r0, r1, a));
        rest = b;
    }
    parts
        .into_par_iter()
        .for_each_init(stamps, |seen, (r0, r1, block)| {
            let base = row_start[r0];
            for e in r0..r1 {
                let row = &mut block[row_start[e] - base..row_start[e + 1] - base];
                let mut w = 0;
                each_row(e, seen, &mut |f| {
                    row[w] = f;
                    w += 1;
                });
                row.sort_unstable();
            }
        });
    Ok((row_start, cols))
}

pub(crate) fn build_direction<'a>(
    corpus: &'a Corpus,
    reverse: bool,
    n_cond_vocab: usize,
) -> Result<Direction<'a>, AlignError> {
    build_direction_bounded(corpus, reverse, n_cond_vocab, MAX_CHUNK_CELLS)
}

/// [`build_direction`] with chunks of at most `max_cells` cells (the tests use tiny bounds to force splits).
fn build_direction_bounded<'a>(
    corpus: &'a Corpus,
    reverse: bool,
    n_cond_vocab: usize,
    max_cells: usize,
) -> Result<Direction<'a>, AlignError> {
    let sents = corpus.oriented(reverse);
    let n_gen_vocab = if reverse {
        corpus.src_vocab.index.len()
    } else {
        corpus.tgt_vocab.index.len()
    };
    let (pieces, chunk_start) =
        plan_chunks(sents.iter().map(|(_, e, f)| (e.len(), f.len())), max_cells);
    let (row_start, cols) = cooccurrence_table(&sents, n_cond_vocab, n_gen_vocab)?;
    let mut offsets = Vec::with_capacity(sents.len() + 1);
    let mut total = 0usize;
    offsets.push(0);
    for (_, e, f) in &sents {
        total += (e.len() + 1) * f.len();
        offsets.push(total);
    }
    // Shapes (m, n) and how many corpus cells each covers; the prior cache is spent on the shapes covering the
    // most cells (ties: the smaller shape), then laid out in shape order.
    let mut shape_map: std::collections::BTreeMap<(u32, u32), u32> = Default::default();
    let mut shape_cells: std::collections::BTreeMap<(u32, u32), usize> = Default::default();
    for (_, e, f) in &sents {
        shape_map.insert((f.len() as u32, e.len() as u32), 0);
        *shape_cells
            .entry((f.len() as u32, e.len() as u32))
            .or_default() += f.len() * (e.len() + 1);
    }
    let size_of = |&(m, n): &(u32, u32)| (m as usize) * (n as usize + 1);
    let mut by_benefit: Vec<(&(u32, u32), &usize)> = shape_cells.iter().collect();
    by_benefit.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut cached = std::collections::BTreeSet::new();
    let mut budget = MAX_PRIOR_CACHE;
    for (shape, _) in by_benefit {
        let size = size_of(shape);
        if size <= MAX_SHAPE_CACHE && size <= budget {
            budget -= size;
            cached.insert(*shape);
        }
    }
    drop(shape_cells);
    let mut shapes = Vec::with_capacity(shape_map.len());
    let mut shape_off = Vec::with_capacity(shape_map.len());
    let mut prior_len = 0usize;
    for (k, (&(m, n), idx)) in shape_map.iter_mut().enumerate() {
        *idx = k as u32;
        shapes.push((m, n));
        if cached.contains(&(m, n)) {
            shape_off.push(prior_len);
            prior_len += size_of(&(m, n));
        } else {
            shape_off.push(usize::MAX);
        }
    }
    let shape_of = sents
        .iter()
        .map(|(_, e, f)| shape_map[&(f.len() as u32, e.len() as u32)])
        .collect();
    Ok(Direction {
        sents,
        offsets,
        row_start,
        cols,
        pieces,
        chunk_start,
        shapes,
        shape_of,
        shape_off,
        prior_len,
    })
}

/// counts[cells[k]] += posts[k] in corpus order. With several threads, each thread owns a range of cells and scans
/// the whole batch, so every cell still receives its additions in corpus order: the sums are bit-identical to the
/// sequential loop (and to single-threaded fast_align's order) whatever the thread count.
pub(crate) fn add_counts(counts: &mut [f64], cells: &[u32], posts: &[f64]) {
    let threads = rayon::current_num_threads();
    if threads <= 1 || cells.len() < 1 << 16 {
        for (&c, &q) in cells.iter().zip(posts) {
            counts[c as usize] += q;
        }
        return;
    }
    let per = counts.len().div_ceil(threads).max(1);
    counts
        .par_chunks_mut(per)
        .enumerate()
        .for_each(|(r, part)| {
            let lo = r * per;
            let len = part.len();
            for (&c, &q) in cells.iter().zip(posts) {
                let k = (c as usize).wrapping_sub(lo);
                if k < len {
                    part[k] += q;
                }
            }
        });
}

/// Splits `buf` (the cells of chunks c0..c1) into each chunk's cells.
fn split_by_chunks<'b, T>(
    mut buf: &'b mut [T],
    dir: &Direction<'_>,
    c0: usize,
    c1: usize,
) -> Vec<&'b mut [T]> {
    let mut parts = Vec::with_capacity(c1 - c0);
    for c in c0..c1 {
        let (a, b) = dir.chunks_cells(c, c + 1);
        let (x, y) = buf.split_at_mut(b - a);
        parts.push(x);
        buf = y;
    }
    parts
}

/// Splits `buf` into the cell ranges of consecutive sentence chunks of `chunk` sentences.
pub(crate) fn split_by_offsets<'b, T>(
    mut buf: &'b mut [T],
    offsets: &[usize],
    chunk: usize,
) -> Vec<&'b mut [T]> {
    let n = offsets.len() - 1;
    let mut parts = Vec::with_capacity(n.div_ceil(chunk));
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let (a, b) = buf.split_at_mut(offsets[end] - offsets[start]);
        parts.push(a);
        buf = b;
        start = end;
    }
    parts
}

/// Per-pass model constants.
#[derive(Clone, Copy)]
struct Prior {
    favor_diagonal: bool,
    use_null: bool,
    p0: f64,
    lambda: f64,
}

impl Prior {
    /// The prior `params` describe, at tension `lambda` (training starts from `diagonal_tension`; scoring a finished
    /// run uses its final λ).
    fn of(params: &Ibm2Params, lambda: f64) -> Self {
        Prior {
            favor_diagonal: params.favor_diagonal,
            use_null: !params.no_null_word,
            p0: if params.favor_diagonal {
                params.p0
            } else {
                0.0
            },
            lambda,
        }
    }

    /// δ(i) for i = 0 (NULL) ..= n at generated position j (0-based), into `row` (len n + 1), computed exactly as
    /// upstream does per cell so that cached and uncached values are bit-identical.
    fn row(&self, j: usize, m: u32, n: u32, row: &mut [f64]) {
        let mut prob_a_i = 1.0 / (f64::from(n) + if self.use_null { 1.0 } else { 0.0 });
        if self.use_null {
            if self.favor_diagonal {
                prob_a_i = self.p0;
            }
            row[0] = prob_a_i;
        } else {
            row[0] = 0.0;
        }
        let jj = j as u32 + 1;
        if self.favor_diagonal {
            let az = diag::compute_z(jj, m, n, self.lambda) / (1.0 - self.p0);
            for i in 1..=n {
                row[i as usize] = diag::unnormalized(jj, i, m, n, self.lambda) / az;
            }
        } else {
            for i in 1..=n {
                row[i as usize] = prob_a_i;
            }
        }
    }

    /// The prior of every cached shape of the corpus for the current λ (one exp per shape cell instead of per
    /// corpus cell: shapes repeat a lot).
    fn table(&self, dir: &Direction<'_>) -> Vec<f64> {
        let mut vals = vec![0.0; dir.prior_len];
        let mut parts = Vec::with_capacity(dir.shapes.len());
        let mut rest = vals.as_mut_slice();
        for (k, &(m, n)) in dir.shapes.iter().enumerate() {
            if dir.shape_off[k] != usize::MAX {
                let (a, b) = rest.split_at_mut(m as usize * (n as usize + 1));
                parts.push((a, (m, n)));
                rest = b;
            }
        }
        parts.into_par_iter().for_each(|(buf, (m, n))| {
            for (j, row) in buf.chunks_mut(n as usize + 1).enumerate() {
                self.row(j, m, n, row);
            }
        });
        vals
    }
}

/// Fills `probs[0..=n]` with δ(i)·t(f_j|e_i) and returns their sum (t is the constant 1e-9 before the first M-step,
/// as upstream).
#[inline]
fn fill(prior_row: &[f64], t: &[f64], cells: &[u32], init: bool, probs: &mut [f64]) -> f64 {
    let mut sum = 0.0;
    if init {
        for ((p, &d), _) in probs.iter_mut().zip(prior_row).zip(cells) {
            *p = 1e-9 * d;
            sum += *p;
        }
    } else {
        for ((p, &d), &c) in probs.iter_mut().zip(prior_row).zip(cells) {
            *p = t[c as usize] * d;
            sum += *p;
        }
    }
    sum
}

#[derive(Default, Clone, Copy)]
struct PassSums {
    likelihood: f64,
    c0: f64,
    emp_feat: f64,
}

/// Trains one direction and returns the Viterbi alignment (links in src-tgt orientation).
pub(crate) fn run_direction(
    corpus: &Corpus,
    params: &Ibm2Params,
    reverse: bool,
) -> Result<Alignment, AlignError> {
    run_direction_bounded(corpus, params, reverse, MAX_CHUNK_CELLS)
}

/// [`run_direction`] with work chunks of at most `max_cells` cells.
fn run_direction_bounded(
    corpus: &Corpus,
    params: &Ibm2Params,
    reverse: bool,
    max_cells: usize,
) -> Result<Alignment, AlignError> {
    params.validate()?;
    let (cond_vocab_len, gen_vocab_len) = if reverse {
        (corpus.tgt_vocab.index.len(), corpus.src_vocab.index.len())
    } else {
        (corpus.src_vocab.index.len(), corpus.tgt_vocab.index.len())
    };
    let dir = build_direction_bounded(corpus, reverse, cond_vocab_len, max_cells)?;
    let n_cells = dir.cols.len();
    let mut t = vec![0.0f64; n_cells];
    let mut counts = vec![0.0f64; n_cells];
    // Posteriors and cell indices are held for one batch of chunks at a time: memory is bounded by
    // `MAX_BATCH_CELLS`, not by the corpus or its sentence lengths.
    let batches = dir.batches();
    let batch_max = batches
        .iter()
        .map(|&(c0, c1)| {
            let (a, b) = dir.chunks_cells(c0, c1);
            b - a
        })
        .max()
        .unwrap_or(0);
    let mut posts = vec![0.0f64; batch_max];
    let mut cell_buf = vec![0u32; batch_max];
    let mut w_off = Vec::with_capacity(dir.shapes.len());
    let mut w_len = 0usize;
    for &(m, _) in &dir.shapes {
        w_off.push(w_len);
        w_len += m as usize;
    }
    let mut shape_w = vec![0.0f64; w_len];
    let mut size_counts: std::collections::BTreeMap<(u32, u32), u64> = Default::default();
    let mut toks = 0.0f64;
    let mut ratio_sum = 0.0f64;
    for (_, e, f) in &dir.sents {
        *size_counts
            .entry((f.len() as u32, e.len() as u32))
            .or_default() += 1;
        toks += f.len() as f64;
        ratio_sum += f.len() as f64 / e.len() as f64;
    }
    let mut prior = Prior::of(params, params.diagonal_tension);
    let mut stats = AlignStats {
        sentences: corpus.len(),
        aligned: dir.sents.len(),
        skipped: corpus.skipped.clone(),
        suspicious_tokens: corpus.suspicious,
        vocab_conditioning: cond_vocab_len,
        vocab_generated: gen_vocab_len,
        ttable_cells: n_cells,
        mean_length_ratio: ratio_sum / dir.sents.len() as f64,
        ..Default::default()
    };
    let fast_align = params.model == Model::FastAlign;
    let mut initialized = false;
    let mut sentences = Sentences::default();
    let mut dense: Option<Vec<Posteriors>> = None;
    for iter in 0..params.iterations {
        let final_pass = iter + 1 == params.iterations;
        if final_pass {
            // The Viterbi pass reads t only: the count buffer (as large as the table) and the E-step's batch
            // buffers go first.
            counts = Vec::new();
            posts = Vec::new();
            cell_buf = Vec::new();
        }
        let table = prior.table(&dir);
        shape_w.iter_mut().for_each(|w| *w = 0.0);
        if !final_pass {
            let want_w =
                !fast_align && params.favor_diagonal && params.optimizes_tension() && iter > 0;
            let mut tot = PassSums::default();
            for &(b0, b1) in &batches {
                let (cell0, cell1) = dir.chunks_cells(b0, b1);
                let post_parts = split_by_chunks(&mut posts[..cell1 - cell0], &dir, b0, b1);
                let cell_parts = split_by_chunks(&mut cell_buf[..cell1 - cell0], &dir, b0, b1);
                let sums: Vec<PassSums> = post_parts
                    .into_par_iter()
                    .zip(cell_parts)
                    .enumerate()
                    .map(|(cc, (part, cells_part))| {
                        let c = b0 + cc;
                        let mut s = PassSums::default();
                        let mut probs = Vec::new();
                        let mut i_over_n: Vec<f64> = Vec::new();
                        let mut scratch = Vec::new();
                        let mut off = 0usize;
                        for p in dir.chunk_pieces(c) {
                            let (_, e, f) = dir.sents[p.k];
                            let (m, n) = (f.len() as u32, e.len() as u32);
                            let row = e.len() + 1;
                            let (j0, j1) = (p.j0 as usize, p.j1 as usize);
                            dir.cells_of(p.k, j0, j1, &mut cells_part[off..off + (j1 - j0) * row]);
                            probs.resize(row, 0.0);
                            i_over_n.clear();
                            i_over_n.extend((0..=n).map(|i| f64::from(i) / f64::from(n)));
                            for j in j0..j1 {
                                let cells = &cells_part[off..off + row];
                                let pr = dir.prior_row(&table, &prior, p.k, j, &mut scratch);
                                let sum = fill(pr, &t, cells, !initialized, &mut probs);
                                let out = &mut part[off..off + row];
                                // Feature position: upstream uses the 0-based j here (notes §4), fixed uses j + 1.
                                let jf = if fast_align { j as u32 } else { j as u32 + 1 };
                                if prior.use_null {
                                    let q = probs[0] / sum;
                                    s.c0 += q;
                                    out[0] = q;
                                } else {
                                    out[0] = 0.0;
                                }
                                // Same bits as diag::feature, with i/n and j/m hoisted out of the cell loop.
                                let jm = f64::from(jf) / f64::from(m);
                                for i in 1..=e.len() {
                                    let q = probs[i] / sum;
                                    out[i] = q;
                                    s.emp_feat += -(i_over_n[i] - jm).abs() * q;
                                }
                                s.likelihood += sum.ln();
                                off += row;
                            }
                        }
                        s
                    })
                    .collect();
                for s in &sums {
                    tot.likelihood += s.likelihood;
                    tot.c0 += s.c0;
                    tot.emp_feat += s.emp_feat;
                }
                // Counts in corpus order: the same summation order as single-threaded fast_align.
                add_counts(
                    &mut counts,
                    &cell_buf[..cell1 - cell0],
                    &posts[..cell1 - cell0],
                );
                // Fixed mode: the λ gradient is Σ_tokens Σ_{i≥1} q(i)·h − Σ_tokens (1 − q(0))·E_δ\[h\]: the model term
                // is weighted by each token's non-NULL posterior mass (upstream weights every token by 1, which biases
                // λ upwards by the NULL mass). Summed sequentially in corpus order for determinism.
                if want_w {
                    let mut off = 0usize;
                    for p in &dir.pieces[dir.chunk_start[b0]..dir.chunk_start[b1]] {
                        let row = dir.sents[p.k].1.len() + 1;
                        let w = &mut shape_w[w_off[dir.shape_of[p.k] as usize]..];
                        for wj in &mut w[p.j0 as usize..p.j1 as usize] {
                            *wj += 1.0 - if prior.use_null { posts[off] } else { 0.0 };
                            off += row;
                        }
                    }
                }
            }
            let emp = tot.emp_feat / toks;
            if params.favor_diagonal && params.optimizes_tension() && iter > 0 {
                for _ in 0..8 {
                    let mut mod_feat = 0.0;
                    if fast_align {
                        for (&(m, n), &cnt) in &size_counts {
                            for j in 1..=m {
                                mod_feat +=
                                    cnt as f64 * diag::dlogz_upstream(j, m, n, prior.lambda);
                            }
                        }
                    } else {
                        for (&(m, n), &wo) in dir.shapes.iter().zip(&w_off) {
                            for j in 1..=m {
                                mod_feat += shape_w[wo + j as usize - 1]
                                    * diag::dlogz(j, m, n, prior.lambda);
                            }
                        }
                    }
                    mod_feat /= toks;
                    let next = prior.lambda + (emp - mod_feat) * 20.0;
                    if next.is_finite() {
                        prior.lambda = next.clamp(0.1, 14.0);
                    }
                }
            }
            normalize(&dir.row_start, &mut counts, params);
            std::mem::swap(&mut t, &mut counts);
            counts.iter_mut().for_each(|c| *c = 0.0);
            initialized = true;
            let base2 = tot.likelihood / std::f64::consts::LN_2;
            stats.iterations.push(IterationLog {
                log_likelihood: tot.likelihood,
                cross_entropy: -base2 / toks,
                posterior_p0: tot.c0 / toks,
                posterior_feat: emp,
                tension: prior.lambda,
            });
        } else {
            // One result per piece: links of its positions, their dense posterior rows (j-major, n per j) when
            // kept, and its log-likelihood; a split sentence's pieces are consecutive and joined below in order.
            type Out = (SentenceAlignment, Vec<f32>, f64);
            let keep = params.keep_posteriors;
            sentences = Sentences::with_capacity(corpus.len());
            sentences.reserve_links(toks as usize);
            let mut likelihood = 0.0;
            let mut dense_v = keep.then(|| vec![Posteriors::default(); corpus.len()]);
            // Chunks are processed a batch at a time and moved into place, so that no more than one batch of
            // per-piece results exists besides the finished sentences.
            let n_chunks = dir.n_chunks();
            for b0 in (0..n_chunks).step_by(BATCH) {
                let b1 = (b0 + BATCH).min(n_chunks);
                let outs: Vec<Vec<Out>> = (b0..b1)
                    .into_par_iter()
                    .map(|c| {
                        let mut probs = Vec::new();
                        let mut scratch = Vec::new();
                        let mut cells_buf = Vec::new();
                        let pieces = dir.chunk_pieces(c);
                        let mut res = Vec::with_capacity(pieces.len());
                        for p in pieces {
                            let (_, e, _) = dir.sents[p.k];
                            let row = e.len() + 1;
                            let (j0, j1) = (p.j0 as usize, p.j1 as usize);
                            cells_buf.resize((j1 - j0) * row, 0);
                            dir.cells_of(p.k, j0, j1, &mut cells_buf);
                            probs.resize(row, 0.0);
                            let mut sa = SentenceAlignment::default();
                            let mut dp = Vec::new();
                            if keep {
                                dp.reserve_exact((j1 - j0) * e.len());
                            }
                            let mut lik = 0.0;
                            for j in j0..j1 {
                                let cells = &cells_buf[(j - j0) * row..(j - j0 + 1) * row];
                                let pr = dir.prior_row(&table, &prior, p.k, j, &mut scratch);
                                let sum = fill(pr, &t, cells, !initialized, &mut probs);
                                lik += sum.ln();
                                // Ties go to NULL, then to the lowest i (strict `>`), as upstream.
                                let (mut best, mut max_p) = if prior.use_null {
                                    (0usize, probs[0])
                                } else {
                                    (0usize, -1.0)
                                };
                                for (i, &p) in probs.iter().enumerate().skip(1) {
                                    if p > max_p {
                                        best = i;
                                        max_p = p;
                                    }
                                }
                                if best > 0 {
                                    let link = if reverse {
                                        (j as u32, best as u32 - 1)
                                    } else {
                                        (best as u32 - 1, j as u32)
                                    };
                                    sa.links.push(link);
                                    sa.posteriors.push((max_p / sum) as f32);
                                    let tv = if initialized {
                                        t[cells[best] as usize]
                                    } else {
                                        1e-9
                                    };
                                    sa.ttable.push(tv as f32);
                                }
                                if keep {
                                    dp.extend(probs[1..].iter().map(|&p| (p / sum) as f32));
                                }
                            }
                            sa.links.shrink_to_fit();
                            sa.posteriors.shrink_to_fit();
                            sa.ttable.shrink_to_fit();
                            res.push((sa, dp, lik));
                        }
                        res
                    })
                    .collect();
                let batch_pieces = &dir.pieces[dir.chunk_start[b0]..dir.chunk_start[b1]];
                for (p, (sa, rows, lik)) in batch_pieces.iter().zip(outs.into_iter().flatten()) {
                    likelihood += lik;
                    let (k, e, f) = dir.sents[p.k];
                    if p.j0 == 0 {
                        sentences.pad_to(k);
                        sentences.push(&sa.links, &sa.posteriors, &sa.ttable);
                    } else {
                        sentences.extend_last(&sa.links, &sa.posteriors, &sa.ttable);
                    }
                    if let Some(v) = dense_v.as_mut() {
                        let (m, n) = (f.len(), e.len());
                        let d = &mut v[k];
                        if p.j0 == 0 {
                            let (ns, nt) = if reverse { (m, n) } else { (n, m) };
                            *d = Posteriors {
                                n_src: ns as u32,
                                n_tgt: nt as u32,
                                p: vec![0.0; m * n],
                            };
                        }
                        for (jj, r) in rows.chunks(n.max(1)).enumerate() {
                            let j = p.j0 as usize + jj;
                            for (i0, &q) in r.iter().enumerate() {
                                let idx = if reverse { j * n + i0 } else { i0 * m + j };
                                d.p[idx] = q;
                            }
                        }
                    }
                }
            }
            sentences.pad_to(corpus.len());
            sentences.shrink_to_fit();
            dense = dense_v;
            let base2 = likelihood / std::f64::consts::LN_2;
            stats.iterations.push(IterationLog {
                log_likelihood: likelihood,
                cross_entropy: -base2 / toks,
                posterior_p0: 0.0,
                posterior_feat: 0.0,
                tension: prior.lambda,
            });
        }
    }
    stats.final_tension = prior.lambda;
    if !initialized {
        t.iter_mut().for_each(|v| *v = 1e-9);
    }
    let (cond, gen_) = if reverse {
        (&corpus.tgt_vocab, &corpus.src_vocab)
    } else {
        (&corpus.src_vocab, &corpus.tgt_vocab)
    };
    let ttable = TranslationTable {
        cond: Arc::clone(cond),
        gen_: Arc::clone(gen_),
        row_start: dir.row_start,
        cols: dir.cols,
        probs: t,
    };
    Ok(Alignment {
        reverse,
        sentences,
        posteriors: dense,
        stats,
        ttable: Arc::new(ttable),
    })
}

/// M-step over CSR rows, in parallel on row blocks; each row is summed sequentially, so the result does not depend
/// on the thread count.
pub(crate) fn normalize(row_start: &[usize], counts: &mut [f64], params: &Ibm2Params) {
    // Row blocks of about 1 << 14 cells, cut at row boundaries.
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut r = 0;
    let rows = row_start.len() - 1;
    while r < rows {
        let start = r;
        while r < rows && row_start[r + 1] - row_start[start] < (1 << 14) {
            r += 1;
        }
        if r == start {
            r += 1;
        }
        blocks.push((start, r));
    }
    let mut parts = Vec::with_capacity(blocks.len());
    let mut rest = counts;
    for &(a, b) in &blocks {
        let (x, y) = rest.split_at_mut(row_start[b] - row_start[a]);
        parts.push((a, b, x));
        rest = y;
    }
    let vb = params.variational_bayes;
    let alpha = params.alpha;
    parts.into_par_iter().for_each(|(a, b, buf)| {
        let base = row_start[a];
        for r in a..b {
            let row = &mut buf[row_start[r] - base..row_start[r + 1] - base];
            if row.is_empty() {
                continue;
            }
            if vb {
                let mut tot = 0.0;
                for &c in row.iter() {
                    tot += c + alpha;
                }
                let dg_tot = diag::digamma(tot);
                for c in row.iter_mut() {
                    *c = (diag::digamma(*c + alpha) - dg_tot).exp();
                }
            } else {
                let mut tot = 0.0;
                for &c in row.iter() {
                    tot += c;
                }
                if tot == 0.0 {
                    tot = 1.0;
                }
                for c in row.iter_mut() {
                    *c /= tot;
                }
            }
        }
    });
}

/// The posterior q(src i ↔ tgt j) of each given cell under a finished IBM2 run's final parameters (its table, its
/// final λ, `params`' prior), bit-identical to the dense matrices `keep_posteriors` stores, without storing them:
/// one row of (n + 1) values is computed per distinct generated position that a cell of `cells` falls on.
/// `cells[k]` are (src, tgt) cells of pair k of `corpus` (the corpus the run was trained on); a cell outside its
/// pair (or on a skipped pair) is an error.
pub fn posteriors_at(
    corpus: &Corpus,
    run: &Alignment,
    params: &Ibm2Params,
    cells: &[Vec<(u32, u32)>],
) -> Result<Vec<Vec<f32>>, AlignError> {
    if cells.len() != corpus.len() {
        return Err(AlignError::CellCount {
            got: cells.len(),
            expected: corpus.len(),
        });
    }
    if run.ttable.cells() != run.stats.ttable_cells {
        return Err(AlignError::TableReleased {
            what: "posteriors_at",
        });
    }
    let prior = Prior::of(params, run.stats.final_tension);
    let t = &run.ttable;
    (0..corpus.len())
        .into_par_iter()
        .map(|k| {
            let (s, g) = corpus.pair_ids(k);
            let (e, f) = if run.reverse { (g, s) } else { (s, g) };
            let mut out = Vec::with_capacity(cells[k].len());
            let (mut row, mut probs) = (Vec::new(), Vec::new());
            let mut row_of = usize::MAX;
            let mut sum = 0.0;
            for &(i, j) in &cells[k] {
                if i as usize >= s.len() || j as usize >= g.len() {
                    return Err(AlignError::CellOutOfRange {
                        pair: k,
                        src: i,
                        tgt: j,
                        n_src: s.len(),
                        n_tgt: g.len(),
                    });
                }
                let (gen_pos, cond_pos) = if run.reverse { (i, j) } else { (j, i) };
                if gen_pos as usize != row_of {
                    // As the final pass: δ(i)·t(f_j|e_i) for i = NULL, 1..n, summed in order.
                    row.resize(e.len() + 1, 0.0);
                    probs.resize(e.len() + 1, 0.0);
                    prior.row(gen_pos as usize, f.len() as u32, e.len() as u32, &mut row);
                    let fj = f[gen_pos as usize];
                    sum = 0.0;
                    for (c, (p, &d)) in probs.iter_mut().zip(&row).enumerate() {
                        let ei = if c == 0 { 0 } else { e[c - 1] };
                        *p = t.prob_ids(ei, fj).unwrap_or(0.0) * d;
                        sum += *p;
                    }
                    row_of = gen_pos as usize;
                }
                out.push((probs[cond_pos as usize + 1] / sum) as f32);
            }
            Ok(out)
        })
        .collect()
}

/// Aligns a tokenized parallel corpus in one direction (`params.reverse` picks it). Links are 0-based
/// (src index, tgt index) whatever the direction. Deterministic for any rayon thread count.
pub fn align_corpus<S: AsRef<str> + Sync>(
    src: &[Vec<S>],
    tgt: &[Vec<S>],
    params: &Ibm2Params,
) -> Result<Alignment, AlignError> {
    params.validate()?;
    let corpus = Corpus::new(src, tgt, params.max_sentence_len, true)?;
    run_direction(&corpus, params, params.reverse)
}

/// Aligns one direction of an interned corpus (`reverse`: P(src | tgt)); `params.max_sentence_len` and
/// `params.reverse` are not used (the corpus's own limit applies). Links are 0-based (src index, tgt index).
pub fn align_interned(
    corpus: &Corpus,
    params: &Ibm2Params,
    reverse: bool,
) -> Result<Alignment, AlignError> {
    params.validate()?;
    if corpus.limit() > length_limit(0, true) {
        return Err(AlignError::InvalidParam {
            field: "max_sentence_len",
            reason: format!(
                "the corpus keeps sides of up to {} tokens; IBM Model 2 accepts at most {}",
                corpus.limit(),
                length_limit(0, true)
            ),
        });
    }
    run_direction(corpus, params, reverse)
}

/// Aligns in both directions (ignoring `params.reverse`), interning the corpus once. Returns (forward, reverse).
pub fn align_bidirectional<S: AsRef<str> + Sync>(
    src: &[Vec<S>],
    tgt: &[Vec<S>],
    params: &Ibm2Params,
) -> Result<(Alignment, Alignment), AlignError> {
    params.validate()?;
    let corpus = Corpus::new(src, tgt, params.max_sentence_len, true)?;
    let fwd = run_direction(&corpus, params, false)?;
    let rev = run_direction(&corpus, params, true)?;
    Ok((fwd, rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells of every chunk, and that the pieces cover every sentence's positions in order.
    fn check_plan(lens: &[(usize, usize)], max_cells: usize) {
        let (pieces, starts) = plan_chunks(lens.iter().copied(), max_cells);
        assert_eq!(starts[0], 0);
        assert_eq!(*starts.last().unwrap(), pieces.len());
        for c in 0..starts.len() - 1 {
            let ps = &pieces[starts[c]..starts[c + 1]];
            assert!(!ps.is_empty() && ps.len() <= CHUNK, "chunk {c}");
            let cells: usize = ps
                .iter()
                .map(|p| (p.j1 - p.j0) as usize * (lens[p.k].0 + 1))
                .sum();
            // Only a single generated token whose row alone is over the bound may exceed it.
            let one_wide_token = ps.len() == 1 && ps[0].j1 - ps[0].j0 == 1;
            assert!(
                cells <= max_cells || one_wide_token && lens[ps[0].k].0 + 1 > max_cells,
                "chunk {c}: {cells} cells > {max_cells}"
            );
        }
        let mut next = (0usize, 0u32);
        for p in &pieces {
            if p.j0 == 0 {
                assert_eq!(next.1 as usize, if p.k == 0 { 0 } else { lens[next.0].1 });
                assert_eq!(p.k, if p.k == 0 { 0 } else { next.0 + 1 });
            } else {
                assert_eq!((p.k, p.j0), next, "gap before {p:?}");
            }
            assert!(p.j0 < p.j1 && p.j1 as usize <= lens[p.k].1);
            next = (p.k, p.j1);
        }
        assert_eq!(next, (lens.len() - 1, lens.last().unwrap().1 as u32));
    }

    #[test]
    fn chunk_planner_bounds_cells_whatever_the_lengths() {
        // The cases: 256 pairs of 1000 × 1000 tokens (≈ 2.6e8 cells in one 512-pair chunk before) and one
        // 40k × 40k pair (1.6e9 cells), among short pairs; and a side longer than the bound itself.
        let mut lens = vec![(5, 7); 700];
        lens.extend(std::iter::repeat_n((1000, 1000), 256));
        lens.push((40_000, 40_000));
        lens.extend([(3, 2), (MAX_CHUNK_CELLS + 5, 2), (1, 1)]);
        check_plan(&lens, MAX_CHUNK_CELLS);
        check_plan(&lens, 7);
        // Short sentences keep the old 512-sentence chunks (so their sums are unchanged).
        let (_, starts) = plan_chunks(std::iter::repeat_n((10, 10), 2000), MAX_CHUNK_CELLS);
        assert_eq!(starts, vec![0, 512, 1024, 1536, 2000]);
    }

    fn words(n: usize, salt: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("w{}", (i * 7 + salt) % 13))
            .collect()
    }

    #[test]
    fn split_sentences_align_exactly_as_whole_ones() {
        // Sentences split into one-token pieces across chunks and batches must give the same counts (added in
        // corpus order either way), links, posteriors and table as whole sentences.
        let src: Vec<Vec<String>> = (0..40).map(|k| words(3 + k % 17, k)).collect();
        let tgt: Vec<Vec<String>> = (0..40).map(|k| words(2 + (k * 5) % 19, k + 3)).collect();
        let corpus = Corpus::new(&src, &tgt, 0, true).unwrap();
        let p = Ibm2Params {
            keep_posteriors: true,
            ..Default::default()
        };
        for reverse in [false, true] {
            let whole = run_direction_bounded(&corpus, &p, reverse, MAX_CHUNK_CELLS).unwrap();
            let split = run_direction_bounded(&corpus, &p, reverse, 7).unwrap();
            assert_eq!(whole.sentences, split.sentences, "reverse {reverse}");
            assert_eq!(whole.posteriors, split.posteriors, "reverse {reverse}");
            assert_eq!(whole.ttable.probs, split.ttable.probs, "reverse {reverse}");
            assert!(whole.sentences.iter().map(|s| s.links.len()).sum::<usize>() > 100);
        }
    }

    #[test]
    fn cooccurrence_table_holds_exactly_the_pairs_sharing_a_sentence() {
        // Repeated words within a sentence, a word in many sentences, a skipped pair (empty side) and a long side:
        // every row must be the sorted set of generated words met with its word, the NULL row every generated word.
        let mut src: Vec<Vec<String>> = (0..60).map(|k| words(1 + k % 23, k)).collect();
        let mut tgt: Vec<Vec<String>> = (0..60).map(|k| words(1 + (k * 3) % 29, k + 5)).collect();
        src[7].clear();
        tgt[11] = (0..400).map(|i| format!("long{}", i % 97)).collect();
        let corpus = Corpus::new(&src, &tgt, 0, true).unwrap();
        for reverse in [false, true] {
            let sents = corpus.oriented(reverse);
            let (nc, ng) = if reverse {
                (corpus.tgt_vocab.index.len(), corpus.src_vocab.index.len())
            } else {
                (corpus.src_vocab.index.len(), corpus.tgt_vocab.index.len())
            };
            let (row_start, cols) = cooccurrence_table(&sents, nc, ng).unwrap();
            let mut want = std::collections::BTreeSet::new();
            for (_, e, f) in &sents {
                for &fj in *f {
                    want.insert((0u32, fj));
                    for &ei in *e {
                        want.insert((ei, fj));
                    }
                }
            }
            let mut got = Vec::new();
            for e in 0..=nc {
                let row = &cols[row_start[e]..row_start[e + 1]];
                assert!(
                    row.windows(2).all(|w| w[0] < w[1]),
                    "row {e} not strictly sorted"
                );
                got.extend(row.iter().map(|&f| (e as u32, f)));
            }
            assert_eq!(
                got,
                want.into_iter().collect::<Vec<_>>(),
                "reverse {reverse}"
            );
        }
    }
}
