//! The command line. Each command is a thin function over the engine and the stages; `anyhow` lives only here.
//!
//! Output goes through `outln!`/`out!` (see [`mod@out`]): a reader that goes away (`alinea run | head -1`) stops the
//! printing, never the work.

/// `println!` that survives a closed stdout: see [`out::write`].
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!(""), true)
    };
    ($($t:tt)*) => {
        $crate::cli::out::write(format_args!($($t)*), true)
    };
}

/// `print!` that survives a closed stdout: see [`out::write`].
macro_rules! out {
    ($($t:tt)*) => {
        $crate::cli::out::write(format_args!($($t)*), false)
    };
}

pub mod out;

mod align;
mod cluster;
mod inspect;
mod model;
mod pipeline;
mod remote_cmds;
mod report;
mod runs;
mod score;
mod store_cmds;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// A borderless console table (comfy-table) with an optional header and no header rule; fill it, then print it
/// with [`print_table`].
fn console_table(header: Option<Vec<&str>>) -> comfy_table::Table {
    use comfy_table::{ContentArrangement, Table, presets};
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if let Some(h) = header {
        t.set_header(h);
    }
    t
}

/// Prints a [`console_table`]: columns one space apart, left-aligned but for the `right` ones, no trailing spaces;
/// nothing for an empty table.
fn print_table(mut t: comfy_table::Table, right: &[usize]) {
    use comfy_table::CellAlignment;
    for (i, c) in t.column_iter_mut().enumerate() {
        c.set_padding((0, 1));
        if right.contains(&i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let text = t.trim_fmt();
    if !text.is_empty() {
        outln!("{text}");
    }
}

/// Exit status of `alinea`, documented in `--help` and README.md.
pub const EXIT_CODES: &str = "Exit status: 0 success; 1 a stage (or the command's own work) failed; \
2 usage or pipeline error (bad arguments, bad pipeline TOML, unknown kind or stage, bad --set); \
3 store error (locked with --no-wait, unreadable, or found damaged by `verify`).";

/// Exit status: a stage or the command's work failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad arguments or a pipeline file that cannot run (clap's own errors use 2 too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the store is locked (`--no-wait`), unreadable or damaged.
pub const EXIT_STORE: u8 = 3;

/// A mistake in what the user asked for (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// alinea: cached data pipelines for instruction-tuning LLMs on machine translation.
#[derive(Debug, Parser)]
#[command(name = "alinea", version, about, long_about = None, disable_help_subcommand = true,
    after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Artifact store directory [default: `cache/` at the project root]
    #[arg(long, global = true, env = "ALINEA_STORE")]
    store: Option<PathBuf>,
    /// Worker threads for stages (rayon and polars) [default: all cores]
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Machine-readable output
    #[arg(long, global = true)]
    json: bool,
    /// Remote cache URL: s3://BUCKET/PREFIX, gs://…, az://…, file:///PATH [default: ALINEA_REMOTE, else the
    /// pipeline's `[store] remote`]; bare `--remote` makes `status` consult the configured one
    #[arg(long, global = true, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    remote: Option<String>,
    /// write: pull hits and push what ran; read: pull only; off: ignore the remote [default: ALINEA_REMOTE_MODE,
    /// else `[store] remote_mode`, else write]
    #[arg(long, global = true, value_name = "MODE", value_parser = ["write", "read", "off"])]
    remote_mode: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline: recompute only the stages whose code, parameters or inputs changed
    Run(pipeline::RunArgs),
    /// Say which stages are stale and why, without running anything
    Status(pipeline::PlanArgs),
    /// Run one stage from a job file written by `run --executor slurm` (what each cluster job runs)
    Exec(cluster::ExecArgs),
    /// Print the pipeline's graph (Graphviz dot or Mermaid)
    Dag(pipeline::DagArgs),
    /// Preview a stage's table
    Show(inspect::ShowArgs),
    /// SQL over the stage tables of the last run (polars SQL), tables named by stage
    Query(inspect::QueryArgs),
    /// Write a stage's table to a file (parquet, jsonl, csv)
    Export(inspect::ExportArgs),
    /// Provenance of a stage: parameters, input hashes, code fingerprint, timings, row counts, stats
    Log(inspect::LogArgs),
    /// The path of a stage's output object in the store (read it in place with any tool)
    Path(inspect::PathArgs),
    /// Write every output of a run as stable files: out/<pipeline>/<stage>/<output>.parquet (blobs as they are)
    Checkout(inspect::CheckoutArgs),
    /// Every run kept: id, date, overrides, alinea version, headline metrics
    Runs(runs::RunsArgs),
    /// Experiments: `exp show` tabulates the parameters that differ across runs and their metrics
    #[command(subcommand)]
    Exp(runs::ExpCommand),
    /// Parameters, stage keys and metrics of two runs side by side
    Diff(runs::DiffArgs),
    /// Keep a run (and all it reaches) through every gc
    Pin(runs::PinArgs),
    /// Delete objects and records that no pipeline references (keeps the newest interrupted attempt of each stage)
    Gc(store_cmds::GcArgs),
    /// Re-hash every object of the store and report corrupt or missing ones (--repair quarantines them)
    Verify(store_cmds::VerifyArgs),
    /// Upload stages of the last run (or of --pipeline) to the remote: objects first, records last, then the ref
    Push(remote_cmds::PushArgs),
    /// Download a pipeline's stages from the remote into the local store (each object hash-checked)
    Pull(remote_cmds::PullArgs),
    /// Remote cache maintenance: `remote gc --keep PIPELINE…`
    Remote(remote_cmds::RemoteArgs),
    /// Model utilities: `model info` prints total and trainable parameters
    Model(model::ModelArgs),
    /// Print help and the list of stage kinds, or the documentation of one kind
    Help(pipeline::HelpArgs),
    /// Corpus BLEU / chrF / chrF++ of a hypothesis file, exactly as sacrebleu 2.6.0 (JSON with --json)
    Score(score::ScoreArgs),
    /// Write a report stage's documents (report.md, report.csv, report.html) of the last run to a folder
    Report(report::ReportArgs),
    /// Word-align two line-aligned files (IBM Model 2, fast_align's model): Pharaoh `i-j`, 0-based, left = --src
    Align(align::AlignArgs),
    /// Precision, recall and AER of predicted alignments against a gold file (Pharaoh i-j/ipj or WPT)
    #[command(name = "eval-align")]
    EvalAlign(align::EvalAlignArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default for binaries): a reader that goes away makes stdout writes fail with
    // `BrokenPipe`, which `out` turns into "stop printing"; the run itself completes and stores its records.
    let cli = Cli::parse();
    configure_threads(&cli);
    if matches!(cli.command, None | Some(Command::Run(_))) {
        say_what_was_kept_on_ctrl_c();
    }
    let result = match cli.command {
        None => pipeline::run(&cli.global, pipeline::RunArgs::demo()),
        Some(Command::Run(a)) => pipeline::run(&cli.global, a),
        Some(Command::Status(a)) => pipeline::status(&cli.global, a),
        Some(Command::Exec(a)) => cluster::exec(&cli.global, a),
        Some(Command::Dag(a)) => pipeline::dag(&cli.global, a),
        Some(Command::Show(a)) => inspect::show(&cli.global, a),
        Some(Command::Query(a)) => inspect::query(&cli.global, a),
        Some(Command::Export(a)) => inspect::export(&cli.global, a),
        Some(Command::Log(a)) => inspect::log(&cli.global, a),
        Some(Command::Path(a)) => inspect::path(&cli.global, a),
        Some(Command::Checkout(a)) => inspect::checkout(&cli.global, a),
        Some(Command::Runs(a)) => runs::list(&cli.global, a),
        Some(Command::Exp(a)) => runs::exp(&cli.global, a),
        Some(Command::Diff(a)) => runs::diff(&cli.global, a),
        Some(Command::Pin(a)) => runs::pin(&cli.global, a),
        Some(Command::Gc(a)) => store_cmds::gc(&cli.global, a),
        Some(Command::Verify(a)) => store_cmds::verify(&cli.global, a),
        Some(Command::Push(a)) => remote_cmds::push(&cli.global, a),
        Some(Command::Pull(a)) => remote_cmds::pull(&cli.global, a),
        Some(Command::Remote(a)) => remote_cmds::remote(&cli.global, a),
        Some(Command::Model(a)) => model::model(&cli.global, a),
        Some(Command::Help(a)) => pipeline::help(&cli.global, a),
        Some(Command::Score(a)) => score::score(&cli.global, a),
        Some(Command::Report(a)) => report::report(&cli.global, a),
        Some(Command::Align(a)) => align::align(&cli.global, a),
        Some(Command::EvalAlign(a)) => align::eval_align(&cli.global, a),
    };
    out::flush();
    match result {
        Ok(code) => match out::write_error() {
            Some(e) => {
                eprintln!("error: writing to stdout: {e}");
                ExitCode::from(EXIT_FAILED)
            }
            None => code,
        },
        // The reader went away while we printed: nothing more to say, and the work is done.
        Err(e) if out::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report_chain(&e));
            ExitCode::from(exit_code_of(&e))
        }
    }
}

