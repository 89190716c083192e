//! Bayesian word alignment by collapsed Gibbs sampling, the model class of Östling & Tiedemann (2016), "Efficient
//! word alignment with Markov Chain Monte Carlo" (PBML 106): IBM Model 1 → HMM → HMM + fertility, every
//! distribution a categorical with a symmetric Dirichlet prior that is integrated out, several independent samplers
//! whose samples are pooled into per-link marginals. Written from the paper's description, not from eflomal's code.
//!
//! # Model (one direction: a generated sentence f of length m given a conditioning sentence e of length n)
//! Each generated token j is aligned to a_j ∈ {0 (NULL), 1..n}.
//! - Translation: f_j ~ Cat(θ_{e_{a_j}}), θ_e ~ Dir(α_t) over the generated vocabulary (NULL has its own θ).
//! - Distortion (HMM phases): walking j = 1..m, each token draws one event from one shared categorical
//!   κ ~ Dir(α_j): either "NULL" or a jump d = a_j − p from the previous non-NULL position p (p = 0 before the
//!   first word), clamped to ±`max_jump`. After the last token one more jump goes to the virtual end position n + 1,
//!   so a sentence has exactly m + 1 events and reordering at the end is paid for like anywhere else.
//! - Fertility (last phase): the number of tokens aligned to each conditioning position, φ_i, is drawn from
//!   ψ_{e_i} ~ Dir(α_f) over 0..=`max_fertility` (larger counts share the last bucket).
//! - IBM Model 1 phase: a uniform alignment prior, translation only.
//!
//! With the parameters integrated out, the conditional of one a_j given everything else is a product of count
//! ratios (counts taken without token j): translation (c(e_i, f_j) + α_t)/(c(e_i) + V·α_t); distortion
//! (c(d₁) + α_j)(c(d₂) + \[d₁ = d₂\] + α_j) for the two events token j's choice creates (p → i, i → next) or
//! (c(NULL) + α_j)(c(p → next) + α_j) for NULL; fertility (c(e_i, φ_i + 1) + α_f)/(c(e_i, φ_i) − 1 + α_f).
//! The unit tests check these against the normalised collapsed joint by brute-force enumeration.
//!
//! # Output
//! Each sampler records the position it drew for every token during the last half of the final phase (a two-slot
//! Misra–Gries summary per token, so memory is a fixed 16 bytes per token and sampler however long a sentence is);
//! the samplers' counts are pooled, and each token links to its most frequent position (NULL: no link). The link's
//! marginal (share of pooled samples) is its `posteriors` entry, and the final translation table is the samplers'
//! mean counts under the Dirichlet prior.
//!
//! # Memory and determinism
//! The corpus is the shared interned one; a sampler holds one position per token, sparse translation counts keyed
//! by (conditioning word, generated word) (at most one entry per token), per-word fertility counts and its summary:
//! nothing is indexed per (i, j) cell, so memory is linear in the number of tokens. Measured on be-en 67k (forward,
//! reverse and gdfa through the bench, 2 threads, lines interned with [`Corpus::from_lines`]): 73.4 MiB peak (median
//! of 7, 72.1–75.1), was 155 MiB. Every sampler of both directions is one job of one pool (see
//! [`align_bayes_interned_bidirectional`]); a sampler is sequential inside and seeded from (`seed`, direction,
//! sampler index), and the pooling is in sampler order, so the output is identical for any thread count.
//!
//! # Speed
//! The time is the conditional's n + 1 cells per token. Each sentence sets up a cache (its distinct words, 1/(c(e) +
//! V·α_t) per word, the fertility factor per position, the jump counts as floats) that a token's move updates with
//! a division per word or position it changes, so a cell is a gather and a few multiplications; the count row of the token's generated
//! word is searched once per distinct word (in lockstep for a long row), and the rows and counts that the next
//! sentences read are prefetched. Measured against eflomal 2.0.0 (`eflomal-align`, its defaults, forward and
//! reverse; it has no symmetrizer, alinea's figure includes gdfa), paired whole-process runs on the same files and
//! machine, 2 cores: be-en 67k 4.5 s against 11.0 s (wall ratio 0.42, median of 7 pairs; was 0.79); FLORES-200 en–de
//! dev + devtest (2,009 lines of about 21 words) 3.2 s against 9.2 s (0.35, median of 5), the HMM model 2.9 s
//! against 9.9 s (0.30).

use std::sync::Arc;

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::error::AlignError;
use crate::ibm2::{AlignStats, Alignment, Corpus, SentenceAlignment, TranslationTable};
use crate::priors::{Direction, DirectionPriors, Priors};
use crate::sentences::Sentences;

/// The richest model of the IBM1 → HMM → fertility sequence to train.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BayesModel {
    /// IBM Model 1 only.
    Ibm1,
    /// IBM Model 1, then the HMM.
    Hmm,
    /// IBM Model 1, the HMM, then the HMM with fertility (default).
    #[default]
    Fertility,
}

/// Parameters of the Bayesian aligner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BayesParams {
    /// Richest model to train (default `fertility`).
    pub model: BayesModel,
    /// Independent samplers pooled into the marginals (default 3), at least 1.
    pub samplers: u32,
    /// Sweeps of the final phase; the earlier phases get a quarter of it each (at least 2). Unset (default): scaled
    /// with the corpus, max(4, min(200, round(`iteration_scale` · 2000 / √pairs))): a small corpus carries less
    /// evidence per sweep, so it needs more sweeps, and they are cheap.
    pub iterations: Option<u32>,
    /// Multiplier of the scaled schedule (default 1.0), > 0.
    pub iteration_scale: f64,
    /// Seed of the samplers (default 0).
    pub seed: u64,
    /// Dirichlet α of the translation distributions (default 0.001: sparse, most words translate few ways).
    pub alpha_translation: f64,
    /// Dirichlet α of the distortion distribution (default 0.5).
    pub alpha_jump: f64,
    /// Dirichlet α of the fertility distributions (default 0.5).
    pub alpha_fertility: f64,
    /// Jumps are clamped to ±max_jump (default 10), at least 1.
    pub max_jump: u32,
    /// Fertilities above this share one bucket (default 8), at least 1.
    pub max_fertility: u32,
    /// Pairs with a side longer than this many tokens are skipped and counted (default 1000; 0 = no limit).
    pub max_sentence_len: usize,
}

impl Default for BayesParams {
    fn default() -> Self {
        Self {
            model: BayesModel::Fertility,
            samplers: 3,
            iterations: None,
            iteration_scale: 1.0,
            seed: 0,
            alpha_translation: 0.001,
            alpha_jump: 0.5,
            alpha_fertility: 0.5,
            max_jump: 10,
            max_fertility: 8,
            max_sentence_len: 1000,
        }
    }
}

impl BayesParams {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), AlignError> {
        let bad = |field, reason: &str| {
            Err(AlignError::InvalidParam {
                field,
                reason: reason.to_string(),
            })
        };
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if self.samplers == 0 {
            return bad("samplers", "must be at least 1");
        }
        if self.iterations == Some(0) {
            return bad("iterations", "must be at least 1");
        }
        if !positive(self.iteration_scale) {
            return bad("iteration_scale", "must be a finite number > 0");
        }
        for (field, v) in [
            ("alpha_translation", self.alpha_translation),
            ("alpha_jump", self.alpha_jump),
            ("alpha_fertility", self.alpha_fertility),
        ] {
            if !positive(v) {
                return bad(field, "must be a finite number > 0");
            }
        }
        if self.max_jump == 0 {
            return bad("max_jump", "must be at least 1");
        }
        if self.max_fertility == 0 {
            return bad("max_fertility", "must be at least 1");
        }
        Ok(())
    }

    /// Sweeps per phase (IBM1, HMM, fertility) for a corpus of `pairs` usable pairs; a phase above `model` gets 0.
    pub fn schedule(&self, pairs: usize) -> [u32; 3] {
        let main = self.iterations.unwrap_or_else(|| {
            let scaled = self.iteration_scale * 2000.0 / (pairs.max(1) as f64).sqrt();
            scaled.round().clamp(4.0, 200.0) as u32
        });
        let early = (main / 4).max(2);
        match self.model {
            BayesModel::Ibm1 => [main, 0, 0],
            BayesModel::Hmm => [early, main, 0],
            BayesModel::Fertility => [early, early, main],
        }
    }
}

/// Which factors the conditional has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ibm1,
    Hmm,
    Fertility,
}

