//! `gc` and `verify`: store maintenance.

use std::process::ExitCode;

use clap::Args;

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
    /// Remove corrupt objects and unreadable records, so the next run recomputes them
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
    if args.repair {
        store.repair(&report)?;
    }
    if global.json {
        print_json(&report)?;
    } else {
        outln!(
            "checked {} objects in {}",
            report.objects_checked,
            store.root().display()
        );
        for d in &report.corrupt {
            outln!(
                "corrupt  {d} (content does not match its hash; `{}` moves it to quarantine/, a rerun recomputes it)",
                store.repair_command()
            );
        }
        for d in &report.missing {
            outln!("missing  {d} (named by an action record; the next run recomputes it)");
        }
        for r in &report.bad_records {
            outln!("bad record {r}");
        }
        if report.stray_temp_files > 0 {
            outln!(
                "{} temp files from interrupted runs (harmless; `alinea gc` removes them)",
                report.stray_temp_files
            );
        }
        if args.repair && !report.is_clean() {
            outln!(
                "moved {} corrupt objects to quarantine/ and removed {} unreadable records; the next run recomputes them",
                report.corrupt.len(),
                report.bad_records.len()
            );
        } else {
            outln!(
                "{}",
                if report.is_clean() {
                    "store is consistent".to_string()
                } else {
                    format!("store has problems (fix with `{}`)", store.repair_command())
                }
            );
        }
    }
    Ok(if report.is_clean() || args.repair {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_STORE)
    })
}