/// What an interrupted run leaves: said on Ctrl-C before exiting with 130, the shell's code for SIGINT.
const INTERRUPTED: &str = "\ninterrupted: every stage that finished is kept in the store and will be `cached`; \
the stages that were running are discarded, except train.lora, which resumes from its last checkpoint \
(`checkpoint_every`); run the same command again to resume\n";

/// On Ctrl-C (or SIGTERM): cancels the Slurm jobs of this run, prints [`INTERRUPTED`] and exits with 128 + the
/// signal (130 for Ctrl-C). The store needs no cleanup: every write is atomic (temp file, then rename) and the lock
/// is released by the kernel when the process ends.
fn say_what_was_kept_on_ctrl_c() {
    cluster::on_interrupt(INTERRUPTED);
}

/// The error and its sources, each source appended only when the message does not already include it (most
/// variants print their source inline and also keep it as `source()` for callers).
fn report_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

/// The exit status for an error, from the typed errors along its chain (see [`EXIT_CODES`]).
fn exit_code_of(e: &anyhow::Error) -> u8 {
    use alinea_engine::StoreError;
    for cause in e.chain() {
        if cause.is::<alinea_engine::plan::PlanError>() || cause.is::<Usage>() {
            return EXIT_USAGE;
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::UnknownStage { .. } | StoreError::UnknownRun { .. } => EXIT_USAGE,
                _ => EXIT_STORE,
            };
        }
        if let Some(r) = cause.downcast_ref::<alinea_engine::remote::RemoteError>() {
            return match r {
                alinea_engine::remote::RemoteError::BadUrl { .. } => EXIT_USAGE,
                _ => EXIT_STORE,
            };
        }
        if cause.is::<alinea_engine::exec::ExecError>() {
            return EXIT_STORE;
        }
    }
    EXIT_FAILED
}