/// The usable pairs of one direction, as slices into the shared corpus.
struct Sents<'a> {
    /// (input index, conditioning ids, generated ids).
    items: Vec<(usize, &'a [u32], &'a [u32])>,
    /// Offset of each sentence's generated tokens in the per-token arrays (len = items + 1).
    tok_off: Vec<usize>,
    /// Conditioning vocabulary size (NULL excluded), generated vocabulary size.
    n_cond: usize,
    n_gen: usize,
}

impl<'a> Sents<'a> {
    fn new(corpus: &'a Corpus, reverse: bool) -> Self {
        let items = corpus.oriented(reverse);
        let mut tok_off = Vec::with_capacity(items.len() + 1);
        tok_off.push(0);
        for (_, _, f) in &items {
            tok_off.push(tok_off.last().unwrap() + f.len());
        }
        let (n_cond, n_gen) = if reverse {
            (corpus.tgt_vocab.index.len(), corpus.src_vocab.index.len())
        } else {
            (corpus.src_vocab.index.len(), corpus.tgt_vocab.index.len())
        };
        Sents {
            items,
            tok_off,
            n_cond,
            n_gen,
        }
    }

    fn tokens(&self) -> usize {
        *self.tok_off.last().unwrap_or(&0)
    }
}

/// Model constants of a run.
#[derive(Debug, Clone, Copy)]
struct Hyper {
    alpha_t: f64,
    alpha_j: f64,
    alpha_f: f64,
    /// Jump buckets are d + max_jump for d ∈ [−max_jump, max_jump]; bucket 2·max_jump + 1 is NULL.
    max_jump: i64,
    max_fert: u32,
    /// V·α_t with V the generated vocabulary size.
    v_alpha_t: f64,
}

impl Hyper {
    fn new(p: &BayesParams, n_gen: usize) -> Self {
        Hyper {
            alpha_t: p.alpha_translation,
            alpha_j: p.alpha_jump,
            alpha_f: p.alpha_fertility,
            max_jump: i64::from(p.max_jump),
            max_fert: p.max_fertility,
            v_alpha_t: p.alpha_translation * n_gen as f64,
        }
    }

    fn jump_buckets(&self) -> usize {
        2 * self.max_jump as usize + 2
    }

    fn null_bucket(&self) -> usize {
        2 * self.max_jump as usize + 1
    }

    /// Bucket of a jump from position `from` to position `to` (1-based word positions, 0 = start, n + 1 = end).
    fn jump(&self, from: u32, to: u32) -> usize {
        let d = i64::from(to) - i64::from(from);
        (d.clamp(-self.max_jump, self.max_jump) + self.max_jump) as usize
    }

    fn fert_bucket(&self, phi: u32) -> usize {
        phi.min(self.max_fert) as usize
    }
}

/// The Dirichlet parameters of one direction beyond the symmetric α's: the pseudo-counts of a
/// [`DirectionPriors`] mapped onto this corpus's word ids (see [`crate::priors`]). Without priors only
/// `jump_alpha` is filled (with α_j), so the sampler's no-prior path costs one empty-check per factor.
#[derive(Debug, Clone, Default)]
struct Pseudo {
    /// π(e, f): one row of (e, pseudo-count) per generated word f, sorted by e; empty without priors.
    trans: Vec<Vec<(u32, f64)>>,
    /// Π(e) = Σ_f π(e, f) over this corpus's generated words, per conditioning word; empty without priors.
    cond: Vec<f64>,
    /// α_j + π(bucket) per jump bucket.
    jump_alpha: Vec<f64>,
    /// α_f + π(e, bucket) per fertility cell e · (max_fert + 1) + bucket; empty without priors.
    fert_alpha: Vec<f64>,
}

impl Pseudo {
    /// Maps `priors` (if any) onto the ids of `sents`' vocabularies: words this corpus does not have are dropped;
    /// jumps beyond ±max_jump and fertilities beyond max_fertility go to the clamped buckets, as the model's own
    /// events do.
    fn new(
        h: &Hyper,
        priors: Option<&DirectionPriors>,
        cond_vocab: &crate::ibm2::Vocab,
        gen_vocab: &crate::ibm2::Vocab,
    ) -> Self {
        let mut jump_alpha = vec![h.alpha_j; h.jump_buckets()];
        let Some(p) = priors.filter(|p| !p.is_empty()) else {
            return Pseudo {
                jump_alpha,
                ..Pseudo::default()
            };
        };
        let cond_id = |w: &str| cond_vocab.index.get(w).copied();
        let mut trans = vec![Vec::new(); gen_vocab.index.len() + 1];
        let mut cond = vec![0.0; cond_vocab.index.len() + 1];
        for ((e, f), &c) in &p.translation {
            let e = match e {
                None => Some(0),
                Some(w) => cond_id(w),
            };
            if let (Some(e), Some(&f)) = (e, gen_vocab.index.get(f.as_str())) {
                trans[f as usize].push((e, c));
                cond[e as usize] += c;
            }
        }
        for row in &mut trans {
            row.sort_unstable_by_key(|&(e, _)| e);
        }
        for (&d, &c) in &p.jump {
            let d = d.clamp(-h.max_jump, h.max_jump);
            jump_alpha[(d + h.max_jump) as usize] += c;
        }
        jump_alpha[h.null_bucket()] += p.null;
        let stride = h.max_fert as usize + 1;
        let mut fert_alpha = vec![h.alpha_f; (cond_vocab.index.len() + 1) * stride];
        for ((e, phi), &c) in &p.fertility {
            if let Some(e) = cond_id(e) {
                fert_alpha[e as usize * stride + h.fert_bucket(*phi)] += c;
            }
        }
        Pseudo {
            trans,
            cond,
            jump_alpha,
            fert_alpha,
        }
    }

    /// π(e, f).
    #[inline]
    fn trans_of(&self, e: u32, f: u32) -> f64 {
        match self.trans.get(f as usize) {
            Some(row) => row
                .binary_search_by_key(&e, |&(x, _)| x)
                .map_or(0.0, |k| row[k].1),
            None => 0.0,
        }
    }

    /// Π(e).
    #[inline]
    fn cond_of(&self, e: u32) -> f64 {
        self.cond.get(e as usize).copied().unwrap_or(0.0)
    }

    /// α_f + π(e, bucket) for fertility cell `cell`.
    #[inline]
    fn fert_alpha(&self, h: &Hyper, cell: usize) -> f64 {
        self.fert_alpha.get(cell).copied().unwrap_or(h.alpha_f)
    }
}

/// Asks for the cache line at `p` ahead of its use (a hint: it reads no value and never faults, so any address
/// will do; a no-op off x86-64).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it dereferences nothing and cannot fault, whatever `p` is.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Sparse translation counts, one sorted row of (e, count) per generated word f.
#[derive(Debug, Clone, PartialEq, Default)]
struct TransCounts {
    rows: Vec<Vec<(u32, u32)>>,
}

impl TransCounts {
    fn new(n_gen: usize) -> Self {
        TransCounts {
            rows: vec![Vec::new(); n_gen + 1],
        }
    }

    /// Position of e in row f (Ok) or where it would go (Err).
    #[inline]
    fn find(row: &[(u32, u32)], e: u32) -> Result<usize, usize> {
        let k = Self::lower_bound(row, e);
        if k < row.len() && row[k].0 == e {
            Ok(k)
        } else {
            Err(k)
        }
    }

    /// The first position in `row` whose word is not below e.
    #[inline]
    fn lower_bound(row: &[(u32, u32)], e: u32) -> usize {
        if row.len() <= 16 {
            row.iter().position(|&(x, _)| x >= e).unwrap_or(row.len())
        } else {
            // Branch-free: rows of frequent words are long, and a mispredicted branch per step was most of a
            // search's time.
            let mut base = 0usize;
            let mut size = row.len();
            while size > 1 {
                let half = size / 2;
                let mid = base + half;
                base = std::hint::select_unpredictable(row[mid].0 < e, mid, base);
                size -= half;
            }
            base + usize::from(row[base].0 < e)
        }
    }

    fn add(&mut self, e: u32, f: u32) {
        let row = &mut self.rows[f as usize];
        match Self::find(row, e) {
            Ok(k) => row[k].1 += 1,
            Err(k) => row.insert(k, (e, 1)),
        }
    }

    fn remove(&mut self, e: u32, f: u32) {
        let row = &mut self.rows[f as usize];
        let k = Self::find(row, e).expect("removed link is counted");
        row[k].1 -= 1;
        if row[k].1 == 0 {
            row.remove(k);
        }
    }
}

