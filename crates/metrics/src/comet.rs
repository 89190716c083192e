//! COMET as bring-your-own: the neural model cannot be downloaded here, so alinea runs a command
//! the user names (e.g. a local `comet-score` with a local checkpoint) and reads its system score.
//! Without such a command the score is absent; it is never estimated or made up.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::MetricsError;

/// A user-supplied COMET command. Arguments may contain the placeholders `{src}`, `{hyp}` and
/// `{ref}`, replaced by the file paths, e.g.
/// `comet-score -s {src} -t {hyp} -r {ref} --model /models/wmt22-comet-da/checkpoints/model.ckpt`.
/// The command must print the system-level score as the last number of its last non-empty
/// stdout line (what `comet-score` does: `… score: 0.8412`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CometCommand {
    /// Program name (looked up on `PATH`) or path.
    pub program: String,
    /// Arguments with placeholders.
    pub args: Vec<String>,
}

impl CometCommand {
    /// Splits a command line on whitespace (no shell quoting; paths with spaces need `args`).
    pub fn parse(line: &str) -> Option<CometCommand> {
        let mut it = line.split_whitespace();
        let program = it.next()?.to_string();
        Some(CometCommand {
            program,
            args: it.map(str::to_string).collect(),
        })
    }

    fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A COMET system score obtained from the user's command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CometScore {
    /// The system score as printed by the command.
    pub score: f64,
    /// The command that produced it (for provenance).
    pub command: String,
}

/// Extracts the last number of the last non-empty line.
fn parse_last_number(stdout: &str) -> Option<f64> {
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    line.split(|c: char| c.is_whitespace() || c == ':' || c == '=' || c == ',')
        .rev()
        .find_map(|t| t.parse::<f64>().ok().filter(|v| v.is_finite()))
}

/// Runs the user's COMET command on the three files. `Ok(None)` when no command is configured or
/// its program does not exist (COMET is then reported as absent); an error when it runs but fails
/// or prints no score.
pub fn run_comet(
    cmd: Option<&CometCommand>,
    src: &Path,
    hyp: &Path,
    reference: &Path,
) -> Result<Option<CometScore>, MetricsError> {
    let Some(cmd) = cmd else { return Ok(None) };
    let subst = |a: &str| {
        a.replace("{src}", &src.display().to_string())
            .replace("{hyp}", &hyp.display().to_string())
            .replace("{ref}", &reference.display().to_string())
    };
    let args: Vec<String> = cmd.args.iter().map(|a| subst(a)).collect();
    let out = match Command::new(&cmd.program).args(&args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(MetricsError::Comet {
                command: cmd.display(),
                message: e.to_string(),
            });
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(MetricsError::Comet {
            command: cmd.display(),
            message: format!("exited with {}: {tail}", out.status),
        });
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse_last_number(&stdout) {
        Some(score) => Ok(Some(CometScore {
            score,
            command: cmd.display(),
        })),
        None => Err(MetricsError::Comet {
            command: cmd.display(),
            message: "no score on the last output line".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_without_command_or_program() {
        let p = Path::new("x");
        assert!(run_comet(None, p, p, p).unwrap().is_none());
        let c = CometCommand::parse("/nonexistent/comet-score -s {src}").unwrap();
        assert!(run_comet(Some(&c), p, p, p).unwrap().is_none());
    }

    #[test]
    fn reads_last_number_from_a_real_command() {
        let c = CometCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "echo 'seg 0.1'; echo '{hyp} score: 0.8412'".into(),
            ],
        };
        let p = Path::new("h.txt");
        let s = run_comet(Some(&c), p, p, p).unwrap().unwrap();
        assert_eq!(s.score, 0.8412);
        let bad = CometCommand {
            program: "sh".into(),
            args: vec!["-c".into(), "exit 3".into()],
        };
        assert!(run_comet(Some(&bad), p, p, p).is_err());
    }

    #[test]
    fn parses_comet_score_output() {
        assert_eq!(
            parse_last_number("a\tScore: 0.1\nhyp.txt score: 0.7712\n\n"),
            Some(0.7712)
        );
        assert_eq!(parse_last_number("nothing here"), None);
    }
}
