//! `instruct.denoise`: InstructAlign's word- and span-level conditional denoising.

use crate::support::tables::instruct::{self as table, TOKENIZER_SLOT};
use alinea_engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructDenoise;

impl Stage for InstructDenoise {
    const KIND: &'static str = "instruct.denoise";
    const SUMMARY: &'static str =
        "InstructAlign conditional denoising (masked words/spans, source as context)";
    const DOC: &'static str = "\
Conditional denoising (InstructAlign, 2305.13627): the target sentence with masked words or spans and the source
sentence as context; the output is the unmasked sentence. The exact wording of InstructAlign's prompts is not in
our sources: the templates are parameters, with documented defaults.

Inputs: pairs, tokenizer (optional). Parameters: `DenoiseParams` of alinea-instruct (levels, mask_ratio, seed,
templates, length limits). Output `instructions`.";
    type Params = alinea_instruct::DenoiseParams;
    const INPUTS: &'static [InputSlot] = &[
        InputSlot {
            name: "pairs",
            kind: SlotKind::Table,
            required: true,
            doc: "a pairs table",
        },
        TOKENIZER_SLOT,
    ];

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let pairs = table::parallel_pairs(&ctx.table("pairs")?)?;
        let out =
            alinea_instruct::build_denoise(&pairs, &table::names(), &table::token_counter(ctx)?, p)
                .map_err(table::err)?;
        table::outputs(out, pairs.len() as u64)
    }
}
