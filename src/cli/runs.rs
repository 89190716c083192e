//! `runs`, `exp show`, `diff` and `pin`: the run history (issue 13), and the record every `alinea run` leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Global, print_json};
use alinea_engine::Store;
use alinea_engine::exec::{RunReport, Status};
use alinea_engine::plan::Plan;
use alinea_engine::runs::{self, RunRecord, RunStage};

/// What the caller of [`record_run`] asked for, beside the plan.
pub struct RunRequest<'a> {
    /// The `--set` overrides as given.
    pub overrides: Vec<String>,
    /// Target stages (empty: all).
    pub targets: &'a [String],
    /// `--force`d stage instances.
    pub forced: &'a BTreeSet<String>,
    /// When the run started.
    pub started: std::time::SystemTime,
}

/// Writes the record of a finished run (`runs/<id>.json`) and returns its id.
pub fn record_run(
    store: &Store,
    plan: &Plan,
    request: &RunRequest,
    report: &RunReport,
) -> anyhow::Result<String> {
    let stages: BTreeMap<String, RunStage> = plan
        .stages
        .iter()
        .zip(&report.stages)
        .filter(|(_, r)| matches!(r.status, Status::Ran | Status::Cached))
        .filter_map(|(s, r)| {
            Some((
                s.name.clone(),
                RunStage {
                    kind: s.kind.clone(),
                    key: r.key.clone()?,
                    params: s.params.clone(),
                },
            ))
        })
        .collect();
    let since = request
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let run = RunRecord {
        id: runs::new_run_id(&plan.name, request.started, &stages),
        pipeline: plan.name.clone(),
        file: plan.file.clone(),
        started_at: since.as_secs(),
        started_ns: u64::try_from(since.as_nanos()).unwrap_or(u64::MAX),
        duration_ms: report.wall_ms,
        overrides: request.overrides.clone(),
        targets: request.targets.to_vec(),
        forced: request.forced.iter().cloned().collect(),
        succeeded: report.succeeded(),
        alinea_version: env!("CARGO_PKG_VERSION").to_string(),
        stages,
    };
    runs::put_run(store, &run)?;
    Ok(run.id)
}

/// Per `metrics.score` stage of `run`, the mean over directions of its headline scores (`STAGE.chrfpp`,
/// `STAGE.bleu`, `STAGE.empty_rate`); absent when the scores are no longer in the store.
pub fn headline_metrics(store: &Store, run: &RunRecord) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, stage) in run.stages.iter().filter(|(_, s)| s.kind == "metrics.score") {
        let Some(table) = score_table(store, &stage.key) else {
            continue;
        };
        for metric in ["chrfpp", "bleu", "empty_rate"] {
            let values: Vec<f64> = table
                .column(metric)
                .ok()
                .and_then(|c| c.f64().ok().map(|c| c.into_no_null_iter().collect()))
                .unwrap_or_default();
            if !values.is_empty() {
                out.insert(
                    format!("{name}.{metric}"),
                    values.iter().sum::<f64>() / values.len() as f64,
                );
            }
        }
    }
    out
}

fn score_table(store: &Store, key: &str) -> Option<polars::prelude::DataFrame> {
    let record = store.get_action(key).ok()??;
    let scores = record.outputs.iter().find(|o| o.name == "scores")?;
    let bytes = store.get_bytes(&scores.digest).ok()?;
    alinea_engine::table::decode_parquet(bytes).ok()
}

/// Arguments of `runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only the runs of this pipeline (its `[pipeline] name`)
    pipeline: Option<String>,
}

/// One line of `alinea runs --json`.
#[derive(serde::Serialize)]
struct RunLine {
    id: String,
    pipeline: String,
    started_at: u64,
    overrides: Vec<String>,
    targets: Vec<String>,
    succeeded: bool,
    pinned: bool,
    alinea_version: String,
    metrics: BTreeMap<String, f64>,
}

