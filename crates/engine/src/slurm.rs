//! The Slurm executor: a stale stage becomes one batch job running `alinea exec --job FILE`, which reads its
//! inputs from the shared store and writes its outputs and action record there.
//!
//! Completion is the record appearing in the store, nothing else: `squeue` and `scontrol`/`sacct` are asked only
//! to tell a job that is still queued or running from one that ended without a result, and to name how it ended
//! (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL, PREEMPTED, CANCELLED). Their absence (accounting off, a job aged out of the
//! controller) is never an error: the job is then "ended, state unknown", and its log says the rest.
//!
//! The action key is a job's identity: the job id is kept in the stage's scratch directory (`work/<key>/`), so a
//! second run of the pipeline attaches to a job still in flight instead of submitting it twice.
//!
//! Stages that become ready together and ask for the same allocation (a matrix: one stage over 24 languages) are
//! submitted as one job array (`sbatch --array`), one task per stage: one submission instead of one per stage,
//! which is what cluster sites ask of workflow tools. A task's id is `ARRAY_TASK` (`4242_3`), which `squeue`,
//! `scontrol` and `scancel` take like any job id.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::StageError;
use super::exec::{Fetch, RemoteCache};
use super::store::{ActionRecord, Store};

/// The `[executor]` table of a pipeline file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorSpec {
    /// `local` (default) or `slurm`; `alinea run --executor` overrides it.
    pub kind: ExecutorKind,
    /// Partition of every job (`sbatch --partition`), unless a stage's resources name another.
    pub partition: Option<String>,
    /// Account charged for every job (`sbatch --account`).
    pub account: Option<String>,
    /// Resubmissions of a job that ended NODE_FAIL or PREEMPTED (other endings are the stage's own failure).
    pub retries: u32,
    /// Seconds between two looks at the store and the queue while a job runs.
    pub poll_seconds: Option<f64>,
    /// Seconds a submission waits for other stages asking for the same allocation, to go out with them as one
    /// job array (default 1; 0 submits every stage on its own).
    pub group_seconds: Option<f64>,
    /// At most this many `sbatch` calls a minute (default 10, what cluster sites ask of workflow tools): stages
    /// that become ready sooner wait and go out together in the next call.
    pub submissions_per_minute: Option<f64>,
    /// A folder on every node for a node-local cache in front of the run's remote (`$VAR`s are expanded on the
    /// node, e.g. `$TMPDIR/alinea`). Jobs then exchange artifacts through the remote: the coordinator uploads a
    /// job's inputs and its job file, the job pulls them into this cache and pushes its outputs and record, and the
    /// coordinator takes the record from the remote. No filesystem needs to be shared (path inputs excepted: a
    /// dataset folder a cluster stage reads must be at the same path on the nodes). Needs a remote.
    pub job_store: Option<String>,
}

/// Which executor runs stale stages.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// In this process, on this machine.
    #[default]
    Local,
    /// As Slurm batch jobs.
    Slurm,
}

/// What one stage asks of a cluster (`resources = { … }` in its table). Not part of the cache key: where a
/// result was computed does not change its bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// GPUs of the job (`--gpus`); a GPU kind asks for 1 unless this says otherwise.
    pub gpus: Option<u32>,
    /// CPUs of the task (`--cpus-per-task`).
    pub cpus: Option<u32>,
    /// Memory (`--mem`, Slurm's syntax: `64G`, `500M`); the local executor also keeps the memory its running
    /// stages declare within its budget ([`crate::memory`]).
    pub mem: Option<crate::memory::MemSize>,
    /// Wall-time limit (`--time`, e.g. `24:00:00`).
    pub time: Option<String>,
    /// Node features (`--constraint`, e.g. `a100`).
    pub constraint: Option<String>,
    /// Nodes (`--nodes`), for multi-node `command` stages.
    pub nodes: Option<u32>,
    /// GPUs per node (`--gpus-per-node`).
    pub gpus_per_node: Option<u32>,
    /// Partition, instead of the executor's.
    pub partition: Option<String>,
}

/// How this run reaches Slurm.
#[derive(Debug, Clone)]
pub struct SlurmConfig {
    /// The pipeline's executor table.
    pub spec: ExecutorSpec,
    /// The `alinea` binary the jobs run (this one: nodes see the same shared filesystem).
    pub program: PathBuf,
    /// Working directory of the jobs (where relative paths of the pipeline resolve).
    pub workdir: PathBuf,
}

