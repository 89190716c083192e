//! `instruct.mono`: MonoInstruct (full and half sentence completion).

use crate::support::tables::instruct::{self as table, TOKENIZER_SLOT};
use alinea_engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructMono;

impl Stage for InstructMono {
    const KIND: &'static str = "instruct.mono";
    const SUMMARY: &'static str =
        "MonoInstruct: complete a sentence from nothing (full) or from its first half (half)";
    const DOC: &'static str = "\
MonoInstruct (Sec. 2.4, 4.3): input `Given the context, complete the following sentence: {x_1..x_l}`, output
` {x_l+1..x_N}`; `full` has l = 0, `half` l = N/2 words. Scripts without spaces are split by characters.

Inputs: pairs (a pairs table), tokenizer (optional tokenizer.json).
Parameters: see the `MonoParams` documentation of alinea-instruct (mode = full | half | both, sides, seed,
length limits). Output `instructions`.";
    type Params = alinea_instruct::MonoParams;
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
        let out = alinea_instruct::build_mono(&pairs, &table::token_counter(ctx)?, p)
            .map_err(table::err)?;
        table::outputs(out, pairs.len() as u64)
    }
}
