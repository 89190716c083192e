//! Running the command: no shell, a fresh environment, stdout and stderr streamed line by line into log files (and
//! the progress line) while it runs, the last lines of stderr kept for the error message.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use alinea_engine::{StageCtx, StageError};

use super::Scratch;

/// Lines of stderr shown when the command fails.
const TAIL_LINES: usize = 20;

/// A finished, successful run: where its logs are and how long they were.
pub(crate) struct Finished {
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
    pub(crate) stdout_lines: u64,
    pub(crate) stderr_lines: u64,
}

/// What one stream left behind.
struct Streamed {
    lines: u64,
    tail: VecDeque<String>,
}

/// Copies `reader` to `log` line by line as it arrives (a line is written out as soon as it ends, so a long job's
/// log can be watched), shows each line as the progress message, and keeps the last [`TAIL_LINES`].
fn stream(
    reader: impl Read,
    log: &Path,
    bar: &indicatif::ProgressBar,
) -> std::io::Result<Streamed> {
    let mut file = std::fs::File::create(log)?;
    let mut reader = BufReader::new(reader);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut lines = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        file.write_all(&buf)?;
        file.flush()?;
        lines += 1;
        let text = String::from_utf8_lossy(&buf);
        // Progress bars redraw with `\r`: the last segment is what a terminal would show.
        let shown = text.trim_end().rsplit('\r').next().unwrap_or_default().to_string();
        bar.set_message(shown.chars().take(100).collect::<String>());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(shown);
    }
    file.sync_all()?;
    Ok(Streamed { lines, tail })
}

/// Runs `args` in the scratch working directory with exactly `env`; fails with the last lines of stderr when the
/// command cannot start or exits with anything but 0.
pub(crate) fn run(
    args: &[String],
    env: &[(String, std::ffi::OsString)],
    scratch: &Scratch,
    ctx: &StageCtx,
) -> Result<Finished, StageError> {
    let (program, rest) = args.split_first().ok_or_else(|| StageError::Param {
        field: "run".into(),
        message: "empty".into(),
    })?;
    let mut child = Command::new(program)
        .args(rest)
        .current_dir(&scratch.cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            StageError::Other(format!(
                "cannot start `{program}`: {e} (PATH is the one alinea runs with; the working directory is a scratch directory, so name scripts in `tools` or give absolute paths)"
            ))
        })?;
    let bar = ctx.progress(0, program);
    let (stdout_log, stderr_log) = (scratch.logs.join("stdout.log"), scratch.logs.join("stderr.log"));
    let out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let (streamed_out, streamed_err, status) = std::thread::scope(|s| {
        let o = s.spawn(|| stream(out, &stdout_log, &bar));
        let e = s.spawn(|| stream(err, &stderr_log, &bar));
        let status = child.wait();
        (o.join(), e.join(), status)
    });
    bar.finish_and_clear();
    let status = status.map_err(|e| StageError::Other(format!("waiting for `{program}`: {e}")))?;
    let joined = |r: std::thread::Result<std::io::Result<Streamed>>, log: &Path| {
        r.map_err(|_| StageError::Other("a log reader panicked".into()))?
            .map_err(StageError::io(log))
    };
    let streamed_out = joined(streamed_out, &stdout_log)?;
    let streamed_err = joined(streamed_err, &stderr_log)?;
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => format!("was killed ({status})"),
        };
        let tail: Vec<String> = streamed_err.tail.iter().map(|l| format!("  | {l}")).collect();
        return Err(StageError::Other(format!(
            "`{program}` {how}; nothing is cached. Last lines of stderr ({} in all, full log: {}):\n{}",
            streamed_err.lines,
            stderr_log.display(),
            if tail.is_empty() { "  | (empty)".to_string() } else { tail.join("\n") }
        )));
    }
    Ok(Finished {
        stdout: stdout_log,
        stderr: stderr_log,
        stdout_lines: streamed_out.lines,
        stderr_lines: streamed_err.lines,
    })
}
