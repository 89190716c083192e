//! `ingest.opus100`: reads OPUS-100 v1.0, in its original text layout or in the Hugging Face Parquet layout.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::support::text::pairs::{Origin, PAIRS_OUTPUT, PairRows};
use crate::support::text::{OnInvalidUtf8, split_lines};
use alinea_engine::{
    InputSlot, OutputSlot, Outputs, ParamError, PathSlot, Stage, StageCtx, StageError, Stats,
};

/// Which on-disk layout to read.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `original` when `supervised/` exists under the root, else `hf_parquet`.
    #[default]
    Auto,
    /// `supervised/<a>-<b>/opus.<a>-<b>-<split>.<lang>` and `zero-shot/<a>-<b>/opus.<a>-<b>-test.<lang>`.
    Original,
    /// `<a>-<b>/<split>-*.parquet` with a `translation` struct column keyed by language code.
    HfParquet,
}

/// Parameters of `ingest.opus100`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Languages paired with English (ISO codes, e.g. `["be", "li"]`).
    pub langs: Vec<String>,
    /// Splits to read for the supervised pairs.
    pub splits: Vec<String>,
    /// Zero-shot pairs (`"de-nl"`, either order), read from their `test` split.
    pub zero_shot: Vec<String>,
    /// On-disk layout.
    pub layout: Layout,
    /// Keep pairs with an empty side (they are always counted).
    pub keep_empty: bool,
    /// What to do with invalid UTF-8.
    pub on_invalid_utf8: OnInvalidUtf8,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            langs: Vec::new(),
            splits: vec!["train".into(), "dev".into(), "test".into()],
            zero_shot: Vec::new(),
            layout: Layout::Auto,
            keep_empty: false,
            on_invalid_utf8: OnInvalidUtf8::Error,
        }
    }
}

const ROOT: PathSlot = PathSlot::new("root", "OPUS-100 root directory");

/// The stage kind.
pub struct IngestOpus100;

/// One (pair folder, split) unit to read: `src` is the non-English side.
struct Unit {
    folder: String,
    split: String,
    src_lang: String,
    tgt_lang: String,
}

fn pair_folder(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}-{b}")
    } else {
        format!("{b}-{a}")
    }
}

fn units(p: &Params) -> Vec<(bool, Unit)> {
    let mut out = Vec::new();
    for lang in &p.langs {
        for split in &p.splits {
            out.push((
                false,
                Unit {
                    folder: pair_folder(lang, "en"),
                    split: split.clone(),
                    src_lang: lang.clone(),
                    tgt_lang: "en".into(),
                },
            ));
        }
    }
    for pair in &p.zero_shot {
        if let Some((a, b)) = pair.split_once('-') {
            let folder = pair_folder(a, b);
            let (first, second) = folder
                .split_once('-')
                .map(|(x, y)| (x.to_string(), y.to_string()))
                .unwrap_or_default();
            out.push((
                true,
                Unit {
                    folder,
                    split: "test".into(),
                    src_lang: first,
                    tgt_lang: second,
                },
            ));
        }
    }
    out
}

fn resolve_layout(p: &Params, root: &Path) -> Layout {
    match p.layout {
        Layout::Auto if root.join("supervised").is_dir() || root.join("zero-shot").is_dir() => {
            Layout::Original
        }
        Layout::Auto => Layout::HfParquet,
        other => other,
    }
}

fn text_files(root: &Path, zero_shot: bool, u: &Unit) -> (PathBuf, PathBuf) {
    let dir = root
        .join(if zero_shot { "zero-shot" } else { "supervised" })
        .join(&u.folder);
    let stem = format!("opus.{}-{}", u.folder, u.split);
    (
        dir.join(format!("{stem}.{}", u.src_lang)),
        dir.join(format!("{stem}.{}", u.tgt_lang)),
    )
}

