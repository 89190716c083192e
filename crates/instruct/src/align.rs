//! Alignment-based builders: AlignInstruct (with negative swapping), HintInstruct and ReviseInstruct.

use std::collections::{HashMap, HashSet};

use rand::Rng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{InstructError, Result};
use crate::length::{LengthParams, TokenCounter, apply_lengths};
use crate::model::{
    AlignedCorpus, AlignedSentence, Directions, Gold, LanguageNames, Side, XSide, name_of,
};
use crate::row::{BuildOutput, InstructRow, Stats, SwapOrigin, Task};
use crate::template::{self, default_separator};
use crate::{SALT_ALIGN, SALT_HINT, SALT_REVISE, rng_for};

fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
}
fn default_ratio() -> f64 {
    1.0
}
fn default_tries() -> usize {
    8
}
fn default_max_hints() -> usize {
    5
}

/// Parameters of `instruct.align`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AlignParams {
    /// Gold pairs turned into True rows per sentence, sampled without replacement (default 1; 0 = all).
    #[serde(default = "default_one")]
    pub pairs_per_sentence: usize,
    /// False rows per True row (default 1.0 = balanced labels). A fractional part is drawn per sentence, so the
    /// realised ratio matches in expectation; integer ratios are exact unless a negative cannot be built.
    #[serde(default = "default_ratio")]
    pub negative_ratio: f64,
    /// Where replacement spans come from: `same` sentence (default) or `other` sentences of the same language.
    pub negative_origin: SwapOrigin,
    /// Ignore gold pairs and replacement spans without any alphanumeric character (punctuation-only pairs make
    /// trivial assertions). Default true.
    #[serde(default = "default_true")]
    pub skip_punct: bool,
    /// Sentences tried when `negative_origin = "other"` before giving up on a negative (default 8).
    #[serde(default = "default_tries")]
    pub other_tries: usize,
    /// Also reject a replacement whose (source text, target text) is a gold pair of any sentence of the corpus
    /// with the same languages, not only of its own sentence (default true): random spans from other sentences
    /// would otherwise sometimes recreate a true alignment and label it False.
    #[serde(default = "default_true")]
    pub corpus_wide_check: bool,
    /// With `negative_origin = "same"`, take the replacement from another sentence when the sentence itself has no
    /// usable span (short sentences), so the label balance holds; such rows record origin `other` (default true).
    #[serde(default = "default_true")]
    pub fallback_to_other: bool,
    /// Only gold pairs with `score >= min_score` are used (default: all).
    pub min_score: Option<f64>,
    /// Seed of every random choice (default 0).
    pub seed: u64,
    /// Which side is X (default: the non-English side).
    pub x_side: XSide,
    /// Line separator of the template (default "\n").
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Token-length limits.
    pub length: LengthParams,
}

impl Default for AlignParams {
    fn default() -> Self {
        AlignParams {
            pairs_per_sentence: 1,
            negative_ratio: 1.0,
            negative_origin: SwapOrigin::Same,
            skip_punct: true,
            other_tries: 8,
            corpus_wide_check: true,
            fallback_to_other: true,
            min_score: None,
            seed: 0,
            x_side: XSide::NonEnglish,
            separator: default_separator(),
            length: LengthParams::default(),
        }
    }
}

/// How HintInstruct picks its S hints among a sentence's gold pairs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum HintSelection {
    /// Uniformly at random (default; the paper does not say).
    #[default]
    Random,
    /// The highest-scoring pairs.
    TopScore,
}

/// Parameters of `instruct.hint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HintParams {
    /// S: hints per instruction, at most (default 5, App. B). S = min(max_hints, usable gold pairs).
    #[serde(default = "default_max_hints")]
    pub max_hints: usize,
    /// Sentences with fewer usable gold pairs are dropped (default 1).
    #[serde(default = "default_one")]
    pub min_hints: usize,
    /// How hints are chosen (default `random`).
    pub selection: HintSelection,
    /// Translation directions (default `y-to-x`, the paper's).
    #[serde(default = "hint_directions")]
    pub directions: Directions,
    /// Ignore punctuation-only gold pairs (default true).
    #[serde(default = "default_true")]
    pub skip_punct: bool,
    /// Only gold pairs with `score >= min_score` are used (default: all).
    pub min_score: Option<f64>,
    /// Seed (default 0).
    pub seed: u64,
    /// Which side is X (default: the non-English side).
    pub x_side: XSide,
    /// Line separator (default "\n").
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Token-length limits.
    pub length: LengthParams,
}

