//! `ingest.parallel`: any parallel corpus: two line-aligned text files, or one TSV / JSONL / Parquet file with
//! two text columns.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::support::text::pairs::{Origin, PAIRS_OUTPUT, PairRows};
use crate::support::text::{OnInvalidUtf8, split_lines};
use alinea_engine::{
    InputSlot, Optional, OutputSlot, Outputs, ParamError, PathSlot, Stage, StageCtx, StageError,
    Stats,
};

/// Format of the `file` input.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// From the file extension (`.tsv`, `.jsonl`, `.parquet`).
    #[default]
    Auto,
    /// Tab-separated, one pair per line.
    Tsv,
    /// One JSON object per line.
    Jsonl,
    /// A Parquet table.
    Parquet,
}

/// What to do with TSV rows that have more fields than the columns in use.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ExtraColumns {
    /// Fail naming the line: a row wider than the header (or, without a header, than the columns in use)
    /// usually means a tab inside a text field, and dropping the rest would silently cut a sentence.
    #[default]
    Error,
    /// Drop the extra fields and count the rows in `rows_with_extra_columns`.
    Ignore,
}

/// Parameters of `ingest.parallel`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// ISO code of the `src` side (required).
    pub src_lang: String,
    /// ISO code of the `tgt` side (required).
    pub tgt_lang: String,
    /// Format of the `file` input.
    pub format: Format,
    /// Column (TSV header name, JSON key, Parquet column) holding the `src` side. For a TSV without header: "0".
    pub src_column: String,
    /// Column holding the `tgt` side. For a TSV without header: "1".
    pub tgt_column: String,
    /// Whether the TSV's first line names its columns.
    pub tsv_header: bool,
    /// Value of the `corpus` column.
    pub corpus: String,
    /// Value of the `split` column.
    pub split: String,
    /// Keep pairs with an empty side (always counted).
    pub keep_empty: bool,
    /// What to do with invalid UTF-8.
    pub on_invalid_utf8: OnInvalidUtf8,
    /// What to do with TSV rows wider than the header (or, without a header, than the columns in use).
    pub extra_columns: ExtraColumns,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            src_lang: String::new(),
            tgt_lang: String::new(),
            format: Format::Auto,
            src_column: "src".into(),
            tgt_column: "tgt".into(),
            tsv_header: true,
            corpus: "parallel".into(),
            split: "train".into(),
            keep_empty: false,
            on_invalid_utf8: OnInvalidUtf8::Error,
            extra_columns: ExtraColumns::Error,
        }
    }
}

const SRC: PathSlot<Optional> = PathSlot::new(
    "src",
    "text file of the src side (give `src` + `tgt`, or `file`)",
)
.optional();
const TGT: PathSlot<Optional> =
    PathSlot::new("tgt", "text file of the tgt side, line-aligned with src").optional();
const FILE: PathSlot<Optional> = PathSlot::new(
    "file",
    "one .tsv / .jsonl / .parquet file with two text columns (instead of `src` + `tgt`)",
)
.optional();

/// The stage kind.
pub struct IngestParallel;

/// Both sides, and their line numbers in the file when not 1..n.
type Sides = (Vec<String>, Vec<String>, Option<Vec<u32>>);

fn bad(path: &Path, line: usize, message: String) -> StageError {
    StageError::BadInput {
        path: path.to_path_buf(),
        line: line as u64,
        message,
    }
}

