//! Gold word/phrase pairs for AlignInstruct: contiguous span pairs consistent with a (symmetrized) alignment,
//! scored by the model, filtered by a threshold, punctuation-only pairs dropped.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ibm2::{Alignment, Corpus, Ibm2Params, posteriors_at};
use crate::pharaoh::Link;
use crate::tokenize::Token;

/// How a pair is scored. Every kind is the mean over the pair's links of a per-link score in [0, 1].
///
/// The default, `translation_prob ≥ 0.1`, keeps as many one-word pairs as `posterior ≥ 0.5` (76% / 75% of them on the
/// en-fr / ro-en gold sets) with more of them gold links (82.2% / 80.5% sure vs 76.6% / 79.1%); measured by
/// `examples/pair_scores.rs`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// (q_fwd(i, j) + q_rev(i, j)) / 2 with q the final posteriors; where the alignments were run without
    /// `keep_posteriors`, a direction whose Viterbi alignment lacks the link contributes 0.
    Posterior,
    /// √(t_fwd(tgt | src) · t_rev(src | tgt)), from the final translation tables. Default.
    #[default]
    TranslationProb,
    /// Posterior score × translation-probability score.
    Product,
}

/// Which span pairs are kept and how they are scored: the parameters of extraction from stored scores (the
/// `align.pairs` stage flattens this struct, so its keys are the stage's keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PairFilter {
    /// Maximum span length in tokens on each side (default 1: word pairs, as AlignInstruct uses), at least 1.
    pub max_len: usize,
    /// Keep pairs whose score is at least this (default 0.1).
    pub min_score: f64,
    /// Per-link score averaged over the pair's links (default `translation_prob`).
    pub score: ScoreKind,
    /// Drop pairs where either side has no alphanumeric character (default true).
    pub skip_punctuation: bool,
}

impl Default for PairFilter {
    fn default() -> Self {
        Self {
            max_len: 1,
            min_score: 0.1,
            score: ScoreKind::TranslationProb,
            skip_punctuation: true,
        }
    }
}

impl PairFilter {
    /// Checks `max_len` and `min_score`; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.max_len == 0 {
            return Err(("max_len", "must be at least 1"));
        }
        if !self.min_score.is_finite() {
            return Err(("min_score", "must be a finite number"));
        }
        Ok(())
    }
}

/// Parameters of pair extraction from alignment runs: the filter, and how words are looked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(default)]
pub struct PairParams {
    /// Span and score filter.
    #[serde(flatten)]
    pub filter: PairFilter,
    /// Lowercase token text before translation-table look-ups; must match how the aligned words were made
    /// (default false).
    pub lowercase: bool,
}

/// One extracted pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    /// 0-based sentence index.
    pub sentence: usize,
    /// Source token span [start, end).
    pub src_span: (u32, u32),
    /// Target token span [start, end).
    pub tgt_span: (u32, u32),
    /// Source phrase as written in the original text (from the first token's start to the last token's end).
    pub src_text: String,
    /// Target phrase as written in the original text.
    pub tgt_text: String,
    /// Pair score (see [`ScoreKind`]).
    pub score: f64,
    /// Number of links inside the pair.
    pub links: u32,
}