fn hint_directions() -> Directions {
    Directions::YToX
}

impl Default for HintParams {
    fn default() -> Self {
        HintParams {
            max_hints: 5,
            min_hints: 1,
            selection: HintSelection::Random,
            directions: Directions::YToX,
            skip_punct: true,
            min_score: None,
            seed: 0,
            x_side: XSide::NonEnglish,
            separator: default_separator(),
            length: LengthParams::default(),
        }
    }
}

/// Parameters of `instruct.revise`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReviseParams {
    /// Corrupted instructions per sentence, each from a different gold pair (default 1).
    #[serde(default = "default_one")]
    pub per_sentence: usize,
    /// Where the wrong word comes from: `other` sentences of X's language (default, because a same-sentence swap
    /// duplicates a word the model can see elsewhere in the sentence) or the `same` sentence.
    #[serde(default = "revise_origin")]
    pub origin: SwapOrigin,
    /// Ignore punctuation-only gold pairs and replacements (default true).
    #[serde(default = "default_true")]
    pub skip_punct: bool,
    /// Sentences tried for `origin = "other"` (default 8).
    #[serde(default = "default_tries")]
    pub other_tries: usize,
    /// Reject a wrong word that forms a gold pair with the Y phrase anywhere in the corpus (default true; see
    /// [`AlignParams::corpus_wide_check`]).
    #[serde(default = "default_true")]
    pub corpus_wide_check: bool,
    /// Only gold pairs with `score >= min_score` are used (default: all).
    pub min_score: Option<f64>,
    /// Seed (default 0).
    pub seed: u64,
    /// Which side is X (default: the non-English side).
    pub x_side: XSide,
    /// Line separator (default "\n").
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Token-length limits.
    pub length: LengthParams,
}

fn revise_origin() -> SwapOrigin {
    SwapOrigin::Other
}

impl Default for ReviseParams {
    fn default() -> Self {
        ReviseParams {
            per_sentence: 1,
            origin: SwapOrigin::Other,
            skip_punct: true,
            other_tries: 8,
            corpus_wide_check: true,
            min_score: None,
            seed: 0,
            x_side: XSide::NonEnglish,
            separator: default_separator(),
            length: LengthParams::default(),
        }
    }
}

fn has_alnum(s: &str) -> bool {
    s.chars().any(char::is_alphanumeric)
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// A replacement span for one side of a gold pair.
#[derive(Debug, Clone, PartialEq)]
struct Replacement {
    origin: SwapOrigin,
    /// Index of the sentence in the corpus the span comes from.
    sentence: usize,
    /// Side of that sentence the span lies on.
    side: Side,
    span: (usize, usize),
    text: String,
}

/// Sentences holding tokens, per language, with the side on which that language sits.
type LangPool = HashMap<String, Vec<(usize, Side)>>;

fn lang_pool(corpus: &AlignedCorpus) -> LangPool {
    let mut pool: LangPool = HashMap::new();
    for (i, s) in corpus.sentences.iter().enumerate() {
        for side in [Side::Src, Side::Tgt] {
            if !s.tokens(side).is_empty() {
                pool.entry(s.pair.lang(side).to_string())
                    .or_default()
                    .push((i, side));
            }
        }
    }
    pool
}

/// Shared state of the negative search.
struct Swapper<'a> {
    corpus: &'a AlignedCorpus,
    pool: &'a LangPool,
    skip_punct: bool,
    other_tries: usize,
    /// Every gold (source text, target text) pair of the corpus, per language pair, when the corpus-wide check is
    /// on: a replacement must not recreate a pair that the aligner found anywhere.
    gold_texts: Option<&'a GoldTexts<'a>>,
}

/// Gold text pairs keyed by (src_lang, tgt_lang, src text, tgt text).
type GoldTexts<'a> = HashSet<(&'a str, &'a str, &'a str, &'a str)>;

/// The corpus's gold text pairs.
fn gold_texts(corpus: &AlignedCorpus) -> GoldTexts<'_> {
    let mut set = HashSet::new();
    for s in &corpus.sentences {
        for g in &s.gold {
            set.insert((
                s.pair.src_lang.as_str(),
                s.pair.tgt_lang.as_str(),
                g.src_phrase.as_str(),
                g.tgt_phrase.as_str(),
            ));
            set.insert((
                s.pair.src_lang.as_str(),
                s.pair.tgt_lang.as_str(),
                s.span_text(Side::Src, g.src),
                s.span_text(Side::Tgt, g.tgt),
            ));
        }
    }
    set
}

