//! Pipeline files → [`Plan`]: parsing with source spans, `--set` overrides, matrix expansion and validation.
//!
//! Everything that can be wrong with a pipeline is found here, before anything runs, and reported as
//! `file:line:col: message` with the valid alternatives.
//!
//! ```toml
//! [pipeline]
//! name = "demo"                  # default: the file's stem
//! root = ".."                    # paths are relative to this (itself relative to the file); ${VAR} expands
//!
//! [stages.opus]
//! kind = "ingest.opus100"
//! inputs = { root = "datasets/opus-100" }
//! langs = ["be", "li"]
//!
//! [stages.sample]
//! kind = "sample"
//! inputs = { pairs = "opus" }    # a stage name, `stage.output`, or `stage[*]` (all instances of a matrix)
//! per_lang = 200
//! matrix = { seed = [1, 2] }     # one cached instance per value: sample_1, sample_2
//! ```
//! A stage that takes a matrix stage as input is instantiated once per instance of it (fan-out), so a sweep
//! carries through the pipeline; instances that share an axis are joined on its value.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Item, Value};

use super::contract::{OutputSlot, list_outputs};
use super::slurm::{ExecutorSpec, Resources};
use super::stage::{Registry, SlotKind};

/// A pipeline that passed validation: stages in an order where every input comes first.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The pipeline's name (its refs in the store are kept under it).
    pub name: String,
    /// The pipeline file.
    pub file: PathBuf,
    /// Directory relative paths are resolved against.
    pub root: PathBuf,
    /// Stage instances in topological order (declaration order where free).
    pub stages: Vec<PlannedStage>,
    /// The `[executor]` table: which executor runs stale stages, and its defaults.
    pub executor: ExecutorSpec,
    /// The `[store]` table: the remote cache this pipeline shares.
    pub remote: RemoteConfig,
}

/// The `[store]` table of a pipeline file:
/// ```toml
/// [store]
/// remote = "s3://lab-cache/alinea"   # or gs://, az://, file:///…; ${VAR} expands; --remote and ALINEA_REMOTE win
/// remote_mode = "read"               # write (default: pull and push), read (pull only) or off
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteConfig {
    /// The remote's URL.
    pub url: Option<String>,
    /// `write`, `read` or `off`.
    pub mode: Option<String>,
}

fn parse_store_table(src: &Source<'_>, item: &Item) -> Result<RemoteConfig, PlanError> {
    let t = item
        .as_table_like()
        .ok_or_else(|| src.err(item.span(), "`store` must be a table"))?;
    let mut cfg = RemoteConfig::default();
    for (key, value) in t.iter() {
        let span = value.span().or_else(|| t.key(key).and_then(|k| k.span()));
        match (key, value.as_str()) {
            ("remote", Some(v)) => cfg.url = Some(expand_env(v).map_err(|m| src.err(span, m))?),
            ("remote_mode", Some(v @ ("write" | "read" | "off"))) => cfg.mode = Some(v.to_string()),
            ("remote", None) => {
                return Err(src.err(
                    span,
                    "store.remote must be a string: a URL such as s3://BUCKET/PREFIX",
                ));
            }
            ("remote_mode", _) => {
                return Err(src.err(
                    span,
                    "store.remote_mode must be one of: \"write\", \"read\", \"off\"",
                ));
            }
            (other, _) => {
                return Err(src.err(
                    t.key(other).and_then(|k| k.span()),
                    format!("unknown key `store.{other}`; expected one of: remote, remote_mode"),
                ));
            }
        }
    }
    Ok(cfg)
}