/// Count tables of one sampler (every count is of the current state, token j excluded while it is resampled).
#[derive(Debug, Clone, PartialEq)]
struct Counts {
    /// c(e, f) for links to conditioning word e (0 = NULL) of generated word f: one row per f, sorted by e, zero
    /// entries removed. Rows are per generated word because the sparse prior keeps them short, so the look-ups of
    /// one token's conditional search one small row that stays in cache.
    trans: TransCounts,
    /// c(e) = Σ_f c(e, f), indexed by conditioning word (0 = NULL).
    cond: Vec<u32>,
    /// Distortion events per bucket (empty outside the HMM phases).
    jump: Vec<u32>,
    /// Fertility buckets per conditioning word: fert[e · (max_fert + 1) + bucket] (empty outside the last phase).
    fert: Vec<u32>,
}

/// How [`Sampler::structure_update`] changes the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Remove,
    Add,
    /// Add a token back where it was removed from, leaving the fertility factors as the caller restores them.
    Restore,
}

/// One sampler's state.
struct Sampler<'s, 'a> {
    sents: &'s Sents<'a>,
    h: Hyper,
    pseudo: &'s Pseudo,
    /// a_j per generated token (0 = NULL, else a 1-based conditioning position).
    a: Vec<u32>,
    counts: Counts,
    rng: Pcg64Mcg,
    /// recip\[k\] = 1/k for k up to the longest conditioning sentence + 1: the clamped jump buckets' spread
    /// (see [`Sampler::spread`]) without a division per cell.
    recip: Vec<f64>,
    /// Per-sentence scratch, set up by [`Sampler::begin_sentence`] and kept current token by token, so that the
    /// conditional reads only small arrays of this sentence besides the generated word's count row.
    sent: SentenceCache,
}

/// What the conditional of one sentence's tokens needs besides the count rows, kept current as its tokens move
/// (token j's own contribution removed while it is resampled).
#[derive(Debug, Clone, Default)]
struct SentenceCache {
    /// Fertility of each position (index 0 unused).
    phi: Vec<u32>,
    /// The sentence's distinct conditioning words with NULL (0) first, sorted like the count rows, so that one
    /// pass over a row finds all of them and a word that occurs twice is looked up once.
    uniq: Vec<u32>,
    /// Index in `uniq` of each position's word (position 0 = NULL).
    slot: Vec<u32>,
    /// Positions of each distinct word (NULL's: 1).
    mult: Vec<u32>,
    /// 1/(c(e) + V·α_t + Π(e)) per distinct word: changed by one reciprocal when a token leaves or joins the
    /// word, instead of one division per cell.
    inv_cond: Vec<f64>,
    /// The translation factor of each distinct word for the current token.
    trans: Vec<f64>,
    /// Scratch: each distinct word's place in the current token's count row.
    at: Vec<usize>,
    /// The fertility factor of each position (fertility phase; 1 elsewhere), recomputed for the positions of a
    /// word when one of its fertility counts changes.
    fert: Vec<f64>,
    /// c(bucket) + α_j + π(bucket) per jump bucket (HMM phases), recomputed when its count changes: one conversion
    /// per change instead of two per cell.
    jump: Vec<f64>,
    /// The conditional's weights, positions 0..=n.
    weights: Vec<f64>,
}

impl<'s, 'a> Sampler<'s, 'a> {
    fn new(sents: &'s Sents<'a>, h: Hyper, pseudo: &'s Pseudo, seed: u64) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut a = Vec::with_capacity(sents.tokens());
        let mut longest = 0;
        for (_, e, f) in &sents.items {
            longest = longest.max(e.len());
            for _ in 0..f.len() {
                a.push((rng.next_u64() % (e.len() as u64 + 1)) as u32);
            }
        }
        let recip = (0..longest + 2).map(|k| 1.0 / k as f64).collect();
        let mut s = Sampler {
            sents,
            h,
            pseudo,
            a,
            counts: Counts {
                trans: TransCounts::default(),
                cond: vec![0; sents.n_cond + 1],
                jump: Vec::new(),
                fert: Vec::new(),
            },
            rng,
            recip,
            sent: SentenceCache::default(),
        };
        s.counts = s.recount(Phase::Ibm1);
        s
    }

    /// Count tables of the current alignment, from scratch (used at phase starts and by the invariant tests).
    fn recount(&self, phase: Phase) -> Counts {
        let h = &self.h;
        let mut c = Counts {
            trans: TransCounts::new(self.sents.n_gen),
            cond: vec![0; self.sents.n_cond + 1],
            jump: if phase == Phase::Ibm1 {
                Vec::new()
            } else {
                vec![0; h.jump_buckets()]
            },
            fert: if phase == Phase::Fertility {
                vec![0; (self.sents.n_cond + 1) * (h.max_fert as usize + 1)]
            } else {
                Vec::new()
            },
        };
        let mut phi = Vec::new();
        for (k, (_, e, f)) in self.sents.items.iter().enumerate() {
            let a = &self.a[self.sents.tok_off[k]..self.sents.tok_off[k + 1]];
            phi.clear();
            phi.resize(e.len() + 1, 0u32);
            let mut prev = 0u32;
            for (&aj, &fj) in a.iter().zip(*f) {
                let ew = if aj == 0 { 0 } else { e[aj as usize - 1] };
                c.trans.add(ew, fj);
                c.cond[ew as usize] += 1;
                phi[aj as usize] += 1;
                if phase != Phase::Ibm1 {
                    if aj == 0 {
                        c.jump[h.null_bucket()] += 1;
                    } else {
                        c.jump[h.jump(prev, aj)] += 1;
                        prev = aj;
                    }
                }
            }
            if phase != Phase::Ibm1 {
                c.jump[h.jump(prev, e.len() as u32 + 1)] += 1;
            }
            if phase == Phase::Fertility {
                let stride = h.max_fert as usize + 1;
                for (i, &ei) in e.iter().enumerate() {
                    c.fert[ei as usize * stride + h.fert_bucket(phi[i + 1])] += 1;
                }
            }
        }
        c
    }

    /// Share of its bucket's probability that a jump from `from` to word position `to` gets in a sentence of n
    /// words: a clamped bucket covers every position beyond ±max_jump and spreads its mass uniformly over them,
    /// so that long sentences do not make far jumps cheap. The end event (to = n + 1) is not a choice: 1.
    #[inline]
    fn spread(&self, from: u32, to: u32, n: u32) -> f64 {
        let mj = self.h.max_jump;
        let d = i64::from(to) - i64::from(from);
        let (from64, n64) = (i64::from(from), i64::from(n));
        if to == n + 1 || d.abs() < mj {
            1.0
        } else if d > 0 {
            self.recip[(n64 + 1 - from64 - mj) as usize]
        } else {
            self.recip[(from64 - mj) as usize]
        }
    }

    /// 1/(c(e) + V·α_t + Π(e)) from the current count of `ew`.
    #[inline]
    fn inv_cond(&self, ew: u32) -> f64 {
        1.0 / (f64::from(self.counts.cond[ew as usize])
            + self.h.v_alpha_t
            + self.pseudo.cond_of(ew))
    }

    /// Fertility factor (c(e_i, φ_i + 1) + α)/(c(e_i, φ_i) − 1 + α) of position i ≥ 1 from the current counts.
    #[inline]
    fn fert_factor(&self, e: &[u32], i: usize) -> f64 {
        let h = &self.h;
        let row = e[i - 1] as usize * (h.max_fert as usize + 1);
        let phi = self.sent.phi[i];
        let (b0, b1) = (h.fert_bucket(phi), h.fert_bucket(phi + 1));
        if b0 == b1 {
            return 1.0;
        }
        let ps = self.pseudo;
        let c = &self.counts.fert;
        (f64::from(c[row + b1]) + ps.fert_alpha(h, row + b1))
            / (f64::from(c[row + b0]) - 1.0 + ps.fert_alpha(h, row + b0))
    }

