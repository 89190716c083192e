//! `show`, `query`, `export` and `log`: reading what runs left in the store, by stage name.

use std::io::Write;
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
    /// Read the stage as it was in this run (`alinea runs`; an id, a unique prefix or `latest`)
    #[arg(long, conflicts_with = "pipeline")]
    run: Option<String>,
}

/// The record of stage `name`: from run `run` when given, else from the pipeline's ref.
fn stage_record(
    store: &Store,
    name: &str,
    pipeline: Option<&str>,
    run: Option<&str>,
) -> anyhow::Result<ActionRecord> {
    let Some(id) = run else {
        return Ok(store.resolve_stage(name, pipeline)?);
    };
    let run = alinea_engine::runs::resolve_run(store, id)?;
    let stage = run.stages.get(name).ok_or_else(|| {
        super::Usage(format!(
            "run {} has no stage `{name}`; its stages: {}",
            run.id,
            run.stages.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    store
        .get_action(&stage.key)?
        .with_context(|| format!("run {}: the record of stage `{name}` is gone (gc)", run.id))
}

/// Writes an exported file with the usual mode (0644), not the 0600 of the store's temporary files.
fn write_exported(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_exported_with(path, |w| Ok(w.write_all(bytes)?)).map(|_| ())
}

/// Writes an exported file through `write` into a temporary file beside `path`, then renames it into place
/// (a reader never sees half a file; a failed export leaves no file), mode 0644 like any file a user makes.
/// Streams: an export of a paper-scale training set never holds the whole file in memory. Returns its size.
pub(super) fn write_exported_with(
    path: &std::path::Path,
    write: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut w = std::io::BufWriter::new(tmp.as_file());
    write(&mut w).with_context(|| format!("writing {}", path.display()))?;
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    drop(w);
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    let size = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    tmp.persist(path)
        .with_context(|| format!("renaming the export into {}", path.display()))?;
    Ok(size)
}

/// Rows of an instruction table converted to structs at once when exporting `--as` records.
const EXPORT_ROWS_PER_CHUNK: usize = 1 << 16;

/// Arguments of `path`.
#[derive(Debug, Args)]
pub struct PathArgs {
    #[command(flatten)]
    sel: StageSel,
}

/// `alinea path STAGE[.OUTPUT]`: the object's path in the store (read it in place; never write to it).
pub fn path(global: &Global, args: PathArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let (_, out) = selected(&store, &args.sel)?;
    let path = store.object_path(&out.digest);
    if global.json {
        print_json(
            &serde_json::json!({"path": path, "output": out.name, "kind": out.kind, "digest": out.digest}),
        )?;
    } else {
        outln!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `checkout`.
#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// The run to write out (an id, a unique prefix or `latest`)
    #[arg(long, default_value = "latest")]
    run: String,
    /// Folder to write `<pipeline>/<stage>/<output>[.parquet]` under
    #[arg(short = 'o', long = "output", default_value = "out")]
    output: PathBuf,
}

/// `alinea checkout`: every output of a run as a stable file, `out/<pipeline>/<stage>/<output>.parquet` for tables
/// and `out/<pipeline>/<stage>/<output>` for blobs (so an adapter stage's folder is a PEFT adapter folder).
pub fn checkout(global: &Global, args: CheckoutArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let run = alinea_engine::runs::resolve_run(&store, &args.run)?;
    let mut written = Vec::new();
    for (name, stage) in &run.stages {
        let record = store.get_action(&stage.key)?.with_context(|| {
            format!("run {}: the record of stage `{name}` is gone (gc)", run.id)
        })?;
        for out in &record.outputs {
            let file = match out.kind {
                ObjectKind::Table => format!("{}.parquet", out.name),
                _ => out.name.clone(),
            };
            let path = args.output.join(&run.pipeline).join(name).join(file);
            write_exported(&path, &store.get_bytes(&out.digest)?)?;
            written.push(path);
        }
    }
    if global.json {
        print_json(&serde_json::json!({"run": run.id, "files": written}))?;
    } else {
        eprintln!(
            "wrote {} files of run {} under {}",
            written.len(),
            run.id,
            args.output.join(&run.pipeline).display()
        );
    }
    Ok(ExitCode::SUCCESS)
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
    /// SQL; each stage's main table is named after the stage (`-` becomes `_`), and every table of every stage is
    /// `"STAGE.OUTPUT"` (quoted), e.g. `SELECT * FROM "score_mt.segments"`
    sql: String,
    /// Pipeline whose stages to expose [default: the one run last]
    #[arg(long)]
    pipeline: Option<String>,
    /// Query the tables of this run instead (an id, a unique prefix or `latest`)
    #[arg(long, conflicts_with = "pipeline")]
    run: Option<String>,
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
    /// Output file; for a blob output, a file or a folder; with a bare STAGE and a folder (existing, or ending in
    /// `/`), every blob of the stage goes into it (a train.lora stage gives a PEFT adapter folder)
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// For instruction tables written as JSONL: `alpaca` (instruction/input/output) or `prompt-completion`,
    /// which trainers such as HF TRL read directly [default: every column]
    #[arg(long = "as", value_parser = ["alpaca", "prompt-completion"])]
    records: Option<String>,
}

/// `alinea export STAGE -o DIR/`: every blob of the stage into DIR under its own name (a `train.lora` stage gives
/// `adapter_config.json` and `adapter_model.safetensors`: a folder `PeftModel.from_pretrained` loads).
fn export_folder(global: &Global, store: &Store, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let record = stage_record(
        store,
        &args.sel.stage,
        args.sel.pipeline.as_deref(),
        args.sel.run.as_deref(),
    )?;
    let blobs: Vec<&OutputRef> = record
        .outputs
        .iter()
        .filter(|o| o.kind != ObjectKind::Table)
        .collect();
    if blobs.is_empty() {
        return Err(super::Usage(format!(
            "stage `{}` has no blob outputs to write into a folder; export a table to a file: -o FILE.parquet",
            args.sel.stage
        ))
        .into());
    }
    let mut files = Vec::new();
    for out in blobs {
        let path = args.output.join(&out.name);
        write_exported(&path, &store.get_bytes(&out.digest)?)?;
        files.push(path);
    }
    if global.json {
        print_json(&serde_json::json!({"output": args.output, "files": files}))?;
    } else {
        eprintln!("wrote {} files into {}", files.len(), args.output.display());
    }
    Ok(ExitCode::SUCCESS)
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
    let record = stage_record(store, stage, sel.pipeline.as_deref(), sel.run.as_deref())?;
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
    let (scope, stages) = query_scope(&store, &args)?;
    let mut ctx = SQLContext::new();
    // Each table is a lazy Parquet scan of its object: a query reads only the tables, columns and row groups it
    // needs. Objects are checked first by the rule cache hits use (the stat cache's record of a verified stamp,
    // else a streaming re-hash): a damaged one is quarantined, never scanned, and a missing or damaged table
    // fails only the queries that name it, saying why.
    let stat_cache = std::sync::Mutex::new(alinea_engine::files::StatCache::load(
        &store.root().join("statcache.json"),
    ));
    let mut names = Vec::new();
    let mut unusable = Vec::new();
    for (name, key) in &stages {
        let Some(record) = store.get_action(key)? else {
            continue;
        };
        let sql_name = name.replace('-', "_");
        let tables = record
            .outputs
            .iter()
            .filter(|o| o.kind == ObjectKind::Table);
        for (i, out) in tables.enumerate() {
            let lf = match scan_table(&store, &record, out, &stat_cache) {
                Ok(lf) => lf,
                Err(e) => {
                    unusable.push(e.to_string());
                    continue;
                }
            };
            if i == 0 {
                ctx.register(&sql_name, lf.clone());
                names.push(sql_name.clone());
            }
            let dotted = format!("{sql_name}.{}", out.name);
            ctx.register(&dotted, lf);
            names.push(format!("\"{dotted}\""));
        }
    }
    let df = ctx
        .execute(&args.sql)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            let mut msg = format!("in query over the tables of {scope}: {}", names.join(", "));
            for u in &unusable {
                msg.push_str(&format!("\nnot available: {u}"));
            }
            msg
        })?
        .collect()?;
    if global.json {
        print_json(&frame_to_json_rows(&mut df.head(Some(args.rows)))?)?;
    } else {
        print_frame(&df, args.rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// The stages a query sees, stage name -> action key: those of one run (`--run`), else of the pipeline's ref.
/// Either way one consistent configuration.
fn query_scope(
    store: &Store,
    args: &QueryArgs,
) -> anyhow::Result<(String, std::collections::BTreeMap<String, String>)> {
    if let Some(id) = &args.run {
        let run = alinea_engine::runs::resolve_run(store, id)?;
        let keys = run
            .stages
            .iter()
            .map(|(n, s)| (n.clone(), s.key.clone()))
            .collect();
        return Ok((format!("run {}", run.id), keys));
    }
    let pipeline = args
        .pipeline
        .clone()
        .or_else(|| store.head())
        .context("nothing has run with this store yet")?;
    let pref = store
        .get_ref(&pipeline)?
        .with_context(|| format!("no run of pipeline `{pipeline}` in this store"))?;
    let keys = pref
        .stages
        .iter()
        .map(|(n, s)| (n.clone(), s.key.clone()))
        .collect();
    Ok((format!("pipeline `{pipeline}`"), keys))
}

/// `alinea export`.
pub fn export(global: &Global, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    if !args.sel.stage.contains('.')
        && (args.output.is_dir() || args.output.to_string_lossy().ends_with('/'))
    {
        return export_folder(global, &store, &args);
    }
    let (_, out) = selected(&store, &args.sel)?;
    if out.kind != ObjectKind::Table {
        let path = if args.output.is_dir() {
            args.output.join(&out.name)
        } else {
            args.output.clone()
        };
        let bytes = store.get_bytes(&out.digest)?;
        write_exported(&path, &bytes)?;
        if global.json {
            print_json(
                &serde_json::json!({"output": path, "format": "blob", "bytes": bytes.len()}),
            )?;
        } else {
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
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
    let size = if format == "parquet" {
        let object = store.verified_path(&out.digest)?;
        write_exported_with(&args.output, |w| {
            std::io::copy(&mut std::fs::File::open(&object)?, w)?;
            Ok(())
        })?
    } else {
        let mut df = decode_parquet(store.get_bytes(&out.digest)?)?;
        write_exported_with(&args.output, |w| match format.as_str() {
            "jsonl" if args.records.is_some() => {
                let format = if args.records.as_deref() == Some("alpaca") {
                    alinea_instruct::ExportFormat::Alpaca
                } else {
                    alinea_instruct::ExportFormat::PromptCompletion
                };
                let mut offset = 0;
                while offset < df.height() {
                    let chunk = df.slice(offset as i64, EXPORT_ROWS_PER_CHUNK);
                    let rows = crate::support::tables::instruct::from_frame(&chunk)
                        .context("--as needs an instruction table (from an instruct.* stage)")?;
                    alinea_instruct::write_jsonl(&rows, format, &mut *w)?;
                    offset += EXPORT_ROWS_PER_CHUNK;
                }
                Ok(())
            }
            "jsonl" => Ok(JsonWriter::new(w)
                .with_json_format(JsonFormat::JsonLines)
                .finish(&mut df)?),
            _ => Ok(CsvWriter::new(w).finish(&mut df)?),
        })?
    };
    if global.json {
        print_json(
            &serde_json::json!({"output": args.output, "format": format, "bytes": size, "rows": out.rows}),
        )?;
    } else {
        eprintln!(
            "wrote {} ({format}, {} rows, {} bytes)",
            args.output.display(),
            out.rows.unwrap_or(0),
            size
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `alinea log`.
pub fn log(global: &Global, args: LogArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = stage_record(
        &store,
        &args.sel.stage,
        args.sel.pipeline.as_deref(),
        args.sel.run.as_deref(),
    )?;
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