impl Plan {
    /// The plan cut down to `targets` and their ancestors (`alinea run PIPELINE STAGE…`, as `dvc repro STAGE`). A
    /// target names a stage instance or a `[stages.X]` table (all of its matrix instances); an unknown name is an
    /// error listing the stages.
    pub fn restrict_to(&self, targets: &[String]) -> Result<Plan, String> {
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        for t in targets {
            let hits: Vec<&PlannedStage> = self
                .stages
                .iter()
                .filter(|s| s.name == *t || s.base == *t)
                .collect();
            if hits.is_empty() {
                return Err(format!(
                    "no stage named `{t}` in pipeline `{}`; stages are: {}",
                    self.name,
                    self.stages
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            wanted.extend(hits.iter().map(|s| s.name.as_str()));
        }
        // Stages are in topological order: walking backwards, a wanted stage makes its upstreams wanted.
        for s in self.stages.iter().rev() {
            if wanted.contains(s.name.as_str()) {
                let ups: Vec<&str> = s.upstream().collect();
                wanted.extend(ups);
            }
        }
        Ok(Plan {
            name: self.name.clone(),
            file: self.file.clone(),
            root: self.root.clone(),
            stages: self
                .stages
                .iter()
                .filter(|s| wanted.contains(s.name.as_str()))
                .cloned()
                .collect(),
            executor: self.executor.clone(),
            remote: self.remote.clone(),
        })
    }

    /// The instances a `--force` name stands for (an instance, or every instance of a `[stages.X]` table).
    pub fn instances_of(&self, name: &str) -> Vec<String> {
        self.stages
            .iter()
            .filter(|s| s.name == name || s.base == name)
            .map(|s| s.name.clone())
            .collect()
    }
}

/// One stage instance of a plan.
#[derive(Debug, Clone)]
pub struct PlannedStage {
    /// Unique name (matrix instances get their axis values appended).
    pub name: String,
    /// The name of its `[stages.X]` table.
    pub base: String,
    /// Stage kind.
    pub kind: String,
    /// Canonical parameters (defaults filled in).
    pub params: serde_json::Value,
    /// An explicit version from the pipeline file; part of the cache key.
    pub version: Option<String>,
    /// Per slot, what fills it.
    pub inputs: BTreeMap<String, Vec<InputRef>>,
    /// Matrix axis values of this instance.
    pub axes: BTreeMap<String, serde_json::Value>,
    /// What the stage asks of a cluster executor (not in the key: where it runs cannot change its bytes).
    pub resources: Resources,
    /// `local = true|false`: run in this process even under a cluster executor, or never; `None` follows the
    /// kind's [`crate::Placement`].
    pub local: Option<bool>,
}

/// What fills an input slot.
#[derive(Debug, Clone, PartialEq)]
pub enum InputRef {
    /// An output of another stage instance (its main table when `output` is `None`).
    Stage {
        /// The instance name.
        stage: String,
        /// A named output.
        output: Option<String>,
    },
    /// A file or directory.
    Path(PathBuf),
}

impl PlannedStage {
    /// Names of the stage instances this one reads.
    pub fn upstream(&self) -> impl Iterator<Item = &str> {
        self.inputs.values().flatten().filter_map(|r| match r {
            InputRef::Stage { stage, .. } => Some(stage.as_str()),
            InputRef::Path(_) => None,
        })
    }
}

/// A pipeline file that cannot be run, located in its source (or at the `--set` override at fault).
#[derive(Debug, thiserror::Error)]
#[error("{}", located(file, *line, *col, message))]
pub struct PlanError {
    /// The pipeline file, or the override at fault (`--set sample.per_lang=abc`, with line 0).
    pub file: String,
    /// 1-based line (0 when the error is not in the file: an unreadable file, an override).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong and what would be valid.
    pub message: String,
}

fn located(file: &str, line: usize, col: usize, message: &str) -> String {
    if line == 0 {
        format!("{file}: {message}")
    } else {
        format!("{file}:{line}:{col}: {message}")
    }
}

/// A `--set stage.param=value` override.
#[derive(Debug, Clone)]
pub struct Override {
    /// As given on the command line (`sample.per_lang=500`), for messages.
    pub raw: String,
    /// Stage (base or instance) name.
    pub stage: String,
    /// Parameter name.
    pub param: String,
    /// TOML-parsed value.
    pub value: serde_json::Value,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (lhs, rhs) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected STAGE.PARAM=VALUE"))?;
        let (stage, param) = lhs
            .trim()
            .split_once('.')
            .ok_or_else(|| format!("`{lhs}`: expected STAGE.PARAM before `=`"))?;
        // A value that is not valid TOML (e.g. a bare word) is taken as a string.
        let value = format!("v = {}", rhs.trim())
            .parse::<toml_edit::DocumentMut>()
            .ok()
            .and_then(|d| d.get("v").and_then(|i| i.as_value()).map(value_to_json))
            .unwrap_or_else(|| serde_json::Value::String(rhs.trim().to_string()));
        Ok(Override {
            raw: s.to_string(),
            stage: stage.to_string(),
            param: param.to_string(),
            value,
        })
    }
}

/// Keys of a stage table that are not parameters. `resources` and `local` say where the stage runs, which cannot
/// change its bytes, so they stay out of the key.
const STAGE_KEYS: [&str; 6] = ["kind", "inputs", "matrix", "version", "resources", "local"];

struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn err(&self, span: Option<Range<usize>>, message: impl Into<String>) -> PlanError {
        let offset = span.map(|s| s.start).unwrap_or(0).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        PlanError {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// Converts a TOML value to JSON (datetimes become strings).
pub fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::String(s) => serde_json::Value::String(s.value().clone()),
        Value::Integer(i) => serde_json::Value::from(*i.value()),
        Value::Float(f) => serde_json::Number::from_f64(*f.value())
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Boolean(b) => serde_json::Value::Bool(*b.value()),
        Value::Datetime(d) => serde_json::Value::String(d.value().to_string()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(value_to_json).collect()),
        Value::InlineTable(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_string(), value_to_json(v)))
                .collect(),
        ),
    }
}

