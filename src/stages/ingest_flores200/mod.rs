//! `ingest.flores200`: reads FLORES-200 (multi-way aligned by sentence id) into pairs with a pivot language.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::support::lang::{Language, Registry};
use crate::support::text::pairs::{Origin, PAIRS_OUTPUT, PairRows};
use crate::support::text::{OnInvalidUtf8, split_lines};
use alinea_engine::{
    InputSlot, OutputSlot, Outputs, ParamError, PathSlot, Stage, StageCtx, StageError, Stats,
};

/// Parameters of `ingest.flores200`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Languages to pair with the pivot (ISO codes).
    pub langs: Vec<String>,
    /// Splits: `dev` and/or `devtest`.
    pub splits: Vec<String>,
    /// The other side of every pair.
    pub pivot: String,
    /// Languages beyond the built-in registry.
    pub extra_languages: Vec<Language>,
    /// What to do with invalid UTF-8.
    pub on_invalid_utf8: OnInvalidUtf8,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            langs: Vec::new(),
            splits: vec!["dev".into(), "devtest".into()],
            pivot: "en".into(),
            extra_languages: Vec::new(),
            on_invalid_utf8: OnInvalidUtf8::Error,
        }
    }
}

const ROOT: PathSlot = PathSlot::new("root", "the flores200_dataset directory");

/// The stage kind.
pub struct IngestFlores200;

fn file_of(
    root: &Path,
    registry: &Registry,
    code: &str,
    split: &str,
) -> Result<PathBuf, StageError> {
    let lang = registry.require(code).map_err(|m| StageError::Param {
        field: "langs".into(),
        message: m,
    })?;
    Ok(root.join(split).join(format!("{}.{split}", lang.flores)))
}

impl Stage for IngestFlores200 {
    const KIND: &'static str = "ingest.flores200";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str = "read FLORES-200 dev/devtest into pairs with a pivot language";
    const DOC: &'static str = "\
Reads FLORES-200 (`<root>/{dev,devtest}/<flores code>.<split>`, multi-way aligned by sentence id).

Every file of a split must have the same number of lines (else an error names both files and counts).";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[ROOT.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[PAIRS_OUTPUT];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.langs.is_empty() {
            return Err(ParamError::new(
                "langs",
                "empty: name at least one language, e.g. langs = [\"be\"]",
            ));
        }
        let registry = Registry::with_extra(&p.extra_languages);
        for (i, code) in p.langs.iter().enumerate() {
            registry
                .require(code)
                .map_err(|m| ParamError::new(format!("langs[{i}]"), m))?;
        }
        registry
            .require(&p.pivot)
            .map_err(|m| ParamError::new("pivot", m))?;
        if let Some(bad) = p.splits.iter().find(|s| *s != "dev" && *s != "devtest") {
            return Err(ParamError::new(
                "splits",
                format!("`{bad}`: FLORES-200 has `dev` and `devtest`"),
            ));
        }
        Ok(())
    }

    fn input_files(p: &Params, _slot: &str, root: &Path) -> Result<Vec<PathBuf>, StageError> {
        let registry = Registry::with_extra(&p.extra_languages);
        let mut files = Vec::new();
        for split in &p.splits {
            for code in std::iter::once(&p.pivot).chain(&p.langs) {
                let f = file_of(root, &registry, code, split)?;
                if !f.is_file() {
                    return Err(StageError::BadInput {
                        path: f,
                        line: 0,
                        message: format!("missing FLORES-200 file for `{code}` ({split})"),
                    });
                }
                files.push(f);
            }
        }
        Ok(files)
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let root = ctx.path(ROOT)?.to_path_buf();
        let registry = Registry::with_extra(&p.extra_languages);
        let mut rows = PairRows::default();
        let mut stats = Stats::default();
        let bar = ctx.progress((p.splits.len() * p.langs.len()) as u64, "files");
        for split in &p.splits {
            let pivot_path = file_of(&root, &registry, &p.pivot, split)?;
            let pivot = split_lines(&ctx.read_file(&pivot_path)?, &pivot_path, p.on_invalid_utf8)?;
            pivot.count_into(&mut stats);
            for code in &p.langs {
                let path = file_of(&root, &registry, code, split)?;
                let side = split_lines(&ctx.read_file(&path)?, &path, p.on_invalid_utf8)?;
                if side.lines.len() != pivot.lines.len() {
                    return Err(StageError::BadInput {
                        path: path.clone(),
                        line: 0,
                        message: format!(
                            "has {} lines but {} has {}: FLORES files must be aligned by sentence id",
                            side.lines.len(),
                            pivot_path.display(),
                            pivot.lines.len()
                        ),
                    });
                }
                side.count_into(&mut stats);
                let file = path
                    .strip_prefix(&root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                let origin = Origin {
                    corpus: "flores200",
                    split,
                    src_lang: code,
                    tgt_lang: &p.pivot,
                    source_file: &file,
                };
                rows.extend(
                    &origin,
                    side.lines,
                    pivot.lines.clone(),
                    None,
                    false,
                    &mut stats,
                );
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        stats.rows_out = rows.len() as u64;
        Ok(Outputs::table("pairs", rows.into_frame()?, stats))
    }
}
