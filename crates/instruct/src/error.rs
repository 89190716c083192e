//! Error type of the crate: every variant names the record, line or field at fault.

use std::path::PathBuf;

/// Everything that can go wrong while materializing instructions. Bad input never panics: it ends up here.
#[derive(Debug, thiserror::Error)]
pub enum InstructError {
    /// A language code has no English name in the caller's name map.
    #[error("pair {pair_id}: field `{field}`: no English name for language code `{code}`")]
    UnknownLanguage {
        /// Pair whose language could not be named.
        pair_id: u64,
        /// `src_lang` or `tgt_lang`.
        field: &'static str,
        /// The code without a name.
        code: String,
    },
    /// The same `pair_id` appears twice in one input table.
    #[error("{table}: duplicate pair_id {pair_id} (row {row})")]
    DuplicatePair {
        /// Which input table (`pairs`, `tokens`).
        table: &'static str,
        /// The repeated id.
        pair_id: u64,
        /// 0-based row of the second occurrence.
        row: usize,
    },
    /// A row refers to a `pair_id` that the table it depends on does not have.
    #[error("{table} row {row}: pair_id {pair_id} not found in {needed}")]
    UnknownPair {
        /// Table holding the dangling reference.
        table: &'static str,
        /// 0-based row in that table.
        row: usize,
        /// The dangling id.
        pair_id: u64,
        /// Table that should have held it.
        needed: &'static str,
    },
    /// A token's byte span does not fit its sentence.
    #[error(
        "tokens of pair {pair_id}, side {side}, token {index}: byte span {start}..{end} {reason}"
    )]
    BadTokenSpan {
        /// Sentence pair.
        pair_id: u64,
        /// `src` or `tgt`.
        side: &'static str,
        /// 0-based token index.
        index: usize,
        /// Byte start.
        start: usize,
        /// Byte end (exclusive).
        end: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A gold pair has an invalid field.
    #[error("gold pairs row {row} (pair {pair_id}): field `{field}` = {value}: {reason}")]
    BadGoldPair {
        /// 0-based row in the gold-pairs table.
        row: usize,
        /// Sentence pair.
        pair_id: u64,
        /// Field at fault.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A parameter value is invalid.
    #[error("parameter `{field}`: {message}")]
    Param {
        /// Parameter name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A curriculum objective string could not be parsed or cannot be served by the given rows.
    #[error("objective `{objective}`: {message}")]
    Objective {
        /// The objective as given.
        objective: String,
        /// What is wrong.
        message: String,
    },
    /// An Alpaca-format instruction file is malformed.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Alpaca {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An exported JSONL file (or stream) could not be parsed back.
    #[error("{source_name}:{line}: {message}")]
    Jsonl {
        /// File name or stream description.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The tokenizer could not be loaded or failed on a text.
    #[error("tokenizer {what}: {message}")]
    Tokenizer {
        /// Tokenizer file, or the operation that failed.
        what: String,
        /// Underlying message.
        message: String,
    },
}

/// Result alias of the crate.
pub type Result<T, E = InstructError> = std::result::Result<T, E>;
