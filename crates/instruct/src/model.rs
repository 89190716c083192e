//! Input records (parallel pairs, tokens, gold word pairs), language naming and the validated aligned corpus.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{InstructError, Result};

/// One parallel sentence pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParallelPair {
    /// Stable id of the pair (the join key with tokens and gold pairs).
    pub pair_id: u64,
    /// ISO 639-1 code of `src`.
    pub src_lang: String,
    /// ISO 639-1 code of `tgt`.
    pub tgt_lang: String,
    /// Source sentence.
    pub src: String,
    /// Target sentence.
    pub tgt: String,
}

/// One token of a sentence: its byte span in the sentence (end exclusive). The text is the span of the sentence
/// ([`Token::text`]), never a copy: a paper-scale corpus has a hundred million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Token {
    /// The token's text in `sentence` (the sentence its span indexes; empty if the span does not fit it).
    pub fn text<'s>(&self, sentence: &'s str) -> &'s str {
        sentence.get(self.start..self.end).unwrap_or("")
    }
}

/// Token lists of both sides of one pair, as the aligner saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentenceTokens {
    /// The pair these tokens belong to.
    pub pair_id: u64,
    /// Tokens of `src`.
    pub src: Vec<Token>,
    /// Tokens of `tgt`.
    pub tgt: Vec<Token>,
}

/// A "gold" word/phrase pair from the aligner: token spans (end exclusive) on both sides plus their original text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldPair {
    /// Sentence pair.
    pub pair_id: u64,
    /// First source token.
    pub src_start: u32,
    /// One past the last source token.
    pub src_end: u32,
    /// First target token.
    pub tgt_start: u32,
    /// One past the last target token.
    pub tgt_end: u32,
    /// Original source text of the span.
    pub src_phrase: String,
    /// Original target text of the span.
    pub tgt_phrase: String,
    /// Aligner confidence (higher is better).
    pub score: f64,
}

/// Splits a sentence on Unicode whitespace into tokens with byte spans; a convenience for callers and tests whose
/// aligner tokenized that way.
pub fn whitespace_tokens(sentence: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in sentence.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(Token { start: s, end: i });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Token {
            start: s,
            end: sentence.len(),
        });
    }
    out
}

/// Maps an ISO 639-1 code to the English language name used in the templates.
pub trait LanguageNames: Sync {
    /// English name of `code`, if known.
    fn english_name(&self, code: &str) -> Option<String>;
}

impl LanguageNames for BTreeMap<String, String> {
    fn english_name(&self, code: &str) -> Option<String> {
        self.get(code).cloned()
    }
}

impl LanguageNames for HashMap<String, String> {
    fn english_name(&self, code: &str) -> Option<String> {
        self.get(code).cloned()
    }
}

/// Adapts a closure `code -> Option<name>` (e.g. a lookup in the engine's language registry) to [`LanguageNames`].
pub struct NameFn<F>(pub F);

impl<F: Fn(&str) -> Option<String> + Sync> LanguageNames for NameFn<F> {
    fn english_name(&self, code: &str) -> Option<String> {
        (self.0)(code)
    }
}

/// Which side of a pair plays the paper's X (the unseen language); the other side is Y.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum XSide {
    /// X is `src`.
    Src,
    /// X is `tgt`.
    Tgt,
    /// X is the side whose language is not English (`en`); `tgt` when both or neither are English. Default, because
    /// the paper's corpora are English-centric and X is always the non-English language.
    #[default]
    NonEnglish,
}

/// Which translation directions to generate, relative to the X/Y roles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Directions {
    /// Y→X then X→Y.
    #[default]
    Both,
    /// Y→X only (the paper's written direction: translate from Y into X).
    YToX,
    /// X→Y only.
    XToY,
}

/// A side of a parallel pair.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The `src` side.
    Src,
    /// The `tgt` side.
    Tgt,
}

impl Side {
    /// `"src"` or `"tgt"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Src => "src",
            Side::Tgt => "tgt",
        }
    }
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Src => Side::Tgt,
            Side::Tgt => Side::Src,
        }
    }
}

