//! `gc` and `verify`: store maintenance.

use std::process::ExitCode;

use clap::Args;

use alinea_engine::store::{RepairReport, VerifyReport};

use super::{Global, print_json};

/// Arguments of `gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// List what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Keep only the N newest runs of each pipeline (and every pinned run) [default: keep every run]
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
}

/// `alinea gc`.
pub fn gc(global: &Global, args: GcArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let _lock = store.lock(true, |p| {
        eprintln!("waiting for the store lock ({})", p.display())
    })?;
    // What the kept runs reach stays; the records of the runs beyond --keep-last go first.
    let kept = alinea_engine::runs::kept_keys(&store, args.keep_last)?;
    if !args.dry_run {
        alinea_engine::runs::drop_runs(&store, &kept.dropped)?;
    }
    let report = store.gc_keeping(args.dry_run, &kept.keys)?;
    if global.json {
        let mut value = serde_json::to_value(&report)?;
        value["runs_kept"] = serde_json::json!(kept.runs);
        value["runs_dropped"] = serde_json::json!(kept.dropped);
        print_json(&value)?;
    } else {
        if !kept.dropped.is_empty() {
            outln!(
                "{} {} runs beyond --keep-last: {}",
                if args.dry_run {
                    "would drop"
                } else {
                    "dropped"
                },
                kept.dropped.len(),
                kept.dropped.join(", ")
            );
        }
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        outln!(
            "{verb} {} objects ({:.1} MB) and {} records; kept {} objects",
            report.objects_removed.len(),
            report.bytes_freed as f64 / 1e6,
            report.records_removed,
            report.objects_kept
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Repair what verify finds (corrupt objects to quarantine/, bad records and refs set aside or removed,
    /// dangling ref entries and wrong stat-cache entries dropped), so the next run recomputes what is gone
    #[arg(long)]
    repair: bool,
}

/// `alinea verify`.
pub fn verify(global: &Global, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let _lock = if args.repair {
        Some(store.lock(true, |p| {
            eprintln!("waiting for the store lock ({})", p.display())
        })?)
    } else {
        None
    };
    let report = store.verify()?;
    let repaired = if args.repair {
        Some(store.repair(&report)?)
    } else {
        None
    };
    if global.json {
        // The verify report's fields at the top (as before `--repair` said what it did), plus `repair`.
        let mut v = serde_json::to_value(&report)?;
        if let Some(done) = &repaired {
            v["repair"] = serde_json::to_value(done)?;
        }
        print_json(&v)?;
    } else {
        print_verify(&store, &report);
        if let Some(done) = &repaired {
            print_repair(done);
        }
    }
    Ok(if report.is_clean() || args.repair {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_STORE)
    })
}

fn print_verify(store: &alinea_engine::Store, report: &VerifyReport) {
    outln!(
        "checked {} objects, {} records, {} refs, {} stat-cache entries in {}",
        report.objects_checked,
        report.records_checked,
        report.refs_checked,
        report.stat_entries_checked,
        store.root().display()
    );
    let fix = store.repair_command();
    for d in &report.corrupt {
        outln!(
            "corrupt  {d} (content does not match its hash; `{fix}` moves it to quarantine/, a rerun recomputes it)"
        );
    }
    for d in &report.missing {
        outln!(
            "missing  {d} (named by an action record; `{fix}` drops the record, a rerun recomputes it)"
        );
    }
    for r in &report.bad_records {
        outln!("bad record {r} (unreadable; `{fix}` removes it)");
    }
    for r in &report.bad_refs {
        outln!("bad ref  {r} (unreadable; `{fix}` sets it aside, the next run writes a new one)");
    }
    for d in &report.dangling {
        outln!("dangling ref entry {d} (no such record; `{fix}` drops the entry)");
    }
    for p in &report.wrong_stat_entries {
        outln!("wrong stat-cache digest for {p} (`{fix}` drops the entry; the file is re-hashed)");
    }
    if report.bad_stat_cache {
        outln!(
            "statcache.json is unreadable (`{fix}` removes it; it is rebuilt as files are hashed)"
        );
    }
    for m in &report.bad_code_manifests {
        outln!("bad code manifest {m} (unreadable; `{fix}` removes it)");
    }
    if report.stray_temp_files > 0 {
        outln!(
            "{} temp files from interrupted runs (harmless; `alinea gc` removes them)",
            report.stray_temp_files
        );
    }
    if report.quarantined_files > 0 {
        outln!(
            "{} files in quarantine/ (kept for inspection; delete them when done)",
            report.quarantined_files
        );
    }
    if report.is_clean() {
        outln!("store is consistent");
    } else {
        outln!("store has problems (fix with `{fix}`)");
    }
}

fn print_repair(done: &RepairReport) {
    for d in &done.quarantined {
        outln!("repaired: moved corrupt object {d} to quarantine/");
    }
    for r in &done.records_removed {
        outln!("repaired: removed record {r} (its stage recomputes on the next run)");
    }
    for (r, to) in &done.refs_set_aside {
        outln!("repaired: set ref {r} aside as {to}");
    }
    for e in &done.ref_entries_dropped {
        outln!("repaired: dropped ref entry {e}");
    }
    if done.stat_entries_dropped > 0 {
        outln!(
            "repaired: dropped {} stat-cache entries (their files are re-hashed when next read)",
            done.stat_entries_dropped
        );
    }
    if done.code_manifests_removed > 0 {
        outln!(
            "repaired: removed {} unreadable code manifests",
            done.code_manifests_removed
        );
    }
}