fn read_tsv(
    p: &Params,
    path: &Path,
    bytes: &[u8],
    stats: &mut Stats,
) -> Result<Sides, StageError> {
    let lines = split_lines(bytes, path, p.on_invalid_utf8)?;
    lines.count_into(stats);
    let mut iter = lines.lines.into_iter().enumerate();
    let (si, ti, header_width) = if p.tsv_header {
        let (_, header) = iter
            .next()
            .ok_or_else(|| bad(path, 1, "empty file: expected a header line".into()))?;
        let names: Vec<&str> = header.split('\t').collect();
        let find = |c: &str| {
            names.iter().position(|n| *n == c).ok_or_else(|| {
                bad(
                    path,
                    1,
                    format!(
                        "header has no column `{c}`; columns are: {}",
                        names.join(", ")
                    ),
                )
            })
        };
        (find(&p.src_column)?, find(&p.tgt_column)?, Some(names.len()))
    } else {
        let idx = |c: &str| {
            c.parse::<usize>().map_err(|_| StageError::Param {
                field: "src_column".into(),
                message: format!("`{c}`: without a TSV header, columns are 0-based indexes"),
            })
        };
        (idx(&p.src_column)?, idx(&p.tgt_column)?, None)
    };
    let width = header_width.unwrap_or(si.max(ti) + 1);
    let (mut src, mut tgt, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
    let mut wider = 0;
    for (i, line) in iter {
        numbers.push(i as u32 + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() > width {
            if p.extra_columns == ExtraColumns::Error {
                return Err(bad(
                    path,
                    i + 1,
                    format!(
                        "{} tab-separated fields, expected {width} ({}); a tab inside a text field? Set extra_columns = \"ignore\" to drop the extra fields (counted)",
                        fields.len(),
                        if header_width.is_some() { "as many as the header" } else { "the columns in use" }
                    ),
                ));
            }
            wider += 1;
        }
        let needed = si.max(ti) + 1;
        if fields.len() < needed {
            return Err(bad(
                path,
                i + 1,
                format!(
                    "{} tab-separated fields, expected {width} (at least {needed} for the columns in use)",
                    fields.len()
                ),
            ));
        }
        src.push(fields[si].to_string());
        tgt.push(fields[ti].to_string());
    }
    stats.count("rows_with_extra_columns", wider);
    Ok((src, tgt, Some(numbers)))
}

fn read_jsonl(
    p: &Params,
    path: &Path,
    bytes: &[u8],
    stats: &mut Stats,
) -> Result<Sides, StageError> {
    let lines = split_lines(bytes, path, p.on_invalid_utf8)?;
    lines.count_into(stats);
    let (mut src, mut tgt, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in lines.lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        numbers.push(i as u32 + 1);
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| bad(path, i + 1, format!("invalid JSON: {e}")))?;
        let field = |c: &str| -> Result<String, StageError> {
            v.get(c)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or_else(|| bad(path, i + 1, format!("expected a string field `{c}`")))
        };
        src.push(field(&p.src_column)?);
        tgt.push(field(&p.tgt_column)?);
    }
    Ok((src, tgt, Some(numbers)))
}

fn read_parquet(
    p: &Params,
    path: &Path,
    bytes: Vec<u8>,
    stats: &mut Stats,
) -> Result<Sides, StageError> {
    let df = alinea_engine::table::decode_table(bytes, || path.display().to_string())?;
    let mut col = |c: &str| -> Result<Vec<String>, StageError> {
        let s = df.column(c).map_err(|_| {
            bad(
                path,
                0,
                format!("no column `{c}`; columns are: {:?}", df.get_column_names()),
            )
        })?;
        let s = s
            .str()
            .map_err(|_| bad(path, 0, format!("column `{c}` is not text")))?;
        // A null is an empty side: counted here, and then as an empty pair (kept only with keep_empty).
        stats.count("null_cells", s.null_count() as u64);
        Ok(s.iter().map(|v| v.unwrap_or("").to_string()).collect())
    };
    let src = col(&p.src_column)?;
    let tgt = col(&p.tgt_column)?;
    Ok((src, tgt, None))
}

impl Stage for IngestParallel {
    const KIND: &'static str = "ingest.parallel";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "read any parallel corpus (two text files, or TSV/JSONL/Parquet with two columns)";
    const DOC: &'static str = "\
Reads a parallel corpus into a pairs table.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[SRC.slot(), TGT.slot(), FILE.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[PAIRS_OUTPUT];

    fn validate(p: &Params) -> Result<(), ParamError> {
        for (field, value) in [("src_lang", &p.src_lang), ("tgt_lang", &p.tgt_lang)] {
            if value.is_empty() {
                return Err(ParamError::new(
                    field,
                    "required: the ISO code of that side (`src_lang` and `tgt_lang` both)",
                ));
            }
        }
        Ok(())
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let mut stats = Stats::default();
        let (src, tgt, lines, file) = match (ctx.path(SRC)?, ctx.path(TGT)?, ctx.path(FILE)?) {
            (Some(s), Some(t), None) => {
                let a = split_lines(&ctx.read_file(s)?, s, p.on_invalid_utf8)?;
                let b = split_lines(&ctx.read_file(t)?, t, p.on_invalid_utf8)?;
                if a.lines.len() != b.lines.len() {
                    return Err(bad(
                        s,
                        0,
                        format!(
                            "has {} lines but {} has {}: the two sides must be line-aligned",
                            a.lines.len(),
                            t.display(),
                            b.lines.len()
                        ),
                    ));
                }
                a.count_into(&mut stats);
                b.count_into(&mut stats);
                (a.lines, b.lines, None, s.to_path_buf())
            }
            (None, None, Some(f)) => {
                let ext = f
                    .extension()
                    .map(|e| e.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                let format = match (p.format, ext.as_str()) {
                    (Format::Auto, "tsv" | "tab") => Format::Tsv,
                    (Format::Auto, "jsonl" | "ndjson") => Format::Jsonl,
                    (Format::Auto, "parquet") => Format::Parquet,
                    (Format::Auto, _) => return Err(bad(f, 0, "cannot tell the format from the extension; set format = \"tsv\" | \"jsonl\" | \"parquet\"".into())),
                    (fmt, _) => fmt,
                };
                let bytes = ctx.read_file(f)?;
                let (s, t, numbers) = match format {
                    Format::Tsv => read_tsv(p, f, &bytes, &mut stats)?,
                    Format::Jsonl => read_jsonl(p, f, &bytes, &mut stats)?,
                    _ => read_parquet(p, f, bytes, &mut stats)?,
                };
                (s, t, numbers, f.to_path_buf())
            }
            _ => {
                return Err(StageError::Input {
                    slot: "src/tgt/file".into(),
                    message: "give either both `src` and `tgt`, or `file`".into(),
                });
            }
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let origin = Origin {
            corpus: &p.corpus,
            split: &p.split,
            src_lang: &p.src_lang,
            tgt_lang: &p.tgt_lang,
            source_file: &name,
        };
        let mut rows = PairRows::default();
        rows.extend(&origin, src, tgt, lines, p.keep_empty, &mut stats);
        stats.rows_out = rows.len() as u64;
        Ok(Outputs::table("pairs", rows.into_frame()?, stats))
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::support::fuzz::{fuzz, names_file};

    /// Runs one reader on fuzzed bytes: it may reject them, but only with an error naming the file, and what it
    /// accepts must be whole (the two sides the same length, every line number in the file).
    fn check(
        read: fn(&Params, &Path, &[u8], &mut Stats) -> Result<Sides, StageError>,
        p: &Params,
        bytes: &[u8],
    ) -> Result<(), String> {
        let path = Path::new("corpus/fuzzed.in");
        match read(p, path, bytes, &mut Stats::default()) {
            Ok((src, tgt, numbers)) => {
                let lines = bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
                let numbered_ok = numbers
                    .as_ref()
                    .is_none_or(|n| n.len() == src.len() && n.iter().all(|&l| l as usize <= lines));
                if src.len() == tgt.len() && numbered_ok {
                    Ok(())
                } else {
                    Err(format!("inconsistent result: {} src, {} tgt, numbers {numbers:?}", src.len(), tgt.len()))
                }
            }
            Err(e) => names_file(&e.to_string(), path),
        }
    }

    /// Twenty real pairs of the shipped OPUS-100 sample as a TSV with header, plus edge shapes.
    fn tsv_seeds() -> Vec<Vec<u8>> {
        let side = |ext: &str| {
            let path = format!("datasets/opus-100/supervised/en-li/opus.en-li-dev.{ext}");
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let (en, li) = (side("en"), side("li"));
        let mut real = String::from("src\ttgt\n");
        for (a, b) in li.lines().zip(en.lines()).take(20) {
            real.push_str(&format!("{a}\t{b}\n"));
        }
        vec![
            real.into_bytes(),
            b"src\ttgt\n\xD0\xB0\xD0\xB4\xD0\xB7\xD1\x96\xD0\xBD\tone\n\xD0\xB4\xD0\xB2\xD0\xB0\ttwo\n".to_vec(),
            b"a\tb\r\nc\td\r\n".to_vec(),
        ]
    }

    #[test]
    fn tsv_reader_never_panics_or_misreads() {
        let mut p = Params::default();
        let seeds = tsv_seeds();
        fuzz("tsv", &seeds, |b| check(read_tsv, &p, b));
        p.tsv_header = false;
        p.src_column = "0".into();
        p.tgt_column = "1".into();
        p.extra_columns = ExtraColumns::Ignore;
        p.on_invalid_utf8 = OnInvalidUtf8::Replace;
        fuzz("tsv-headerless", &seeds, |b| check(read_tsv, &p, b));
    }

    #[test]
    fn jsonl_reader_never_panics_or_misreads() {
        let p = Params::default();
        let seeds = vec![
            "{\"src\": \"адзін\", \"tgt\": \"one\"}\n{\"src\": \"два\", \"tgt\": \"two\"}\n"
                .as_bytes()
                .to_vec(),
            b"{\"src\": \"a\\u00e9\", \"tgt\": \"\\\"q\\\"\", \"n\": [1, {\"x\": null}]}\r\n\n".to_vec(),
        ];
        fuzz("jsonl", &seeds, |b| check(read_jsonl, &p, b));
    }

    #[test]
    fn parquet_reader_never_panics() {
        use polars::prelude::*;
        let p = Params::default();
        let mut df = df!("src" => ["адзін", "два"], "tgt" => [Some("one"), None]).unwrap();
        let seed = alinea_engine::table::encode_parquet(&mut df).unwrap();
        fuzz("parquet", &[seed], |b| {
            check(|p, path, b, s| read_parquet(p, path, b.to_vec(), s), &p, b)
        });
    }
}
