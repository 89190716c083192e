//! `align.priors`: the Bayesian aligner's priors ([`alinea_align::priors`]) learned from an `align.ibm2` table's
//! two directions, as a table another `align.ibm2` stage reads through its `priors` input.

use std::collections::BTreeMap;

use alinea_align::{DirectionPriors, FormatError, Priors, pharaoh};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::text::pairs::str_column;
use alinea_engine::{
    ColumnDecl, DType, InputSlot, OutputSlot, Outputs, ParamError, Stage, StageCtx, StageError,
    Stats, TableSlot, col,
};

/// Parameters of `align.priors`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Every count is multiplied by this (> 0): 1 gives the learning corpus the weight of its own data; below 1
    /// lets the reusing corpus's own counts take over sooner.
    pub weight: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params { weight: 1.0 }
    }
}

const ALIGNMENTS: TableSlot = TableSlot::new(
    "alignments",
    "an align.ibm2 table (its forward and reverse alignments are counted)",
)
.requires(&[
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("src_tokens", DType::List(&DType::Str)),
    col("tgt_tokens", DType::List(&DType::Str)),
    col("forward", DType::Str),
    col("reverse", DType::Str),
    col("skipped", DType::Str),
]);

/// The `priors` table: one row per pseudo-count, sorted by language pair, direction, kind, then key.
pub const PRIOR_COLUMNS: &[ColumnDecl] = &[
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("direction", DType::Str),
    col("kind", DType::Str),
    col("conditioning", DType::Str),
    col("generated", DType::Str),
    col("value", DType::I64),
    col("count", DType::F64),
];

/// The stage kind.
pub struct AlignPriors;

fn input_err(row: usize, column: &str, message: impl std::fmt::Display) -> StageError {
    StageError::Input {
        slot: ALIGNMENTS.name().into(),
        message: format!("row {row}, column `{column}`: {message}"),
    }
}

/// The string lists of column `name`, one per row (a null list is an error: align.ibm2 never writes one).
fn token_lists(df: &DataFrame, name: &str) -> Result<Vec<Vec<String>>, StageError> {
    let lists = df.column(name)?.list()?;
    lists
        .series_iter()
        .enumerate()
        .map(|(row, list)| {
            let list = list.ok_or_else(|| input_err(row, name, "null token list"))?;
            list.str()?
                .iter()
                .map(|t| {
                    t.map(str::to_string)
                        .ok_or_else(|| input_err(row, name, "null token"))
                })
                .collect()
        })
        .collect()
}

/// The sentences of one language pair that were aligned (not skipped), with both directions' links.
#[derive(Default)]
struct Group {
    src: Vec<Vec<String>>,
    tgt: Vec<Vec<String>>,
    forward: Vec<Vec<(u32, u32)>>,
    reverse: Vec<Vec<(u32, u32)>>,
}

/// Parses row `row`'s Pharaoh column `name` (0-based `i-j` links, as align.ibm2 writes them).
fn links(value: Option<&str>, row: usize, name: &str) -> Result<Vec<(u32, u32)>, StageError> {
    let text = value.ok_or_else(|| input_err(row, name, "null alignment"))?;
    match pharaoh::parse_pharaoh_line(text, false, row) {
        Ok(ls) => Ok(ls.into_iter().map(|(link, _sure)| link).collect()),
        Err(FormatError::BadLink { token, reason, .. }) => {
            Err(input_err(row, name, format!("bad link `{token}`: {reason}")))
        }
        Err(e) => Err(input_err(row, name, e)),
    }
}

/// A (src_lang, tgt_lang) pair.
pub type LangPair = (String, String);

