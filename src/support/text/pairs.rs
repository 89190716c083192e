//! The table every ingestion stage produces: one row per sentence pair, traceable to its file and line.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `pair_id` | u64 | row number in the ingested table (0-based); kept by every later stage, so rows stay joinable |
//! | `corpus` | str | `opus100`, `flores200`, or the `corpus` parameter of `ingest.parallel` |
//! | `split` | str | `train`, `dev`, `test`, `devtest`, … |
//! | `lang` | str | the pair's language in the paper's sense: the non-English side |
//! | `src_lang`, `tgt_lang` | str | ISO codes of the two sides (`src` is the non-English side for pairs with English) |
//! | `src`, `tgt` | str | the sentences |
//! | `source_file` | str | file of the `src` side, relative to the input root |
//! | `line` | u32 | 1-based line (or row, or Flores sentence id) in that file |

use alinea_engine::{ColumnDecl, DType, OutputSlot, col};
use polars::prelude::*;

use alinea_engine::Stats;

/// Rows of the pairs table, built column by column.
#[derive(Debug, Default)]
pub struct PairRows {
    pair_id: Vec<u64>,
    corpus: Vec<String>,
    split: Vec<String>,
    lang: Vec<String>,
    src_lang: Vec<String>,
    tgt_lang: Vec<String>,
    src: Vec<String>,
    tgt: Vec<String>,
    source_file: Vec<String>,
    line: Vec<u32>,
}

/// Where a batch of pairs comes from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// Corpus name.
    pub corpus: &'a str,
    /// Split name.
    pub split: &'a str,
    /// ISO code of the `src` side.
    pub src_lang: &'a str,
    /// ISO code of the `tgt` side.
    pub tgt_lang: &'a str,
    /// File of the `src` side, as shown to users.
    pub source_file: &'a str,
}

impl PairRows {
    /// Appends aligned sides, dropping (or keeping, with `keep_empty`) pairs with an empty side, and counting them.
    /// Rows are numbered 1.. unless `line_numbers` gives each row's line in its file.
    pub fn extend(
        &mut self,
        origin: &Origin,
        src: Vec<String>,
        tgt: Vec<String>,
        line_numbers: Option<Vec<u32>>,
        keep_empty: bool,
        stats: &mut Stats,
    ) {
        let lang = if origin.src_lang == "en" {
            origin.tgt_lang
        } else {
            origin.src_lang
        };
        stats.rows_in += src.len() as u64;
        for (i, (s, t)) in src.into_iter().zip(tgt).enumerate() {
            if !keep_empty && (s.trim().is_empty() || t.trim().is_empty()) {
                stats.drop_rows("empty_side", 1);
                continue;
            }
            if s.trim().is_empty() || t.trim().is_empty() {
                stats.count("kept_empty_side", 1);
            }
            self.pair_id.push(self.pair_id.len() as u64);
            self.corpus.push(origin.corpus.to_string());
            self.split.push(origin.split.to_string());
            self.lang.push(lang.to_string());
            self.src_lang.push(origin.src_lang.to_string());
            self.tgt_lang.push(origin.tgt_lang.to_string());
            self.src.push(s);
            self.tgt.push(t);
            self.source_file.push(origin.source_file.to_string());
            self.line
                .push(line_numbers.as_ref().map_or(i as u32 + 1, |l| l[i]));
        }
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    /// The table, in the order rows were added.
    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new("pair_id".into(), self.pair_id),
            Column::new("corpus".into(), self.corpus),
            Column::new("split".into(), self.split),
            Column::new("lang".into(), self.lang),
            Column::new("src_lang".into(), self.src_lang),
            Column::new("tgt_lang".into(), self.tgt_lang),
            Column::new("src".into(), self.src),
            Column::new("tgt".into(), self.tgt),
            Column::new("source_file".into(), self.source_file),
            Column::new("line".into(), self.line),
        ])
    }
}

/// The pairs table every ingestion stage produces (and `sample` passes through).
pub const PAIRS_COLUMNS: &[ColumnDecl] = &[
    col("pair_id", DType::U64),
    col("corpus", DType::Str),
    col("split", DType::Str),
    col("lang", DType::Str),
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("src", DType::Str),
    col("tgt", DType::Str),
    col("source_file", DType::Str),
    col("line", DType::U32),
];

/// What readers of parallel sentences need of a table (a pairs table, or an align.ibm2 table).
pub const PARALLEL_COLUMNS: &[ColumnDecl] = &[
    col("pair_id", DType::U64),
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("src", DType::Str),
    col("tgt", DType::Str),
];

/// The `pairs` output of the ingestion stages.
pub const PAIRS_OUTPUT: OutputSlot = OutputSlot::table(
    "pairs",
    PAIRS_COLUMNS,
    "one row per sentence pair, traceable to its file and line",
);

/// Reads a string column of a pairs table, with an error naming the column when it is absent or not text.
pub fn str_column<'a>(df: &'a DataFrame, name: &str) -> PolarsResult<&'a StringChunked> {
    df.column(name)?.str()
}
