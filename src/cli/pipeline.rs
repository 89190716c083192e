//! `run`, `status`, `dag` and `help`: commands over a pipeline file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressDrawTarget};
use polars::prelude::*;

use super::{Global, print_json, project_root};
use alinea_engine::exec::{self, RunOptions, RunReport, Status};
use alinea_engine::plan::{self, Override, Plan};
use alinea_engine::{Registry, Store};

/// Arguments naming a pipeline and overrides.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Pipeline file [default: pipelines/demo.toml]
    pipeline: Option<PathBuf>,
    /// Override a parameter: STAGE.PARAM=VALUE (VALUE in TOML syntax; bare words are strings)
    #[arg(long = "set", value_name = "STAGE.PARAM=VALUE")]
    set: Vec<Override>,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Run only these stages and their ancestors (a stage instance, or a `[stages.X]` name for all its instances)
    #[arg(value_name = "STAGE")]
    targets: Vec<String>,
    /// Recompute this stage even if cached, and say whether its outputs are byte-identical to the cached ones
    #[arg(long, value_name = "STAGE")]
    force: Vec<String>,
    /// Stages run at the same time
    #[arg(long, short = 'j', default_value_t = 2)]
    jobs: usize,
    /// Continue with independent stages after a failure
    #[arg(long)]
    keep_going: bool,
    /// Fail at once if another run holds the store lock, instead of waiting
    #[arg(long)]
    no_wait: bool,
    /// Where stale stages run: `local` (this process) or `slurm` (one batch job per stage, sharing the store);
    /// default: the pipeline's `[executor] kind`, else local
    #[arg(long, value_enum)]
    executor: Option<super::cluster::ExecutorArg>,
    /// Run every stage twice (a cached one: once more) and report outputs whose digests differ; exit 1 if any
    #[arg(long)]
    check_determinism: bool,
    /// Memory the stages running here at once may declare together (`resources = { mem = "14G" }` in a stage's
    /// table, Slurm's syntax): a stage waits until its declared memory fits, so `-j` never runs two large ones
    /// past it; one larger than the whole budget runs alone. Stages that declare nothing are not held back.
    /// `none` turns the limit off [default: this machine's memory]
    #[arg(long, value_name = "SIZE", env = "ALINEA_MEM")]
    mem: Option<String>,
}

/// The bytes of `--mem`: `none` for no limit, else a size, by default the machine's memory.
fn memory_budget(flag: Option<&str>) -> anyhow::Result<Option<u64>> {
    match flag {
        Some("none") => Ok(None),
        Some(size) => {
            let size: alinea_engine::memory::MemSize = size
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--mem {e}, or `none`"))?;
            Ok(Some(size.bytes()))
        }
        None => Ok(alinea_engine::memory::machine_memory()),
    }
}

impl RunArgs {
    /// How many stages may run at the same time (`-j`).
    pub fn jobs(&self) -> usize {
        self.jobs.max(1)
    }

    /// What `alinea` with no arguments does: run the embedded demo.
    pub fn demo() -> RunArgs {
        RunArgs {
            plan: PlanArgs {
                pipeline: None,
                set: Vec::new(),
            },
            targets: Vec::new(),
            force: Vec::new(),
            jobs: 2,
            keep_going: false,
            no_wait: false,
            executor: None,
            check_determinism: false,
            mem: None,
        }
    }
}

/// Arguments of `dag`.
#[derive(Debug, Args)]
pub struct DagArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Output syntax
    #[arg(long, default_value = "dot", value_parser = ["dot", "mermaid"])]
    format: String,
}

/// Arguments of `help`.
#[derive(Debug, Args)]
pub struct HelpArgs {
    /// A stage kind, e.g. `sample`
    kind: Option<String>,
}

fn load_plan(args: &PlanArgs, registry: &Registry) -> anyhow::Result<Plan> {
    let path = args
        .pipeline
        .clone()
        .unwrap_or_else(|| project_root().join("pipelines").join("demo.toml"));
    Ok(plan::load(&path, registry, &args.set)?)
}

/// How `run` shows progress, from `ALINEA_PROGRESS`: `auto` (the default: bars redrawn on a terminal, nothing
/// otherwise), `plain` (also a plain overall line on stderr as stages start and end, for logs) or `off`.
fn progress_mode() -> anyhow::Result<exec::OverallProgress> {
    match std::env::var("ALINEA_PROGRESS").as_deref() {
        Err(_) | Ok("" | "auto") => Ok(exec::OverallProgress::Bar),
        Ok("plain") => Ok(exec::OverallProgress::Lines),
        Ok("off") => Ok(exec::OverallProgress::Off),
        Ok(other) => Err(super::Usage(format!(
            "ALINEA_PROGRESS={other}: expected auto, plain or off"
        ))
        .into()),
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ran => "ran",
        Status::Cached => "cached",
        Status::Failed => "FAILED",
        Status::Skipped => "skipped",
    }
}

