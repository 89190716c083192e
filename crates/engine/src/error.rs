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
    /// An input file hashes differently from the digest its key was made with, though its size and mtime are
    /// those seen when that digest was taken: the stat cache held a wrong entry. The executor drops the entry and
    /// runs the stage again with the file re-hashed (once).
    #[error("{}: content does not match the stat cache's digest for the unchanged file (a damaged statcache.json entry); alinea re-hashes its inputs and runs it again", path.display())]
    StaleInputDigest {
        /// The input file.
        path: PathBuf,
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
    /// A table in the store (or an input file) is not readable Parquet: truncated, damaged, or not Parquet.
    #[error("{what}: not a readable Parquet table: {source}")]
    BadTable {
        /// The object or file, e.g. `object <digest> (output `pairs` of stage `opus`)`.
        what: String,
        /// What the Parquet reader said.
        #[source]
        source: polars::error::PolarsError,
    },
    /// A domain crate (aligner, metrics, BLOOM, tokenizer, serde…) failed; `what` says where, `source` keeps the
    /// typed error for callers that look at it.
    #[error("{}", prefixed(what, source.as_ref()))]
    Domain {
        /// Context: what was being done (may be empty when the source says it all).
        what: String,
        /// The typed error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The stage's code panicked (input resolution included): a bug, reported as a failure of that stage.
    #[error("stage panicked (a bug in alinea, please report it): {0}")]
    Panicked(String),
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
    #[error("corrupt object {path}: content hashes to {actual}, expected {expected}; {}", corrupt_hint(quarantined.as_deref(), repair))]
    Corrupt {
        /// The object file.
        path: PathBuf,
        /// Its name.
        expected: String,
        /// What its bytes hash to.
        actual: String,
        /// Where the object was moved (`<store>/quarantine/`), when moving it succeeded.
        quarantined: Option<PathBuf>,
        /// The exact command that repairs the store, e.g. `alinea verify --repair --store DIR`.
        repair: String,
    },
    /// A ref or record names an object or action by something that is not a digest (a hand-edited file).
    #[error(
        "{path}: `{field}` is `{value}`, not a digest (64 lowercase hex characters); the file was edited or damaged: fix it, or delete it and rerun"
    )]
    BadDigest {
        /// The ref or record file.
        path: PathBuf,
        /// The field holding it, e.g. `stages.sample.key` or `outputs[0].digest`.
        field: String,
        /// What was found.
        value: String,
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
    #[error("{path}: unreadable record: {source}")]
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A pipeline ref that cannot be read: not JSON of the expected shape, or naming actions by non-digests.
    #[error(
        "{path}: unreadable pipeline ref ({source}); `{repair}` sets it aside, after which the pipeline's next run writes a new one (its results stay cached)"
    )]
    BadRef {
        /// The ref file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
        /// The exact command that repairs the store.
        repair: String,
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
    /// No run record has that id (or several start with it).
    #[error("no run `{id}` in the store (`alinea runs` lists them); newest: {known}")]
    UnknownRun {
        /// The requested id or prefix.
        id: String,
        /// Ids that exist (the newest ones), or those the prefix matched.
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

/// `what: source`, or the source alone when `what` is empty.
fn prefixed(what: &str, source: &(dyn std::error::Error + Send + Sync)) -> String {
    if what.is_empty() {
        source.to_string()
    } else {
        format!("{what}: {source}")
    }
}

fn corrupt_hint(quarantined: Option<&std::path::Path>, repair: &str) -> String {
    match quarantined {
        Some(q) => format!("moved to {}; rerun to recompute it", q.display()),
        None => format!("run `{repair}`, then rerun to recompute it"),
    }
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

impl StageError {
    /// A domain crate's typed error, with what was being done (`""` when the error says it all).
    pub fn domain(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> StageError {
        StageError::Domain {
            what: what.into(),
            source: source.into(),
        }
    }

    /// `map_err` adapter: a domain crate's error, with context (`""` for none).
    pub fn with<E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>>(
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> StageError {
        let what = what.into();
        move |source| StageError::Domain {
            what,
            source: source.into(),
        }
    }

    /// The digest of the corrupt store object behind this error, if a corrupt object caused it (looked for along
    /// the whole source chain, so a stage that wraps the error still lets the executor recompute the object).
    pub fn corrupt_object(&self) -> Option<&str> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cur {
            let store =
                e.downcast_ref::<StoreError>()
                    .or_else(|| match e.downcast_ref::<StageError>() {
                        Some(StageError::Store(s)) => Some(s),
                        _ => None,
                    });
            if let Some(StoreError::Corrupt { expected, .. }) = store {
                return Some(expected);
            }
            cur = e.source();
        }
        None
    }

    /// `map_err` adapter: an OS error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StageError {
        let path = path.into();
        move |source| StageError::Io { path, source }
    }
}