/// `alinea runs`.
pub fn list(global: &Global, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let lines: Vec<RunLine> = runs::list_runs(&store, args.pipeline.as_deref())?
        .into_iter()
        .map(|r| RunLine {
            metrics: headline_metrics(&store, &r),
            pinned: runs::is_pinned(&store, &r.id),
            id: r.id,
            pipeline: r.pipeline,
            started_at: r.started_at,
            overrides: r.overrides,
            targets: r.targets,
            succeeded: r.succeeded,
            alinea_version: r.alinea_version,
        })
        .collect();
    if global.json {
        print_json(&lines)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = super::console_table(Some(vec![
        "run",
        "date (UTC)",
        "pipeline",
        "overrides",
        "version",
        "metrics",
    ]));
    for l in &lines {
        let mut id = l.id.clone();
        if l.pinned {
            id.push_str(" (pinned)");
        }
        if !l.succeeded {
            id.push_str(" (failed)");
        }
        let mut what = l.overrides.join(" ");
        if !l.targets.is_empty() {
            what = format!("{what} [targets: {}]", l.targets.join(" "))
                .trim()
                .to_string();
        }
        table.add_row(vec![
            id,
            runs::utc_stamp(l.started_at),
            l.pipeline.clone(),
            if what.is_empty() { "-".into() } else { what },
            l.alinea_version.clone(),
            metrics_text(&l.metrics),
        ]);
    }
    super::print_table(table, &[]);
    Ok(ExitCode::SUCCESS)
}

fn metrics_text(metrics: &BTreeMap<String, f64>) -> String {
    if metrics.is_empty() {
        return "-".into();
    }
    metrics
        .iter()
        .filter(|(k, _)| k.ends_with(".chrfpp") || k.ends_with(".empty_rate"))
        .map(|(k, v)| format!("{k}={v:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Subcommands of `exp`.
#[derive(Debug, Subcommand)]
pub enum ExpCommand {
    /// One table: the parameters that differ across runs, then the headline metrics (as `dvc exp show`)
    Show(RunsArgs),
}

/// `STAGE.PARAM` -> value, for every parameter of every stage of `run`.
fn flat_params(run: &RunRecord) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (stage, s) in &run.stages {
        if let Some(fields) = s.params.as_object() {
            for (name, value) in fields {
                out.insert(format!("{stage}.{name}"), value.to_string());
            }
        }
    }
    out
}

/// The parameter names whose value is not the same in every one of `runs` (absent counts as a value).
fn differing(params: &[BTreeMap<String, String>]) -> Vec<String> {
    let names: BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    names
        .into_iter()
        .filter(|n| {
            let first = params[0].get(*n);
            params.iter().any(|p| p.get(*n) != first)
        })
        .cloned()
        .collect()
}

/// `alinea exp show`.
pub fn exp(global: &Global, command: ExpCommand) -> anyhow::Result<ExitCode> {
    let ExpCommand::Show(args) = command;
    let store = global.open_store()?;
    let all = runs::list_runs(&store, args.pipeline.as_deref())?;
    let params: Vec<BTreeMap<String, String>> = all.iter().map(flat_params).collect();
    let columns = if params.is_empty() {
        Vec::new()
    } else {
        differing(&params)
    };
    let metrics: Vec<BTreeMap<String, f64>> =
        all.iter().map(|r| headline_metrics(&store, r)).collect();
    let metric_names: BTreeSet<&String> = metrics.iter().flat_map(|m| m.keys()).collect();
    if global.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .zip(&params)
            .zip(&metrics)
            .map(|((r, p), m)| {
                let shown: BTreeMap<&String, &String> =
                    columns.iter().filter_map(|c| p.get(c).map(|v| (c, v))).collect();
                serde_json::json!({ "id": r.id, "pipeline": r.pipeline, "params": shown, "metrics": m })
            })
            .collect();
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut header: Vec<&str> = vec!["run"];
    header.extend(columns.iter().map(String::as_str));
    header.extend(metric_names.iter().map(|s| s.as_str()));
    let mut table = super::console_table(Some(header));
    for ((r, p), m) in all.iter().zip(&params).zip(&metrics) {
        let mut row = vec![r.id.clone()];
        row.extend(
            columns
                .iter()
                .map(|c| p.get(c).cloned().unwrap_or_else(|| "-".into())),
        );
        row.extend(metric_names.iter().map(|n| {
            m.get(*n)
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into())
        }));
        table.add_row(row);
    }
    let right: Vec<usize> = (1 + columns.len()..1 + columns.len() + metric_names.len()).collect();
    super::print_table(table, &right);
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A run id (or a unique prefix, or `latest`)
    a: String,
    /// Another run id
    b: String,
}

/// `alinea diff RUN_A RUN_B`.
pub fn diff(global: &Global, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let (a, b) = (
        runs::resolve_run(&store, &args.a)?,
        runs::resolve_run(&store, &args.b)?,
    );
    let (pa, pb) = (flat_params(&a), flat_params(&b));
    let params: Vec<(String, String, String)> = differing(&[pa.clone(), pb.clone()])
        .into_iter()
        .map(|n| {
            let get =
                |p: &BTreeMap<String, String>| p.get(&n).cloned().unwrap_or_else(|| "-".into());
            (n.clone(), get(&pa), get(&pb))
        })
        .collect();
    let names: BTreeSet<&String> = a.stages.keys().chain(b.stages.keys()).collect();
    let key = |r: &RunRecord, n: &str| {
        r.stages
            .get(n)
            .map(|s| alinea_engine::key::short(&s.key).to_string())
            .unwrap_or_else(|| "-".into())
    };
    let stages: Vec<(String, String, String)> = names
        .into_iter()
        .filter(|n| a.stages.get(*n).map(|s| &s.key) != b.stages.get(*n).map(|s| &s.key))
        .map(|n| (n.clone(), key(&a, n), key(&b, n)))
        .collect();
    let (ma, mb) = (headline_metrics(&store, &a), headline_metrics(&store, &b));
    let metric_names: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    let metrics: Vec<(String, Option<f64>, Option<f64>)> = metric_names
        .into_iter()
        .map(|n| (n.clone(), ma.get(n).copied(), mb.get(n).copied()))
        .collect();
    if global.json {
        print_json(&serde_json::json!({
            "a": a.id, "b": b.id,
            "params": params.iter().map(|(n, x, y)| serde_json::json!({"name": n, "a": x, "b": y})).collect::<Vec<_>>(),
            "stages": stages.iter().map(|(n, x, y)| serde_json::json!({"name": n, "a": x, "b": y})).collect::<Vec<_>>(),
            "metrics": metrics.iter().map(|(n, x, y)| serde_json::json!({"name": n, "a": x, "b": y})).collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("a = {}\nb = {}", a.id, b.id);
    let section = |title: &str, rows: Vec<[String; 3]>| {
        outln!("\n{title}");
        if rows.is_empty() {
            outln!("  (no difference)");
            return;
        }
        let mut t = super::console_table(Some(vec!["", "a", "b"]));
        for r in rows {
            t.add_row(r.to_vec());
        }
        super::print_table(t, &[]);
    };
    section(
        "parameters",
        params.into_iter().map(|(n, x, y)| [n, x, y]).collect(),
    );
    section(
        "stage keys",
        stages.into_iter().map(|(n, x, y)| [n, x, y]).collect(),
    );
    let num = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    section(
        "metrics",
        metrics
            .into_iter()
            .map(|(n, x, y)| [n, num(x), num(y)])
            .collect(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `pin`.
#[derive(Debug, Args)]
pub struct PinArgs {
    /// A run id (or a unique prefix, or `latest`)
    run: String,
    /// Remove the pin instead
    #[arg(long)]
    unpin: bool,
}

/// `alinea pin RUN`.
pub fn pin(global: &Global, args: PinArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let run = runs::resolve_run(&store, &args.run)?;
    runs::set_pinned(&store, &run.id, !args.unpin)?;
    if global.json {
        print_json(&serde_json::json!({ "id": run.id, "pinned": !args.unpin }))?;
    } else if args.unpin {
        outln!("unpinned {}", run.id);
    } else {
        outln!(
            "pinned {}: gc keeps everything it reaches, whatever --keep-last says",
            run.id
        );
    }
    Ok(ExitCode::SUCCESS)
}
