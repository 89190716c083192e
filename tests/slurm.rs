//! The Slurm executor on a real one-machine Slurm (`scripts/slurm-local.sh up`, from Debian's slurm-wlm and
//! munge; `.ci/run` installs them): artifacts byte-identical to a local run, the job recorded in provenance, the
//! stage's own error from a failed job, Slurm's state for a job killed over its memory limit or cancelled, a rerun
//! that resumes, a job over its time limit named TIMEOUT and not retried, and Ctrl-C leaving nothing in the queue.
//! Accounting is off in that cluster: nothing depends on it. A second cluster (`up-two`) has two compute nodes in
//! network namespaces of their own, on which one run's jobs land together.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use common::*;

/// Runs `scripts/slurm-local.sh COMMAND`, or fails naming it and what it needs.
fn slurm_local(command: &str, needs: &str) {
    let out = Command::new(repo().join("scripts/slurm-local.sh"))
        .arg(command)
        .output()
        .expect("run scripts/slurm-local.sh");
    assert!(
        out.status.success(),
        "no local Slurm cluster: `scripts/slurm-local.sh {command}` failed ({needs}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Brings the local cluster up once per test process (idempotent), or fails saying how to get it.
fn cluster() {
    static UP: Once = Once::new();
    UP.call_once(|| {
        slurm_local(
            "up",
            "install it with `scripts/slurm-local.sh install`, as .ci/run does",
        )
    });
}

/// FLORES (be, dev) → sample → `extra` stages, every stage on the cluster (`local = false`), polling fast and
/// submitting without the default pause of 6 s between two `sbatch` calls.
fn pipeline(dir: &Path, name: &str, extra: &str) -> String {
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "[pipeline]\nname = \"{name}\"\nroot = \"{}\"\n[executor]\nkind = \"slurm\"\npoll_seconds = 0.2\nsubmissions_per_minute = 120\n\
             [stages.flores]\nkind = \"ingest.flores200\"\ninputs = {{ root = \"datasets/flores200\" }}\nlangs = [\"be\"]\nsplits = [\"dev\"]\nlocal = false\n\
             [stages.sample]\nkind = \"sample\"\ninputs = {{ pairs = \"flores\" }}\nsplits = [\"dev\"]\nper_lang = 100\nlocal = false\nresources = {{ cpus = 1, mem = \"1G\", time = \"00:10:00\" }}\n{extra}",
            repo().display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

fn status_of(report: &serde_json::Value, stage: &str) -> (String, String) {
    let s = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap();
    (
        s["status"].as_str().unwrap().to_string(),
        s["reason"].as_str().unwrap().to_string(),
    )
}

/// Brings the two-node cluster up once per test process (`scripts/slurm-local.sh up-two`: nodes n1 and n2, each a
/// network and host-name namespace of this machine with one CPU); returns its `SLURM_CONF`.
fn two_nodes() -> &'static str {
    static UP: Once = Once::new();
    UP.call_once(|| {
        cluster();
        slurm_local("up-two", "it needs root, iproute2 and unshare");
    });
    "/etc/slurm/two-nodes.conf"
}

/// `alinea --json run ARGS` on the two-node cluster: its report; panics with stderr when it fails.
fn run_on_two_nodes(store: &Path, args: &[&str]) -> serde_json::Value {
    let out = alinea(store)
        .env("SLURM_CONF", two_nodes())
        .args(["--json", "run"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `alinea --json run` that may fail: its report.
fn run_report(store: &Path, args: &[&str]) -> serde_json::Value {
    let out = alinea(store)
        .arg("--json")
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

/// Job ids in the queue named `alinea:<stage>`.
fn queued(stage: &str) -> Vec<String> {
    squeue_named(stage, &[])
}

/// Every job the controller still knows (ended ones too, for `MinJobAge`) named `alinea:<stage>`.
fn jobs_named(stage: &str) -> Vec<String> {
    squeue_named(stage, &["-t", "all"])
}

fn squeue_named(stage: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-o", "%i %j"])
        .args(extra)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(&format!("alinea:{stage}")))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn slurm_results_are_byte_identical_to_local_ones_and_record_their_job() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "same", "");
    let on_slurm = json(&dir.path().join("slurm"), &["run", &p]);
    let local = json(
        &dir.path().join("local"),
        &["run", &p, "--executor", "local"],
    );
    assert_eq!(statuses(&on_slurm), statuses(&local));
    let log = json(&dir.path().join("slurm"), &["log", "sample"]);
    let job = &log["job"];
    assert!(
        job["id"]
            .as_str()
            .is_some_and(|id| id.parse::<u64>().is_ok()),
        "the record names its job: {log}"
    );
    let job_log = std::fs::read_to_string(job["log"].as_str().unwrap()).unwrap();
    assert!(job_log.contains("stored"), "{job_log}");
    assert!(json(&dir.path().join("local"), &["log", "sample"])["job"].is_null());
    // Everything cached: no job submitted.
    let again = json(&dir.path().join("slurm"), &["run", &p]);
    assert!(statuses(&again).iter().all(|(_, s, _)| s == "cached"));
}

#[test]
fn a_failed_job_shows_the_stage_error_and_a_job_over_its_memory_names_the_state() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let p = pipeline(
        dir.path(),
        "fails",
        "[stages.broken]\nkind = \"debug.fail\"\ninputs = { table = \"sample\" }\nmode = \"error\"\n\
         [stages.hog]\nkind = \"debug.fail\"\ninputs = { table = \"sample\" }\nmode = \"hog\"\nmegabytes = 600\nseconds = 5\nresources = { mem = \"150M\" }\n",
    );
    let report = run_report(&store, &[&p, "--keep-going"]);
    let (status, reason) = status_of(&report, "broken");
    assert_eq!(status, "failed");
    assert!(
        reason.contains(
            "ended FAILED without a result; the stage failed: debug.fail: failing on purpose"
        ),
        "{reason}"
    );
    let (status, reason) = status_of(&report, "hog");
    assert_eq!(status, "failed");
    assert!(reason.contains("ended OUT_OF_MEMORY"), "{reason}");
    assert!(
        reason.contains("exceeded memory limit"),
        "the log tail is shown: {reason}"
    );
    // Nothing of a failed job is cached.
    assert_eq!(
        status_of(&run_report(&store, &[&p, "--keep-going"]), "hog").0,
        "failed"
    );
}

#[test]
fn scancel_fails_the_stage_and_a_rerun_resumes_after_the_completed_ones() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let p = pipeline(
        dir.path(),
        "cancel",
        "[stages.slow]\nkind = \"debug.fail\"\ninputs = { table = \"sample\" }\nmode = \"sleep\"\nseconds = 60\n",
    );
    let run = std::thread::spawn({
        let (store, p) = (store.clone(), p.clone());
        move || run_report(&store, &[&p])
    });
    wait_until("the slow job", Duration::from_secs(60), || {
        !queued("slow").is_empty()
    });
    let ids = queued("slow");
    assert!(
        Command::new("scancel")
            .args(&ids)
            .status()
            .unwrap()
            .success()
    );
    let report = run.join().unwrap();
    let (status, reason) = status_of(&report, "slow");
    assert_eq!(status, "failed");
    assert!(reason.contains("ended CANCELLED"), "{reason}");
    // The rerun keeps flores and sample, and runs only the cancelled stage (now quick).
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("seconds = 60", "seconds = 0");
    std::fs::write(&p, text).unwrap();
    let rerun = run_report(&store, &[&p]);
    assert_eq!(status_of(&rerun, "flores").0, "cached");
    assert_eq!(status_of(&rerun, "sample").0, "cached");
    assert_eq!(status_of(&rerun, "slow").0, "ran");
}

#[test]
fn ctrl_c_cancels_the_runs_jobs_and_status_shows_jobs_in_flight() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let p = pipeline(
        dir.path(),
        "interrupt",
        "[stages.nap]\nkind = \"debug.fail\"\ninputs = { table = \"sample\" }\nmode = \"sleep\"\nseconds = 120\n",
    );
    let run = Command::new(env!("CARGO_BIN_EXE_alinea"))
        .arg("--store")
        .arg(&store)
        .args(["run", &p])
        .current_dir(repo())
        .env("ALINEA_DEBUG_STAGES", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the nap job", Duration::from_secs(60), || {
        !queued("nap").is_empty()
    });
    // `status` from another process sees the job of the stage's action.
    let status = json(&store, &["status", &p]);
    let nap = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "nap")
        .unwrap()
        .clone();
    assert!(
        matches!(nap["state"].as_str(), Some("queued" | "running"))
            && nap["reasons"][0].as_str().unwrap().starts_with("job "),
        "{nap}"
    );
    // SAFETY: kill(2) with the pid of our own child, which has not been waited for, so the pid is still its own.
    unsafe {
        libc::kill(run.id() as i32, libc::SIGINT);
    }
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled 1 Slurm job(s)"), "{stderr}");
    wait_until("the queue to empty", Duration::from_secs(20), || {
        queued("nap").is_empty()
    });
}

