//! `instruct.revise`: ReviseInstruct: find and correct one corrupted word/span of a translation.

use crate::support::tables::instruct::{self as table, ALIGNED_INPUTS};
use alinea_engine::OutputSlot;
use alinea_engine::{InputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructRevise;

impl Stage for InstructRevise {
    const KIND: &'static str = "instruct.revise";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "ReviseInstruct: find and correct one corrupted word/span of a translation";
    const DOC: &'static str = "\
ReviseInstruct: input `Given the following translation of {X} from {Y}, output the incorrectly translated word and
correct it.\\n{Y}: {y}\\n{X}: {x with one aligned span corrupted}`, output `The incorrectly translated word is
\"{corrupted}\". It should be \"{original}\".` The corrupted span is a gold-aligned span replaced by another span.";
    type Params = alinea_instruct::ReviseParams;
    const INPUTS: &'static [InputSlot] = &ALIGNED_INPUTS;
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let corpus =
            table::aligned_corpus(&ctx.table(table::ALIGNMENTS)?, &ctx.table(table::GOLD)?)?;
        let out =
            alinea_instruct::build_revise(&corpus, &table::names(), &table::token_counter(ctx)?, p)
                .map_err(table::err)?;
        table::outputs(out, corpus.sentences.len() as u64)
    }
}
