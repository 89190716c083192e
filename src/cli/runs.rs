//! `runs`, `exp show`, `diff` and `pin`: the run history (issue 13), and the record every `alinea run` leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Global, print_json};
use alinea_engine::Store;
use alinea_engine::exec::{RunReport, Status};
use alinea_engine::plan::Plan;
use alinea_engine::runs::{self, RunRecord, RunStage};
use alinea_metrics::significance;

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
    let tests = paired_tests(&store, &a, &b);
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
            "significance": tests.iter().map(|t| serde_json::json!({
                "stage": t.stage, "direction": t.direction, "metric": t.metric, "test": "bs",
                "samples": t.samples, "seed": t.seed, "a": t.a, "b": t.b, "p_value": t.p_value,
                "significant": t.p_value.is_some_and(|p| p <= significance::SIGNIFICANCE_LEVEL),
                "note": t.note,
            })).collect::<Vec<_>>(),
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
    if !tests.is_empty() {
        outln!(
            "\nsignificance (sacrebleu's paired bootstrap, b against a, {} resamples, seed {}; * p <= {})",
            significance::DEFAULT_BOOTSTRAP_SAMPLES,
            significance::DEFAULT_SEED,
            significance::SIGNIFICANCE_LEVEL
        );
        let mut t = super::console_table(Some(vec!["", "a", "b", "p"]));
        for r in &tests {
            let p = match (r.p_value, &r.note) {
                (Some(p), _) => format!(
                    "{p:.4}{}",
                    if p <= significance::SIGNIFICANCE_LEVEL {
                        "*"
                    } else {
                        ""
                    }
                ),
                (None, Some(note)) => note.clone(),
                (None, None) => "-".into(),
            };
            t.add_row(vec![
                format!("{}.{} {}", r.stage, r.metric, r.direction),
                num(r.a),
                num(r.b),
                p,
            ]);
        }
        super::print_table(t, &[1, 2]);
    }
    Ok(ExitCode::SUCCESS)
}

/// One paired test of `alinea diff`: a `metrics.score` stage's direction and metric in both runs.
struct PairedLine {
    stage: String,
    direction: String,
    metric: String,
    samples: usize,
    seed: u64,
    a: Option<f64>,
    b: Option<f64>,
    p_value: Option<f64>,
    /// Why there is no test.
    note: Option<String>,
}

/// What a `metrics.score` stage of a run scored: its options and its segments per direction.
struct Scored {
    score: alinea_metrics::ScoreConfig,
    directions: crate::stages::metrics_compare::Directions,
}

/// The generations a `metrics.score` action read, and its options; None when the store no longer
/// has them (or the stage read a file, which the record does not keep).
fn scored(store: &Store, key: &str) -> Option<Result<Scored, String>> {
    use crate::stages::metrics_score::{Params, input};
    let record = store.get_action(key).ok()??;
    let digest = record.components.inputs.get("generations")?.first()?;
    let bytes = store.get_bytes(digest).ok()?;
    let df = alinea_engine::table::decode_parquet(bytes).ok()?;
    let p: Params = match serde_json::from_value(record.components.params.clone()) {
        Ok(p) => p,
        Err(e) => return Some(Err(format!("parameters unreadable: {e}"))),
    };
    let segs = match input::segments(&df, &p, None, &mut input::ReadCounts::default()) {
        Ok(s) => s,
        Err(e) => return Some(Err(e.to_string())),
    };
    Some(Ok(Scored {
        score: p.score,
        directions: crate::stages::metrics_compare::by_direction(segs),
    }))
}

/// sacrebleu's paired bootstrap test (its defaults) of run `b` against run `a`, per direction and
/// metric, for each `metrics.score` stage both runs ran with other keys and whose generations the
/// store still has: the same library code as `metrics.compare`.
fn paired_tests(store: &Store, a: &RunRecord, b: &RunRecord) -> Vec<PairedLine> {
    let config = significance::TestConfig::new(significance::TestKind::Bootstrap);
    let mut out = Vec::new();
    for (name, sa) in a.stages.iter().filter(|(_, s)| s.kind == "metrics.score") {
        let Some(sb) = b.stages.get(name).filter(|s| s.key != sa.key) else {
            continue;
        };
        let (Some(x), Some(y)) = (scored(store, &sa.key), scored(store, &sb.key)) else {
            continue;
        };
        let line = |direction: &str, metric: &str| PairedLine {
            stage: name.clone(),
            direction: direction.to_string(),
            metric: metric.to_string(),
            samples: config.samples,
            seed: config.seed,
            a: None,
            b: None,
            p_value: None,
            note: None,
        };
        let (x, y) = match (x, y) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(e), _) | (_, Err(e)) => {
                out.push(PairedLine {
                    note: Some(e),
                    ..line("-", "-")
                });
                continue;
            }
        };
        let options = (x.score == y.score).then(|| x.score.options(None));
        let metrics = match options {
            Some(Ok(o)) => o.metrics(),
            Some(Err(e)) => {
                out.push(PairedLine {
                    note: Some(format!("no test: {e}")),
                    ..line("-", "-")
                });
                continue;
            }
            None => {
                out.push(PairedLine {
                    note: Some("scored with other options: no test".into()),
                    ..line("-", "-")
                });
                continue;
            }
        };
        for (direction, base) in &x.directions {
            let sys = y
                .directions
                .iter()
                .find(|(d, _)| d == direction)
                .map(|(_, s)| s);
            let hyps = crate::stages::metrics_compare::aligned_hyps("b", "a", direction, base, sys);
            let systems = hyps.map(|h| {
                vec![
                    (
                        "a".to_string(),
                        base.iter().map(|s| s.hyp.clone()).collect(),
                    ),
                    ("b".to_string(), h),
                ]
            });
            let refs = vec![base.iter().map(|s| s.reference.clone()).collect::<Vec<_>>()];
            match systems.map_err(|e| e.to_string()).and_then(|systems| {
                significance::paired_test(&metrics, &refs, &systems, &config)
                    .map_err(|e| e.to_string())
            }) {
                Ok(report) => {
                    for (m, metric) in report.metrics.iter().enumerate() {
                        out.push(PairedLine {
                            a: Some(report.results[0][m].score),
                            b: Some(report.results[1][m].score),
                            p_value: report.results[1][m].p_value,
                            ..line(direction, metric)
                        });
                    }
                }
                Err(e) => out.push(PairedLine {
                    note: Some(e),
                    ..line(direction, "-")
                }),
            }
        }
    }
    out
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
