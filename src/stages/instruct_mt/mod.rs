//! `instruct.mt`: MTInstruct rows, both directions per pair, with the paper's exact template.

use crate::support::tables::instruct::{self as table, TOKENIZER_SLOT};
use alinea_engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructMt;

impl Stage for InstructMt {
    const KIND: &'static str = "instruct.mt";
    const SUMMARY: &'static str =
        "MTInstruct: translation instructions in both directions (exact paper template)";
    const DOC: &'static str = "\
MTInstruct (AlignInstruct paper, Sec. 2.1): input `Translate from {Y} to {X}.\\n{Y}: {y}\\n{X}:`, output ` {x}`.
Language names come from the registry (`src/lang.rs`).

Inputs:
  pairs       a pairs table (ingest / sample)
  tokenizer   optional tokenizer.json for the token-length limits

Parameters (defaults):
  directions = \"both\"          both | to_x | from_x
  x_side = \"non_english\"       which side is X (the unseen language)
  separator = \"\\n\"             line separator of the template (the paper's extracted text is ambiguous)
  length = { max_input_tokens = 384, max_output_tokens = 384, overflow = \"drop\" }   drop | truncate (counted)

Output `instructions`: the instruction table (see `alinea help instruct.curriculum`).";
    type Params = alinea_instruct::MtParams;
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
            alinea_instruct::build_mt(&pairs, &table::names(), &table::token_counter(ctx)?, p)
                .map_err(table::err)?;
        table::outputs(out, pairs.len() as u64)
    }
}
