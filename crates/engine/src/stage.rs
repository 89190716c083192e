//! The contract between the engine and a stage kind.
//!
//! A stage kind is a plain type implementing [`Stage`]: its parameters are a serde struct, its inputs are named
//! slots, and [`Stage::run`] turns a [`StageCtx`] into [`Outputs`]. The engine never looks inside a stage; it only
//! hashes what goes in and stores what comes out. [`Registry`] erases the types so a pipeline file can name kinds.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::contract::{ColumnDecl, OutputSlot};
use super::error::StageError;
use super::key::KindCode;

pub use super::ctx::StageCtx;

/// What a named input slot of a stage accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// The main table (or a named output) of exactly one upstream stage.
    Table,
    /// Tables of any number of upstream stages (e.g. every instance of a matrix: `"stage[*]"`).
    Tables,
    /// A file or directory on disk, hashed by content before the stage runs.
    Path,
    /// A blob output of one upstream stage (its first blob, or `stage.output`), e.g. adapter weights.
    Blob,
    /// A folder of files: either a directory on disk (hashed like [`SlotKind::Path`]) or every blob output of one
    /// upstream stage, materialized as files named after the outputs (e.g. a model: `config.json`,
    /// `model.safetensors`, `tokenizer.json`). Read it with [`StageCtx::folder`].
    Folder,
    /// Whatever the pipeline names: an upstream stage's files as a folder (a model, an adapter; tables beside
    /// them, such as a loss curve, are named `stage.loss`), or its main table when it has only tables; a named
    /// output of one (`stage.output`: a table, a blob or a folder output); or a path on disk.
    /// Read it with [`StageCtx::input`]. For kinds that run what the pipeline describes (`command`).
    Any,
}

/// The name of an [`InputSlot`] that stands for any slot name the pipeline writes (its kind and doc apply to
/// each), so that a kind can take inputs it does not know in advance.
pub const ANY_SLOT: &str = "*";

/// The slot of `inputs` named `name`: the one declared with that name, else the [`ANY_SLOT`] wildcard.
pub fn find_slot<'a>(inputs: &'a [InputSlot], name: &str) -> Option<&'a InputSlot> {
    inputs
        .iter()
        .find(|s| s.name == name)
        .or_else(|| inputs.iter().find(|s| s.name == ANY_SLOT))
}

/// One named input of a stage kind.
#[derive(Debug, Clone, Copy)]
pub struct InputSlot {
    /// Name used in the pipeline file's `inputs` table.
    pub name: &'static str,
    /// What the slot accepts.
    pub kind: SlotKind,
    /// Whether a pipeline must fill it.
    pub required: bool,
    /// One line shown by `alinea help <kind>`.
    pub doc: &'static str,
    /// For table slots: columns (with types) the slot reads, checked against the upstream's declared schema
    /// when the pipeline is loaded. Set with [`crate::TableSlot::requires`].
    pub columns: &'static [ColumnDecl],
}

/// Counters a stage reports about its work; stored in the provenance record and shown by `alinea log`.
///
/// `dropped` counts rows removed per reason, so that no row is ever lost silently.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Stats {
    /// Rows read from the inputs.
    pub rows_in: u64,
    /// Rows in the main output table.
    pub rows_out: u64,
    /// Rows dropped, by reason.
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
    /// Other counters, by name (e.g. `replaced_invalid_utf8`).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
}

impl Stats {
    /// Adds `n` to the dropped count of `reason`.
    pub fn drop_rows(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.dropped.entry(reason.to_string()).or_default() += n;
        }
    }

    /// Adds `n` to counter `name`.
    pub fn count(&mut self, name: &str, n: u64) {
        if n > 0 {
            *self.counters.entry(name.to_string()).or_default() += n;
        }
    }

    /// Folds another stats record into this one.
    pub fn merge(&mut self, other: Stats) {
        self.rows_in += other.rows_in;
        self.rows_out += other.rows_out;
        for (k, v) in other.dropped {
            *self.dropped.entry(k).or_default() += v;
        }
        for (k, v) in other.counters {
            *self.counters.entry(k).or_default() += v;
        }
    }
}

/// The bytes of a blob output: in memory (small exports), or a file the store takes over by path, so that a
/// multi-gigabyte model never passes through memory.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobData {
    /// Bytes held by the stage.
    Bytes(Vec<u8>),
    /// A file in the stage's scratch space ([`StageCtx::work_dir`]): the store moves it into `objects/` (hashing
    /// it as it streams past once), so the file is gone after the stage. A file elsewhere is copied.
    File(PathBuf),
}

impl From<Vec<u8>> for BlobData {
    fn from(bytes: Vec<u8>) -> Self {
        BlobData::Bytes(bytes)
    }
}

