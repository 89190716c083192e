//! The executor: walks a [`Plan`], reuses cached results, runs what is stale (independent stages concurrently),
//! stores outputs, and explains why each stage ran.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::MultiProgress;
use serde::Serialize;

use super::ctx::{StageCtx, UpstreamTable};
use super::error::{StageError, StoreError};
use super::files::StatCache;
use super::key::{CodeManifest, KeyComponents, KindCode, short};
use super::plan::{InputRef, Plan, PlannedStage};
use super::stage::{DynStage, Registry, SlotKind};
use super::store::{ActionRecord, InputFile, ObjectKind, OutputRef, StageRef, Store};

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stages run at the same time.
    pub jobs: usize,
    /// Keep running independent branches after a failure.
    pub keep_going: bool,
    /// Worker threads of the rayon pool (recorded in provenance).
    pub threads: usize,
    /// Stage instances to recompute even when cached; their new outputs are compared with the cached ones
    /// byte for byte, and the stage's reason says whether they matched.
    pub force: BTreeSet<String>,
}

/// Outcome of one stage in a run.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Computed in this run.
    Ran,
    /// Reused from the store.
    Cached,
    /// Its run failed.
    Failed,
    /// Not run because an input failed (or the run stopped).
    Skipped,
}

/// What happened to one stage, as `run --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Instance name.
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// Outcome.
    pub status: Status,
    /// Why it ran (or why it was skipped, or the error).
    pub reason: String,
    /// Wall time in this run, milliseconds.
    pub duration_ms: u64,
    /// The action key.
    pub key: Option<String>,
    /// Output objects.
    pub outputs: Vec<OutputRef>,
    /// Rows of the main table.
    pub rows: Option<u64>,
}

/// The result of [`run`].
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Pipeline name.
    pub pipeline: String,
    /// One entry per stage instance, in plan order.
    pub stages: Vec<StageReport>,
    /// Wall time of the whole run, milliseconds.
    pub wall_ms: u64,
}

impl RunReport {
    /// Whether every stage ran or was cached.
    pub fn succeeded(&self) -> bool {
        self.stages
            .iter()
            .all(|s| matches!(s.status, Status::Ran | Status::Cached))
    }
}

/// Failures of the executor itself (as opposed to a stage's).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An input's digests and the files behind path inputs.
struct ResolvedInputs {
    digests: BTreeMap<String, Vec<String>>,
    files: BTreeMap<String, (std::path::PathBuf, Vec<InputFile>)>,
    tables: BTreeMap<String, Vec<UpstreamTable>>,
    stages: BTreeMap<String, Vec<String>>,
}

fn pick_output<'a>(
    outputs: &'a [OutputRef],
    wanted: Option<&str>,
    slot_kind: SlotKind,
) -> Option<&'a OutputRef> {
    let default_kind = if slot_kind == SlotKind::Blob {
        ObjectKind::Blob
    } else {
        ObjectKind::Table
    };
    match wanted {
        Some(name) => outputs.iter().find(|o| o.name == name),
        None => outputs
            .iter()
            .find(|o| o.kind == default_kind)
            .or(outputs.first()),
    }
}

