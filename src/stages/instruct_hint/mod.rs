//! `instruct.hint`: HintInstruct: translate with alignment hints (S <= 5 gold word pairs).

use crate::support::tables::instruct::{self as table, ALIGNED_INPUTS};
use alinea_engine::{InputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructHint;

impl Stage for InstructHint {
    const KIND: &'static str = "instruct.hint";
    const SUMMARY: &'static str =
        "HintInstruct: translate with alignment hints (S <= 5 gold word pairs)";
    const DOC: &'static str = "\
HintInstruct (App. B): input `Use the following alignment hints and translate from {Y} to {X}.\\nAlignments between
{X} and {Y}:\\n- ({x span 1}, {y span 1}),\\n- ...\\n{Y}: {y}\\n{X}:`, output ` {x}`, with at most 5 gold pairs.

Inputs: alignments (align.ibm2), gold (align.pairs), tokenizer (optional).
Parameters: `HintParams` of alinea-instruct (max_hints = 5, selection, seed, separator, length limits).
Output `instructions`.";
    type Params = alinea_instruct::HintParams;
    const INPUTS: &'static [InputSlot] = &ALIGNED_INPUTS;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let corpus = table::aligned_corpus(&ctx.table("alignments")?, &ctx.table("gold")?)?;
        let out =
            alinea_instruct::build_hint(&corpus, &table::names(), &table::token_counter(ctx)?, p)
                .map_err(table::err)?;
        table::outputs(out, corpus.sentences.len() as u64)
    }
}
