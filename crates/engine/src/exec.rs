//! The executor: walks a [`Plan`], reuses cached results, runs what is stale (independent stages concurrently),
//! stores outputs, and explains why each stage ran.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::ctx::{StageCtx, UpstreamTable};
use super::error::{StageError, StoreError};
use super::files::{StatCache, file_stamp};
use super::key::{CodeManifest, KeyComponents, KindCode, short};
use super::plan::{InputRef, Plan, PlannedStage};
use super::slurm::{Resources, SlurmConfig};
use super::stage::{BlobData, DynStage, Placement, Registry, SlotKind};
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
    /// Run stale stages as Slurm jobs (stages of [`Placement::Local`] kinds, and `local = true` ones, still run
    /// here); `None` runs everything in this process.
    pub slurm: Option<SlurmConfig>,
    /// A cache beyond this machine, consulted on a local miss.
    pub remote: Option<std::sync::Arc<dyn RemoteCache>>,
    /// Whether what the run computes is pushed to `remote`.
    pub push: bool,
    /// Run every stage once more (a cached one: once) without storing, and report outputs whose digests differ.
    pub check_determinism: bool,
    /// Stage instances to recompute even when cached; their new outputs are compared with the cached ones
    /// byte for byte, and the stage's reason says whether they matched.
    pub force: BTreeSet<String>,
    /// How the run's overall progress (done / running / queued of N, elapsed) is shown. Display only: it never
    /// reaches a key, a record or an output.
    pub overall: OverallProgress,
    /// Bytes the stages running here at once may declare in `resources.mem` together ([`crate::memory`]);
    /// `None`: no limit.
    pub memory: Option<u64>,
}

/// How [`run`] shows its overall progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverallProgress {
    /// One line redrawn in place above the stages' bars, through the run's `MultiProgress` (which draws only on a
    /// terminal, so logs and pipes stay clean).
    #[default]
    Bar,
    /// A plain line each time a stage starts or ends, for logs that want it (`ALINEA_PROGRESS=plain`).
    Lines,
    /// Nothing.
    Off,
}

/// The overall progress of a run: how many stages are done, running and queued, and the time since it started.
struct Overall {
    mode: OverallProgress,
    bar: Option<ProgressBar>,
    total: usize,
    t0: Instant,
    last: Option<(usize, usize)>,
}

