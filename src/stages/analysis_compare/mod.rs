//! `analysis.compare`: per-layer differences between two representation analyses, as a table and an SVG chart.
// fingerprint-include: crates/metrics/src/chart.rs
// fingerprint-include: crates/metrics/src/html.rs

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use alinea_engine::{
    DType, InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError, Stats, TableSlot,
};

/// Parameters of `analysis.compare`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Chart title.
    pub title: String,
}

const BASE: TableSlot = TableSlot::new("base", "analysis.representations of the reference model")
    .requires(&[
        alinea_engine::col("lang", DType::Str),
        alinea_engine::col("layer", DType::U32),
        alinea_engine::col("cosine", DType::F64),
    ]);
const OTHER: TableSlot = TableSlot::new("other", "analysis.representations of the compared model")
    .requires(&[
        alinea_engine::col("lang", DType::Str),
        alinea_engine::col("layer", DType::U32),
        alinea_engine::col("cosine", DType::F64),
    ]);

/// The stage kind.
pub struct AnalysisCompare;

impl Stage for AnalysisCompare {
    const KIND: &'static str = "analysis.compare";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "per-layer cosine differences between two representation analyses (Δ1, Δ2 of Sec. 4.5)";
    const DOC: &'static str = "\
Joins two `analysis.representations` tables on (lang, layer) and reports `delta = other - base`, the paper's Δ1
(base model -> MTInstruct) or Δ2 (MTInstruct -> MT+Align).";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[BASE.slot(), OTHER.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "deltas",
            &[
                alinea_engine::col("lang", DType::Str),
                alinea_engine::col("layer", DType::U32),
                alinea_engine::col("base", DType::F64),
                alinea_engine::col("other", DType::F64),
                alinea_engine::col("delta", DType::F64),
            ],
            "per (lang, layer): the two cosines and delta = other - base",
        ),
        OutputSlot::blob(
            "deltas.svg",
            "the mean delta per layer over languages, as a bar chart",
        ),
    ];

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let base = ctx.table(BASE)?.lazy().select([
            col("lang"),
            col("layer"),
            col("cosine").alias("base"),
        ]);
        let other = ctx.table(OTHER)?.lazy().select([
            col("lang"),
            col("layer"),
            col("cosine").alias("other"),
        ]);
        let joined = base
            .join(
                other,
                [col("lang"), col("layer")],
                [col("lang"), col("layer")],
                JoinArgs::new(JoinType::Inner),
            )
            .with_column((col("other") - col("base")).alias("delta"))
            .sort(["lang", "layer"], SortMultipleOptions::default())
            .collect()?;
        let per_layer = joined
            .clone()
            .lazy()
            .group_by([col("layer")])
            .agg([col("delta").mean()])
            .sort(["layer"], SortMultipleOptions::default())
            .collect()?;
        let layers: Vec<u32> = per_layer
            .column("layer")?
            .u32()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        let deltas: Vec<f64> = per_layer
            .column("delta")?
            .f64()?
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect();
        let title = if p.title.is_empty() {
            "Δ cosine similarity per layer (other − base)".to_string()
        } else {
            p.title.clone()
        };
        let stats = Stats {
            rows_out: joined.height() as u64,
            ..Stats::default()
        };
        let mut out = Outputs::table("deltas", joined, stats);
        out.blob_bytes(
            "deltas.svg",
            alinea_metrics::chart::signed_bars(&layers, &deltas, &title).into_bytes(),
        );
        Ok(out)
    }
}
