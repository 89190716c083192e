//! Reading the segments to score from a generations table (or a plain `direction, src, ref, hyp` table, or a
//! Parquet / JSONL file with the same columns).

use std::collections::HashMap;
use std::path::Path;

use alinea_metrics::text::py_rstrip;
use polars::prelude::*;

use super::Params;
use crate::support::lang::Registry;
use alinea_engine::{Optional, PathSlot, StageCtx, StageError};
use alinea_metrics::SpmModel;

/// The SentencePiece model of the optional `slot` (spBLEU's tokenizer), read and parsed, if the pipeline gives one.
pub fn spm_model(
    ctx: &StageCtx,
    slot: PathSlot<Optional>,
) -> Result<Option<SpmModel>, StageError> {
    let Some(path) = ctx.path(slot)? else {
        return Ok(None);
    };
    let path = path.to_path_buf();
    let bytes = ctx.read_file(&path)?;
    SpmModel::from_bytes(&path, &bytes)
        .map(Some)
        .map_err(|e| StageError::Input {
            slot: slot.name().into(),
            message: e.to_string(),
        })
}

/// One segment to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// 0-based row of the input table.
    pub row: u64,
    /// `pair_id` when the table has one.
    pub pair_id: Option<u64>,
    /// `"{src_lang}-{tgt_lang}"`.
    pub direction: String,
    /// Source language code.
    pub src_lang: String,
    /// Target language code.
    pub tgt_lang: String,
    /// Source sentence, when known (column, pairs table, or the MTInstruct prompt).
    pub src: Option<String>,
    /// Reference translation.
    pub reference: String,
    /// Model output.
    pub hyp: String,
}

/// Counts of what was inferred or missing while reading, for the stage's stats.
#[derive(Debug, Default)]
pub struct ReadCounts {
    /// Null hypotheses read as empty.
    pub null_hypothesis: u64,
    /// Null references read as empty.
    pub null_reference: u64,
    /// Sources taken from the `pairs` input.
    pub source_from_pairs: u64,
    /// Sources parsed out of the MTInstruct prompt.
    pub source_from_instruction: u64,
    /// Rows whose source is unknown.
    pub source_unknown: u64,
}

fn input_err(message: String) -> StageError {
    StageError::Input {
        slot: "generations".into(),
        message,
    }
}

/// A column as optional strings (any type is cast to text).
fn text_column(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, StageError> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

fn has(df: &DataFrame, name: &str) -> bool {
    df.get_column_names().iter().any(|c| c.as_str() == name)
}

fn first_present<'a>(df: &DataFrame, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|n| has(df, n))
}

/// `Translate from {Y} to {X}.{sep}{Y}: {y}{sep}{X}:` → `y` (the MTInstruct template of `instruct.mt`, with any
/// separator).
pub fn source_from_instruction(instruction: &str, y_name: &str, x_name: &str) -> Option<String> {
    let rest = instruction.strip_prefix(&format!("Translate from {y_name} to {x_name}."))?;
    let marker = format!("{y_name}: ");
    let pos = rest.find(&marker)?;
    let sep = &rest[..pos];
    let after = &rest[pos + marker.len()..];
    after
        .strip_suffix(&format!("{sep}{x_name}:"))
        .map(str::to_string)
}

/// Source text per `pair_id` and language, from a pairs table.
type PairIndex = HashMap<(u64, String), String>;

/// Indexes a pairs table by (pair_id, language of the side).
pub fn index_pairs(df: &DataFrame) -> Result<PairIndex, StageError> {
    let ids = df.column("pair_id")?.cast(&DataType::UInt64)?;
    let ids = ids.u64()?;
    let (sl, tl, src, tgt) = (
        text_column(df, "src_lang")?,
        text_column(df, "tgt_lang")?,
        text_column(df, "src")?,
        text_column(df, "tgt")?,
    );
    let mut index = HashMap::with_capacity(df.height() * 2);
    for i in 0..df.height() {
        let Some(id) = ids.get(i) else { continue };
        if let (Some(l), Some(s)) = (&sl[i], &src[i]) {
            index.insert((id, l.clone()), s.clone());
        }
        if let (Some(l), Some(t)) = (&tl[i], &tgt[i]) {
            index.insert((id, l.clone()), t.clone());
        }
    }
    Ok(index)
}