impl Overall {
    fn new(mode: OverallProgress, progress: &MultiProgress, total: usize, t0: Instant) -> Overall {
        let bar = (mode == OverallProgress::Bar).then(|| {
            let bar = progress.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} {bar:30} {pos}/{len} stages done · {msg} · {elapsed_precise}",
                )
                .expect("static template"),
            );
            bar.set_prefix("run");
            bar.set_message(format!("0 running · {total} queued"));
            // So that the elapsed time moves while one long stage runs.
            bar.enable_steady_tick(std::time::Duration::from_secs(1));
            bar
        });
        Overall {
            mode,
            bar,
            total,
            t0,
            last: None,
        }
    }

    /// Shows the counts when they changed since last shown.
    fn show(&mut self, done: usize, running: usize) {
        if self.last == Some((done, running)) {
            return;
        }
        self.last = Some((done, running));
        let queued = self.total.saturating_sub(done + running);
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!("{running} running · {queued} queued"));
        } else if self.mode == OverallProgress::Lines {
            eprintln!(
                "progress: {done}/{} done, {running} running, {queued} queued, {:.1}s elapsed",
                self.total,
                self.t0.elapsed().as_secs_f64()
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What a remote cache answered for an action key.
#[derive(Debug)]
pub enum Fetch {
    /// The record, its objects now in the local store (downloaded and hash-checked) and its local record written.
    Hit(Box<ActionRecord>),
    /// No record.
    Miss,
    /// A record whose objects the remote cannot serve intact; why, for the report. The stage is recomputed.
    Unusable(String),
}

/// A cache shared beyond this machine (see `remote`): the executor asks it on a local miss and hands it what it
/// computed. Errors are messages for the report: a remote failure never fails a stage, which then runs locally.
pub trait RemoteCache: Send + Sync + std::fmt::Debug {
    /// The result of action `key`, brought into `store` when the remote holds it with every object intact.
    fn fetch(&self, store: &Store, key: &str) -> Result<Fetch, String>;
    /// Uploads a record's objects, then the record (never before its objects exist on the remote).
    fn push(&self, store: &Store, record: &ActionRecord) -> Result<(), String>;
    /// The remote record of `key`, downloading none of its objects.
    fn record(&self, key: &str) -> Result<Option<ActionRecord>, String>;
    /// Uploads those of these (digest, size) objects of `store` that the remote lacks; returns how many.
    fn ensure_objects(&self, store: &Store, objects: &[(String, u64)]) -> Result<usize, String>;
    /// Downloads one object into `store` (hash-checked), e.g. a job file placed there by the coordinator.
    fn download(&self, store: &Store, digest: &str) -> Result<(), String>;
    /// The remote records of `keys`, in order. A backend overrides this to send the requests in parallel.
    fn records(&self, keys: &[String]) -> Result<Vec<Option<ActionRecord>>, String> {
        keys.iter().map(|k| self.record(k)).collect()
    }
    /// Action key -> outputs of the remote records that pipeline `pipeline`'s remote ref names and the remote
    /// still holds, in a few requests; what it lacks, [`RemoteCache::records`] reads. Empty unless overridden.
    fn pipeline_outputs(
        &self,
        _pipeline: &str,
    ) -> Result<BTreeMap<String, Vec<OutputRef>>, String> {
        Ok(BTreeMap::new())
    }
    /// Which of these (digest, size) objects the remote lacks, in a bounded number of requests.
    fn missing(&self, objects: &[(String, u64)]) -> Result<Vec<String>, String>;
    /// The remote, for messages (no credentials).
    fn describe(&self) -> &str;
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
    /// With `--check-determinism`: the outputs whose digests differed between two runs (`name: a -> b`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nondeterministic: Vec<String>,
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
    /// What the run found and worked around (a damaged ref set aside), for the user to read.
    pub warnings: Vec<String>,
}

impl RunReport {
    /// Whether every stage ran or was cached.
    pub fn succeeded(&self) -> bool {
        self.stages
            .iter()
            .all(|s| matches!(s.status, Status::Ran | Status::Cached))
    }

    /// Whether no stage was found to produce different bytes from the same inputs.
    pub fn deterministic(&self) -> bool {
        self.stages.iter().all(|s| s.nondeterministic.is_empty())
    }
}

/// Failures of the executor itself (as opposed to a stage's).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The remote failed where no local fallback exists (`status --remote`).
    #[error("{0}")]
    Remote(String),
}

/// An input's digests and the files behind path inputs.
#[derive(Clone, Serialize, Deserialize)]
struct ResolvedInputs {
    digests: BTreeMap<String, Vec<String>>,
    files: BTreeMap<String, (std::path::PathBuf, Vec<InputFile>)>,
    tables: BTreeMap<String, Vec<UpstreamTable>>,
    stages: BTreeMap<String, Vec<String>>,
    /// Slots filled by a set of blobs as a folder (rather than by one table or blob).
    folders: BTreeSet<String>,
}

/// Everything a stage run needs once its inputs are resolved, as `alinea exec --job` reads it in a cluster job:
/// the stage's kind and canonical parameters, its key and key components, and its resolved inputs.
#[derive(Serialize, Deserialize)]
pub struct JobSpec {
    stage: String,
    kind: String,
    params: serde_json::Value,
    key: String,
    components: KeyComponents,
    inputs: ResolvedInputs,
    threads: usize,
    /// The pipeline's root (absolute), against which relative paths of parameters resolve.
    root: std::path::PathBuf,
}

impl JobSpec {
    /// The action key the job computes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The store objects the job reads: (digest, size) of every upstream output it takes.
    pub fn input_objects(&self) -> Vec<(String, u64)> {
        let mut objects: Vec<(String, u64)> = self
            .inputs
            .tables
            .values()
            .flatten()
            .map(|t| (t.output.digest.clone(), t.output.bytes))
            .collect();
        objects.sort();
        objects.dedup();
        objects
    }
}

/// Runs the job of a [`JobSpec`] (in a cluster job): checks the kind's code is the code the key was made with,
/// then runs the stage as the local executor does, storing outputs and the record.
pub fn execute_job(
    store: &Store,
    registry: &Registry,
    spec: JobSpec,
    progress: &MultiProgress,
) -> Result<ActionRecord, StageError> {
    let kind = registry.get(&spec.kind).ok_or_else(|| {
        StageError::Other(format!(
            "this alinea has no stage kind `{}`: the job was submitted by another build",
            spec.kind
        ))
    })?;
    if kind.fingerprint() != spec.components.fingerprint {
        return Err(StageError::Other(format!(
            "the code of kind `{}` here ({}) is not the code the job was keyed with ({}): the nodes run another build of alinea",
            spec.kind,
            kind.fingerprint(),
            spec.components.fingerprint
        )));
    }
    let stage = PlannedStage {
        name: spec.stage,
        base: String::new(),
        kind: spec.kind,
        params: spec.params,
        version: spec.components.version.clone(),
        inputs: BTreeMap::new(),
        axes: BTreeMap::new(),
        resources: Resources::default(),
        local: None,
    };
    let env = RunEnv {
        store,
        root: &spec.root,
        progress,
        threads: spec.threads,
        // A cluster job has its allocation to itself: Slurm enforces its `--mem`.
        memory: None,
    };
    execute(env, &stage, kind, spec.components, &spec.key, spec.inputs)
}

/// Whether a stage goes to the cluster executor: `local` in the pipeline decides, else the kind's placement.
fn on_cluster(stage: &PlannedStage, kind: &dyn DynStage) -> bool {
    match stage.local {
        Some(local) => !local,
        None => kind.placement() != Placement::Local,
    }
}

/// Runs a stale stage where the run's executor puts it.
fn dispatch(
    opts: &RunOptions,
    env: RunEnv,
    stage: &PlannedStage,
    kind: &dyn DynStage,
    comps: KeyComponents,
    key: &str,
    inputs: ResolvedInputs,
) -> Result<ActionRecord, StageError> {
    let Some(slurm) = opts.slurm.as_ref().filter(|_| on_cluster(stage, kind)) else {
        return execute(env, stage, kind, comps, key, inputs);
    };
    let spec = JobSpec {
        stage: stage.name.clone(),
        kind: stage.kind.clone(),
        params: stage.params.clone(),
        key: key.to_string(),
        components: comps,
        inputs,
        threads: env.threads,
        root: env.root.to_path_buf(),
    };
    let json = serde_json::to_vec_pretty(&spec).expect("job specs serialize");
    super::slurm::run_job(
        slurm,
        opts.remote.as_deref(),
        env.store,
        &super::slurm::Job {
            key,
            stage_name: &stage.name,
            spec_json: &json,
            input_objects: &spec.input_objects(),
            resources: &stage.resources,
            gpu_kind: kind.placement() == Placement::Gpu,
        },
    )
}

/// The outputs of an upstream stage that fill a slot, each with the file name a folder input gives it, and
/// whether they fill it as a folder.
fn pick_outputs(
    outputs: &[OutputRef],
    wanted: Option<&str>,
    slot_kind: SlotKind,
) -> (Vec<(OutputRef, String)>, bool) {
    let one = |o: &OutputRef| (vec![(o.clone(), o.name.clone())], false);
    let all_blobs = || {
        let blobs: Vec<(OutputRef, String)> = outputs
            .iter()
            .filter(|o| o.kind == ObjectKind::Blob)
            .map(|o| (o.clone(), o.name.clone()))
            .collect();
        (blobs, true)
    };
    match wanted {
        Some(name) => {
            if let Some(o) = outputs.iter().find(|o| o.name == name) {
                return one(o);
            }
            // A folder output: every file below `name/`, named relative to it.
            let prefix = format!("{name}/");
            let files: Vec<(OutputRef, String)> = outputs
                .iter()
                .filter_map(|o| Some((o.clone(), o.name.strip_prefix(&prefix)?.to_string())))
                .collect();
            (files, true)
        }
        None => match slot_kind {
            SlotKind::Folder => all_blobs(),
            // A stage with files is its files (a model, an adapter): its tables beside them are side products, such
            // as a loss curve, which `stage.loss` names. A stage of tables only is its main table.
            SlotKind::Any => match outputs.iter().find(|o| o.kind == ObjectKind::Table) {
                Some(t) if outputs.iter().all(|o| o.kind == ObjectKind::Table) => one(t),
                _ => all_blobs(),
            },
            _ => {
                let default_kind = if slot_kind == SlotKind::Blob {
                    ObjectKind::Blob
                } else {
                    ObjectKind::Table
                };
                match outputs
                    .iter()
                    .find(|o| o.kind == default_kind)
                    .or(outputs.first())
                {
                    Some(o) => one(o),
                    None => (Vec::new(), false),
                }
            }
        },
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

/// Resolves a stage's inputs to digests. With `rehash`, path inputs are hashed from their bytes whatever the
/// stat cache says (after a stage found one of its cached digests wrong).
fn resolve_inputs(
    stage: &PlannedStage,
    kind: &dyn DynStage,
    done: &BTreeMap<String, Vec<OutputRef>>,
    stat_cache: &Mutex<StatCache>,
    rehash: bool,
) -> Result<ResolvedInputs, StageError> {
    let mut r = ResolvedInputs {
        digests: BTreeMap::new(),
        files: BTreeMap::new(),
        tables: BTreeMap::new(),
        stages: BTreeMap::new(),
        folders: BTreeSet::new(),
    };
    for (slot, refs) in &stage.inputs {
        let slot_kind = super::stage::find_slot(kind.inputs(), slot)
            .map(|s| s.kind)
            .unwrap_or(SlotKind::Table);
        for input in refs {
            match input {
                InputRef::Stage { stage: up, output } => {
                    let outs = done.get(up).ok_or_else(|| StageError::Input {
                        slot: slot.clone(),
                        message: format!("upstream `{up}` has no result"),
                    })?;
                    let (picked, as_folder) = pick_outputs(outs, output.as_deref(), slot_kind);
                    if picked.is_empty() && !(as_folder && output.is_none()) {
                        return Err(StageError::Input {
                            slot: slot.clone(),
                            message: format!(
                                "stage `{up}` has no output `{}`; its outputs are: {}",
                                output.as_deref().unwrap_or("(table)"),
                                outs.iter()
                                    .map(|o| o.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        });
                    }
                    if as_folder {
                        r.folders.insert(slot.clone());
                    }
                    for (out, file) in picked {
                        // A folder's key names each file, so a rename inside it is a change.
                        r.digests
                            .entry(slot.clone())
                            .or_default()
                            .push(if as_folder {
                                format!("{file}:{}", out.digest)
                            } else {
                                out.digest.clone()
                            });
                        r.tables
                            .entry(slot.clone())
                            .or_default()
                            .push(UpstreamTable {
                                stage: up.clone(),
                                output: out,
                                file,
                            });
                    }
                    r.stages.entry(slot.clone()).or_default().push(up.clone());
                }
                InputRef::Path(path) => {
                    debug_assert!(matches!(
                        slot_kind,
                        SlotKind::Path | SlotKind::Folder | SlotKind::Any
                    ));
                    let listed = kind.input_files(&stage.params, slot, path)?;
                    let mut files = Vec::with_capacity(listed.len());
                    for f in listed {
                        let stamp = file_stamp(&f);
                        let mut cache = stat_cache.lock().unwrap_or_else(|p| p.into_inner());
                        if rehash {
                            cache.forget(&f);
                        }
                        let digest = cache.digest(&f).map_err(StageError::io(&f))?;
                        drop(cache);
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
    root: &Path,
) -> Result<KeyComponents, StageError> {
    Ok(KeyComponents {
        kind: stage.kind.clone(),
        fingerprint: kind.fingerprint(),
        version: stage.version.clone(),
        params: keyed_params(&stage.params, kind.unkeyed_params()),
        inputs: digests,
        ambient: kind.ambient(&stage.params, root)?.into_iter().collect(),
    })
}

/// The digest each output would be stored under, computed without storing anything.
fn digests_of(outputs: &super::stage::Outputs) -> Result<BTreeMap<String, String>, StageError> {
    let mut out = BTreeMap::new();
    for (name, df) in &outputs.tables {
        let mut df = df.clone();
        let bytes = super::table::encode_parquet(&mut df)?;
        out.insert(name.clone(), blake3::hash(&bytes).to_hex().to_string());
    }
    for (name, blob) in &outputs.blobs {
        let digest = match blob {
            BlobData::Bytes(b) => blake3::hash(b).to_hex().to_string(),
            BlobData::File(p) => super::files::hash_file(p).map_err(StageError::io(p))?,
        };
        out.insert(name.clone(), digest);
    }
    Ok(out)
}

/// Stores a table output: encoded into a file of the stage's scratch space, then moved into the store (hashed
/// as it streams), so the encoded bytes never sit in memory beside the table. Returns (digest, size).
fn put_table(
    store: &Store,
    work_dir: &Path,
    df: &mut polars::prelude::DataFrame,
) -> Result<(String, u64), StageError> {
    std::fs::create_dir_all(work_dir).map_err(StageError::io(work_dir))?;
    let file = tempfile::Builder::new()
        .prefix(".table-")
        .suffix(".parquet")
        .tempfile_in(work_dir)
        .map_err(StageError::io(work_dir))?;
    let mut w = std::io::BufWriter::new(file.as_file());
    super::table::encode_parquet_into(df, &mut w)?;
    std::io::Write::flush(&mut w).map_err(StageError::io(file.path()))?;
    drop(w);
    let path = file.into_temp_path();
    Ok(store.put_file(&path, true)?)
}

/// Runs the stage once more, in a scratch space of its own, and names the outputs whose digests differ from
/// `record`'s (`name: stored -> again`; an output present in only one run counts too). Nothing is stored.
fn determinism_check(
    env: RunEnv,
    stage: &PlannedStage,
    kind: &dyn DynStage,
    inputs: &ResolvedInputs,
    record: &ActionRecord,
) -> Result<Vec<String>, StageError> {
    let dir = env.store.work_dir(&format!("{}.again", record.key));
    let _ = std::fs::remove_dir_all(&dir);
    let _memory = env.hold_memory(stage);
    let again = run_kind(env, stage, kind, inputs, dir.clone()).and_then(|o| digests_of(&o));
    let _ = std::fs::remove_dir_all(&dir);
    let again = again?;
    let stored: BTreeMap<&str, &str> = record
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.digest.as_str()))
        .collect();
    let names: BTreeSet<&str> = stored
        .keys()
        .copied()
        .chain(again.keys().map(String::as_str))
        .collect();
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (
                stored.get(name).copied(),
                again.get(name).map(String::as_str),
            );
            (a != b).then(|| {
                format!(
                    "{name}: {} -> {}",
                    a.map(short).unwrap_or("(absent)"),
                    b.map(short).unwrap_or("(absent)")
                )
            })
        })
        .collect())
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

/// What every stage run of one executor call shares.
#[derive(Clone, Copy)]
struct RunEnv<'a> {
    store: &'a Store,
    /// The pipeline's root (relative paths of parameters resolve against it).
    root: &'a Path,
    progress: &'a MultiProgress,
    threads: usize,
    /// The run's memory budget, which every local execution of a stage that declares `resources.mem` waits on.
    memory: Option<&'a crate::memory::MemoryBudget>,
}

impl RunEnv<'_> {
    /// Holds the memory `stage` declares until the grant is dropped (at once when it declares none).
    fn hold_memory(&self, stage: &PlannedStage) -> Option<crate::memory::MemoryGrant<'_>> {
        let need = stage.resources.mem.as_ref()?.bytes();
        Some(self.memory?.acquire(need))
    }
}

/// Runs the kind on resolved inputs with `work_dir` as its scratch space and checks what it produced against
/// its declaration.
fn run_kind(
    env: RunEnv,
    stage: &PlannedStage,
    kind: &dyn DynStage,
    inputs: &ResolvedInputs,
    work_dir: std::path::PathBuf,
) -> Result<super::stage::Outputs, StageError> {
    let ctx = StageCtx {
        store: env.store.clone(),
        name: stage.name.clone(),
        tables: inputs.tables.clone(),
        paths: inputs.files.clone(),
        folders: inputs.folders.clone(),
        work_dir,
        root: env.root.to_path_buf(),
        progress: env.progress.clone(),
        threads: env.threads,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kind.run(&stage.params, &ctx)
    }));
    match result {
        Ok(r) => {
            let outputs = r?;
            check_inputs_unchanged(&inputs.files)?;
            // Declarations cannot drift: what was produced is what the kind declares for these parameters.
            let declared = kind.outputs(&stage.params)?;
            super::contract::check_outputs(
                &declared,
                &outputs.tables,
                outputs.blobs.iter().map(|(n, _)| n.as_str()),
            )
            .map_err(|m| {
                StageError::Other(format!(
                    "outputs do not match the declaration of kind `{}` (a bug in the kind): {m}",
                    stage.kind
                ))
            })?;
            Ok(outputs)
        }
        Err(panic) => Err(StageError::Panicked(super::table::panic_message(
            panic.as_ref(),
        ))),
    }
}

/// Runs one stage whose inputs are resolved: stores its outputs and its record.
fn execute(
    env: RunEnv,
    stage: &PlannedStage,
    kind: &dyn DynStage,
    comps: KeyComponents,
    key: &str,
    inputs: ResolvedInputs,
) -> Result<ActionRecord, StageError> {
    let (store, threads) = (env.store, env.threads);
    // Held until the outputs are stored: the tables are in memory until then.
    let _memory = env.hold_memory(stage);
    let started_at = unix_now();
    let t0 = Instant::now();
    let work_dir = store.work_dir(key);
    let mut outputs = run_kind(env, stage, kind, &inputs, work_dir.clone())?;
    let mut refs = Vec::new();
    for (name, df) in outputs.tables.iter_mut() {
        let (digest, bytes) = put_table(store, &work_dir, df)?;
        refs.push(OutputRef {
            name: name.clone(),
            digest,
            kind: ObjectKind::Table,
            bytes,
            rows: Some(df.height() as u64),
        });
    }
    let put_blob = |name: &str, blob: &BlobData| -> Result<OutputRef, StageError> {
        let (digest, bytes) = match blob {
            BlobData::Bytes(bytes) => (store.put_bytes(bytes)?, bytes.len() as u64),
            // A file of the stage's own scratch space is moved into the store; any other is copied.
            BlobData::File(path) => store.put_file(path, path.starts_with(&work_dir))?,
        };
        Ok(OutputRef {
            name: name.to_string(),
            digest,
            kind: ObjectKind::Blob,
            bytes,
            rows: None,
        })
    };
    for (name, blob) in &outputs.blobs {
        refs.push(put_blob(name, blob)?);
    }
    let logs = outputs
        .logs
        .iter()
        .map(|(name, blob)| put_blob(name, blob))
        .collect::<Result<Vec<_>, _>>()?;
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
        logs,
        stats: outputs.stats,
        started_at,
        duration_ms: t0.elapsed().as_millis() as u64,
        threads,
        alinea_version: env!("CARGO_PKG_VERSION").to_string(),
        job: super::slurm::this_job(store, key),
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
        /// Outputs that differed when the stage ran again (`--check-determinism`).
        differs: Vec<String>,
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
    // Absolute, because commands run in a scratch directory and are handed paths below the root.
    let root = std::path::absolute(&plan.root).unwrap_or_else(|_| plan.root.clone());
    let budget = opts.memory.map(crate::memory::MemoryBudget::new);
    let env = RunEnv {
        store,
        root: &root,
        progress,
        threads: opts.threads,
        memory: budget.as_ref(),
    };
    // A damaged ref must not block the pipeline: set aside (named in the report), its stages found by key.
    let (old_ref, ref_note) = store.get_ref_or_set_aside(&plan.name)?;
    let warnings: Vec<String> = ref_note.into_iter().collect();
    let mut pref = old_ref.clone().unwrap_or_default();
    let previous = pref.stages.clone();
    pref.file = plan.file.clone();
    pref.stages
        .retain(|name, _| plan.stages.iter().any(|s| &s.name == name));

    let n = plan.stages.len();
    let index = stage_index(plan);
    let deps: Vec<BTreeSet<usize>> = plan
        .stages
        .iter()
        .map(|s| s.upstream().filter_map(|u| index.get(u).copied()).collect())
        .collect();
    let mut reports: Vec<Option<StageReport>> = vec![None; n];
    let mut overall = Overall::new(opts.overall, progress, n, t0);
    let mut done: BTreeMap<String, Vec<OutputRef>> = BTreeMap::new();
    let mut started = vec![false; n];
    let mut stop = false;
    // Producers recomputed in this run because a consumer found their output corrupt, and the reasons to report.
    let mut recomputed: BTreeSet<usize> = BTreeSet::new();
    let mut retry_reason: BTreeMap<usize, String> = BTreeMap::new();
    // What the ref file says, so that it is rewritten only when it changes.
    let mut written = old_ref.unwrap_or_default();

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
                        nondeterministic: vec![],
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
                    let work = |rehash: bool| -> Result<(ActionRecord, Status, String, Vec<String>), Failure> {
                        let inputs = resolve_inputs(stage, kind, &done_snapshot, stat_cache, rehash)
                            .map_err(|e| (None, e))?;
                        let comps = components(stage, kind, inputs.digests.clone(), &plan.root)
                            .map_err(|e| (None, e))?;
                        let key = comps.action_key();
                        let check = |record: &ActionRecord, inputs: &ResolvedInputs| {
                            if !opts.check_determinism {
                                return Ok(Vec::new());
                            }
                            determinism_check(env, stage, kind, inputs, record)
                                .map_err(|e| (Some(key.clone()), e))
                        };
                        let forced = opts.force.contains(&stage.name);
                        let mut cached = None;
                        // An unreadable record counts as absent: the stage reruns and rewrites it.
                        let mut reason = match store.get_action(&key) {
                            Ok(Some(record)) if store.outputs_verified(&record, stat_cache) => {
                                if !forced {
                                    let differs = check(&record, &inputs)?;
                                    return Ok((record, Status::Cached, "cached".to_string(), differs));
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
                        // A forced stage recomputes even when the remote has it.
                        if let Some(remote) = opts.remote.as_ref().filter(|_| !forced) {
                            match remote.fetch(store, &key) {
                                Ok(Fetch::Hit(record)) => {
                                    let why = format!("cached (pulled from {})", remote.describe());
                                    let differs = check(&record, &inputs)?;
                                    return Ok((*record, Status::Cached, why, differs));
                                }
                                Ok(Fetch::Miss) => {}
                                Ok(Fetch::Unusable(why)) => reason.push_str(&format!("; {why}")),
                                Err(e) => reason.push_str(&format!("; remote not used: {e}")),
                            }
                        }
                        // So that `gc` keeps this attempt's checkpoints if the run is interrupted.
                        store
                            .mark_attempt(&key, &plan.name, &stage.name)
                            .map_err(|e| (Some(key.clone()), e.into()))?;
                        let again = opts.check_determinism.then(|| inputs.clone());
                        let record = dispatch(opts, env, stage, kind, comps, &key, inputs)
                            .map_err(|e| (Some(key.clone()), e))?;
                        let differs = match &again {
                            Some(inputs) => check(&record, inputs)?,
                            None => Vec::new(),
                        };
                        let mut reason = match (&cached, forced) {
                            (Some(before), _) => forced_reason(before, &record),
                            (None, true) => format!("forced (nothing cached to compare): {reason}"),
                            (None, false) => reason,
                        };
                        // Only a completed stage's record is pushed (a failed one returned above).
                        if let (Some(remote), true) = (&opts.remote, opts.push)
                            && let Err(e) = remote.push(store, &record)
                        {
                            reason.push_str(&format!("; not pushed: {e}"));
                        }
                        Ok((record, Status::Ran, reason, differs))
                    };
                    // A panic anywhere in the worker (input listing and hashing included) fails this stage;
                    // the worker always reports, so the scheduler never waits for a stage that died.
                    // A wrong stat-cache digest seen while reading an input: go again once with every input file
                    // re-hashed (the right key, often cached), instead of failing every run after.
                    let work_rehashing = || match work(false) {
                        Err((_, StageError::StaleInputDigest { .. })) => work(true),
                        other => other,
                    };
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work_rehashing))
                            .unwrap_or_else(|panic| {
                                Err((
                                    None,
                                    StageError::Panicked(super::table::panic_message(
                                        panic.as_ref(),
                                    )),
                                ))
                            });
                    let ms = t.elapsed().as_millis() as u64;
                    let outcome = match outcome {
                        Ok((record, status, reason, differs)) => Outcome::Done {
                            record,
                            status,
                            reason,
                            differs,
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
            overall.show(reports.iter().filter(|r| r.is_some()).count(), running);
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
                    differs,
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
                        nondeterministic: differs,
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
                        nondeterministic: vec![],
                    }
                }
            });
        }
        Ok(())
    })?;
    overall.finish();

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
                nondeterministic: vec![],
            })
        })
        .collect();
    Ok(RunReport {
        pipeline: plan.name.clone(),
        stages,
        wall_ms: t0.elapsed().as_millis() as u64,
        warnings,
    })
}