    /// Sets up the sentence cache of sentence k from the current state (every token of it counted).
    fn begin_sentence(&mut self, phase: Phase, k: usize) {
        let (_, e, f) = self.sents.items[k];
        let off = self.sents.tok_off[k];
        let n = e.len();
        let mut sc = std::mem::take(&mut self.sent);
        sc.uniq.clear();
        sc.uniq.push(0);
        sc.uniq.extend_from_slice(e);
        sc.uniq.sort_unstable();
        sc.uniq.dedup();
        sc.slot.clear();
        sc.slot.push(0);
        sc.slot
            .extend(e.iter().map(|w| sc.uniq.binary_search(w).unwrap() as u32));
        sc.mult.clear();
        sc.mult.resize(sc.uniq.len(), 0);
        for &u in &sc.slot {
            sc.mult[u as usize] += 1;
        }
        sc.inv_cond.clear();
        sc.inv_cond
            .extend(sc.uniq.iter().map(|&w| self.inv_cond(w)));
        sc.trans.clear();
        sc.trans.resize(sc.uniq.len(), 0.0);
        sc.at.clear();
        sc.at.resize(sc.uniq.len(), 0);
        sc.weights.clear();
        sc.weights.resize(n + 1, 0.0);
        sc.phi.clear();
        sc.phi.resize(n + 1, 0);
        sc.fert.clear();
        sc.fert.resize(n + 1, 1.0);
        sc.jump.clear();
        if phase != Phase::Ibm1 {
            let alpha = &self.pseudo.jump_alpha;
            sc.jump
                .extend((self.counts.jump.iter().zip(alpha)).map(|(&c, &a)| f64::from(c) + a));
        }
        if phase == Phase::Fertility {
            for &aj in &self.a[off..off + f.len()] {
                sc.phi[aj as usize] += 1;
            }
            sc.phi[0] = 0;
        }
        self.sent = sc;
        self.prefetch_for(phase, k);
        if phase == Phase::Fertility {
            for i in 1..=n {
                self.sent.fert[i] = self.fert_factor(e, i);
            }
        }
    }

    /// Asks for what the sentences after k will read at random, called as sentence k starts: the count rows of
    /// sentence k + 1's generated words (their headers were asked for one sentence earlier), the row headers of
    /// sentence k + 2's, and the counts of sentence k + 1's conditioning words. Cache misses on these were most of
    /// a sweep's time; asked for a sentence ahead, they overlap with the work of the sentence before.
    fn prefetch_for(&self, phase: Phase, k: usize) {
        let c = &self.counts;
        let items = &self.sents.items;
        let Some(&(_, e, f)) = items.get(k + 1) else {
            return;
        };
        for &fw in f {
            prefetch(c.trans.rows[fw as usize].as_ptr());
        }
        let stride = self.h.max_fert as usize + 1;
        for &w in e {
            prefetch(c.cond.as_ptr().wrapping_add(w as usize));
            if phase == Phase::Fertility {
                prefetch(c.fert.as_ptr().wrapping_add(w as usize * stride));
            }
        }
        for &fw in items.get(k + 2).map_or(&[][..], |s| s.2) {
            prefetch(c.trans.rows.as_ptr().wrapping_add(fw as usize));
        }
    }

    /// Adds or removes (`change`) the events and fertility that a token contributes with a_j = `i`, between
    /// non-NULL neighbours `prev` and `next`.
    fn structure_update(
        &mut self,
        phase: Phase,
        e: &[u32],
        i: u32,
        prev: u32,
        next: u32,
        change: Change,
    ) {
        let add = change != Change::Remove;
        let h = self.h;
        if phase != Phase::Ibm1 {
            let alpha = &self.pseudo.jump_alpha;
            let (c, w) = (&mut self.counts.jump, &mut self.sent.jump);
            let (b1, b2) = if i == 0 {
                (h.null_bucket(), h.jump(prev, next))
            } else {
                (h.jump(prev, i), h.jump(i, next))
            };
            for b in [b1, b2] {
                if add {
                    c[b] += 1;
                } else {
                    c[b] -= 1;
                }
                w[b] = f64::from(c[b]) + alpha[b];
            }
        }
        if phase == Phase::Fertility && i != 0 {
            let stride = h.max_fert as usize + 1;
            let row = e[i as usize - 1] as usize * stride;
            let old = self.sent.phi[i as usize];
            let new = if add { old + 1 } else { old - 1 };
            self.counts.fert[row + h.fert_bucket(old)] -= 1;
            self.counts.fert[row + h.fert_bucket(new)] += 1;
            self.sent.phi[i as usize] = new;
            let s = self.sent.slot[i as usize];
            match change {
                // The caller puts back the factor that was.
                Change::Restore => {}
                _ if self.sent.mult[s as usize] == 1 => {
                    self.sent.fert[i as usize] = self.fert_factor(e, i as usize);
                }
                _ => {
                    // The word's counts changed, so every position of the word gets a new factor.
                    for p in 1..=e.len() {
                        if self.sent.slot[p] == s {
                            self.sent.fert[p] = self.fert_factor(e, p);
                        }
                    }
                }
            }
        }
    }

    /// Takes out token j's link to position `old` (word `ew_old`) from everything the conditional reads except its
    /// translation count row, which [`Sampler::conditional`] corrects by one for `ew_old` and [`Sampler::attach`]
    /// moves only if the word changes (most draws keep it). Returns what [`Sampler::attach`] restores if the token
    /// goes back where it was: the word's previous 1/(c(e) + …) and the position's previous fertility factor.
    fn detach(
        &mut self,
        phase: Phase,
        e: &[u32],
        old: u32,
        ew_old: u32,
        prev: u32,
        next: u32,
    ) -> (f64, f64) {
        self.counts.cond[ew_old as usize] -= 1;
        let u = self.sent.slot[old as usize] as usize;
        let saved = (self.sent.inv_cond[u], self.sent.fert[old as usize]);
        self.sent.inv_cond[u] = self.inv_cond(ew_old);
        self.structure_update(phase, e, old, prev, next, Change::Remove);
        saved
    }

    /// Links token j (generated word `fj`, detached from word `ew_old` by [`Sampler::detach`], which returned
    /// `saved`) to position `new`.
    // The hot path's state is passed as it is, not bundled into a struct for this one call.
    #[allow(clippy::too_many_arguments)]
    fn attach(
        &mut self,
        phase: Phase,
        e: &[u32],
        fj: u32,
        (old, ew_old, (inv, fert)): (u32, u32, (f64, f64)),
        new: u32,
        prev: u32,
        next: u32,
    ) {
        let ew_new = if new == 0 { 0 } else { e[new as usize - 1] };
        self.counts.cond[ew_new as usize] += 1;
        let u = self.sent.slot[new as usize] as usize;
        if ew_new == ew_old {
            self.sent.inv_cond[u] = inv;
        } else {
            self.sent.inv_cond[u] = self.inv_cond(ew_new);
            self.counts.trans.remove(ew_old, fj);
            self.counts.trans.add(ew_new, fj);
        }
        // Back at its old position, the token restores the counts as they were; if no other position has the
        // word, the only factor they change is the position's own, as it was.
        let restore = new == old && self.sent.mult[u] == 1;
        let change = if restore {
            Change::Restore
        } else {
            Change::Add
        };
        self.structure_update(phase, e, new, prev, next, change);
        if restore {
            self.sent.fert[new as usize] = fert;
        }
    }

    /// Weights ∝ P(a_j = i | everything else) for i = 0..=n into `self.sent.weights`, with token j (generated word
    /// `fj`, linked to word `ew_old`) detached (see the module docs for the factors). Returns their sum.
    fn conditional(
        &mut self,
        phase: Phase,
        e: &[u32],
        fj: u32,
        ew_old: u32,
        prev: u32,
        next: u32,
    ) -> f64 {
        let h = self.h;
        let ps = self.pseudo;
        let row = &self.counts.trans.rows[fj as usize];
        let primed = !ps.trans.is_empty();
        let sc = &mut self.sent;
        // Where each distinct word is (or would be) in the row.
        if row.len() <= 16 {
            // A short row: one walk of it against the distinct words, both sorted.
            let mut lo = 0;
            for (at, &ew) in sc.at.iter_mut().zip(&sc.uniq) {
                lo += row[lo..].iter().take_while(|&&(x, _)| x < ew).count();
                *at = lo;
            }
        } else {
            // A long row: the binary searches of all distinct words in lockstep and branch-free, so that their cache
            // misses overlap instead of each search waiting for the one before.
            sc.at.fill(0);
            let mut size = row.len();
            while size > 1 {
                let half = size / 2;
                for (at, &ew) in sc.at.iter_mut().zip(&sc.uniq) {
                    let mid = *at + half;
                    *at = std::hint::select_unpredictable(row[mid].0 < ew, mid, *at);
                }
                size -= half;
            }
            for (at, &ew) in sc.at.iter_mut().zip(&sc.uniq) {
                *at += usize::from(row[*at].0 < ew);
            }
        }
        for (((t, &ew), &inv), &at) in sc
            .trans
            .iter_mut()
            .zip(&sc.uniq)
            .zip(&sc.inv_cond)
            .zip(&sc.at)
        {
            let linked = match row.get(at) {
                Some(&(x, n)) if x == ew => n,
                _ => 0,
            };
            let cef = f64::from(linked - u32::from(ew == ew_old));
            let num = if primed {
                cef + h.alpha_t + ps.trans_of(ew, fj)
            } else {
                cef + h.alpha_t
            };
            *t = num * inv;
        }
        let mut w = std::mem::take(&mut self.sent.weights);
        let sc = &self.sent;
        let nn = e.len() as u32;
        let jc = |b: usize| sc.jump[b];
        let mut sum;
        if phase == Phase::Ibm1 {
            w[0] = sc.trans[0];
            sum = w[0];
            for (x, &u) in w[1..].iter_mut().zip(&sc.slot[1..]) {
                *x = sc.trans[u as usize];
                sum += *x;
            }
        } else {
            w[0] = sc.trans[0]
                * jc(h.null_bucket())
                * jc(h.jump(prev, next))
                * self.spread(prev, next, nn);
            sum = w[0];
            // In a sentence shorter than max_jump no jump reaches a clamped bucket, so every spread is 1.
            let spreads = i64::from(nn) >= h.max_jump;
            for i in 1..=nn {
                let d1 = h.jump(prev, i);
                let d2 = h.jump(i, next);
                let mut x = sc.trans[sc.slot[i as usize] as usize]
                    * sc.fert[i as usize]
                    * jc(d1)
                    * (jc(d2) + if d1 == d2 { 1.0 } else { 0.0 });
                if spreads {
                    x *= self.spread(prev, i, nn) * self.spread(i, next, nn);
                }
                w[i as usize] = x;
                sum += x;
            }
        }
        self.sent.weights = w;
        sum
    }