/// Slurm's limits are in whole minutes: a job of one minute that sleeps for three ends TIMEOUT (after the limit and
/// the controller's next check, about 60–90 s), named as such with its log tail, and `retries` does not resubmit it
/// (only NODE_FAIL and PREEMPTED are retried).
#[test]
fn a_job_over_its_time_limit_ends_timeout_and_is_not_retried() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let p = pipeline(
        dir.path(),
        "overtime",
        "[stages.slow]\nkind = \"debug.fail\"\ninputs = { table = \"sample\" }\nmode = \"sleep\"\nseconds = 180\nresources = { time = \"00:01:00\" }\n",
    );
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("poll_seconds = 0.2\n", "poll_seconds = 0.5\nretries = 2\n");
    std::fs::write(&p, text).unwrap();
    let before = jobs_named("slow");
    let report = run_report(&store, &[&p]);
    let (status, reason) = status_of(&report, "slow");
    assert_eq!(status, "failed", "{report}");
    assert!(reason.contains("ended TIMEOUT"), "{reason}");
    assert!(
        reason.contains("DUE TO TIME LIMIT"),
        "the log tail (slurmstepd's cancellation line) is shown: {reason}"
    );
    // One job, not three: a time limit is the stage's own doing, resubmitting would time out again.
    let new: Vec<String> = jobs_named("slow")
        .into_iter()
        .filter(|j| !before.contains(j))
        .collect();
    assert_eq!(new.len(), 1, "jobs submitted for `slow`: {new:?}");
    assert!(
        reason.contains(&format!("job {} ended", new[0])),
        "{reason}"
    );
    assert_eq!(status_of(&report, "sample").0, "ran");
}

