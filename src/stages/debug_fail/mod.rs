//! `debug.fail`: a stage that fails on purpose, to test failure handling and crash consistency. Registered only
//! when `ALINEA_DEBUG_STAGES=1`.

use serde::{Deserialize, Serialize};

use alinea_engine::{
    InputSlot, Optional, OutputKind, OutputSlot, Outputs, Stage, StageCtx, StageError, Stats, TableSlot, PathSlot,
};

/// How to fail.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Copy the input table through (do not fail).
    #[default]
    Pass,
    /// Return an error.
    Error,
    /// Abort the whole process in the middle of the stage, as a `kill -9` would.
    Abort,
    /// Produce outputs that differ from the declaration (an undeclared table), as a kind whose declaration
    /// drifted from its code would: the executor must fail the stage.
    Drift,
    /// Panic in the middle of the stage.
    Panic,
    /// Panic while the engine lists the files of the `file` input, before the stage runs.
    #[serde(rename = "panic-inputs")]
    PanicInputs,
    /// Sleep `seconds`, then pass the table through (a long job, for cancellation and limits).
    Sleep,
    /// Allocate and touch `megabytes` of memory, hold it for `seconds`, then pass (a job over its memory limit).
    Hog,
}

/// Parameters of `debug.fail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// How to fail.
    pub mode: Mode,
    /// Seconds to sleep (`sleep`, `hog`).
    pub seconds: f64,
    /// Megabytes to allocate (`hog`).
    pub megabytes: u64,
}

const TABLE: TableSlot = TableSlot::new("table", "any table");
const FILE: PathSlot<Optional> = PathSlot::new("file", "any file (listed, hashed, not read)").optional();

/// The stage kind.
pub struct DebugFail;

impl Stage for DebugFail {
    const KIND: &'static str = "debug.fail";
    const SUMMARY: &'static str = "testing aid: pass a table through, fail, or abort the process";
    const DOC: &'static str = "\
Testing aid: pass the table through, fail, abort, panic, or panic while its inputs are listed.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[TABLE.slot(), FILE.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[OutputSlot {
        name: std::borrow::Cow::Borrowed("table"),
        kind: OutputKind::AnyTable,
        doc: "the input table, unchanged (mode = \"pass\")",
    }];

    fn input_files(
        p: &Params,
        _slot: &str,
        path: &std::path::Path,
    ) -> Result<Vec<std::path::PathBuf>, StageError> {
        if p.mode == Mode::PanicInputs {
            panic!("debug.fail: panicking on purpose while listing input files");
        }
        alinea_engine::files::walk_files(path)
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(TABLE)?;
        match p.mode {
            Mode::Sleep | Mode::Hog => {
                // Non-zero bytes, so every page is touched (resident), as a real allocation would be.
                let held: Vec<u8> = vec![1; (p.megabytes as usize) << 20];
                std::thread::sleep(std::time::Duration::from_secs_f64(p.seconds.max(0.0)));
                std::hint::black_box(&held);
                let stats = Stats {
                    rows_in: df.height() as u64,
                    rows_out: df.height() as u64,
                    ..Stats::default()
                };
                Ok(Outputs::table("table", df, stats))
            }
            Mode::Pass => {
                let stats = Stats {
                    rows_in: df.height() as u64,
                    rows_out: df.height() as u64,
                    ..Stats::default()
                };
                Ok(Outputs::table("table", df, stats))
            }
            Mode::Drift => {
                let mut out = Outputs::table("table", df.clone(), Stats::default());
                out.tables.push(("undeclared".into(), df));
                Ok(out)
            }
            Mode::Error => Err(StageError::Other(
                "debug.fail: failing on purpose (mode = \"error\")".into(),
            )),
            Mode::Panic | Mode::PanicInputs => {
                panic!("debug.fail: panicking on purpose (mode = \"panic\")")
            }
            Mode::Abort => {
                // Leave a half-written temp file behind, as a crash in the middle of writing would.
                let tmp = ctx.work_dir()?.join("half-written.parquet");
                let _ = std::fs::write(tmp, b"PAR1 partial");
                std::process::abort()
            }
        }
    }
}
