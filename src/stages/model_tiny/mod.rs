//! `model.tiny`: a tiny BLOOM-architecture model with its own byte-level BPE tokenizer, made offline from the
//! pipeline's own text and optionally pretrained on it (every weight, causal LM), so the demo trains and generates
//! with no model download and its adapters translate something.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::support::model::{LOSS_COLUMNS, bloom_err, loss_frame};
use alinea_engine::{
    DType, InputSlot, Optional, OutputSlot, Outputs, ParamError, Stage, StageCtx, StageError,
    Stats, TableSlot, col,
};

/// Which tokens of a pretraining example carry the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PretrainLoss {
    /// The output (the target-language side of an MT instruction) only, as `train.lora` does.
    Output,
    /// Every token after the first: a plain causal LM on prompt and output.
    All,
}

/// Parameters of `model.tiny`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Upper bound of the tokenizer's vocabulary (bytes and 4 special tokens included).
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Seed of the random weights.
    pub seed: u64,
    /// Standard deviation of the random weights.
    pub init_std: f64,
    /// Full-parameter pretraining on the `pretrain` instruction table (`pretrain_epochs = 0`: none).
    #[serde(flatten)]
    pub pretrain: alinea_bloom::PretrainConfig,
    /// Tokens of each pretraining example that carry the loss: `output` or `all`.
    pub pretrain_loss: PretrainLoss,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            vocab_size: 1000,
            hidden_size: 64,
            n_layer: 2,
            n_head: 4,
            seed: 0,
            init_std: 0.25,
            pretrain: alinea_bloom::PretrainConfig::default(),
            pretrain_loss: PretrainLoss::Output,
        }
    }
}

const TEXTS: TableSlot = TableSlot::new(
    "texts",
    "a pairs table (its src and tgt train the tokenizer)",
)
.requires(&[col("src", DType::Str), col("tgt", DType::Str)]);

const PRETRAIN: TableSlot<Optional> = TableSlot::new(
    "pretrain",
    "an instruction table (e.g. instruct.mt of the same pairs): the random model is pretrained on its prompts and \
     outputs before it is written",
)
.requires(crate::support::tables::instruct::INSTRUCTION_COLUMNS)
.optional();

/// The stage kind.
pub struct ModelTiny;

impl Stage for ModelTiny {
    const KIND: &'static str = "model.tiny";
    // Pretraining takes minutes of CPU: a cluster job, not the coordinator's work.
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Cluster;
    const SUMMARY: &'static str =
        "make a tiny BLOOM model + BPE tokenizer from the pipeline's text, optionally pretrained on it (offline demo)";
    const DOC: &'static str = "\
Makes a complete Hugging Face model folder for a tiny BLOOM-architecture model: a byte-level BPE tokenizer
(BLOOM's kind) trained on the `src` and `tgt` columns of a pairs table, and random weights drawn from `seed`.
With a `pretrain` instruction table and `pretrain_epochs > 0`, every weight is then trained on it as a causal LM
(AdamW, linear warm-up and decay; loss on the outputs or on all tokens, `pretrain_loss`), standing in for the
pretrained BLOOMZ the paper adapts: a random model gives LoRA nothing to adapt and generates empty strings.
Same inputs, same bytes, for any thread count. Real runs point `train.lora`/`generate` at a local BLOOMZ folder.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[TEXTS.slot(), PRETRAIN.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "loss",
            LOSS_COLUMNS,
            "the pretraining loss per optimiser step (no rows without pretraining)",
        ),
        OutputSlot::blob("config.json", "the BLOOM configuration"),
        OutputSlot::blob(
            "model.safetensors",
            "the weights: random, or pretrained on the `pretrain` table",
        ),
        OutputSlot::blob("tokenizer.json", "the byte-level BPE tokenizer"),
    ];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.n_head == 0 || !p.hidden_size.is_multiple_of(p.n_head) {
            return Err(ParamError::new(
                "n_head",
                format!(
                    "hidden_size ({}) must be a positive multiple of n_head ({})",
                    p.hidden_size, p.n_head
                ),
            ));
        }
        p.pretrain
            .validate()
            .map_err(|e| match e {
                alinea_bloom::BloomError::Param { name, msg } => ParamError::new(&name, msg),
                other => ParamError::new("pretrain", other.to_string()),
            })
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(TEXTS)?;
        let mut texts = Vec::with_capacity(df.height() * 2);
        for col in ["src", "tgt"] {
            texts.extend(
                df.column(col)?
                    .str()?
                    .iter()
                    .map(|s| s.unwrap_or("").to_string()),
            );
        }
        let config = alinea_bloom::BloomConfig {
            hidden_size: p.hidden_size,
            n_layer: p.n_layer,
            n_head: p.n_head,
            ..alinea_bloom::tiny_config(p.vocab_size)
        };
        let dir = ctx.work_dir()?.join("model");
        std::fs::create_dir_all(&dir).map_err(StageError::io(&dir))?;
        alinea_bloom::write_tiny_model(&dir, &texts, p.vocab_size, config, p.seed, p.init_std)
            .map_err(StageError::with(""))?;
        let loss_rows = match ctx.table(PRETRAIN)? {
            Some(df) if p.pretrain.epochs > 0 => pretrain(p, ctx, &df, &dir)?,
            _ => Vec::new(),
        };
        let mut outputs = Outputs::table(
            "loss",
            loss_frame(&loss_rows)?,
            Stats {
                rows_in: texts.len() as u64,
                rows_out: loss_rows.len() as u64,
                ..Stats::default()
            },
        );
        for name in ["config.json", "model.safetensors", "tokenizer.json"] {
            outputs.blob_file(name, dir.join(name));
        }
        Ok(outputs)
    }
}

/// Pretrains the random model written in `dir` on the instruction table `df`, writes it back in place and
/// returns its loss curve.
fn pretrain(
    p: &Params,
    ctx: &StageCtx,
    df: &polars::prelude::DataFrame,
    dir: &std::path::Path,
) -> Result<Vec<alinea_bloom::LossRow>, StageError> {
    let instructions = crate::support::tables::instruct::from_frame(df)?;
    let model = alinea_bloom::Bloom::load(dir, &candle_core::Device::Cpu, candle_core::DType::F32)
        .map_err(bloom_err)?;
    let tokenizer = alinea_bloom::load_tokenizer(dir).map_err(bloom_err)?;
    let eos = Some(model.config().eos_token_id);
    let cfg = &p.pretrain;
    let examples = instructions
        .iter()
        .map(|r| {
            let mut e = alinea_bloom::Example::encode(
                &tokenizer,
                &r.prompt(),
                &r.output,
                cfg.max_len,
                cfg.max_len,
                eos,
            )
            .map_err(bloom_err)?;
            if p.pretrain_loss == PretrainLoss::All {
                e.n_input = 1;
            }
            Ok(e)
        })
        .collect::<Result<Vec<_>, StageError>>()?;
    let bar = ctx.progress(cfg.total_steps(examples.len()) as u64, "pretraining steps");
    let (trained, rows) = alinea_bloom::pretrain(&model, &examples, cfg, &mut |row, total| {
        bar.set_length(total as u64);
        bar.set_position(row.step as u64);
        bar.set_message(format!("pretraining loss {:.4}", row.loss));
        ControlFlow::Continue(())
    })
    .map_err(bloom_err)?;
    bar.finish_and_clear();
    trained.save(dir).map_err(bloom_err)?;
    Ok(rows)
}
