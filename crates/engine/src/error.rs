//! Error types of the engine and of stages. Every variant names the file, line or field at fault.

use std::path::PathBuf;

/// An error raised while a stage runs.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An input file's content is malformed.
    #[error("{}", located(path, *line, message))]
    BadInput {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when the whole file is at fault).
        line: u64,
        /// What was found and what was expected.
        message: String,
    },
    /// A parameter is invalid.
    #[error("parameter `{field}`: {message}")]
    Param {
        /// The field.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// An input slot is missing or holds the wrong thing.
    #[error("input `{slot}`: {message}")]
    Input {
        /// The slot.
        slot: String,
        /// What was wrong.
        message: String,
    },
    /// A table operation failed.
    #[error("table operation failed: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// The store failed underneath the stage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else, with a message that says what and where.
    #[error("{0}")]
    Other(String),
}

/// An error of the content-addressed store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a store file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An object's bytes do not hash to its name.
    #[error(
        "corrupt object {path}: content hashes to {actual}, expected {expected} (run `alinea verify --repair`, then rerun to recompute it)"
    )]
    Corrupt {
        /// The object file.
        path: PathBuf,
        /// Its name.
        expected: String,
        /// What its bytes hash to.
        actual: String,
    },
    /// An object named by a record is absent.
    #[error("missing object {digest} (expected at {path})")]
    Missing {
        /// The object's digest.
        digest: String,
        /// Where it should be.
        path: PathBuf,
    },
    /// A record file is not valid JSON of the expected shape.
    #[error("{path}: unreadable record: {message}")]
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
    /// Another process holds the store lock and `--no-wait` was given.
    #[error("store {path} is locked by another alinea run (drop --no-wait to wait for it)")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// No run has recorded a stage of that name.
    #[error("no stage named `{name}` in {scope}; known stages: {known}")]
    UnknownStage {
        /// The requested name.
        name: String,
        /// Which pipeline(s) were searched.
        scope: String,
        /// The names that exist.
        known: String,
    },
}

/// `path:line: message`, or `path: message` when the whole file is at fault (line 0).
fn located(path: &std::path::Path, line: u64, message: &str) -> String {
    if line == 0 {
        format!("{}: {message}", path.display())
    } else {
        format!("{}:{line}: {message}", path.display())
    }
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

impl StageError {
    /// `map_err` adapter: an OS error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StageError {
        let path = path.into();
        move |source| StageError::Io { path, source }
    }
}