/// Errors of [`extract_pairs`], [`extract_pairs_scored`] and [`link_scores`].
#[derive(Debug, Error)]
pub enum PairError {
    /// Inputs with different sentence counts.
    #[error("input `{field}` has {got} sentences, expected {expected}")]
    Count {
        /// The input at fault.
        field: &'static str,
        /// Its sentence count.
        got: usize,
        /// The alignment's sentence count.
        expected: usize,
    },
    /// A link points past the end of a sentence.
    #[error("sentence {sentence}: link {i}-{j} is outside the {n_src}x{n_tgt} token grid")]
    LinkOutOfRange {
        /// 0-based sentence index.
        sentence: usize,
        /// Source index of the link.
        i: u32,
        /// Target index of the link.
        j: u32,
        /// Source token count.
        n_src: usize,
        /// Target token count.
        n_tgt: usize,
    },
    /// A token span does not fit its original sentence.
    #[error("sentence {sentence}: a token span is not a valid range of the original text")]
    SpanOutOfText {
        /// 0-based sentence index.
        sentence: usize,
    },
    /// `max_len` is 0.
    #[error("invalid parameter `max_len`: must be at least 1")]
    MaxLen,
    /// A sentence has a different number of link scores than links.
    #[error("sentence {sentence}: {links} links but {scores} link scores")]
    ScoreCount {
        /// 0-based sentence index.
        sentence: usize,
        /// Number of links.
        links: usize,
        /// Number of scores.
        scores: usize,
    },
    /// The aligner refused the request (e.g. a released table, or cells of a different corpus).
    #[error(transparent)]
    Align(#[from] crate::AlignError),
}

/// Everything pair extraction reads, per sentence.
#[derive(Debug, Clone, Copy)]
pub struct PairInput<'a> {
    /// Original source sentences (the tokens' spans index into them).
    pub src_text: &'a [&'a str],
    /// Original target sentences.
    pub tgt_text: &'a [&'a str],
    /// Source tokens (from [`crate::tokenize()`] on the original text; `text` borrows it).
    pub src_tokens: &'a [Vec<Token<'a>>],
    /// Target tokens.
    pub tgt_tokens: &'a [Vec<Token<'a>>],
    /// Symmetrized links (src, tgt), 0-based.
    pub links: &'a [Vec<Link>],
    /// Forward alignment run (for scores).
    pub forward: &'a Alignment,
    /// Reverse alignment run (for scores).
    pub reverse: &'a Alignment,
}

/// Model scores of one symmetrized link, as computed by [`link_scores`] (both in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LinkScore {
    /// (q_fwd(i, j) + q_rev(i, j)) / 2, q the final posteriors (a direction run without `keep_posteriors`
    /// contributes 0 when its Viterbi alignment lacks the link).
    pub posterior: f64,
    /// √(t_fwd(tgt | src) · t_rev(src | tgt)) from the final translation tables, capped at 1 (0 for unseen pairs).
    pub tprob: f64,
}

impl LinkScore {
    /// The per-link score of the given kind.
    pub fn get(&self, kind: ScoreKind) -> f64 {
        match kind {
            ScoreKind::Posterior => self.posterior,
            ScoreKind::TranslationProb => self.tprob,
            ScoreKind::Product => self.posterior * self.tprob,
        }
    }
}

/// Pair extraction from stored per-link scores (no [`Alignment`] needed), e.g. from a table.
#[derive(Debug, Clone, Copy)]
pub struct ScoredPairInput<'a> {
    /// Original source sentences (the tokens' spans index into them).
    pub src_text: &'a [&'a str],
    /// Original target sentences.
    pub tgt_text: &'a [&'a str],
    /// Source tokens with byte spans into `src_text` (their `text` is not read).
    pub src_tokens: &'a [Vec<Token<'a>>],
    /// Target tokens.
    pub tgt_tokens: &'a [Vec<Token<'a>>],
    /// Symmetrized links (src, tgt), 0-based.
    pub links: &'a [Vec<Link>],
    /// One score per link, parallel to `links`.
    pub scores: &'a [Vec<LinkScore>],
}

/// What pair extraction saw and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PairStats {
    /// Sentences with no link at all (nothing to extract).
    pub sentences_without_links: u64,
    /// Span pairs consistent with the alignment and within `max_len` (candidates).
    pub candidates: u64,
    /// Candidates dropped because a side has no alphanumeric character (`skip_punctuation`).
    pub punctuation: u64,
    /// Candidates dropped because their score is below `min_score`.
    pub below_threshold: u64,
    /// Pairs kept.
    pub kept: u64,
}

impl PairStats {
    /// Adds the counts of `o` (of other sentences) to these.
    pub fn add(&mut self, o: &PairStats) {
        self.sentences_without_links += o.sentences_without_links;
        self.candidates += o.candidates;
        self.punctuation += o.punctuation;
        self.below_threshold += o.below_threshold;
        self.kept += o.kept;
    }
}

fn has_alnum(s: &str) -> bool {
    s.chars().any(char::is_alphanumeric)
}

