//! The instruction table (one schema for every task, so curricula can concatenate them) and its conversions.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `task` | str | `mt`, `align`, `hint`, `revise`, `mono_full`, `mono_half`, `denoise_word`, `denoise_span`, `prompt`, `external` |
//! | `src_lang`, `tgt_lang`, `direction` | str | Y, X and `"Y-X"` (empty for external rows) |
//! | `pair_id` | u64? | the sentence pair the row was built from |
//! | `instruction`, `input`, `output` | str | prompt (Alpaca `instruction`), extra input, expected output |
//! | `label` | bool? | AlignInstruct: true for gold pairs, false for negatives |
//! | `src_start`, `src_end`, `tgt_start`, `tgt_end` | u32? | the gold pair's token spans |
//! | `swapped_side`, `swap_origin` | str? | negatives/corruptions: side replaced (`src`/`tgt`), `same`/`other` sentence |
//! | `swap_pair_id`, `swap_start`, `swap_end` | u64?, u32? | where the replacement span came from |
//! | `phase` | u32 | curriculum phase (0 before a curriculum) |
//! | `input_tokens`, `output_tokens` | u32 | token counts after the length limits |
//! | `truncated` | bool | whether a side was truncated |
//! | `source` | str | `generated` or the name of an external file |

use alinea_instruct::{BuildOutput, InstructRow, ParallelPair};
use polars::prelude::*;
use serde::de::DeserializeOwned;

use alinea_engine::{
    ColumnDecl, DType, InputSlot, Optional, OutputSlot, PathSlot, StageError, Stats, TableSlot, col,
};

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

fn enum_from<T: DeserializeOwned>(column: &str, row: usize, s: &str) -> Result<T, StageError> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(StageError::with(
        format!("instruction table, row {row}, column `{column}`: `{s}`"),
    ))
}

/// The instruction table of `rows`.
pub fn to_frame(rows: &[InstructRow]) -> PolarsResult<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new_infer_height(vec![
        col!("task", |r: &InstructRow| enum_str(&r.task)),
        col!("src_lang", |r: &InstructRow| r.src_lang.clone()),
        col!("tgt_lang", |r: &InstructRow| r.tgt_lang.clone()),
        col!("direction", |r: &InstructRow| r.direction.clone()),
        col!("pair_id", |r: &InstructRow| r.pair_id),
        col!("instruction", |r: &InstructRow| r.instruction.clone()),
        col!("input", |r: &InstructRow| r.input.clone()),
        col!("output", |r: &InstructRow| r.output.clone()),
        col!("label", |r: &InstructRow| r.label),
        col!("src_start", |r: &InstructRow| r.src_start),
        col!("src_end", |r: &InstructRow| r.src_end),
        col!("tgt_start", |r: &InstructRow| r.tgt_start),
        col!("tgt_end", |r: &InstructRow| r.tgt_end),
        col!("swapped_side", |r: &InstructRow| r
            .swapped_side
            .as_ref()
            .map(enum_str)),
        col!("swap_origin", |r: &InstructRow| r
            .swap_origin
            .as_ref()
            .map(enum_str)),
        col!("swap_pair_id", |r: &InstructRow| r.swap_pair_id),
        col!("swap_start", |r: &InstructRow| r.swap_start),
        col!("swap_end", |r: &InstructRow| r.swap_end),
        col!("phase", |r: &InstructRow| r.phase),
        col!("input_tokens", |r: &InstructRow| r.input_tokens),
        col!("output_tokens", |r: &InstructRow| r.output_tokens),
        col!("truncated", |r: &InstructRow| r.truncated),
        col!("source", |r: &InstructRow| r.source.clone()),
    ])
}