/// Three instances of a matrix, ready together with equal resources, go out as one job array of three tasks; the
/// results equal a local run's, and each record names its task (`ARRAY_TASK`).
#[test]
fn a_matrix_ready_at_once_is_one_job_array_with_results_equal_to_a_local_run() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        dir.path(),
        "arrayed",
        "[stages.pick]\nkind = \"sample\"\ninputs = { pairs = \"flores\" }\nsplits = [\"dev\"]\nper_lang = 20\nlocal = false\nmatrix = { seed = [1, 2, 3] }\nresources = { cpus = 1, mem = \"500M\" }\n",
    );
    // The three (and `sample`) must be in flight together (`-j`), and a loaded test machine may take a while to get them there.
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "poll_seconds = 0.2\n",
        "poll_seconds = 0.2\ngroup_seconds = 3\n",
    );
    std::fs::write(&p, text).unwrap();
    let before = arrays_of("pick");
    let on_slurm = run_report(&dir.path().join("slurm"), &[&p, "-j", "4"]);
    let local = run_report(&dir.path().join("local"), &[&p, "--executor", "local"]);
    assert_eq!(keys_and_digests(&on_slurm), keys_and_digests(&local));
    let arrays: Vec<String> = arrays_of("pick")
        .into_iter()
        .filter(|j| !before.contains(j))
        .collect();
    assert_eq!(arrays.len(), 3, "one array of three tasks: {arrays:?}");
    let array = arrays[0].split('_').next().unwrap().to_string();
    let mut tasks: Vec<String> = arrays.clone();
    tasks.sort();
    assert_eq!(
        tasks,
        (0..3).map(|t| format!("{array}_{t}")).collect::<Vec<_>>(),
        "{arrays:?}"
    );
    // Each stage's record names its own task.
    let mut jobs: Vec<String> = (1..=3)
        .map(|seed| {
            let log = json(&dir.path().join("slurm"), &["log", &format!("pick_{seed}")]);
            log["job"]["id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    jobs.sort();
    assert_eq!(jobs, tasks);
    // What Slurm wrote about each task went into that stage's own log.
    let logs: Vec<String> = std::fs::read_dir(dir.path().join("slurm").join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(!logs.iter().any(|l| l.starts_with("array-")), "{logs:?}");
}

/// Job ids of array tasks (named `alinea:<first instance>+<more>`) of the instances of matrix stage `stage`.
fn arrays_of(stage: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i %j"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, name)| name.starts_with(&format!("alinea:{stage}_")) && name.contains('+'))
        .map(|(id, _)| id.to_string())
        .collect()
}

/// The demo pipeline, made small, through Slurm with the default placement (alignment, the model, training,
/// generation and the analyses as jobs; the cheap stages in the coordinator) gives the same bytes as a local run.
/// The one-machine cluster has no GPU: the GPU kinds ask for none (`resources = { gpus = 0 }`), as on a CPU
/// partition.
#[test]
fn the_demo_pipeline_through_slurm_is_byte_identical_to_a_local_run() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let mut demo = std::fs::read_to_string(repo().join("pipelines/demo.toml"))
        .unwrap()
        .replace(
            "root = \"..\"",
            &format!("root = {:?}", repo().display().to_string()),
        );
    for kind in ["train.lora", "generate", "analysis.representations"] {
        let line = format!("kind = \"{kind}\"\n");
        assert!(demo.contains(&line), "the demo has no {kind} stage");
        demo = demo.replace(&line, &format!("{line}resources = {{ gpus = 0 }}\n"));
    }
    demo.push_str(
        "\n[executor]\npoll_seconds = 0.2\ngroup_seconds = 0.5\nsubmissions_per_minute = 120\n",
    );
    let p = write(dir.path(), "demo.toml", &demo);
    let p = p.to_str().unwrap();
    let run = |store: &str, executor: &str| {
        let mut args = vec![p, "--executor", executor, "-j", "4"];
        args.extend(SMALL_DEMO);
        run_report(&dir.path().join(store), &args)
    };
    let on_slurm = run("slurm", "slurm");
    let local = run("local", "local");
    assert!(
        statuses(&on_slurm)
            .iter()
            .all(|(_, status, _)| status == "ran"),
        "{on_slurm}"
    );
    assert_eq!(keys_and_digests(&on_slurm), keys_and_digests(&local));
    // The cluster ran the heavy kinds, the coordinator the cheap ones.
    let job_of = |stage: &str| json(&dir.path().join("slurm"), &["log", stage])["job"].clone();
    for stage in ["align", "tiny", "lora_mt", "gen_mt_align", "repr_mt"] {
        assert!(job_of(stage)["id"].is_string(), "{stage} ran as a job");
    }
    for stage in ["opus", "sample", "mt", "report"] {
        assert!(job_of(stage).is_null(), "{stage} ran in the coordinator");
    }
}

/// Jobs on a node-local cache (`[executor] job_store`) in front of the run's remote: no store is shared with the
/// coordinator, the artifacts travel through the remote, and the results equal a local run's.
#[test]
fn jobs_on_a_node_local_cache_exchange_artifacts_through_the_remote() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let node_cache = dir.path().join("node-cache");
    let p = pipeline(
        dir.path(),
        "nodelocal",
        "[stages.pick]\nkind = \"sample\"\ninputs = { pairs = \"sample\" }\nsplits = [\"dev\"]\nper_lang = 10\nlocal = false\n",
    );
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "poll_seconds = 0.2\n",
        &format!(
            "poll_seconds = 0.2\njob_store = \"{}\"\n",
            node_cache.display()
        ),
    );
    std::fs::write(&p, text).unwrap();
    let remote = format!("file://{}", dir.path().join("remote").display());
    let coordinator = dir.path().join("coordinator");
    let on_slurm = run_report(&coordinator, &[&p, "--remote", &remote]);
    let local = run_report(&dir.path().join("local"), &[&p, "--executor", "local"]);
    assert_eq!(statuses(&on_slurm), statuses(&local), "{on_slurm}");
    for (stage, _, digest) in statuses(&on_slurm) {
        // Computed in the node's cache, pushed to the remote, brought from there into the coordinator's store.
        let record = json(&coordinator, &["log", &stage]);
        assert!(record["job"]["id"].is_string(), "{stage} ran as a job");
        let key = record["key"].as_str().unwrap().to_string();
        let in_node = node_cache
            .join("actions")
            .join(&key[..2])
            .join(format!("{key}.json"));
        assert!(in_node.is_file(), "{stage}: no record in the node's cache");
        let on_remote = dir
            .path()
            .join("remote")
            .join("ac")
            .join(format!("{key}.json"));
        assert!(on_remote.is_file(), "{stage}: no record on the remote");
        assert!(
            coordinator
                .join("objects")
                .join(&digest[..2])
                .join(&digest)
                .is_file(),
            "{stage}: its output is not in the coordinator's store"
        );
    }
    // The job's own log is in the node's cache.
    let logs = std::fs::read_dir(node_cache.join("logs")).unwrap().count();
    assert_eq!(logs, 3, "one log per job in the node's cache");
}