/// The aligned rows of `df`, grouped by (src_lang, tgt_lang); the number of skipped rows.
fn groups(df: &DataFrame) -> Result<(BTreeMap<LangPair, Group>, u64), StageError> {
    let (src_lang, tgt_lang) = (str_column(df, "src_lang")?, str_column(df, "tgt_lang")?);
    let (forward, reverse) = (str_column(df, "forward")?, str_column(df, "reverse")?);
    let skipped = str_column(df, "skipped")?;
    let (mut src, mut tgt) = (token_lists(df, "src_tokens")?, token_lists(df, "tgt_tokens")?);
    let mut out: BTreeMap<LangPair, Group> = BTreeMap::new();
    let mut n_skipped = 0;
    for row in 0..df.height() {
        if skipped.get(row).is_some() {
            // A skipped pair has no alignment: counting it would make every token a NULL event.
            n_skipped += 1;
            continue;
        }
        let key = (
            src_lang.get(row).unwrap_or("").to_string(),
            tgt_lang.get(row).unwrap_or("").to_string(),
        );
        let g = out.entry(key).or_default();
        g.forward.push(links(forward.get(row), row, "forward")?);
        g.reverse.push(links(reverse.get(row), row, "reverse")?);
        g.src.push(std::mem::take(&mut src[row]));
        g.tgt.push(std::mem::take(&mut tgt[row]));
    }
    Ok((out, n_skipped))
}

/// The rows of a priors table, appended column by column. Words are borrowed from the priors: a paper-scale table
/// has millions of entries, and a copy of every word per row was most of the peak memory of writing one.
#[derive(Default)]
struct PriorRows<'a> {
    src_lang: Vec<&'a str>,
    tgt_lang: Vec<&'a str>,
    direction: Vec<&'static str>,
    kind: Vec<&'static str>,
    conditioning: Vec<Option<&'a str>>,
    generated: Vec<Option<&'a str>>,
    value: Vec<Option<i64>>,
    count: Vec<f64>,
}

impl<'a> PriorRows<'a> {
    /// One direction's entries, in [`DirectionPriors::entries`]'s order: translation (by words), jump (by
    /// width), null, fertility (by word, φ).
    fn push(&mut self, langs: &'a LangPair, direction: &'static str, p: &'a DirectionPriors) {
        let mut row = |kind, conditioning, generated, value, count| {
            self.src_lang.push(&langs.0);
            self.tgt_lang.push(&langs.1);
            self.direction.push(direction);
            self.kind.push(kind);
            self.conditioning.push(conditioning);
            self.generated.push(generated);
            self.value.push(value);
            self.count.push(count);
        };
        for ((e, f), &c) in &p.translation {
            row("translation", e.as_deref(), Some(f.as_str()), None, c);
        }
        for (&d, &c) in &p.jump {
            row("jump", None, None, Some(d), c);
        }
        if p.null > 0.0 {
            row("null", None, None, None, p.null);
        }
        for ((e, phi), &c) in &p.fertility {
            row("fertility", Some(e.as_str()), None, Some(i64::from(*phi)), c);
        }
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new("src_lang".into(), self.src_lang),
            Column::new("tgt_lang".into(), self.tgt_lang),
            Column::new("direction".into(), self.direction),
            Column::new("kind".into(), self.kind),
            Column::new("conditioning".into(), self.conditioning),
            Column::new("generated".into(), self.generated),
            Column::new("value".into(), self.value),
            Column::new("count".into(), self.count),
        ])
    }
}