fn link_posterior(a: &Alignment, k: usize, i: u32, j: u32) -> f64 {
    if let Some(p) = a.posteriors.as_ref() {
        return f64::from(p[k].get(i, j));
    }
    let s = a.sentences.get(k);
    s.links
        .iter()
        .position(|&l| l == (i, j))
        .map_or(0.0, |x| f64::from(s.posteriors[x]))
}

/// Per-link scores of the symmetrized `links` under the two directional runs (parallel, sentence order).
///
/// `src_words` / `tgt_words` are the words as the models saw them (used for translation-table look-ups);
/// `lowercase` lowercases them first (for words taken from the original text when the models were trained on
/// lowercased text).
pub fn link_scores<S: AsRef<str> + Sync>(
    src_words: &[Vec<S>],
    tgt_words: &[Vec<S>],
    links: &[Vec<Link>],
    forward: &Alignment,
    reverse: &Alignment,
    lowercase: bool,
) -> Result<Vec<Vec<LinkScore>>, PairError> {
    let n = links.len();
    let check = |field, got: usize| {
        if got == n {
            Ok(())
        } else {
            Err(PairError::Count {
                field,
                got,
                expected: n,
            })
        }
    };
    check("src_tokens", src_words.len())?;
    check("tgt_tokens", tgt_words.len())?;
    check("forward", forward.sentences.len())?;
    check("reverse", reverse.sentences.len())?;
    check_links(links, |k| (src_words[k].len(), tgt_words[k].len()))?;
    Ok((0..n)
        .into_par_iter()
        .map(|k| {
            fn word(w: &str, lowercase: bool) -> std::borrow::Cow<'_, str> {
                if lowercase {
                    w.to_lowercase().into()
                } else {
                    w.into()
                }
            }
            links[k]
                .iter()
                .map(|&(i, j)| {
                    let posterior =
                        (link_posterior(forward, k, i, j) + link_posterior(reverse, k, i, j)) / 2.0;
                    let (s, t) = (
                        word(src_words[k][i as usize].as_ref(), lowercase),
                        word(tgt_words[k][j as usize].as_ref(), lowercase),
                    );
                    let f = forward.ttable.prob(Some(&s), &t).unwrap_or(0.0);
                    let r = reverse.ttable.prob(Some(&t), &s).unwrap_or(0.0);
                    LinkScore {
                        posterior,
                        tprob: (f * r).sqrt().min(1.0),
                    }
                })
                .collect()
        })
        .collect())
}

/// [`link_scores`] on the interned corpus the two runs were trained on: words by id, no string look-ups. With
/// `ibm2` (the parameters of two IBM2 runs) every link gets both directions' exact posteriors, computed at the link
/// from the final parameters ([`crate::ibm2::posteriors_at`]: the values `keep_posteriors` matrices hold, without
/// storing them); without it (Bayesian runs) a direction scores a link by its own posterior for it, 0 if its
/// alignment lacks the link.
pub fn link_scores_interned(
    corpus: &Corpus,
    links: &[Vec<Link>],
    forward: &Alignment,
    reverse: &Alignment,
    ibm2: Option<&Ibm2Params>,
) -> Result<Vec<Vec<LinkScore>>, PairError> {
    let n = corpus.len();
    for (field, got) in [
        ("links", links.len()),
        ("forward", forward.sentences.len()),
        ("reverse", reverse.sentences.len()),
    ] {
        if got != n {
            return Err(PairError::Count {
                field,
                got,
                expected: n,
            });
        }
    }
    check_links(links, |k| {
        let (s, t) = corpus.pair_ids(k);
        (s.len(), t.len())
    })?;
    let exact = match ibm2 {
        Some(p) => Some((
            posteriors_at(corpus, forward, p, links)?,
            posteriors_at(corpus, reverse, p, links)?,
        )),
        None => None,
    };
    Ok((0..n)
        .into_par_iter()
        .map(|k| {
            let (s, t) = corpus.pair_ids(k);
            links[k]
                .iter()
                .enumerate()
                .map(|(x, &(i, j))| {
                    let posterior = match &exact {
                        Some((qf, qr)) => (f64::from(qf[k][x]) + f64::from(qr[k][x])) / 2.0,
                        None => {
                            (link_posterior(forward, k, i, j) + link_posterior(reverse, k, i, j))
                                / 2.0
                        }
                    };
                    let (e, f) = (s[i as usize], t[j as usize]);
                    let tf = forward.ttable.prob_ids(e, f).unwrap_or(0.0);
                    let tr = reverse.ttable.prob_ids(f, e).unwrap_or(0.0);
                    LinkScore {
                        posterior,
                        tprob: (tf * tr).sqrt().min(1.0),
                    }
                })
                .collect()
        })
        .collect())
}

