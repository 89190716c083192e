//! `instruct.mono`: MonoInstruct (full and half sentence completion).

use crate::support::tables::instruct as table;
use alinea_engine::{InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructMono;

impl Stage for InstructMono {
    const KIND: &'static str = "instruct.mono";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "MonoInstruct: complete a sentence from nothing (full) or from its first half (half)";
    const DOC: &'static str = "\
MonoInstruct (Sec. 2.4, 4.3): input `Given the context, complete the following sentence: {x_1..x_l}`, output
` {x_l+1..x_N}`; `full` has l = 0, `half` l = N/2 words. Scripts without spaces are split by characters.";
    type Params = alinea_instruct::MonoParams;
    const INPUTS: &'static [InputSlot] = &[table::PAIRS.slot(), table::TOKENIZER.slot()];
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let counter = table::token_counter(ctx)?;
        table::per_pair_outputs(&ctx.table(table::PAIRS)?, |pairs| {
            alinea_instruct::build_mono(pairs, &counter, p)
        })
    }
}