/// Digest of a path input: over the (relative path, digest) list of its files.
fn digest_of_files(root: &Path, files: &[InputFile]) -> String {
    let mut h = blake3::Hasher::new();
    for f in files {
        let rel = f.path.strip_prefix(root).unwrap_or(&f.path);
        h.update(rel.to_string_lossy().as_bytes());
        h.update(&[0]);
        h.update(f.digest.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

fn resolve_inputs(
    stage: &PlannedStage,
    kind: &dyn DynStage,
    done: &BTreeMap<String, Vec<OutputRef>>,
    stat_cache: &Mutex<StatCache>,
) -> Result<ResolvedInputs, StageError> {
    let mut r = ResolvedInputs {
        digests: BTreeMap::new(),
        files: BTreeMap::new(),
        tables: BTreeMap::new(),
        stages: BTreeMap::new(),
    };
    for (slot, refs) in &stage.inputs {
        let slot_kind = kind
            .inputs()
            .iter()
            .find(|s| s.name == slot)
            .map(|s| s.kind)
            .unwrap_or(SlotKind::Table);
        for input in refs {
            match input {
                InputRef::Stage {
                    stage: up,
                    output: None,
                } if slot_kind == SlotKind::Folder => {
                    let outs = done.get(up).ok_or_else(|| StageError::Input {
                        slot: slot.clone(),
                        message: format!("upstream `{up}` has no result"),
                    })?;
                    for out in outs.iter().filter(|o| o.kind == ObjectKind::Blob) {
                        r.digests
                            .entry(slot.clone())
                            .or_default()
                            .push(format!("{}:{}", out.name, out.digest));
                        r.tables
                            .entry(slot.clone())
                            .or_default()
                            .push(UpstreamTable {
                                stage: up.clone(),
                                output: out.clone(),
                            });
                    }
                    r.stages.entry(slot.clone()).or_default().push(up.clone());
                }
                InputRef::Stage { stage: up, output } => {
                    let outs = done.get(up).ok_or_else(|| StageError::Input {
                        slot: slot.clone(),
                        message: format!("upstream `{up}` has no result"),
                    })?;
                    let out = pick_output(outs, output.as_deref(), slot_kind).ok_or_else(|| {
                        StageError::Input {
                            slot: slot.clone(),
                            message: format!(
                                "stage `{up}` has no output `{}`; its outputs are: {}",
                                output.as_deref().unwrap_or("(table)"),
                                outs.iter()
                                    .map(|o| o.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }
                    })?;
                    r.digests
                        .entry(slot.clone())
                        .or_default()
                        .push(out.digest.clone());
                    r.tables
                        .entry(slot.clone())
                        .or_default()
                        .push(UpstreamTable {
                            stage: up.clone(),
                            output: out.clone(),
                        });
                    r.stages.entry(slot.clone()).or_default().push(up.clone());
                }
                InputRef::Path(path) => {
                    debug_assert!(matches!(slot_kind, SlotKind::Path | SlotKind::Folder));
                    let listed = kind.input_files(&stage.params, slot, path)?;
                    let mut files = Vec::with_capacity(listed.len());
                    for f in listed {
                        let stamp = file_stamp(&f);
                        let digest = stat_cache
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .digest(&f)
                            .map_err(StageError::io(&f))?;
                        files.push(InputFile {
                            path: f,
                            digest,
                            stamp,
                        });
                    }
                    r.digests
                        .entry(slot.clone())
                        .or_default()
                        .push(digest_of_files(path, &files));
                    r.files.insert(slot.clone(), (path.clone(), files));
                }
            }
        }
    }
    Ok(r)
}

fn file_stamp(path: &Path) -> Option<(u64, SystemTime)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.len(), m.modified().ok()?)))
}

/// Fails when a path input changed while the stage ran. Stages that load files themselves (model folders) are
/// not re-hashed on read, so this cheap check keeps the recorded key honest for them too.
fn check_inputs_unchanged(
    files: &BTreeMap<String, (std::path::PathBuf, Vec<InputFile>)>,
) -> Result<(), StageError> {
    for f in files.values().flat_map(|(_, fs)| fs) {
        if f.stamp.is_some() && file_stamp(&f.path) != f.stamp {
            return Err(StageError::BadInput {
                path: f.path.clone(),
                line: 0,
                message:
                    "file changed while the stage was running; rerun to pick up the new content"
                        .into(),
            });
        }
    }
    Ok(())
}

fn components(
    stage: &PlannedStage,
    kind: &dyn DynStage,
    digests: BTreeMap<String, Vec<String>>,
) -> KeyComponents {
    KeyComponents {
        kind: stage.kind.clone(),
        fingerprint: kind.fingerprint(),
        version: stage.version.clone(),
        params: keyed_params(&stage.params, kind.unkeyed_params()),
        inputs: digests,
    }
}

/// The reason of a `--force`d stage: whether its new outputs are byte-identical to the cached ones.
fn forced_reason(before: &ActionRecord, after: &ActionRecord) -> String {
    let digest_of = |rec: &ActionRecord, name: &str| {
        rec.outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.digest.clone())
    };
    let differing: Vec<&str> = after
        .outputs
        .iter()
        .filter(|o| digest_of(before, &o.name).as_deref() != Some(o.digest.as_str()))
        .map(|o| o.name.as_str())
        .collect();
    if differing.is_empty() && before.outputs.len() == after.outputs.len() {
        "forced: outputs byte-identical to the cached result".into()
    } else {
        format!(
            "forced: outputs DIFFER from the cached result ({}): the stage is not deterministic",
            differing.join(", ")
        )
    }
}

