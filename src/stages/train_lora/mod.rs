//! `train.lora`: LoRA fine-tuning of a BLOOM model on an instruction table, phase after phase, resumable.

use std::ops::ControlFlow;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::model::{MODEL, bloom_err, load_model_as};
use alinea_engine::{
    DType, InputSlot, OutputSlot, Outputs, Stage, StageCtx, StageError, Stats, TableSlot, col,
};

/// Parameters of `train.lora` (defaults: RECIPE.md §5 where the paper states a value).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// LoRA rank.
    pub lora_rank: usize,
    /// LoRA alpha (the update is scaled by alpha / rank).
    pub lora_alpha: f64,
    /// LoRA dropout.
    pub lora_dropout: f64,
    /// Targeted linear layers (PEFT names).
    pub lora_targets: Vec<alinea_bloom::LoraTarget>,
    /// Epochs per phase.
    pub epochs: usize,
    /// Peak learning rate (the paper tunes it per run; not given).
    pub learning_rate: f64,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Warm-up fraction of each phase's steps (then linear decay).
    pub warmup_ratio: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Longest input in tokens.
    pub max_input_len: usize,
    /// Longest output in tokens.
    pub max_output_len: usize,
    /// Seed of LoRA init, shuffles and dropout.
    pub seed: u64,
    /// Batch examples of similar length together.
    pub group_by_length: bool,
    /// Checkpoint every N optimiser steps (0 = at the end and on interruption only).
    pub checkpoint_every: usize,
    /// `cpu`, `cuda` or `cuda:N` (CUDA needs a build with `--features cuda`; never falls back to the CPU).
    pub device: String,
    /// Weight dtype: `auto` (f32 on CPU, bf16 on Ampere and newer GPUs), `f32`, `bf16` or `f16`.
    pub dtype: String,
    /// Name written as `base_model_name_or_path` in adapter_config.json.
    pub base_model: String,
    /// Also output the base weights with the adapter merged in (`merged.safetensors`).
    pub merge: bool,
}

impl Default for Params {
    fn default() -> Self {
        let t = alinea_bloom::TrainConfig::default();
        Params {
            lora_rank: t.lora.rank,
            lora_alpha: t.lora.alpha,
            lora_dropout: t.lora.dropout,
            lora_targets: t.lora.targets,
            epochs: t.epochs,
            learning_rate: t.learning_rate,
            batch_size: t.batch_size,
            grad_accum: t.grad_accum,
            warmup_ratio: t.warmup_ratio,
            weight_decay: t.weight_decay,
            max_grad_norm: t.max_grad_norm,
            max_input_len: t.max_input_len,
            max_output_len: t.max_output_len,
            seed: t.seed,
            group_by_length: t.group_by_length,
            checkpoint_every: t.checkpoint_every,
            device: "cpu".into(),
            dtype: "auto".into(),
            base_model: "base".into(),
            merge: false,
        }
    }
}

impl Params {
    fn config(&self) -> alinea_bloom::TrainConfig {
        alinea_bloom::TrainConfig {
            lora: alinea_bloom::LoraConfig {
                rank: self.lora_rank,
                alpha: self.lora_alpha,
                dropout: self.lora_dropout,
                targets: self.lora_targets.clone(),
            },
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            batch_size: self.batch_size,
            grad_accum: self.grad_accum,
            warmup_ratio: self.warmup_ratio,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            max_input_len: self.max_input_len,
            max_output_len: self.max_output_len,
            seed: self.seed,
            group_by_length: self.group_by_length,
            checkpoint_every: self.checkpoint_every,
            ..alinea_bloom::TrainConfig::default()
        }
    }
}

const TRAIN: TableSlot = TableSlot::new(
    "train",
    "an instruction table (instruct.curriculum, instruct.mt, ...); phases train in order",
)
.requires(crate::support::tables::instruct::INSTRUCTION_COLUMNS);

/// The stage kind.
pub struct TrainLora;

fn loss_frame(rows: &[alinea_bloom::LossRow]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(
            "step".into(),
            rows.iter().map(|r| r.step as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "epoch".into(),
            rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        ),
        Column::new(
            "phase".into(),
            rows.iter().map(|r| r.phase as u32 + 1).collect::<Vec<_>>(),
        ),
        Column::new(
            "loss".into(),
            rows.iter().map(|r| r.loss).collect::<Vec<_>>(),
        ),
        Column::new(
            "learning_rate".into(),
            rows.iter().map(|r| r.lr).collect::<Vec<_>>(),
        ),
    ])
}