impl Swapper<'_> {
    /// Finds a span to replace `base`'s `side` with, such that the new pair is not aligned: the span shares no
    /// token with any gold pair linked to `base`'s other side, and its text equals no phrase linked (by position or
    /// by text) to that other side. Span length is `base`'s when possible, else a single token.
    fn find(
        &self,
        si: usize,
        base: &Gold,
        side: Side,
        origin: SwapOrigin,
        rng: &mut ChaCha8Rng,
    ) -> Option<Replacement> {
        let s = &self.corpus.sentences[si];
        let other = side.other();
        let ob = base.span(other);
        let mut forbidden_tok: HashSet<usize> = HashSet::new();
        let mut forbidden_text: HashSet<&str> = HashSet::new();
        for g in &s.gold {
            if overlaps(g.span(other), ob) {
                forbidden_tok.extend(g.span(side).0..g.span(side).1);
                forbidden_text.insert(g.phrase(side));
                forbidden_text.insert(s.span_text(side, g.span(side)));
            }
            if g.phrase(other) == base.phrase(other) {
                forbidden_text.insert(g.phrase(side));
            }
        }
        let base_len = base.span(side).1 - base.span(side).0;
        let lens: Vec<usize> = if base_len > 1 {
            vec![base_len, 1]
        } else {
            vec![1]
        };
        let kept = base.phrase(other);
        let (sl, tl) = (s.pair.src_lang.as_str(), s.pair.tgt_lang.as_str());
        let ok_text = |t: &str| {
            (!self.skip_punct || has_alnum(t))
                && !forbidden_text.contains(t)
                && self.gold_texts.as_ref().is_none_or(|set| {
                    let key = if side == Side::Src {
                        (sl, tl, t, kept)
                    } else {
                        (sl, tl, kept, t)
                    };
                    !set.contains(&key)
                })
        };
        match origin {
            SwapOrigin::Same => {
                for &len in &lens {
                    let n = s.tokens(side).len();
                    let cands: Vec<(usize, usize)> = (0..(n + 1).saturating_sub(len))
                        .map(|a| (a, a + len))
                        .filter(|&(a, b)| (a..b).all(|t| !forbidden_tok.contains(&t)))
                        .filter(|&sp| ok_text(s.span_text(side, sp)))
                        .collect();
                    if !cands.is_empty() {
                        let sp = cands[rng.random_range(0..cands.len())];
                        return Some(Replacement {
                            origin,
                            sentence: si,
                            side,
                            span: sp,
                            text: s.span_text(side, sp).to_string(),
                        });
                    }
                }
                None
            }
            SwapOrigin::Other => {
                let pool = self.pool.get(s.pair.lang(side))?;
                for _ in 0..self.other_tries {
                    let (oi, oside) = pool[rng.random_range(0..pool.len())];
                    if oi == si {
                        continue;
                    }
                    let o = &self.corpus.sentences[oi];
                    for &len in &lens {
                        let n = o.tokens(oside).len();
                        let cands: Vec<(usize, usize)> = (0..(n + 1).saturating_sub(len))
                            .map(|a| (a, a + len))
                            .filter(|&sp| ok_text(o.span_text(oside, sp)))
                            .collect();
                        if !cands.is_empty() {
                            let sp = cands[rng.random_range(0..cands.len())];
                            return Some(Replacement {
                                origin,
                                sentence: oi,
                                side: oside,
                                span: sp,
                                text: o.span_text(oside, sp).to_string(),
                            });
                        }
                    }
                }
                None
            }
        }
    }
}

/// Gold pairs usable as positives under the score and punctuation filters.
fn usable_gold(
    s: &AlignedSentence,
    min_score: Option<f64>,
    skip_punct: bool,
    need_both_alnum: bool,
) -> Vec<&Gold> {
    s.gold
        .iter()
        .filter(|g| min_score.is_none_or(|m| g.score >= m))
        .filter(|g| {
            !skip_punct
                || if need_both_alnum {
                    has_alnum(&g.src_phrase) && has_alnum(&g.tgt_phrase)
                } else {
                    has_alnum(&g.src_phrase) || has_alnum(&g.tgt_phrase)
                }
        })
        .collect()
}

fn check_ratio(field: &'static str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(InstructError::Param {
            field,
            message: format!("must be a finite number >= 0, got {v}"),
        });
    }
    Ok(())
}

