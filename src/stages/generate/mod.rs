//! `generate`: batched greedy decoding with a KV cache, for every prompt of a prompts table.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::model::{ADAPTER, MODEL, bloom_err, load_model_as};
use alinea_engine::{
    InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError, Stats, TableSlot,
};

/// Parameters of `generate`: the decoding parameters of `alinea_bloom::GenerateConfig` (same keys, flattened)
/// and the device.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Decoding parameters.
    #[serde(flatten)]
    pub decode: alinea_bloom::GenerateConfig,
    /// `cpu`, `cuda` or `cuda:N` (CUDA needs a build with `--features cuda`; never falls back to the CPU).
    pub device: String,
    /// Weight dtype: `auto` (f32 on CPU, bf16 on Ampere and newer GPUs), `f32`, `bf16` or `f16`.
    pub dtype: String,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            decode: alinea_bloom::GenerateConfig::default(),
            device: "cpu".into(),
            dtype: "auto".into(),
        }
    }
}

const PROMPTS: TableSlot = TableSlot::new(
    "prompts",
    "an instruction table (instruct.prompts); its `instruction` column is the prompt",
)
.requires(INSTRUCTION_COLUMNS);
use crate::support::tables::instruct::{GENERATION_COLUMNS, INSTRUCTION_COLUMNS};

/// The stage kind.
pub struct Generate;

impl Stage for Generate {
    const KIND: &'static str = "generate";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Gpu;
    const SUMMARY: &'static str =
        "greedy batched decoding (KV cache) of a prompts table, with or without an adapter";
    const DOC: &'static str = "\
Decodes every prompt of an instruction table greedily (beam 1, as the paper), stopping at EOS or the first newline
or after max_new_tokens; `no_repeat_ngram_size = n` (0: off) never repeats an n-gram of the continuation, which
stops the loops a small model falls into. Deterministic: the output depends on the inputs and batch size only.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[MODEL.slot(), ADAPTER.slot(), PROMPTS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[OutputSlot::table(
        "generations",
        GENERATION_COLUMNS,
        "the prompts table's columns plus `hypothesis`",
    )];

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(PROMPTS)?;
        let rows = crate::support::tables::instruct::from_frame(&df)?;
        let (model, tokenizer, device) = load_model_as(ctx, &p.device, &p.dtype)?;
        let adapter = match ctx.folder(ADAPTER)? {
            Some(dir) => Some(
                alinea_bloom::LoraAdapter::load(&dir, model.config(), &device)
                    .map_err(bloom_err)?,
            ),
            None => None,
        };
        let prompts: Vec<String> = rows.iter().map(|r| r.prompt()).collect();
        let cfg = &p.decode;
        let bar = ctx.progress(prompts.len() as u64, "prompts");
        let stop = alinea_bloom::stop_token_ids(&model, &tokenizer);
        let mut hyps = Vec::with_capacity(prompts.len());
        // Chunks bound memory and drive the progress bar; decoding is batched inside each chunk.
        for chunk in prompts.chunks(cfg.batch_size.max(1) * 8) {
            hyps.extend(
                alinea_bloom::generate_text_with_stops(
                    &model,
                    adapter.as_ref(),
                    &tokenizer,
                    chunk,
                    &stop,
                    cfg,
                )
                .map_err(bloom_err)?,
            );
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let mut out = df.clone();
        out.with_column(Column::new("hypothesis".into(), hyps))?;
        let stats = Stats {
            rows_in: rows.len() as u64,
            rows_out: out.height() as u64,
            ..Stats::default()
        };
        Ok(Outputs::table("generations", out, stats))
    }
}