impl ParallelPair {
    /// Sentence on `side`.
    pub fn text(&self, side: Side) -> &str {
        match side {
            Side::Src => &self.src,
            Side::Tgt => &self.tgt,
        }
    }
    /// Language code on `side`.
    pub fn lang(&self, side: Side) -> &str {
        match side {
            Side::Src => &self.src_lang,
            Side::Tgt => &self.tgt_lang,
        }
    }
    /// The side that plays X under `x_side`.
    pub fn x_side(&self, x_side: XSide) -> Side {
        match x_side {
            XSide::Src => Side::Src,
            XSide::Tgt => Side::Tgt,
            XSide::NonEnglish => {
                if self.src_lang != "en" && self.tgt_lang == "en" {
                    Side::Src
                } else {
                    Side::Tgt
                }
            }
        }
    }
}

/// Looks up the English name of a pair's language on `side`, with an error naming the pair and field.
pub(crate) fn name_of(
    names: &dyn LanguageNames,
    pair: &ParallelPair,
    side: Side,
) -> Result<String> {
    names
        .english_name(pair.lang(side))
        .ok_or_else(|| InstructError::UnknownLanguage {
            pair_id: pair.pair_id,
            field: match side {
                Side::Src => "src_lang",
                Side::Tgt => "tgt_lang",
            },
            code: pair.lang(side).to_string(),
        })
}

/// A gold pair after validation, with spans as `usize` ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Gold {
    /// Source token span.
    pub src: (usize, usize),
    /// Target token span.
    pub tgt: (usize, usize),
    /// Source text.
    pub src_phrase: String,
    /// Target text.
    pub tgt_phrase: String,
    /// Aligner score.
    pub score: f64,
}

impl Gold {
    /// Span on `side`.
    pub fn span(&self, side: Side) -> (usize, usize) {
        match side {
            Side::Src => self.src,
            Side::Tgt => self.tgt,
        }
    }
    /// Text on `side`.
    pub fn phrase(&self, side: Side) -> &str {
        match side {
            Side::Src => &self.src_phrase,
            Side::Tgt => &self.tgt_phrase,
        }
    }
}

/// One sentence pair with its tokens and gold pairs.
#[derive(Debug, Clone)]
pub struct AlignedSentence {
    /// The pair.
    pub pair: ParallelPair,
    /// Source tokens.
    pub src_tokens: Vec<Token>,
    /// Target tokens.
    pub tgt_tokens: Vec<Token>,
    /// Gold pairs, sorted by (src span, tgt span) and deduplicated on spans.
    pub gold: Vec<Gold>,
}

impl AlignedSentence {
    /// Tokens on `side`.
    pub fn tokens(&self, side: Side) -> &[Token] {
        match side {
            Side::Src => &self.src_tokens,
            Side::Tgt => &self.tgt_tokens,
        }
    }
    /// Original text covered by tokens `span` on `side` (from the first token's start to the last token's end).
    pub fn span_text(&self, side: Side, span: (usize, usize)) -> &str {
        let toks = self.tokens(side);
        let text = self.pair.text(side);
        &text[toks[span.0].start..toks[span.1 - 1].end]
    }
    /// Byte range covered by tokens `span` on `side`.
    pub fn byte_range(&self, side: Side, span: (usize, usize)) -> (usize, usize) {
        let toks = self.tokens(side);
        (toks[span.0].start, toks[span.1 - 1].end)
    }
}

/// Parallel pairs joined with their tokens and gold pairs, validated once; the input of the alignment-based builders
/// (`align`, `hint`, `revise`).
#[derive(Debug, Clone)]
pub struct AlignedCorpus {
    /// Sentences in the order of the `pairs` input. Pairs without tokens are kept with empty token lists and no gold.
    pub sentences: Vec<AlignedSentence>,
}

fn check_tokens(pair_id: u64, side: &'static str, text: &str, toks: &[Token]) -> Result<()> {
    for (index, t) in toks.iter().enumerate() {
        let bad = |reason: &str| InstructError::BadTokenSpan {
            pair_id,
            side,
            index,
            start: t.start,
            end: t.end,
            reason: reason.to_string(),
        };
        if t.start >= t.end {
            return Err(bad("is empty or reversed"));
        }
        if t.end > text.len() {
            return Err(bad(&format!("exceeds the sentence length {}", text.len())));
        }
        if !text.is_char_boundary(t.start) || !text.is_char_boundary(t.end) {
            return Err(bad("does not fall on UTF-8 character boundaries"));
        }
    }
    Ok(())
}

