//! The one row schema shared by every task (so curricula can concatenate tables) and the statistics of a build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Side;

/// Task that produced a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// MTInstruct.
    Mt,
    /// AlignInstruct (True/False judgement).
    Align,
    /// HintInstruct.
    Hint,
    /// ReviseInstruct.
    Revise,
    /// MonoInstruct, whole sentence (l = 0).
    MonoFull,
    /// MonoInstruct, second half given the first.
    MonoHalf,
    /// InstructAlign word-level conditional denoising.
    DenoiseWord,
    /// InstructAlign span-level conditional denoising.
    DenoiseSpan,
    /// A row of an external instruction file (Alpaca, xP3, ...), for replay / CrossAlpaca mixing.
    External,
    /// An inference prompt for a test set (output = reference).
    Prompt,
}

impl Task {
    /// Stable lowercase name (`mt`, `align`, `hint`, `revise`, `mono-full`, `mono-half`, `denoise-word`,
    /// `denoise-span`, `external`, `prompt`), equal to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Mt => "mt",
            Task::Align => "align",
            Task::Hint => "hint",
            Task::Revise => "revise",
            Task::MonoFull => "mono-full",
            Task::MonoHalf => "mono-half",
            Task::DenoiseWord => "denoise-word",
            Task::DenoiseSpan => "denoise-span",
            Task::External => "external",
            Task::Prompt => "prompt",
        }
    }
}

/// Where the replacement span of a negative (or of a ReviseInstruct corruption) came from.
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
    Default,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SwapOrigin {
    /// Another span of the same sentence.
    #[default]
    Same,
    /// A span of another sentence of the same language.
    Other,
}

impl SwapOrigin {
    /// `"same"` or `"other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SwapOrigin::Same => "same",
            SwapOrigin::Other => "other",
        }
    }
}

/// One instruction row. Every task fills the same schema; fields a task does not use are `None` / empty.
///
/// Language roles: `src_lang` is the language the instruction starts from (the paper's Y for Y→X tasks) and
/// `tgt_lang` the language produced or judged (X); `direction` is `"{src_lang}-{tgt_lang}"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstructRow {
    /// Producing task.
    pub task: Task,
    /// Instruction source language code (Y), empty for external rows.
    pub src_lang: String,
    /// Instruction target language code (X), empty for external rows.
    pub tgt_lang: String,
    /// `"{src_lang}-{tgt_lang}"`, empty for external rows.
    pub direction: String,
    /// Sentence pair the row was built from (`None` for external rows).
    pub pair_id: Option<u64>,
    /// The model input (the paper's "Input"); for external rows the file's `instruction`.
    pub instruction: String,
    /// Extra input (Alpaca `input`); empty for generated rows, whose whole prompt is `instruction`.
    pub input: String,
    /// Expected model output.
    pub output: String,
    /// AlignInstruct label (`Some(true)` for gold pairs, `Some(false)` for negatives).
    pub label: Option<bool>,
    /// Source token span (start) of the gold pair the row was built from, in the pair's `src` tokens.
    pub src_start: Option<u32>,
    /// Source token span (end, exclusive) of the gold pair.
    pub src_end: Option<u32>,
    /// Target token span (start) of the gold pair, in the pair's `tgt` tokens.
    pub tgt_start: Option<u32>,
    /// Target token span (end, exclusive) of the gold pair.
    pub tgt_end: Option<u32>,
    /// For negatives and corruptions: which side of the gold pair was replaced.
    pub swapped_side: Option<Side>,
    /// For negatives and corruptions: whether the replacement came from the same sentence or another one.
    pub swap_origin: Option<SwapOrigin>,
    /// Pair the replacement span was taken from (equal to `pair_id` for same-sentence swaps).
    pub swap_pair_id: Option<u64>,
    /// Replacement token span start, in `swap_pair_id`'s tokens of `swapped_side`.
    pub swap_start: Option<u32>,
    /// Replacement token span end (exclusive).
    pub swap_end: Option<u32>,
    /// Curriculum phase (1-based; 0 before a curriculum assigns one).
    pub phase: u32,
    /// Tokens of the prompt (`instruction`, plus `"\n" + input` when `input` is non-empty), after truncation.
    pub input_tokens: u32,
    /// Tokens of `output`, after truncation.
    pub output_tokens: u32,
    /// Whether the prompt or the output was truncated to the length limits.
    pub truncated: bool,
    /// `"generated"` for rows built here, else the name given to the external file.
    pub source: String,
}

impl InstructRow {
    /// A generated row with every optional field empty.
    pub(crate) fn generated(
        task: Task,
        src_lang: &str,
        tgt_lang: &str,
        pair_id: u64,
        instruction: String,
        output: String,
    ) -> Self {
        InstructRow {
            task,
            src_lang: src_lang.to_string(),
            tgt_lang: tgt_lang.to_string(),
            direction: format!("{src_lang}-{tgt_lang}"),
            pair_id: Some(pair_id),
            instruction,
            input: String::new(),
            output,
            label: None,
            src_start: None,
            src_end: None,
            tgt_start: None,
            tgt_end: None,
            swapped_side: None,
            swap_origin: None,
            swap_pair_id: None,
            swap_start: None,
            swap_end: None,
            phase: 0,
            input_tokens: 0,
            output_tokens: 0,
            truncated: false,
            source: "generated".to_string(),
        }
    }

