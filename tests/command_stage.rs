//! The `command` stage kind end to end, with tools CI has (Python's standard library, `sh`): inputs materialized
//! (Parquet linked from the store, JSON Lines / CSV written), outputs read back (tables as Parquet, files, folders),
//! what the key covers (tool bytes, allowlisted environment values, not other variables), and every failure
//! mode: non-zero exit, death by signal, a program that cannot start, a missing or unparsable output, bad
//! declarations, and `--check-determinism`.

mod common;

use std::path::Path;

use common::*;

/// Counts rows per language of a JSON Lines input, writes a table, a folder, and the environment it saw.
const COUNT_PY: &str = r#"import collections, json, os, sys
src, table, tree, env = sys.argv[1:5]
counts = collections.Counter()
with open(src, encoding="utf-8") as f:
    for line in f:
        counts[json.loads(line)["lang"]] += 1
with open(table, "w") as f:
    for lang, n in sorted(counts.items()):
        f.write(json.dumps({"lang": lang, "n": n}) + "\n")
os.makedirs(os.path.join(tree, "sub"))
with open(os.path.join(tree, "a.txt"), "w") as f:
    f.write("alpha\n")
with open(os.path.join(tree, "sub", "b.txt"), "w") as f:
    f.write("beta\n")
with open(env, "w") as f:
    f.write("\n".join(sorted(os.environ)) + "\n")
print("rows", sum(counts.values()))
print("a line on stderr", file=sys.stderr)
"#;

/// The Python interpreter itself, not a launcher on PATH (pyenv's shim, a shell script, adds variables of its own
/// to the environment the command then reports).
fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 on PATH");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// FLORES-200 dev (be) and a `command` stage counting it; `extra` is appended.
fn pipeline(dir: &Path, extra: &str) -> String {
    let tool = write(dir, "count.py", COUNT_PY);
    let text = format!(
        r#"[pipeline]
root = "{root}"
[stages.flores]
kind = "ingest.flores200"
inputs = {{ root = "datasets/flores200" }}
langs = ["be"]
splits = ["dev"]
[stages.count]
kind = "command"
run = ["{python}", "{tool}", "{{in.pairs}}", "{{out.counts}}", "{{out.tree}}", "{{out.env}}"]
inputs = {{ pairs = "flores" }}
in_format = {{ pairs = "jsonl" }}
tools = ["{tool}"]
env = ["ALINEA_TEST_FLAG"]
outputs = {{ counts = {{ table = "jsonl" }}, tree = {{ folder = true }}, env = {{ file = true }} }}
{extra}"#,
        root = repo().display(),
        tool = tool.display(),
        python = python(),
    );
    write(dir, "p.toml", &text).display().to_string()
}

fn run_with(store: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = alinea(store);
    cmd.env_remove("ALINEA_TEST_FLAG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("spawn alinea")
}

fn run_json(store: &Path, pipeline: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let out = run_with(store, &["--json", "run", pipeline], env);
    assert!(
        out.status.success(),
        "run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stage<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {report}"))
}

fn object(store: &Path, report: &serde_json::Value, stage_name: &str, output: &str) -> Vec<u8> {
    let outputs = stage(report, stage_name)["outputs"].as_array().unwrap();
    let o = outputs
        .iter()
        .find(|o| o["name"] == output)
        .unwrap_or_else(|| panic!("no output {output} in {outputs:?}"));
    let digest = o["digest"].as_str().unwrap();
    std::fs::read(store.join("objects").join(&digest[..2]).join(digest)).unwrap()
}

fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn a_command_reads_materialized_inputs_and_its_outputs_are_stored_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = pipeline(
        dir.path(),
        // Reads the folder output and the table (as CSV) of the first command: the link count shows the folder's
        // files are hard links to the store's objects, not copies. The whole stage, named alone, is its files (as
        // a model stage is its model files, not its loss table): the folder and the file output, side by side.
        r#"[stages.check]
kind = "command"
run = ["sh", "-c", "stat -c %h \"$1/a.txt\" > \"$2\"; cat \"$1/sub/b.txt\" >> \"$2\"; cat \"$3\" >> \"$2\"; ls \"$4\" >> \"$2\"; ls \"$4/tree\" >> \"$2\"", "sh", "{in.tree}", "{out.report}", "{in.counts}", "{in.whole}"]
inputs = { tree = "count.tree", counts = "count.counts", whole = "count" }
in_format = { counts = "csv" }
outputs = { report = { file = true } }
"#,
    );
    let report = run_json(&store, &p, &[("ALINEA_TEST_FLAG", "one")]);
    assert_eq!(stage(&report, "count")["status"], "ran");
    // The outside reference: the line count of the FLORES file the ingest stage read.
    let be = lines_of(&repo().join("datasets/flores200/dev/bel_Cyrl.dev"));
    let export = dir.path().join("counts.jsonl");
    let out = alinea(&store)
        .args(["export", "count", "-o"])
        .arg(&export)
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows, vec![serde_json::json!({"lang": "be", "n": be})]);
    // The folder output is stored file by file under `tree/`.
    assert_eq!(object(&store, &report, "count", "tree/a.txt"), b"alpha\n");
    assert_eq!(
        object(&store, &report, "count", "tree/sub/b.txt"),
        b"beta\n"
    );
    let check = String::from_utf8(object(&store, &report, "check", "report")).unwrap();
    let mut lines = check.lines();
    let links: u64 = lines.next().unwrap().parse().unwrap();
    assert!(links >= 2, "a.txt was copied, not linked: {check}");
    assert_eq!(
        lines.collect::<Vec<_>>(),
        [
            "beta",
            "lang,n",
            &format!("be,{be}"),
            "env",
            "tree",
            "a.txt",
            "sub"
        ]
    );
    // The command saw only PATH, the allowlisted variable and alinea's own (Python may add LC_CTYPE).
    let env = String::from_utf8(object(&store, &report, "count", "env")).unwrap();
    let seen: Vec<&str> = env.lines().collect();
    assert!(
        seen.contains(&"ALINEA_TEST_FLAG") && seen.contains(&"PATH"),
        "{seen:?}"
    );
    for var in &seen {
        assert!(
            [
                "ALINEA_ROOT",
                "ALINEA_SCRATCH",
                "ALINEA_TEST_FLAG",
                "PATH",
                "TMPDIR",
                "LC_CTYPE"
            ]
            .contains(var),
            "the command saw `{var}`, which is not allowlisted: {seen:?}"
        );
    }
    // The logs are kept with the record, not as outputs.
    let log = alinea(&store).args(["log", "count"]).output().unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains(&format!("| rows {be}")), "{log}");
    assert!(log.contains("| a line on stderr"), "{log}");

    // Rerun: cached; a variable outside the allowlist changes nothing.
    let again = run_json(
        &store,
        &p,
        &[("ALINEA_TEST_FLAG", "one"), ("UNRELATED", "x")],
    );
    assert_eq!(stage(&again, "count")["status"], "cached");
    assert_eq!(stage(&again, "check")["status"], "cached");
}

#[test]
fn tool_contents_and_allowlisted_values_are_in_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = pipeline(dir.path(), "");
    run_json(&store, &p, &[("ALINEA_TEST_FLAG", "one")]);
    let r = run_json(&store, &p, &[("ALINEA_TEST_FLAG", "two")]);
    let count = stage(&r, "count");
    assert_eq!(count["status"], "ran");
    assert!(
        count["reason"]
            .as_str()
            .unwrap()
            .contains("env:ALINEA_TEST_FLAG changed"),
        "{count}"
    );
    // Unset is a value too.
    let r = run_json(&store, &p, &[]);
    assert_eq!(stage(&r, "count")["status"], "ran");
    // An edit of the tool file (same behaviour, other bytes) reruns the stage and says why; its table is
    // byte-identical, so early cutoff leaves its consumers alone.
    let tool = dir.path().join("count.py");
    let before = object(&store, &r, "count", "counts");
    std::fs::write(&tool, format!("{COUNT_PY}# edited\n")).unwrap();
    let r = run_json(&store, &p, &[]);
    let count = stage(&r, "count");
    assert_eq!(count["status"], "ran");
    let reason = count["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("tool:{} changed", tool.display())),
        "{reason}"
    );
    assert_eq!(object(&store, &r, "count", "counts"), before);
}

/// A pipeline of one `command` stage with `body` (the keys after `kind`).
fn single(dir: &Path, body: &str) -> String {
    write(
        dir,
        "one.toml",
        &format!(
            "[pipeline]\nroot = \"{}\"\n[stages.x]\nkind = \"command\"\n{body}\n",
            dir.display()
        ),
    )
    .display()
    .to_string()
}

