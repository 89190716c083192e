//! `command`: any external tool as a cached stage, in the manner of Snakemake's `shell:` and DVC's `cmd:`, with the
//! key discipline of the built-in kinds.
//!
//! ```toml
//! [stages.peft]
//! kind = "command"
//! run = ["python", "scripts/train_peft.py", "--data", "{in.train}", "--model", "{in.model}", "--out", "{out.adapter}"]
//! inputs = { train = "train_set_mt", model = "${ALINEA_MODEL}" }
//! tools = ["scripts/train_peft.py"]            # contents hashed into the key
//! env = ["CUDA_VISIBLE_DEVICES"]                # allowlisted variables, values (as digests) in the key
//! outputs = { adapter = { folder = true }, loss = { table = "jsonl" } }
//! in_format = { train = "jsonl" }               # tables materialized as parquet (default) or jsonl/csv/tsv
//! ```

mod argv;
mod formats;
mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use alinea_engine::{
    ANY_SLOT, Input, InputSlot, OutputKind, OutputSlot, Outputs, ParamError, SlotKind, Stage,
    StageCtx, StageError, Stats,
};

pub use formats::TableFormat;

/// What one declared output is. Exactly one of `folder`, `file` and `table` is given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputDecl {
    /// A directory the command writes (`{out.NAME}` is its path; the command creates it). Stored file by file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub folder: bool,
    /// A single file the command writes (`{out.NAME}` is its path).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub file: bool,
    /// A table the command writes in this format (`{out.NAME}` ends in `.jsonl`, `.csv`, `.tsv` or `.parquet`); it
    /// is read back and stored as deterministic Parquet, so downstream stages and `alinea query` can read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableFormat>,
}

/// Parameters of `command`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The program and its arguments, run without a shell. `{in.NAME}` becomes the path of input NAME, `{out.NAME}`
    /// the path where output NAME must be written, `{root}` the pipeline's root; an argument equal to an entry of
    /// `tools` becomes that file's absolute path (the command runs in a scratch directory, not the root).
    pub run: Vec<String>,
    /// Files (relative to the pipeline root) whose contents enter the cache key: the scripts the command runs.
    pub tools: Vec<String>,
    /// Environment variables passed to the command; their values (as digests) enter the cache key. The command
    /// sees only these, `PATH`, `ALINEA_ROOT`, `ALINEA_SCRATCH` (its working directory) and `TMPDIR` (in its scratch),
    /// and in a Slurm job the allocation's `SLURM_*` variables and the GPUs it was given (`CUDA_VISIBLE_DEVICES`…),
    /// not in the key: they place the command, as `resources` do.
    pub env: Vec<String>,
    /// The outputs, by name: `{ folder = true }`, `{ file = true }` or `{ table = "jsonl" | "csv" | "tsv" | "parquet" }`.
    /// The first table in name order is the stage's main output.
    pub outputs: BTreeMap<String, OutputDecl>,
    /// How table inputs are written for the command, by input name: `parquet` (the default: the stored object
    /// itself, hard-linked), `jsonl`, `csv` or `tsv`.
    pub in_format: BTreeMap<String, TableFormat>,
}

/// What `{out.NAME}` stands for, once validated.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OutputShape {
    Folder,
    File,
    Table(TableFormat),
}

impl OutputDecl {
    fn shape(&self) -> Result<OutputShape, String> {
        match (self.folder, self.file, self.table) {
            (true, false, None) => Ok(OutputShape::Folder),
            (false, true, None) => Ok(OutputShape::File),
            (false, false, Some(f)) => Ok(OutputShape::Table(f)),
            _ => Err("give exactly one of `folder = true`, `file = true`, `table = \"FORMAT\"`".into()),
        }
    }
}

/// Whether `name` can name an input or output: letters, digits, `_`, `-` (it becomes a file name and a
/// `stage.output` reference).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

const ANY: InputSlot = InputSlot {
    name: ANY_SLOT,
    kind: SlotKind::Any,
    required: false,
    doc: "any name: a stage (its files as a folder when it has any, as a model does, else its main table), `stage.output`, or a path; `{in.NAME}` in `run` is where the command finds it",
    columns: &[],
};

/// The stage kind.
pub struct Command;