fn item_to_json(item: &Item) -> serde_json::Value {
    match item {
        Item::Value(v) => value_to_json(v),
        Item::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_string(), item_to_json(v)))
                .collect(),
        ),
        Item::ArrayOfTables(a) => serde_json::Value::Array(
            a.iter()
                .map(|t| {
                    serde_json::Value::Object(
                        t.iter()
                            .map(|(k, v)| (k.to_string(), item_to_json(v)))
                            .collect(),
                    )
                })
                .collect(),
        ),
        Item::None => serde_json::Value::Null,
    }
}

/// Expands `${VAR}` from the environment.
fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?
            + start;
        let var = &rest[start + 2..end];
        let val = std::env::var(var)
            .map_err(|_| format!("environment variable `{var}` (used in `{s}`) is not set"))?;
        out.push_str(&val);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn suffix_of(value: &serde_json::Value) -> String {
    let raw = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// Closest candidate by Levenshtein distance (counted in chars, by `strsim`), for "did you mean" hints.
fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// One `inputs` slot as written: its name, each reference with its span, and the span of the slot's value.
type RawInput = (
    String,
    Vec<(String, Option<Range<usize>>)>,
    Option<Range<usize>>,
);

/// A `[stages.X]` table as written, before expansion.
struct Decl {
    name: String,
    header: Option<Range<usize>>,
    kind: String,
    version: Option<String>,
    params: serde_json::Map<String, serde_json::Value>,
    /// Spans of parameter keys by field path (`length`, `length.max_input_tokens`).
    param_spans: BTreeMap<String, Option<Range<usize>>>,
    /// Parameters set by `--set`: name → the override as given.
    overridden: BTreeMap<String, String>,
    inputs: Vec<RawInput>,
    matrix: Vec<(String, Vec<serde_json::Value>)>,
    resources: Resources,
    local: Option<bool>,
}

/// Parses and validates a pipeline file.
pub fn load(path: &Path, registry: &Registry, overrides: &[Override]) -> Result<Plan, PlanError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| PlanError {
        file: file.clone(),
        line: 0,
        col: 0,
        message: format!("cannot read pipeline file: {e}"),
    })?;
    let text = utf8_text(&file, &bytes)?;
    parse(&file, text, path, registry, overrides)
}

/// The file as text, or an error at the line and column of the first byte that is not UTF-8 (TOML is UTF-8).
fn utf8_text<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, PlanError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Columns count characters, as TOML errors do; the valid prefix of the line is UTF-8 by construction.
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        PlanError {
            file: file.to_string(),
            line: good.iter().filter(|&&b| b == b'\n').count() + 1,
            col,
            message: format!(
                "invalid UTF-8 (byte 0x{:02X}): a pipeline file must be UTF-8 text",
                bytes[e.valid_up_to()]
            ),
        }
    })
}