    /// Draws an index from the weights (sum `sum`).
    fn draw(&mut self, sum: f64) -> u32 {
        let u = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * sum;
        let weights = &self.sent.weights;
        let mut acc = 0.0;
        for (i, &w) in weights.iter().enumerate() {
            acc += w;
            if u < acc {
                return i as u32;
            }
        }
        // Rounding left u at or above the last partial sum: take the last candidate with weight.
        weights.iter().rposition(|&w| w > 0.0).unwrap_or(0) as u32
    }

    /// Sets up the phase's count tables from the current alignment.
    fn start_phase(&mut self, phase: Phase) {
        // The old tables go first: holding both at once was the sampler's peak.
        self.counts.trans = TransCounts::default();
        self.counts = self.recount(phase);
    }

    /// Resamples token j of sentence k (set up by [`Sampler::begin_sentence`]), whose previous non-NULL position is
    /// `prev`; returns the position drawn.
    fn resample(&mut self, phase: Phase, k: usize, j: usize, prev: u32) -> u32 {
        let (_, e, f) = self.sents.items[k];
        let off = self.sents.tok_off[k];
        let end = e.len() as u32 + 1;
        let fj = f[j];
        let old = self.a[off + j];
        let next = if phase == Phase::Ibm1 {
            end
        } else {
            self.a[off + j + 1..off + f.len()]
                .iter()
                .copied()
                .find(|&x| x != 0)
                .unwrap_or(end)
        };
        let ew_old = if old == 0 { 0 } else { e[old as usize - 1] };
        let saved = self.detach(phase, e, old, ew_old, prev, next);
        let sum = self.conditional(phase, e, fj, ew_old, prev, next);
        let new = self.draw(sum);
        self.attach(phase, e, fj, (old, ew_old, saved), new, prev, next);
        self.a[off + j] = new;
        new
    }

    /// One sweep over the corpus in order; `record` receives (token index, drawn position).
    fn sweep(&mut self, phase: Phase, mut record: impl FnMut(usize, u32)) {
        let sents = self.sents;
        if let Some(&(_, _, f)) = sents.items.first() {
            for &fw in f.iter().chain(sents.items.get(1).map_or(&[][..], |s| s.2)) {
                prefetch(self.counts.trans.rows.as_ptr().wrapping_add(fw as usize));
            }
        }
        for (k, &(_, _, f)) in sents.items.iter().enumerate() {
            let off = sents.tok_off[k];
            self.begin_sentence(phase, k);
            let mut prev = 0u32;
            for j in 0..f.len() {
                let new = self.resample(phase, k, j, prev);
                record(off + j, new);
                if new != 0 {
                    prev = new;
                }
            }
        }
    }
}

/// Two-slot Misra–Gries summary of the positions drawn for one token: any position drawn more than a third of the
/// time is kept, with a count that is at most the number of draws it lost to evictions below its true count.
/// 12 bytes (counts saturate at 65,535 draws).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Summary {
    pos: [u32; 2],
    count: [u16; 2],
}

impl Summary {
    fn add(&mut self, pos: u32) {
        for k in 0..2 {
            if self.count[k] > 0 && self.pos[k] == pos {
                self.count[k] = self.count[k].saturating_add(1);
                return;
            }
        }
        for k in 0..2 {
            if self.count[k] == 0 {
                self.pos[k] = pos;
                self.count[k] = 1;
                return;
            }
        }
        for c in &mut self.count {
            *c -= 1;
        }
    }

    /// (position, count) of the occupied slots.
    fn slots(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..2)
            .filter(|&k| self.count[k] > 0)
            .map(|k| (self.pos[k], u32::from(self.count[k])))
    }
}

/// What one sampler hands back.
struct SamplerOut {
    summaries: Vec<Summary>,
    trans: FlatCounts,
    cond: Vec<u32>,
}

/// A finished sampler's translation counts in one allocation: the rows of [`TransCounts`] end to end, which held
/// one small allocation (and its slack) per generated word while the samplers of the other direction still run.
struct FlatCounts {
    /// Row f is cells\[starts\[f\]..starts\[f + 1\]\].
    starts: Vec<u32>,
    /// (e, count), sorted by e within a row.
    cells: Vec<(u32, u32)>,
}

impl FlatCounts {
    fn new(t: TransCounts) -> Self {
        let mut starts = Vec::with_capacity(t.rows.len() + 1);
        let mut cells = Vec::with_capacity(t.rows.iter().map(Vec::len).sum());
        starts.push(0);
        for row in t.rows {
            cells.extend_from_slice(&row);
            starts.push(u32::try_from(cells.len()).expect("fewer than 2³² links"));
        }
        FlatCounts { starts, cells }
    }

    fn row(&self, f: usize) -> &[(u32, u32)] {
        &self.cells[self.starts[f] as usize..self.starts[f + 1] as usize]
    }
}

fn run_sampler(
    sents: &Sents<'_>,
    h: Hyper,
    pseudo: &Pseudo,
    schedule: [u32; 3],
    seed: u64,
) -> SamplerOut {
    let mut s = Sampler::new(sents, h, pseudo, seed);
    let phases = [Phase::Ibm1, Phase::Hmm, Phase::Fertility];
    let last = schedule.iter().rposition(|&n| n > 0).unwrap_or(0);
    let mut summaries = vec![Summary::default(); sents.tokens()];
    for (p, (&phase, &n)) in phases.iter().zip(&schedule).enumerate() {
        if n == 0 {
            continue;
        }
        s.start_phase(phase);
        for it in 0..n {
            // Samples are pooled over the second half of the final phase (the first half is burn-in).
            if p == last && it >= n / 2 {
                s.sweep(phase, |t, pos| summaries[t].add(pos));
            } else {
                s.sweep(phase, |_, _| {});
            }
        }
    }
    SamplerOut {
        summaries,
        trans: FlatCounts::new(s.counts.trans),
        cond: s.counts.cond,
    }
}