/// The segments of `df`, in row order. See the stage documentation for the columns read.
pub fn segments(
    df: &DataFrame,
    p: &Params,
    pairs: Option<&PairIndex>,
    counts: &mut ReadCounts,
) -> Result<Vec<Segment>, StageError> {
    let columns = || {
        df.get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pick =
        |param: &str, field: &str, defaults: &[&'static str]| -> Result<String, StageError> {
            if !param.is_empty() {
                if !has(df, param) {
                    return Err(StageError::Param {
                        field: field.into(),
                        message: format!("no column `{param}`; columns are: {}", columns()),
                    });
                }
                return Ok(param.to_string());
            }
            first_present(df, defaults)
                .map(str::to_string)
                .ok_or_else(|| {
                    input_err(format!(
                        "no {} column (tried {}); columns are: {}",
                        field.trim_end_matches("_column"),
                        defaults.join(", "),
                        columns()
                    ))
                })
        };
    let hyp_col = pick(&p.hyp_column, "hyp_column", &["hypothesis", "hyp"])?;
    let ref_col = pick(&p.ref_column, "ref_column", &["ref", "reference", "output"])?;
    let src_col = if !p.src_column.is_empty() {
        Some(pick(&p.src_column, "src_column", &[])?)
    } else {
        Some("src")
            .filter(|c| has(df, c) && *c != hyp_col && *c != ref_col)
            .map(str::to_string)
    };

    let n = df.height();
    let hyps = text_column(df, &hyp_col)?;
    let refs = text_column(df, &ref_col)?;
    let srcs = src_col.as_deref().map(|c| text_column(df, c)).transpose()?;
    let direction = has(df, "direction")
        .then(|| text_column(df, "direction"))
        .transpose()?;
    let src_lang = has(df, "src_lang")
        .then(|| text_column(df, "src_lang"))
        .transpose()?;
    let tgt_lang = has(df, "tgt_lang")
        .then(|| text_column(df, "tgt_lang"))
        .transpose()?;
    let instruction = has(df, "instruction")
        .then(|| text_column(df, "instruction"))
        .transpose()?;
    let pair_ids: Option<Vec<Option<u64>>> = if has(df, "pair_id") {
        let c = df.column("pair_id")?.cast(&DataType::UInt64)?;
        Some(c.u64()?.iter().collect())
    } else {
        None
    };
    if direction.is_none() && (src_lang.is_none() || tgt_lang.is_none()) {
        return Err(input_err(format!(
            "needs a `direction` column (\"be-en\") or `src_lang` and `tgt_lang`; columns are: {}",
            columns()
        )));
    }
    let registry = Registry::with_extra(&p.extra_languages);
    let name_of = |code: &str| registry.get(code).map(|l| l.name.clone());

    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let get = |c: &Option<Vec<Option<String>>>| {
            c.as_ref()
                .and_then(|v| v[i].clone())
                .filter(|s| !s.is_empty())
        };
        let (sl, tl, dir) = match (get(&src_lang), get(&tgt_lang), get(&direction)) {
            (Some(s), Some(t), d) => {
                let d = d.unwrap_or_else(|| format!("{s}-{t}"));
                (s, t, d)
            }
            (_, _, Some(d)) => {
                let (s, t) = d.split_once('-').ok_or_else(|| {
                    input_err(format!("row {i}: direction `{d}` is not `src-tgt`"))
                })?;
                (s.to_string(), t.to_string(), d.clone())
            }
            _ => {
                return Err(input_err(format!(
                    "row {i}: no direction and no src_lang/tgt_lang"
                )));
            }
        };
        if dir.matches('-').count() != 1 {
            return Err(input_err(format!(
                "row {i}: direction `{dir}` must be `src-tgt` with one `-`"
            )));
        }
        let hyp = hyps[i].clone().unwrap_or_else(|| {
            counts.null_hypothesis += 1;
            String::new()
        });
        let mut reference = refs[i].clone().unwrap_or_else(|| {
            counts.null_reference += 1;
            String::new()
        });
        if ref_col == "output" {
            // MTInstruct outputs are ` {x}`: the reference is `x`.
            if let Some(r) = reference.strip_prefix(' ') {
                reference = r.to_string();
            }
        }
        let pair_id = pair_ids.as_ref().and_then(|v| v[i]);
        let mut src = srcs.as_ref().and_then(|v| v[i].clone());
        if src.is_none()
            && let (Some(index), Some(id)) = (pairs, pair_id)
        {
            src = index.get(&(id, sl.clone())).cloned();
            if src.is_some() {
                counts.source_from_pairs += 1;
            }
        }
        if src.is_none()
            && let (Some(instr), Some(y), Some(x)) = (get(&instruction), name_of(&sl), name_of(&tl))
        {
            src = source_from_instruction(&instr, &y, &x);
            if src.is_some() {
                counts.source_from_instruction += 1;
            }
        }
        if src.is_none() {
            counts.source_unknown += 1;
        }
        // Compared as sacrebleu compares lines read from files: trailing whitespace removed (Python `rstrip`).
        out.push(Segment {
            row: i as u64,
            pair_id,
            direction: dir,
            src_lang: sl,
            tgt_lang: tl,
            src: src.map(|s| py_rstrip(&s).to_string()),
            reference: py_rstrip(&reference).to_string(),
            hyp: py_rstrip(&hyp).to_string(),
        });
    }
    Ok(out)
}

/// A generations file: Parquet, or JSON Lines (one object per line; strings, integers and nulls).
pub fn read_file(path: &Path, bytes: Vec<u8>) -> Result<DataFrame, StageError> {
    let bad = |line: u64, message: String| StageError::BadInput {
        path: path.to_path_buf(),
        line,
        message,
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "parquet" => alinea_engine::table::decode_table(bytes, || path.display().to_string()),
        "jsonl" | "ndjson" => {
            let text =
                String::from_utf8(bytes).map_err(|e| bad(0, format!("invalid UTF-8: {e}")))?;
            let mut keys: Vec<String> = Vec::new();
            let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| bad(i as u64 + 1, format!("not JSON: {e}")))?;
                let serde_json::Value::Object(o) = v else {
                    return Err(bad(i as u64 + 1, "expected a JSON object".into()));
                };
                for k in o.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
                rows.push(o);
            }
            let mut cols = Vec::with_capacity(keys.len());
            for k in &keys {
                let vals: Vec<Option<&serde_json::Value>> = rows
                    .iter()
                    .map(|r| r.get(k).filter(|v| !v.is_null()))
                    .collect();
                if vals.iter().flatten().all(|v| v.is_u64()) {
                    cols.push(Column::new(
                        k.as_str().into(),
                        vals.iter()
                            .map(|v| v.and_then(|v| v.as_u64()))
                            .collect::<Vec<_>>(),
                    ));
                } else {
                    let s: Vec<Option<String>> = vals
                        .iter()
                        .map(|v| {
                            v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        })
                        .collect();
                    cols.push(Column::new(k.as_str().into(), s));
                }
            }
            Ok(DataFrame::new_infer_height(cols)?)
        }
        _ => Err(bad(
            0,
            "unknown format: give a .parquet or .jsonl file".into(),
        )),
    }
}