impl AlignedCorpus {
    /// Joins and validates the three inputs. Errors name the table, row and field at fault: duplicate ids, tokens
    /// or gold pairs of unknown pairs, token spans outside their sentence, empty/out-of-range gold spans, NaN scores.
    pub fn new(
        pairs: &[ParallelPair],
        tokens: &[SentenceTokens],
        gold: &[GoldPair],
    ) -> Result<Self> {
        Self::from_owned(pairs.to_vec(), tokens.to_vec(), gold.to_vec())
    }

    /// [`AlignedCorpus::new`] taking its inputs by value: sentences, tokens and phrases are moved into the corpus,
    /// never copied, so that a paper-scale corpus (millions of sentences, a string per token) is held once.
    pub fn from_owned(
        pairs: Vec<ParallelPair>,
        tokens: Vec<SentenceTokens>,
        gold: Vec<GoldPair>,
    ) -> Result<Self> {
        let mut index: HashMap<u64, usize> = HashMap::with_capacity(pairs.len());
        for (row, p) in pairs.iter().enumerate() {
            if index.insert(p.pair_id, row).is_some() {
                return Err(InstructError::DuplicatePair {
                    table: "pairs",
                    pair_id: p.pair_id,
                    row,
                });
            }
        }
        let mut sentences: Vec<AlignedSentence> = pairs
            .into_iter()
            .map(|p| AlignedSentence {
                pair: p,
                src_tokens: Vec::new(),
                tgt_tokens: Vec::new(),
                gold: Vec::new(),
            })
            .collect();
        let mut has_tokens = vec![false; sentences.len()];
        for (row, t) in tokens.into_iter().enumerate() {
            let Some(&i) = index.get(&t.pair_id) else {
                return Err(InstructError::UnknownPair {
                    table: "tokens",
                    row,
                    pair_id: t.pair_id,
                    needed: "pairs",
                });
            };
            if has_tokens[i] {
                return Err(InstructError::DuplicatePair {
                    table: "tokens",
                    pair_id: t.pair_id,
                    row,
                });
            }
            has_tokens[i] = true;
            check_tokens(t.pair_id, "src", &sentences[i].pair.src, &t.src)?;
            check_tokens(t.pair_id, "tgt", &sentences[i].pair.tgt, &t.tgt)?;
            sentences[i].src_tokens = t.src;
            sentences[i].tgt_tokens = t.tgt;
        }
        for (row, g) in gold.into_iter().enumerate() {
            let Some(&i) = index.get(&g.pair_id) else {
                return Err(InstructError::UnknownPair {
                    table: "gold pairs",
                    row,
                    pair_id: g.pair_id,
                    needed: "pairs",
                });
            };
            if !has_tokens[i] {
                return Err(InstructError::UnknownPair {
                    table: "gold pairs",
                    row,
                    pair_id: g.pair_id,
                    needed: "tokens",
                });
            }
            let s = &sentences[i];
            let bad =
                |field: &'static str, value: String, reason: String| InstructError::BadGoldPair {
                    row,
                    pair_id: g.pair_id,
                    field,
                    value,
                    reason,
                };
            let spans = [
                (
                    "src_start",
                    "src_end",
                    g.src_start,
                    g.src_end,
                    s.src_tokens.len(),
                ),
                (
                    "tgt_start",
                    "tgt_end",
                    g.tgt_start,
                    g.tgt_end,
                    s.tgt_tokens.len(),
                ),
            ];
            for (fs, fe, start, end, n) in spans {
                if start >= end {
                    return Err(bad(
                        fs,
                        start.to_string(),
                        format!("must be below {fe} = {end}"),
                    ));
                }
                if end as usize > n {
                    return Err(bad(
                        fe,
                        end.to_string(),
                        format!("exceeds the sentence's {n} tokens"),
                    ));
                }
            }
            if g.score.is_nan() {
                return Err(bad("score", "NaN".into(), "must be a number".into()));
            }
            sentences[i].gold.push(Gold {
                src: (g.src_start as usize, g.src_end as usize),
                tgt: (g.tgt_start as usize, g.tgt_end as usize),
                src_phrase: g.src_phrase,
                tgt_phrase: g.tgt_phrase,
                score: g.score,
            });
        }
        for s in &mut sentences {
            // Canonical order makes the output independent of the order in which the aligner wrote its rows.
            s.gold.sort_by(|a, b| {
                (a.src, a.tgt)
                    .cmp(&(b.src, b.tgt))
                    .then(b.score.total_cmp(&a.score))
            });
            s.gold.dedup_by(|a, b| a.src == b.src && a.tgt == b.tgt);
        }
        Ok(AlignedCorpus { sentences })
    }
}
