//! `report`: the paper's score tables from one or more `metrics.score` runs, as Markdown, CSV and a self-contained
//! HTML page with charts, plus a summary table of averages per direction group and seen/unseen bucket.
//!
//! The report itself is built by `alinea_metrics::build_report`; this stage only turns the scores tables into
//! its rows, and its summary back into a table.

use std::collections::{BTreeMap, BTreeSet};

use alinea_metrics::report::significance::{
    Comparison, Marks, insert_into_html, significance_html, significance_markdown,
};
use alinea_metrics::report::{DirectionScores, ReportSpec, build_report, paper};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::lang::{Language, Registry};
use alinea_engine::{
    DType, InputSlot, Optional, OutputSlot, Outputs, ParamError, Stage, StageCtx,
    StageError, Stats, TablesSlot, col,
};
pub use paper::PaperReference;

/// Parameters of `report`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Title of the documents.
    pub title: String,
    /// Decimals shown (CSV keeps full precision).
    pub decimals: usize,
    /// Lay the paper's numbers beside the runs: off, `bloomz+24` (also `true`), `bloomz+3:de-nl-ru` or
    /// `bloomz+3:ar-de-fr-nl-ru-zh`.
    #[schemars(with = "serde_json::Value")]
    pub paper_reference: PaperReference,
    /// The model size whose Table 1 averages are shown (the per-direction tables are BLOOMZ-7b1's).
    pub paper_model: String,
    /// Runs compared direction by direction with one of the paper's objectives: `{ score_mt = "MTInstruct" }`.
    pub paper_match: BTreeMap<String, String>,
    /// Metrics laid out, among `BLEU`, `chrF`, `chrF++`, `COMET`.
    pub metrics: Vec<String>,
    /// Languages beyond the built-in registry (for the seen/unseen buckets).
    pub extra_languages: Vec<Language>,
    /// For the significance marks in the tables: the name metrics.compare knew a scores run by
    /// (its generations stage), `{ score_align = "gen_align" }`; unnamed runs match by their own name.
    pub significance_runs: BTreeMap<String, String>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            title: "alinea report".into(),
            decimals: 2,
            paper_reference: PaperReference::default(),
            paper_model: paper::MODELS[0].into(),
            paper_match: BTreeMap::new(),
            metrics: vec!["BLEU".into(), "chrF++".into(), "COMET".into()],
            extra_languages: Vec::new(),
            significance_runs: BTreeMap::new(),
        }
    }
}

const SCORES: TablesSlot = TablesSlot::new(
    "scores",
    "the `scores` tables of metrics.score stages (any number: [\"score_mt\", \"score_align\"] or \"score[*]\")",
)
.requires(&[
    col("test_set", DType::Str),
    col("direction", DType::Str),
    col("lang", DType::Str),
]);

const COMPARISONS: TablesSlot<Optional> = TablesSlot::new(
    "comparisons",
    "the `comparisons` tables of metrics.compare stages: significant differences to the baseline are marked",
)
.optional()
.requires(&[
    col("test_set", DType::Str),
    col("direction", DType::Str),
    col("baseline", DType::Str),
    col("system", DType::Str),
    col("metric", DType::Str),
    col("test", DType::Str),
    col("baseline_score", DType::F64),
    col("score", DType::F64),
    col("p_value", DType::F64),
    col("significant", DType::Bool),
    col("samples", DType::U64),
    col("signature", DType::Str),
]);

/// The stage kind.
pub struct Report;

