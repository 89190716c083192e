//! Full-parameter causal-LM training of a (tiny) model before LoRA: every weight learns, the loss covers each
//! example's tokens from `n_input` on. The demo's random model learns the sample's languages and the prompt format
//! this way, so that its adapters have something to adapt.

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{BloomError, Result};
use crate::model::{Bloom, Pass};
use crate::rng::SplitMix64;
use rayon::prelude::*;

use crate::train::{AdamW, Example, LossRow, MicroBatch, TrainConfig, lr_factor, micro_batch};

/// Hyper-parameters of [`pretrain`]. The serde form is flat (`pretrain_epochs`, ...), as `model.tiny` embeds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PretrainConfig {
    /// Passes over the examples (0: no pretraining, the random model is kept).
    #[serde(rename = "pretrain_epochs")]
    pub epochs: usize,
    /// Peak learning rate (AdamW, linear warm-up then linear decay to 0).
    #[serde(rename = "pretrain_learning_rate")]
    pub learning_rate: f64,
    /// Examples per optimiser step.
    #[serde(rename = "pretrain_batch_size")]
    pub batch_size: usize,
    /// Longest example kept (tokens, cut on the right).
    #[serde(rename = "pretrain_max_len")]
    pub max_len: usize,
    /// Fraction of the steps spent warming up.
    #[serde(rename = "pretrain_warmup_ratio")]
    pub warmup_ratio: f64,
    /// Global gradient-norm clip (0 disables).
    #[serde(rename = "pretrain_max_grad_norm")]
    pub max_grad_norm: f64,
    /// Seed of the example order.
    #[serde(rename = "pretrain_seed")]
    pub seed: u64,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            epochs: 0,
            learning_rate: 3e-3,
            batch_size: 16,
            max_len: 96,
            warmup_ratio: 0.05,
            max_grad_norm: 1.0,
            seed: 0,
        }
    }
}

impl PretrainConfig {
    /// Checks ranges, naming the offending parameter.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, msg: &str| {
            Err(BloomError::Param {
                name: name.into(),
                msg: msg.into(),
            })
        };
        if self.batch_size == 0 {
            return bad("pretrain_batch_size", "must be positive");
        }
        if self.max_len < 2 {
            return bad("pretrain_max_len", "must be at least 2");
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return bad("pretrain_warmup_ratio", "must be in [0, 1]");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("pretrain_learning_rate", "must be a positive number");
        }
        Ok(())
    }

    /// Optimiser steps of a run on `n` examples.
    pub fn total_steps(&self, n: usize) -> usize {
        self.epochs * n.div_ceil(self.batch_size.max(1))
    }
}

/// Trains every weight of `model` on `examples` (loss on tokens after each example's `n_input`, at least the
/// second token on) and returns the trained model and its loss curve. `on_step` sees each row and the step count;
/// `ControlFlow::Break` stops early (the model so far is returned). Deterministic: the result depends on the inputs
/// only, not on the thread count.
pub fn pretrain(
    model: &Bloom,
    examples: &[Example],
    cfg: &PretrainConfig,
    on_step: &mut dyn FnMut(&LossRow, usize) -> ControlFlow<()>,
) -> Result<(Bloom, Vec<LossRow>)> {
    cfg.validate()?;
    let vocab = model.config().vocab_size;
    let examples: Vec<Example> = examples
        .iter()
        .map(|e| {
            let mut ids = e.ids.clone();
            ids.truncate(cfg.max_len);
            let n_input = e.n_input.clamp(1, ids.len().max(1));
            Example { ids, n_input }
        })
        .filter(|e| e.ids.len() > e.n_input)
        .collect();
    if let Some((i, &x)) = examples
        .iter()
        .enumerate()
        .find_map(|(i, e)| e.ids.iter().find(|&&x| x as usize >= vocab).map(|x| (i, x)))
    {
        return Err(BloomError::Data {
            phase: 0,
            index: i,
            msg: format!("token id {x} >= vocab_size"),
        });
    }
    let (trained, named) = model.trainable()?;
    let vars: Vec<Var> = named.into_iter().map(|(_, v)| v).collect();
    let mut rows = Vec::new();
    let total = cfg.total_steps(examples.len());
    if total == 0 {
        return Ok((trained, rows));
    }
    // AdamW reads its betas, epsilon and weight decay from a LoRA config: the defaults, no decay.
    let adam_cfg = TrainConfig {
        weight_decay: 0.0,
        ..TrainConfig::default()
    };
    let mut opt = AdamW::new(&vars)?;
    let pad = trained.config().pad_token_id;
    let per_epoch = examples.len().div_ceil(cfg.batch_size);
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        SplitMix64::from_key(&[cfg.seed, 0x0050_4E54, epoch as u64]).shuffle(&mut order);
        for (k, idx) in order.chunks(cfg.batch_size).enumerate() {
            let t0 = Instant::now();
            let (loss_value, real_tokens, mut grads) = batch_gradients(
                &trained,
                &vars,
                &examples,
                idx,
                pad,
                [cfg.seed, step as u64],
            )?;
            clip(&mut grads, cfg.max_grad_norm)?;
            let lr = cfg.learning_rate * lr_factor(step, total, cfg.warmup_ratio);
            opt.step(&vars, &grads, lr, &adam_cfg)?;
            step += 1;
            let row = LossRow {
                step,
                epoch: epoch as f64 + (k + 1) as f64 / per_epoch as f64,
                phase: 0,
                loss: loss_value,
                lr,
                tokens_per_sec: real_tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9),
                val_loss: None,
            };
            rows.push(row.clone());
            if on_step(&row, total).is_break() {
                return Ok((trained, rows));
            }
        }
    }
    Ok((trained, rows))
}