/// Seed of one sampler: the user seed mixed with the direction and the sampler index (SplitMix64's finaliser).
fn sampler_seed(seed: u64, reverse: bool, index: u32) -> u64 {
    let mut z = seed
        .wrapping_add(u64::from(reverse) << 32 | u64::from(index))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Translation table from the samplers' summed counts: t(f | e) = (c̄(e, f) + α_t + π(e, f))/(c̄(e) + V·α_t + Π(e)),
/// c̄ the mean over samplers, π the priors' pseudo-counts; only pairs some sampler linked are stored.
fn translation_table(
    corpus: &Corpus,
    reverse: bool,
    outs: &[SamplerOut],
    h: Hyper,
    pseudo: &Pseudo,
) -> TranslationTable {
    let n_cond = outs[0].cond.len();
    let n_gen = outs[0].trans.starts.len() - 1;
    // The samplers' counts summed per generated word (each row is sorted by e, so a sort of their concatenation
    // brings equal words together), in f-major order: (f, e, count).
    let mut merged: Vec<(u32, u32, u32)> =
        Vec::with_capacity(outs.iter().map(|o| o.trans.cells.len()).sum());
    let mut scratch: Vec<(u32, u32)> = Vec::new();
    for f in 0..n_gen {
        scratch.clear();
        for o in outs {
            scratch.extend_from_slice(o.trans.row(f));
        }
        scratch.sort_unstable_by_key(|&(e, _)| e);
        for &(e, c) in &scratch {
            match merged.last_mut() {
                Some(m) if m.0 == f as u32 && m.1 == e => m.2 += c,
                _ => merged.push((f as u32, e, c)),
            }
        }
    }
    let mut cond_sum = vec![0u64; n_cond];
    for o in outs {
        for (s, &c) in cond_sum.iter_mut().zip(&o.cond) {
            *s += u64::from(c);
        }
    }
    let s = outs.len() as f64;
    // The table's rows are per conditioning word: a counting sort of the f-major cells keeps each row sorted by f.
    let mut row_start = vec![0usize; n_cond + 1];
    for &(_, e, _) in &merged {
        row_start[e as usize + 1] += 1;
    }
    for r in 1..row_start.len() {
        row_start[r] += row_start[r - 1];
    }
    let mut fill = row_start.clone();
    let mut cols = vec![0u32; merged.len()];
    let mut probs = vec![0.0f64; merged.len()];
    for &(f, e, c) in &merged {
        let k = fill[e as usize];
        fill[e as usize] += 1;
        cols[k] = f;
        probs[k] = (f64::from(c) / s + h.alpha_t + pseudo.trans_of(e, f))
            / (cond_sum[e as usize] as f64 / s + h.v_alpha_t + pseudo.cond_of(e));
    }
    drop(merged);
    let (cond, gen_) = if reverse {
        (&corpus.tgt_vocab, &corpus.src_vocab)
    } else {
        (&corpus.src_vocab, &corpus.tgt_vocab)
    };
    TranslationTable::from_parts(Arc::clone(cond), Arc::clone(gen_), row_start, cols, probs)
}

/// One direction's inputs, shared by its samplers.
struct DirectionRun<'a> {
    reverse: bool,
    sents: Sents<'a>,
    h: Hyper,
    pseudo: Pseudo,
    schedule: [u32; 3],
}

impl<'a> DirectionRun<'a> {
    fn new(
        corpus: &'a Corpus,
        params: &BayesParams,
        reverse: bool,
        priors: Option<&DirectionPriors>,
    ) -> Self {
        let sents = Sents::new(corpus, reverse);
        let h = Hyper::new(params, sents.n_gen);
        let (cond_vocab, gen_vocab) = if reverse {
            (&corpus.tgt_vocab, &corpus.src_vocab)
        } else {
            (&corpus.src_vocab, &corpus.tgt_vocab)
        };
        let pseudo = Pseudo::new(&h, priors, cond_vocab, gen_vocab);
        let schedule = params.schedule(sents.items.len());
        DirectionRun {
            reverse,
            sents,
            h,
            pseudo,
            schedule,
        }
    }
}

/// A direction's finished samplers, until the last one lets it be pooled.
type Pending = std::sync::Mutex<(Vec<Option<SamplerOut>>, Option<Alignment>)>;

/// Trains the given directions (reverse flag and priors of each) and returns their alignments in that order.
/// Every sampler of every direction is one job of a single pool, queued in order (direction by direction), so that
/// no core idles while another direction still has samplers to run (3 samplers per direction on 2 cores would
/// leave one idle for a third of the time); a direction is pooled as soon as its last sampler finishes, which
/// frees its samplers' outputs while the next direction runs. Each job's result depends only on its seed and the
/// pooling is in sampler order, so the output does not depend on the thread count or the finishing order.
fn run_directions(
    corpus: &Corpus,
    params: &BayesParams,
    directions: &[(bool, Option<&DirectionPriors>)],
) -> Vec<Alignment> {
    let runs: Vec<DirectionRun<'_>> = directions
        .iter()
        .map(|&(reverse, priors)| DirectionRun::new(corpus, params, reverse, priors))
        .collect();
    let samplers = params.samplers as usize;
    let pending: Vec<Pending> = runs
        .iter()
        .map(|_| std::sync::Mutex::new(((0..samplers).map(|_| None).collect(), None)))
        .collect();
    rayon::scope_fifo(|scope| {
        for (run, slot) in runs.iter().zip(&pending) {
            for k in 0..samplers {
                scope.spawn_fifo(move |_| {
                    let seed = sampler_seed(params.seed, run.reverse, k as u32);
                    let out = run_sampler(&run.sents, run.h, &run.pseudo, run.schedule, seed);
                    let done = {
                        let mut g = slot.lock().unwrap();
                        g.0[k] = Some(out);
                        if g.0.iter().all(Option::is_some) {
                            Some(g.0.drain(..).map(Option::unwrap).collect::<Vec<_>>())
                        } else {
                            None
                        }
                    };
                    if let Some(outs) = done {
                        let a = pool_direction(corpus, run, outs);
                        slot.lock().unwrap().1 = Some(a);
                    }
                });
            }
        }
    });
    pending
        .into_iter()
        .map(|p| p.into_inner().unwrap().1.expect("every sampler ran"))
        .collect()
}

/// Pools one direction's sampler outputs (in sampler order) into links (src-tgt orientation) with their marginals.
fn pool_direction(corpus: &Corpus, run: &DirectionRun<'_>, mut outs: Vec<SamplerOut>) -> Alignment {
    let (reverse, sents, h, pseudo, schedule) =
        (run.reverse, &run.sents, run.h, &run.pseudo, run.schedule);
    let ttable = translation_table(corpus, reverse, &outs, h, pseudo);
    // The count rows are in the table now; only the summaries are still needed.
    for o in &mut outs {
        o.trans = FlatCounts {
            starts: Vec::new(),
            cells: Vec::new(),
        };
    }
    let final_sweeps = schedule.iter().rev().copied().find(|&n| n > 0).unwrap_or(0);
    let draws = outs.len() as f64 * f64::from(final_sweeps - final_sweeps / 2);
    let mut sentences = Sentences::with_capacity(corpus.len());
    sentences.reserve_links(sents.items.iter().map(|(_, _, f)| f.len()).sum());
    let mut pooled: Vec<(u32, u32)> = Vec::new();
    // Each sentence's links are gathered in scratch vectors and copied out at their exact length: growing them
    // in place would leave up to half of every small allocation unused, for every pair of the corpus.
    let mut sa = SentenceAlignment::default();
    for (k, &(index, e, f)) in sents.items.iter().enumerate() {
        sa.links.clear();
        sa.posteriors.clear();
        sa.ttable.clear();
        for (j, &fj) in f.iter().enumerate() {
            let t = sents.tok_off[k] + j;
            pooled.clear();
            for o in &outs {
                for (pos, c) in o.summaries[t].slots() {
                    match pooled.iter_mut().find(|p| p.0 == pos) {
                        Some(p) => p.1 += c,
                        None => pooled.push((pos, c)),
                    }
                }
            }
            // Most frequent position; ties go to the lower position (NULL first), so the result is well defined.
            let Some(&(best, count)) = pooled
                .iter()
                .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)))
            else {
                continue;
            };
            if best == 0 {
                continue;
            }
            let i = best - 1;
            sa.links.push(if reverse {
                (j as u32, i)
            } else {
                (i, j as u32)
            });
            sa.posteriors.push((f64::from(count) / draws) as f32);
            let ew = e[i as usize];
            sa.ttable
                .push(ttable.prob_ids(ew, fj).unwrap_or(0.0) as f32);
        }
        sentences.pad_to(index);
        sentences.push(&sa.links, &sa.posteriors, &sa.ttable);
    }
    sentences.pad_to(corpus.len());
    sentences.shrink_to_fit();
    let stats = AlignStats {
        sentences: corpus.len(),
        aligned: sents.items.len(),
        skipped: corpus.skipped.clone(),
        suspicious_tokens: corpus.suspicious,
        vocab_conditioning: sents.n_cond,
        vocab_generated: sents.n_gen,
        ttable_cells: ttable.cells(),
        final_tension: 0.0,
        mean_length_ratio: sents
            .items
            .iter()
            .map(|(_, e, f)| f.len() as f64 / e.len() as f64)
            .sum::<f64>()
            / sents.items.len() as f64,
        iterations: Vec::new(),
    };
    Alignment {
        reverse,
        sentences,
        posteriors: None,
        stats,
        ttable: Arc::new(ttable),
    }
}

/// Aligns one direction with the Bayesian model: P(tgt | src), or P(src | tgt) with `reverse`; links are 0-based
/// (src index, tgt index) either way.
pub fn align_bayes_corpus<S: AsRef<str> + Sync>(
    src: &[Vec<S>],
    tgt: &[Vec<S>],
    params: &BayesParams,
    reverse: bool,
) -> Result<Alignment, AlignError> {
    params.validate()?;
    let corpus = Corpus::new(src, tgt, params.max_sentence_len, false)?;
    Ok(run_directions(&corpus, params, &[(reverse, None)]).remove(0))
}

