//! Sentence-level builders: MTInstruct, inference prompts, MonoInstruct and InstructAlign's conditional denoising.

use rand::Rng;
use rand::seq::index::sample;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::align::roles;
use crate::error::{InstructError, Result};
use crate::length::{LengthParams, TokenCounter, apply_lengths};
use crate::model::{
    Directions, LanguageNames, ParallelPair, Side, XSide, name_of, whitespace_tokens,
};
use crate::row::{BuildOutput, InstructRow, Stats, Task};
use crate::template::{self, PromptVariant, default_separator, fill};
use crate::{SALT_DENOISE, rng_for};

/// Parameters of `instruct.mt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MtParams {
    /// Directions per pair (default `both`: Y→X and X→Y).
    pub directions: Directions,
    /// Which side is X (default: the non-English side); decides the order of the two directions.
    pub x_side: XSide,
    /// Line separator (default "\n").
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Token-length limits.
    pub length: LengthParams,
}

impl Default for MtParams {
    fn default() -> Self {
        MtParams {
            directions: Directions::Both,
            x_side: XSide::NonEnglish,
            separator: default_separator(),
            length: LengthParams::default(),
        }
    }
}

impl Default for PromptParams {
    fn default() -> Self {
        PromptParams {
            variant: PromptVariant::Default,
            directions: Directions::Both,
            x_side: XSide::NonEnglish,
            separator: default_separator(),
        }
    }
}

type Part = Result<(Vec<InstructRow>, Vec<&'static str>)>;

fn finish(
    parts: Vec<Part>,
    counter: &TokenCounter,
    length: &LengthParams,
    mut stats: Stats,
) -> Result<BuildOutput> {
    let mut rows = Vec::new();
    for p in parts {
        let (r, drops) = p?;
        rows.extend(r);
        for d in drops {
            stats.drop_n(d, 1);
        }
    }
    let rows = apply_lengths(rows, counter, length, &mut stats)?;
    stats.count_rows(&rows);
    Ok(BuildOutput { rows, stats })
}

/// MTInstruct: `Translate from {Y} to {X}.\n{Y}: {y}\n{X}:` → ` {x}`, per pair and direction. Pairs with an empty
/// side are dropped (`empty_sentence`).
pub fn build_mt(
    pairs: &[ParallelPair],
    names: &dyn LanguageNames,
    counter: &TokenCounter,
    params: &MtParams,
) -> Result<BuildOutput> {
    let sep = params.separator.as_str();
    let parts: Vec<Part> = pairs
        .par_iter()
        .map(|p| {
            if p.src.trim().is_empty() || p.tgt.trim().is_empty() {
                return Ok((Vec::new(), vec!["empty_sentence"]));
            }
            let mut rows = Vec::new();
            for (from, to) in roles(p.x_side(params.x_side), params.directions) {
                let (fname, tname) = (name_of(names, p, from)?, name_of(names, p, to)?);
                rows.push(InstructRow::generated(
                    Task::Mt,
                    p.lang(from),
                    p.lang(to),
                    p.pair_id,
                    template::mt_input(sep, &fname, &tname, p.text(from)),
                    template::mt_output(p.text(to)),
                ));
            }
            Ok((rows, Vec::new()))
        })
        .collect();
    finish(parts, counter, &params.length, Stats::default())
}

/// Parameters of `instruct.prompts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PromptParams {
    /// Table 8 variant (default `default`, the MTInstruct input).
    pub variant: PromptVariant,
    /// Directions per pair (default `both`).
    pub directions: Directions,
    /// Which side is X (default: the non-English side).
    pub x_side: XSide,
    /// Line separator (default "\n").
    #[serde(default = "default_separator")]
    pub separator: String,
}