/// Parses and validates pipeline `text` (from `path`, used for messages and relative paths).
pub fn parse(
    file: &str,
    text: &str,
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
) -> Result<Plan, PlanError> {
    let src = Source { file, text };
    let doc = toml_edit::Document::parse(text.to_string())
        .map_err(|e| src.err(e.span(), format!("invalid TOML: {}", e.message())))?;
    let top = doc.as_table();
    for (key, _) in top.iter() {
        if key != "pipeline" && key != "stages" && key != "executor" && key != "store" {
            return Err(src.err(
                top.key(key).and_then(|k| k.span()),
                format!(
                    "unknown top-level key `{key}`; expected `pipeline`, `executor`, `store` or `stages`"
                ),
            ));
        }
    }

    let mut name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut root = base_dir.clone();
    if let Some(item) = top.get("pipeline") {
        let t = item
            .as_table_like()
            .ok_or_else(|| src.err(item.span(), "`pipeline` must be a table"))?;
        for (key, value) in t.iter() {
            let span = value.span().or_else(|| t.key(key).and_then(|k| k.span()));
            let s = value.as_str();
            match (key, s) {
                ("name", Some(s)) if valid_name(s) => name = s.to_string(),
                ("name", _) => {
                    return Err(src.err(
                        span,
                        "pipeline.name must be a string of letters, digits, `_` or `-`",
                    ));
                }
                ("root", Some(s)) => {
                    root = base_dir.join(expand_env(s).map_err(|m| src.err(span, m))?)
                }
                ("root", None) => {
                    return Err(src.err(span, "pipeline.root must be a string (a directory)"));
                }
                ("description", _) => {}
                (other, _) => {
                    return Err(src.err(t.key(other).and_then(|k| k.span()), format!("unknown key `pipeline.{other}`; expected one of: name, root, description")));
                }
            }
        }
    }

    let remote = match top.get("store") {
        Some(item) => parse_store_table(&src, item)?,
        None => RemoteConfig::default(),
    };

    let stages_item = top.get("stages").ok_or_else(|| {
        src.err(
            None,
            "no `[stages.NAME]` tables: a pipeline needs at least one stage",
        )
    })?;
    let stages_table = stages_item
        .as_table_like()
        .ok_or_else(|| src.err(stages_item.span(), "`stages` must be a table of tables"))?;
    let mut decls: Vec<Decl> = Vec::new();
    for (stage_name, item) in stages_table.iter() {
        let header = stages_table
            .key(stage_name)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        if !valid_name(stage_name) {
            return Err(src.err(header, format!("stage name `{stage_name}`: use letters, digits, `_` or `-`, not starting with a digit")));
        }
        let t = item.as_table_like().ok_or_else(|| {
            src.err(
                header.clone(),
                format!("stage `{stage_name}` must be a table"),
            )
        })?;
        decls.push(parse_decl(&src, stage_name, header, t, registry)?);
    }

    for ov in overrides {
        let Some(decl) = decls.iter_mut().find(|d| d.name == ov.stage) else {
            return Err(override_err(
                &ov.raw,
                format!(
                    "no stage `{}`; stages are: {}{}",
                    ov.stage,
                    decls
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    did_you_mean(&ov.stage, decls.iter().map(|d| d.name.as_str()))
                ),
            ));
        };
        decl.params.insert(ov.param.clone(), ov.value.clone());
        decl.overridden.insert(ov.param.clone(), ov.raw.clone());
        decl.matrix.retain(|(axis, _)| axis != &ov.param);
    }

    let executor = match top.get("executor") {
        None => ExecutorSpec::default(),
        Some(item) => typed_table(&src, "executor", item)?,
    };
    let order = base_order(&src, &decls, registry)?;
    let stages = expand(&src, &decls, &order, registry, &root)?;
    Ok(Plan {
        name,
        file: path.to_path_buf(),
        root,
        stages,
        executor,
        remote,
    })
}

/// Deserializes a table of the pipeline file into `T`, with an error at the offending field.
fn typed_table<T: serde::de::DeserializeOwned>(
    src: &Source,
    what: &str,
    item: &Item,
) -> Result<T, PlanError> {
    let Some(table) = item.as_table_like() else {
        return Err(src.err(item.span(), format!("`{what}` must be a table")));
    };
    serde_path_to_error::deserialize(item_to_json(item)).map_err(|e| {
        let field = e.path().to_string();
        let first = field.split('.').next().unwrap_or_default();
        let span = table
            .key(first)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        src.err(span, format!("`{what}`: {}", e.into_inner()))
    })
}