/// Runs `pipeline` expecting the stage to fail; checks that nothing was cached and returns stderr.
fn fails_uncached(store: &Path, pipeline: &str) -> String {
    let out = run_with(store, &["run", pipeline], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(store, &["status", pipeline]);
    assert_eq!(
        status[0]["state"], "stale",
        "a failed command was cached: {status}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_non_zero_exit_fails_caches_nothing_and_shows_the_end_of_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let script =
        "for i in $(seq 1 30); do echo \"line $i\" >&2; done; echo \"$1\" > \"$2\"; exit 3";
    let p = single(
        dir.path(),
        &format!(
            "run = [\"sh\", \"-c\", '{script}', \"sh\", \"data\", \"{{out.x}}\"]\noutputs = {{ x = {{ file = true }} }}"
        ),
    );
    let err = fails_uncached(&store, &p);
    assert!(
        err.contains("`sh` exited with status 3; nothing is cached"),
        "{err}"
    );
    assert!(err.contains("(30 in all"), "{err}");
    assert!(
        err.contains("| line 30") && err.contains("| line 11"),
        "{err}"
    );
    assert!(
        !err.contains("| line 10\n"),
        "more than the last 20 lines shown: {err}"
    );
}

#[test]
fn death_by_signal_and_a_program_that_cannot_start_fail_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = single(
        dir.path(),
        "run = [\"sh\", \"-c\", \"kill -9 $$\"]\noutputs = { x = { file = true } }",
    );
    let err = fails_uncached(&store, &p);
    assert!(err.contains("`sh` was killed"), "{err}");
    let p = single(
        dir.path(),
        "run = [\"/nonexistent/tool\"]\noutputs = { x = { file = true } }",
    );
    let err = fails_uncached(&store, &p);
    assert!(err.contains("cannot start `/nonexistent/tool`"), "{err}");
}

#[test]
fn a_missing_or_unparsable_declared_output_fails_and_caches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for (decl, what) in [
        ("{ file = true }", "a file"),
        ("{ folder = true }", "a directory"),
        ("{ table = \"csv\" }", "a csv file"),
    ] {
        let p = single(
            dir.path(),
            &format!("run = [\"true\"]\noutputs = {{ x = {decl} }}"),
        );
        let err = fails_uncached(&store, &p);
        assert!(
            err.contains(&format!(
                "the command exited 0 but did not write declared output `x` ({what} at"
            )),
            "{err}"
        );
    }
    let p = single(
        dir.path(),
        "run = [\"sh\", \"-c\", \"echo 'not json' > \\\"$1\\\"\", \"sh\", \"{out.t}\"]\noutputs = { t = { table = \"jsonl\" } }",
    );
    let err = fails_uncached(&store, &p);
    assert!(
        err.contains("t.jsonl") && err.contains("declared output is not a readable jsonl table"),
        "{err}"
    );
}

#[test]
fn bad_declarations_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let cases = [
        (
            "run = [\"true\", \"{out.nope}\"]\noutputs = { x = { file = true } }",
            "`{out.nope}` names no declared output; outputs are: x",
        ),
        (
            "run = [\"true\"]\noutputs = { x = { file = true, folder = true } }",
            "give exactly one of",
        ),
        ("run = [\"true\"]", "declare at least one output"),
        (
            "run = []\noutputs = { x = { file = true } }",
            "give the program and its arguments",
        ),
        (
            "run = [\"true\"]\noutputs = { x = { table = \"xlsx\" } }",
            "unknown variant `xlsx`",
        ),
    ];
    for (body, message) in cases {
        let p = single(dir.path(), body);
        let out = run_with(&store, &["run", &p], &[]);
        assert_eq!(out.status.code(), Some(2), "{body}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{body}: {err}");
    }
    // A format for an input that is not a table is found when the stage resolves its inputs.
    write(dir.path(), "data.txt", "x\n");
    let p = single(
        dir.path(),
        "run = [\"cp\", \"{in.data}\", \"{out.x}\"]\ninputs = { data = \"data.txt\" }\nin_format = { data = \"csv\" }\noutputs = { x = { file = true } }",
    );
    let err = fails_uncached(&store, &p);
    assert!(err.contains("input `data` is a path, not a table"), "{err}");
}

#[test]
fn check_determinism_names_outputs_whose_bytes_differ_between_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let random = single(
        dir.path(),
        "run = [\"python3\", \"-c\", \"import os, sys; open(sys.argv[1], 'wb').write(os.urandom(16)); open(sys.argv[2], 'w').write('same')\", \"{out.r}\", \"{out.s}\"]\noutputs = { r = { file = true }, s = { file = true } }",
    );
    let out = run_with(&store, &["run", "--check-determinism", &random], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "stage `x` (command) is not deterministic: a second run gave other bytes for r: "
        ),
        "{err}"
    );
    assert!(
        !err.contains(", s: "),
        "the deterministic output was reported: {err}"
    );
    // A deterministic command passes, and a cached one is run once more to compare with what is stored.
    let same = single(
        dir.path(),
        "run = [\"sh\", \"-c\", \"echo same > \\\"$1\\\"\", \"sh\", \"{out.s}\"]\noutputs = { s = { file = true } }",
    );
    for _ in 0..2 {
        let out = run_with(
            &store,
            &["--json", "run", "--check-determinism", &same],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            stage(&report, "x").get("nondeterministic").is_none(),
            "{report}"
        );
    }
}