    /// The full model prompt: `instruction`, followed by a newline and `input` when `input` is non-empty (the
    /// Alpaca convention).
    pub fn prompt(&self) -> String {
        if self.input.is_empty() {
            self.instruction.clone()
        } else {
            format!("{}\n{}", self.instruction, self.input)
        }
    }
}

/// Counts of a build, meant for the stage's provenance (`alinea log`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Rows produced.
    pub rows: u64,
    /// Rows per task.
    pub by_task: BTreeMap<String, u64>,
    /// Rows per task and direction (`"en-af"`).
    pub by_task_direction: BTreeMap<String, BTreeMap<String, u64>>,
    /// Rows per task and target language (X, the language produced or judged).
    pub by_task_lang: BTreeMap<String, BTreeMap<String, u64>>,
    /// Rows per task and label (`"true"`, `"false"`), for labelled tasks.
    pub by_task_label: BTreeMap<String, BTreeMap<String, u64>>,
    /// Rows per curriculum phase.
    pub by_phase: BTreeMap<u32, u64>,
    /// Negative/corruption rows per swap side and origin (`"src/same"`, `"tgt/other"`, ...).
    pub swaps: BTreeMap<String, u64>,
    /// Rows whose prompt or output was truncated.
    pub truncated: u64,
    /// Candidate rows not emitted, per reason.
    pub dropped: BTreeMap<String, u64>,
    /// Other counts worth auditing (e.g. `mono_half_char_split`, `external_shortfall`).
    pub notes: BTreeMap<String, u64>,
}

impl Stats {
    /// Adds `n` to the drop counter of `reason`.
    pub fn drop_n(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.dropped.entry(reason.to_string()).or_default() += n;
        }
    }

    /// Recomputes every per-row count from `rows` (drop counters are kept).
    pub fn count_rows(&mut self, rows: &[InstructRow]) {
        self.count_facts(rows.iter().map(InstructRow::facts));
    }

    /// Recomputes every per-row count from the counted fields of each row (drop counters are kept): what a
    /// caller holding rows as table columns passes instead of the rows.
    pub fn count_facts<'a>(&mut self, rows: impl IntoIterator<Item = RowFacts<'a>>) {
        self.rows = 0;
        self.by_task.clear();
        self.by_task_direction.clear();
        self.by_task_lang.clear();
        self.by_task_label.clear();
        self.by_phase.clear();
        self.swaps.clear();
        self.truncated = 0;
        for r in rows {
            self.rows += 1;
            let t = r.task.as_str();
            *self.by_task.entry(t.to_string()).or_default() += 1;
            if !r.direction.is_empty() {
                *self
                    .by_task_direction
                    .entry(t.to_string())
                    .or_default()
                    .entry(r.direction.to_string())
                    .or_default() += 1;
                *self
                    .by_task_lang
                    .entry(t.to_string())
                    .or_default()
                    .entry(r.tgt_lang.to_string())
                    .or_default() += 1;
            }
            if let Some(l) = r.label {
                *self
                    .by_task_label
                    .entry(t.to_string())
                    .or_default()
                    .entry(l.to_string())
                    .or_default() += 1;
            }
            *self.by_phase.entry(r.phase).or_default() += 1;
            if let (Some(side), Some(origin)) = (r.swapped_side, r.swap_origin) {
                *self
                    .swaps
                    .entry(format!("{t}/{side}/{origin}"))
                    .or_default() += 1;
            }
            self.truncated += u64::from(r.truncated);
        }
    }
}

/// The fields of a row that [`Stats`] counts by, borrowed (from a row or from a table's columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowFacts<'a> {
    /// Producing task.
    pub task: Task,
    /// `"{src_lang}-{tgt_lang}"`, empty for external rows.
    pub direction: &'a str,
    /// The language produced or judged.
    pub tgt_lang: &'a str,
    /// AlignInstruct label.
    pub label: Option<bool>,
    /// Curriculum phase.
    pub phase: u32,
    /// Side replaced in a negative or corruption, by its stable name (`src`, `tgt`).
    pub swapped_side: Option<&'a str>,
    /// Where the replacement came from, by its stable name (`same`, `other`).
    pub swap_origin: Option<&'a str>,
    /// Whether a side was truncated.
    pub truncated: bool,
}

impl InstructRow {
    /// The fields of the row that [`Stats`] counts by.
    pub fn facts(&self) -> RowFacts<'_> {
        RowFacts {
            task: self.task,
            direction: &self.direction,
            tgt_lang: &self.tgt_lang,
            label: self.label,
            phase: self.phase,
            swapped_side: self.swapped_side.map(Side::as_str),
            swap_origin: self.swap_origin.map(SwapOrigin::as_str),
            truncated: self.truncated,
        }
    }
}

/// Rows plus statistics: what every builder returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOutput {
    /// The rows, in a deterministic order.
    pub rows: Vec<InstructRow>,
    /// Their statistics.
    pub stats: Stats,
}
