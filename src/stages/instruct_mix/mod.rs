//! `instruct.mix`: interleaves a local Alpaca-format instruction file with generated instructions (CrossAlpaca)
//! or replays earlier instructions (InstructAlign's experience replay).

use crate::support::tables::instruct::{self as table, TOKENIZER_SLOT};
use alinea_engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError};

/// The stage kind.
pub struct InstructMix;

impl Stage for InstructMix {
    const KIND: &'static str = "instruct.mix";
    const SUMMARY: &'static str =
        "mix a local Alpaca JSON/JSONL file into generated instructions (CrossAlpaca, replay)";
    const DOC: &'static str = "\
Mixes an external instruction file (Alpaca JSON array or JSONL with instruction, input, output) into generated
instruction tables: by count (experience replay: e.g. 1000 records), by ratio, and/or with a cap of generated rows
per (task, direction) (CrossAlpaca: 10k en->x + 10k x->en). Parse errors name file:line:column.

Inputs:
  tasks      instruction tables (any number)
  alpaca     the local instruction file
  tokenizer  optional tokenizer.json (length limits of the external rows)

Parameters (defaults): count, ratio, per_direction_cap (none), shuffle = true, source_name = \"external\", seed = 0,
length limits. Output `instructions`.";
    type Params = alinea_instruct::MixParams;
    const INPUTS: &'static [InputSlot] = &[
        InputSlot {
            name: "tasks",
            kind: SlotKind::Tables,
            required: true,
            doc: "instruction tables",
        },
        InputSlot {
            name: "alpaca",
            kind: SlotKind::Path,
            required: true,
            doc: "Alpaca-format JSON or JSONL file",
        },
        TOKENIZER_SLOT,
    ];

    fn run(p: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let mut rows = Vec::new();
        for (_, df) in ctx.tables("tasks")? {
            rows.extend(table::from_frame(&df)?);
        }
        let path = ctx.path("alpaca").expect("required input").to_path_buf();
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
