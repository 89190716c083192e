//! `instruct.curriculum`: the training set of an objective, with phases for staged curricula.

use crate::support::tables::instruct as table;
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
        let mut rows = Vec::new();
        for (_, df) in ctx.tables(TASKS)? {
            rows.extend(table::from_frame(&df)?);
        }
        let out = alinea_instruct::build_curriculum(&rows, p).map_err(table::err)?;
        table::outputs(out, rows.len() as u64)
    }
}
