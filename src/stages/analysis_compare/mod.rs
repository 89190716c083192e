//! `analysis.compare`: per-layer differences between two representation analyses, as a table and an SVG chart.

use std::fmt::Write as _;

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

fn svg(layers: &[u32], deltas: &[f64], title: &str) -> String {
    let (w, h, pad) = (640.0, 320.0, 40.0);
    let max = deltas.iter().fold(1e-9f64, |m, d| m.max(d.abs()));
    let n = layers.len().max(1) as f64;
    let bar = (w - 2.0 * pad) / n;
    let zero = h / 2.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{pad}\" y=\"16\" font-size=\"13\">{}</text>",
        title.replace('<', "&lt;")
    );
    let _ = writeln!(
        s,
        "<line x1=\"{pad}\" y1=\"{zero}\" x2=\"{}\" y2=\"{zero}\" stroke=\"#444\"/>",
        w - pad
    );
    for (i, (l, d)) in layers.iter().zip(deltas).enumerate() {
        let len = d.abs() / max * (h / 2.0 - pad);
        let (y, color) = if *d >= 0.0 {
            (zero - len, "#2b7bb9")
        } else {
            (zero, "#d9534f")
        };
        let x = pad + i as f64 * bar;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{len:.1}\" fill=\"{color}\"><title>layer {l}: {d:+.4}</title></rect>",
            x + 1.0,
            (bar - 2.0).max(1.0)
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{l}</text>",
            x + bar / 2.0,
            h - 10.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"{}\">+{max:.3}</text><text x=\"4\" y=\"{}\">-{max:.3}</text>",
        pad,
        h - pad
    );
    s.push_str("</svg>\n");
    s
}

impl Stage for AnalysisCompare {
    const KIND: &'static str = "analysis.compare";
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
        out.blobs.push((
            "deltas.svg".into(),
            svg(&layers, &deltas, &title).into_bytes(),
        ));
        Ok(out)
    }
}
