//! `instruct.prompts`: inference prompts for test sets: the default (MTInstruct input) and PROMPT-1…5 of Table 8.

use crate::support::tables::instruct as table;
use alinea_engine::{InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructPrompts;

impl Stage for InstructPrompts {
    const KIND: &'static str = "instruct.prompts";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "inference prompts for a test set: default or PROMPT-1..5 of Table 8";
    const DOC: &'static str = "\
Builds the prompts a model is evaluated with (Table 8): `default` = the MTInstruct input; PROMPT-1 `{Y}: {y}\\n{X}:`;
PROMPT-2 `{y}\\n{X}:`; PROMPT-3 `Translate to {X}.\\n{Y}: {y}\\n{X}:`; PROMPT-4 `Translate from {Y} to {X}.\\n{y}\\n{X}:`;
PROMPT-5 `Translate to {X}.\\n{y}\\n{X}:`. The `output` column holds the reference translation.";
    type Params = alinea_instruct::PromptParams;
    const INPUTS: &'static [InputSlot] = &[table::PAIRS.slot()];
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let names = table::names();
        table::per_pair_outputs(&ctx.table(table::PAIRS)?, |pairs| {
            alinea_instruct::build_prompts(pairs, &names, p)
        })
    }
}