/// Rows of an instruction table (as written by [`to_frame`]).
pub fn from_frame(df: &DataFrame) -> Result<Vec<InstructRow>, StageError> {
    let s = |c: &str| df.column(c).and_then(|x| x.str().cloned());
    let u32c = |c: &str| df.column(c).and_then(|x| x.u32().cloned());
    let u64c = |c: &str| df.column(c).and_then(|x| x.u64().cloned());
    let boolc = |c: &str| df.column(c).and_then(|x| x.bool().cloned());
    let (task, src_lang, tgt_lang, direction) =
        (s("task")?, s("src_lang")?, s("tgt_lang")?, s("direction")?);
    let (instruction, input, output, source) =
        (s("instruction")?, s("input")?, s("output")?, s("source")?);
    let (pair_id, swap_pair_id) = (u64c("pair_id")?, u64c("swap_pair_id")?);
    let (label, truncated) = (boolc("label")?, boolc("truncated")?);
    let (src_start, src_end, tgt_start, tgt_end) = (
        u32c("src_start")?,
        u32c("src_end")?,
        u32c("tgt_start")?,
        u32c("tgt_end")?,
    );
    let (swap_start, swap_end, phase) = (u32c("swap_start")?, u32c("swap_end")?, u32c("phase")?);
    let (in_tok, out_tok) = (u32c("input_tokens")?, u32c("output_tokens")?);
    let (swapped_side, swap_origin) = (s("swapped_side")?, s("swap_origin")?);
    let text = |c: &StringChunked, i: usize| c.get(i).unwrap_or("").to_string();
    (0..df.height())
        .map(|i| {
            Ok(InstructRow {
                task: enum_from("task", i, task.get(i).unwrap_or(""))?,
                src_lang: text(&src_lang, i),
                tgt_lang: text(&tgt_lang, i),
                direction: text(&direction, i),
                pair_id: pair_id.get(i),
                instruction: text(&instruction, i),
                input: text(&input, i),
                output: text(&output, i),
                label: label.get(i),
                src_start: src_start.get(i),
                src_end: src_end.get(i),
                tgt_start: tgt_start.get(i),
                tgt_end: tgt_end.get(i),
                swapped_side: swapped_side
                    .get(i)
                    .map(|v| enum_from("swapped_side", i, v))
                    .transpose()?,
                swap_origin: swap_origin
                    .get(i)
                    .map(|v| enum_from("swap_origin", i, v))
                    .transpose()?,
                swap_pair_id: swap_pair_id.get(i),
                swap_start: swap_start.get(i),
                swap_end: swap_end.get(i),
                phase: phase.get(i).unwrap_or(0),
                input_tokens: in_tok.get(i).unwrap_or(0),
                output_tokens: out_tok.get(i).unwrap_or(0),
                truncated: truncated.get(i).unwrap_or(false),
                source: text(&source, i),
            })
        })
        .collect()
}