impl Stage for Command {
    const KIND: &'static str = "command";
    const SUMMARY: &'static str = "run any program as a cached stage: declared inputs in, declared outputs out";
    const DOC: &'static str = "\
Runs `run` (no shell) in a fresh scratch directory with the inputs materialized (tables as Parquet by default,
hard-linked from the store, or written as jsonl/csv/tsv per `in_format`; blobs and folders hard-linked; paths as they
are) and collects the declared outputs. The key covers the argv, the output and input-format declarations, the
bytes of every file in `tools`, the values of the variables in `env`, and the inputs' digests. In a Slurm job the
command also sees the allocation's `SLURM_*` variables, outside the key, so that `srun` can start one task per node
of a multi-node allocation (`resources = { nodes = 2 }`; scripts/slurm-nodes.sh sets up the rendezvous that
torchrun, accelerate and DeepSpeed expect). stdout and stderr
are streamed to log files as the command runs and kept with the record (`alinea log STAGE`). A non-zero exit, or a
declared output that is missing or does not parse, fails the stage and caches nothing; the error shows the last
lines of stderr. `alinea run --check-determinism` runs it twice and names outputs whose bytes differ.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[ANY];
    const OUTPUTS: &'static [OutputSlot] = &[];

    fn outputs(p: &Params) -> Vec<OutputSlot> {
        // Tables first (in name order: the first is the main one), then files and folders.
        let mut tables = Vec::new();
        let mut others = Vec::new();
        for (name, decl) in &p.outputs {
            match decl.shape() {
                Ok(OutputShape::Table(_)) => tables.push(OutputSlot::named(
                    name.clone(),
                    OutputKind::AnyTable,
                    "a table the command wrote",
                )),
                Ok(OutputShape::File) => {
                    others.push(OutputSlot::named(name.clone(), OutputKind::Blob, "a file the command wrote"))
                }
                Ok(OutputShape::Folder) => others.push(OutputSlot::named(
                    name.clone(),
                    OutputKind::Folder,
                    "a directory the command wrote",
                )),
                // Rejected by `validate` before any plan exists.
                Err(_) => {}
            }
        }
        tables.extend(others);
        tables
    }

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.run.is_empty() {
            return Err(ParamError::new("run", "give the program and its arguments, e.g. [\"python\", \"x.py\"]"));
        }
        if p.outputs.is_empty() {
            return Err(ParamError::new(
                "outputs",
                "declare at least one output: a command whose result is not kept cannot be cached",
            ));
        }
        for (name, decl) in &p.outputs {
            if !valid_name(name) {
                return Err(ParamError::new(
                    format!("outputs.{name}"),
                    "output names use letters, digits, `_` or `-`",
                ));
            }
            decl.shape().map_err(|m| ParamError::new(format!("outputs.{name}"), m))?;
        }
        for var in &p.env {
            if var.is_empty() || var.contains('=') {
                return Err(ParamError::new("env", format!("`{var}` is not a variable name")));
            }
        }
        argv::check_placeholders(&p.run, &p.outputs).map_err(|m| ParamError::new("run", m))?;
        Ok(())
    }

    fn ambient(p: &Params, root: &Path) -> Result<Vec<(String, String)>, StageError> {
        let mut out = Vec::new();
        for tool in &p.tools {
            let path = root.join(tool);
            let digest = alinea_engine::files::hash_file(&path).map_err(|e| StageError::Input {
                slot: "tools".into(),
                message: format!("{}: cannot read the tool file ({e})", path.display()),
            })?;
            out.push((format!("tool:{tool}"), digest));
        }
        for var in &p.env {
            let value = match std::env::var_os(var) {
                Some(v) => blake3::hash(v.as_encoded_bytes()).to_hex().to_string(),
                None => "unset".to_string(),
            };
            out.push((format!("env:{var}"), value));
        }
        Ok(out)
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let scratch = Scratch::fresh(ctx.work_dir()?)?;
        let mut inputs = BTreeMap::new();
        for name in ctx.input_names() {
            inputs.insert(name.to_string(), materialize(p, ctx, name, &scratch.inputs)?);
        }
        for slot in p.in_format.keys() {
            if !inputs.contains_key(slot) {
                return Err(StageError::Param {
                    field: format!("in_format.{slot}"),
                    message: format!("no input named `{slot}`"),
                });
            }
        }
        let mut outputs = BTreeMap::new();
        for (name, decl) in &p.outputs {
            let shape = decl.shape().map_err(|m| StageError::Param {
                field: format!("outputs.{name}"),
                message: m,
            })?;
            outputs.insert(name.clone(), (shape, scratch.output_path(name, shape)));
        }
        let paths = argv::Paths {
            inputs: &inputs,
            outputs: &outputs.iter().map(|(k, (_, p))| (k.clone(), p.clone())).collect(),
            root: ctx.root(),
            tools: &p.tools,
        };
        let args = argv::expand(&p.run, &paths)?;
        let run = process::run(&args, &env_for(p, ctx, &scratch), &scratch, ctx)?;
        let mut out = Outputs {
            stats: Stats::default(),
            ..Outputs::default()
        };
        collect_outputs(&outputs, &mut out)?;
        out.log_file("stdout", run.stdout);
        out.log_file("stderr", run.stderr);
        out.stats.count("stdout_lines", run.stdout_lines);
        out.stats.count("stderr_lines", run.stderr_lines);
        out.stats.rows_out = out.tables.first().map(|(_, df)| df.height() as u64).unwrap_or(0);
        Ok(out)
    }
}

/// The scratch layout of one run: `run/` (the working directory), `in/`, `out/`, `logs/`, all made afresh so that
/// nothing from an earlier attempt leaks into this one.
pub(crate) struct Scratch {
    pub(crate) cwd: PathBuf,
    pub(crate) inputs: PathBuf,
    pub(crate) outputs: PathBuf,
    pub(crate) logs: PathBuf,
    pub(crate) tmp: PathBuf,
}

