//! `train.lora`: LoRA fine-tuning of a BLOOM model on an instruction table, phase after phase, resumable.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::support::model::{LOSS_COLUMNS, MODEL, bloom_err, load_model_as, loss_frame};
use alinea_engine::{
    InputSlot, Optional, OutputSlot, Outputs, Stage, StageCtx, StageError, Stats, TableSlot,
};

/// Parameters of `train.lora`: the training parameters of `alinea_bloom::TrainConfig` (same keys, flattened:
/// `lora_rank`, `learning_rate`, `beta1`, …; defaults RECIPE.md §5 where the paper states a value), the device,
/// and what to write out. (No `deny_unknown_fields`: serde cannot apply it through the nested flatten; the engine
/// rejects unknown keys instead, see `alinea_engine::stage`.)
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Params {
    /// Training parameters.
    #[serde(flatten)]
    pub train: alinea_bloom::TrainConfig,
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
        Params {
            train: alinea_bloom::TrainConfig::default(),
            device: "cpu".into(),
            dtype: "auto".into(),
            base_model: "base".into(),
            merge: false,
        }
    }
}

const TRAIN: TableSlot = TableSlot::new(
    "train",
    "an instruction table (instruct.curriculum, instruct.mt, ...); phases train in order",
)
.requires(crate::support::tables::instruct::INSTRUCTION_COLUMNS);

const VALIDATION: TableSlot<Optional> = TableSlot::new(
    "validation",
    "an instruction table held out from training: its loss is measured every `eval_every` steps",
)
.requires(crate::support::tables::instruct::INSTRUCTION_COLUMNS)
.optional();

/// The stage kind.
pub struct TrainLora;

impl Stage for TrainLora {
    const KIND: &'static str = "train.lora";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Gpu;
    const SUMMARY: &'static str =
        "LoRA fine-tuning of a BLOOM model on an instruction table (phases in order, resumable)";
    const DOC: &'static str = "\
Trains a LoRA adapter (PEFT format) on an instruction table: loss on output tokens only, AdamW, linear warm-up then
linear decay per phase, length-grouped batches. A curriculum's phases (`phase` column) train one after the other.
Checkpoints go to the stage's scratch space in the store: an interrupted run resumes from the last checkpoint.
With a `validation` table (held out, e.g. a `sample` of the dev split through `instruct.mt`), the loss table's
`val_loss` holds its loss every `eval_every` steps and after the last, and `keep_best` keeps the adapter of the
lowest one, as the paper selected checkpoints on validation loss. `checkpoint_every` is not in the cache key.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[MODEL.slot(), TRAIN.slot(), VALIDATION.slot()];
    const UNKEYED_PARAMS: &'static [&'static str] = &["checkpoint_every"];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "loss",
            LOSS_COLUMNS,
            "the training loss per optimiser step; the validation loss on evaluation steps (else null)",
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
        let cfg = &p.train;
        let eos = Some(model.config().eos_token_id);
        let encode = |r: &alinea_instruct::InstructRow| {
            alinea_bloom::Example::encode(
                &tokenizer,
                &r.prompt(),
                &r.output,
                cfg.max_input_len,
                cfg.max_output_len,
                eos,
            )
            .map_err(bloom_err)
        };
        let validation = match ctx.table(VALIDATION)? {
            Some(df) => crate::support::tables::instruct::from_frame(&df)?
                .iter()
                .map(encode)
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let mut phases: std::collections::BTreeMap<u32, Vec<alinea_bloom::Example>> =
            Default::default();
        for r in &rows {
            phases.entry(r.phase).or_default().push(encode(r)?);
        }
        let phases: Vec<Vec<alinea_bloom::Example>> = phases.into_values().collect();
        let checkpoints = ctx.work_dir()?.join("checkpoints");
        let bar = ctx.progress(0, "steps");
        let outcome = alinea_bloom::train_with_validation(
            &model,
            &phases,
            &validation,
            cfg,
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
        if let Some(step) = outcome.best_step {
            outputs.stats.count("best_step", step as u64);
        }
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
