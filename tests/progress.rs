//! Progress of `alinea run` (issue 13): the overall line (done / running / queued of N, elapsed) goes to stderr,
//! drawn in place on a terminal and as plain lines when `ALINEA_PROGRESS=plain` asks for them in a log; it never
//! reaches stdout, a cache key or an artifact. On the ingestion part of the demo (real data from `datasets/`).

mod common;

use common::*;

const PIPELINE: &str = "tests/data/pipelines/ingest.toml";

#[test]
fn plain_progress_lines_go_to_stderr_only_and_change_no_key_or_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = alinea(&store)
        .env("ALINEA_PROGRESS", "plain")
        .args(["--json", "run", PIPELINE])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("progress: 0/3 done, ")),
        "{stderr}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("progress: 3/3 done, 0 running, 0 queued, ")
            && last.ends_with("s elapsed"),
        "{stderr}"
    );
    // stdout is the JSON report alone.
    let with_progress: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("progress"));

    // The same pipeline without progress, in another store: the same keys and the same bytes.
    let quiet_store = dir.path().join("quiet");
    let out = alinea(&quiet_store)
        .env("ALINEA_PROGRESS", "off")
        .args(["--json", "run", PIPELINE])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("progress"));
    let quiet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys_and_digests(&with_progress), keys_and_digests(&quiet));

    // Without the flag and without a terminal, logs stay clean.
    let out = alinea(&store).args(["run", PIPELINE]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("progress") && !stderr.contains("stages done"),
        "{stderr}"
    );

    let out = alinea(&store)
        .env("ALINEA_PROGRESS", "loud")
        .args(["run", PIPELINE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("ALINEA_PROGRESS=loud: expected auto, plain or off")
    );
}

#[test]
fn on_a_terminal_the_overall_line_is_drawn() {
    // util-linux `script` gives the run a pseudo-terminal, as an interactive shell would.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let command = format!(
        "'{}' --store '{}' run {PIPELINE}",
        env!("CARGO_BIN_EXE_alinea"),
        store.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(repo())
        .env_remove("ALINEA_PROGRESS")
        .env("TERM", "xterm")
        .output()
        .expect("util-linux `script` runs the command on a pseudo-terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("stages done"),
        "no overall line on the terminal:\n{screen}"
    );
    assert!(screen.contains("/3 stages done · "), "{screen}");
    assert!(screen.contains("queued"), "{screen}");
}
