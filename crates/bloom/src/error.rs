//! Error type of the crate: every variant names the file, tensor, field or example at fault.

use std::path::PathBuf;

/// Errors raised while loading, training or running a BLOOM model.
#[derive(Debug, thiserror::Error)]
pub enum BloomError {
    /// The model folder does not exist or is not a directory.
    #[error("model folder {0}: not found or not a directory")]
    MissingFolder(PathBuf),
    /// A required file is absent.
    #[error("{path}: missing file ({what})")]
    MissingFile {
        /// Path that was looked for.
        path: PathBuf,
        /// What the file should have held.
        what: &'static str,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File at fault.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file is malformed.
    #[error("{path}: invalid JSON at line {line}, column {column}: {msg}")]
    Json {
        /// File at fault.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// Parser message.
        msg: String,
    },
    /// A config field has an unsupported or inconsistent value.
    #[error("{path}: field `{field}`: {msg}")]
    Config {
        /// File at fault (or `<preset>` / `<built-in>`).
        path: PathBuf,
        /// Field name.
        field: String,
        /// What is wrong.
        msg: String,
    },
    /// A tensor expected in the weights is absent.
    #[error("{path}: tensor `{name}` missing")]
    MissingTensor {
        /// File(s) searched.
        path: PathBuf,
        /// Tensor name (without the `transformer.` prefix).
        name: String,
    },
    /// A tensor has the wrong shape for the config.
    #[error("{path}: tensor `{name}` has shape {got:?}, config implies {expected:?}")]
    ShapeMismatch {
        /// File holding the tensor.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape found.
        got: Vec<usize>,
        /// Shape expected.
        expected: Vec<usize>,
    },
    /// A safetensors file could not be parsed.
    #[error("{path}: invalid safetensors file: {msg}")]
    Safetensors {
        /// File at fault.
        path: PathBuf,
        /// Parser message.
        msg: String,
    },
    /// The tokenizer could not be loaded, trained or used.
    #[error("tokenizer {path}: {msg}")]
    Tokenizer {
        /// File at fault (or `<memory>`).
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// The requested device is unknown or not compiled in.
    #[error("device `{name}`: {msg}")]
    Device {
        /// Device string given.
        name: String,
        /// What went wrong.
        msg: String,
    },
    /// A parameter value is out of range.
    #[error("parameter `{name}`: {msg}")]
    Param {
        /// Parameter name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// A training or generation input is unusable.
    #[error("phase {phase}, example {index}: {msg}")]
    Data {
        /// Phase index (0 for generation).
        phase: usize,
        /// Example index inside the phase.
        index: usize,
        /// What is wrong.
        msg: String,
    },
    /// A checkpoint directory is inconsistent with the run being resumed.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// Checkpoint path.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A preset name is not known.
    #[error("unknown preset `{0}` (known: bloomz-1b1, bloomz-3b, bloomz-7b1, bloomz-560m)")]
    UnknownPreset(String),
    /// A tensor operation failed (shape bug or out of memory).
    #[error("tensor operation: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, BloomError>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BloomError {
    let path = path.into();
    move |source| BloomError::Io { path, source }
}

pub(crate) fn json_err(path: impl Into<PathBuf>) -> impl FnOnce(serde_json::Error) -> BloomError {
    let path = path.into();
    move |e| BloomError::Json {
        path,
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    }
}

/// Reads and parses a JSON file with errors naming the file and position.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(json_err(path))
}

/// Writes a file through a temporary sibling then renames, so that an interrupted write never leaves
/// a truncated file that a later resume would trust.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}