/// Inference prompts for a test set: `instruction` is the prompt of the chosen variant, `output` the reference
/// translation as it stands (no leading space, ready for BLEU/chrF). No length limit is applied: a test set must
/// keep every sentence.
pub fn build_prompts(
    pairs: &[ParallelPair],
    names: &dyn LanguageNames,
    params: &PromptParams,
) -> Result<BuildOutput> {
    let sep = params.separator.as_str();
    let mut rows = Vec::new();
    for p in pairs {
        for (from, to) in roles(p.x_side(params.x_side), params.directions) {
            let (fname, tname) = (name_of(names, p, from)?, name_of(names, p, to)?);
            rows.push(InstructRow::generated(
                Task::Prompt,
                p.lang(from),
                p.lang(to),
                p.pair_id,
                params.variant.render(sep, &fname, &tname, p.text(from)),
                p.text(to).to_string(),
            ));
        }
    }
    let mut stats = Stats::default();
    stats.count_rows(&rows);
    Ok(BuildOutput { rows, stats })
}

/// Which MonoInstruct variants to build.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum MonoMode {
    /// Both `full` and `half` rows (default; the curriculum picks `Mono-full` or `Mono-half`).
    #[default]
    Both,
    /// l = 0: generate the whole sentence.
    Full,
    /// l = N/2 words given.
    Half,
}

/// Which sides' sentences feed a monolingual task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum MonoSides {
    /// The X (unseen language) side only (default, Sec. 2.4).
    #[default]
    X,
    /// The Y side only.
    Y,
    /// Both sides.
    Both,
}

/// Parameters of `instruct.mono`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MonoParams {
    /// `both` (default), `full` or `half`.
    pub mode: MonoMode,
    /// Sentences used (default `x`).
    pub sides: MonoSides,
    /// Which side is X (default: the non-English side).
    pub x_side: XSide,
    /// Languages written without spaces between words, whose `half` split counts characters instead of
    /// whitespace words (default `zh ja th lo my km bo`).
    #[serde(default = "default_char_split_langs")]
    pub char_split_langs: Vec<String>,
    /// Token-length limits.
    pub length: LengthParams,
}

