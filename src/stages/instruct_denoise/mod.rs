//! `instruct.denoise`: InstructAlign's word- and span-level conditional denoising.

use crate::support::tables::instruct as table;
use alinea_engine::{InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructDenoise;

impl Stage for InstructDenoise {
    const KIND: &'static str = "instruct.denoise";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "InstructAlign conditional denoising (masked words/spans, source as context)";
    const DOC: &'static str = "\
Conditional denoising (InstructAlign, 2305.13627): the target sentence with masked words or spans and the source
sentence as context; the output is the unmasked sentence. The exact wording of InstructAlign's prompts is not in
our sources: the templates are parameters, with documented defaults.";
    type Params = alinea_instruct::DenoiseParams;
    const INPUTS: &'static [InputSlot] = &[table::PAIRS.slot(), table::TOKENIZER.slot()];
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let (names, counter) = (table::names(), table::token_counter(ctx)?);
        table::per_pair_outputs(&ctx.table(table::PAIRS)?, |pairs| {
            alinea_instruct::build_denoise(pairs, &names, &counter, p)
        })
    }
}