impl Stage for AlignPriors {
    const KIND: &'static str = "align.priors";
    const SUMMARY: &'static str = "the Bayesian aligner's priors learned from an align.ibm2 table, for align.ibm2 on another corpus";
    const DOC: &'static str = "\
Counts, per (src_lang, tgt_lang) and direction, the events the Bayesian HMM + fertility model generates in the
alignments of an align.ibm2 table (any model): each generated token with the word it is linked to (NULL when
unlinked), each jump between linked positions (and to the end), each NULL event, and each word's fertility. An
align.ibm2 stage with `model = \"hmm\"` or `\"fertility\"` reads the table through its `priors` input and adds
the counts, times `weight`, to its Dirichlet parameters: aligning a small or noisy corpus (back-translations, a
new sample) with what a large one taught, as eflomal's priors do. Words are matched by text: the reading stage
lowercases them when its `lowercase` is on, so learn from a table aligned the same way.

Skipped rows are not counted. Columns: kind = translation (conditioning = NULL-able word, generated = word),
jump (value = width d; forward widths are over source positions), null, fertility (conditioning = word,
value = φ). Stats: rows_in = alignment rows, rows_out = prior entries; counters skipped, pairs/<src>-<tgt>.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[ALIGNMENTS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[OutputSlot::table(
        "priors",
        PRIOR_COLUMNS,
        "one row per pseudo-count: src_lang, tgt_lang, direction (forward = tgt generated from src, reverse), kind (translation | jump | null | fertility), conditioning and generated words (null where the kind has none; conditioning null in a translation row = NULL), value (jump width or fertility), count (× weight)",
    )];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.weight > 0.0 && p.weight.is_finite() {
            Ok(())
        } else {
            Err(ParamError::new(
                "weight",
                format!("must be a finite number > 0, got {}", p.weight),
            ))
        }
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(ALIGNMENTS)?;
        let mut stats = Stats {
            rows_in: df.height() as u64,
            ..Stats::default()
        };
        let (groups, skipped) = groups(&df)?;
        drop(df);
        stats.count("skipped", skipped);
        // Each group's tokens are freed once counted: the table is built from the priors alone.
        let mut learned = Vec::with_capacity(groups.len());
        for (langs, g) in groups {
            let priors = Priors::learn(&g.src, &g.tgt, &g.forward, &g.reverse, p.weight)
                .map_err(StageError::with(format!(
                    "align.priors, language pair {}-{}",
                    langs.0, langs.1
                )))?;
            stats.count(&format!("pairs/{}-{}", langs.0, langs.1), g.src.len() as u64);
            learned.push((langs, priors));
        }
        let out = priors_table(learned.iter().map(|(langs, priors)| (langs, priors)))?;
        stats.rows_out = out.height() as u64;
        Ok(Outputs::table("priors", out, stats))
    }
}

/// The `priors` table (the stage's output) of priors learned elsewhere, one language pair after another: what
/// `alinea align --save-priors` writes, so that the stage's readers and the command line share one format.
pub fn priors_table<'a>(
    groups: impl IntoIterator<Item = (&'a LangPair, &'a Priors)>,
) -> PolarsResult<DataFrame> {
    let mut rows = PriorRows::default();
    for (langs, priors) in groups {
        rows.push(langs, "forward", &priors.forward);
        rows.push(langs, "reverse", &priors.reverse);
    }
    rows.frame()
}