/// `params` without the kind's [`crate::Stage::UNKEYED_PARAMS`], which cannot change the bytes.
fn keyed_params(params: &serde_json::Value, unkeyed: &[&str]) -> serde_json::Value {
    let mut keyed = params.clone();
    if let Some(fields) = keyed.as_object_mut() {
        for name in unkeyed {
            fields.remove(*name);
        }
    }
    keyed
}

/// Why a stage with `now` components is not cached, against what the pipeline's ref last pointed at.
fn explain(
    store: &Store,
    previous: Option<&StageRef>,
    now: &KeyComponents,
    code: &KindCode,
) -> String {
    let Some(prev) = previous else {
        return "never run".into();
    };
    match store.get_action(&prev.key) {
        Ok(Some(rec)) => {
            let (now_code, then) = (
                CodeManifest::of(code),
                store.get_code(&rec.components.fingerprint),
            );
            let why =
                now.explain_change(&rec.components, then.as_ref().map(|then| (&now_code, then)));
            if why.is_empty() {
                "output objects missing from the store".into()
            } else {
                why.join("; ")
            }
        }
        _ => "previous record missing".into(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs one stage whose inputs are resolved: stores its outputs and its record.
#[allow(clippy::too_many_arguments)] // each argument is a distinct piece of the run; a struct would only rename them
fn execute(
    store: &Store,
    stage: &PlannedStage,
    kind: &dyn DynStage,
    comps: KeyComponents,
    key: &str,
    inputs: ResolvedInputs,
    progress: &MultiProgress,
    threads: usize,
) -> Result<ActionRecord, StageError> {
    let started_at = unix_now();
    let t0 = Instant::now();
    let ctx = StageCtx {
        store: store.clone(),
        name: stage.name.clone(),
        tables: inputs.tables,
        paths: inputs.files.clone(),
        work_dir: store.work_dir(key),
        progress: progress.clone(),
        threads,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kind.run(&stage.params, &ctx)
    }));
    let mut outputs = match result {
        Ok(r) => {
            let outputs = r?;
            check_inputs_unchanged(&inputs.files)?;
            // Declarations cannot drift: what was produced is what the kind declares for these parameters.
            let declared = kind.outputs(&stage.params)?;
            super::contract::check_outputs(&declared, &outputs.tables, &outputs.blobs).map_err(|m| {
                StageError::Other(format!(
                    "outputs do not match the declaration of kind `{}` (a bug in the kind): {m}",
                    stage.kind
                ))
            })?;
            outputs
        }
        Err(panic) => {
            return Err(StageError::Panicked(super::table::panic_message(
                panic.as_ref(),
            )));
        }
    };
    let mut refs = Vec::new();
    for (name, df) in outputs.tables.iter_mut() {
        let bytes = super::table::encode_parquet(df)?;
        let digest = store.put_bytes(&bytes)?;
        refs.push(OutputRef {
            name: name.clone(),
            digest,
            kind: ObjectKind::Table,
            bytes: bytes.len() as u64,
            rows: Some(df.height() as u64),
        });
    }
    for (name, bytes) in &outputs.blobs {
        let digest = store.put_bytes(bytes)?;
        refs.push(OutputRef {
            name: name.clone(),
            digest,
            kind: ObjectKind::Blob,
            bytes: bytes.len() as u64,
            rows: None,
        });
    }
    let record = ActionRecord {
        key: key.to_string(),
        stage: stage.name.clone(),
        components: comps,
        input_files: inputs
            .files
            .into_iter()
            .map(|(slot, (_, files))| (slot, files))
            .collect(),
        input_stages: inputs.stages,
        outputs: refs,
        stats: outputs.stats,
        started_at,
        duration_ms: t0.elapsed().as_millis() as u64,
        threads,
        alinea_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    store.put_code(
        &record.components.fingerprint,
        &CodeManifest::of(kind.code()),
    )?;
    store.put_action(&record)?;
    // The scratch space served its purpose once the result is recorded.
    let _ = std::fs::remove_dir_all(store.work_dir(key));
    Ok(record)
}

#[allow(clippy::large_enum_variant)] // one per stage, moved once through a channel: boxing buys nothing
enum Outcome {
    Done {
        record: ActionRecord,
        status: Status,
        reason: String,
        ms: u64,
    },
    Failed {
        key: Option<String>,
        reason: String,
        /// The corrupt store object that made it fail, if that was the cause (its producer is recomputed).
        corrupt: Option<String>,
        ms: u64,
    },
}

/// What a worker hands back on failure: the action key (when known) and the error.
type Failure = (Option<String>, StageError);

/// Whether `pref` says something other than what was last written.
fn pref_dirty(pref: &super::store::PipelineRef, written: &super::store::PipelineRef) -> bool {
    pref.file != written.file
        || pref.stages.len() != written.stages.len()
        || pref
            .stages
            .iter()
            .zip(&written.stages)
            .any(|((a, x), (b, y))| a != b || x.kind != y.kind || x.key != y.key)
}

/// Runs a plan against a store. The caller holds the store's write lock.
pub fn run(
    plan: &Plan,
    registry: &Registry,
    store: &Store,
    opts: &RunOptions,
    progress: &MultiProgress,
) -> Result<RunReport, ExecError> {
    let t0 = Instant::now();
    let stat_path = store.root().join("statcache.json");
    let stat_cache = Mutex::new(StatCache::load(&stat_path));
    let mut pref = store.get_ref(&plan.name)?.unwrap_or_default();
    let previous = pref.stages.clone();
    pref.file = plan.file.clone();
    pref.stages
        .retain(|name, _| plan.stages.iter().any(|s| &s.name == name));

    let n = plan.stages.len();
    let index: BTreeMap<&str, usize> = plan
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<BTreeSet<usize>> = plan
        .stages
        .iter()
        .map(|s| s.upstream().filter_map(|u| index.get(u).copied()).collect())
        .collect();
    let mut reports: Vec<Option<StageReport>> = vec![None; n];
    let mut done: BTreeMap<String, Vec<OutputRef>> = BTreeMap::new();
    let mut started = vec![false; n];
    let mut stop = false;
    // Producers recomputed in this run because a consumer found their output corrupt, and the reasons to report.
    let mut recomputed: BTreeSet<usize> = BTreeSet::new();
    let mut retry_reason: BTreeMap<usize, String> = BTreeMap::new();
    // What the ref file says, so that it is rewritten only when it changes.
    let mut written = store.get_ref(&plan.name)?.unwrap_or_default();

    std::thread::scope(|scope| -> Result<(), ExecError> {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Outcome)>();
        let mut running = 0usize;
        loop {
            // Mark stages whose inputs failed as skipped; start ready ones up to `jobs`.
            for i in 0..n {
                if started[i] {
                    continue;
                }
                let failed_dep = deps[i].iter().find(|&&d| {
                    matches!(
                        reports[d].as_ref().map(|r| r.status),
                        Some(Status::Failed | Status::Skipped)
                    )
                });
                if let Some(&d) = failed_dep {
                    started[i] = true;
                    let s = &plan.stages[i];
                    reports[i] = Some(StageReport {
                        name: s.name.clone(),
                        kind: s.kind.clone(),
                        status: Status::Skipped,
                        reason: format!("input `{}` did not complete", plan.stages[d].name),
                        duration_ms: 0,
                        key: None,
                        outputs: vec![],
                        rows: None,
                    });
                    continue;
                }
                if stop
                    || running >= opts.jobs.max(1)
                    || !deps[i].iter().all(|&d| reports[d].is_some())
                {
                    continue;
                }
                started[i] = true;
                running += 1;
                let stage = &plan.stages[i];
                let kind = registry.get(&stage.kind).expect("plan validated kinds");
                let tx = tx.clone();
                let done_snapshot: BTreeMap<String, Vec<OutputRef>> = stage
                    .upstream()
                    .filter_map(|u| done.get(u).map(|o| (u.to_string(), o.clone())))
                    .collect();
                let prev = previous.get(&stage.name).cloned();
                let stat_cache = &stat_cache;
                #[allow(clippy::result_large_err)]
                // the error carries the stage's typed error to the report, once
                scope.spawn(move || {
                    let t = Instant::now();
                    let work = || -> Result<(ActionRecord, Status, String), Failure> {
                        let inputs = resolve_inputs(stage, kind, &done_snapshot, stat_cache)
                            .map_err(|e| (None, e))?;
                        let comps = components(stage, kind, inputs.digests.clone());
                        let key = comps.action_key();
                        let forced = opts.force.contains(&stage.name);
                        let mut cached = None;
                        // An unreadable record counts as absent: the stage reruns and rewrites it.
                        let reason = match store.get_action(&key) {
                            Ok(Some(record)) if store.outputs_verified(&record, stat_cache) => {
                                if !forced {
                                    return Ok((record, Status::Cached, "cached".to_string()));
                                }
                                cached = Some(record);
                                String::new()
                            }
                            Ok(Some(_)) => {
                                "output objects missing from the store (or corrupt: quarantined)"
                                    .to_string()
                            }
                            _ => explain(store, prev.as_ref(), &comps, kind.code()),
                        };
                        // So that `gc` keeps this attempt's checkpoints if the run is interrupted.
                        store
                            .mark_attempt(&key, &plan.name, &stage.name)
                            .map_err(|e| (Some(key.clone()), e.into()))?;
                        let record = execute(
                            store,
                            stage,
                            kind,
                            comps,
                            &key,
                            inputs,
                            progress,
                            opts.threads,
                        )
                        .map_err(|e| (Some(key.clone()), e))?;
                        let reason = match (&cached, forced) {
                            (Some(before), _) => forced_reason(before, &record),
                            (None, true) => format!("forced (nothing cached to compare): {reason}"),
                            (None, false) => reason,
                        };
                        Ok((record, Status::Ran, reason))
                    };
                    // A panic anywhere in the worker (input listing and hashing included) fails this stage;
                    // the worker always reports, so the scheduler never waits for a stage that died.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                        .unwrap_or_else(|panic| {
                            Err((
                                None,
                                StageError::Panicked(super::table::panic_message(panic.as_ref())),
                            ))
                        });
                    let ms = t.elapsed().as_millis() as u64;
                    let outcome = match outcome {
                        Ok((record, status, reason)) => Outcome::Done {
                            record,
                            status,
                            reason,
                            ms,
                        },
                        Err((key, e)) => Outcome::Failed {
                            key,
                            corrupt: e.corrupt_object().map(str::to_string),
                            reason: e.to_string(),
                            ms,
                        },
                    };
                    let _ = tx.send((i, outcome));
                });
            }
            if running == 0 {
                break;
            }
            // Workers always send (their work runs under catch_unwind); should one vanish anyway, stop
            // waiting rather than hang.
            let Ok((i, outcome)) = rx.recv() else {
                break;
            };
            running -= 1;
            let stage = &plan.stages[i];
            // A stage that failed on a corrupt input object (now quarantined): recompute the stage that produced
            // it, then this one, in the same run (once per producer, so a producer whose output is corrupt again
            // fails the stage instead of looping).
            if let Outcome::Failed {
                corrupt: Some(digest),
                ..
            } = &outcome
            {
                let producer = deps[i].iter().copied().find(|&d| {
                    done.get(&plan.stages[d].name)
                        .is_some_and(|outs| outs.iter().any(|o| &o.digest == digest))
                });
                if let Some(d) = producer.filter(|d| recomputed.insert(*d)) {
                    let up = &plan.stages[d].name;
                    done.remove(up);
                    reports[d] = None;
                    started[d] = false;
                    started[i] = false;
                    retry_reason.insert(
                        d,
                        format!(
                            "output {} was corrupt (quarantined); recomputed",
                            short(digest)
                        ),
                    );
                    retry_reason.insert(
                        i,
                        format!(
                            "input from `{up}` was corrupt (quarantined); reran after recomputing it"
                        ),
                    );
                    continue;
                }
                // Another consumer of the same producer already triggered its recompute: wait for it.
                if deps[i]
                    .iter()
                    .any(|d| recomputed.contains(d) && reports[*d].is_none())
                    && retry_reason
                        .insert(
                            i,
                            "input was corrupt (quarantined); reran after recomputing it".into(),
                        )
                        .is_none()
                {
                    started[i] = false;
                    continue;
                }
            }
            reports[i] = Some(match outcome {
                Outcome::Done {
                    record,
                    status,
                    mut reason,
                    ms,
                } => {
                    if let Some(why) = retry_reason.remove(&i) {
                        reason = why;
                    }
                    let rows = record
                        .outputs
                        .iter()
                        .find(|o| o.kind == ObjectKind::Table)
                        .and_then(|o| o.rows);
                    done.insert(stage.name.clone(), record.outputs.clone());
                    pref.stages.insert(
                        stage.name.clone(),
                        StageRef {
                            kind: stage.kind.clone(),
                            key: record.key.clone(),
                        },
                    );
                    // Only when this stage's entry changed (a cached stage with an unchanged key writes nothing):
                    // a run killed later still finds every completed stage in the ref (gc keeps its objects).
                    if pref_dirty(&pref, &written) {
                        store.put_ref(&plan.name, &pref)?;
                        written = pref.clone();
                    }
                    StageReport {
                        name: stage.name.clone(),
                        kind: stage.kind.clone(),
                        status,
                        reason,
                        duration_ms: ms,
                        key: Some(record.key),
                        outputs: record.outputs,
                        rows,
                    }
                }
                Outcome::Failed {
                    key, reason, ms, ..
                } => {
                    if !opts.keep_going {
                        stop = true;
                    }
                    StageReport {
                        name: stage.name.clone(),
                        kind: stage.kind.clone(),
                        status: Status::Failed,
                        reason,
                        duration_ms: ms,
                        key,
                        outputs: vec![],
                        rows: None,
                    }
                }
            });
        }
        Ok(())
    })?;

    stat_cache
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .save(&stat_path)?;
    store.put_ref(&plan.name, &pref)?;
    let stages = reports
        .into_iter()
        .zip(&plan.stages)
        .map(|(r, s)| {
            r.unwrap_or_else(|| StageReport {
                name: s.name.clone(),
                kind: s.kind.clone(),
                status: Status::Skipped,
                reason:
                    "run stopped after a failure (use --keep-going to continue independent stages)"
                        .into(),
                duration_ms: 0,
                key: None,
                outputs: vec![],
                rows: None,
            })
        })
        .collect();
    Ok(RunReport {
        pipeline: plan.name.clone(),
        stages,
        wall_ms: t0.elapsed().as_millis() as u64,
    })
}

