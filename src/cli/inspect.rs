//! `show`, `query`, `export` and `log`: reading what runs left in the store, by stage name.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use polars::prelude::*;
use polars::sql::SQLContext;

use super::{Global, print_json};
use alinea_engine::Store;
use alinea_engine::store::{ActionRecord, ObjectKind, OutputRef};
use alinea_engine::table::decode_parquet;

/// Which stage (and output) to read.
#[derive(Debug, Args)]
pub struct StageSel {
    /// Stage name, or STAGE.OUTPUT for a named output
    stage: String,
    /// Pipeline whose stages to look in [default: the one run last]
    #[arg(long)]
    pipeline: Option<String>,
}

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    sel: StageSel,
    /// Rows to print
    #[arg(long, default_value_t = 20)]
    rows: usize,
    /// Print the columns and their types instead of rows
    #[arg(long)]
    schema: bool,
}

/// Arguments of `query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// SQL; each stage of the pipeline is a table named after it (`-` becomes `_`)
    sql: String,
    /// Pipeline whose stages to expose [default: the one run last]
    #[arg(long)]
    pipeline: Option<String>,
    /// Rows to print
    #[arg(long, default_value_t = 50)]
    rows: usize,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    sel: StageSel,
    /// Output format [default: from the extension of -o]
    #[arg(long, value_parser = ["parquet", "jsonl", "csv"])]
    format: Option<String>,
    /// Output file
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// For instruction tables written as JSONL: `alpaca` (instruction/input/output) or `prompt-completion`,
    /// which trainers such as HF TRL read directly [default: every column]
    #[arg(long = "as", value_parser = ["alpaca", "prompt-completion"])]
    records: Option<String>,
}

/// Arguments of `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(flatten)]
    sel: StageSel,
}