/// The priors of a `priors` table by (src_lang, tgt_lang), words lowercased when `lowercase` (entries that become
/// equal add up). Errors name the row and column.
pub fn read_priors(
    df: &DataFrame,
    slot: &str,
    lowercase: bool,
) -> Result<BTreeMap<LangPair, Priors>, StageError> {
    use alinea_align::{Direction, PriorKind};
    let err = |row: usize, column: &str, message: String| StageError::Input {
        slot: slot.into(),
        message: format!("row {row}, column `{column}`: {message}"),
    };
    let text = |c: &str| str_column(df, c);
    let (src_lang, tgt_lang) = (text("src_lang")?, text("tgt_lang")?);
    let (direction, kind) = (text("direction")?, text("kind")?);
    let (conditioning, generated) = (text("conditioning")?, text("generated")?);
    let value = df.column("value")?.i64()?;
    let count = df.column("count")?.f64()?;
    let word = |w: &str| {
        if lowercase {
            w.to_lowercase()
        } else {
            w.to_string()
        }
    };
    let mut out: BTreeMap<LangPair, Priors> = BTreeMap::new();
    for row in 0..df.height() {
        let need = |c: &'static str, v: Option<&str>| {
            v.map(word)
                .ok_or_else(|| err(row, c, format!("null, but a {} row needs it", kind.get(row).unwrap_or(""))))
        };
        let need_value = || {
            value
                .get(row)
                .ok_or_else(|| err(row, "value", "null, but a jump or fertility row needs it".into()))
        };
        let dir = direction.get(row).unwrap_or("");
        let dir = Direction::parse(dir)
            .ok_or_else(|| err(row, "direction", format!("`{dir}`: expected forward or reverse")))?;
        let c = count
            .get(row)
            .filter(|c| *c > 0.0 && c.is_finite())
            .ok_or_else(|| err(row, "count", "expected a finite number > 0".into()))?;
        let k = match kind.get(row).unwrap_or("") {
            "translation" => PriorKind::Translation {
                conditioning: conditioning.get(row).map(word),
                generated: need("generated", generated.get(row))?,
            },
            "jump" => PriorKind::Jump(need_value()?),
            "null" => PriorKind::Null,
            "fertility" => {
                let phi = need_value()?;
                PriorKind::Fertility {
                    conditioning: need("conditioning", conditioning.get(row))?,
                    fertility: u32::try_from(phi).map_err(|_| {
                        err(row, "value", format!("fertility {phi}: expected 0 or more"))
                    })?,
                }
            }
            other => {
                return Err(err(
                    row,
                    "kind",
                    format!("`{other}`: expected translation, jump, null or fertility"),
                ));
            }
        };
        let langs = (
            src_lang.get(row).unwrap_or("").to_string(),
            tgt_lang.get(row).unwrap_or("").to_string(),
        );
        out.entry(langs).or_default().direction_mut(dir).add(k, c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned() -> Priors {
        let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let src = vec![words("The blue house"), words("the house")];
        let tgt = vec![words("la maison bleue"), words("la Maison")];
        let forward = vec![vec![(0, 0), (1, 2), (2, 1)], vec![(0, 0)]];
        let reverse = vec![vec![(0, 0), (2, 1)], vec![(0, 0), (1, 1)]];
        Priors::learn(&src, &tgt, &forward, &reverse, 2.0).unwrap()
    }

    fn table(p: &Priors) -> DataFrame {
        let langs = ("en".to_string(), "fr".to_string());
        priors_table([(&langs, p)]).unwrap()
    }

    #[test]
    fn a_written_table_reads_back_as_the_same_priors() {
        let p = learned();
        let df = table(&p);
        let back = read_priors(&df, "priors", false).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[&("en".to_string(), "fr".to_string())], p);
        // Lowercasing merges `The`/`the` and `Maison`/`maison`, keeping the totals.
        let lower = &read_priors(&df, "priors", true).unwrap()[&("en".to_string(), "fr".to_string())];
        let total = |d: &DirectionPriors| d.translation.values().sum::<f64>();
        assert_eq!(total(&lower.forward), total(&p.forward));
        assert!(lower.forward.translation.len() < p.forward.translation.len());
        assert!(lower.forward.translation.keys().all(|(e, f)| {
            e.as_deref().is_none_or(|e| e == e.to_lowercase()) && *f == f.to_lowercase()
        }));
    }

    #[test]
    fn bad_rows_are_refused_naming_row_and_column() {
        let df = table(&learned());
        let edit = |column: &str, row: usize, value: AnyValue<'static>| {
            let mut df = df.clone();
            let mut values: Vec<AnyValue> = df.column(column).unwrap().as_materialized_series().iter().collect();
            values[row] = value;
            let col = Column::new(column.into(), values);
            df.replace(column, col).unwrap();
            read_priors(&df, "priors", false).unwrap_err().to_string()
        };
        let e = edit("kind", 3, AnyValue::StringOwned("ibm3".into()));
        assert!(e.contains("row 3, column `kind`") && e.contains("`ibm3`"), "{e}");
        let e = edit("direction", 0, AnyValue::StringOwned("both".into()));
        assert!(e.contains("row 0, column `direction`"), "{e}");
        let e = edit("count", 1, AnyValue::Float64(-1.0));
        assert!(e.contains("row 1, column `count`"), "{e}");
        let e = edit("generated", 0, AnyValue::Null);
        assert!(e.contains("row 0, column `generated`") && e.contains("translation"), "{e}");
    }
}