fn parse_decl(
    src: &Source,
    name: &str,
    header: Option<Range<usize>>,
    t: &dyn toml_edit::TableLike,
    registry: &Registry,
) -> Result<Decl, PlanError> {
    let key_span = |k: &str| t.key(k).and_then(|k| k.span());
    let kind_item = t.get("kind").ok_or_else(|| {
        src.err(
            header.clone(),
            format!(
                "stage `{name}` has no `kind`; known kinds: {}",
                registry.names().join(", ")
            ),
        )
    })?;
    let kind = kind_item
        .as_str()
        .ok_or_else(|| src.err(kind_item.span(), "`kind` must be a string"))?
        .to_string();
    let Some(stage) = registry.get(&kind) else {
        return Err(src.err(
            kind_item.span(),
            format!(
                "unknown stage kind `{kind}`{}; known kinds: {}",
                did_you_mean(&kind, registry.names()),
                registry.names().join(", ")
            ),
        ));
    };
    let version = match t.get("version") {
        None => None,
        Some(item) => Some(match item.as_value() {
            Some(Value::String(s)) => s.value().clone(),
            Some(Value::Integer(i)) => i.value().to_string(),
            _ => return Err(src.err(item.span(), "`version` must be a string or an integer")),
        }),
    };
    let mut inputs = Vec::new();
    if let Some(item) = t.get("inputs") {
        let it = item.as_table_like().ok_or_else(|| {
            src.err(
                item.span(),
                "`inputs` must be a table: { slot = \"stage\" | \"path\" | [..] }",
            )
        })?;
        let slots: Vec<&str> = stage.inputs().iter().map(|s| s.name).collect();
        for (slot, value) in it.iter() {
            let slot_span = it.key(slot).and_then(|k| k.span());
            if slots.contains(&super::stage::ANY_SLOT) && !valid_name(slot) {
                return Err(src.err(
                    slot_span,
                    format!("input name `{slot}`: use letters, digits, `_` or `-`, not starting with a digit"),
                ));
            }
            if super::stage::find_slot(stage.inputs(), slot).is_none() {
                return Err(src.err(
                    slot_span,
                    format!(
                        "stage `{name}` ({kind}) has no input `{slot}`{}; its inputs are: {}",
                        did_you_mean(slot, slots.iter().copied()),
                        if slots.is_empty() {
                            "(none)".to_string()
                        } else {
                            slots.join(", ")
                        }
                    ),
                ));
            }
            let refs = match value.as_value() {
                Some(Value::String(s)) => vec![(s.value().clone(), value.span())],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(|s| (s.to_string(), v.span()))
                            .ok_or_else(|| src.err(v.span(), "input references must be strings"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(src.err(
                        value.span(),
                        "an input must be a string or an array of strings",
                    ));
                }
            };
            inputs.push((slot.to_string(), refs, slot_span));
        }
    }
    for slot in stage
        .inputs()
        .iter()
        .filter(|s| s.required && s.name != super::stage::ANY_SLOT)
    {
        if !inputs.iter().any(|(n, _, _)| n == slot.name) {
            return Err(src.err(
                header.clone(),
                format!(
                    "stage `{name}` ({kind}) needs input `{}`: {}",
                    slot.name, slot.doc
                ),
            ));
        }
    }
    let mut matrix = Vec::new();
    if let Some(item) = t.get("matrix") {
        let mt = item.as_table_like().ok_or_else(|| {
            src.err(
                item.span(),
                "`matrix` must be a table of arrays: { param = [v1, v2] }",
            )
        })?;
        for (axis, values) in mt.iter() {
            let Some(Value::Array(a)) = values.as_value() else {
                return Err(src.err(
                    values.span(),
                    format!("matrix axis `{axis}` must be an array of values"),
                ));
            };
            if a.is_empty() {
                return Err(src.err(values.span(), format!("matrix axis `{axis}` is empty")));
            }
            if STAGE_KEYS.contains(&axis) {
                return Err(src.err(
                    mt.key(axis).and_then(|k| k.span()),
                    format!("`{axis}` cannot be a matrix axis"),
                ));
            }
            matrix.push((axis.to_string(), a.iter().map(value_to_json).collect()));
        }
    }
    let resources = match t.get("resources") {
        None => Resources::default(),
        Some(item) => typed_table(src, &format!("stages.{name}.resources"), item)?,
    };
    let local = match t.get("local") {
        None => None,
        Some(item) => Some(
            item.as_bool()
                .ok_or_else(|| src.err(item.span(), "`local` must be true or false"))?,
        ),
    };
    let mut params = serde_json::Map::new();
    let mut param_spans = BTreeMap::new();
    for (key, item) in t.iter() {
        if STAGE_KEYS.contains(&key) || key == "matrix" {
            continue;
        }
        params.insert(key.to_string(), item_to_json(item));
        param_spans.insert(key.to_string(), key_span(key));
        nested_spans(key, item, &mut param_spans);
    }
    Ok(Decl {
        name: name.to_string(),
        header,
        kind,
        version,
        params,
        param_spans,
        overridden: BTreeMap::new(),
        inputs,
        matrix,
        resources,
        local,
    })
}

/// Records the key spans of the fields of a parameter that is a table (`length.max_input_tokens`).
fn nested_spans(path: &str, item: &Item, spans: &mut BTreeMap<String, Option<Range<usize>>>) {
    if let Some(t) = item.as_table_like() {
        for (key, sub) in t.iter() {
            let sub_path = format!("{path}.{key}");
            spans.insert(sub_path.clone(), t.key(key).and_then(|k| k.span()));
            nested_spans(&sub_path, sub, spans);
        }
    }
}

/// An error caused by a `--set` override: located at the override, not in the file.
fn override_err(raw: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        file: format!("--set {raw}"),
        line: 0,
        col: 0,
        message: message.into(),
    }
}

/// Where a parameter error is: the override that set the field, the field's key in the file (the closest
/// enclosing one that is written there), or the stage header.
fn param_error(src: &Source, d: &Decl, e: &super::stage::ParamError) -> PlanError {
    let unknown = e
        .message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next());
    let mut path = e.field.clone();
    // serde_path_to_error names the unknown field itself in the path, serde alone only the enclosing table.
    if let Some(u) = unknown
        && path != u
        && !path.ends_with(&format!(".{u}"))
    {
        path = if path.is_empty() {
            u.to_string()
        } else {
            format!("{path}.{u}")
        };
    }
    let top = path.split(['.', '[']).next().unwrap_or("").to_string();
    let field = if path.is_empty() {
        String::new()
    } else {
        format!(" `{path}`")
    };
    let message = format!(
        "stage `{}` ({}): parameter{field}: {}\n  (see `alinea help {}` for the parameters of this kind)",
        d.name, d.kind, e.message, d.kind
    );
    if let Some(raw) = d.overridden.get(&top) {
        return override_err(raw, message);
    }
    let mut probe = path.as_str();
    let span = loop {
        if let Some(span) = d.param_spans.get(probe).cloned().flatten() {
            break Some(span);
        }
        match probe.rfind(['.', '[']) {
            Some(i) => probe = &probe[..i],
            None => break d.header.clone(),
        }
    };
    src.err(span, message)
}

