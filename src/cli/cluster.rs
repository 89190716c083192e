//! Cluster execution at the CLI edge: choosing the executor, `alinea exec --job` (what a Slurm job runs), and
//! cancelling the run's jobs on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use alinea_engine::exec::{self, JobSpec};
use alinea_engine::plan::Plan;
use alinea_engine::slurm::{self, ExecutorKind, SlurmConfig};
use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressDrawTarget};

use super::Global;

/// `--executor`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExecutorArg {
    /// In this process.
    Local,
    /// One Slurm batch job per stale stage.
    Slurm,
}

/// The Slurm configuration of a run, if it runs on Slurm (`--executor`, else the pipeline's `[executor]`).
pub fn slurm_config(plan: &Plan, arg: Option<ExecutorArg>) -> anyhow::Result<Option<SlurmConfig>> {
    let kind = match arg {
        Some(ExecutorArg::Local) => ExecutorKind::Local,
        Some(ExecutorArg::Slurm) => ExecutorKind::Slurm,
        None => plan.executor.kind,
    };
    if kind == ExecutorKind::Local {
        return Ok(None);
    }
    Ok(Some(SlurmConfig {
        spec: plan.executor.clone(),
        program: std::env::current_exe().context("locating the alinea binary the jobs run")?,
        workdir: std::env::current_dir().context("reading the working directory")?,
    }))
}

/// On Ctrl-C or SIGTERM: cancel the Slurm jobs this process submitted (there are none under the local executor),
/// say so and what was `kept`, exit with 128 + the signal. signal-hook hands the signal to a thread, so the
/// handler may run ordinary code (`scancel`, printing).
pub fn on_interrupt(kept: &'static str) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let cancelled = slurm::cancel_in_flight();
            if !cancelled.is_empty() {
                eprintln!(
                    "\ninterrupted: cancelled {} Slurm job(s) ({})",
                    cancelled.len(),
                    cancelled.join(", ")
                );
            }
            eprint!("{kept}");
            std::process::exit(128 + signal);
        }
    });
}

/// Arguments of `exec`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ExecArgs {
    /// The job file (`<store>/work/<key>/job.json`, in a store every node sees)
    #[arg(long)]
    job: Option<PathBuf>,
    /// The job file as an object on the remote (`[executor] job_store`: a node-local cache in front of `--remote`);
    /// the job pulls its inputs from the remote and pushes its outputs and record there
    #[arg(long, value_name = "DIGEST")]
    job_object: Option<String>,
}

/// `alinea exec --job FILE` (or `--job-object DIGEST --remote URL`): runs one stage as the coordinating run
/// resolved it, storing its outputs and record. A failure is also written beside the job file, so the coordinator
/// shows the stage's own error.
pub fn exec(global: &Global, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let remote = match &args.job_object {
        Some(_) => super::remote_cmds::configured(global, &Default::default())?.map(|(r, _)| r),
        None => None,
    };
    let (text, shown) = match (&args.job, &args.job_object, &remote) {
        (Some(file), _, _) => (
            std::fs::read(file)
                .with_context(|| format!("cannot read job file {}", file.display()))?,
            file.display().to_string(),
        ),
        (None, Some(digest), Some(remote)) => {
            remote.download(&store, digest)?;
            (
                std::fs::read(store.object_path(digest))?,
                format!("job object {digest}"),
            )
        }
        _ => anyhow::bail!("exec --job-object needs --remote (and remote mode not `off`)"),
    };
    let spec: JobSpec = serde_json::from_slice(&text)
        .with_context(|| format!("{shown}: not a job file of this alinea"))?;
    let key = spec.key().to_string();
    if let Some(remote) = &remote {
        for (digest, _) in spec.input_objects() {
            if !store.object_path(&digest).is_file() {
                remote.download(&store, &digest)?;
            }
        }
    }
    let registry = crate::stages::registry();
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
    match exec::execute_job(&store, &registry, spec, &progress) {
        Ok(record) => {
            if let Some(remote) = &remote {
                // Objects first, the record last: the coordinator takes the record as the job's completion.
                remote.push_record(&store, &record)?;
            }
            outln!("stored {} ({} outputs)", record.key, record.outputs.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = std::fs::write(slurm::failure_file(&store, &key), e.to_string());
            eprintln!("error: {e}");
            Ok(ExitCode::from(super::EXIT_FAILED))
        }
    }
}