fn default_char_split_langs() -> Vec<String> {
    ["zh", "ja", "th", "lo", "my", "km", "bo"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl Default for MonoParams {
    fn default() -> Self {
        MonoParams {
            mode: MonoMode::Both,
            sides: MonoSides::X,
            x_side: XSide::NonEnglish,
            char_split_langs: default_char_split_langs(),
            length: LengthParams::default(),
        }
    }
}

fn mono_sides(p: &ParallelPair, params_x: XSide, sides: MonoSides) -> Vec<Side> {
    let xs = p.x_side(params_x);
    match sides {
        MonoSides::X => vec![xs],
        MonoSides::Y => vec![xs.other()],
        MonoSides::Both => vec![xs, xs.other()],
    }
}

/// Splits `x` for `half`: after N/2 whitespace words (input prefix, output ` rest`). A one-word text (e.g. a
/// script written without spaces) is split after half of its characters and the output then gets no added space,
/// so that prompt + output always reproduces the sentence; the flag says which split was used.
fn half_split(x: &str, by_chars: bool) -> Option<(String, String, bool)> {
    let words = whitespace_tokens(x);
    if words.len() >= 2 && !by_chars {
        let l = words.len() / 2;
        return Some((
            x[..words[l - 1].end].to_string(),
            format!(" {}", &x[words[l].start..words.last()?.end]),
            false,
        ));
    }
    let t = x.trim();
    let n = t.chars().count();
    if n < 2 {
        return None;
    }
    let cut = t.char_indices().nth(n / 2)?.0;
    Some((t[..cut].to_string(), t[cut..].to_string(), true))
}

/// MonoInstruct (Sec. 2.4): `Given the context, complete the following sentence: {x_1..x_l}` → ` {x_l+1..x_N}`;
/// `full` uses l = 0, `half` l = N/2 whitespace words (character halves for `char_split_langs` and one-word
/// sentences, counted in
/// `stats.notes["mono_half_char_split"]`). Sentences too short to split are dropped from `half`
/// (`too_short_for_half`); empty ones from both (`empty_sentence`).
pub fn build_mono(
    pairs: &[ParallelPair],
    counter: &TokenCounter,
    params: &MonoParams,
) -> Result<BuildOutput> {
    let parts: Vec<Part> = pairs
        .par_iter()
        .map(|p| {
            let mut rows = Vec::new();
            let mut drops = Vec::new();
            for side in mono_sides(p, params.x_side, params.sides) {
                let x = p.text(side).trim();
                if x.is_empty() {
                    drops.push("empty_sentence");
                    continue;
                }
                let lang = p.lang(side);
                if matches!(params.mode, MonoMode::Both | MonoMode::Full) {
                    rows.push(InstructRow::generated(
                        Task::MonoFull,
                        lang,
                        lang,
                        p.pair_id,
                        template::mono_input(""),
                        template::mt_output(x),
                    ));
                }
                if matches!(params.mode, MonoMode::Both | MonoMode::Half) {
                    match half_split(x, params.char_split_langs.iter().any(|l| l == lang)) {
                        Some((prefix, rest, _char_split)) => rows.push(InstructRow::generated(
                            Task::MonoHalf,
                            lang,
                            lang,
                            p.pair_id,
                            template::mono_input(&prefix),
                            rest,
                        )),
                        None => drops.push("too_short_for_half"),
                    }
                }
            }
            Ok((rows, drops))
        })
        .collect();
    let mut out = finish(parts, counter, &params.length, Stats::default())?;
    let char_split = out
        .rows
        .iter()
        .filter(|r| r.task == Task::MonoHalf && !r.output.starts_with(' '))
        .count() as u64;
    if char_split > 0 {
        out.stats
            .notes
            .insert("mono_half_char_split".to_string(), char_split);
    }
    Ok(out)
}

/// Which InstructAlign denoising levels to build.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DenoiseLevels {
    /// Word- and span-level rows (default).
    #[default]
    Both,
    /// Word-level only.
    Word,
    /// Span-level only.
    Span,
}

fn default_mask_ratio() -> f64 {
    0.15
}
fn default_max_span() -> usize {
    3
}
fn default_mask_token() -> String {
    "<mask>".to_string()
}
/// Default word-level denoising template (placeholders `{Y}`, `{X}`, `{y}`, `{x_masked}`, `{sep}`).
pub const DENOISE_WORD_TEMPLATE: &str = "Given the following {Y} sentence as context, restore the masked words of the {X} sentence.{sep}{Y}: {y}{sep}{X}: {x_masked}";
/// Default span-level denoising template.
pub const DENOISE_SPAN_TEMPLATE: &str = "Given the following {Y} sentence as context, restore the masked spans of the {X} sentence.{sep}{Y}: {y}{sep}{X}: {x_masked}";
fn default_word_template() -> String {
    DENOISE_WORD_TEMPLATE.to_string()
}
fn default_span_template() -> String {
    DENOISE_SPAN_TEMPLATE.to_string()
}

/// Parameters of `instruct.denoise` (InstructAlign's conditional denoising; its exact wording is not in our
/// sources, so the templates are parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DenoiseParams {
    /// `both` (default), `word` or `span`.
    pub levels: DenoiseLevels,
    /// Fraction of X's whitespace words masked, at least one (default 0.15).
    #[serde(default = "default_mask_ratio")]
    pub mask_ratio: f64,
    /// Longest masked span in words, for span-level (default 3); each span becomes one mask token.
    #[serde(default = "default_max_span")]
    pub max_span_len: usize,
    /// The mask token (default `<mask>`).
    #[serde(default = "default_mask_token")]
    pub mask_token: String,
    /// Word-level template (default [`DENOISE_WORD_TEMPLATE`]).
    #[serde(default = "default_word_template")]
    pub word_template: String,
    /// Span-level template (default [`DENOISE_SPAN_TEMPLATE`]).
    #[serde(default = "default_span_template")]
    pub span_template: String,
    /// Seed (default 0).
    pub seed: u64,
    /// Which side is X, the masked one (default: the non-English side).
    pub x_side: XSide,
    /// Line separator (default "\n").
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Token-length limits.
    pub length: LengthParams,
}

impl Default for DenoiseParams {
    fn default() -> Self {
        DenoiseParams {
            levels: DenoiseLevels::Both,
            mask_ratio: 0.15,
            max_span_len: 3,
            mask_token: default_mask_token(),
            word_template: default_word_template(),
            span_template: default_span_template(),
            seed: 0,
            x_side: XSide::NonEnglish,
            separator: default_separator(),
            length: LengthParams::default(),
        }
    }
}