fn print_report(report: &RunReport) {
    let mut table = super::console_table(Some(vec![
        "status", "stage", "kind", "rows", "time", "reason",
    ]));
    for s in &report.stages {
        let rows = s.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
        let time = format!("{:.2}s", s.duration_ms as f64 / 1000.0);
        table.add_row(vec![
            status_word(s.status).to_string(),
            s.name.clone(),
            s.kind.clone(),
            rows,
            time,
            s.reason.clone(),
        ]);
    }
    super::print_table(table, &[3, 4]);
    let count = |st: Status| report.stages.iter().filter(|s| s.status == st).count();
    outln!(
        "{} stages: {} ran, {} cached, {} failed, {} skipped in {:.2}s",
        report.stages.len(),
        count(Status::Ran),
        count(Status::Cached),
        count(Status::Failed),
        count(Status::Skipped),
        report.wall_ms as f64 / 1000.0
    );
}

/// The end-of-run summary of the final stages (those no other stage reads): a report's Markdown when there is one,
/// else rows per split and language.
fn print_summary(plan: &Plan, report: &RunReport, store: &Store) -> anyhow::Result<()> {
    let read: std::collections::BTreeSet<&str> =
        plan.stages.iter().flat_map(|s| s.upstream()).collect();
    for s in report
        .stages
        .iter()
        .filter(|s| !read.contains(s.name.as_str()))
    {
        if let Some(md) = s.outputs.iter().find(|o| o.name == "report.md") {
            outln!(
                "\n{} ({}):\n\n{}",
                s.name,
                s.kind,
                String::from_utf8_lossy(&store.get_bytes(&md.digest)?)
            );
            continue;
        }
        let Some(out) = s
            .outputs
            .iter()
            .find(|o| o.kind == alinea_engine::store::ObjectKind::Table)
        else {
            continue;
        };
        let df = alinea_engine::table::decode_parquet(store.get_bytes(&out.digest)?)?;
        let names: Vec<&str> = df
            .get_column_names()
            .into_iter()
            .map(|n| n.as_str())
            .collect();
        let keys: Vec<&str> = ["split", "lang"]
            .into_iter()
            .filter(|k| names.contains(k))
            .collect();
        if keys.is_empty() {
            continue;
        }
        let by: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
        let summary = df
            .lazy()
            .group_by(by.clone())
            .agg([len().alias("rows")])
            .sort_by_exprs(by, SortMultipleOptions::default())
            .collect()?;
        outln!("\n{} ({}): rows per {}", s.name, s.kind, keys.join(" and "));
        for i in 0..summary.height() {
            let row = summary.get_row(i)?;
            let cells: Vec<String> = row
                .0
                .iter()
                .map(|v| v.to_string().trim_matches('"').to_string())
                .collect();
            outln!("  {}", cells.join("  "));
        }
    }
    Ok(())
}

