//! `instruct.mt`: MTInstruct rows, both directions per pair, with the paper's exact template.

use crate::support::tables::instruct as table;
use alinea_engine::{InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructMt;

impl Stage for InstructMt {
    const KIND: &'static str = "instruct.mt";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "MTInstruct: translation instructions in both directions (exact paper template)";
    const DOC: &'static str = "\
MTInstruct (AlignInstruct paper, Sec. 2.1): input `Translate from {Y} to {X}.\\n{Y}: {y}\\n{X}:`, output ` {x}`.
Language names come from the registry (`src/lang.rs`).";
    type Params = alinea_instruct::MtParams;
    const INPUTS: &'static [InputSlot] = &[table::PAIRS.slot(), table::TOKENIZER.slot()];
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let (names, counter) = (table::names(), table::token_counter(ctx)?);
        table::per_pair_outputs(&ctx.table(table::PAIRS)?, |pairs| {
            alinea_instruct::build_mt(pairs, &names, &counter, p)
        })
    }
}