/// Sentence pairs of a pairs table (see [`crate::support::text::pairs`]).
pub fn parallel_pairs(df: &DataFrame) -> Result<Vec<ParallelPair>, StageError> {
    let ids = df.column("pair_id")?.u64()?.clone();
    let (sl, tl, src, tgt) = (
        df.column("src_lang")?.str()?.clone(),
        df.column("tgt_lang")?.str()?.clone(),
        df.column("src")?.str()?.clone(),
        df.column("tgt")?.str()?.clone(),
    );
    (0..df.height())
        .map(|i| {
            Ok(ParallelPair {
                pair_id: ids.get(i).ok_or_else(|| {
                    StageError::Other(format!("pairs table, row {i}: `pair_id` is null"))
                })?,
                src_lang: sl.get(i).unwrap_or("").to_string(),
                tgt_lang: tl.get(i).unwrap_or("").to_string(),
                src: src.get(i).unwrap_or("").to_string(),
                tgt: tgt.get(i).unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// Engine stats of a builder's output: row counts, drops by reason, and the per task / direction / language /
/// label / phase / swap counts as named counters (`label/align/true`, `direction/mt/en-be`, …) for `alinea log`.
pub fn stats(out: &BuildOutput, rows_in: u64) -> Stats {
    engine_stats(&out.stats, out.rows.len() as u64, rows_in)
}

/// [`stats`] of a builder's counts `st` over `rows_out` rows.
pub fn engine_stats(st: &alinea_instruct::Stats, rows_out: u64, rows_in: u64) -> Stats {
    let mut stats = Stats {
        rows_in,
        rows_out,
        ..Stats::default()
    };
    for (reason, n) in &st.dropped {
        stats.drop_rows(reason, *n);
    }
    for (task, n) in &st.by_task {
        stats.count(&format!("task/{task}"), *n);
    }
    for (prefix, map) in [
        ("direction", &st.by_task_direction),
        ("lang", &st.by_task_lang),
        ("label", &st.by_task_label),
    ] {
        for (task, inner) in map {
            for (k, n) in inner {
                stats.count(&format!("{prefix}/{task}/{k}"), *n);
            }
        }
    }
    for (phase, n) in &st.by_phase {
        stats.count(&format!("phase/{phase}"), *n);
    }
    for (swap, n) in &st.swaps {
        stats.count(&format!("swap/{swap}"), *n);
    }
    stats.count("truncated", st.truncated);
    stats
}

/// The builder counts of an instruction table, read from its columns (no row is materialized): what
/// [`alinea_instruct::Stats::count_rows`] gives for the same rows. `table` names it in errors.
pub fn stats_of_frame(table: &str, df: &DataFrame) -> Result<alinea_instruct::Stats, StageError> {
    let s = |c: &str| df.column(c).and_then(|x| x.str().cloned());
    let (direction, tgt_lang) = (s("direction")?, s("tgt_lang")?);
    let (swapped_side, swap_origin) = (s("swapped_side")?, s("swap_origin")?);
    let label = df.column("label")?.bool()?.clone();
    let truncated = df.column("truncated")?.bool()?.clone();
    let phase = df.column("phase")?.u32()?.clone();
    let tasks = tasks_of_frame(table, df)?;
    let mut sides = EnumNames::<alinea_instruct::Side>::new(table, "swapped_side");
    let mut origins = EnumNames::<alinea_instruct::SwapOrigin>::new(table, "swap_origin");
    let mut facts = Vec::with_capacity(df.height());
    for (i, task) in tasks.into_iter().enumerate() {
        facts.push(alinea_instruct::RowFacts {
            task,
            direction: direction.get(i).unwrap_or(""),
            tgt_lang: tgt_lang.get(i).unwrap_or(""),
            label: label.get(i),
            phase: phase.get(i).unwrap_or(0),
            swapped_side: swapped_side
                .get(i)
                .map(|v| sides.parse(i, v))
                .transpose()?
                .map(|v| v.as_str()),
            swap_origin: swap_origin
                .get(i)
                .map(|v| origins.parse(i, v))
                .transpose()?
                .map(|v| v.as_str()),
            truncated: truncated.get(i).unwrap_or(false),
        });
    }
    let mut stats = alinea_instruct::Stats::default();
    stats.count_facts(facts);
    Ok(stats)
}

/// The `task` of every row of an instruction table. `table` names it in errors.
pub fn tasks_of_frame(
    table: &str,
    df: &DataFrame,
) -> Result<Vec<alinea_instruct::Task>, StageError> {
    let column = df.column("task")?.str()?.clone();
    let mut names = EnumNames::<alinea_instruct::Task>::new(table, "task");
    (0..df.height())
        .map(|i| match column.get(i) {
            Some(v) => names.parse(i, v),
            None => Err(StageError::Other(format!(
                "instruction table `{table}`, row {i}, column `task`: null (expected a task name such as `mt`)"
            ))),
        })
        .collect()
}

/// Parses the few distinct names of an enum column once each (a table has millions of rows and a handful of
/// names), naming the table, row and column of a bad one.
struct EnumNames<'t, T> {
    table: &'t str,
    column: &'static str,
    seen: std::collections::HashMap<String, T>,
}

impl<'t, T: DeserializeOwned + Copy> EnumNames<'t, T> {
    fn new(table: &'t str, column: &'static str) -> Self {
        EnumNames {
            table,
            column,
            seen: std::collections::HashMap::new(),
        }
    }

    fn parse(&mut self, row: usize, name: &str) -> Result<T, StageError> {
        if let Some(v) = self.seen.get(name) {
            return Ok(*v);
        }
        let v: T = serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(
            StageError::with(format!(
                "instruction table `{}`, row {row}, column `{}`: `{name}`",
                self.table, self.column
            )),
        )?;
        self.seen.insert(name.to_string(), v);
        Ok(v)
    }
}

/// Pairs handed to a per-pair builder at once: the rows of one chunk exist as structs only until they are
/// turned into columns, so a stage's memory is its input and output tables plus one chunk, whatever the corpus
/// size (the paper's 24 languages are 4.8M sampled pairs, ~10M MT rows).
const PAIRS_PER_CHUNK: usize = 1 << 16;

/// The stage outputs of a builder whose rows of each pair depend on that pair alone (MTInstruct, Mono, denoising,
/// prompts: per-pair random streams, per-row length limits), run over the pairs table chunk by chunk. The table,
/// its row order and its counts are those of one call over all pairs.
pub fn per_pair_outputs(
    pairs: &DataFrame,
    build: impl Fn(&[ParallelPair]) -> alinea_instruct::Result<BuildOutput>,
) -> Result<alinea_engine::Outputs, StageError> {
    per_pair_outputs_in_chunks(pairs, PAIRS_PER_CHUNK, build)
}

fn per_pair_outputs_in_chunks(
    pairs: &DataFrame,
    chunk_pairs: usize,
    build: impl Fn(&[ParallelPair]) -> alinea_instruct::Result<BuildOutput>,
) -> Result<alinea_engine::Outputs, StageError> {
    chunked_outputs(pairs.height(), chunk_pairs, |range| {
        let chunk = parallel_pairs(&pairs.slice(range.start as i64, range.len()))?;
        build(&chunk).map_err(err)
    })
}

/// Sentences of an aligned corpus given to [`alinea_instruct::AlignBuilder`] at once (see [`PAIRS_PER_CHUNK`]).
const SENTENCES_PER_CHUNK: usize = 1 << 15;

/// The stage outputs of AlignInstruct over `corpus`, built range by range (the whole corpus stays available
/// to negative swapping): the table and counts of one [`alinea_instruct::build_align`] call.
pub fn align_outputs(
    corpus: &alinea_instruct::AlignedCorpus,
    counter: &alinea_instruct::TokenCounter,
    params: &alinea_instruct::AlignParams,
) -> Result<alinea_engine::Outputs, StageError> {
    align_outputs_in_chunks(corpus, counter, params, SENTENCES_PER_CHUNK)
}

fn align_outputs_in_chunks(
    corpus: &alinea_instruct::AlignedCorpus,
    counter: &alinea_instruct::TokenCounter,
    params: &alinea_instruct::AlignParams,
    chunk: usize,
) -> Result<alinea_engine::Outputs, StageError> {
    let names = names();
    let builder =
        alinea_instruct::AlignBuilder::new(corpus, &names, counter, params).map_err(err)?;
    chunked_outputs(corpus.sentences.len(), chunk, |range| {
        builder.sentences(range).map_err(err)
    })
}

/// Runs `build` over `0..items` in ranges of `chunk` (at least one call, so an empty input still gives the table
/// with its columns), turning each range's rows into columns before the next: the instruction table of all the
/// ranges one under the other, with the counts of the whole (drops and notes summed, row counts read from the
/// table).
fn chunked_outputs(
    items: usize,
    chunk: usize,
    mut build: impl FnMut(std::ops::Range<usize>) -> Result<BuildOutput, StageError>,
) -> Result<alinea_engine::Outputs, StageError> {
    let mut counts = alinea_instruct::Stats::default();
    let table = super::concat_ranges(items, chunk, |range| {
        let out = build(range)?;
        for (map, add) in [
            (&mut counts.dropped, &out.stats.dropped),
            (&mut counts.notes, &out.stats.notes),
        ] {
            for (k, n) in add {
                *map.entry(k.clone()).or_default() += n;
            }
        }
        Ok::<_, StageError>(to_frame(&out.rows)?)
    })?;
    let (dropped, notes) = (counts.dropped, counts.notes);
    let mut counts = stats_of_frame("instructions", &table)?;
    counts.dropped = dropped;
    counts.notes = notes;
    let stats = engine_stats(&counts, table.height() as u64, items as u64);
    Ok(alinea_engine::Outputs::table("instructions", table, stats))
}

/// Maps a builder error to a stage error.
pub fn err(e: alinea_instruct::InstructError) -> StageError {
    StageError::domain("", e)
}

/// The optional `tokenizer` input of instruction stages: a `tokenizer.json` for token-length accounting.
pub const TOKENIZER: PathSlot<Optional> = PathSlot::new(
    "tokenizer",
    "a Hugging Face tokenizer.json for the 384-token limits (default: one token per byte, an upper bound for byte-level BPE)",
)
.optional();

/// The language names of the registry, for templates.
pub fn names() -> impl alinea_instruct::LanguageNames {
    crate::support::lang::Registry::default()
}

/// The token counter of the stage's `tokenizer` input.
pub fn token_counter(
    ctx: &alinea_engine::StageCtx,
) -> Result<alinea_instruct::TokenCounter, StageError> {
    alinea_instruct::TokenCounter::from_optional(ctx.path(TOKENIZER)?).map_err(err)
}

/// The stage outputs of a builder's result: the `instructions` table and its stats.
pub fn outputs(out: BuildOutput, rows_in: u64) -> Result<alinea_engine::Outputs, StageError> {
    let stats = stats(&out, rows_in);
    Ok(alinea_engine::Outputs::table(
        "instructions",
        to_frame(&out.rows)?,
        stats,
    ))
}

fn u32_lists(df: &DataFrame, name: &str) -> Result<Vec<Vec<u32>>, StageError> {
    let lists = df.column(name)?.list()?.clone();
    (0..lists.len())
        .map(|i| match lists.get_as_series(i) {
            Some(s) => Ok(s.u32()?.iter().map(|v| v.unwrap_or(0)).collect()),
            None => Ok(Vec::new()),
        })
        .collect()
}

fn tokens_of(starts: Vec<u32>, ends: Vec<u32>) -> Vec<alinea_instruct::Token> {
    starts
        .into_iter()
        .zip(ends)
        .map(|(start, end)| alinea_instruct::Token {
            start: start as usize,
            end: end as usize,
        })
        .collect()
}

/// The aligned corpus of an `alignments` table (align.ibm2: pairs with their tokens and byte spans) and a `gold`
/// table (align.pairs), validated by the instruction crate (errors name table, row and field).
pub fn aligned_corpus(
    alignments: &DataFrame,
    gold: &DataFrame,
) -> Result<alinea_instruct::AlignedCorpus, StageError> {
    let pairs = parallel_pairs(alignments)?;
    // Tokens are spans of the sentences; the aligner's token strings (possibly lowercased) are not read.
    let (src_start, src_end) = (
        u32_lists(alignments, "src_starts")?,
        u32_lists(alignments, "src_ends")?,
    );
    let (tgt_start, tgt_end) = (
        u32_lists(alignments, "tgt_starts")?,
        u32_lists(alignments, "tgt_ends")?,
    );
    let ids: Vec<u64> = pairs.iter().map(|p| p.pair_id).collect();
    let tokens: Vec<alinea_instruct::SentenceTokens> = ids
        .into_iter()
        .zip(src_start.into_iter().zip(src_end))
        .zip(tgt_start.into_iter().zip(tgt_end))
        .map(
            |((pair_id, (ss, se)), (ts, te))| alinea_instruct::SentenceTokens {
                pair_id,
                src: tokens_of(ss, se),
                tgt: tokens_of(ts, te),
            },
        )
        .collect();
    let u32c = |c: &str| gold.column(c).and_then(|x| x.u32().cloned());
    let (ss, se, ts, te) = (
        u32c("src_start")?,
        u32c("src_end")?,
        u32c("tgt_start")?,
        u32c("tgt_end")?,
    );
    let ids = gold.column("pair_id")?.u64()?.clone();
    let (sp, tp) = (
        gold.column("src_phrase")?.str()?.clone(),
        gold.column("tgt_phrase")?.str()?.clone(),
    );
    let score = gold.column("score")?.f64()?.clone();
    let gold_pairs: Vec<alinea_instruct::GoldPair> = (0..gold.height())
        .map(|i| alinea_instruct::GoldPair {
            pair_id: ids.get(i).unwrap_or(u64::MAX),
            src_start: ss.get(i).unwrap_or(0),
            src_end: se.get(i).unwrap_or(0),
            tgt_start: ts.get(i).unwrap_or(0),
            tgt_end: te.get(i).unwrap_or(0),
            src_phrase: sp.get(i).unwrap_or("").to_string(),
            tgt_phrase: tp.get(i).unwrap_or("").to_string(),
            score: score.get(i).unwrap_or(f64::NAN),
        })
        .collect();
    alinea_instruct::AlignedCorpus::from_owned(pairs, tokens, gold_pairs).map_err(err)
}

/// The `alignments` input of the instruction stages built on alignments.
pub const ALIGNMENTS: TableSlot =
    TableSlot::new("alignments", "an align.ibm2 table (pairs, tokens, links)")
        .requires(ALIGNED_COLUMNS);
/// The `gold` input of the instruction stages built on alignments.
pub const GOLD: TableSlot = TableSlot::new("gold", "an align.pairs table (gold word pairs)")
    .requires(&[
        col("pair_id", DType::U64),
        col("src_start", DType::U32),
        col("src_end", DType::U32),
        col("tgt_start", DType::U32),
        col("tgt_end", DType::U32),
        col("src_phrase", DType::Str),
        col("tgt_phrase", DType::Str),
        col("score", DType::F64),
    ]);

const ALIGNED_COLUMNS: &[ColumnDecl] = &[
    col("pair_id", DType::U64),
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("src", DType::Str),
    col("tgt", DType::Str),
    col("src_starts", DType::List(&DType::U32)),
    col("src_ends", DType::List(&DType::U32)),
    col("tgt_starts", DType::List(&DType::U32)),
    col("tgt_ends", DType::List(&DType::U32)),
];

/// The inputs of the instruction stages built on alignments.
pub const ALIGNED_INPUTS: [InputSlot; 3] = [ALIGNMENTS.slot(), GOLD.slot(), TOKENIZER.slot()];

/// The `pairs` input of the instruction stages built on sentence pairs.
pub const PAIRS: TableSlot = TableSlot::new("pairs", "a pairs table (ingest / sample)")
    .requires(crate::support::text::pairs::PARALLEL_COLUMNS);

/// The instruction table (one schema for every task).
pub const INSTRUCTION_COLUMNS: &[ColumnDecl] = &INSTRUCTION_ARRAY;

const INSTRUCTION_ARRAY: [ColumnDecl; 23] = [
    col("task", DType::Str),
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("direction", DType::Str),
    col("pair_id", DType::U64),
    col("instruction", DType::Str),
    col("input", DType::Str),
    col("output", DType::Str),
    col("label", DType::Bool),
    col("src_start", DType::U32),
    col("src_end", DType::U32),
    col("tgt_start", DType::U32),
    col("tgt_end", DType::U32),
    col("swapped_side", DType::Str),
    col("swap_origin", DType::Str),
    col("swap_pair_id", DType::U64),
    col("swap_start", DType::U32),
    col("swap_end", DType::U32),
    col("phase", DType::U32),
    col("input_tokens", DType::U32),
    col("output_tokens", DType::U32),
    col("truncated", DType::Bool),
    col("source", DType::Str),
];

/// The `generations` table of `generate`: the instruction table plus the decoded `hypothesis`.
pub const GENERATION_COLUMNS: &[ColumnDecl] = &with_hypothesis();

/// [`INSTRUCTION_COLUMNS`] followed by `hypothesis`, built at compile time so the two schemas cannot drift.
const fn with_hypothesis() -> [ColumnDecl; INSTRUCTION_ARRAY.len() + 1] {
    let mut out = [col("hypothesis", DType::Str); INSTRUCTION_ARRAY.len() + 1];
    let mut i = 0;
    while i < INSTRUCTION_ARRAY.len() {
        out[i] = INSTRUCTION_ARRAY[i];
        i += 1;
    }
    out
}

/// The `instructions` output of every instruction stage.
pub const INSTRUCTIONS_OUTPUT: &[OutputSlot] = &[OutputSlot::table(
    "instructions",
    INSTRUCTION_COLUMNS,
    "the instruction table (one schema for every task; see the module doc of src/support/tables/instruct.rs)",
)];

#[cfg(test)]
mod tests {
    use super::*;
    use alinea_instruct::{DenoiseParams, MonoParams, MtParams, TokenCounter};

    /// The first 500 li-en pairs of the shipped OPUS-100 sample as a pairs table, a few sides emptied (so that
    /// builders drop rows).
    fn pairs_table() -> DataFrame {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/datasets/opus-100/supervised/en-li"
        );
        let read = |lang: &str| {
            let path = format!("{dir}/opus.en-li-train.{lang}");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            text.lines()
                .take(500)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let (en, mut li) = (read("en"), read("li"));
        for i in (0..li.len()).step_by(50) {
            li[i].clear();
        }
        let n = en.len();
        df!(
            "pair_id" => (0..n as u64).collect::<Vec<_>>(),
            "src_lang" => vec!["en"; n],
            "tgt_lang" => vec!["li"; n],
            "src" => en,
            "tgt" => li,
        )
        .unwrap()
    }

    type Builder<'a> = dyn Fn(&[ParallelPair]) -> alinea_instruct::Result<BuildOutput> + 'a;

    fn encoded(mut out: alinea_engine::Outputs) -> (Vec<u8>, Stats) {
        let (_, df) = out.tables.remove(0);
        let mut df = df;
        (
            alinea_engine::table::encode_parquet(&mut df).unwrap(),
            out.stats,
        )
    }

    /// Chunked building gives the bytes and the counts (drops and notes included) of one call over all pairs,
    /// for every per-pair builder that the stages run this way.
    #[test]
    fn per_pair_chunks_equal_one_build_over_all_pairs() {
        let df = pairs_table();
        let pairs = parallel_pairs(&df).unwrap();
        let (names, counter) = (names(), TokenCounter::Bytes);
        let mono = MonoParams::default();
        let builders: Vec<(&str, Box<Builder>)> = vec![
            (
                "mt",
                Box::new(|p| alinea_instruct::build_mt(p, &names, &counter, &MtParams::default())),
            ),
            (
                "mono",
                Box::new(|p| alinea_instruct::build_mono(p, &counter, &mono)),
            ),
            (
                "denoise",
                Box::new(|p| {
                    alinea_instruct::build_denoise(p, &names, &counter, &DenoiseParams::default())
                }),
            ),
            (
                "prompts",
                Box::new(|p| alinea_instruct::build_prompts(p, &names, &Default::default())),
            ),
        ];
        for (name, build) in builders {
            let whole = encoded(outputs(build(&pairs).unwrap(), pairs.len() as u64).unwrap());
            let chunked = encoded(per_pair_outputs_in_chunks(&df, 37, &build).unwrap());
            assert!(whole.1.rows_out > 0, "{name}");
            if name == "mt" {
                assert_eq!(
                    whole.1.dropped["empty_sentence"], 10,
                    "emptied sides are dropped and counted"
                );
            }
            assert_eq!(chunked.1, whole.1, "{name}: stats");
            assert!(chunked.0 == whole.0, "{name}: the chunked table differs");
        }
    }
}