fn set_gold_spans(row: &mut InstructRow, g: &Gold) {
    row.src_start = Some(g.src.0 as u32);
    row.src_end = Some(g.src.1 as u32);
    row.tgt_start = Some(g.tgt.0 as u32);
    row.tgt_end = Some(g.tgt.1 as u32);
}

fn set_swap(row: &mut InstructRow, corpus: &AlignedCorpus, r: &Replacement, swapped: Side) {
    row.swapped_side = Some(swapped);
    row.swap_origin = Some(r.origin);
    row.swap_pair_id = Some(corpus.sentences[r.sentence].pair.pair_id);
    row.swap_start = Some(r.span.0 as u32);
    row.swap_end = Some(r.span.1 as u32);
}

/// Per-sentence result: rows plus drop reasons.
type Part = Result<(Vec<InstructRow>, Vec<&'static str>)>;

fn gather(parts: Vec<Part>, stats: &mut Stats) -> Result<Vec<InstructRow>> {
    let mut rows = Vec::new();
    for p in parts {
        let (r, drops) = p?;
        rows.extend(r);
        for d in drops {
            stats.drop_n(d, 1);
        }
    }
    Ok(rows)
}

/// AlignInstruct: per sentence, `pairs_per_sentence` gold pairs become True assertions and `negative_ratio` times as
/// many False assertions are made by negative swapping (one side of a chosen gold pair, picked uniformly, replaced
/// by an unaligned span; see [`AlignParams`]). Rows record the gold spans, the swapped side, the origin and the
/// replacement span. Sentences are processed in parallel with a per-pair RNG, so the output is independent of the
/// thread count.
pub fn build_align(
    corpus: &AlignedCorpus,
    names: &dyn LanguageNames,
    counter: &TokenCounter,
    params: &AlignParams,
) -> Result<BuildOutput> {
    AlignBuilder::new(corpus, names, counter, params)?.sentences(0..corpus.sentences.len())
}

/// [`build_align`] for any range of the corpus's sentences, with every other sentence still available to negative
/// swapping: building a large corpus range by range gives, concatenated, the rows of one call (each sentence has
/// its own random stream), while only one range's rows exist as structs at a time.
pub struct AlignBuilder<'c> {
    corpus: &'c AlignedCorpus,
    names: &'c dyn LanguageNames,
    counter: &'c TokenCounter,
    params: &'c AlignParams,
    pool: LangPool,
    gold_texts: Option<GoldTexts<'c>>,
}

impl<'c> AlignBuilder<'c> {
    /// Checks the parameters and indexes the corpus for swapping.
    pub fn new(
        corpus: &'c AlignedCorpus,
        names: &'c dyn LanguageNames,
        counter: &'c TokenCounter,
        params: &'c AlignParams,
    ) -> Result<Self> {
        check_ratio("negative_ratio", params.negative_ratio)?;
        Ok(AlignBuilder {
            corpus,
            names,
            counter,
            params,
            pool: lang_pool(corpus),
            gold_texts: params.corpus_wide_check.then(|| gold_texts(corpus)),
        })
    }