/// Aligns one direction of an interned corpus with the Bayesian model (`params.max_sentence_len` is not used:
/// the corpus's own limit applies), its Dirichlet priors raised by that direction's pseudo-counts in `priors`.
pub fn align_bayes_interned(
    corpus: &Corpus,
    params: &BayesParams,
    reverse: bool,
    priors: Option<&Priors>,
) -> Result<Alignment, AlignError> {
    params.validate()?;
    let direction = if reverse {
        Direction::Reverse
    } else {
        Direction::Forward
    };
    let priors = priors.map(|p| p.direction(direction));
    Ok(run_directions(corpus, params, &[(reverse, priors)]).remove(0))
}

/// Aligns in both directions with the Bayesian model, interning the corpus once. Returns (forward, reverse); links
/// are 0-based (src index, tgt index) in both. Deterministic for a given seed whatever the thread count.
pub fn align_bayes_bidirectional<S: AsRef<str> + Sync>(
    src: &[Vec<S>],
    tgt: &[Vec<S>],
    params: &BayesParams,
) -> Result<(Alignment, Alignment), AlignError> {
    align_bayes_bidirectional_with_priors(src, tgt, params, None)
}

/// [`align_bayes_bidirectional`] with each direction's Dirichlet priors raised by the pseudo-counts of `priors`
/// (learned on another corpus with [`Priors::learn`]; words are matched by text).
pub fn align_bayes_bidirectional_with_priors<S: AsRef<str> + Sync>(
    src: &[Vec<S>],
    tgt: &[Vec<S>],
    params: &BayesParams,
    priors: Option<&Priors>,
) -> Result<(Alignment, Alignment), AlignError> {
    params.validate()?;
    let corpus = Corpus::new(src, tgt, params.max_sentence_len, false)?;
    align_bayes_interned_bidirectional(&corpus, params, priors)
}