/// Freshness of one stage, as `alinea status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    /// Instance name.
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// `fresh` (a run would reuse it) or `stale`; with a remote, `local` (fresh here), `remote` (a run would pull
    /// it) or `missing` (a run would compute it); for a Slurm job of its action in flight, `queued` or `running`.
    pub state: &'static str,
    /// Why it is stale.
    pub reasons: Vec<String>,
}

/// Says which stages a run would recompute and why, without running anything. With a remote, stages missing here
/// are looked up there: one record read per such stage, then one batched existence check for all their objects.
pub fn status(
    plan: &Plan,
    registry: &Registry,
    store: &Store,
    remote: Option<&dyn RemoteCache>,
) -> Result<Vec<StageStatus>, ExecError> {
    let stat_path = store.root().join("statcache.json");
    let stat_cache = Mutex::new(StatCache::load(&stat_path));
    // Read-only: a damaged ref counts as absent (the CLI warns; `verify --repair` or the next run sets it aside).
    let previous = match store.get_ref(&plan.name) {
        Err(StoreError::BadRef { .. }) => None,
        other => other?,
    }
    .unwrap_or_default()
    .stages;
    let mut done: BTreeMap<String, Vec<OutputRef>> = BTreeMap::new();
    let mut out: Vec<Option<StageStatus>> = vec![None; plan.stages.len()];
    // Index in `out` -> the remote record's objects, checked together at the end.
    let mut from_remote: Vec<(usize, Vec<(String, u64)>)> = Vec::new();
    // The remote ref's record outputs, read once, when the first stage missing here is met.
    let mut listed: Option<BTreeMap<String, Vec<OutputRef>>> = None;
    // Level by level (a stage's key needs its inputs' digests, known once the level above is decided), so that
    // the remote records of a whole level are read in one batch of parallel requests, not one request after
    // another (14k sequential existence checks took Snakemake 131 minutes: snakemake#3816).
    for level in levels(plan) {
        let mut keyed: Vec<(usize, KeyedStage)> = Vec::new();
        for &i in &level {
            let stage = &plan.stages[i];
            match key_stage(stage, &plan.root, registry, store, &done, &stat_cache) {
                Ok(k) => keyed.push((i, k)),
                Err(reasons) => out[i] = Some(stage_status(stage, "stale", reasons)),
            }
        }
        let wanted: Vec<String> = keyed
            .iter()
            .filter(|(_, k)| !k.local_ok)
            .map(|(_, k)| k.key.clone())
            .collect();
        let mut remote_records: BTreeMap<String, Vec<OutputRef>> = match remote {
            Some(r) if !wanted.is_empty() => {
                let listed = match &listed {
                    Some(l) => l,
                    None => {
                        listed.insert(r.pipeline_outputs(&plan.name).map_err(ExecError::Remote)?)
                    }
                };
                remote_outputs(r, listed, &wanted)?
            }
            _ => BTreeMap::new(),
        };
        for (i, k) in keyed {
            let stage = &plan.stages[i];
            let remote_rec = if k.local_ok {
                None
            } else {
                remote_records.remove(&k.key)
            };
            let (state, reasons) = match (k.local, k.local_ok, remote_rec) {
                (Some(rec), true, _) => {
                    done.insert(stage.name.clone(), rec.outputs);
                    ("fresh", vec![])
                }
                (_, _, Some(outputs)) => {
                    let objects = outputs
                        .iter()
                        .map(|o| (o.digest.clone(), o.bytes))
                        .collect();
                    from_remote.push((i, objects));
                    done.insert(stage.name.clone(), outputs);
                    ("remote", vec![])
                }
                (Some(_), _, None) => (
                    "stale",
                    vec!["output objects missing from the store".into()],
                ),
                (None, _, None) => match super::slurm::in_flight(store, &k.key) {
                    // A Slurm job of this very action is queued or running.
                    Some(job) if job.contains("PENDING") => ("queued", vec![job]),
                    Some(job) => ("running", vec![job]),
                    None => {
                        let kind = registry.get(&stage.kind).expect("plan validated kinds");
                        (
                            "stale",
                            vec![explain(
                                store,
                                previous.get(&stage.name),
                                &k.components,
                                kind.code(),
                            )],
                        )
                    }
                },
            };
            out[i] = Some(stage_status(stage, state, reasons));
        }
    }
    let mut out: Vec<StageStatus> = out
        .into_iter()
        .map(|s| s.expect("every stage is in one level"))
        .collect();
    stat_cache
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .save(&stat_path)?;
    let Some(remote) = remote else {
        return Ok(out);
    };
    let all: Vec<(String, u64)> = from_remote.iter().flat_map(|(_, o)| o.clone()).collect();
    let absent: BTreeSet<String> = remote
        .missing(&all)
        .map_err(ExecError::Remote)?
        .into_iter()
        .collect();
    for (i, objects) in &from_remote {
        let lacking = objects.iter().filter(|(d, _)| absent.contains(d)).count();
        if lacking > 0 {
            out[*i].state = "missing";
            out[*i].reasons = vec![format!(
                "the remote record names {lacking} object(s) the remote lacks"
            )];
        }
    }
    for s in &mut out {
        s.state = match s.state {
            "fresh" => "local",
            "stale" => "missing",
            other => other,
        };
    }
    Ok(out)
}