/// `alinea run`.
pub fn run(global: &Global, args: RunArgs) -> anyhow::Result<ExitCode> {
    let registry = crate::stages::registry();
    let full = load_plan(&args.plan, &registry)?;
    let plan = if args.targets.is_empty() {
        full
    } else {
        full.restrict_to(&args.targets).map_err(super::Usage)?
    };
    let mut force = std::collections::BTreeSet::new();
    for name in &args.force {
        let instances = plan.instances_of(name);
        if instances.is_empty() {
            return Err(super::Usage(format!(
                "--force {name}: no such stage in this run; stages are: {}",
                plan.stages
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        force.extend(instances);
    }
    let started = std::time::SystemTime::now();
    let store = global.open_store()?;
    let _lock = store.lock(!args.no_wait, |p| {
        eprintln!(
            "waiting for another alinea run to release the store lock ({})",
            p.display()
        )
    })?;
    let overall = progress_mode()?;
    let progress = if global.json || overall == exec::OverallProgress::Off {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new()
    };
    let slurm = super::cluster::slurm_config(&plan, args.executor)?;
    let remote = super::remote_cmds::for_run(global, &plan.remote)?;
    let pushing = remote
        .as_ref()
        .filter(|(_, mode)| *mode == alinea_engine::remote::RemoteMode::Write)
        .map(|(r, _)| r.clone());
    let opts = RunOptions {
        jobs: args.jobs,
        keep_going: args.keep_going,
        threads: global.threads(),
        slurm,
        push: matches!(remote, Some((_, alinea_engine::remote::RemoteMode::Write))),
        remote: remote.map(|(r, _)| r as Arc<dyn exec::RemoteCache>),
        check_determinism: args.check_determinism,
        force: force.clone(),
        overall,
        memory: memory_budget(args.mem.as_deref())?,
    };
    let report = exec::run(&plan, &registry, &store, &opts, &progress)?;
    let request = super::runs::RunRequest {
        overrides: args.plan.set.iter().map(|o| o.raw.clone()).collect(),
        targets: &args.targets,
        forced: &force,
        started,
    };
    let run_id = super::runs::record_run(&store, &plan, &request, &report)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    // The remote ref follows once something new reached the remote (records were pushed as their stages ended);
    // pushing the pipeline checks every stage's record and objects first, so the ref never names a missing one.
    if let Some(remote) = &pushing
        && report.stages.iter().any(|s| s.status == Status::Ran)
        && let Err(e) = remote.push_pipeline(&store, &plan.name, &[])
    {
        eprintln!(
            "note: the pipeline ref was not pushed to {}: {e}",
            remote.url()
        );
    }
    if global.json {
        let mut value = serde_json::to_value(&report)?;
        value["run"] = serde_json::Value::String(run_id);
        print_json(&value)?;
    } else {
        print_report(&report);
        for s in report.stages.iter().filter(|s| s.status == Status::Failed) {
            eprintln!(
                "\nerror: stage `{}` ({}) failed: {}",
                s.name, s.kind, s.reason
            );
        }
        for s in report
            .stages
            .iter()
            .filter(|s| !s.nondeterministic.is_empty())
        {
            eprintln!(
                "\nwarning: stage `{}` ({}) is not deterministic: a second run gave other bytes for {}",
                s.name,
                s.kind,
                s.nondeterministic.join(", ")
            );
        }
        if report.succeeded() {
            print_summary(&plan, &report, &store).context("printing the run summary")?;
        }
        outln!("\nrun {run_id} recorded (`alinea runs`, `alinea diff`, `alinea pin`)");
    }
    Ok(if report.succeeded() && report.deterministic() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `alinea status`.
pub fn status(global: &Global, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let registry = crate::stages::registry();
    let plan = load_plan(&args, &registry)?;
    let store = global.open_store()?;
    if let Err(e @ alinea_engine::StoreError::BadRef { .. }) = store.get_ref(&plan.name) {
        eprintln!("warning: {e}");
    }
    // Only with `--remote`: a plain status stays local and instant.
    let remote = match global.remote {
        Some(_) => super::remote_cmds::configured(global, &plan.remote)?.map(|(r, _)| r),
        None => None,
    };
    if global.remote.is_some() && remote.is_none() {
        return Err(super::Usage(
            "status --remote: no remote configured (pass --remote URL, set ALINEA_REMOTE, or add `[store] remote` \
             to the pipeline file; remote mode must not be `off`)"
                .into(),
        )
        .into());
    }
    let lines = exec::status(
        &plan,
        &registry,
        &store,
        remote.as_ref().map(|r| r as &dyn exec::RemoteCache),
    )?;
    if global.json {
        print_json(&lines)?;
    } else {
        let mut table = super::console_table(None);
        for l in &lines {
            table.add_row(vec![
                l.state.to_string(),
                l.name.clone(),
                l.kind.clone(),
                l.reasons.join("; "),
            ]);
        }
        super::print_table(table, &[]);
        match &remote {
            Some(r) => {
                let n = |st: &str| lines.iter().filter(|l| l.state == st).count();
                outln!(
                    "{} stages: {} local, {} on {}, {} missing ({} requests)",
                    lines.len(),
                    n("local"),
                    n("remote"),
                    r.url(),
                    n("missing"),
                    r.requests()
                );
            }
            None => {
                let stale = lines.iter().filter(|l| l.state == "stale").count();
                outln!("{} of {} stages stale", stale, lines.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `alinea dag`.
pub fn dag(_global: &Global, args: DagArgs) -> anyhow::Result<ExitCode> {
    let registry = crate::stages::registry();
    let plan = load_plan(&args.plan, &registry)?;
    out!("{}", exec::render_dag(&plan, &args.format));
    Ok(ExitCode::SUCCESS)
}

/// `alinea help [KIND]`.
pub fn help(global: &Global, args: HelpArgs) -> anyhow::Result<ExitCode> {
    let registry = crate::stages::registry();
    match args.kind {
        None => {
            if global.json {
                let kinds: Vec<_> = registry
                    .iter()
                    .map(|k| serde_json::json!({"kind": k.kind(), "summary": k.summary()}))
                    .collect();
                print_json(&kinds)?;
            } else {
                use clap::CommandFactory;
                outln!("{}", super::Cli::command().render_help());
                outln!("\nStage kinds (alinea help KIND for parameters and output schema):");
                let mut table = super::console_table(None);
                for k in registry.iter() {
                    table.add_row(vec![format!("  {}", k.kind()), format!(" {}", k.summary())]);
                }
                super::print_table(table, &[]);
            }
        }
        Some(kind) => {
            let k = registry.get(&kind).ok_or_else(|| {
                super::Usage(format!(
                    "unknown stage kind `{kind}`; known kinds: {}",
                    registry.names().join(", ")
                ))
            })?;
            if global.json {
                print_json(&alinea_engine::help::to_json(k))?;
            } else {
                out!("{}", alinea_engine::help::render(k));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
