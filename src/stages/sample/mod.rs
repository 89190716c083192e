//! `sample`: deterministic seeded sampling of N pairs per language, with dedup and length filters.

use std::collections::{BTreeMap, HashSet};

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::text::pairs::{PAIRS_COLUMNS, PAIRS_OUTPUT, str_column};
use alinea_engine::{
    InputSlot, OutputSlot, Outputs, ParamError, Stage, StageCtx, StageError, Stats, TableSlot,
};

/// Parameters of `sample`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Pairs kept per (split, src_lang, tgt_lang) group; the paper samples 200,000 per language.
    pub per_lang: u64,
    /// Seed of the selection.
    pub seed: u64,
    /// Splits to sample from (others are dropped and counted).
    pub splits: Vec<String>,
    /// Drop exact duplicate (src, tgt) pairs, keeping the first.
    pub dedup: bool,
    /// Drop pairs whose sides are identical after trimming (untranslated copies).
    pub drop_identical: bool,
    /// Minimum words (whitespace-separated) on each side.
    pub min_words: u64,
    /// Maximum words on each side.
    pub max_words: u64,
    /// Maximum ratio between the longer and the shorter side's character count (0 = no filter).
    pub max_len_ratio: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            per_lang: 200_000,
            seed: 1,
            splits: vec!["train".into()],
            dedup: true,
            drop_identical: true,
            min_words: 1,
            max_words: 250,
            max_len_ratio: 0.0,
        }
    }
}

const PAIRS: TableSlot = TableSlot::new(
    "pairs",
    "a pairs table (from an ingest stage); passed through with its schema",
)
.requires(PAIRS_COLUMNS);

/// The stage kind.
pub struct Sample;

/// Why a row is filtered out, if it is.
fn reject(p: &Params, src: &str, tgt: &str) -> Option<&'static str> {
    let (ws, wt) = (
        src.split_whitespace().count() as u64,
        tgt.split_whitespace().count() as u64,
    );
    if ws < p.min_words || wt < p.min_words {
        return Some("too_short");
    }
    if ws > p.max_words || wt > p.max_words {
        return Some("too_long");
    }
    if p.drop_identical && src.trim() == tgt.trim() {
        return Some("identical_sides");
    }
    if p.max_len_ratio > 0.0 {
        let (a, b) = (
            src.chars().count().max(1) as f64,
            tgt.chars().count().max(1) as f64,
        );
        if a.max(b) / a.min(b) > p.max_len_ratio {
            return Some("length_ratio");
        }
    }
    None
}

/// The selection priority of a pair: a keyed hash, so a pair's fate depends only on the seed and its own text,
/// never on thread count or on which other rows exist.
fn priority(seed: u64, src: &str, tgt: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(&blake3::hash(&seed.to_le_bytes()).into());
    h.update(src.as_bytes());
    h.update(&[0]);
    h.update(tgt.as_bytes());
    h.finalize().into()
}

impl Stage for Sample {
    const KIND: &'static str = "sample";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "deterministic seeded sampling of N pairs per language, with dedup and filters";
    const DOC: &'static str = "\
Samples up to `per_lang` pairs per (split, src_lang, tgt_lang) group of a pairs table.

Selection: each surviving pair gets the priority blake3_keyed(seed, src \\0 tgt); the `per_lang` lowest are kept,
in their input order. The result depends only on the seed and the data, never on thread count.
Stats count every dropped row by reason.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[PAIRS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[PAIRS_OUTPUT];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.min_words > p.max_words {
            return Err(ParamError::new(
                "min_words",
                format!(
                    "min_words ({}) is greater than max_words ({})",
                    p.min_words, p.max_words
                ),
            ));
        }
        if p.max_len_ratio < 0.0 {
            return Err(ParamError::new(
                "max_len_ratio",
                "must be >= 0 (0 disables it)",
            ));
        }
        Ok(())
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(PAIRS)?;
        let (split, src_lang, tgt_lang) = (
            str_column(&df, "split")?,
            str_column(&df, "src_lang")?,
            str_column(&df, "tgt_lang")?,
        );
        let (src, tgt) = (str_column(&df, "src")?, str_column(&df, "tgt")?);
        let n = df.height();
        let mut stats = Stats {
            rows_in: n as u64,
            ..Stats::default()
        };

        let rows: Vec<(&str, &str, &str, &str, &str)> = (0..n)
            .map(|i| {
                (
                    split.get(i).unwrap_or(""),
                    src_lang.get(i).unwrap_or(""),
                    tgt_lang.get(i).unwrap_or(""),
                    src.get(i).unwrap_or(""),
                    tgt.get(i).unwrap_or(""),
                )
            })
            .collect();
        let verdicts: Vec<Option<&'static str>> = rows
            .par_iter()
            .map(|(sp, _, _, s, t)| {
                if p.splits.iter().any(|x| x == sp) {
                    reject(p, s, t)
                } else {
                    Some("other_split")
                }
            })
            .collect();
        let mut seen: HashSet<(&str, &str, &str, &str)> = HashSet::new();
        let mut groups: BTreeMap<(&str, &str, &str), Vec<usize>> = BTreeMap::new();
        for (i, verdict) in verdicts.iter().enumerate() {
            let (sp, sl, tl, s, t) = rows[i];
            if let Some(reason) = verdict {
                stats.drop_rows(reason, 1);
                continue;
            }
            if p.dedup && !seen.insert((sl, tl, s, t)) {
                stats.drop_rows("duplicate", 1);
                continue;
            }
            groups.entry((sp, sl, tl)).or_default().push(i);
        }
        let mut keep = vec![false; n];
        for (_, members) in groups {
            let mut ranked: Vec<([u8; 32], usize)> = members
                .par_iter()
                .map(|&i| (priority(p.seed, rows[i].3, rows[i].4), i))
                .collect();
            ranked.sort_unstable();
            let take = (p.per_lang as usize).min(ranked.len());
            stats.drop_rows("over_per_lang", (ranked.len() - take) as u64);
            for &(_, i) in &ranked[..take] {
                keep[i] = true;
            }
        }
        let mask = BooleanChunked::from_iter_values("keep".into(), keep.into_iter());
        let out = df.filter_seq(&mask)?;
        stats.rows_out = out.height() as u64;
        Ok(Outputs::table("pairs", out, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_give_their_reason() {
        let p = Params {
            max_words: 3,
            max_len_ratio: 2.0,
            ..Params::default()
        };
        assert_eq!(reject(&p, "", "x"), Some("too_short"));
        assert_eq!(reject(&p, "a b c d", "x"), Some("too_long"));
        assert_eq!(reject(&p, " same ", "same"), Some("identical_sides"));
        assert_eq!(reject(&p, "aaaaaaa", "b"), Some("length_ratio"));
        assert_eq!(reject(&p, "Дзякуй", "Thanks"), None);
    }

    #[test]
    fn priority_depends_on_seed_and_text_only() {
        assert_eq!(priority(1, "a", "b"), priority(1, "a", "b"));
        assert_ne!(priority(1, "a", "b"), priority(2, "a", "b"));
        // The separator keeps ("ab", "") and ("a", "b") apart.
        assert_ne!(priority(1, "ab", ""), priority(1, "a", "b"));
    }
}
