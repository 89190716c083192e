//! `instruct.align`: AlignInstruct, True instructions from gold word pairs and False ones by negative swapping.

use crate::support::tables::instruct::{self as table, ALIGNED_INPUTS};
use alinea_engine::OutputSlot;
use alinea_engine::{InputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructAlign;

impl Stage for InstructAlign {
    const KIND: &'static str = "instruct.align";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str = "AlignInstruct: judge whether a word pair aligns (gold pairs True, swapped negatives False)";
    const DOC: &'static str = "\
AlignInstruct (Sec. 2.2): input `Given the following parallel sentence between {Y} and {X}, judge whether the
assertion is True or False.\\n{Y}: {y}\\n{X}: {x}\\nAssertion: \"{y span}\" can be aligned with \"{x span}\"
statistically.`, output `True` or `False`. Negatives replace the source or the target side (chosen uniformly) of a
gold pair by a span not aligned to the other side, from the same sentence (default) or another one; a negative
never coincides with a gold pair. Each row records label, swapped side, origin and the replacement span, so
`alinea query` can audit negatives.";
    type Params = alinea_instruct::AlignParams;
    const INPUTS: &'static [InputSlot] = &ALIGNED_INPUTS;
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let corpus =
            table::aligned_corpus(&ctx.table(table::ALIGNMENTS)?, &ctx.table(table::GOLD)?)?;
        table::align_outputs(&corpus, &table::token_counter(ctx)?, p)
    }
}
