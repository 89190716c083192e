//! `report`: writes the documents of a `report` stage (Markdown, CSV, HTML) to a folder, with the provenance
//! appendix of the run they belong to (run id, parameters, data sizes, signatures, loss curves, sweeps).
//!
//! The appendix is added here, not by the stage: the stage's documents are cached by content and serve every run
//! whose inputs are the same, so they cannot name one run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use polars::prelude::{DataFrame, DataType};

use super::{Global, print_json};
use alinea_engine::runs::{RunRecord, list_runs, resolve_run, utc_stamp};
use alinea_engine::store::{ActionRecord, ObjectKind, Store};
use alinea_metrics::report::appendix::{
    LossCurve, ParamRow, Provenance, SplitSize, Sweep, TableSize, insert_before_body_end,
    render_appendix,
};

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Name of a `report` stage
    stage: String,
    /// Folder to write report.md, report.csv and report.html to (created if needed)
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Pipeline whose stage to read [default: the one run last]
    #[arg(long)]
    pipeline: Option<String>,
    /// The run whose documents and provenance to write (id or unique prefix, as `alinea runs` lists them)
    /// [default: the latest run that produced the stage's current result]
    #[arg(long)]
    run: Option<String>,
}

/// `alinea report`.
pub fn report(global: &Global, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let (record, run) = match &args.run {
        Some(id) => {
            let run = resolve_run(&store, id)?;
            let Some(stage) = run.stages.get(&args.stage) else {
                bail!(
                    "run {} has no stage `{}`; its stages are: {}",
                    run.id,
                    args.stage,
                    run.stages.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            };
            let record = store.get_action(&stage.key)?.with_context(|| {
                format!(
                    "the result of `{}` in run {} is no longer in the store (gc removed it)",
                    args.stage, run.id
                )
            })?;
            (record, Some(run))
        }
        None => {
            let record = store.resolve_stage(&args.stage, args.pipeline.as_deref())?;
            let pipeline = args.pipeline.clone().or_else(|| store.head());
            let run = list_runs(&store, pipeline.as_deref())?
                .into_iter()
                .rev()
                .find(|r| {
                    r.stages
                        .get(&args.stage)
                        .is_some_and(|s| s.key == record.key)
                });
            (record, run)
        }
    };
    let blobs: Vec<_> = record
        .outputs
        .iter()
        .filter(|o| o.kind == ObjectKind::Blob)
        .collect();
    if blobs.is_empty() {
        bail!(
            "stage `{}` ({}) produced no documents; `alinea report` reads a stage of kind `report`",
            record.stage,
            record.components.kind
        );
    }
    let appendix = match &run {
        // The documents are worth having without the appendix (an upstream object gone through gc, say).
        Some(run) => match provenance(&store, run, &args.stage) {
            Ok(p) => Some(render_appendix(&p)),
            Err(e) => {
                eprintln!(
                    "warning: the provenance appendix of run {} is left out: {e:#}",
                    run.id
                );
                None
            }
        },
        None => {
            eprintln!(
                "note: no run record holds this result of `{}` (made before run history was kept): the \
documents are written without the provenance appendix",
                args.stage
            );
            None
        }
    };
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut written = Vec::new();
    for out in blobs {
        // Output names are plain file names (`report.html`); refuse anything that could leave the folder.
        if out.name.is_empty() || out.name.contains(['/', '\\']) || out.name.starts_with('.') {
            bail!(
                "stage `{}` has an output named `{}`, which is not a plain file name",
                record.stage,
                out.name
            );
        }
        let mut bytes = store.get_bytes(&out.digest)?;
        if let Some((md, html)) = &appendix {
            bytes = with_appendix(&out.name, bytes, md, html);
        }
        let path = args.output.join(&out.name);
        alinea_engine::store::write_atomic(&path, &bytes)?;
        written.push(serde_json::json!({"path": path, "bytes": bytes.len(), "digest": out.digest}));
        if !global.json {
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
    }
    if global.json {
        print_json(&serde_json::json!({
            "stage": record.stage,
            "run": run.as_ref().map(|r| r.id.clone()),
            "files": written,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The document `name` with the appendix added: at the end of the Markdown, before `</body>` of the HTML; other
/// files (the CSV) unchanged.
fn with_appendix(name: &str, bytes: Vec<u8>, md: &str, html: &str) -> Vec<u8> {
    let Ok(text) = String::from_utf8(bytes.clone()) else {
        return bytes;
    };
    if name.ends_with(".md") {
        format!("{text}{md}").into_bytes()
    } else if name.ends_with(".html") {
        insert_before_body_end(&text, html).into_bytes()
    } else {
        bytes
    }
}

/// A stage of the run with its record.
struct Node {
    name: String,
    record: ActionRecord,
}

/// The stage `stage` of `run` and every stage it reads from, directly or not, upstream first (a stage after all it
/// reads; by name among stages that could go in either order), as a reader follows the pipeline.
fn ancestry(store: &Store, run: &RunRecord, stage: &str) -> anyhow::Result<Vec<Node>> {
    let mut found: BTreeMap<String, ActionRecord> = BTreeMap::new();
    let mut queue = VecDeque::from([stage.to_string()]);
    while let Some(name) = queue.pop_front() {
        if found.contains_key(&name) {
            continue;
        }
        let Some(s) = run.stages.get(&name) else {
            continue;
        };
        let Some(record) = store.get_action(&s.key)? else {
            continue;
        };
        queue.extend(record.input_stages.values().flatten().cloned());
        found.insert(name, record);
    }
    let mut nodes = Vec::new();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while !found.is_empty() {
        // The inputs of a stage are all in `found` or already placed, so some stage is always ready.
        let ready: Vec<String> = found
            .iter()
            .filter(|(_, r)| {
                r.input_stages
                    .values()
                    .flatten()
                    .all(|u| placed.contains(u) || !found.contains_key(u))
            })
            .map(|(n, _)| n.clone())
            .collect();
        let ready = if ready.is_empty() {
            found.keys().take(1).cloned().collect()
        } else {
            ready
        };
        for name in ready {
            let record = found.remove(&name).expect("listed from found");
            placed.insert(name.clone());
            nodes.push(Node { name, record });
        }
    }
    Ok(nodes)
}

/// Everything the appendix says about `run`, as far as the store still holds it.
fn provenance(store: &Store, run: &RunRecord, stage: &str) -> anyhow::Result<Provenance> {
    let nodes = ancestry(store, run, stage)?;
    let runs = list_runs(store, Some(&run.pipeline))?;
    let mut p = Provenance {
        run_id: run.id.clone(),
        pipeline: run.pipeline.clone(),
        started: utc_stamp(run.started_at),
        duration_s: run.duration_ms as f64 / 1000.0,
        alinea_version: run.alinea_version.clone(),
        overrides: run.overrides.clone(),
        runs_compared: runs.len(),
        params: param_rows(run, &runs, &nodes),
        ..Provenance::default()
    };
    let mut signatures: Vec<(String, String)> = Vec::new();
    let mut scores: Vec<(String, DataFrame)> = Vec::new();
    for n in &nodes {
        let kind = n.record.components.kind.as_str();
        for out in n
            .record
            .outputs
            .iter()
            .filter(|o| o.kind == ObjectKind::Table)
        {
            p.tables.push(TableSize {
                stage: n.name.clone(),
                kind: kind.to_string(),
                output: out.name.clone(),
                rows: out.rows.unwrap_or(0),
            });
        }
        let table = |name: &str| -> anyhow::Result<Option<DataFrame>> {
            let Some(out) = n.record.outputs.iter().find(|o| o.name == name) else {
                return Ok(None);
            };
            let bytes = store.get_bytes(&out.digest)?;
            Ok(Some(
                alinea_engine::table::decode_parquet(bytes)
                    .with_context(|| format!("reading table `{}.{name}`", n.name))?,
            ))
        };
        if kind.starts_with("ingest.") || kind == "sample" {
            if let Some(df) = table("pairs")? {
                p.splits.extend(split_sizes(&n.name, &df)?);
            }
        } else if kind == "train.lora" {
            if let Some(df) = table("loss")? {
                p.losses.push(loss_curve(&n.name, &df)?);
            }
        } else if kind == "metrics.score"
            && let Some(df) = table("scores")?
        {
            for (metric, column) in [
                ("BLEU", "bleu_signature"),
                ("chrF", "chrf_signature"),
                ("chrF++", "chrfpp_signature"),
            ] {
                for sig in strings(&df, column)?.into_iter().flatten() {
                    if !signatures.contains(&(metric.to_string(), sig.clone())) {
                        signatures.push((metric.to_string(), sig));
                    }
                }
            }
            scores.push((n.name.clone(), df));
        }
    }
    p.signatures = signatures;
    p.sweeps = sweeps(run, &scores)?;
    Ok(p)
}

/// The parameters of the stages in `nodes` that differ from their kind's default, or from their value in another
/// of the pipeline's `runs`.
fn param_rows(run: &RunRecord, runs: &[RunRecord], nodes: &[Node]) -> Vec<ParamRow> {
    let registry = crate::stages::registry();
    let mut rows = Vec::new();
    for n in nodes {
        let Some(stage) = run.stages.get(&n.name) else {
            continue;
        };
        let defaults = registry
            .get(&stage.kind)
            .map(|k| k.default_params())
            .unwrap_or_default();
        let Some(params) = stage.params.as_object() else {
            continue;
        };
        for (name, value) in params {
            let default = defaults.get(name).filter(|d| *d != value);
            let mut others: Vec<String> = Vec::new();
            for other in runs.iter().filter(|r| r.id != run.id) {
                let v = other
                    .stages
                    .get(&n.name)
                    .and_then(|s| s.params.get(name))
                    .filter(|v| *v != value)
                    .map(|v| format!("{v} ({})", other.id));
                others.extend(v);
            }
            if default.is_some() || !others.is_empty() {
                rows.push(ParamRow {
                    stage: n.name.clone(),
                    param: name.clone(),
                    value: value.to_string(),
                    default: default.map(|d| d.to_string()),
                    others,
                });
            }
        }
    }
    rows
}

/// The values of a column as text (null stays `None`); an error names the column when it is missing.
fn strings(df: &DataFrame, name: &str) -> anyhow::Result<Vec<Option<String>>> {
    let c = df
        .column(name)
        .with_context(|| format!("the table has no column `{name}`"))?
        .cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

/// The values of a numeric column as `f64` (null stays `None`); `None` for a missing column.
fn floats(df: &DataFrame, name: &str) -> anyhow::Result<Option<Vec<Option<f64>>>> {
    let Ok(c) = df.column(name) else {
        return Ok(None);
    };
    let c = c.cast(&DataType::Float64)?;
    Ok(Some(c.f64()?.iter().collect()))
}

/// Pairs per split and direction of a pairs table.
fn split_sizes(stage: &str, df: &DataFrame) -> anyhow::Result<Vec<SplitSize>> {
    let (split, src, tgt) = (
        strings(df, "split")?,
        strings(df, "src_lang")?,
        strings(df, "tgt_lang")?,
    );
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for i in 0..df.height() {
        let direction = format!(
            "{}-{}",
            src[i].as_deref().unwrap_or("?"),
            tgt[i].as_deref().unwrap_or("?")
        );
        *counts
            .entry((split[i].clone().unwrap_or_default(), direction))
            .or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|((split, direction), rows)| SplitSize {
            stage: stage.to_string(),
            split,
            direction,
            rows,
        })
        .collect())
}

/// The training and validation loss of a train.lora `loss` table.
fn loss_curve(stage: &str, df: &DataFrame) -> anyhow::Result<LossCurve> {
    let missing = |c: &str| format!("`{stage}.loss` has no column `{c}`");
    let step = floats(df, "step")?.with_context(|| missing("step"))?;
    let loss = floats(df, "loss")?.with_context(|| missing("loss"))?;
    let val = floats(df, "val_loss")?.unwrap_or_default();
    let points = |ys: &[Option<f64>]| -> Vec<(f64, f64)> {
        step.iter()
            .zip(ys)
            .filter_map(|(x, y)| Some((((*x)?), (*y)?)))
            .collect()
    };
    Ok(LossCurve {
        adapter: stage.to_string(),
        train: points(&loss),
        validation: points(&val),
    })
}

/// The metrics a sweep plots: a scores table's column per metric.
const SWEEP_METRICS: [(&str, &str); 3] =
    [("BLEU", "bleu"), ("chrF++", "chrfpp"), ("COMET", "comet")];

/// Sweep plots: for every matrix axis whose value differs between the scored instances, each metric per test set
/// over the axis values, one series per direction (and per value of the other axes).
///
/// The axis values of each instance come from the pipeline file planned again with the run's overrides; when it
/// no longer plans (moved or edited), there are no sweeps.
fn sweeps(run: &RunRecord, scores: &[(String, DataFrame)]) -> anyhow::Result<Vec<Sweep>> {
    let registry = crate::stages::registry();
    let overrides: Vec<alinea_engine::plan::Override> = run
        .overrides
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    let Ok(plan) = alinea_engine::plan::load(&run.file, &registry, &overrides) else {
        return Ok(Vec::new());
    };
    let axes_of = |name: &str| {
        plan.stages
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.axes.clone())
    };
    let scored: Vec<(BTreeMap<String, serde_json::Value>, &DataFrame)> = scores
        .iter()
        .filter_map(|(name, df)| Some((axes_of(name)?, df)))
        .collect();
    let names: BTreeSet<&String> = scored.iter().flat_map(|(a, _)| a.keys()).collect();
    let mut out = Vec::new();
    for axis in names {
        let mut values: Vec<serde_json::Value> = Vec::new();
        for (a, _) in &scored {
            if let Some(v) = a.get(axis)
                && !values.contains(v)
            {
                values.push(v.clone());
            }
        }
        if values.len() < 2 {
            continue;
        }
        let numeric = values.iter().all(serde_json::Value::is_number);
        if numeric {
            values.sort_by(|a, b| {
                a.as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&b.as_f64().unwrap_or(0.0))
            });
        }
        let label =
            |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        for (metric, column) in SWEEP_METRICS {
            let mut by_test_set: BTreeMap<String, BTreeMap<String, Vec<(usize, f64)>>> =
                BTreeMap::new();
            for (a, df) in &scored {
                let Some(x) = a.get(axis).and_then(|v| values.iter().position(|u| u == v)) else {
                    continue;
                };
                let Some(ys) = floats(df, column)? else {
                    continue;
                };
                let (ts, dir) = (strings(df, "test_set")?, strings(df, "direction")?);
                // The other axes of the instance name the series, so that their values are not averaged.
                let rest: Vec<String> = a
                    .iter()
                    .filter(|(k, _)| *k != axis)
                    .map(|(k, v)| format!("{k}={}", label(v)))
                    .collect();
                for i in 0..df.height() {
                    let Some(y) = ys[i] else { continue };
                    let mut series = dir[i].clone().unwrap_or_default();
                    if !rest.is_empty() {
                        series = format!("{series} · {}", rest.join(" "));
                    }
                    by_test_set
                        .entry(ts[i].clone().unwrap_or_default())
                        .or_default()
                        .entry(series)
                        .or_default()
                        .push((x, y));
                }
            }
            for (test_set, series) in by_test_set {
                out.push(Sweep {
                    axis: axis.clone(),
                    test_set,
                    metric: metric.to_string(),
                    values: values.iter().map(label).collect(),
                    numeric,
                    series: series
                        .into_iter()
                        .map(|(name, mut pts)| {
                            pts.sort_by_key(|p| p.0);
                            (name, pts)
                        })
                        .collect(),
                });
            }
        }
    }
    Ok(out)
}
