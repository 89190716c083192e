//! `instruct.curriculum`: the training set of an objective, with phases for staged curricula.

use crate::support::tables::instruct as table;
use polars::prelude::*;

use alinea_engine::{
    InputSlot, OutputSlot, Outputs, ParamError, Stage, StageCtx, StageError, TablesSlot,
};

const TASKS: TablesSlot = TablesSlot::new(
    "tasks",
    "instruction tables (any number; typically instruct.mt, instruct.align, ...)",
)
.requires(table::INSTRUCTION_COLUMNS);

/// The stage kind.
pub struct InstructCurriculum;

impl Stage for InstructCurriculum {
    const KIND: &'static str = "instruct.curriculum";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "join task tables into an objective's training set (MT+Align, Align->MT, ...) with phases";
    const DOC: &'static str = "\
Builds the training set of an objective from instruction tables: `MT`, `MT+Align`, `Align->MT` (or `Align→MT`),
`MT+Align->MT`, and any +-combination of MT / Align / Hint / Revise / Mono-full / Mono-half / Denoise; `->` starts a
new phase. Rows get their phase number (1-based) and are shuffled deterministically within each phase (seeded).
A component with no rows is an error unless allow_empty = true.";
    type Params = alinea_instruct::CurriculumParams;
    const INPUTS: &'static [InputSlot] = &[TASKS.slot()];
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn validate(p: &Self::Params) -> Result<(), ParamError> {
        p.objective
            .parse::<alinea_instruct::Objective>()
            .map(|_| ())
            .map_err(|e| ParamError::new("objective", e.to_string()))
    }

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let input = concat_tasks(ctx.tables(TASKS)?)?;
        let tasks = table::tasks_of_frame("tasks", &input)?;
        let order = alinea_instruct::curriculum_order(&tasks, p).map_err(table::err)?;
        drop(tasks);
        let rows_in = input.height() as u64;
        let out = gather(input, &order)?;
        let stats = table::stats_of_frame("instructions", &out)?;
        let stats = table::engine_stats(&stats, out.height() as u64, rows_in);
        Ok(Outputs::table("instructions", out, stats))
    }
}

/// The task tables one under the other, each reduced to the instruction columns in their canonical order (a table
/// may carry more). Tables are kept as columns: the paper's training sets are tens of millions of rows, too many
/// to hold as row structs (see [`alinea_instruct::curriculum_order`]).
fn concat_tasks(tables: Vec<(String, DataFrame)>) -> Result<DataFrame, StageError> {
    let names: Vec<&str> = table::INSTRUCTION_COLUMNS.iter().map(|c| c.name).collect();
    let mut all: Option<DataFrame> = None;
    for (name, df) in tables {
        let df = df.select(names.iter().copied())?;
        match all.as_mut() {
            None => all = Some(df),
            Some(all) => {
                all.vstack_mut_owned(df).map_err(StageError::with(format!(
                    "task table `{name}` does not have the instruction table's column types"
                )))?;
            }
        }
    }
    all.ok_or_else(|| StageError::Other("no task tables".into()))
}