/// A batch is cut into this many shards whose gradients are computed side by side (rayon) and summed in shard
/// order: a tiny model's step is too small for candle to spread over the cores by itself. The count is fixed,
/// not the thread count, so the sums and the trained bytes are the same with any number of threads.
const SHARDS: usize = 2;

/// Mean loss, real tokens and the gradient of every var over the batch `idx`, computed shard by shard: each
/// shard's mean loss is weighted by its share of the batch's target tokens, so the sum is the batch's mean.
fn batch_gradients(
    model: &Bloom,
    vars: &[Var],
    examples: &[Example],
    idx: &[usize],
    pad: u32,
    noise: [u64; 2],
) -> Result<(f64, usize, Vec<Tensor>)> {
    let shards: Vec<MicroBatch> = idx
        .chunks(idx.len().div_ceil(SHARDS).max(1))
        .map(|part| micro_batch(examples, part, pad))
        .collect();
    let targets: usize = shards.iter().map(|mb| mb.targets.len()).sum();
    let per_shard: Vec<Result<(f64, Vec<Tensor>)>> = shards
        .par_iter()
        .enumerate()
        .map(|(s, mb)| {
            let (ids, mask) = model.batch_tensors(&mb.ids, &mb.mask)?;
            let pass = Pass::Train {
                noise_key: [noise[0], noise[1], s as u64],
            };
            let h = model.hidden(&ids, &mask, None, None, pass)?;
            let share = mb.targets.len() as f64 / targets as f64;
            let loss = (model.loss_at(&h, &mb.pos, &mb.targets)? * share)?;
            let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let g = loss.backward()?;
            let grads = vars
                .iter()
                .map(|v| g.get(v).cloned().map_or_else(|| v.zeros_like(), Ok))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok((value, grads))
        })
        .collect();
    let mut loss = 0f64;
    let mut sum: Option<Vec<Tensor>> = None;
    for shard in per_shard {
        let (value, grads) = shard?;
        loss += value;
        sum = Some(match sum {
            None => grads,
            Some(acc) => acc
                .iter()
                .zip(&grads)
                .map(|(a, b)| a + b)
                .collect::<candle_core::Result<_>>()?,
        });
    }
    let real_tokens = shards.iter().map(|mb| mb.real_tokens).sum();
    Ok((loss, real_tokens, sum.unwrap_or_default()))
}

/// Scales `grads` down to a global norm of `max_norm` (0 disables), as `torch.nn.utils.clip_grad_norm_`.
fn clip(grads: &mut [Tensor], max_norm: f64) -> Result<()> {
    if max_norm <= 0.0 {
        return Ok(());
    }
    let mut sq = 0f64;
    for g in grads.iter() {
        sq += g
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
    }
    let coef = max_norm / (sq.sqrt() + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(())
}
