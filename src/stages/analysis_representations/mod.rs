//! `analysis.representations`: per-layer cosine similarity of mean-pooled hidden states of parallel sentences
//! (AlignInstruct Sec. 4.5), for a model with or without an adapter.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::model::{ADAPTER, MODEL, bloom_err, load_model};
use alinea_engine::{
    DType, InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError, Stats, TableSlot, col,
};

/// Parameters of `analysis.representations`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Pairs used per language (the first ones of the table).
    pub max_pairs: usize,
    /// Sentences per forward pass.
    pub batch_size: usize,
    /// Longest sentence kept, in tokens.
    pub max_len: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_pairs: 200,
            batch_size: 8,
            max_len: 128,
            device: "cpu".into(),
        }
    }
}

const PAIRS: TableSlot = TableSlot::new("pairs", "a pairs table of parallel sentences");

/// The stage kind.
pub struct AnalysisRepresentations;

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Mean-pooled states `[layer][sentence][hidden]` of `texts`, batch by batch, left-padded.
fn pooled(
    model: &alinea_bloom::Bloom,
    adapter: Option<&alinea_bloom::LoraAdapter>,
    tok: &tokenizers::Tokenizer,
    texts: &[String],
    p: &Params,
) -> Result<Vec<Vec<Vec<f32>>>, StageError> {
    let pad = model.config().pad_token_id;
    let mut out: Vec<Vec<Vec<f32>>> = Vec::new();
    for chunk in texts.chunks(p.batch_size.max(1)) {
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(chunk.len());
        for t in chunk {
            let enc = tok
                .encode(t.as_str(), false)
                .map_err(StageError::with("tokenizer"))?;
            let mut v = enc.get_ids().to_vec();
            v.truncate(p.max_len.max(1));
            if v.is_empty() {
                v.push(pad);
            }
            ids.push(v);
        }
        let width = ids.iter().map(Vec::len).max().unwrap_or(1);
        let mask: Vec<Vec<u8>> = ids
            .iter()
            .map(|v| (0..width).map(|k| u8::from(k >= width - v.len())).collect())
            .collect();
        let padded: Vec<Vec<u32>> = ids
            .iter()
            .map(|v| {
                std::iter::repeat_n(pad, width - v.len())
                    .chain(v.iter().copied())
                    .collect()
            })
            .collect();
        let states = model
            .mean_pooled_states(&padded, &mask, adapter)
            .map_err(bloom_err)?;
        if out.is_empty() {
            out = vec![Vec::new(); states.len()];
        }
        for (layer, rows) in states.into_iter().enumerate() {
            out[layer].extend(rows);
        }
    }
    Ok(out)
}

impl Stage for AnalysisRepresentations {
    const KIND: &'static str = "analysis.representations";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Gpu;
    const SUMMARY: &'static str =
        "per-layer cosine similarity of mean-pooled states of parallel sentences (Sec. 4.5)";
    const DOC: &'static str = "\
Representation analysis of the AlignInstruct paper (Sec. 4.5): for each language, the two sides of up to
`max_pairs` parallel sentences are encoded, every layer's hidden states (embeddings + each block, as transformers'
`hidden_states`) are mean-pooled over tokens, and the cosine similarity of the two sides is averaged per layer.
Compare two runs (base vs MTInstruct, MTInstruct vs MT+Align) with `analysis.compare`.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[MODEL.slot(), ADAPTER.slot(), PAIRS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[OutputSlot::table(
        "layers",
        &[
            col("lang", DType::Str),
            col("layer", DType::U32),
            col("pairs", DType::U32),
            col("cosine", DType::F64),
        ],
        "per language and layer (0 = embeddings): pairs used and the mean cosine similarity of the two sides",
    )];

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(PAIRS)?;
        let (lang, src, tgt) = (
            df.column("lang")?.str()?.clone(),
            df.column("src")?.str()?.clone(),
            df.column("tgt")?.str()?.clone(),
        );
        let mut by_lang: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for i in 0..df.height() {
            let entry = by_lang
                .entry(lang.get(i).unwrap_or("").to_string())
                .or_default();
            if entry.0.len() < p.max_pairs {
                entry.0.push(src.get(i).unwrap_or("").to_string());
                entry.1.push(tgt.get(i).unwrap_or("").to_string());
            }
        }
        let (model, tokenizer, device) = load_model(ctx, &p.device)?;
        let adapter = match ctx.folder(ADAPTER)? {
            Some(dir) => Some(
                alinea_bloom::LoraAdapter::load(&dir, model.config(), &device)
                    .map_err(bloom_err)?,
            ),
            None => None,
        };
        let (mut langs, mut layers, mut counts, mut cosines) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (code, (s, t)) in &by_lang {
            let (a, b) = (
                pooled(&model, adapter.as_ref(), &tokenizer, s, p)?,
                pooled(&model, adapter.as_ref(), &tokenizer, t, p)?,
            );
            for (layer, (ra, rb)) in a.iter().zip(&b).enumerate() {
                let mean = ra.iter().zip(rb).map(|(x, y)| cosine(x, y)).sum::<f64>()
                    / ra.len().max(1) as f64;
                langs.push(code.clone());
                layers.push(layer as u32);
                counts.push(ra.len() as u32);
                cosines.push(mean);
            }
        }
        let out = DataFrame::new_infer_height(vec![
            Column::new("lang".into(), langs),
            Column::new("layer".into(), layers),
            Column::new("pairs".into(), counts),
            Column::new("cosine".into(), cosines),
        ])?;
        let stats = Stats {
            rows_in: df.height() as u64,
            rows_out: out.height() as u64,
            ..Stats::default()
        };
        Ok(Outputs::table("layers", out, stats))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cosine_of_parallel_and_orthogonal_vectors() {
        assert!((super::cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert_eq!(super::cosine(&[1.0, 0.0], &[0.0, 3.0]), 0.0);
        assert_eq!(super::cosine(&[0.0, 0.0], &[1.0, 3.0]), 0.0);
    }
}