/// What a stage produces: named tables (the first is the main output), named blobs, and stats.
#[derive(Default)]
pub struct Outputs {
    /// Tables, stored as deterministic Parquet. The first one is what `inputs = { x = "stage" }` refers to.
    pub tables: Vec<(String, DataFrame)>,
    /// Opaque byte objects (adapter weights, text exports), stored by content hash.
    pub blobs: Vec<(String, BlobData)>,
    /// Counters for the provenance record.
    pub stats: Stats,
    /// Logs of the run (e.g. an external tool's stdout and stderr), stored with the record rather than as outputs:
    /// downstream stages never read them, and a log that prints timings does not make a result non-deterministic.
    pub logs: Vec<(String, BlobData)>,
}

impl Outputs {
    /// Outputs holding a single main table.
    pub fn table(name: &str, df: DataFrame, stats: Stats) -> Self {
        Outputs {
            tables: vec![(name.to_string(), df)],
            blobs: Vec::new(),
            stats,
            logs: Vec::new(),
        }
    }

    /// Adds a log file, handed over by path (see [`Outputs::logs`]).
    pub fn log_file(&mut self, name: impl Into<String>, path: impl Into<PathBuf>) {
        self.logs.push((name.into(), BlobData::File(path.into())));
    }

    /// Adds a blob held in memory.
    pub fn blob_bytes(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.blobs.push((name.into(), BlobData::Bytes(bytes)));
    }

    /// Adds a blob handed over by path (see [`BlobData::File`]).
    pub fn blob_file(&mut self, name: impl Into<String>, path: impl Into<PathBuf>) {
        self.blobs.push((name.into(), BlobData::File(path.into())));
    }

    /// Adds every file below `dir` as a blob named `<prefix>/<relative path>` (`/`-separated, sorted), the shape of
    /// an [`crate::OutputKind::Folder`] output. Returns how many files it added.
    pub fn folder(&mut self, prefix: &str, dir: &Path) -> Result<usize, StageError> {
        let files = crate::files::walk_files(dir)?;
        for file in &files {
            let rel = file.strip_prefix(dir).unwrap_or(file);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            self.blob_file(format!("{prefix}/{}", rel.join("/")), file.clone());
        }
        Ok(files.len())
    }
}

/// A stage kind. A binary registers its kinds in a [`Registry`], each with the [`KindCode`] that its build
/// discovered for it.
pub trait Stage: Send + Sync + 'static {
    /// The kind's name as written in pipeline files, e.g. `"ingest.opus100"`.
    const KIND: &'static str;
    /// One-line summary shown in lists of kinds.
    const SUMMARY: &'static str;
    /// Prose shown by `alinea help <kind>` after the summary: what the kind does, how. Parameters, inputs and
    /// outputs are documented from their declarations (doc comments of the `Params` fields, [`Stage::INPUTS`],
    /// [`Stage::OUTPUTS`]), never here.
    const DOC: &'static str = "";
    /// Bump to invalidate cached results when behaviour changes outside the stage's own source folder.
    const VERSION: u32 = 1;
    /// Where a cluster executor runs the kind by default (a pipeline's `local` and `resources` override it).
    const PLACEMENT: Placement = Placement::Cluster;
    /// Parameters, deserialized from the pipeline file. Use `#[serde(deny_unknown_fields, default)]`; `Default`
    /// gives the defaults `alinea help` shows, and the field doc comments (through `JsonSchema`) their meaning.
    type Params: Serialize + DeserializeOwned + JsonSchema + Default + Send + Sync;
    /// The named inputs of the kind (typed slot constants: `PAIRS.slot()`).
    const INPUTS: &'static [InputSlot];
    /// Every output the kind can produce, with table schemas; the first table is the main output.
    const OUTPUTS: &'static [OutputSlot];
    /// Top-level parameters that cannot change the output bytes (how often to checkpoint, progress, logging):
    /// they reach [`Stage::run`] but stay out of the cache key, so changing one reruns nothing. `alinea help`
    /// marks them. A parameter listed here that does change the bytes breaks the cache's promise: list only
    /// what the stage's own tests show to be byte-neutral.
    const UNKEYED_PARAMS: &'static [&'static str] = &[];

    /// The outputs produced with `params`, when they depend on parameters (e.g. an optional merged model): a
    /// subset of [`Stage::OUTPUTS`]. Checked against the pipeline before anything runs and against the produced
    /// outputs after [`Stage::run`].
    fn outputs(_params: &Self::Params) -> Vec<OutputSlot> {
        Self::OUTPUTS.to_vec()
    }

    /// Files under a path input that the stage will read; they are hashed before the stage runs and only they
    /// enter the cache key. The default takes the file itself, or every file below a directory.
    fn input_files(
        _params: &Self::Params,
        _slot: &str,
        path: &Path,
    ) -> Result<Vec<PathBuf>, StageError> {
        crate::files::walk_files(path)
    }

    /// Checks parameters beyond what their types say (ranges, combinations), before anything runs.
    fn validate(_params: &Self::Params) -> Result<(), ParamError> {
        Ok(())
    }

    /// What the result depends on besides parameters and inputs, as `(name, digest)` pairs for the cache key:
    /// e.g. the contents of the tool files a command runs (`tool:<path>`) and the values of the environment
    /// variables it may read (`env:<NAME>`). Values enter as digests, so a secret is never written into a record.
    /// Paths resolve against the pipeline's `root`. Kinds that read only their inputs (all built-in ones) keep the
    /// default: nothing.
    fn ambient(_params: &Self::Params, _root: &Path) -> Result<Vec<(String, String)>, StageError> {
        Ok(Vec::new())
    }

    /// Does the work.
    fn run(params: &Self::Params, ctx: &StageCtx) -> Result<Outputs, StageError>;
}