fn parquet_files(root: &Path, u: &Unit) -> Result<Vec<PathBuf>, StageError> {
    let dir = root.join(&u.folder);
    let prefix = format!("{}-", u.split);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(StageError::io(&dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            name.starts_with(&prefix) && name.ends_with(".parquet")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(StageError::BadInput {
            path: dir,
            line: 0,
            message: format!("no `{prefix}*.parquet` file for split `{}`", u.split),
        });
    }
    Ok(files)
}

fn relative(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn read_text_unit(
    ctx: &StageCtx,
    p: &Params,
    root: &Path,
    zero_shot: bool,
    u: &Unit,
    rows: &mut PairRows,
    stats: &mut Stats,
) -> Result<(), StageError> {
    let (src_path, tgt_path) = text_files(root, zero_shot, u);
    let src = split_lines(&ctx.read_file(&src_path)?, &src_path, p.on_invalid_utf8)?;
    let tgt = split_lines(&ctx.read_file(&tgt_path)?, &tgt_path, p.on_invalid_utf8)?;
    if src.lines.len() != tgt.lines.len() {
        return Err(StageError::BadInput {
            path: src_path.clone(),
            line: 0,
            message: format!(
                "has {} lines but {} has {}: the two sides must be line-aligned",
                src.lines.len(),
                tgt_path.display(),
                tgt.lines.len()
            ),
        });
    }
    src.count_into(stats);
    tgt.count_into(stats);
    let file = relative(root, &src_path);
    let origin = Origin {
        corpus: "opus100",
        split: &u.split,
        src_lang: &u.src_lang,
        tgt_lang: &u.tgt_lang,
        source_file: &file,
    };
    rows.extend(&origin, src.lines, tgt.lines, None, p.keep_empty, stats);
    Ok(())
}

fn read_parquet_unit(
    ctx: &StageCtx,
    p: &Params,
    root: &Path,
    u: &Unit,
    rows: &mut PairRows,
    stats: &mut Stats,
) -> Result<(), StageError> {
    for path in parquet_files(root, u)? {
        let bytes = ctx.read_file(&path)?;
        let df = alinea_engine::table::decode_table(bytes, || path.display().to_string())?;
        let bad = |message: String| StageError::BadInput {
            path: path.clone(),
            line: 0,
            message,
        };
        let translation = df
            .column("translation")
            .map_err(|_| {
                bad(format!(
                    "no `translation` column; columns are: {:?}",
                    df.get_column_names()
                ))
            })?
            .struct_()
            .map_err(|_| {
                bad("column `translation` is not a struct keyed by language code".into())
            })?;
        let field = |code: &str| -> Result<Vec<String>, StageError> {
            let s = translation
                .field_by_name(code)
                .map_err(|_| bad(format!("`translation` has no field `{code}`")))?;
            let s = s
                .str()
                .map_err(|_| bad(format!("`translation.{code}` is not text")))?;
            Ok(s.iter().map(|v| v.unwrap_or("").to_string()).collect())
        };
        let src = field(&u.src_lang)?;
        let tgt = field(&u.tgt_lang)?;
        let file = relative(root, &path);
        let origin = Origin {
            corpus: "opus100",
            split: &u.split,
            src_lang: &u.src_lang,
            tgt_lang: &u.tgt_lang,
            source_file: &file,
        };
        rows.extend(&origin, src, tgt, None, p.keep_empty, stats);
    }
    Ok(())
}

impl Stage for IngestOpus100 {
    const KIND: &'static str = "ingest.opus100";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "read OPUS-100 (original text layout or Hugging Face parquet) into a pairs table";
    const DOC: &'static str = "\
Reads OPUS-100 v1.0 for chosen languages and splits.

Pair folders put the two codes in alphabetical order (`af-en`, `en-fr`); `src` is always the non-English side.
A missing file is an error naming it. Sides with different line counts are an error naming both files.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[ROOT.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[PAIRS_OUTPUT];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.langs.is_empty() && p.zero_shot.is_empty() {
            return Err(ParamError::new(
                "langs",
                "empty: name at least one language paired with English, e.g. langs = [\"be\"]",
            ));
        }
        for pair in &p.zero_shot {
            if pair
                .split_once('-')
                .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
            {
                return Err(ParamError::new(
                    "zero_shot",
                    format!("entry `{pair}`: expected two codes joined by `-`, e.g. \"de-nl\""),
                ));
            }
        }
        Ok(())
    }

    fn input_files(p: &Params, _slot: &str, root: &Path) -> Result<Vec<PathBuf>, StageError> {
        let layout = resolve_layout(p, root);
        let mut files = Vec::new();
        for (zero_shot, u) in units(p) {
            match layout {
                Layout::HfParquet => files.extend(parquet_files(root, &u)?),
                _ => {
                    let (a, b) = text_files(root, zero_shot, &u);
                    for f in [a, b] {
                        if !f.is_file() {
                            return Err(StageError::BadInput {
                                path: f,
                                line: 0,
                                message: format!(
                                    "missing OPUS-100 file for {} {}",
                                    u.folder, u.split
                                ),
                            });
                        }
                        files.push(f);
                    }
                }
            }
        }
        Ok(files)
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let root = ctx.path(ROOT)?.to_path_buf();
        let layout = resolve_layout(p, &root);
        let mut rows = PairRows::default();
        let mut stats = Stats::default();
        let all = units(p);
        let bar = ctx.progress(all.len() as u64, "files");
        for (zero_shot, u) in &all {
            match layout {
                Layout::HfParquet => read_parquet_unit(ctx, p, &root, u, &mut rows, &mut stats)?,
                _ => read_text_unit(ctx, p, &root, *zero_shot, u, &mut rows, &mut stats)?,
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        stats.rows_out = rows.len() as u64;
        Ok(Outputs::table("pairs", rows.into_frame()?, stats))
    }
}
