//! JSONL exports that trainers read directly, and their parsers (so exports can be checked by parsing them back).
//!
//! * `alpaca`: `{"instruction", "input", "output"}` per line. Generated rows carry their whole prompt in
//!   `instruction` and an empty `input`.
//! * `prompt-completion`: `{"prompt", "completion"}` per line, the format of TRL's `SFTTrainer` for
//!   prompt-completion datasets (loss on the completion only by default):
//!   `datasets.load_dataset("json", data_files="train.jsonl")` then `SFTTrainer(model, train_dataset=ds,
//!   peft_config=LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, target_modules=["query_key_value"]))`.
//! * `rows`: every column of [`InstructRow`].

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::error::{InstructError, Result};
use crate::mix::AlpacaRecord;
use crate::row::InstructRow;

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// Alpaca `instruction`/`input`/`output` (default).
    #[default]
    Alpaca,
    /// `prompt`/`completion`.
    PromptCompletion,
    /// All row columns.
    Rows,
}

/// One prompt/completion record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptCompletion {
    /// The full prompt ([`InstructRow::prompt`]).
    pub prompt: String,
    /// The expected output, verbatim (with its leading space where the template has one).
    pub completion: String,
}

/// Writes `rows` as JSON Lines in `format` (one object per line, `\n` line ends, key order fixed).
pub fn write_jsonl<W: Write>(
    rows: &[InstructRow],
    format: ExportFormat,
    mut w: W,
) -> std::io::Result<()> {
    for r in rows {
        let line = match format {
            ExportFormat::Alpaca => serde_json::to_string(&AlpacaRecord {
                instruction: r.instruction.clone(),
                input: r.input.clone(),
                output: r.output.clone(),
            }),
            ExportFormat::PromptCompletion => serde_json::to_string(&PromptCompletion {
                prompt: r.prompt(),
                completion: r.output.clone(),
            }),
            ExportFormat::Rows => serde_json::to_string(r),
        }
        .map_err(std::io::Error::other)?;
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads JSON Lines of `T` (e.g. [`AlpacaRecord`], [`PromptCompletion`], [`InstructRow`]); errors name
/// `source_name:line`.
pub fn read_jsonl<T: for<'de> Deserialize<'de>, R: BufRead>(
    r: R,
    source_name: &str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.map_err(|e| InstructError::Jsonl {
            source_name: source_name.into(),
            line: i + 1,
            message: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|e| InstructError::Jsonl {
                source_name: source_name.into(),
                line: i + 1,
                message: e.to_string(),
            })?,
        );
    }
    Ok(out)
}