/// The coordinator sizes candle's threads to its share of its own cores (`CANDLE_NUM_THREADS`, `RAYON_NUM_THREADS`);
/// sbatch exports the submitting environment, so those must not reach the jobs, which size their own share on
/// their node. A value the user set is theirs and goes through. Seen by an `sbatch` in front of the real one on
/// PATH, which records the environment it is given (what the job inherits) and hands over.
#[test]
fn jobs_do_not_inherit_the_coordinators_thread_share_but_do_inherit_the_users() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    let real = Command::new("sh")
        .args(["-c", "command -v sbatch"])
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    assert!(!real.is_empty(), "sbatch not on PATH");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let seen = dir.path().join("sbatch-env");
    let wrapper = write(
        &bin,
        "sbatch",
        &format!("#!/bin/sh\nenv >> {}\nexec {real} \"$@\"\n", seen.display()),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let p = pipeline(dir.path(), "threads", "");
    let run = |store: &str, candle: Option<&str>| {
        let mut cmd = alinea(&dir.path().join(store));
        cmd.env("PATH", &path)
            .env_remove("CANDLE_NUM_THREADS")
            .env_remove("RAYON_NUM_THREADS")
            .args(["--threads", "2", "run", &p]);
        if let Some(n) = candle {
            cmd.env("CANDLE_NUM_THREADS", n);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(&seen).unwrap();
        std::fs::remove_file(&seen).unwrap();
        env
    };
    let env = run("a", None);
    assert!(
        env.contains("PATH="),
        "the wrapper saw the environment: {env}"
    );
    for var in [
        "CANDLE_NUM_THREADS=",
        "RAYON_NUM_THREADS=",
        "ALINEA_THREAD_VARS_SET=",
    ] {
        assert!(
            !env.lines().any(|l| l.starts_with(var)),
            "{var} reached the job:\n{env}"
        );
    }
    let env = run("b", Some("3"));
    assert!(env.lines().any(|l| l == "CANDLE_NUM_THREADS=3"), "{env}");
    assert!(
        !env.lines().any(|l| l.starts_with("RAYON_NUM_THREADS=")),
        "{env}"
    );
}

/// Two compute nodes, each with its own network address and host name (network and UTS namespaces, veth pairs on
/// a bridge; `scripts/slurm-local.sh up-two`): one run's jobs land on both hosts, which exchange artifacts through
/// the shared store, and the bytes equal a local run's. Each node has one CPU, so the instances of a matrix in
/// flight together must go to both.
#[test]
fn stages_land_on_two_hosts_in_network_namespaces_with_a_local_runs_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        dir.path(),
        "twohosts",
        "[stages.pick]\nkind = \"sample\"\ninputs = { pairs = \"flores\" }\nsplits = [\"dev\"]\nper_lang = 60\nlocal = false\n\
         matrix = { seed = [1, 2, 3, 4] }\nresources = { cpus = 1, mem = \"500M\" }\n\
         [stages.align]\nkind = \"align.ibm2\"\ninputs = { pairs = \"sample\" }\nlocal = false\nresources = { cpus = 1, mem = \"1G\" }\n",
    );
    let slurm = dir.path().join("slurm");
    let on_slurm = run_on_two_nodes(&slurm, &[&p, "-j", "4"]);
    let local = run_report(&dir.path().join("local"), &[&p, "--executor", "local"]);
    assert!(
        statuses(&on_slurm).iter().all(|(_, s, _)| s == "ran"),
        "{on_slurm}"
    );
    assert_eq!(keys_and_digests(&on_slurm), keys_and_digests(&local));
    let mut nodes = std::collections::BTreeSet::new();
    for stage in [
        "flores", "sample", "pick_1", "pick_2", "pick_3", "pick_4", "align",
    ] {
        let job = json(&slurm, &["log", stage])["job"].clone();
        let node = job["node"].as_str().unwrap_or_default().to_string();
        assert!(
            ["n1", "n2"].contains(&node.as_str()),
            "{stage} ran on {job}"
        );
        // The job's own log was written on that host, into the shared store.
        let log = std::fs::read_to_string(job["log"].as_str().unwrap()).unwrap();
        assert!(log.contains("stored"), "{stage}: {log}");
        nodes.insert(node);
    }
    assert_eq!(nodes.len(), 2, "every job on one host: {nodes:?}");
}