impl Stage for TrainLora {
    const KIND: &'static str = "train.lora";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Gpu;
    const SUMMARY: &'static str =
        "LoRA fine-tuning of a BLOOM model on an instruction table (phases in order, resumable)";
    const DOC: &'static str = "\
Trains a LoRA adapter (PEFT format) on an instruction table: loss on output tokens only, AdamW, linear warm-up then
linear decay per phase, length-grouped batches. A curriculum's phases (`phase` column) train one after the other.
Checkpoints go to the stage's scratch space in the store: an interrupted run resumes from the last checkpoint.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[MODEL.slot(), TRAIN.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "loss",
            &[
                col("step", DType::U64),
                col("epoch", DType::F64),
                col("phase", DType::U32),
                col("loss", DType::F64),
                col("learning_rate", DType::F64),
            ],
            "the training loss per optimiser step",
        ),
        OutputSlot::blob(
            "adapter_config.json",
            "PEFT adapter config (PeftModel.from_pretrained loads it with the weights)",
        ),
        OutputSlot::blob("adapter_model.safetensors", "PEFT adapter weights"),
        OutputSlot::blob(
            "merged.safetensors",
            "the base weights with the adapter merged in (only with merge = true)",
        ),
    ];

    fn outputs(p: &Params) -> Vec<OutputSlot> {
        Self::OUTPUTS
            .iter()
            .filter(|o| p.merge || o.name != "merged.safetensors")
            .cloned()
            .collect()
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let rows = crate::support::tables::instruct::from_frame(&ctx.table(TRAIN)?)?;
        let (model, tokenizer, _device) = load_model_as(ctx, &p.device, &p.dtype)?;
        let cfg = p.config();
        let eos = Some(model.config().eos_token_id);
        let mut phases: std::collections::BTreeMap<u32, Vec<alinea_bloom::Example>> =
            Default::default();
        for r in &rows {
            let prompt = r.prompt();
            let ex = alinea_bloom::Example::encode(
                &tokenizer,
                &prompt,
                &r.output,
                cfg.max_input_len,
                cfg.max_output_len,
                eos,
            )
            .map_err(bloom_err)?;
            phases.entry(r.phase).or_default().push(ex);
        }
        let phases: Vec<Vec<alinea_bloom::Example>> = phases.into_values().collect();
        let checkpoints = ctx.work_dir()?.join("checkpoints");
        let bar = ctx.progress(0, "steps");
        let outcome = alinea_bloom::train(
            &model,
            &phases,
            &cfg,
            Some(&checkpoints),
            &mut |row, total| {
                bar.set_length(total as u64);
                bar.set_position(row.step as u64);
                bar.set_message(format!(
                    "loss {:.4}  {:.0} tok/s",
                    row.loss, row.tokens_per_sec
                ));
                ControlFlow::Continue(())
            },
        )
        .map_err(bloom_err)?;
        bar.finish_and_clear();
        let dir = ctx.work_dir()?.join("adapter");
        outcome
            .adapter
            .save(&dir, &p.base_model)
            .map_err(bloom_err)?;
        let mut outputs = Outputs::table(
            "loss",
            loss_frame(&outcome.rows)?,
            Stats {
                rows_in: rows.len() as u64,
                rows_out: outcome.rows.len() as u64,
                ..Stats::default()
            },
        );
        // Handed to the store by path: it moves the files out of the scratch space without reading them whole.
        for name in ["adapter_config.json", "adapter_model.safetensors"] {
            outputs.blob_file(name, dir.join(name));
        }
        if p.merge {
            let merged_dir = ctx.work_dir()?.join("merged");
            model
                .merged(&outcome.adapter)
                .map_err(bloom_err)?
                .save(&merged_dir)
                .map_err(bloom_err)?;
            outputs.blob_file("merged.safetensors", merged_dir.join("model.safetensors"));
        }
        if let Some(step) = outcome.resumed_from {
            outputs.stats.count("resumed_from_step", step as u64);
        }
        outputs
            .stats
            .count("optimizer_steps", outcome.total_steps as u64);
        let timed: Vec<f64> = outcome
            .rows
            .iter()
            .map(|r| r.tokens_per_sec)
            .filter(|t| t.is_finite() && *t > 0.0)
            .collect();
        if !timed.is_empty() {
            outputs.stats.count(
                "mean_tokens_per_sec",
                (timed.iter().sum::<f64>() / timed.len() as f64).round() as u64,
            );
        }
        Ok(outputs)
    }
}