/// Where a cluster executor (Slurm) runs a stage kind unless the pipeline says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Seconds of work on one core (ingestion, sampling, instruction tables): run in the coordinating process, so a
    /// matrix of hundreds of them does not flood the scheduler with allocations.
    Local,
    /// A cluster job on CPUs.
    Cluster,
    /// A cluster job with one GPU (training, generation, representation analysis).
    Gpu,
}

/// Why parameters were rejected: the path of the offending field and a message. The pipeline loader reports it
/// at the `file:line:col` of that field (or of the `--set` override that set it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parameter `{field}`: {message}")]
pub struct ParamError {
    /// Field path, e.g. `per_lang` or `filters.max_len`; empty when the whole table is at fault.
    pub field: String,
    /// What was wrong, with the expected alternatives where serde knows them.
    pub message: String,
}

impl ParamError {
    /// Field `field` is at fault because of `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A stage kind with its types erased, as the engine and the CLI see it.
pub trait DynStage: Send + Sync {
    /// See [`Stage::KIND`].
    fn kind(&self) -> &'static str;
    /// See [`Stage::SUMMARY`].
    fn summary(&self) -> &'static str;
    /// See [`Stage::DOC`].
    fn doc(&self) -> &'static str;
    /// See [`Stage::OUTPUTS`].
    fn declared_outputs(&self) -> &'static [OutputSlot];
    /// See [`Stage::outputs`]; `params` is the canonical form.
    fn outputs(&self, params: &serde_json::Value) -> Result<Vec<OutputSlot>, StageError>;
    /// The JSON schema of the parameters (types and doc comments of the fields), for `alinea help`.
    fn params_schema(&self) -> serde_json::Value;
    /// The default parameters in canonical form (the `Default` of the kind's `Params`).
    fn default_params(&self) -> serde_json::Value;
    /// The kind's code fingerprint: the digest of the code it can reach and its [`Stage::VERSION`].
    fn fingerprint(&self) -> String;
    /// What the code fingerprint covers, file by file (for explanations of why a stage is stale).
    fn code(&self) -> &KindCode;
    /// See [`Stage::INPUTS`].
    fn inputs(&self) -> &'static [InputSlot];
    /// See [`Stage::PLACEMENT`].
    fn placement(&self) -> Placement;
    /// See [`Stage::UNKEYED_PARAMS`].
    fn unkeyed_params(&self) -> &'static [&'static str];
    /// Parses parameters into their canonical JSON form (defaults filled in, fields in a fixed order).
    fn canonical_params(&self, raw: serde_json::Value) -> Result<serde_json::Value, ParamError>;
    /// See [`Stage::input_files`]; `params` is the canonical form.
    fn input_files(
        &self,
        params: &serde_json::Value,
        slot: &str,
        path: &Path,
    ) -> Result<Vec<PathBuf>, StageError>;
    /// See [`Stage::ambient`]; `params` is the canonical form.
    fn ambient(
        &self,
        params: &serde_json::Value,
        root: &Path,
    ) -> Result<Vec<(String, String)>, StageError>;
    /// See [`Stage::run`]; `params` is the canonical form.
    fn run(&self, params: &serde_json::Value, ctx: &StageCtx) -> Result<Outputs, StageError>;
}

struct Erased<S> {
    code: KindCode,
    kind: PhantomData<S>,
}

fn typed<S: Stage>(params: &serde_json::Value) -> Result<S::Params, StageError> {
    S::Params::deserialize(params).map_err(|e| StageError::Param {
        field: String::new(),
        message: e.to_string(),
    })
}

use serde::Deserialize as _;

