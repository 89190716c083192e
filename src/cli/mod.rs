//! The command line. Each command is a thin function over the engine and the stages; `anyhow` lives only here.

mod align;
mod inspect;
mod model;
mod pipeline;
mod report;
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
        println!("{text}");
    }
}

/// alinea: cached data pipelines for instruction-tuning LLMs on machine translation.
#[derive(Debug, Parser)]
#[command(name = "alinea", version, about, long_about = None, disable_help_subcommand = true)]
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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline: recompute only the stages whose code, parameters or inputs changed
    Run(pipeline::RunArgs),
    /// Say which stages are stale and why, without running anything
    Status(pipeline::PlanArgs),
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
    /// Delete objects and records that no pipeline references (keeps the newest interrupted attempt of each stage)
    Gc(store_cmds::GcArgs),
    /// Re-hash every object of the store and report corrupt or missing ones
    Verify(store_cmds::VerifyArgs),
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
    // Like other Unix filters, end quietly when the reader of our output goes away (`alinea show x | head`).
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any other thread exists; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    configure_threads(cli.global.threads);
    let result = match cli.command {
        None => pipeline::run(&cli.global, pipeline::RunArgs::demo()),
        Some(Command::Run(a)) => pipeline::run(&cli.global, a),
        Some(Command::Status(a)) => pipeline::status(&cli.global, a),
        Some(Command::Dag(a)) => pipeline::dag(&cli.global, a),
        Some(Command::Show(a)) => inspect::show(&cli.global, a),
        Some(Command::Query(a)) => inspect::query(&cli.global, a),
        Some(Command::Export(a)) => inspect::export(&cli.global, a),
        Some(Command::Log(a)) => inspect::log(&cli.global, a),
        Some(Command::Gc(a)) => store_cmds::gc(&cli.global, a),
        Some(Command::Verify(a)) => store_cmds::verify(&cli.global, a),
        Some(Command::Model(a)) => model::model(&cli.global, a),
        Some(Command::Help(a)) => pipeline::help(&cli.global, a),
        Some(Command::Score(a)) => score::score(&cli.global, a),
        Some(Command::Report(a)) => report::report(&cli.global, a),
        Some(Command::Align(a)) => align::align(&cli.global, a),
        Some(Command::EvalAlign(a)) => align::eval_align(&cli.global, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn configure_threads(threads: Option<usize>) {
    let n = threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    // Polars reads this once, when its pool starts; nothing has started it yet.
    // SAFETY: called first thing in `main`, before any other thread runs, so nothing reads the environment
    // concurrently with these writes.
    unsafe {
        std::env::set_var("POLARS_MAX_THREADS", n.to_string());
        // candle's CPU pool spin-waits: it must not be larger than what the user granted.
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
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
        Ok(alinea_engine::Store::open(self.store_dir())?)
    }

    fn threads(&self) -> usize {
        rayon::current_num_threads()
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