    /// The rows of sentences `range` (indices into the corpus), with their counts.
    pub fn sentences(&self, range: std::ops::Range<usize>) -> Result<BuildOutput> {
        let (corpus, names, counter, params) = (self.corpus, self.names, self.counter, self.params);
        let swapper = Swapper {
            corpus,
            pool: &self.pool,
            skip_punct: params.skip_punct,
            other_tries: params.other_tries,
            gold_texts: self.gold_texts.as_ref(),
        };
        let sep = params.separator.as_str();
        let parts: Vec<Part> = range
            .into_par_iter()
            .map(|si| {
                let s = &corpus.sentences[si];
                let p = &s.pair;
                let mut drops = Vec::new();
                let gold = usable_gold(s, params.min_score, params.skip_punct, true);
                if gold.is_empty() {
                    drops.push("no_gold_pairs");
                    return Ok((Vec::new(), drops));
                }
                let xs = p.x_side(params.x_side);
                let ys = xs.other();
                let (x_name, y_name) = (name_of(names, p, xs)?, name_of(names, p, ys)?);
                let mut rng = rng_for(params.seed, SALT_ALIGN, p.pair_id);
                let k = if params.pairs_per_sentence == 0 {
                    gold.len()
                } else {
                    params.pairs_per_sentence.min(gold.len())
                };
                let mut chosen = sample(&mut rng, gold.len(), k).into_vec();
                chosen.sort_unstable();
                let row_for = |y_phrase: &str, x_phrase: &str, label: bool| {
                    InstructRow::generated(
                        Task::Align,
                        p.lang(ys),
                        p.lang(xs),
                        p.pair_id,
                        template::align_input(
                            sep,
                            &y_name,
                            &x_name,
                            p.text(ys),
                            p.text(xs),
                            y_phrase,
                            x_phrase,
                        ),
                        template::align_output(label),
                    )
                };
                let mut rows = Vec::new();
                for &c in &chosen {
                    let g = gold[c];
                    let mut r = row_for(g.phrase(ys), g.phrase(xs), true);
                    r.label = Some(true);
                    set_gold_spans(&mut r, g);
                    rows.push(r);
                }
                let want = k as f64 * params.negative_ratio;
                let mut n_neg = want.floor() as usize;
                if rng.random_bool((want - want.floor()).clamp(0.0, 1.0)) {
                    n_neg += 1;
                }
                let mut used: HashSet<(usize, Side, usize, usize, usize)> = HashSet::new();
                for j in 0..n_neg {
                    let g = gold[chosen[j % k]];
                    let mut made = None;
                    // A few attempts so that ratios above 1 do not repeat the same negative for one gold pair.
                    for _ in 0..4 {
                        let first = if rng.random_bool(0.5) {
                            Side::Src
                        } else {
                            Side::Tgt
                        };
                        let try_origin = |origin: SwapOrigin, rng: &mut ChaCha8Rng| {
                            swapper
                                .find(si, g, first, origin, rng)
                                .map(|r| (first, r))
                                .or_else(|| {
                                    swapper
                                        .find(si, g, first.other(), origin, rng)
                                        .map(|r| (first.other(), r))
                                })
                        };
                        let mut rep = try_origin(params.negative_origin, &mut rng);
                        if rep.is_none()
                            && params.negative_origin == SwapOrigin::Same
                            && params.fallback_to_other
                        {
                            rep = try_origin(SwapOrigin::Other, &mut rng);
                        }
                        match rep {
                            Some((side, r))
                                if used.insert((
                                    chosen[j % k],
                                    side,
                                    r.sentence,
                                    r.span.0,
                                    r.span.1,
                                )) =>
                            {
                                made = Some((side, r));
                                break;
                            }
                            Some(_) => continue,
                            None => break,
                        }
                    }
                    let Some((side, rep)) = made else {
                        drops.push("no_negative_candidate");
                        continue;
                    };
                    let (yp, xp) = if side == ys {
                        (rep.text.as_str(), g.phrase(xs))
                    } else {
                        (g.phrase(ys), rep.text.as_str())
                    };
                    let mut r = row_for(yp, xp, false);
                    r.label = Some(false);
                    set_gold_spans(&mut r, g);
                    set_swap(&mut r, corpus, &rep, side);
                    rows.push(r);
                }
                Ok((rows, drops))
            })
            .collect();
        finish(parts, counter, &params.length)
    }
}

fn finish(parts: Vec<Part>, counter: &TokenCounter, length: &LengthParams) -> Result<BuildOutput> {
    let mut stats = Stats::default();
    let rows = gather(parts, &mut stats)?;
    let rows = apply_lengths(rows, counter, length, &mut stats)?;
    stats.count_rows(&rows);
    Ok(BuildOutput { rows, stats })
}

/// Translation roles (from, to) for a pair.
pub(crate) fn roles(xs: Side, directions: Directions) -> Vec<(Side, Side)> {
    let ys = xs.other();
    match directions {
        Directions::Both => vec![(ys, xs), (xs, ys)],
        Directions::YToX => vec![(ys, xs)],
        Directions::XToY => vec![(xs, ys)],
    }
}