fn selected(store: &Store, sel: &StageSel) -> anyhow::Result<(ActionRecord, OutputRef)> {
    let (stage, output) = match sel.stage.split_once('.') {
        Some((s, o)) => (s, Some(o)),
        None => (sel.stage.as_str(), None),
    };
    let record = store.resolve_stage(stage, sel.pipeline.as_deref())?;
    let out = match output {
        Some(name) => record
            .outputs
            .iter()
            .find(|o| o.name == name)
            .cloned()
            .with_context(|| {
                format!(
                    "stage `{stage}` has no output `{name}`; outputs: {}",
                    record
                        .outputs
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
        None => record
            .outputs
            .iter()
            .find(|o| o.kind == ObjectKind::Table)
            .cloned()
            .with_context(|| format!("stage `{stage}` produced no table"))?,
    };
    Ok((record, out))
}

/// A lazy scan of table `out` of `record`, after checking the object against its digest.
fn scan_table(
    store: &Store,
    record: &ActionRecord,
    out: &OutputRef,
    stat_cache: &std::sync::Mutex<alinea_engine::files::StatCache>,
) -> anyhow::Result<LazyFrame> {
    let one = ActionRecord {
        outputs: vec![out.clone()],
        logs: Vec::new(),
        ..record.clone()
    };
    if !store.outputs_verified(&one, stat_cache) {
        bail!(
            "table `{}` of stage `{}` is missing or damaged (object {}; a damaged one is now in quarantine/): rerun the pipeline to recompute it",
            out.name,
            record.stage,
            store.object_path(&out.digest).display()
        );
    }
    let path = store.object_path(&out.digest);
    Ok(LazyFrame::scan_parquet(
        PlRefPath::try_from_path(&path)?,
        ScanArgsParquet::default(),
    )?)
}

fn read_table(store: &Store, out: &OutputRef) -> anyhow::Result<DataFrame> {
    if out.kind != ObjectKind::Table {
        bail!("output `{}` is a blob, not a table", out.name);
    }
    Ok(decode_parquet(store.get_bytes(&out.digest)?)?)
}

/// Prints the first `rows` rows. Polars' pretty printer reads its limits (rows, string length, columns) from the
/// environment, which `cli::main` sets from `--rows` before any thread starts.
fn print_frame(df: &DataFrame, rows: usize) {
    outln!("{}", df.head(Some(rows)));
}

impl ShowArgs {
    /// Rows to print (`--rows`).
    pub(super) fn rows(&self) -> usize {
        self.rows
    }
}

impl QueryArgs {
    /// Rows to print (`--rows`).
    pub(super) fn rows(&self) -> usize {
        self.rows
    }
}

fn frame_to_json_rows(df: &mut DataFrame) -> anyhow::Result<serde_json::Value> {
    let mut buf = Vec::new();
    JsonWriter::new(&mut buf)
        .with_json_format(JsonFormat::Json)
        .finish(df)?;
    Ok(serde_json::from_slice(&buf)?)
}

/// `alinea show`.
pub fn show(global: &Global, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let (record, out) = selected(&store, &args.sel)?;
    let df = read_table(&store, &out)?;
    if args.schema {
        if global.json {
            let cols: Vec<_> = df.columns().iter().map(|c| serde_json::json!({"name": c.name().as_str(), "dtype": c.dtype().to_string()})).collect();
            print_json(
                &serde_json::json!({"stage": record.stage, "rows": df.height(), "columns": cols}),
            )?;
        } else {
            outln!(
                "{} ({}): {} rows",
                record.stage,
                record.components.kind,
                df.height()
            );
            for c in df.columns() {
                outln!("  {:<16} {}", c.name().as_str(), c.dtype());
            }
        }
    } else if global.json {
        print_json(&frame_to_json_rows(&mut df.head(Some(args.rows)))?)?;
    } else {
        print_frame(&df, args.rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// `alinea query`.
pub fn query(global: &Global, args: QueryArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let pipeline = args
        .pipeline
        .clone()
        .or_else(|| store.head())
        .context("nothing has run with this store yet")?;
    let pref = store
        .get_ref(&pipeline)?
        .with_context(|| format!("no run of pipeline `{pipeline}` in this store"))?;
    let mut ctx = SQLContext::new();
    // Each table is a lazy Parquet scan of its object: the query reads only the tables, columns and row groups it
    // needs, instead of every table of the pipeline decoded up front. Objects are checked first by the rule cache
    // hits use (the stat cache's record of a verified stamp, else a streaming re-hash), so a damaged object is
    // refused rather than scanned.
    let stat_cache = std::sync::Mutex::new(alinea_engine::files::StatCache::load(
        &store.root().join("statcache.json"),
    ));
    for (name, sref) in &pref.stages {
        let Some(record) = store.get_action(&sref.key)? else {
            continue;
        };
        if let Some(out) = record.outputs.iter().find(|o| o.kind == ObjectKind::Table) {
            ctx.register(
                &name.replace('-', "_"),
                scan_table(&store, &record, out, &stat_cache)?,
            );
        }
    }
    let df = ctx
        .execute(&args.sql)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "in query over the tables of pipeline `{pipeline}`: {}",
                pref.stages.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?
        .collect()?;
    if global.json {
        print_json(&frame_to_json_rows(&mut df.head(Some(args.rows)))?)?;
    } else {
        print_frame(&df, args.rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// `alinea export`.
pub fn export(global: &Global, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let (_, out) = selected(&store, &args.sel)?;
    let format = match args.format.clone() {
        Some(f) => f,
        None => match args.output.extension().and_then(|e| e.to_str()) {
            Some("parquet") => "parquet".into(),
            Some("jsonl" | "ndjson") => "jsonl".into(),
            Some("csv") => "csv".into(),
            _ => {
                return Err(super::Usage(format!(
                    "cannot tell the format from `{}`; give --format parquet|jsonl|csv",
                    args.output.display()
                ))
                .into());
            }
        },
    };
    let bytes = store.get_bytes(&out.digest)?;
    let data = match format.as_str() {
        "parquet" => bytes,
        "jsonl" if args.records.is_some() => {
            let rows = crate::support::tables::instruct::from_frame(&decode_parquet(bytes)?)
                .context("--as needs an instruction table (from an instruct.* stage)")?;
            let format = if args.records.as_deref() == Some("alpaca") {
                alinea_instruct::ExportFormat::Alpaca
            } else {
                alinea_instruct::ExportFormat::PromptCompletion
            };
            let mut buf = Vec::new();
            alinea_instruct::write_jsonl(&rows, format, &mut buf)?;
            buf
        }
        other => {
            let mut df = decode_parquet(bytes)?;
            let mut buf = Vec::new();
            if other == "jsonl" {
                JsonWriter::new(&mut buf)
                    .with_json_format(JsonFormat::JsonLines)
                    .finish(&mut df)?;
            } else {
                CsvWriter::new(&mut buf).finish(&mut df)?;
            }
            buf
        }
    };
    alinea_engine::store::write_atomic(&args.output, &data)?;
    if global.json {
        print_json(
            &serde_json::json!({"output": args.output, "format": format, "bytes": data.len(), "rows": out.rows}),
        )?;
    } else {
        eprintln!(
            "wrote {} ({format}, {} rows, {} bytes)",
            args.output.display(),
            out.rows.unwrap_or(0),
            data.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `alinea log`.
pub fn log(global: &Global, args: LogArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = store.resolve_stage(&args.sel.stage, args.sel.pipeline.as_deref())?;
    if global.json {
        print_json(&record)?;
        return Ok(ExitCode::SUCCESS);
    }
    let c = &record.components;
    outln!("stage        {}", record.stage);
    outln!("kind         {}", c.kind);
    outln!("action key   {}", record.key);
    outln!(
        "code         {}{}",
        c.fingerprint,
        c.version
            .as_ref()
            .map(|v| format!(" (pipeline version {v})"))
            .unwrap_or_default()
    );
    outln!(
        "started      {} (unix), took {:.3}s on {} threads, alinea {}",
        record.started_at,
        record.duration_ms as f64 / 1000.0,
        record.threads,
        record.alinea_version
    );
    if let Some(job) = &record.job {
        outln!(
            "slurm job    {} on {} (log {})",
            job.id,
            job.node,
            job.log.display()
        );
        if let Ok(text) = std::fs::read_to_string(&job.log) {
            for line in text
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                outln!("  | {line}");
            }
        }
    }
    outln!("params       {}", serde_json::to_string(&c.params)?);
    outln!("inputs");
    for (slot, digests) in &c.inputs {
        let from = record
            .input_stages
            .get(slot)
            .map(|s| format!(" from stage {}", s.join(", ")))
            .unwrap_or_default();
        outln!("  {slot:<10} {}{from}", digests.join(", "));
        for f in record.input_files.get(slot).into_iter().flatten() {
            outln!(
                "    {}  {}",
                alinea_engine::key::short(&f.digest),
                f.path.display()
            );
        }
    }
    outln!("outputs");
    for o in &record.outputs {
        outln!(
            "  {:<10} {} {:?} {} bytes{}",
            o.name,
            o.digest,
            o.kind,
            o.bytes,
            o.rows.map(|r| format!(", {r} rows")).unwrap_or_default()
        );
    }
    let s = &record.stats;
    outln!(
        "stats        rows in {}, rows out {}",
        s.rows_in,
        s.rows_out
    );
    for (reason, n) in &s.dropped {
        outln!("  dropped    {reason}: {n}");
    }
    for (name, n) in &s.counters {
        outln!("  counter    {name}: {n}");
    }
    for l in &record.logs {
        outln!(
            "log          {} ({} bytes, {})",
            l.name,
            l.bytes,
            store.object_path(&l.digest).display()
        );
        print_log_tail(&store, l);
    }
    Ok(ExitCode::SUCCESS)
}

/// Lines of a log that `alinea log` shows (the whole log is the object file it names).
const LOG_TAIL_LINES: usize = 10;

/// Prints the last lines of a stored log, or why it cannot.
fn print_log_tail(store: &Store, log: &OutputRef) {
    match store.get_bytes(&log.digest) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..] {
                outln!("  | {line}");
            }
        }
        Err(e) => outln!("  (cannot read the log: {e})"),
    }
}
