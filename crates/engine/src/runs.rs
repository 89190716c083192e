//! Run history (issue 13): every `alinea run` is kept, not one set of refs per pipeline name.
//!
//! ```text
//! <store>/runs/<id>.json     one record per run: pipeline, overrides, targets, version, per stage kind+key+params
//! <store>/pins/<id>          an empty file: `alinea pin` — gc never drops the run, whatever --keep-last says
//! ```
//!
//! A run id is `<UTC yyyymmdd-hhmmss>-<6 hex>`: sortable by time, and the hex (blake3 of the pipeline, the start
//! time in nanoseconds and the stage keys) tells apart two runs of the same second. Records are written once, at
//! the end of a run, and never changed; a run killed before its end leaves no record (its completed stages are in
//! the pipeline's ref, which gc keeps). [`kept_keys`] gives gc its roots: the action keys of every kept run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::{Store, write_atomic};

/// One stage of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunStage {
    /// The stage kind.
    pub kind: String,
    /// The action key of its result in this run.
    pub key: String,
    /// Its canonical parameters (defaults filled in), byte-neutral ones included.
    pub params: serde_json::Value,
}

/// The record of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// The run id (`runs/<id>.json`).
    pub id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The pipeline file.
    pub file: PathBuf,
    /// Seconds since the Unix epoch when the run started.
    pub started_at: u64,
    /// The same in nanoseconds: orders runs of the same second.
    pub started_ns: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// The `--set` overrides, as given.
    pub overrides: Vec<String>,
    /// Target stages (empty: the whole pipeline).
    pub targets: Vec<String>,
    /// Stages recomputed with `--force`.
    #[serde(default)]
    pub forced: Vec<String>,
    /// Whether every stage of the run succeeded.
    pub succeeded: bool,
    /// Version of alinea that ran it.
    pub alinea_version: String,
    /// Stage name -> what it was in this run (stages that failed or were skipped are absent).
    pub stages: BTreeMap<String, RunStage>,
}

/// `yyyymmdd-hhmmss` (UTC) of `secs` since the Unix epoch (Howard Hinnant's `civil_from_days`; hand-written
/// since nothing else in the workspace needs a calendar crate).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A new run id for `pipeline` started at `started` with these stages.
pub fn new_run_id(
    pipeline: &str,
    started: std::time::SystemTime,
    stages: &BTreeMap<String, RunStage>,
) -> String {
    let since = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut h = blake3::Hasher::new();
    h.update(pipeline.as_bytes());
    h.update(&since.as_nanos().to_le_bytes());
    for (name, s) in stages {
        h.update(name.as_bytes());
        h.update(s.key.as_bytes());
    }
    format!(
        "{}-{}",
        utc_stamp(since.as_secs()),
        &h.finalize().to_hex()[..6]
    )
}

fn runs_dir(store: &Store) -> PathBuf {
    store.root().join("runs")
}

fn pin_path(store: &Store, id: &str) -> PathBuf {
    store.root().join("pins").join(id)
}

/// Writes `run` to `runs/<id>.json`.
pub fn put_run(store: &Store, run: &RunRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(run).expect("run records serialize");
    write_atomic(&runs_dir(store).join(format!("{}.json", run.id)), &bytes)
}

fn read_run(path: &Path) -> Result<RunRecord, StoreError> {
    let bytes = std::fs::read(path).map_err(StoreError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::BadRecord {
        path: path.to_path_buf(),
        source,
    })
}

/// Every run record, oldest first; with `pipeline`, that pipeline's only.
pub fn list_runs(store: &Store, pipeline: Option<&str>) -> Result<Vec<RunRecord>, StoreError> {
    let dir = runs_dir(store);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut runs = Vec::new();
    for entry in entries {
        let path = entry.map_err(StoreError::io(&dir))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let run = read_run(&path)?;
            if pipeline.is_none_or(|p| p == run.pipeline) {
                runs.push(run);
            }
        }
    }
    runs.sort_by(|a, b| (a.started_ns, &a.id).cmp(&(b.started_ns, &b.id)));
    Ok(runs)
}

/// The run whose id is `id` or starts with it (a unique prefix, as git takes), or `latest` for the newest.
pub fn resolve_run(store: &Store, id: &str) -> Result<RunRecord, StoreError> {
    let runs = list_runs(store, None)?;
    if id == "latest" {
        return runs.last().cloned().ok_or_else(|| StoreError::UnknownRun {
            id: id.into(),
            known: "(none: nothing has run with this store yet)".into(),
        });
    }
    let matching: Vec<&RunRecord> = runs.iter().filter(|r| r.id.starts_with(id)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(StoreError::UnknownRun {
            id: id.into(),
            known: runs
                .iter()
                .rev()
                .take(10)
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        many => Err(StoreError::UnknownRun {
            id: format!("{id} (ambiguous: {} runs start with it)", many.len()),
            known: many
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Whether run `id` is pinned.
pub fn is_pinned(store: &Store, id: &str) -> bool {
    pin_path(store, id).exists()
}

/// Pins (or, with `pinned = false`, unpins) run `id`.
pub fn set_pinned(store: &Store, id: &str, pinned: bool) -> Result<(), StoreError> {
    let path = pin_path(store, id);
    if pinned {
        write_atomic(&path, b"")
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::io(&path)(e)),
            _ => Ok(()),
        }
    }
}

/// What gc keeps of the run history: with `keep_last = Some(n)`, the `n` newest runs of each pipeline and every
/// pinned run; with `None`, every run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Kept {
    /// Action keys the kept runs reach (gc's roots, beside the pipelines' refs).
    pub keys: BTreeSet<String>,
    /// Ids of the runs kept.
    pub runs: Vec<String>,
    /// Ids of the runs that are not kept (their records go unless it is a dry run).
    pub dropped: Vec<String>,
}

/// See [`Kept`].
pub fn kept_keys(store: &Store, keep_last: Option<usize>) -> Result<Kept, StoreError> {
    let mut by_pipeline: BTreeMap<String, Vec<RunRecord>> = BTreeMap::new();
    for run in list_runs(store, None)? {
        by_pipeline
            .entry(run.pipeline.clone())
            .or_default()
            .push(run);
    }
    let mut kept = Kept::default();
    for runs in by_pipeline.values() {
        let newest_from = keep_last.map_or(0, |n| runs.len().saturating_sub(n));
        for (i, run) in runs.iter().enumerate() {
            if i >= newest_from || is_pinned(store, &run.id) {
                kept.keys.extend(run.stages.values().map(|s| s.key.clone()));
                kept.runs.push(run.id.clone());
            } else {
                kept.dropped.push(run.id.clone());
            }
        }
    }
    Ok(kept)
}

/// Deletes the records of `ids` (runs gc no longer keeps).
pub fn drop_runs(store: &Store, ids: &[String]) -> Result<(), StoreError> {
    for id in ids {
        let path = runs_dir(store).join(format!("{id}.json"));
        std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_match_known_dates() {
        // `date -u -d @0`, `@951782400` (a leap day) and `@1764644400`.
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_764_644_400), "20251202-030000");
    }
}
