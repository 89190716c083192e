//! The local executor's memory budget: stages that declare `resources.mem` never run beside each other past
//! `--mem`, stages that declare nothing keep `-j`'s parallelism, and a bad size is a plan error naming the field.

mod common;

use std::path::Path;

use common::*;

/// Two independent `command` stages, `a` and `b`, each declaring `mem` (when given) and appending
/// `start NAME NANOS` / `end NAME NANOS` to `dir/times` around a sleep of 1 s.
fn pipeline(dir: &Path, mem: Option<&str>) -> String {
    let log = dir.join("times");
    let resources = mem.map_or(String::new(), |m| {
        format!("resources = {{ mem = \"{m}\" }}\n")
    });
    let stage = |name: &str| {
        format!(
            r#"[stages.{name}]
kind = "command"
run = ["sh", "-c", "echo start {name} $(date +%s%N) >> {log}; sleep 1; echo end {name} $(date +%s%N) >> {log}; echo {name} > \"$0\"", "{{out.done}}"]
outputs = {{ done = {{ file = true }} }}
{resources}"#,
            log = log.display()
        )
    };
    let text = format!(
        "[pipeline]\nroot = \"{}\"\n{}{}",
        dir.display(),
        stage("a"),
        stage("b")
    );
    write(dir, "p.toml", &text).display().to_string()
}

/// Whether the two stages' [start, end] intervals in `dir/times` overlap (and the log is cleared for the next run).
fn overlapped(dir: &Path) -> bool {
    let path = dir.join("times");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let time = |what: &str, name: &str| -> u128 {
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f[0] == what && f[1] == name).then(|| f[2].parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no `{what} {name}` in {text}"))
    };
    let (a, b) = (
        (time("start", "a"), time("end", "a")),
        (time("start", "b"), time("end", "b")),
    );
    a.0 < b.1 && b.0 < a.1
}

fn run(store: &Path, p: &str, extra: &[&str]) {
    let mut args = vec!["run", p, "-j", "2"];
    args.extend(extra);
    let report = json(store, &args);
    assert!(
        statuses(&report).iter().all(|(_, st, _)| st == "ran"),
        "{report}"
    );
}

#[test]
fn declared_memory_keeps_large_stages_apart_and_the_rest_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 600M + 600M > 1G: one after the other, though -j 2 would run both.
    run(&d.join("s1"), &pipeline(d, Some("600M")), &["--mem", "1G"]);
    assert!(
        !overlapped(d),
        "two 600M stages ran together under --mem 1G"
    );
    // They fit in 2G, and without the limit: side by side.
    run(&d.join("s2"), &pipeline(d, Some("600M")), &["--mem", "2G"]);
    assert!(
        overlapped(d),
        "two 600M stages did not run together under --mem 2G"
    );
    run(
        &d.join("s3"),
        &pipeline(d, Some("600M")),
        &["--mem", "none"],
    );
    assert!(overlapped(d), "--mem none still held stages back");
    // A stage larger than the whole budget runs (alone) instead of waiting forever.
    run(&d.join("s4"), &pipeline(d, Some("3G")), &["--mem", "1G"]);
    assert!(!overlapped(d));
    // Stages that declare nothing are not held back, whatever the budget.
    run(&d.join("s5"), &pipeline(d, None), &["--mem", "1K"]);
    assert!(overlapped(d));
    // `resources` is not in the key: where and beside what a stage ran does not change its result.
    let again = json(&d.join("s1"), &["run", &pipeline(d, Some("2G")), "-j", "2"]);
    assert!(
        statuses(&again).iter().all(|(_, st, _)| st == "cached"),
        "{again}"
    );
}

#[test]
fn a_bad_size_is_an_error_naming_the_stage_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let err = fails(&store, &["run", &pipeline(dir.path(), Some("lots"))]);
    assert!(
        err.contains("stages.a.resources") && err.contains("`lots`") && err.contains("64G"),
        "{err}"
    );
    let err = fails(
        &store,
        &["run", &pipeline(dir.path(), None), "--mem", "1.5G"],
    );
    assert!(
        err.contains("--mem `1.5G`") && err.contains("none"),
        "{err}"
    );
}