/// Freshness of one stage, as `alinea status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    /// Instance name.
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// `fresh` (a run would reuse it) or `stale`.
    pub state: &'static str,
    /// Why it is stale.
    pub reasons: Vec<String>,
}

/// Says which stages a run would recompute and why, without running anything.
pub fn status(
    plan: &Plan,
    registry: &Registry,
    store: &Store,
) -> Result<Vec<StageStatus>, ExecError> {
    let stat_path = store.root().join("statcache.json");
    let stat_cache = Mutex::new(StatCache::load(&stat_path));
    let previous = store.get_ref(&plan.name)?.unwrap_or_default().stages;
    let mut done: BTreeMap<String, Vec<OutputRef>> = BTreeMap::new();
    let mut out = Vec::new();
    for stage in &plan.stages {
        let kind = registry.get(&stage.kind).expect("plan validated kinds");
        let stale_ups: Vec<&str> = stage
            .upstream()
            .filter(|u| !done.contains_key(*u))
            .collect();
        let (state, reasons) = if !stale_ups.is_empty() {
            let mut uniq: Vec<&str> = stale_ups.clone();
            uniq.dedup();
            (
                "stale",
                uniq.iter()
                    .map(|u| format!("input stage `{u}` is stale"))
                    .collect(),
            )
        } else {
            match resolve_inputs(stage, kind, &done, &stat_cache) {
                Err(e) => ("stale", vec![format!("cannot hash inputs: {e}")]),
                Ok(inputs) => {
                    let comps = components(stage, kind, inputs.digests);
                    let key = comps.action_key();
                    match store.get_action(&key)? {
                        Some(rec) if store.outputs_verified(&rec, &stat_cache) => {
                            done.insert(stage.name.clone(), rec.outputs);
                            ("fresh", vec![])
                        }
                        Some(_) => (
                            "stale",
                            vec!["output objects missing from the store".into()],
                        ),
                        None => (
                            "stale",
                            vec![explain(
                                store,
                                previous.get(&stage.name),
                                &comps,
                                kind.code(),
                            )],
                        ),
                    }
                }
            }
        };
        out.push(StageStatus {
            name: stage.name.clone(),
            kind: stage.kind.clone(),
            state,
            reasons,
        });
    }
    stat_cache
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .save(&stat_path)?;
    Ok(out)
}