/// Job ids submitted by this process and not yet seen to end, for [`cancel_in_flight`].
static IN_FLIGHT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Cancels every job this process submitted that is still in flight (Ctrl-C, SIGTERM). Returns their ids.
pub fn cancel_in_flight() -> Vec<String> {
    let ids: Vec<String> = IN_FLIGHT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("scancel").args(&ids).status();
    }
    ids
}

fn track(id: &str, in_flight: bool) {
    let mut set = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
    if in_flight {
        set.insert(id.to_string());
    } else {
        set.remove(id);
    }
}

/// The `sbatch` options of a job for a stage with `resources`.
pub fn sbatch_options(
    spec: &ExecutorSpec,
    resources: &Resources,
    gpu_kind: bool,
    job_name: &str,
    log: &Path,
) -> Vec<String> {
    let mut o = vec![
        "--parsable".to_string(),
        format!("--job-name={job_name}"),
        format!("--output={}", log.display()),
        "--open-mode=append".to_string(),
    ];
    o.extend(allocation_options(spec, resources, gpu_kind));
    o
}

/// The options that shape a job's allocation: stages with equal ones may share a job array.
fn allocation_options(spec: &ExecutorSpec, resources: &Resources, gpu_kind: bool) -> Vec<String> {
    let mut o = Vec::new();
    let mut opt = |flag: &str, value: Option<String>| {
        if let Some(v) = value {
            o.push(format!("--{flag}={v}"));
        }
    };
    opt(
        "partition",
        resources.partition.clone().or(spec.partition.clone()),
    );
    opt("account", spec.account.clone());
    let gpus = resources.gpus.or(gpu_kind.then_some(1)).filter(|&g| g > 0);
    if resources.gpus_per_node.is_none() {
        opt("gpus", gpus.map(|g| g.to_string()));
    }
    opt(
        "gpus-per-node",
        resources
            .gpus_per_node
            .filter(|&g| g > 0)
            .map(|g| g.to_string()),
    );
    opt("cpus-per-task", resources.cpus.map(|c| c.to_string()));
    opt("mem", resources.mem.as_ref().map(ToString::to_string));
    opt("time", resources.time.clone());
    opt("constraint", resources.constraint.clone());
    opt("nodes", resources.nodes.map(|n| n.to_string()));
    o
}

/// Where a job of action `key` keeps its files: the spec, the job id, the log, the failure message.
struct JobFiles {
    spec: PathBuf,
    id: PathBuf,
    log: PathBuf,
    failure: PathBuf,
    state: PathBuf,
}

impl JobFiles {
    fn of(store: &Store, key: &str) -> JobFiles {
        let dir = store.work_dir(key);
        JobFiles {
            spec: dir.join("job.json"),
            id: dir.join("slurm-job"),
            log: store.root().join("logs").join(format!("{key}.slurm.log")),
            failure: dir.join("failure.txt"),
            state: dir.join("slurm-state"),
        }
    }
}

/// The job running this process, when it is a Slurm job (`SLURM_JOB_ID` is set), for the record of `key`.
pub fn this_job(store: &Store, key: &str) -> Option<super::store::ClusterJob> {
    let id = std::env::var("SLURM_JOB_ID").ok()?;
    // A task of a job array goes by `ARRAY_TASK`, the id the coordinator knows it by.
    let id = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(array), Ok(task)) => format!("{array}_{task}"),
        _ => id,
    };
    Some(super::store::ClusterJob {
        id,
        node: std::env::var("SLURMD_NODENAME").unwrap_or_default(),
        log: JobFiles::of(store, key).log,
    })
}

/// The file `alinea exec` writes when the stage fails inside the job, so the coordinator shows the stage's own
/// error rather than only a log tail.
pub fn failure_file(store: &Store, key: &str) -> PathBuf {
    JobFiles::of(store, key).failure
}