/// Rebuilds `x` with the words flagged in `masked` replaced by `mask`; with `collapse`, a run of masked words
/// becomes a single mask token. Original spacing between unmasked words is kept.
fn mask_words(
    x: &str,
    words: &[crate::model::Token],
    masked: &[bool],
    mask: &str,
    collapse: bool,
) -> String {
    let mut out = String::with_capacity(x.len());
    let mut last_end = 0;
    let mut prev_masked = false;
    for (w, &m) in words.iter().zip(masked) {
        if m && collapse && prev_masked {
            last_end = w.end;
            continue;
        }
        out.push_str(&x[last_end..w.start]);
        out.push_str(if m { mask } else { &x[w.start..w.end] });
        last_end = w.end;
        prev_masked = m;
    }
    out.push_str(&x[last_end..]);
    out
}

/// InstructAlign conditional denoising: X with masked words (word-level) or masked spans (span-level), Y as
/// context; output ` {x}`. Sentences of fewer than 2 words are dropped (`too_short_to_mask`).
pub fn build_denoise(
    pairs: &[ParallelPair],
    names: &dyn LanguageNames,
    counter: &TokenCounter,
    params: &DenoiseParams,
) -> Result<BuildOutput> {
    if !(params.mask_ratio > 0.0 && params.mask_ratio <= 1.0) {
        return Err(InstructError::Param {
            field: "mask_ratio",
            message: format!("must be in (0, 1], got {}", params.mask_ratio),
        });
    }
    if params.max_span_len == 0 {
        return Err(InstructError::Param {
            field: "max_span_len",
            message: "must be at least 1".into(),
        });
    }
    let sep = params.separator.as_str();
    let parts: Vec<Part> = pairs
        .par_iter()
        .map(|p| {
            let xs = p.x_side(params.x_side);
            let ys = xs.other();
            let x = p.text(xs);
            let words = whitespace_tokens(x);
            if words.len() < 2 || p.text(ys).trim().is_empty() {
                return Ok((Vec::new(), vec!["too_short_to_mask"]));
            }
            let (x_name, y_name) = (name_of(names, p, xs)?, name_of(names, p, ys)?);
            let mut rng = rng_for(params.seed, SALT_DENOISE, p.pair_id);
            let n = words.len();
            // Never mask the whole sentence: at least one word stays as an anchor.
            let m = ((n as f64 * params.mask_ratio).round() as usize).clamp(1, n - 1);
            let mut rows = Vec::new();
            let mut emit = |task: Task, tpl: &str, masked: &[bool], collapse: bool| {
                let xm = mask_words(x, &words, masked, &params.mask_token, collapse);
                let input = fill(
                    tpl,
                    &[
                        ("Y", &y_name),
                        ("X", &x_name),
                        ("y", p.text(ys)),
                        ("x_masked", &xm),
                        ("sep", sep),
                    ],
                );
                rows.push(InstructRow::generated(
                    task,
                    p.lang(ys),
                    p.lang(xs),
                    p.pair_id,
                    input,
                    template::mt_output(x),
                ));
            };
            if matches!(params.levels, DenoiseLevels::Both | DenoiseLevels::Word) {
                let mut masked = vec![false; n];
                for i in sample(&mut rng, n, m) {
                    masked[i] = true;
                }
                emit(Task::DenoiseWord, &params.word_template, &masked, false);
            }
            if matches!(params.levels, DenoiseLevels::Both | DenoiseLevels::Span) {
                let mut masked = vec![false; n];
                let mut count = 0;
                // Bounded loop: spans may overlap already-masked words; 4n draws always suffice in practice.
                for _ in 0..4 * n {
                    if count >= m {
                        break;
                    }
                    let len = rng.random_range(1..=params.max_span_len.min(m - count));
                    let start = rng.random_range(0..=n - len);
                    for f in &mut masked[start..start + len] {
                        if !*f {
                            *f = true;
                            count += 1;
                        }
                    }
                }
                if masked.iter().all(|&b| b) {
                    masked[n - 1] = false;
                }
                emit(Task::DenoiseSpan, &params.span_template, &masked, true);
            }
            Ok((rows, Vec::new()))
        })
        .collect();
    finish(parts, counter, &params.length, Stats::default())
}