/// The rows of a `metrics.compare` table.
fn read_comparisons(run: &str, df: &DataFrame) -> Result<Vec<Comparison>, StageError> {
    let s = |name: &str| -> Result<Vec<String>, StageError> {
        str_col(df, run, name).map_err(|_| StageError::Input {
            slot: COMPARISONS.name().into(),
            message: format!("table of `{run}` has no column `{name}`: not a metrics.compare table"),
        })
    };
    let f = |name: &str| -> Result<Vec<f64>, StageError> {
        Ok(f64_col(df, name)?
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let (ts, dir, base, sys, metric, test) = (
        s("test_set")?,
        s("direction")?,
        s("baseline")?,
        s("system")?,
        s("metric")?,
        s("test")?,
    );
    let (bs, sc, p) = (f("baseline_score")?, f("score")?, f("p_value")?);
    let sig: Vec<bool> = df
        .column("significant")?
        .bool()?
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect();
    let samples: Vec<u64> = df
        .column("samples")?
        .cast(&DataType::UInt64)?
        .u64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    // sacrebleu's signature names the seed: `nrefs:1|bs:1000|seed:12345|…`.
    let seeds: Vec<Option<u64>> = s("signature")?
        .iter()
        .map(|sig| {
            sig.split('|')
                .find_map(|f| f.strip_prefix("seed:"))
                .and_then(|v| v.parse().ok())
        })
        .collect();
    Ok((0..df.height())
        .map(|i| Comparison {
            test_set: ts[i].clone(),
            direction: dir[i].clone(),
            baseline: base[i].clone(),
            system: sys[i].clone(),
            metric: metric[i].clone(),
            test: test[i].clone(),
            baseline_score: bs[i],
            score: sc[i],
            p_value: p[i],
            significant: sig[i],
            samples: samples[i],
            seed: seeds[i],
        })
        .collect())
}

/// The column of each of `alinea_metrics::report::METRICS` in a scores table.
const METRIC_COLUMNS: [&str; 4] = ["bleu", "chrf", "chrfpp", "comet"];

/// The column of each of `alinea_metrics::report::FAILURES` in a scores table.
const FAILURE_COLUMNS: [&str; 7] = [
    "empty_rate",
    "off_target_rate",
    "source_copy_rate",
    "oscillation_rate",
    "over_translation_rate",
    "under_translation_rate",
    "length_ratio",
];

fn f64_col(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<f64>>>, StageError> {
    if !df.get_column_names().iter().any(|c| c.as_str() == name) {
        return Ok(None);
    }
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(Some(c.f64()?.iter().collect()))
}

fn str_col(df: &DataFrame, run: &str, name: &str) -> Result<Vec<String>, StageError> {
    let c = df.column(name).map_err(|_| StageError::Input {
        slot: "scores".into(),
        message: format!("table of `{run}` has no column `{name}`: not a metrics.score table"),
    })?;
    let c = c.cast(&DataType::String)?;
    Ok(c.str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect())
}

fn read_rows(run: &str, df: &DataFrame) -> Result<Vec<DirectionScores>, StageError> {
    let (ts, dir, lang) = (
        str_col(df, run, "test_set")?,
        str_col(df, run, "direction")?,
        str_col(df, run, "lang")?,
    );
    let values: Vec<Option<Vec<Option<f64>>>> = METRIC_COLUMNS
        .iter()
        .map(|c| f64_col(df, c))
        .collect::<Result<_, _>>()?;
    let failures: Vec<Option<Vec<Option<f64>>>> = FAILURE_COLUMNS
        .iter()
        .map(|c| f64_col(df, c))
        .collect::<Result<_, _>>()?;
    let segments: Option<Vec<Option<u64>>> = if df
        .get_column_names()
        .iter()
        .any(|c| c.as_str() == "segments")
    {
        Some(
            df.column("segments")?
                .cast(&DataType::UInt64)?
                .u64()?
                .iter()
                .collect(),
        )
    } else {
        None
    };
    Ok((0..df.height())
        .map(|i| DirectionScores {
            run: run.to_string(),
            test_set: ts[i].clone(),
            direction: dir[i].clone(),
            lang: lang[i].clone(),
            segments: segments.as_ref().and_then(|s| s[i]),
            values: std::array::from_fn(|m| values[m].as_ref().and_then(|v| v[i])),
            failures: std::array::from_fn(|m| failures[m].as_ref().and_then(|v| v[i])),
        })
        .collect())
}

/// The run name of the trivial baseline row: the source copied as the translation.
const COPY_BASELINE: &str = "baseline: copy source";

/// The copy-the-source baseline of a scores table's directions (its `copy_bleu` and `copy_chrfpp`), as rows of a
/// run named [`COPY_BASELINE`]; none for a table without those columns or sources. Every scores table of one test
/// set has the same baseline, so the caller keeps the first per test set and direction.
fn copy_baseline(rows: &[DirectionScores], df: &DataFrame) -> Result<Vec<DirectionScores>, StageError> {
    let (Some(bleu), Some(chrfpp)) = (f64_col(df, "copy_bleu")?, f64_col(df, "copy_chrfpp")?) else {
        return Ok(Vec::new());
    };
    Ok(rows
        .iter()
        .enumerate()
        .filter(|(i, _)| bleu[*i].is_some() || chrfpp[*i].is_some())
        .map(|(i, r)| DirectionScores {
            run: COPY_BASELINE.to_string(),
            values: [bleu[i], None, chrfpp[i], None],
            failures: [None; 7],
            ..r.clone()
        })
        .collect())
}

impl Stage for Report {
    const KIND: &'static str = "report";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "the paper's score tables as Markdown, CSV and self-contained HTML with charts";
    const DOC: &'static str = "\
Lays out the scores of one or more `metrics.score` stages as the paper's tables: per test set and metric, one table
per direction group (en→xx, xx→en) with languages as columns and the average, the BLOOMZ+3 seen/unseen buckets
(seen = `bloom_seen` in the registry), runs side by side with the best value of every column marked, grouped bar
charts, a per-direction appendix with the failure analysis, and, given the `comparisons` of metrics.compare stages,
a significance section marking which differences to the baseline are significant (p <= 0.05, `*`); the tables mark
those cells with `†` (legend: test, samples, seed, threshold), matching a scores run to the compared run by
`significance_runs` (`{ score_align = \"gen_align\" }`) or by name. The run name of a scores table is the name of the
stage that made it (e.g. `score_mt`, `score_align`, or matrix instances `score[*]`). A `baseline: copy source` row
scores the sources themselves as translations (the scores tables' `copy_bleu` and `copy_chrfpp`): the trivial
baseline a model must beat, as an empty output scores 0.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[SCORES.slot(), COMPARISONS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "summary",
            &[
                col("source", DType::Str),
                col("run", DType::Str),
                col("test_set", DType::Str),
                col("metric", DType::Str),
                col("group", DType::Str),
                col("directions", DType::U64),
                col("mean", DType::F64),
            ],
            "means per run, metric and group (overall, en→xx, xx→en, xx→yy, buckets); source = alinea, paper, paper-same-directions or distance",
        ),
        OutputSlot::blobs(
            "report.",
            "the report files: report.md, report.csv (long form), report.html (`alinea report STAGE -o DIR` writes them)",
        ),
    ];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.decimals > 6 {
            return Err(ParamError::new(
                "decimals",
                format!("must be at most 6, got {}", p.decimals),
            ));
        }
        if p.metrics.is_empty() {
            return Err(ParamError::new(
                "metrics",
                "name at least one of BLEU, chrF, chrF++, COMET",
            ));
        }
        for m in &p.metrics {
            if !alinea_metrics::report::METRICS.contains(&m.as_str()) {
                return Err(ParamError::new(
                    "metrics",
                    format!("unknown `{m}` (allowed: BLEU, chrF, chrF++, COMET)"),
                ));
            }
        }
        if !paper::MODELS.contains(&p.paper_model.as_str()) {
            return Err(ParamError::new(
                "paper_model",
                format!(
                    "unknown `{}` (allowed: {})",
                    p.paper_model,
                    paper::MODELS.join(", ")
                ),
            ));
        }
        match p.paper_reference.setting() {
            None if !p.paper_match.is_empty() => Err(ParamError::new(
                "paper_match",
                "needs paper_reference (which of the paper's settings to compare with)",
            )),
            None => Ok(()),
            Some(setting) => {
                let allowed = paper::objectives(setting, paper::MODELS[0]);
                for (run, objective) in &p.paper_match {
                    if !allowed.contains(&objective.as_str()) {
                        return Err(ParamError::new(
                            format!("paper_match.{run}"),
                            format!(
                                "`{objective}` has no per-direction table in {setting} (allowed: {})",
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let tables = ctx.tables(SCORES)?;
        let mut dirs = Vec::new();
        let mut stats = Stats::default();
        let mut baselines: BTreeMap<(String, String), DirectionScores> = BTreeMap::new();
        for (run, df) in &tables {
            stats.rows_in += df.height() as u64;
            let rows = read_rows(run, df)?;
            for b in copy_baseline(&rows, df)? {
                baselines
                    .entry((b.test_set.clone(), b.direction.clone()))
                    .or_insert(b);
            }
            dirs.extend(rows);
        }
        dirs.extend(baselines.into_values());
        let registry = Registry::with_extra(&p.extra_languages);
        let seen: BTreeSet<String> = registry
            .all()
            .iter()
            .filter(|l| l.bloom_seen)
            .flat_map(|l| [l.code.clone(), l.flores.clone()])
            .collect();
        let flores: BTreeMap<String, String> = registry
            .all()
            .iter()
            .map(|l| (l.code.clone(), l.flores.clone()))
            .collect();
        let mut comparisons = Vec::new();
        for (run, df) in ctx.tables(COMPARISONS)?.unwrap_or_default() {
            comparisons.extend(read_comparisons(&run, &df)?);
        }
        let spec = ReportSpec {
            marks: Marks::new(&comparisons, &p.significance_runs),
            title: p.title.clone(),
            decimals: p.decimals,
            metrics: p.metrics.clone(),
            paper_setting: p.paper_reference.setting().map(str::to_string),
            paper_model: p.paper_model.clone(),
            paper_match: p.paper_match.clone(),
            seen,
            flores,
        };

        for run in p.paper_match.keys() {
            if !tables.iter().any(|(name, _)| name == run) {
                let names: Vec<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
                return Err(StageError::Param {
                    field: format!("paper_match.{run}"),
                    message: format!(
                        "no scores input is named `{run}` (inputs: {})",
                        names.join(", ")
                    ),
                });
            }
        }

        let mut report = build_report(&dirs, &spec);
        if !comparisons.is_empty() {
            report
                .markdown
                .push_str(&significance_markdown(&comparisons, p.decimals));
            report.html = insert_into_html(
                &report.html,
                &significance_html(&comparisons, p.decimals),
            );
            stats.count("comparisons", comparisons.len() as u64);
        }
        let summary = &report.summary;
        let df = DataFrame::new_infer_height(vec![
            Column::new(
                "source".into(),
                summary.iter().map(|s| s.source.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "run".into(),
                summary.iter().map(|s| s.run.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "test_set".into(),
                summary
                    .iter()
                    .map(|s| s.test_set.clone())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "metric".into(),
                summary.iter().map(|s| s.metric.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "group".into(),
                summary.iter().map(|s| s.group.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "directions".into(),
                summary.iter().map(|s| s.directions).collect::<Vec<_>>(),
            ),
            Column::new(
                "mean".into(),
                summary.iter().map(|s| s.mean).collect::<Vec<_>>(),
            ),
        ])?;
        stats.rows_out = df.height() as u64;
        stats.count("runs", tables.len() as u64);
        stats.count("directions", dirs.len() as u64);
        let mut out = Outputs::table("summary", df, stats);
        out.blob_bytes("report.md", report.markdown.into_bytes());
        out.blob_bytes("report.csv", report.csv.into_bytes());
        out.blob_bytes("report.html", report.html.into_bytes());
        Ok(out)
    }
}