fn check_links(
    links: &[Vec<Link>],
    dims: impl Fn(usize) -> (usize, usize),
) -> Result<(), PairError> {
    for (k, ls) in links.iter().enumerate() {
        let (ns, nt) = dims(k);
        if let Some(&(i, j)) = ls
            .iter()
            .find(|&&(i, j)| i as usize >= ns || j as usize >= nt)
        {
            return Err(PairError::LinkOutOfRange {
                sentence: k,
                i,
                j,
                n_src: ns,
                n_tgt: nt,
            });
        }
    }
    Ok(())
}

/// Extracts scored pairs from every sentence (parallel, output in sentence then span order): a thin wrapper over
/// [`link_scores`] (with `params.lowercase`) and [`extract_pairs_scored`].
///
/// A span pair is kept when it has at least one link, no link leaves it on either side, both its first and last
/// tokens on each side are aligned (no unaligned boundary words), both spans have at most `max_len` tokens, the
/// score reaches `min_score`, and (with `skip_punctuation`) both sides contain an alphanumeric character.
pub fn extract_pairs(input: PairInput<'_>, params: &PairParams) -> Result<Vec<PairRow>, PairError> {
    // Scores are computed before `extract_pairs_scored` repeats these checks: they must hold for `link_scores`.
    check_inputs(
        &params.filter,
        input.links.len(),
        input.src_text,
        input.tgt_text,
        input.src_tokens,
        input.tgt_tokens,
    )?;
    fn words<'t>(toks: &[Vec<Token<'t>>]) -> Vec<Vec<&'t str>> {
        toks.iter()
            .map(|s| s.iter().map(|t| t.text).collect())
            .collect()
    }
    let scores = link_scores(
        &words(input.src_tokens),
        &words(input.tgt_tokens),
        input.links,
        input.forward,
        input.reverse,
        params.lowercase,
    )?;
    let scored = ScoredPairInput {
        src_text: input.src_text,
        tgt_text: input.tgt_text,
        src_tokens: input.src_tokens,
        tgt_tokens: input.tgt_tokens,
        links: input.links,
        scores: &scores,
    };
    Ok(extract_pairs_scored(scored, &params.filter)?.0)
}