/// What `squeue` says of a job: `Some((state, reason))` while it is queued or running, `None` once it left
/// the queue (or `squeue` cannot be run).
fn queued_state(id: &str) -> Option<(String, String)> {
    let out = Command::new("squeue")
        .args(["-h", "-j", id, "-o", "%T|%r"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim();
    let (state, reason) = line.split_once('|')?;
    Some((state.to_string(), reason.to_string()))
}

/// How an ended job ended, from the controller (kept for `MinJobAge`) or accounting; `None` if neither knows.
fn final_state(id: &str) -> Option<String> {
    let from_controller = Command::new("scontrol")
        .args(["show", "job", "-o", id])
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.split_whitespace()
                .find_map(|f| f.strip_prefix("JobState=").map(str::to_string))
        });
    from_controller.or_else(|| {
        let out = Command::new("sacct")
            .args(["-n", "-X", "-P", "-j", id, "-o", "State"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let state = text.lines().next()?.split_whitespace().next()?.to_string();
        (!state.is_empty()).then_some(state)
    })
}

/// The last `n` lines of a file, or a note that it is absent.
fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(_) => format!("(no log at {})", path.display()),
    }
}

/// One stage's job, as the coordinator resolved it.
pub struct Job<'a> {
    /// The action key.
    pub key: &'a str,
    /// The stage instance.
    pub stage_name: &'a str,
    /// The job file (`alinea exec --job`).
    pub spec_json: &'a [u8],
    /// (digest, size) of the store objects the job reads.
    pub input_objects: &'a [(String, u64)],
    /// What the stage asks of the cluster.
    pub resources: &'a Resources,
    /// A GPU kind (asks for one GPU unless `resources` say otherwise).
    pub gpu_kind: bool,
}

/// Submits `job` (or attaches to the one already in flight for its key) and waits for its action record: in the
/// shared store, or with a `job_store`, on `remote`, from which it is brought into `store`.
pub fn run_job(
    cfg: &SlurmConfig,
    remote: Option<&dyn RemoteCache>,
    store: &Store,
    job: &Job,
) -> Result<ActionRecord, StageError> {
    let key = job.key;
    let files = JobFiles::of(store, key);
    super::store::write_atomic(&files.spec, job.spec_json)?;
    if let Some(logs) = files.log.parent() {
        std::fs::create_dir_all(logs).map_err(StageError::io(logs))?;
    }
    let _ = std::fs::remove_file(&files.failure);
    let node_local = match (&cfg.spec.job_store, remote) {
        (None, _) => None,
        (Some(dir), Some(remote)) => Some(NodeLocal::prepare(dir, remote, store, job)?),
        (Some(dir), None) => {
            return Err(StageError::Other(format!(
                "[executor] job_store = {dir:?} needs a remote (--remote, ALINEA_REMOTE or [store] remote) in \
                 write mode: jobs exchange artifacts through it"
            )));
        }
    };
    let mut attempts = 0;
    loop {
        let id = match attachable(&files) {
            Some(id) => id,
            None => submit(cfg, store, &files, job, node_local.as_ref())?,
        };
        track(&id, true);
        let ended = match (&node_local, remote) {
            (Some(_), Some(remote)) => wait_remote(cfg, remote, store, key, &id, &files),
            _ => wait(cfg, store, key, &id, &files),
        };
        track(&id, false);
        absorb_array_log(&id, &files);
        let state = match ended {
            Ok(record) => return Ok(record),
            Err(state) => state,
        };
        let retryable = matches!(state.as_deref(), Some("NODE_FAIL" | "PREEMPTED"));
        if retryable && attempts < cfg.spec.retries {
            attempts += 1;
            let _ = std::fs::remove_file(&files.id);
            continue;
        }
        // A job on a node-local cache logs on its node (readable here only when this machine sees that path).
        let log = match &node_local {
            Some(n) => PathBuf::from(n.log(key)),
            None => files.log.clone(),
        };
        return Err(ended_without_result(&id, state, &files, &log));
    }
}

/// A job id recorded for this action whose job is still queued or running.
fn attachable(files: &JobFiles) -> Option<String> {
    let id = std::fs::read_to_string(&files.id).ok()?.trim().to_string();
    queued_state(&id).map(|_| id)
}

/// A job that runs against a node-local cache: where that cache is, and the job file's object on the remote.
struct NodeLocal {
    /// The node's cache folder, as the node's shell expands it.
    store: String,
    remote_url: String,
    spec_object: String,
}