fn configure_threads(cli: &Cli) {
    let n = cli
        .global
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    // Each of the stages that may run side by side gets its share of the cores for candle's intra-op threads:
    // candle's CPU pool spin-waits, and two training stages with a pool of all cores each ran 1.5-2x slower on 2
    // cores than with one thread each (the demo: 81 s against 54 s). `model.tiny` pretraining spreads its batch
    // over the rayon pool instead, which suits a model whose single ops are too small to split.
    let stages_at_once = match &cli.command {
        Some(Command::Run(a)) => a.jobs(),
        None => pipeline::RunArgs::demo().jobs(),
        _ => 1,
    };
    let per_stage = (n / stages_at_once).max(1);
    let fmt_rows = match &cli.command {
        Some(Command::Show(a)) => Some(a.rows()),
        Some(Command::Query(a)) => Some(a.rows()),
        _ => None,
    };
    // SAFETY: set_var is unsafe since Rust 2024 because another thread may read the environment at the same
    // time; this runs first thing in `main`, right after clap's parsing, which starts no thread; the rayon pool is
    // built below, polars' and candle's pools start lazily on first use, later. No other thread exists yet. Polars
    // and candle read these settings only from the environment (polars-core's `config.rs` has no setter).
    unsafe {
        std::env::set_var("POLARS_MAX_THREADS", n.to_string());
        // candle's CPU pool (elementwise ops) and its matmul threads (read from RAYON_NUM_THREADS; the rayon pool
        // itself is sized below, explicitly): a stage's share, unless the user set them.
        let mut ours = Vec::new();
        for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
            if std::env::var_os(var).is_none() {
                std::env::set_var(var, per_stage.to_string());
                ours.push(var);
            }
        }
        // Named so that the Slurm executor keeps them from its jobs, which size their own share on their node.
        std::env::set_var(
            alinea_engine::slurm::THREAD_VARS_SET_BY_ALINEA,
            ours.join(","),
        );
        // Polars' pretty printer (`show`, `query`) reads its limits from the environment at each print.
        if let Some(rows) = fmt_rows {
            std::env::set_var("POLARS_FMT_MAX_ROWS", rows.to_string());
            std::env::set_var("POLARS_FMT_STR_LEN", "60");
            std::env::set_var("POLARS_FMT_MAX_COLS", "20");
        }
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
}

/// The project root: the nearest ancestor of the working directory with a `pipelines/` folder, else the
/// directory this binary was built from.
fn project_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .find(|d| d.join("pipelines").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

impl Global {
    fn store_dir(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| project_root().join("cache"))
    }

    fn open_store(&self) -> anyhow::Result<alinea_engine::Store> {
        let mut store = alinea_engine::Store::open(self.store_dir())?;
        store.set_repair_command(self.repair_command());
        Ok(store)
    }

    /// The exact command that repairs this store: `--store` only when it is not the default one.
    fn repair_command(&self) -> String {
        match &self.store {
            Some(dir) if *dir != project_root().join("cache") => {
                format!("alinea verify --repair --store {}", dir.display())
            }
            _ => "alinea verify --repair".to_string(),
        }
    }

    fn threads(&self) -> usize {
        rayon::current_num_threads()
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
