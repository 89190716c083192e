//! `instruct.hint`: HintInstruct: translate with alignment hints (S <= 5 gold word pairs).

use crate::support::tables::instruct::{self as table, ALIGNED_INPUTS};
use alinea_engine::OutputSlot;
use alinea_engine::{InputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructHint;

impl Stage for InstructHint {
    const KIND: &'static str = "instruct.hint";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "HintInstruct: translate with alignment hints (S <= 5 gold word pairs)";
    const DOC: &'static str = "\
HintInstruct (App. B): input `Use the following alignment hints and translate from {Y} to {X}.\\nAlignments between
{X} and {Y}:\\n- ({x span 1}, {y span 1}),\\n- ...\\n{Y}: {y}\\n{X}:`, output ` {x}`, with at most 5 gold pairs.";
    type Params = alinea_instruct::HintParams;
    const INPUTS: &'static [InputSlot] = &ALIGNED_INPUTS;
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let corpus =
            table::aligned_corpus(&ctx.table(table::ALIGNMENTS)?, &ctx.table(table::GOLD)?)?;
        let out =
            alinea_instruct::build_hint(&corpus, &table::names(), &table::token_counter(ctx)?, p)
                .map_err(table::err)?;
        table::outputs(out, corpus.sentences.len() as u64)
    }
}
