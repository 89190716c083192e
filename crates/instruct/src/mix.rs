//! Mixing an external instruction file (Alpaca JSON / JSONL) into generated rows: CrossAlpaca interleaving and
//! InstructAlign experience replay.

use std::collections::BTreeMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::error::{InstructError, Result};
use crate::length::{LengthParams, TokenCounter, apply_lengths};
use crate::row::{BuildOutput, InstructRow, Stats, Task};
use crate::{SALT_MIX, rng_for};

/// One record of an Alpaca-format file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlpacaRecord {
    /// The task instruction.
    pub instruction: String,
    /// Optional context (empty when absent).
    #[serde(default)]
    pub input: String,
    /// The expected response.
    pub output: String,
}

fn alpaca_err(
    path: &Path,
    line: usize,
    column: usize,
    message: impl Into<String>,
) -> InstructError {
    InstructError::Alpaca {
        path: path.to_path_buf(),
        line,
        column,
        message: message.into(),
    }
}

/// Parses Alpaca data from text: a JSON array of objects (`[...]`, Stanford Alpaca's `alpaca_data.json`) or JSON
/// Lines (one object per line; blank lines skipped). Fields `instruction` and `output` are required, `input`
/// optional, other fields ignored. Errors carry `path:line:column`.
pub fn parse_alpaca(text: &str, path: &Path) -> Result<Vec<AlpacaRecord>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('[') {
        return serde_json::from_str::<Vec<AlpacaRecord>>(text)
            .map_err(|e| alpaca_err(path, e.line(), e.column(), e.to_string()));
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: AlpacaRecord = serde_json::from_str(line)
            .map_err(|e| alpaca_err(path, i + 1, e.column(), e.to_string()))?;
        out.push(rec);
    }
    Ok(out)
}

/// Reads an Alpaca JSON or JSONL file (see [`parse_alpaca`]).
pub fn load_alpaca(path: &Path) -> Result<Vec<AlpacaRecord>> {
    let text = std::fs::read_to_string(path).map_err(|source| InstructError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_alpaca(&text, path)
}

impl AlpacaRecord {
    /// The record as an `external` row from `source`.
    pub fn to_row(&self, source: &str) -> InstructRow {
        InstructRow {
            task: Task::External,
            src_lang: String::new(),
            tgt_lang: String::new(),
            direction: String::new(),
            pair_id: None,
            instruction: self.instruction.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            label: None,
            src_start: None,
            src_end: None,
            tgt_start: None,
            tgt_end: None,
            swapped_side: None,
            swap_origin: None,
            swap_pair_id: None,
            swap_start: None,
            swap_end: None,
            phase: 0,
            input_tokens: 0,
            output_tokens: 0,
            truncated: false,
            source: source.to_string(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_source() -> String {
    "external".to_string()
}

/// Parameters of `instruct.mix`. Give at most one of `count` and `ratio`; with neither, every external record is
/// used (CrossAlpaca). Experience replay (InstructAlign) is `count = 1000`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MixParams {
    /// Absolute number of external records to sample (without replacement).
    pub count: Option<usize>,
    /// External records per generated row (after `per_direction_cap`).
    pub ratio: Option<f64>,
    /// Cap of generated rows per (task, direction), e.g. 10,000 for CrossAlpaca's 10k en→x + 10k x→en; sampled
    /// without replacement, original order kept (default: no cap).
    pub per_direction_cap: Option<usize>,
    /// Shuffle the union (interleave, default true); otherwise generated rows come first, then external ones.
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Name recorded in the `source` column of external rows (default `external`).
    #[serde(default = "default_source")]
    pub source_name: String,
    /// Seed (default 0).
    pub seed: u64,
    /// Token-length limits applied to the external rows (generated rows were checked by their builders).
    pub length: LengthParams,
}

impl Default for MixParams {
    fn default() -> Self {
        MixParams {
            count: None,
            ratio: None,
            per_direction_cap: None,
            shuffle: true,
            source_name: default_source(),
            seed: 0,
            length: LengthParams::default(),
        }
    }
}

/// Mixes `external` records into `generated` rows. When more records are requested than exist, all are used and
/// the shortfall is counted in `stats.notes["external_shortfall"]`. Deterministic under `seed`.
pub fn mix(
    generated: &[InstructRow],
    external: &[AlpacaRecord],
    counter: &TokenCounter,
    params: &MixParams,
) -> Result<BuildOutput> {
    if params.count.is_some() && params.ratio.is_some() {
        return Err(InstructError::Param {
            field: "count",
            message: "give either `count` or `ratio`, not both".into(),
        });
    }
    if let Some(r) = params.ratio
        && !(r.is_finite() && r >= 0.0)
    {
        return Err(InstructError::Param {
            field: "ratio",
            message: format!("must be a finite number >= 0, got {r}"),
        });
    }
    let mut stats = Stats::default();
    let mut rng = rng_for(params.seed, SALT_MIX, 0);
    // Cap per (task, direction), sampling indices within each group and keeping the input order.
    let kept: Vec<InstructRow> = match params.per_direction_cap {
        None => generated.to_vec(),
        Some(cap) => {
            let mut groups: BTreeMap<(Task, &str), Vec<usize>> = BTreeMap::new();
            for (i, r) in generated.iter().enumerate() {
                groups
                    .entry((r.task, r.direction.as_str()))
                    .or_default()
                    .push(i);
            }
            let mut keep = vec![false; generated.len()];
            for idx in groups.values() {
                if idx.len() <= cap {
                    idx.iter().for_each(|&i| keep[i] = true);
                } else {
                    for j in sample(&mut rng, idx.len(), cap) {
                        keep[idx[j]] = true;
                    }
                    stats.drop_n("per_direction_cap", (idx.len() - cap) as u64);
                }
            }
            generated
                .iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(r, _)| r.clone())
                .collect()
        }
    };
    let want = match (params.count, params.ratio) {
        (Some(c), _) => c,
        (None, Some(r)) => (kept.len() as f64 * r).round() as usize,
        (None, None) => external.len(),
    };
    let take = want.min(external.len());
    if want > take {
        stats
            .notes
            .insert("external_shortfall".into(), (want - take) as u64);
    }
    let mut picked = sample(&mut rng, external.len(), take).into_vec();
    picked.sort_unstable();
    let ext_rows: Vec<InstructRow> = picked
        .iter()
        .map(|&i| external[i].to_row(&params.source_name))
        .collect();
    let ext_rows = apply_lengths(ext_rows, counter, &params.length, &mut stats)?;
    let mut rows = kept;
    rows.extend(ext_rows);
    if params.shuffle {
        rows.shuffle(&mut rng);
    }
    stats.count_rows(&rows);
    Ok(BuildOutput { rows, stats })
}
