//! `instruct.curriculum`: the training set of an objective, with phases for staged curricula.

use crate::support::tables::instruct as table;
use alinea_engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructCurriculum;

impl Stage for InstructCurriculum {
    const KIND: &'static str = "instruct.curriculum";
    const SUMMARY: &'static str =
        "join task tables into an objective's training set (MT+Align, Align->MT, ...) with phases";
    const DOC: &'static str = "\
Builds the training set of an objective from instruction tables: `MT`, `MT+Align`, `Align->MT` (or `Align→MT`),
`MT+Align->MT`, and any +-combination of MT / Align / Hint / Revise / Mono-full / Mono-half / Denoise; `->` starts a
new phase. Rows get their phase number (1-based) and are shuffled deterministically within each phase (seeded).
A component with no rows is an error unless allow_empty = true.

Inputs:
  tasks   instruction tables (any number; typically instruct.mt, instruct.align, ...)

Parameters (defaults): objective = \"MT\", shuffle = true, seed = 0, allow_empty = false.

Output `instructions`, one schema for every task:
  task, src_lang, tgt_lang, direction, pair_id, instruction, input, output, label, src_start, src_end, tgt_start,
  tgt_end, swapped_side, swap_origin, swap_pair_id, swap_start, swap_end, phase, input_tokens, output_tokens,
  truncated, source.
`alinea export STAGE --format jsonl` writes these rows; see README for Alpaca / prompt-completion exports.";
    type Params = alinea_instruct::CurriculumParams;
    const INPUTS: &'static [InputSlot] = &[InputSlot {
        name: "tasks",
        kind: SlotKind::Tables,
        required: true,
        doc: "instruction tables",
    }];

    fn validate(p: &Self::Params) -> Result<(), String> {
        p.objective
            .parse::<alinea_instruct::Objective>()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let mut rows = Vec::new();
        for (_, df) in ctx.tables("tasks")? {
            rows.extend(table::from_frame(&df)?);
        }
        let out = alinea_instruct::build_curriculum(&rows, p).map_err(table::err)?;
        table::outputs(out, rows.len() as u64)
    }
}