/// Checks that output `output` (the default one when `None`) of upstream `up` fits `slot`: declared, of the
/// slot's kind, with the columns the slot requires.
fn check_reference(
    slot: &super::stage::InputSlot,
    slot_name: &str,
    up: &PlannedStage,
    declared: &[OutputSlot],
    output: Option<&str>,
) -> Result<(), String> {
    let valid = || list_outputs(declared);
    let who = match output {
        Some(o) => format!("`{}.{o}`", up.name),
        None => format!("`{}`", up.name),
    };
    if slot.kind == SlotKind::Any {
        // Any output fits; only its existence is checked.
        return match output {
            Some(name) if !declared.iter().any(|o| o.covers(name)) => Err(format!(
                "input `{slot_name}`: stage `{}` ({}) has no output `{name}`; its outputs are: {}",
                up.name,
                up.kind,
                valid()
            )),
            _ => Ok(()),
        };
    }
    let wants_table = matches!(slot.kind, SlotKind::Table | SlotKind::Tables);
    let target = match output {
        Some(name) => declared.iter().find(|o| o.covers(name)).ok_or_else(|| {
            format!(
                "input `{}`: stage `{}` ({}) has no output `{name}`; its outputs are: {}",
                slot.name,
                up.name,
                up.kind,
                valid()
            )
        })?,
        None => {
            let found = if wants_table {
                declared.iter().find(|o| o.is_table())
            } else {
                declared.iter().find(|o| o.is_blob())
            };
            found.ok_or_else(|| {
                format!(
                    "input `{}` takes {}, but stage `{}` ({}) produces none; its outputs are: {}",
                    slot.name,
                    if wants_table { "a table" } else { "a blob" },
                    up.name,
                    up.kind,
                    valid()
                )
            })?
        }
    };
    if wants_table != target.is_table() {
        return Err(format!(
            "input `{}` takes {}, but {who} ({}) is a {}; its outputs are: {}",
            slot.name,
            if wants_table { "a table" } else { "a blob" },
            up.kind,
            target.kind_word(),
            valid()
        ));
    }
    if let Some(columns) = target.columns() {
        for need in slot.columns {
            match columns.iter().find(|c| c.name == need.name) {
                None => {
                    return Err(format!(
                        "input `{}` needs column `{}` ({}), but {who} ({}) has none; its columns are: {}",
                        slot.name,
                        need.name,
                        need.dtype,
                        up.kind,
                        columns
                            .iter()
                            .map(|c| format!("{} {}", c.name, c.dtype))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                Some(c) if c.dtype != need.dtype => {
                    return Err(format!(
                        "input `{}` needs column `{}` of type {}, but in {who} ({}) it is {}",
                        slot.name, need.name, need.dtype, up.kind, c.dtype
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Splits `stage[*]`, `stage.output`, `stage` into (stage, output, gather).
fn parse_ref(s: &str) -> (&str, Option<&str>, bool) {
    if let Some(base) = s.strip_suffix("[*]") {
        return (base, None, true);
    }
    match s.split_once('.') {
        Some((stage, output)) => (stage, Some(output), false),
        None => (s, None, false),
    }
}

/// Orders declarations so that every stage comes after those it reads; reports cycles.
fn base_order(src: &Source, decls: &[Decl], registry: &Registry) -> Result<Vec<usize>, PlanError> {
    let index: BTreeMap<&str, usize> = decls
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();
    let names: BTreeSet<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    let reads_stage = |d: &Decl, slot: &str, r: &str| {
        let kind = registry.get(&d.kind).expect("kind checked while parsing");
        super::stage::find_slot(kind.inputs(), slot).is_some_and(|s| {
            matches!(s.kind, SlotKind::Table | SlotKind::Tables | SlotKind::Blob)
                || (matches!(s.kind, SlotKind::Folder | SlotKind::Any)
                    && names.contains(parse_ref(r).0))
        })
    };
    let deps: Vec<BTreeSet<usize>> = decls
        .iter()
        .map(|d| {
            d.inputs
                .iter()
                .flat_map(|(slot, refs, _)| refs.iter().map(move |(r, _)| (slot, r)))
                .filter(|(slot, r)| reads_stage(d, slot, r))
                .filter_map(|(_, r)| index.get(parse_ref(r).0).copied())
                .collect()
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut state = vec![0u8; decls.len()];
    let mut order = Vec::new();
    fn visit(
        i: usize,
        deps: &[BTreeSet<usize>],
        state: &mut [u8],
        order: &mut Vec<usize>,
        stack: &mut Vec<usize>,
    ) -> Result<(), Vec<usize>> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let from = stack.iter().position(|&s| s == i).unwrap_or(0);
                let mut cycle = stack[from..].to_vec();
                cycle.push(i);
                return Err(cycle);
            }
            _ => {}
        }
        state[i] = 1;
        stack.push(i);
        for &d in &deps[i] {
            visit(d, deps, state, order, stack)?;
        }
        stack.pop();
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..decls.len() {
        visit(i, &deps, &mut state, &mut order, &mut Vec::new()).map_err(|cycle| {
            let names: Vec<&str> = cycle.iter().map(|&c| decls[c].name.as_str()).collect();
            src.err(
                decls[cycle[0]].header.clone(),
                format!("cycle between stages: {}", names.join(" -> ")),
            )
        })?;
    }
    Ok(order)
}

/// One instance being built: axis values and which instance of each fanned-out upstream it reads.
#[derive(Clone, Default)]
struct Assignment {
    axes: BTreeMap<String, serde_json::Value>,
    upstream: BTreeMap<String, String>,
}

fn expand(
    src: &Source,
    decls: &[Decl],
    order: &[usize],
    registry: &Registry,
    root: &Path,
) -> Result<Vec<PlannedStage>, PlanError> {
    let mut instances: BTreeMap<String, Vec<PlannedStage>> = BTreeMap::new();
    let mut out: Vec<PlannedStage> = Vec::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for &i in order {
        let d = &decls[i];
        let stage = registry.get(&d.kind).expect("kind checked while parsing");
        let mut assignments = vec![Assignment::default()];
        // Fan out over every upstream matrix stage referenced without `[*]`.
        for (slot, refs, _) in &d.inputs {
            let slot_kind = super::stage::find_slot(stage.inputs(), slot).map(|s| s.kind);
            if slot_kind == Some(SlotKind::Path) {
                continue;
            }
            if matches!(slot_kind, Some(SlotKind::Folder | SlotKind::Any))
                && refs
                    .iter()
                    .all(|(r, _)| !instances.contains_key(parse_ref(r).0))
            {
                continue;
            }
            for (r, _) in refs {
                let (up, _, gather) = parse_ref(r);
                let Some(ups) = instances.get(up) else {
                    continue;
                };
                if gather || (ups.len() == 1 && ups[0].axes.is_empty()) {
                    continue;
                }
                let mut next = Vec::new();
                for a in &assignments {
                    if a.upstream.contains_key(up) {
                        next.push(a.clone());
                        continue;
                    }
                    for inst in ups {
                        if inst
                            .axes
                            .iter()
                            .all(|(k, v)| a.axes.get(k).is_none_or(|x| x == v))
                        {
                            let mut n = a.clone();
                            n.axes.extend(inst.axes.clone());
                            n.upstream.insert(up.to_string(), inst.name.clone());
                            next.push(n);
                        }
                    }
                }
                assignments = next;
            }
        }
        for (axis, values) in &d.matrix {
            assignments = assignments
                .into_iter()
                .flat_map(|a| {
                    values.iter().map(move |v| {
                        let mut n = a.clone();
                        n.axes.insert(axis.clone(), v.clone());
                        n
                    })
                })
                .collect();
        }
        let mut built = Vec::new();
        for a in assignments {
            let name = if a.axes.is_empty() {
                d.name.clone()
            } else {
                let mut n = d.name.clone();
                for v in a.axes.values() {
                    n.push('_');
                    n.push_str(&suffix_of(v));
                }
                n
            };
            if !taken.insert(name.clone()) {
                return Err(src.err(d.header.clone(), format!("stage instance name `{name}` is produced twice; rename the stage or use matrix values that differ after sanitising")));
            }
            let mut params = d.params.clone();
            for (axis, v) in &a.axes {
                if d.matrix.iter().any(|(m, _)| m == axis) {
                    params.insert(axis.clone(), v.clone());
                }
            }
            let canonical = stage
                .canonical_params(serde_json::Value::Object(params))
                .map_err(|e| param_error(src, d, &e))?;
            let mut inputs = BTreeMap::new();
            for (slot_name, refs, slot_span) in &d.inputs {
                let slot = super::stage::find_slot(stage.inputs(), slot_name)
                    .expect("slot checked while parsing");
                let mut resolved = Vec::new();
                for (r, span) in refs {
                    let names_a_stage = instances.contains_key(parse_ref(r).0);
                    match slot.kind {
                        SlotKind::Path | SlotKind::Folder | SlotKind::Any
                            if slot.kind == SlotKind::Path || !names_a_stage =>
                        {
                            let p = expand_env(r).map_err(|m| src.err(span.clone(), m))?;
                            let p = root.join(p);
                            if !p.exists() {
                                return Err(src.err(
                                    span.clone(),
                                    format!(
                                        "input `{slot_name}`: `{}` does not exist",
                                        p.display()
                                    ),
                                ));
                            }
                            resolved.push(InputRef::Path(p));
                        }
                        _ => {
                            let (up, output, gather) = parse_ref(r);
                            let Some(ups) = instances.get(up) else {
                                return Err(src.err(span.clone(), format!(
                                    "input `{slot_name}`: no stage named `{up}`{}; stages are: {}",
                                    did_you_mean(up, decls.iter().map(|d| d.name.as_str())),
                                    decls.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                                )));
                            };
                            let chosen: Vec<String> = if gather {
                                ups.iter().map(|u| u.name.clone()).collect()
                            } else if let Some(n) = a.upstream.get(up) {
                                vec![n.clone()]
                            } else {
                                vec![ups[0].name.clone()]
                            };
                            for inst in ups.iter().filter(|u| chosen.contains(&u.name)) {
                                let declared = registry
                                    .get(&inst.kind)
                                    .expect("kind checked while parsing")
                                    .outputs(&inst.params)
                                    .map_err(|e| src.err(span.clone(), e.to_string()))?;
                                check_reference(slot, slot_name, inst, &declared, output)
                                    .map_err(|m| src.err(span.clone(), m))?;
                            }
                            resolved.extend(chosen.into_iter().map(|stage| InputRef::Stage {
                                stage,
                                output: output.map(str::to_string),
                            }));
                        }
                    }
                }
                if matches!(
                    slot.kind,
                    SlotKind::Table | SlotKind::Blob | SlotKind::Folder | SlotKind::Any
                ) && resolved.len() != 1
                {
                    return Err(src.err(
                        slot_span.clone(),
                        format!(
                            "input `{slot_name}` takes exactly one table, got {}",
                            resolved.len()
                        ),
                    ));
                }
                if slot.kind == SlotKind::Path && resolved.len() != 1 {
                    return Err(src.err(
                        slot_span.clone(),
                        format!(
                            "input `{slot_name}` takes exactly one path, got {}",
                            resolved.len()
                        ),
                    ));
                }
                inputs.insert(slot_name.clone(), resolved);
            }
            built.push(PlannedStage {
                name,
                base: d.name.clone(),
                kind: d.kind.clone(),
                params: canonical,
                version: d.version.clone(),
                inputs,
                axes: a.axes,
                resources: d.resources.clone(),
                local: d.local,
            });
        }
        out.extend(built.iter().cloned());
        instances.insert(d.name.clone(), built);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_toml_values_and_bare_words() {
        let o: Override = "sample.per_lang=500".parse().unwrap();
        assert_eq!(
            (o.stage.as_str(), o.param.as_str(), o.value.clone()),
            ("sample", "per_lang", serde_json::json!(500))
        );
        let o: Override = "opus.langs=[\"be\", \"li\"]".parse().unwrap();
        assert_eq!(o.value, serde_json::json!(["be", "li"]));
        let o: Override = "x.mode=pass".parse().unwrap();
        assert_eq!(o.value, serde_json::json!("pass"));
        assert!("nodot=1".parse::<Override>().is_err());
    }

    #[test]
    fn invalid_utf8_is_located_by_line_and_column() {
        let text = b"[pipeline]\nname = \"d\xC3\xA9mo\"\n[stages.a]\nkind = \"x\xFFy\"\n";
        let err = utf8_text("p.toml", text).unwrap_err();
        assert_eq!((err.line, err.col), (4, 10));
        assert_eq!(
            err.to_string(),
            "p.toml:4:10: invalid UTF-8 (byte 0xFF): a pipeline file must be UTF-8 text"
        );
        let err = utf8_text("p.toml", b"\xFE").unwrap_err();
        assert_eq!((err.line, err.col), (1, 1));
    }

    #[test]
    fn matrix_suffixes_are_sql_friendly() {
        assert_eq!(suffix_of(&serde_json::json!("MT+Align→MT")), "mt_align_mt");
        assert_eq!(suffix_of(&serde_json::json!(0.5)), "0_5");
    }

    #[test]
    fn env_vars_expand_in_paths() {
        // Cargo sets CARGO_MANIFEST_DIR for the test process: no `set_var` while other test threads run.
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        assert_eq!(
            expand_env("${CARGO_MANIFEST_DIR}/opus").unwrap(),
            format!("{dir}/opus")
        );
        assert!(
            expand_env("${ALINEA_SURELY_UNSET_VAR}")
                .unwrap_err()
                .contains("is not set")
        );
    }
}