impl NodeLocal {
    /// Puts what the job reads on the remote: its input objects and its job file (as an object of the store).
    fn prepare(
        dir: &str,
        remote: &dyn RemoteCache,
        store: &Store,
        job: &Job,
    ) -> Result<NodeLocal, StageError> {
        if dir.contains(['"', '`', '\\', '\n']) {
            return Err(StageError::Other(format!(
                "[executor] job_store = {dir:?}: a folder path, with `$VAR`s at most (no quotes, backquotes, \
                 backslashes or newlines)"
            )));
        }
        let spec_object = store.put_bytes(job.spec_json)?;
        let mut objects = job.input_objects.to_vec();
        objects.push((spec_object.clone(), job.spec_json.len() as u64));
        remote.ensure_objects(store, &objects).map_err(|e| {
            StageError::Other(format!(
                "cannot put the inputs of stage `{}` on {} for its job: {e}",
                job.stage_name,
                remote.describe()
            ))
        })?;
        Ok(NodeLocal {
            store: dir.trim_end_matches('/').to_string(),
            remote_url: remote.describe().to_string(),
            spec_object,
        })
    }

    /// The log the job writes on its node.
    fn log(&self, key: &str) -> String {
        format!("{}/logs/{key}.slurm.log", self.store)
    }
}

fn submit(
    cfg: &SlurmConfig,
    store: &Store,
    files: &JobFiles,
    job: &Job,
    node_local: Option<&NodeLocal>,
) -> Result<String, StageError> {
    let program = shlex::try_quote(&cfg.program.to_string_lossy())
        .map_err(|e| StageError::Other(format!("cannot quote the alinea path for sbatch: {e}")))?
        .into_owned();
    let (command, output) = match node_local {
        None => (
            format!(
                "{program} {}",
                quoted(&[
                    "--store".into(),
                    store.root().display().to_string(),
                    "exec".into(),
                    "--job".into(),
                    files.spec.display().to_string(),
                ])?
            ),
            None,
        ),
        // The node's shell expands `$VAR`s of the cache folder (hence double quotes); the job's own output goes
        // to a log in that cache, Slurm's to nowhere the coordinator could read anyway.
        Some(n) => (
            format!(
                "mkdir -p \"{store}/logs\" && {program} --store \"{store}\" --remote {remote} exec --job-object {spec} \
                 >>\"{log}\" 2>&1",
                store = n.store,
                remote = quoted(std::slice::from_ref(&n.remote_url))?,
                spec = n.spec_object,
                log = n.log(job.key),
            ),
            Some(PathBuf::from("/dev/null")),
        ),
    };
    let submission = Submission {
        allocation: allocation_options(&cfg.spec, job.resources, job.gpu_kind),
        workdir: cfg.workdir.clone(),
        stage_name: job.stage_name.to_string(),
        command,
        log: files.log.clone(),
        output,
    };
    let window = Duration::from_secs_f64(cfg.spec.group_seconds.unwrap_or(1.0).max(0.0));
    let per_minute = cfg.spec.submissions_per_minute.unwrap_or(10.0);
    let spacing = Duration::from_secs_f64(if per_minute > 0.0 {
        60.0 / per_minute
    } else {
        0.0
    });
    let id = if window.is_zero() && spacing.is_zero() {
        sbatch_one(&submission)
    } else {
        let (reply, answer) = channel();
        batcher(window, spacing)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((submission, reply))
            .map_err(|_| StageError::Other("the Slurm submission thread is gone".into()))?;
        answer
            .recv()
            .unwrap_or_else(|_| Err("the Slurm submission thread is gone".into()))
    }
    .map_err(StageError::Other)?;
    super::store::write_atomic(&files.id, id.as_bytes())?;
    Ok(id)
}

/// One stage's job, as it waits to be submitted.
struct Submission {
    /// The options that shape its allocation: equal ones may share a job array.
    allocation: Vec<String>,
    workdir: PathBuf,
    stage_name: String,
    /// `alinea exec …`, a line for the job's shell.
    command: String,
    log: PathBuf,
    /// Where Slurm writes the job's output, when not `log` (the node-local case: the command redirects its own).
    output: Option<PathBuf>,
}

type Reply = Sender<Result<String, String>>;