/// The top-level field at fault when serde could not say (a type error inside a `#[serde(flatten)]` field is
/// reported at the table): the one key whose removal makes the parameters parse (fields have defaults).
fn blame<P: DeserializeOwned>(raw: &serde_json::Value) -> Option<String> {
    let fields = raw.as_object()?;
    fields.keys().find_map(|key| {
        let mut rest = fields.clone();
        rest.remove(key);
        serde_json::from_value::<P>(serde_json::Value::Object(rest))
            .is_ok()
            .then(|| key.clone())
    })
}

/// A top-level key of `raw` that the parsed parameters do not serialize back is one serde ignored: an error, as
/// `deny_unknown_fields` gives. Checked here because serde cannot deny unknown fields through a nested
/// `#[serde(flatten)]` (train.lora flattens `TrainConfig`, which flattens `LoraConfig`).
fn reject_unknown_keys(
    raw: &serde_json::Value,
    parsed: &serde_json::Value,
) -> Result<(), ParamError> {
    let (Some(raw), Some(known)) = (raw.as_object(), parsed.as_object()) else {
        return Ok(());
    };
    match raw.keys().find(|k| !known.contains_key(*k)) {
        Some(unknown) => Err(ParamError {
            field: String::new(),
            message: format!(
                "unknown field `{unknown}`, expected one of {}",
                known
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        None => Ok(()),
    }
}

impl<S: Stage> DynStage for Erased<S> {
    fn kind(&self) -> &'static str {
        S::KIND
    }
    fn summary(&self) -> &'static str {
        S::SUMMARY
    }
    fn doc(&self) -> &'static str {
        S::DOC
    }
    fn fingerprint(&self) -> String {
        format!("{}+v{}", self.code.digest, S::VERSION)
    }
    fn code(&self) -> &KindCode {
        &self.code
    }
    fn inputs(&self) -> &'static [InputSlot] {
        S::INPUTS
    }
    fn placement(&self) -> Placement {
        S::PLACEMENT
    }
    fn unkeyed_params(&self) -> &'static [&'static str] {
        S::UNKEYED_PARAMS
    }
    fn declared_outputs(&self) -> &'static [OutputSlot] {
        S::OUTPUTS
    }
    fn outputs(&self, params: &serde_json::Value) -> Result<Vec<OutputSlot>, StageError> {
        Ok(S::outputs(&typed::<S>(params)?))
    }
    fn params_schema(&self) -> serde_json::Value {
        schemars::schema_for!(S::Params).to_value()
    }
    fn default_params(&self) -> serde_json::Value {
        serde_json::to_value(S::Params::default())
            .map(super::key::canonicalize)
            .unwrap_or(serde_json::Value::Null)
    }
    fn canonical_params(&self, raw: serde_json::Value) -> Result<serde_json::Value, ParamError> {
        let parsed: S::Params = serde_path_to_error::deserialize(&raw).map_err(|e| {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            let field = match field.as_str() {
                // serde names an unknown field in its message, with the table as the path.
                "." if message.starts_with("unknown field") => String::new(),
                "." => blame::<S::Params>(&raw).unwrap_or_default(),
                _ => field,
            };
            ParamError { field, message }
        })?;
        S::validate(&parsed)?;
        let value = serde_json::to_value(&parsed).map_err(|e| ParamError {
            field: String::new(),
            message: e.to_string(),
        })?;
        reject_unknown_keys(&raw, &value)?;
        Ok(super::key::canonicalize(value))
    }
    fn input_files(
        &self,
        params: &serde_json::Value,
        slot: &str,
        path: &Path,
    ) -> Result<Vec<PathBuf>, StageError> {
        S::input_files(&typed::<S>(params)?, slot, path)
    }
    fn ambient(
        &self,
        params: &serde_json::Value,
        root: &Path,
    ) -> Result<Vec<(String, String)>, StageError> {
        S::ambient(&typed::<S>(params)?, root)
    }
    fn run(&self, params: &serde_json::Value, ctx: &StageCtx) -> Result<Outputs, StageError> {
        S::run(&typed::<S>(params)?, ctx)
    }
}

/// All stage kinds known to a binary, by name.
#[derive(Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn DynStage>>,
}

impl Registry {
    /// Adds stage kind `S`, whose code the registering binary's build discovered as `code`.
    pub fn add<S: Stage>(&mut self, code: KindCode) -> &mut Self {
        self.kinds.insert(
            S::KIND,
            Box::new(Erased::<S> {
                code,
                kind: PhantomData,
            }),
        );
        self
    }

    /// The kind named `kind`, if registered.
    pub fn get(&self, kind: &str) -> Option<&dyn DynStage> {
        self.kinds.get(kind).map(|b| b.as_ref())
    }

    /// Every registered kind, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &dyn DynStage> {
        self.kinds.values().map(|b| b.as_ref())
    }

    /// Names of every registered kind, for "expected one of" messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}