/// HintInstruct: per sentence and direction, S = min(`max_hints`, usable gold pairs) hints `(target phrase, source
/// phrase)` listed in target-sentence order, then the translation prompt; output ` {target}`.
pub fn build_hint(
    corpus: &AlignedCorpus,
    names: &dyn LanguageNames,
    counter: &TokenCounter,
    params: &HintParams,
) -> Result<BuildOutput> {
    if params.max_hints == 0 {
        return Err(InstructError::Param {
            field: "max_hints",
            message: "must be at least 1".into(),
        });
    }
    let sep = params.separator.as_str();
    let parts: Vec<Part> = corpus
        .sentences
        .par_iter()
        .map(|s| {
            let p = &s.pair;
            let gold = usable_gold(s, params.min_score, params.skip_punct, true);
            if gold.is_empty() || gold.len() < params.min_hints {
                return Ok((
                    Vec::new(),
                    vec![if gold.is_empty() {
                        "no_gold_pairs"
                    } else {
                        "too_few_gold_pairs"
                    }],
                ));
            }
            let mut rng = rng_for(params.seed, SALT_HINT, p.pair_id);
            let n = params.max_hints.min(gold.len());
            let mut picked: Vec<&Gold> = match params.selection {
                HintSelection::Random => sample(&mut rng, gold.len(), n)
                    .into_iter()
                    .map(|i| gold[i])
                    .collect(),
                HintSelection::TopScore => {
                    let mut g = gold.clone();
                    g.sort_by(|a, b| b.score.total_cmp(&a.score));
                    g.truncate(n);
                    g
                }
            };
            let xs = p.x_side(params.x_side);
            let mut rows = Vec::new();
            for (from, to) in roles(xs, params.directions) {
                picked.sort_by_key(|g| (g.span(to), g.span(from)));
                let hints: Vec<(&str, &str)> = picked
                    .iter()
                    .map(|g| (g.phrase(to), g.phrase(from)))
                    .collect();
                let (from_name, to_name) = (name_of(names, p, from)?, name_of(names, p, to)?);
                rows.push(InstructRow::generated(
                    Task::Hint,
                    p.lang(from),
                    p.lang(to),
                    p.pair_id,
                    template::hint_input(sep, &from_name, &to_name, &hints, p.text(from)),
                    template::mt_output(p.text(to)),
                ));
            }
            Ok((rows, Vec::new()))
        })
        .collect();
    finish(parts, counter, &params.length)
}

/// ReviseInstruct: per sentence, `per_sentence` gold pairs have their X span replaced by an unaligned span (same
/// rules as AlignInstruct's negatives, from `origin`); the model must name the wrong word and the right one.
pub fn build_revise(
    corpus: &AlignedCorpus,
    names: &dyn LanguageNames,
    counter: &TokenCounter,
    params: &ReviseParams,
) -> Result<BuildOutput> {
    let pool = lang_pool(corpus);
    let gold_set = params.corpus_wide_check.then(|| gold_texts(corpus));
    let swapper = Swapper {
        corpus,
        pool: &pool,
        skip_punct: params.skip_punct,
        other_tries: params.other_tries,
        gold_texts: gold_set.as_ref(),
    };
    let sep = params.separator.as_str();
    let parts: Vec<Part> = (0..corpus.sentences.len())
        .into_par_iter()
        .map(|si| {
            let s = &corpus.sentences[si];
            let p = &s.pair;
            let xs = p.x_side(params.x_side);
            let ys = xs.other();
            let gold: Vec<&Gold> = usable_gold(s, params.min_score, params.skip_punct, true);
            if gold.is_empty() {
                return Ok((Vec::new(), vec!["no_gold_pairs"]));
            }
            let (x_name, y_name) = (name_of(names, p, xs)?, name_of(names, p, ys)?);
            let mut rng = rng_for(params.seed, SALT_REVISE, p.pair_id);
            let k = params.per_sentence.min(gold.len());
            let mut chosen = sample(&mut rng, gold.len(), k).into_vec();
            chosen.sort_unstable();
            let mut rows = Vec::new();
            let mut drops = Vec::new();
            for c in chosen {
                let g = gold[c];
                let Some(rep) = swapper.find(si, g, xs, params.origin, &mut rng) else {
                    drops.push("no_corruption_candidate");
                    continue;
                };
                let (b0, b1) = s.byte_range(xs, g.span(xs));
                let x = p.text(xs);
                let corrupted = format!("{}{}{}", &x[..b0], rep.text, &x[b1..]);
                let mut r = InstructRow::generated(
                    Task::Revise,
                    p.lang(ys),
                    p.lang(xs),
                    p.pair_id,
                    template::revise_input(sep, &y_name, &x_name, p.text(ys), &corrupted),
                    template::revise_output(&rep.text, &x[b0..b1]),
                );
                set_gold_spans(&mut r, g);
                set_swap(&mut r, corpus, &rep, xs);
                rows.push(r);
            }
            Ok((rows, drops))
        })
        .collect();
    finish(parts, counter, &params.length)
}