/// The rows of the curriculum's phases in their order, `phase` set. Column by column, each input column dropped
/// once gathered, so that the input and the output are never both whole in memory.
fn gather(input: DataFrame, order: &[alinea_instruct::PhaseOrder]) -> Result<DataFrame, StageError> {
    let total: usize = order.iter().map(|ph| ph.rows.len()).sum();
    let mut indices: Vec<IdxSize> = Vec::with_capacity(total);
    let mut phases: Vec<u32> = Vec::with_capacity(total);
    for ph in order {
        indices.extend(ph.rows.iter().map(|&i| i as IdxSize));
        phases.extend(std::iter::repeat_n(ph.phase, ph.rows.len()));
    }
    let indices = IdxCa::from_vec("".into(), indices);
    let mut columns = Vec::with_capacity(input.width());
    for column in input.into_columns() {
        columns.push(if column.name().as_str() == "phase" {
            Column::new("phase".into(), std::mem::take(&mut phases))
        } else {
            let gathered = column.take(&indices)?.rechunk();
            drop(column);
            gathered
        });
    }
    Ok(DataFrame::new(total, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alinea_instruct::{
        InstructRow, MonoParams, MtParams, ParallelPair, Side, SwapOrigin, TokenCounter,
    };

    /// 300 be-en pairs of the shipped OPUS-100 sample.
    fn pairs() -> Vec<ParallelPair> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/opus-100/supervised/be-en");
        let read = |lang: &str| {
            let path = format!("{dir}/opus.be-en-train.{lang}");
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let (be, en) = (read("be"), read("en"));
        (0u64..)
            .zip(be.lines().zip(en.lines()))
            .take(300)
            .map(|(pair_id, (be, en))| ParallelPair {
                pair_id,
                src_lang: "be".into(),
                tgt_lang: "en".into(),
                src: be.into(),
                tgt: en.into(),
            })
            .collect()
    }

    /// MT rows (some given a label and a swap, so that every count of the stats is exercised) and Mono rows.
    fn task_rows() -> (Vec<InstructRow>, Vec<InstructRow>) {
        let pairs = pairs();
        let names = table::names();
        let mut mt = alinea_instruct::build_mt(
            &pairs,
            &names,
            &TokenCounter::Bytes,
            &MtParams::default(),
        )
        .unwrap()
        .rows;
        for (i, r) in mt.iter_mut().enumerate().filter(|(i, _)| i % 7 == 0) {
            r.label = Some(i % 2 == 0);
            r.swapped_side = Some(if i % 3 == 0 { Side::Src } else { Side::Tgt });
            r.swap_origin = Some(SwapOrigin::Other);
            r.truncated = i % 5 == 0;
        }
        let mono = alinea_instruct::build_mono(&pairs, &TokenCounter::Bytes, &MonoParams::default())
            .unwrap()
            .rows;
        (mt, mono)
    }

    /// The stage's column gather gives the very bytes and counts of the crate's row-struct curriculum (the
    /// reference it replaced), for a mixed phase and for phases in sequence.
    #[test]
    fn the_column_gather_equals_the_row_curriculum_byte_for_byte() {
        let (mt, mono) = task_rows();
        for objective in ["MT+Mono-full", "Mono-full->MT"] {
            let params = alinea_instruct::CurriculumParams {
                objective: objective.into(),
                seed: 3,
                ..Default::default()
            };
            let all: Vec<InstructRow> = mt.iter().chain(&mono).cloned().collect();
            let reference = alinea_instruct::build_curriculum(&all, &params).unwrap();
            let mut expected = table::to_frame(&reference.rows).unwrap();

            let input = concat_tasks(vec![
                ("mt".into(), table::to_frame(&mt).unwrap()),
                ("mono".into(), table::to_frame(&mono).unwrap()),
            ])
            .unwrap();
            let tasks = table::tasks_of_frame("tasks", &input).unwrap();
            let order = alinea_instruct::curriculum_order(&tasks, &params).unwrap();
            let mut got = gather(input, &order).unwrap();

            assert_eq!(got.height(), reference.rows.len(), "{objective}");
            assert!(got.height() > mt.len(), "{objective}: mono rows are in");
            assert_eq!(
                alinea_engine::table::encode_parquet(&mut got).unwrap(),
                alinea_engine::table::encode_parquet(&mut expected).unwrap(),
                "{objective}"
            );
            assert_eq!(
                table::stats_of_frame("instructions", &got).unwrap(),
                reference.stats,
                "{objective}"
            );
            assert!(reference.stats.swaps.len() >= 2 && reference.stats.truncated > 0);
        }
    }

    #[test]
    fn a_bad_task_name_is_an_error_naming_table_row_and_column() {
        let (mt, _) = task_rows();
        let mut df = table::to_frame(&mt[..3]).unwrap();
        df.with_column(Column::new("task".into(), ["mt", "mt", "translate"]))
            .unwrap();
        let e = table::tasks_of_frame("tasks", &df).unwrap_err().to_string();
        assert!(
            e.contains("instruction table `tasks`, row 2, column `task`: `translate`"),
            "{e}"
        );
    }
}