fn quoted(words: &[String]) -> Result<String, StageError> {
    words
        .iter()
        .map(|a| shlex::try_quote(a).map(|q| q.into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map(|w| w.join(" "))
        .map_err(|e| StageError::Other(format!("cannot quote the job's command for sbatch: {e}")))
}

/// The one thread of this process that talks to `sbatch`: it gathers the submissions that arrive within `window`
/// of the first, and until `spacing` has passed since its last call, and sends those with equal allocations as one
/// job array.
fn batcher(window: Duration, spacing: Duration) -> &'static Mutex<Sender<(Submission, Reply)>> {
    static BATCHER: OnceLock<Mutex<Sender<(Submission, Reply)>>> = OnceLock::new();
    BATCHER.get_or_init(|| {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("alinea-sbatch".into())
            .spawn(move || batch_loop(&rx, window, spacing))
            .expect("spawn the Slurm submission thread");
        Mutex::new(tx)
    })
}

fn batch_loop(rx: &Receiver<(Submission, Reply)>, window: Duration, spacing: Duration) {
    let mut last_call: Option<Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut deadline = Instant::now() + window;
        if let Some(last) = last_call {
            deadline = deadline.max(last + spacing);
        }
        let mut batch = vec![first];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        type Group = (Vec<String>, PathBuf, Option<PathBuf>);
        let mut groups: BTreeMap<Group, Vec<(Submission, Reply)>> = BTreeMap::new();
        for (sub, reply) in batch {
            let group = (
                sub.allocation.clone(),
                sub.workdir.clone(),
                sub.output.clone(),
            );
            groups.entry(group).or_default().push((sub, reply));
        }
        for group in groups.into_values() {
            send_group(group);
        }
        last_call = Some(Instant::now());
    }
}

