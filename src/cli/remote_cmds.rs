//! The remote cache on the command line: which remote a command uses, and `push`, `pull`, `remote gc`.
//!
//! The remote is, first found: `--remote URL`, `ALINEA_REMOTE`, the pipeline file's `[store] remote`. Its mode
//! (`--remote-mode`, `ALINEA_REMOTE_MODE`, `[store] remote_mode`): `write` (default: pull hits, push what ran),
//! `read` (pull only) or `off`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{Global, Usage, print_json};
use alinea_engine::plan::RemoteConfig;
use alinea_engine::remote::{Remote, RemoteMode};

/// The remote a command should use and how, or `None` when none is configured or the mode is `off`.
pub fn configured(
    global: &Global,
    cfg: &RemoteConfig,
) -> anyhow::Result<Option<(Remote, RemoteMode)>> {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let url = non_empty(global.remote.clone())
        .or_else(|| non_empty(std::env::var("ALINEA_REMOTE").ok()))
        .or_else(|| cfg.url.clone());
    let mode_text = non_empty(global.remote_mode.clone())
        .or_else(|| non_empty(std::env::var("ALINEA_REMOTE_MODE").ok()))
        .or_else(|| cfg.mode.clone())
        .unwrap_or_else(|| "write".into());
    let mode: RemoteMode = mode_text.parse().map_err(Usage)?;
    match (url, mode) {
        (None, _) | (_, RemoteMode::Off) => Ok(None),
        (Some(url), mode) => Ok(Some((Remote::open(&url)?, mode))),
    }
}

/// [`configured`], for commands that need a remote: none configured is a usage error saying how to set one.
fn required(global: &Global, cfg: &RemoteConfig) -> anyhow::Result<Remote> {
    match configured(global, cfg)? {
        Some((remote, _)) => {
            remote.check()?;
            Ok(remote)
        }
        None => Err(Usage(
            "no remote configured: pass --remote URL, set ALINEA_REMOTE, or add `[store] remote = \"s3://…\"` to \
             the pipeline file (and remote mode is not `off`)"
                .into(),
        )
        .into()),
    }
}

/// The remote for a run, checked with one request. An unreachable remote is a note, and the run goes on from the
/// local cache; wrong credentials or a missing bucket are errors.
pub fn for_run(
    global: &Global,
    cfg: &RemoteConfig,
) -> anyhow::Result<Option<(Arc<Remote>, RemoteMode)>> {
    let Some((remote, mode)) = configured(global, cfg)? else {
        return Ok(None);
    };
    match remote.check() {
        Ok(()) => Ok(Some((Arc::new(remote), mode))),
        Err(e) if e.is_unreachable() => {
            eprintln!(
                "note: remote {} is unreachable ({}); working from the local cache only, nothing is pushed",
                remote.url(),
                super::report_chain(&anyhow::Error::from(e))
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The `[store]` table of a pipeline file, if it can be read (push and pull name a pipeline, not always its file).
fn config_of(file: &std::path::Path) -> RemoteConfig {
    let registry = crate::stages::registry();
    alinea_engine::plan::load(file, &registry, &[])
        .map(|p| p.remote)
        .unwrap_or_default()
}

/// Arguments of `push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Stages to push [default: every stage of the pipeline]
    stages: Vec<String>,
    /// The pipeline whose stages to push [default: the one run last]
    #[arg(long)]
    pipeline: Option<String>,
}

/// `alinea push [STAGE…]`.
pub fn push(global: &Global, args: PushArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let pipeline = args.pipeline.or_else(|| store.head()).ok_or_else(|| {
        Usage(
            "nothing to push: no pipeline has run with this store (name one with --pipeline)"
                .into(),
        )
    })?;
    let cfg = store
        .get_ref(&pipeline)?
        .map(|r| config_of(&r.file))
        .unwrap_or_default();
    let remote = required(global, &cfg)?;
    let count = remote.push_pipeline(&store, &pipeline, &args.stages)?;
    if global.json {
        print_json(&serde_json::json!({
            "pipeline": pipeline,
            "remote": remote.url(),
            "pushed": count,
            "requests": remote.requests(),
        }))?;
    } else {
        outln!(
            "pushed `{pipeline}` to {}: {} objects uploaded ({:.1} MB), {} already there, {} new records ({} requests)",
            remote.url(),
            count.objects_uploaded,
            count.bytes_uploaded as f64 / 1e6,
            count.objects_present,
            count.records_written,
            remote.requests()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// A pipeline name, or a pipeline file (its `[pipeline] name`)
    pipeline: String,
}

/// `alinea pull PIPELINE`.
pub fn pull(global: &Global, args: PullArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let file = std::path::Path::new(&args.pipeline);
    let (name, cfg) = if file.is_file() {
        let registry = crate::stages::registry();
        let plan = alinea_engine::plan::load(file, &registry, &[])?;
        (plan.name, plan.remote)
    } else {
        (args.pipeline.clone(), RemoteConfig::default())
    };
    let remote = required(global, &cfg)?;
    let _lock = store.lock(true, |p| {
        eprintln!("waiting for the store lock ({})", p.display())
    })?;
    let (fetched, failed) = remote.pull_pipeline(&store, &name)?;
    if global.json {
        let failed: Vec<_> = failed
            .iter()
            .map(|(s, why)| serde_json::json!({"stage": s, "reason": why}))
            .collect();
        print_json(&serde_json::json!({
            "pipeline": name,
            "remote": remote.url(),
            "fetched": fetched,
            "not_fetched": failed,
            "requests": remote.requests(),
        }))?;
    } else {
        outln!(
            "pulled `{name}` from {}: {fetched} stages ({} requests)",
            remote.url(),
            remote.requests()
        );
        for (stage, why) in &failed {
            outln!("not pulled  {stage}: {why} (a run recomputes it)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `remote`.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Debug, Subcommand)]
enum RemoteCommand {
    /// Delete from the remote what the kept pipelines' refs do not reach (objects younger than an hour stay)
    Gc(RemoteGcArgs),
}

/// Arguments of `remote gc`.
#[derive(Debug, Args)]
struct RemoteGcArgs {
    /// Pipelines whose refs keep their records and objects (every other ref is dropped)
    #[arg(long, required = true, num_args = 1..)]
    keep: Vec<String>,
    /// Say what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
}

/// `alinea remote …`.
pub fn remote(global: &Global, args: RemoteArgs) -> anyhow::Result<ExitCode> {
    let RemoteCommand::Gc(args) = args.command;
    let remote = required(global, &RemoteConfig::default())?;
    let report = remote.gc(&args.keep, args.dry_run)?;
    if global.json {
        print_json(&report)?;
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        outln!(
            "{verb} {} objects ({:.1} MB), {} records and the refs of {} other pipelines from {}; kept {} objects \
             ({} unreached but younger than an hour, kept in case a push is under way)",
            report.objects_removed,
            report.bytes_freed as f64 / 1e6,
            report.records_removed,
            report.refs_removed.len(),
            remote.url(),
            report.objects_kept,
            report.objects_too_young
        );
    }
    Ok(ExitCode::SUCCESS)
}