/// Outputs of the remote records of `wanted`: from the remote ref's `listed` outputs where it has them, the rest
/// read in one batch of parallel requests.
fn remote_outputs(
    remote: &dyn RemoteCache,
    listed: &BTreeMap<String, Vec<OutputRef>>,
    wanted: &[String],
) -> Result<BTreeMap<String, Vec<OutputRef>>, ExecError> {
    let (known, unknown): (Vec<&String>, Vec<&String>) =
        wanted.iter().partition(|k| listed.contains_key(*k));
    let unknown: Vec<String> = unknown.into_iter().cloned().collect();
    let read = remote.records(&unknown).map_err(ExecError::Remote)?;
    let mut out: BTreeMap<String, Vec<OutputRef>> = known
        .into_iter()
        .map(|k| (k.clone(), listed[k].clone()))
        .collect();
    out.extend(
        unknown
            .into_iter()
            .zip(read)
            .filter_map(|(k, rec)| Some((k, rec?.outputs))),
    );
    Ok(out)
}

/// A stage whose inputs are known: its key, and its local record if any.
struct KeyedStage {
    components: KeyComponents,
    key: String,
    local: Option<ActionRecord>,
    /// The local record's outputs are all present and verified.
    local_ok: bool,
}

/// The stage's key and local record, or why it has none yet (the reasons `status` shows).
fn key_stage(
    stage: &PlannedStage,
    root: &Path,
    registry: &Registry,
    store: &Store,
    done: &BTreeMap<String, Vec<OutputRef>>,
    stat_cache: &Mutex<StatCache>,
) -> Result<KeyedStage, Vec<String>> {
    let kind = registry.get(&stage.kind).expect("plan validated kinds");
    let mut stale_ups: Vec<&str> = stage
        .upstream()
        .filter(|u| !done.contains_key(*u))
        .collect();
    if !stale_ups.is_empty() {
        stale_ups.dedup();
        return Err(stale_ups
            .iter()
            .map(|u| format!("input stage `{u}` is stale"))
            .collect());
    }
    let hash_error = |e: &dyn std::fmt::Display| vec![format!("cannot hash inputs: {e}")];
    let inputs =
        resolve_inputs(stage, kind, done, stat_cache, false).map_err(|e| hash_error(&e))?;
    let components = components(stage, kind, inputs.digests, root).map_err(|e| hash_error(&e))?;
    let key = components.action_key();
    let local = store.get_action(&key).map_err(|e| vec![e.to_string()])?;
    let local_ok = local
        .as_ref()
        .is_some_and(|rec| store.outputs_verified(rec, stat_cache));
    Ok(KeyedStage {
        components,
        key,
        local,
        local_ok,
    })
}

fn stage_status(stage: &PlannedStage, state: &'static str, reasons: Vec<String>) -> StageStatus {
    StageStatus {
        name: stage.name.clone(),
        kind: stage.kind.clone(),
        state,
        reasons,
    }
}

/// Each stage's position in the plan, by name.
fn stage_index(plan: &Plan) -> BTreeMap<&str, usize> {
    plan.stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect()
}

/// The plan's stage indices grouped by depth (0: reads no stage), each group in plan order.
fn levels(plan: &Plan) -> Vec<Vec<usize>> {
    let index = stage_index(plan);
    let mut depth = vec![0usize; plan.stages.len()];
    // Plan order is topological: every upstream stage comes first.
    for (i, stage) in plan.stages.iter().enumerate() {
        depth[i] = stage
            .upstream()
            .filter_map(|u| index.get(u))
            .map(|&j| depth[j] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut levels = vec![Vec::new(); depth.iter().max().map_or(0, |d| d + 1)];
    for (i, d) in depth.into_iter().enumerate() {
        levels[d].push(i);
    }
    levels
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