/// The plan's graph in Graphviz `dot` or Mermaid syntax.
pub fn render_dag(plan: &Plan, format: &str) -> String {
    let mut out = String::new();
    let mermaid = format == "mermaid";
    let id = |name: &str| name.replace('-', "_");
    if mermaid {
        out.push_str("flowchart LR\n");
    } else {
        out.push_str(&format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
            plan.name
        ));
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for s in &plan.stages {
        if mermaid {
            out.push_str(&format!(
                "  {}[\"{}<br/><i>{}</i>\"]\n",
                id(&s.name),
                s.name,
                s.kind
            ));
        } else {
            out.push_str(&format!(
                "  \"{}\" [label=\"{}\\n{}\"];\n",
                s.name, s.name, s.kind
            ));
        }
        for (slot, refs) in &s.inputs {
            for r in refs {
                let from = match r {
                    InputRef::Stage { stage, .. } => stage.clone(),
                    InputRef::Path(p) => {
                        let label = p
                            .strip_prefix(&plan.root)
                            .unwrap_or(p)
                            .display()
                            .to_string();
                        if let Some(fid) = files.get(&label) {
                            fid.clone()
                        } else {
                            let fid = format!("file_{}", files.len());
                            if mermaid {
                                out.push_str(&format!("  {fid}[(\"{label}\")]\n"));
                            } else {
                                out.push_str(&format!(
                                    "  \"{fid}\" [label=\"{label}\", shape=folder];\n"
                                ));
                            }
                            files.insert(label, fid.clone());
                            fid
                        }
                    }
                };
                if mermaid {
                    out.push_str(&format!("  {} -->|{}| {}\n", id(&from), slot, id(&s.name)));
                } else {
                    out.push_str(&format!(
                        "  \"{}\" -> \"{}\" [label=\"{}\"];\n",
                        from, s.name, slot
                    ));
                }
            }
        }
    }
    if !mermaid {
        out.push_str("}\n");
    }
    out
}