/// A `command` stage on a two-node allocation (`resources = { nodes = 2 }`) runs one task per node through
/// scripts/slurm-nodes.sh, which sets the rendezvous that torchrun, accelerate and DeepSpeed read (MASTER_ADDR of
/// the first node, NODE_RANK, NNODES): the task on n2 reaches the one on n1 across the namespaces, as a second
/// node's trainer reaches the first's TCP store. Python's standard library stands in for torch, which CI lacks.
#[test]
fn a_multi_node_command_runs_one_task_per_node_that_rendezvous_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        dir.path(),
        "multinode",
        "[stages.ranks]\nkind = \"command\"\n\
         run = [\"scripts/slurm-nodes.sh\", \"python3\", \"tests/data/slurm/rendezvous.py\", \"--out\", \"{out.ranks}\"]\n\
         tools = [\"scripts/slurm-nodes.sh\", \"tests/data/slurm/rendezvous.py\"]\n\
         outputs = { ranks = { table = \"jsonl\" } }\nlocal = false\nresources = { nodes = 2, cpus = 1, mem = \"500M\" }\n",
    );
    let store = dir.path().join("slurm");
    run_on_two_nodes(&store, &[&p, "ranks"]);
    let rows = json(
        &store,
        &[
            "query",
            "SELECT rank, host, world, total FROM ranks ORDER BY rank",
        ],
    );
    assert_eq!(
        rows,
        serde_json::json!([
            {"rank": 0, "host": "n1", "world": 2, "total": 11},
            {"rank": 1, "host": "n2", "world": 2, "total": 11},
        ]),
        "one task per node, rank 1 reached rank 0"
    );
    // Outside an allocation the launcher says what is wrong instead of running one task.
    let local = alinea(&dir.path().join("local"))
        .env_remove("SLURM_JOB_ID")
        .args(["run", &p, "ranks", "--executor", "local"])
        .output()
        .unwrap();
    assert!(!local.status.success());
    assert!(
        String::from_utf8_lossy(&local.stderr).contains("not inside a Slurm allocation"),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
}