/// Aligns an interned corpus in both directions with the Bayesian model (`params.max_sentence_len` is not used: the
/// corpus's own limit applies), each direction's Dirichlet priors raised by `priors`' pseudo-counts if given.
/// Returns (forward, reverse), links 0-based (src index, tgt index) in both. The two directions' samplers share
/// one pool of jobs, so this is faster than two calls of [`align_bayes_interned`] when the samplers
/// do not divide evenly among the threads; the output is the same.
pub fn align_bayes_interned_bidirectional(
    corpus: &Corpus,
    params: &BayesParams,
    priors: Option<&Priors>,
) -> Result<(Alignment, Alignment), AlignError> {
    params.validate()?;
    let of = |d| priors.map(|p| p.direction(d));
    let mut both = run_directions(
        corpus,
        params,
        &[
            (false, of(Direction::Forward)),
            (true, of(Direction::Reverse)),
        ],
    );
    let rev = both.pop().expect("two directions");
    let fwd = both.pop().expect("two directions");
    Ok((fwd, rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distortion spread as the model defines it (the sampler's [`Sampler::spread`] reads reciprocals from a
    /// table instead of dividing).
    fn spread_ref(h: &Hyper, from: u32, to: u32, n: u32) -> f64 {
        if to == n + 1 {
            return 1.0;
        }
        let d = i64::from(to) - i64::from(from);
        let (from, n) = (i64::from(from), i64::from(n));
        if d >= h.max_jump {
            1.0 / (n + 1 - from - h.max_jump) as f64
        } else if d <= -h.max_jump {
            1.0 / (from - h.max_jump) as f64
        } else {
            1.0
        }
    }

    /// ln Γ(c + a)/Γ(a) for an integer count c.
    fn ln_rising(c: u32, a: f64) -> f64 {
        (0..c).map(|t| (a + f64::from(t)).ln()).sum()
    }

    /// The collapsed joint ln P(f, a) of the whole corpus (up to a constant that does not depend on a), each
    /// Dirichlet's parameters raised by the sampler's pseudo-counts.
    fn log_joint(s: &Sampler<'_, '_>, phase: Phase) -> f64 {
        let h = s.h;
        let ps = s.pseudo;
        let c = s.recount(phase);
        let mut lp = 0.0;
        for (f, row) in c.trans.rows.iter().enumerate() {
            lp += row
                .iter()
                .map(|&(e, n)| ln_rising(n, h.alpha_t + ps.trans_of(e, f as u32)))
                .sum::<f64>();
        }
        lp -= (c.cond.iter().zip(0..))
            .map(|(&n, e)| ln_rising(n, h.v_alpha_t + ps.cond_of(e)))
            .sum::<f64>();
        if phase != Phase::Ibm1 {
            lp += (c.jump.iter().zip(&ps.jump_alpha))
                .map(|(&n, &a)| ln_rising(n, a))
                .sum::<f64>();
            lp -= ln_rising(c.jump.iter().sum(), ps.jump_alpha.iter().sum());
            for (k, &(_, e, f)) in s.sents.items.iter().enumerate() {
                let n = e.len() as u32;
                let mut prev = 0;
                for &aj in &s.a[s.sents.tok_off[k]..s.sents.tok_off[k] + f.len()] {
                    if aj != 0 {
                        lp += spread_ref(&h, prev, aj, n).ln();
                        prev = aj;
                    }
                }
            }
        }
        if phase == Phase::Fertility {
            let stride = h.max_fert as usize + 1;
            for (r, row) in c.fert.chunks(stride).enumerate() {
                let alpha = |b: usize| ps.fert_alpha(&h, r * stride + b);
                lp += (row.iter().enumerate())
                    .map(|(b, &n)| ln_rising(n, alpha(b)))
                    .sum::<f64>();
                lp -= ln_rising(row.iter().sum(), (0..stride).map(alpha).sum());
            }
        }
        lp
    }

    /// Pseudo-counts on most of `tiny()`'s events, in both directions, of uneven sizes: some words of the corpus,
    /// one it does not have, jumps inside and beyond the clamp, NULL, and fertilities inside and beyond the clamp.
    fn tiny_priors() -> Priors {
        let mut p = Priors::default();
        let words = [
            "la", "maison", "bleue", "fleur", "the", "blue", "house", "flower", "absent",
        ];
        for (d, dir) in [(0, Direction::Forward), (1, Direction::Reverse)] {
            let dp = p.direction_mut(dir);
            for (k, e) in words.iter().enumerate() {
                for (l, f) in words.iter().enumerate() {
                    if (k + 2 * l + d) % 3 == 0 {
                        let cond = (k % 4 != 0).then(|| e.to_string());
                        dp.translation
                            .insert((cond, f.to_string()), 0.5 + ((k * l) % 5) as f64);
                    }
                }
                dp.fertility
                    .insert((e.to_string(), (k % 5) as u32), 1.0 + k as f64 / 3.0);
            }
            for jump in -4..=4 {
                dp.jump
                    .insert(jump, 0.25 * f64::from((jump + 7) as u32 % 4));
            }
            dp.null = 1.5 + d as f64;
        }
        p
    }
    fn tiny() -> (Vec<Vec<&'static str>>, Vec<Vec<&'static str>>) {
        let src = vec![
            vec!["la", "maison", "bleue"],
            vec!["la", "fleur"],
            vec!["maison", "la", "la"],
            vec!["bleue"],
        ];
        let tgt = vec![
            vec!["the", "blue", "house"],
            vec!["the", "flower", "the"],
            vec!["the", "house"],
            vec!["blue", "blue", "house"],
        ];
        (src, tgt)
    }

    fn hyper(sents: &Sents<'_>, max_jump: u32, max_fert: u32) -> Hyper {
        let p = BayesParams {
            alpha_translation: 0.3,
            alpha_jump: 0.7,
            alpha_fertility: 0.4,
            max_jump,
            max_fertility: max_fert,
            ..Default::default()
        };
        Hyper::new(&p, sents.n_gen)
    }

    /// Non-NULL neighbours of token j of sentence k, as a sweep sees them.
    fn neighbours(s: &Sampler<'_, '_>, k: usize, j: usize) -> (u32, u32) {
        let (_, e, f) = s.sents.items[k];
        let a = &s.a[s.sents.tok_off[k]..s.sents.tok_off[k] + f.len()];
        let prev = a[..j].iter().rev().copied().find(|&x| x != 0).unwrap_or(0);
        let next = a[j + 1..]
            .iter()
            .copied()
            .find(|&x| x != 0)
            .unwrap_or(e.len() as u32 + 1);
        (prev, next)
    }

    #[test]
    fn conditionals_match_brute_force_enumeration() {
        check_conditionals(None);
    }

    #[test]
    fn conditionals_with_priors_match_brute_force_enumeration() {
        check_conditionals(Some(&tiny_priors()));
    }

    /// Every token's conditional P(a_j = i | a_−j) as the sampler computes it equals the normalised collapsed joint
    /// of every completion, in both directions and all three phases.
    fn check_conditionals(priors: Option<&Priors>) {
        let (src, tgt) = tiny();
        let corpus = Corpus::new(&src, &tgt, 0, false).unwrap();
        // Small clamps so that clamped jump and fertility buckets are exercised too.
        for reverse in [false, true] {
            let sents = Sents::new(&corpus, reverse);
            let h = hyper(&sents, 2, 2);
            let (cond_vocab, gen_vocab) = if reverse {
                (&corpus.tgt_vocab, &corpus.src_vocab)
            } else {
                (&corpus.src_vocab, &corpus.tgt_vocab)
            };
            let dir = if reverse {
                Direction::Reverse
            } else {
                Direction::Forward
            };
            let pseudo = Pseudo::new(&h, priors.map(|p| p.direction(dir)), cond_vocab, gen_vocab);
            if priors.is_some() {
                assert!(!pseudo.trans.is_empty() && !pseudo.fert_alpha.is_empty());
            }
            for phase in [Phase::Ibm1, Phase::Hmm, Phase::Fertility] {
                let mut s = Sampler::new(&sents, h, &pseudo, 7);
                s.start_phase(phase);
                for _ in 0..3 {
                    s.sweep(phase, |_, _| {});
                }
                let mut checked = 0;
                for k in 0..sents.items.len() {
                    let (_, e, f) = sents.items[k];
                    for (j, &fj) in f.iter().enumerate() {
                        let t = sents.tok_off[k] + j;
                        // Brute force: the joint of every completion of a_j, normalised.
                        let old = s.a[t];
                        let lj: Vec<f64> = (0..=e.len() as u32)
                            .map(|i| {
                                s.a[t] = i;
                                log_joint(&s, phase)
                            })
                            .collect();
                        s.a[t] = old;
                        let mx = lj.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let z: f64 = lj.iter().map(|x| (x - mx).exp()).sum();
                        // The sampler's conditional, with token j removed exactly as a sweep removes it.
                        s.counts = s.recount(phase);
                        s.begin_sentence(phase, k);
                        let (prev, next) = neighbours(&s, k, j);
                        let ew = if old == 0 { 0 } else { e[old as usize - 1] };
                        s.detach(phase, e, old, ew, prev, next);
                        let sum = s.conditional(phase, e, fj, ew, prev, next);
                        for (i, (&w, &l)) in s.sent.weights.iter().zip(&lj).enumerate() {
                            let want = (l - mx).exp() / z;
                            assert!(
                                (w / sum - want).abs() < 1e-12,
                                "{phase:?} rev {reverse} sentence {k} token {j} a={i}: {} vs {want}",
                                w / sum
                            );
                        }
                        s.counts = s.recount(phase);
                        checked += 1;
                    }
                }
                assert_eq!(checked, sents.tokens());
            }
        }
    }

    #[test]
    fn count_tables_equal_a_recount_after_every_sweep() {
        let (src, tgt) = tiny();
        let corpus = Corpus::new(&src, &tgt, 0, false).unwrap();
        let sents = Sents::new(&corpus, false);
        let h = hyper(&sents, 1, 1);
        let pseudo = Pseudo::new(&h, None, &corpus.src_vocab, &corpus.tgt_vocab);
        let mut s = Sampler::new(&sents, h, &pseudo, 3);
        let positions: u32 = sents.items.iter().map(|(_, e, _)| e.len() as u32).sum();
        for phase in [Phase::Ibm1, Phase::Hmm, Phase::Fertility] {
            s.start_phase(phase);
            for _ in 0..20 {
                s.sweep(phase, |_, _| {});
                assert_eq!(s.counts, s.recount(phase), "{phase:?}");
                let c = &s.counts;
                assert_eq!(c.cond.iter().sum::<u32>() as usize, sents.tokens());
                for (f, row) in c.trans.rows.iter().enumerate() {
                    assert!(row.windows(2).all(|w| w[0].0 < w[1].0), "row {f} unsorted");
                    assert!(row.iter().all(|&(_, n)| n > 0), "row {f} keeps a zero");
                }
                if phase != Phase::Ibm1 {
                    // One event per token plus the end jump of every sentence.
                    let events = sents.tokens() + sents.items.len();
                    assert_eq!(c.jump.iter().sum::<u32>() as usize, events);
                }
                if phase == Phase::Fertility {
                    assert_eq!(c.fert.iter().sum::<u32>(), positions);
                }
                assert!(s.a.iter().zip(0..).all(|(&a, t)| {
                    let k = sents.tok_off.partition_point(|&o| o <= t) - 1;
                    a as usize <= sents.items[k].1.len()
                }));
            }
        }
    }

    /// The sentence cache that a sweep keeps current token by token equals one set up afresh after every token, in
    /// every phase, with and without priors (the conditionals' check above sets it up afresh for each token).
    #[test]
    fn sentence_cache_stays_current_through_a_sweep() {
        let (src, tgt) = tiny();
        let corpus = Corpus::new(&src, &tgt, 0, false).unwrap();
        let priors = tiny_priors();
        for primed in [false, true] {
            let sents = Sents::new(&corpus, false);
            let h = hyper(&sents, 1, 2);
            let p = primed.then(|| priors.direction(Direction::Forward));
            let pseudo = Pseudo::new(&h, p, &corpus.src_vocab, &corpus.tgt_vocab);
            let mut s = Sampler::new(&sents, h, &pseudo, 11);
            for phase in [Phase::Ibm1, Phase::Hmm, Phase::Fertility] {
                s.start_phase(phase);
                for _ in 0..5 {
                    for (k, &(_, _, f)) in sents.items.iter().enumerate() {
                        s.begin_sentence(phase, k);
                        let mut prev = 0;
                        for j in 0..f.len() {
                            let new = s.resample(phase, k, j, prev);
                            prev = if new != 0 { new } else { prev };
                            let kept = s.sent.clone();
                            s.begin_sentence(phase, k);
                            assert_eq!(
                                (
                                    kept.phi,
                                    kept.uniq,
                                    kept.slot,
                                    kept.inv_cond,
                                    kept.fert,
                                    kept.jump
                                ),
                                (
                                    s.sent.phi.clone(),
                                    s.sent.uniq.clone(),
                                    s.sent.slot.clone(),
                                    s.sent.inv_cond.clone(),
                                    s.sent.fert.clone(),
                                    s.sent.jump.clone()
                                ),
                                "{phase:?} primed {primed} sentence {k} token {j}"
                            );
                        }
                    }
                    assert_eq!(s.counts, s.recount(phase), "{phase:?}");
                }
            }
        }
    }

    /// Both directions in one pool of jobs give what one direction at a time gives, on any number of threads.
    #[test]
    fn both_directions_at_once_equal_one_at_a_time() {
        let (src, tgt) = tiny();
        let corpus = Corpus::new(&src, &tgt, 0, false).unwrap();
        let p = BayesParams {
            iterations: Some(12),
            ..Default::default()
        };
        let key = |a: &Alignment| (a.reverse, a.links(), a.sentences.clone());
        let one = |reverse| key(&align_bayes_interned(&corpus, &p, reverse, None).unwrap());
        let (want_f, want_r) = (one(false), one(true));
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (f, r) = pool
                .install(|| align_bayes_interned_bidirectional(&corpus, &p, None))
                .unwrap();
            assert_eq!(key(&f), want_f, "{threads} threads");
            assert_eq!(key(&r), want_r, "{threads} threads");
        }
    }

    #[test]
    fn row_search_finds_and_places_in_long_and_short_rows() {
        for len in [0usize, 1, 5, 16, 17, 40, 1000] {
            let row: Vec<(u32, u32)> = (0..len as u32).map(|k| (3 * k + 1, 1)).collect();
            for e in 0..3 * len as u32 + 3 {
                let want = row.binary_search_by_key(&e, |&(x, _)| x);
                assert_eq!(TransCounts::find(&row, e), want, "len {len} e {e}");
            }
        }
    }

    #[test]
    fn summary_keeps_a_position_drawn_more_than_a_third_of_the_time() {
        let mut s = Summary::default();
        for pos in [1, 2, 3, 1, 4, 1, 5, 1, 6, 1] {
            s.add(pos);
        }
        assert!(s.slots().any(|(p, c)| p == 1 && c > 0), "{s:?}");
        assert_eq!(size_of::<Summary>(), 12);
    }
}