fn send_group(mut group: Vec<(Submission, Reply)>) {
    if group.len() == 1 {
        let (sub, reply) = group.remove(0);
        let _ = reply.send(sbatch_one(&sub));
        return;
    }
    let subs: Vec<&Submission> = group.iter().map(|(s, _)| s).collect();
    match sbatch_array(&subs) {
        Ok(array) => {
            for (task, (_, reply)) in group.iter().enumerate() {
                let _ = reply.send(Ok(format!("{array}_{task}")));
            }
        }
        Err(e) => {
            for (_, reply) in &group {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// One stage, one job: its log is the job's output.
fn sbatch_one(sub: &Submission) -> Result<String, String> {
    let mut options = vec![
        "--parsable".to_string(),
        format!("--job-name=alinea:{}", sub.stage_name),
        format!(
            "--output={}",
            sub.output.as_ref().unwrap_or(&sub.log).display()
        ),
        "--open-mode=append".to_string(),
    ];
    options.extend(sub.allocation.iter().cloned());
    let script = match sub.output {
        Some(_) => sub.command.clone(),
        None => format!("exec {}", sub.command),
    };
    sbatch(&options, &sub.workdir, &script, &sub.stage_name)
}

/// Several stages, one job array, task `i` running stage `i`. Each task writes its own output into its stage's
/// log; what Slurm itself writes about a task (a time limit, a memory kill) goes to `logs/array-ARRAY_TASK.slurm.log`,
/// which the coordinator appends to the stage's log once the task has ended ([`absorb_array_log`]).
fn sbatch_array(subs: &[&Submission]) -> Result<String, String> {
    let logs = subs[0].log.parent().unwrap_or(Path::new("."));
    let names: Vec<&str> = subs.iter().map(|s| s.stage_name.as_str()).collect();
    let mut options = vec![
        "--parsable".to_string(),
        format!("--job-name=alinea:{}+{}", names[0], names.len() - 1),
        match &subs[0].output {
            Some(output) => format!("--output={}", output.display()),
            None => format!("--output={}/array-%A_%a.slurm.log", logs.display()),
        },
        "--open-mode=append".to_string(),
        format!("--array=0-{}", subs.len() - 1),
    ];
    options.extend(subs[0].allocation.iter().cloned());
    let mut script = String::from("case \"$SLURM_ARRAY_TASK_ID\" in\n");
    for (task, sub) in subs.iter().enumerate() {
        if sub.output.is_some() {
            // The command redirects its own output (a node-local cache).
            script.push_str(&format!("{task}) {} ;;\n", sub.command));
            continue;
        }
        let log = shlex::try_quote(&sub.log.to_string_lossy())
            .map_err(|e| format!("cannot quote the log path for sbatch: {e}"))?
            .into_owned();
        script.push_str(&format!("{task}) exec {} >>{log} 2>&1 ;;\n", sub.command));
    }
    script.push_str("esac");
    sbatch(&options, &subs[0].workdir, &script, &names.join(", "))
}

/// The environment variable in which the alinea binary lists the thread variables it set for itself (comma
/// separated), not the user: sbatch exports the submitting environment to the job, and a job on a node with other
/// cores must size its own threads, not inherit the coordinator's share.
pub const THREAD_VARS_SET_BY_ALINEA: &str = "ALINEA_THREAD_VARS_SET";

/// `sbatch` with the submitting environment, less the thread variables alinea set for its own process.
fn sbatch_command() -> Command {
    let mut cmd = Command::new("sbatch");
    if let Some(set) = std::env::var_os(THREAD_VARS_SET_BY_ALINEA) {
        for var in set.to_string_lossy().split(',').filter(|v| !v.is_empty()) {
            cmd.env_remove(var);
        }
        cmd.env_remove(THREAD_VARS_SET_BY_ALINEA);
    }
    cmd
}

fn sbatch(
    options: &[String],
    workdir: &Path,
    script: &str,
    stages: &str,
) -> Result<String, String> {
    let out = sbatch_command()
        .args(options)
        .arg(format!("--chdir={}", workdir.display()))
        .arg(format!("--wrap={script}"))
        .output()
        .map_err(|e| {
            format!("cannot run sbatch ({e}): is Slurm installed on this machine, and on PATH?")
        })?;
    if !out.status.success() {
        return Err(format!(
            "sbatch refused the job of stage `{stages}` ({}): {}",
            options.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "sbatch printed no job id for stage `{stages}`: {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(id)
}

/// Appends what Slurm wrote about array task `id` to the stage's log, and removes that file.
fn absorb_array_log(id: &str, files: &JobFiles) {
    if !id.contains('_') {
        return;
    }
    let Some(logs) = files.log.parent() else {
        return;
    };
    let array_log = logs.join(format!("array-{id}.slurm.log"));
    if let Ok(text) = std::fs::read(&array_log) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &text));
        if appended.is_ok() {
            let _ = std::fs::remove_file(&array_log);
        }
    }
}

/// Waits until the record of `key` appears in the (shared) store (`Ok`), or the job left the queue without one
/// (`Err(state)`).
fn wait(
    cfg: &SlurmConfig,
    store: &Store,
    key: &str,
    id: &str,
    files: &JobFiles,
) -> Result<ActionRecord, Option<String>> {
    wait_for(cfg, id, files, || {
        store.get_action(key).ok().flatten().map(Ok)
    })
}

/// [`wait`] for a job on a node-local cache: its record appears on the remote, and is brought into `store` with its
/// objects (hash-checked) once it does.
fn wait_remote(
    cfg: &SlurmConfig,
    remote: &dyn RemoteCache,
    store: &Store,
    key: &str,
    id: &str,
    files: &JobFiles,
) -> Result<ActionRecord, Option<String>> {
    wait_for(cfg, id, files, || match remote.fetch(store, key) {
        Ok(Fetch::Hit(record)) => Some(Ok(*record)),
        Ok(Fetch::Unusable(why)) => {
            Some(Err(format!("its result on the remote is unusable: {why}")))
        }
        Ok(Fetch::Miss) | Err(_) => None,
    })
}

/// Polls `record` (the job's result: found, found unusable, or not yet) and the queue until the result is there,
/// or the job left the queue without one: then `Err` with how it ended, the reason kept in the failure file.
fn wait_for(
    cfg: &SlurmConfig,
    id: &str,
    files: &JobFiles,
    mut record: impl FnMut() -> Option<Result<ActionRecord, String>>,
) -> Result<ActionRecord, Option<String>> {
    let poll = Duration::from_secs_f64(cfg.spec.poll_seconds.unwrap_or(1.0).max(0.05));
    let mut left_queue: Option<Instant> = None;
    loop {
        match record() {
            Some(Ok(record)) => return Ok(record),
            Some(Err(why)) => {
                let _ = std::fs::write(&files.failure, why);
                return Err(final_state(id));
            }
            None => {}
        }
        match queued_state(id) {
            Some((state, reason)) => {
                left_queue = None;
                let _ = std::fs::write(&files.state, format!("{id} {state} {reason}"));
            }
            // The record is written before the job ends: give the filesystem (or the remote) a moment to show it.
            None => match left_queue {
                None => left_queue = Some(Instant::now()),
                Some(t) if t.elapsed() > Duration::from_secs(3) => {
                    let _ = std::fs::remove_file(&files.state);
                    return Err(final_state(id));
                }
                Some(_) => {}
            },
        }
        std::thread::sleep(poll);
    }
}

/// Slurm's name for how a job ended, sharpened by its log: a job killed by the memory enforcement of
/// `JobAcctGatherParams=OverMemoryKill` ends FAILED, where cgroup enforcement says OUT_OF_MEMORY; both are named
/// OUT_OF_MEMORY here, as users look for.
fn named_state(state: Option<String>, log: &str) -> String {
    let oom = log.contains("Exceeded job memory limit") || log.contains("oom-kill");
    match state {
        Some(s) if oom && s != "OUT_OF_MEMORY" => format!("OUT_OF_MEMORY (Slurm says {s})"),
        Some(s) => s,
        None if oom => "OUT_OF_MEMORY".into(),
        None => "in an unknown state (the controller forgot it and accounting is off)".into(),
    }
}

fn ended_without_result(
    id: &str,
    state: Option<String>,
    files: &JobFiles,
    log: &Path,
) -> StageError {
    let state = named_state(state, &std::fs::read_to_string(log).unwrap_or_default());
    let cause = std::fs::read_to_string(&files.failure)
        .map(|f| format!("the stage failed: {}", f.trim()))
        .unwrap_or_else(|_| {
            format!(
                "last lines of its log ({}):\n{}",
                log.display(),
                tail(log, 12)
            )
        });
    StageError::Other(format!(
        "Slurm job {id} ended {state} without a result; {cause}"
    ))
}

/// What `alinea status` shows for a stage whose job is in flight: `job 4242, PENDING: Resources`.
pub fn in_flight(store: &Store, key: &str) -> Option<String> {
    let files = JobFiles::of(store, key);
    let id = std::fs::read_to_string(&files.id).ok()?.trim().to_string();
    let (state, reason) = queued_state(&id)?;
    Some(if reason.is_empty() || reason == "None" {
        format!("job {id}, {state}")
    } else {
        format!("job {id}, {state}: {reason}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_options_follow_resources_then_executor_defaults() {
        let spec = ExecutorSpec {
            partition: Some("cpu".into()),
            account: Some("lab".into()),
            ..ExecutorSpec::default()
        };
        let log = Path::new("/s/work/k/slurm.log");
        let gpu = sbatch_options(&spec, &Resources::default(), true, "alinea:lora", log);
        assert!(gpu.contains(&"--gpus=1".to_string()), "{gpu:?}");
        assert!(gpu.contains(&"--partition=cpu".to_string()));
        let res = Resources {
            gpus: Some(0),
            cpus: Some(8),
            mem: Some("64G".parse().unwrap()),
            time: Some("24:00:00".into()),
            constraint: Some("a100".into()),
            partition: Some("gpu".into()),
            ..Resources::default()
        };
        let o = sbatch_options(&spec, &res, true, "alinea:lora", log);
        for want in [
            "--partition=gpu",
            "--account=lab",
            "--cpus-per-task=8",
            "--mem=64G",
            "--time=24:00:00",
            "--constraint=a100",
        ] {
            assert!(o.contains(&want.to_string()), "{want} missing from {o:?}");
        }
        assert!(
            !o.iter().any(|x| x.starts_with("--gpus")),
            "gpus = 0 asks for none: {o:?}"
        );
    }

    #[test]
    fn states_are_named_as_users_look_for_them() {
        let killed = "slurmstepd-vm: error: Exceeded job memory limit\n";
        assert_eq!(
            named_state(Some("FAILED".into()), killed),
            "OUT_OF_MEMORY (Slurm says FAILED)"
        );
        assert_eq!(named_state(Some("TIMEOUT".into()), ""), "TIMEOUT");
        assert_eq!(named_state(None, killed), "OUT_OF_MEMORY");
        assert!(named_state(None, "").contains("unknown state"));
    }
}