/// Checks `max_len`, that every per-sentence input has one entry per sentence of `links`, and that token spans
/// fit their sentences.
fn check_inputs(
    params: &PairFilter,
    n: usize,
    src_text: &[&str],
    tgt_text: &[&str],
    src_tokens: &[Vec<Token<'_>>],
    tgt_tokens: &[Vec<Token<'_>>],
) -> Result<(), PairError> {
    if params.max_len == 0 {
        return Err(PairError::MaxLen);
    }
    for (field, got) in [
        ("src_text", src_text.len()),
        ("tgt_text", tgt_text.len()),
        ("src_tokens", src_tokens.len()),
        ("tgt_tokens", tgt_tokens.len()),
    ] {
        if got != n {
            return Err(PairError::Count {
                field,
                got,
                expected: n,
            });
        }
    }
    check_spans(src_text, tgt_text, src_tokens, tgt_tokens)
}

fn check_spans(
    src_text: &[&str],
    tgt_text: &[&str],
    src_tokens: &[Vec<Token<'_>>],
    tgt_tokens: &[Vec<Token<'_>>],
) -> Result<(), PairError> {
    let spans_ok = |text: &str, toks: &[Token<'_>]| {
        toks.iter()
            .all(|t| t.start <= t.end && t.end <= text.len() && text.get(t.start..t.end).is_some())
    };
    for k in 0..src_text.len() {
        if !spans_ok(src_text[k], &src_tokens[k]) || !spans_ok(tgt_text[k], &tgt_tokens[k]) {
            return Err(PairError::SpanOutOfText { sentence: k });
        }
    }
    Ok(())
}

/// Extracts scored pairs from stored per-link scores (see [`extract_pairs`] for the rules), with counts of what
/// was considered and dropped. Parallel; output in sentence then span order.
pub fn extract_pairs_scored(
    input: ScoredPairInput<'_>,
    params: &PairFilter,
) -> Result<(Vec<PairRow>, PairStats), PairError> {
    let n = input.links.len();
    check_inputs(
        params,
        n,
        input.src_text,
        input.tgt_text,
        input.src_tokens,
        input.tgt_tokens,
    )?;
    if input.scores.len() != n {
        return Err(PairError::Count {
            field: "scores",
            got: input.scores.len(),
            expected: n,
        });
    }
    check_links(input.links, |k| {
        (input.src_tokens[k].len(), input.tgt_tokens[k].len())
    })?;
    for (k, (l, sc)) in input.links.iter().zip(input.scores).enumerate() {
        if l.len() != sc.len() {
            return Err(PairError::ScoreCount {
                sentence: k,
                links: l.len(),
                scores: sc.len(),
            });
        }
    }
    let rows: Vec<(Vec<PairRow>, PairStats)> = (0..n)
        .into_par_iter()
        .map(|k| sentence_pairs(&input, params, k))
        .collect();
    let mut stats = PairStats::default();
    let mut out = Vec::new();
    for (r, st) in rows {
        stats.add(&st);
        out.extend(r);
    }
    Ok((out, stats))
}

fn sentence_pairs(
    input: &ScoredPairInput<'_>,
    params: &PairFilter,
    k: usize,
) -> (Vec<PairRow>, PairStats) {
    let (st, tt) = (&input.src_tokens[k], &input.tgt_tokens[k]);
    let links = &input.links[k];
    let scores = &input.scores[k];
    let mut out = Vec::new();
    let mut stats = PairStats::default();
    if links.is_empty() {
        stats.sentences_without_links = 1;
        return (out, stats);
    }
    let mut src_aligned = vec![false; st.len()];
    for &(i, _) in links {
        src_aligned[i as usize] = true;
    }
    for s1 in 0..st.len() {
        if !src_aligned[s1] {
            continue;
        }
        for (s2, _) in src_aligned
            .iter()
            .enumerate()
            .take(st.len().min(s1 + params.max_len))
            .skip(s1)
            .filter(|(_, a)| **a)
        {
            let inside = |i: u32| (s1 as u32..=s2 as u32).contains(&i);
            let (mut t1, mut t2) = (u32::MAX, 0u32);
            for &(i, j) in links {
                if inside(i) {
                    t1 = t1.min(j);
                    t2 = t2.max(j);
                }
            }
            if t2 - t1 + 1 > params.max_len as u32 {
                continue;
            }
            // Consistency: no link from the target span to a source word outside the source span.
            if links
                .iter()
                .any(|&(i, j)| (t1..=t2).contains(&j) && !inside(i))
            {
                continue;
            }
            stats.candidates += 1;
            let src_phrase = span_text(input.src_text[k], st, s1, s2);
            let tgt_phrase = span_text(input.tgt_text[k], tt, t1 as usize, t2 as usize);
            if params.skip_punctuation && !(has_alnum(src_phrase) && has_alnum(tgt_phrase)) {
                stats.punctuation += 1;
                continue;
            }
            let (mut sum, mut nb) = (0.0, 0u32);
            for (&(i, _), sc) in links.iter().zip(scores) {
                if inside(i) {
                    sum += sc.get(params.score);
                    nb += 1;
                }
            }
            let score = sum / f64::from(nb);
            if score < params.min_score {
                stats.below_threshold += 1;
                continue;
            }
            stats.kept += 1;
            out.push(PairRow {
                sentence: k,
                src_span: (s1 as u32, s2 as u32 + 1),
                tgt_span: (t1, t2 + 1),
                src_text: src_phrase.to_string(),
                tgt_text: tgt_phrase.to_string(),
                score,
                links: nb,
            });
        }
    }
    (out, stats)
}

/// The original text from token `a`'s start to token `b`'s end.
fn span_text<'a>(text: &'a str, toks: &[Token<'_>], a: usize, b: usize) -> &'a str {
    &text[toks[a].start..toks[b].end]
}
