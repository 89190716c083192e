//! `debug.fail`: a stage that fails on purpose, to test failure handling and crash consistency. Registered only
//! when `ALINEA_DEBUG_STAGES=1`.

use serde::{Deserialize, Serialize};

use alinea_engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError, Stats};

/// How to fail.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Copy the input table through (do not fail).
    #[default]
    Pass,
    /// Return an error.
    Error,
    /// Abort the whole process in the middle of the stage, as a `kill -9` would.
    Abort,
    /// Panic in the middle of the stage.
    Panic,
    /// Panic while the engine lists the files of the `file` input, before the stage runs.
    #[serde(rename = "panic-inputs")]
    PanicInputs,
}

/// Parameters of `debug.fail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// How to fail.
    pub mode: Mode,
}

/// The stage kind.
pub struct DebugFail;

impl Stage for DebugFail {
    const KIND: &'static str = "debug.fail";
    const SUMMARY: &'static str = "testing aid: pass a table through, fail, or abort the process";
    const DOC: &'static str = "Testing aid. Parameters: mode = \"pass\" | \"error\" | \"abort\" | \"panic\" | \"panic-inputs\". Inputs `table`, `file` (optional).";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[
        InputSlot {
            name: "table",
            kind: SlotKind::Table,
            required: true,
            doc: "any table",
        },
        InputSlot {
            name: "file",
            kind: SlotKind::Path,
            required: false,
            doc: "any file (listed, hashed, not read)",
        },
    ];

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
        let df = ctx.table("table")?;
        match p.mode {
            Mode::Pass => {
                let stats = Stats {
                    rows_in: df.height() as u64,
                    rows_out: df.height() as u64,
                    ..Stats::default()
                };
                Ok(Outputs::table("table", df, stats))
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