impl Scratch {
    fn fresh(work: &Path) -> Result<Scratch, StageError> {
        let s = Scratch {
            cwd: work.join("run"),
            inputs: work.join("in"),
            outputs: work.join("out"),
            logs: work.join("logs"),
            tmp: work.join("tmp"),
        };
        for dir in [&s.cwd, &s.inputs, &s.outputs, &s.logs, &s.tmp] {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StageError::io(dir)(e)),
            }
            std::fs::create_dir_all(dir).map_err(StageError::io(dir))?;
        }
        Ok(s)
    }

    fn output_path(&self, name: &str, shape: OutputShape) -> PathBuf {
        match shape {
            OutputShape::Folder | OutputShape::File => self.outputs.join(name),
            OutputShape::Table(f) => self.outputs.join(format!("{name}.{}", f.extension())),
        }
    }
}

/// Puts input `name` where the command can read it and returns that path.
fn materialize(p: &Params, ctx: &StageCtx, name: &str, dir: &Path) -> Result<PathBuf, StageError> {
    let format = p.in_format.get(name).copied();
    let input = ctx.input(name).ok_or_else(|| StageError::Input {
        slot: name.into(),
        message: "not filled".into(),
    })?;
    let not_a_table = |what: &str| StageError::Param {
        field: format!("in_format.{name}"),
        message: format!("input `{name}` is {what}, not a table; only table inputs take a format"),
    };
    match input {
        Input::Path(path) => match format {
            Some(_) => Err(not_a_table("a path")),
            None => Ok(path.to_path_buf()),
        },
        Input::Table(up) => {
            let format = format.unwrap_or(TableFormat::Parquet);
            let dest = dir.join(format!("{name}.{}", format.extension()));
            if format == TableFormat::Parquet {
                // The stored object is a Parquet file already: link it, do not decode it.
                ctx.materialize(up, &dest)?;
            } else {
                let mut df = ctx.decode_table(up)?;
                formats::write_table(&mut df, format, &dest)?;
            }
            Ok(dest)
        }
        Input::Blob(up) => {
            if format.is_some() {
                return Err(not_a_table("a blob"));
            }
            let dest = dir.join(name).join(&up.file);
            ctx.materialize(up, &dest)?;
            Ok(dest)
        }
        Input::Many(_) => {
            if format.is_some() {
                return Err(not_a_table("a folder"));
            }
            ctx.folder_by_name(name)
        }
    }
}

/// The variables in which Slurm names the GPUs it gave a job (gres/gpu), besides its `SLURM_*` ones.
const SLURM_DEVICE_VARIABLES: &[&str] = &["CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL"];

/// The command's environment: `PATH`, the allowlisted variables that are set, and where it runs.
fn env_for(p: &Params, ctx: &StageCtx, scratch: &Scratch) -> Vec<(String, std::ffi::OsString)> {
    let mut env = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        env.push(("PATH".to_string(), path));
    }
    for var in &p.env {
        if let Some(v) = std::env::var_os(var) {
            env.push((var.clone(), v));
        }
    }
    // In a Slurm job, the allocation's own variables go through too, outside the key: like `resources`, they say
    // where the command runs, not what it computes. `srun` needs them to start a multi-node command's tasks inside
    // the allocation (scripts/slurm-nodes.sh), and the GPU lists are the devices Slurm gave this job.
    if std::env::var_os("SLURM_JOB_ID").is_some() {
        for (var, value) in std::env::vars_os() {
            let placement = var.to_str().is_some_and(|v| {
                v.starts_with("SLURM_") || SLURM_DEVICE_VARIABLES.contains(&v)
            });
            if placement && !p.env.iter().any(|e| *e == var.to_string_lossy()) {
                env.push((var.to_string_lossy().into_owned(), value));
            }
        }
    }
    env.push(("ALINEA_ROOT".into(), ctx.root().as_os_str().to_owned()));
    env.push(("ALINEA_SCRATCH".into(), scratch.cwd.as_os_str().to_owned()));
    env.push(("TMPDIR".into(), scratch.tmp.as_os_str().to_owned()));
    env
}

/// Reads back every declared output; a missing or unparsable one fails the stage.
fn collect_outputs(
    outputs: &BTreeMap<String, (OutputShape, PathBuf)>,
    out: &mut Outputs,
) -> Result<(), StageError> {
    let missing = |name: &str, path: &Path, what: &str| {
        StageError::Other(format!(
            "the command exited 0 but did not write declared output `{name}` ({what} at {}); nothing is cached",
            path.display()
        ))
    };
    for (name, (shape, path)) in outputs {
        match shape {
            OutputShape::Table(format) => {
                if !path.is_file() {
                    return Err(missing(name, path, &format!("a {format} file")));
                }
                let df = formats::read_table(*format, path)?;
                out.tables.push((name.clone(), df));
            }
            OutputShape::File => {
                if !path.is_file() {
                    return Err(missing(name, path, "a file"));
                }
                out.blob_file(name.clone(), path.clone());
            }
            OutputShape::Folder => {
                if !path.is_dir() {
                    return Err(missing(name, path, "a directory"));
                }
                out.folder(name, path)?;
            }
        }
    }
    Ok(())
}
