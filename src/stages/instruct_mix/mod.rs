//! `instruct.mix`: interleaves a local Alpaca-format instruction file with generated instructions (CrossAlpaca)
//! or replays earlier instructions (InstructAlign's experience replay).

use crate::support::tables::instruct as table;
use alinea_engine::{
    InputSlot, OutputSlot, Outputs, PathSlot, Stage, StageCtx, StageError, TablesSlot,
};

const TASKS: TablesSlot = TablesSlot::new("tasks", "instruction tables (any number)")
    .requires(table::INSTRUCTION_COLUMNS);
const ALPACA: PathSlot = PathSlot::new(
    "alpaca",
    "the local instruction file: an Alpaca JSON array or JSONL with instruction, input, output",
);

/// The stage kind.
pub struct InstructMix;

impl Stage for InstructMix {
    const KIND: &'static str = "instruct.mix";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "mix a local Alpaca JSON/JSONL file into generated instructions (CrossAlpaca, replay)";
    const DOC: &'static str = "\
Mixes an external instruction file (Alpaca JSON array or JSONL with instruction, input, output) into generated
instruction tables: by count (experience replay: e.g. 1000 records), by ratio, and/or with a cap of generated rows
per (task, direction) (CrossAlpaca: 10k en->x + 10k x->en). Parse errors name file:line:column.";
    type Params = alinea_instruct::MixParams;
    const INPUTS: &'static [InputSlot] = &[TASKS.slot(), ALPACA.slot(), table::TOKENIZER.slot()];
    const OUTPUTS: &'static [OutputSlot] = table::INSTRUCTIONS_OUTPUT;

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let mut rows = Vec::new();
        for (_, df) in ctx.tables(TASKS)? {
            rows.extend(table::from_frame(&df)?);
        }
        let path = ctx.path(ALPACA)?.to_path_buf();
        let text = String::from_utf8(ctx.read_file(&path)?).map_err(|e| StageError::BadInput {
            path: path.clone(),
            line: 0,
            message: format!("not UTF-8: {e}"),
        })?;
        let external = alinea_instruct::parse_alpaca(&text, &path).map_err(table::err)?;
        let rows_in = (rows.len() + external.len()) as u64;
        let out = alinea_instruct::mix(&rows, &external, &table::token_counter(ctx)?, p)
            .map_err(table::err)?;
        table::outputs(out, rows_in)
    }
}
