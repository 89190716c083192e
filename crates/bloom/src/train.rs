//! LoRA fine-tuning: loss on output tokens only, AdamW, linear warm-up then linear decay, gradient
//! accumulation, length-grouped batches, curricula of phases, checkpoints and resume.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{BloomError, Result, io_err, read_json, write_atomic};
use crate::lora::{LoraAdapter, LoraConfig};
use crate::model::{Bloom, Pass};
use crate::rng::SplitMix64;

/// One tokenised training example: `ids` is the input followed by the output; the loss covers the
/// output tokens (those at positions `n_input..`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Input then output token ids.
    pub ids: Vec<u32>,
    /// Number of leading input (prompt) tokens, excluded from the loss.
    pub n_input: usize,
}

impl Example {
    /// Joins input and output ids, truncating the input to its last `max_input` tokens (the end of
    /// the prompt cues the answer) and the output to its first `max_output` tokens, `eos` included
    /// when given.
    pub fn from_ids(
        input: &[u32],
        output: &[u32],
        max_input: usize,
        max_output: usize,
        eos: Option<u32>,
    ) -> Self {
        let inp = &input[input.len().saturating_sub(max_input)..];
        let room = max_output.saturating_sub(eos.is_some() as usize);
        let mut ids = inp.to_vec();
        ids.extend_from_slice(&output[..output.len().min(room)]);
        if let Some(e) = eos
            && max_output > 0
        {
            ids.push(e);
        }
        Example {
            ids,
            n_input: inp.len(),
        }
    }

    /// Tokenises an (input, output) pair with `tokenizer` (no special tokens added) and joins them
    /// as [`Example::from_ids`] does.
    pub fn encode(
        tokenizer: &tokenizers::Tokenizer,
        input: &str,
        output: &str,
        max_input: usize,
        max_output: usize,
        eos: Option<u32>,
    ) -> Result<Self> {
        let enc = |s: &str| -> Result<Vec<u32>> {
            Ok(tokenizer
                .encode(s, false)
                .map_err(|e| BloomError::Tokenizer {
                    path: "<memory>".into(),
                    msg: e.to_string(),
                })?
                .get_ids()
                .to_vec())
        };
        Ok(Self::from_ids(
            &enc(input)?,
            &enc(output)?,
            max_input,
            max_output,
            eos,
        ))
    }

    /// Number of tokens that carry a loss.
    pub fn n_output(&self) -> usize {
        self.ids.len().saturating_sub(self.n_input)
    }
}

/// Training hyper-parameters. Defaults follow RECIPE.md §5 where the paper states a value. The serde form is
/// flat (`lora_rank`, `learning_rate`, …), the keys of `train.lora` in a pipeline file, which flattens this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TrainConfig {
    /// LoRA shape.
    #[serde(flatten)]
    pub lora: LoraConfig,
    /// Epochs per phase.
    pub epochs: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Fraction of a phase's steps spent warming up linearly from 0.
    pub warmup_ratio: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 disables), as the HF Trainer's `max_grad_norm`.
    pub max_grad_norm: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// AdamW epsilon.
    pub eps: f64,
    /// Longest input kept (tokens, truncated from the left).
    pub max_input_len: usize,
    /// Longest output kept (tokens, truncated on the right).
    pub max_output_len: usize,
    /// Seed of LoRA init, shuffles and dropout.
    pub seed: u64,
    /// Group examples of similar length into batches (HF's `group_by_length`).
    pub group_by_length: bool,
    /// Write a checkpoint every N optimiser steps (0: only at the end or on interruption). Cannot change the
    /// result: a resumed run ends with the same adapter as an uninterrupted one.
    pub checkpoint_every: usize,
    /// With a validation set: its loss is measured every N optimiser steps and after the last (0: after the
    /// last only), as the HF Trainer's `eval_steps`.
    pub eval_every: usize,
    /// With a validation set: end with the adapter of the evaluation with the lowest validation loss (the
    /// first on a tie) instead of the last one, as the HF Trainer's `load_best_model_at_end`.
    pub keep_best: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lora: LoraConfig::default(),
            epochs: 5,
            learning_rate: 2e-4,
            batch_size: 8,
            grad_accum: 1,
            warmup_ratio: 0.03,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_input_len: 384,
            max_output_len: 384,
            seed: 42,
            group_by_length: true,
            checkpoint_every: 0,
            eval_every: 0,
            keep_best: false,
        }
    }
}

/// One row of the loss curve, written after each optimiser step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossRow {
    /// Global optimiser step, 1-based.
    pub step: usize,
    /// Fractional epoch inside the phase (1.0 = end of the first epoch).
    pub epoch: f64,
    /// Phase index (0-based) of the curriculum.
    pub phase: usize,
    /// Mean loss per output token of this step.
    pub loss: f64,
    /// Learning rate used by this step.
    pub lr: f64,
    /// Tokens (non-padding, inputs included) processed per second during this step.
    pub tokens_per_sec: f64,
    /// Mean loss per output token on the validation set after this step, on evaluation steps only.
    #[serde(default)]
    pub val_loss: Option<f64>,
}

/// Result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained adapter (its state after the last completed step).
    pub adapter: LoraAdapter,
    /// Loss curve, restored rows of a resumed run included.
    pub rows: Vec<LossRow>,
    /// Whether every planned step ran (false when the callback stopped the run).
    pub finished: bool,
    /// Global step of the checkpoint the run resumed from, if any.
    pub resumed_from: Option<usize>,
    /// Total number of optimiser steps in the plan.
    pub total_steps: usize,
    /// With `keep_best`: the step whose adapter was kept (lowest validation loss).
    pub best_step: Option<usize>,
}

#[derive(Debug, Clone)]
struct PlannedStep {
    phase: usize,
    epoch: f64,
    step_in_phase: usize,
    steps_in_phase: usize,
    micro: Vec<Vec<usize>>,
}

/// Orders one phase's examples for one epoch: seeded shuffle, then (optionally) mega-batches of
/// 50 batches sorted by decreasing length, as transformers' `LengthGroupedSampler` does.
fn epoch_batches(
    examples: &[Example],
    cfg: &TrainConfig,
    phase: usize,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    SplitMix64::from_key(&[cfg.seed, 0x0054_FF1E, phase as u64, epoch as u64]).shuffle(&mut order);
    if cfg.group_by_length {
        for mega in order.chunks_mut(cfg.batch_size * 50) {
            mega.sort_by_key(|&i| std::cmp::Reverse(examples[i].ids.len()));
        }
    }
    order.chunks(cfg.batch_size).map(|c| c.to_vec()).collect()
}

fn plan(phases: &[Vec<Example>], cfg: &TrainConfig) -> Vec<PlannedStep> {
    let mut out = Vec::new();
    for (p, ex) in phases.iter().enumerate() {
        let mut steps = Vec::new();
        for e in 0..cfg.epochs {
            let batches = epoch_batches(ex, cfg, p, e);
            let per_epoch = batches.len().div_ceil(cfg.grad_accum);
            for (k, group) in batches.chunks(cfg.grad_accum).enumerate() {
                steps.push((e as f64 + (k + 1) as f64 / per_epoch as f64, group.to_vec()));
            }
        }
        let n = steps.len();
        out.extend(
            steps
                .into_iter()
                .enumerate()
                .map(|(i, (epoch, micro))| PlannedStep {
                    phase: p,
                    epoch,
                    step_in_phase: i,
                    steps_in_phase: n,
                    micro,
                }),
        );
    }
    out
}

/// HF's `get_linear_schedule_with_warmup`: the factor for the `s`-th (0-based) step of `total`.
pub fn lr_factor(s: usize, total: usize, warmup_ratio: f64) -> f64 {
    let warmup = (warmup_ratio * total as f64).ceil() as usize;
    if s < warmup {
        s as f64 / warmup.max(1) as f64
    } else {
        ((total - s.min(total)) as f64 / (total - warmup).max(1) as f64).max(0.0)
    }
}

/// AdamW as in `torch.optim.AdamW`, with its moment tensors exposed for checkpoints.
pub(crate) struct AdamW {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: u64,
}

impl AdamW {
    pub(crate) fn new(vars: &[Var]) -> Result<Self> {
        let z = |v: &Var| v.zeros_like();
        Ok(AdamW {
            m: vars.iter().map(z).collect::<candle_core::Result<_>>()?,
            v: vars.iter().map(z).collect::<candle_core::Result<_>>()?,
            t: 0,
        })
    }

    pub(crate) fn step(
        &mut self,
        vars: &[Var],
        grads: &[Tensor],
        lr: f64,
        cfg: &TrainConfig,
    ) -> Result<()> {
        self.t += 1;
        let bc1 = 1.0 - cfg.beta1.powi(self.t as i32);
        let bc2 = 1.0 - cfg.beta2.powi(self.t as i32);
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * cfg.beta1)? + (g * (1.0 - cfg.beta1))?)?;
            let v = ((&self.v[i] * cfg.beta2)? + (g.sqr()? * (1.0 - cfg.beta2))?)?;
            let denom = ((v.sqrt()? / bc2.sqrt())? + cfg.eps)?;
            let p = (var.as_tensor() * (1.0 - lr * cfg.weight_decay))?;
            let p = (p - ((&m / &denom)? * (lr / bc1))?)?;
            var.set(&p)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    global_step: usize,
    adam_t: u64,
    fingerprint: String,
    rows: Vec<LossRow>,
}

/// Hash of the configuration and the data, so that a checkpoint is only resumed by the same run.
fn fingerprint(phases: &[Vec<Example>], cfg: &TrainConfig, model: &Bloom) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    };
    // How often checkpoints are written does not change the run, so a resumed run may use another value.
    let cfg = TrainConfig {
        checkpoint_every: 0,
        ..cfg.clone()
    };
    for b in serde_json::to_vec(&cfg)
        .expect("json")
        .into_iter()
        .chain(serde_json::to_vec(model.config()).expect("json"))
    {
        eat(b as u64);
    }
    for ph in phases {
        eat(ph.len() as u64);
        for e in ph {
            eat(e.n_input as u64);
            eat(e.ids.len() as u64);
            e.ids.iter().for_each(|&x| eat(x as u64));
        }
    }
    format!("{h:016x}")
}

fn checkpoint_dirs(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(n) = name
            .strip_prefix("checkpoint-")
            .and_then(|s| s.parse::<usize>().ok())
            && e.path().join("trainer_state.json").is_file()
        {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn save_checkpoint(
    dir: &Path,
    adapter: &LoraAdapter,
    opt: &AdamW,
    state: &CheckpointState,
) -> Result<()> {
    let final_dir = dir.join(format!("checkpoint-{:08}", state.global_step));
    let tmp = dir.join(format!("checkpoint-{:08}.partial", state.global_step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    adapter.save(&tmp, "")?;
    let mut moments = HashMap::new();
    for (i, (m, v)) in opt.m.iter().zip(&opt.v).enumerate() {
        moments.insert(format!("m.{i}"), m.to_device(&candle_core::Device::Cpu)?);
        moments.insert(format!("v.{i}"), v.to_device(&candle_core::Device::Cpu)?);
    }
    let p = tmp.join("optimizer.safetensors");
    candle_core::safetensors::save(&moments, &p).map_err(|e| BloomError::Safetensors {
        path: p.clone(),
        msg: e.to_string(),
    })?;
    write_atomic(
        &tmp.join("trainer_state.json"),
        serde_json::to_string(state).expect("json").as_bytes(),
    )?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io_err(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
    // Older checkpoints are superseded; keeping only the newest bounds the disk use.
    for (n, p) in checkpoint_dirs(dir)? {
        if n < state.global_step {
            std::fs::remove_dir_all(&p).map_err(io_err(&p))?;
        }
    }
    Ok(())
}

fn load_checkpoint(
    path: &Path,
    adapter: &LoraAdapter,
    opt: &mut AdamW,
    fp: &str,
) -> Result<CheckpointState> {
    let state: CheckpointState = read_json(&path.join("trainer_state.json"))?;
    if state.fingerprint != fp {
        return Err(BloomError::Checkpoint {
            path: path.to_path_buf(),
            msg: format!(
                "made by a different run (fingerprint {} != {fp}); use a fresh directory",
                state.fingerprint
            ),
        });
    }
    let w = path.join("adapter_model.safetensors");
    let t = candle_core::safetensors::load(&w, &candle_core::Device::Cpu).map_err(|e| {
        BloomError::Safetensors {
            path: w.clone(),
            msg: e.to_string(),
        }
    })?;
    adapter.assign_from(&t, &w)?;
    let o = path.join("optimizer.safetensors");
    let t = candle_core::safetensors::load(&o, &candle_core::Device::Cpu).map_err(|e| {
        BloomError::Safetensors {
            path: o.clone(),
            msg: e.to_string(),
        }
    })?;
    let dev = adapter.modules()[0].a.device().clone();
    for i in 0..opt.m.len() {
        for (name, slot) in [
            (format!("m.{i}"), &mut opt.m[i]),
            (format!("v.{i}"), &mut opt.v[i]),
        ] {
            let x = t.get(&name).ok_or_else(|| BloomError::MissingTensor {
                path: o.clone(),
                name: name.clone(),
            })?;
            if x.dims() != slot.dims() {
                return Err(BloomError::ShapeMismatch {
                    path: o.clone(),
                    name,
                    got: x.dims().to_vec(),
                    expected: slot.dims().to_vec(),
                });
            }
            *slot = x.to_device(&dev)?;
        }
    }
    opt.t = state.adam_t;
    Ok(state)
}

/// A padded micro-batch: ids right-padded, mask, and the flattened positions whose next token is
/// an output token (with those targets).
pub(crate) struct MicroBatch {
    pub(crate) ids: Vec<Vec<u32>>,
    pub(crate) mask: Vec<Vec<u8>>,
    pub(crate) pos: Vec<u32>,
    pub(crate) targets: Vec<u32>,
    pub(crate) real_tokens: usize,
}

pub(crate) fn micro_batch(examples: &[Example], idx: &[usize], pad: u32) -> MicroBatch {
    let t = idx
        .iter()
        .map(|&i| examples[i].ids.len())
        .max()
        .unwrap_or(0);
    let mut mb = MicroBatch {
        ids: vec![],
        mask: vec![],
        pos: vec![],
        targets: vec![],
        real_tokens: 0,
    };
    for (r, &i) in idx.iter().enumerate() {
        let e = &examples[i];
        let mut row = e.ids.clone();
        let mut m = vec![1u8; row.len()];
        mb.real_tokens += row.len();
        row.resize(t, pad);
        m.resize(t, 0);
        for p in e.n_input.max(1) - 1..e.ids.len() - 1 {
            mb.pos.push((r * t + p) as u32);
            mb.targets.push(e.ids[p + 1]);
        }
        mb.ids.push(row);
        mb.mask.push(m);
    }
    mb
}

/// An example cut to the configured input and output lengths, as [`train`] sees it.
fn truncated(e: &Example, cfg: &TrainConfig) -> Example {
    let (inp, out) = e.ids.split_at(e.n_input.min(e.ids.len()));
    let mut t = Example::from_ids(inp, out, cfg.max_input_len, cfg.max_output_len, None);
    if t.n_input == 0 && t.ids.len() > 1 {
        // Without a prompt token the first output token has no predecessor to learn from.
        t.n_input = 1;
    }
    t
}

/// The micro-batches of every optimiser step [`train`] runs on `phases` with `cfg`, as (phase, micro-batches of
/// example indices into that phase): the order a reference implementation (PEFT) must replay to train on the same
/// batches.
pub fn step_batches(phases: &[Vec<Example>], cfg: &TrainConfig) -> Vec<(usize, Vec<Vec<usize>>)> {
    let phases: Vec<Vec<Example>> = phases
        .iter()
        .map(|ex| ex.iter().map(|e| truncated(e, cfg)).collect())
        .collect();
    plan(&phases, cfg)
        .into_iter()
        .map(|s| (s.phase, s.micro))
        .collect()
}

/// Trains a fresh LoRA adapter on `phases` one after the other (a curriculum; each phase gets its
/// own warm-up/decay schedule and fresh AdamW moments, as consecutive fine-tuning runs would).
///
/// With `checkpoint_dir`, a checkpoint (adapter, AdamW moments, loss rows) is written every
/// `checkpoint_every` steps, at the end, and when `on_step` asks to stop; a later call with the same
/// model, data, config and directory resumes from the newest checkpoint and ends with the same
/// adapter as an uninterrupted run. `on_step` receives each loss row and the planned step count
/// (for a progress bar); returning `ControlFlow::Break(())` interrupts the run.
pub fn train(
    model: &Bloom,
    phases: &[Vec<Example>],
    cfg: &TrainConfig,
    checkpoint_dir: Option<&Path>,
    on_step: &mut dyn FnMut(&LossRow, usize) -> ControlFlow<()>,
) -> Result<TrainOutcome> {
    train_with_validation(model, phases, &[], cfg, checkpoint_dir, on_step)
}

/// Mean loss per output token of `examples` under `adapter`, in batches of `batch_size`, without dropout.
fn validation_loss(
    model: &Bloom,
    adapter: &LoraAdapter,
    examples: &[Example],
    batch_size: usize,
) -> Result<f64> {
    let pad = model.config().pad_token_id;
    let (mut sum, mut n) = (0f64, 0usize);
    let order: Vec<usize> = (0..examples.len()).collect();
    for idx in order.chunks(batch_size) {
        let mb = micro_batch(examples, idx, pad);
        if mb.targets.is_empty() {
            continue;
        }
        let (ids, mask) = model.batch_tensors(&mb.ids, &mb.mask)?;
        let h = model.hidden(&ids, &mask, None, Some(adapter), Pass::Eval)?;
        let loss = model.loss_at(&h, &mb.pos, &mb.targets)?;
        sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()? * mb.targets.len() as f64;
        n += mb.targets.len();
    }
    Ok(if n == 0 { f64::NAN } else { sum / n as f64 })
}

/// The adapter's weights, copied (the adapter's own variables keep changing).
fn snapshot(vars: &[Var]) -> Result<Vec<Tensor>> {
    Ok(vars
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?)
}

/// [`train`] with a validation set: its loss is measured every `eval_every` steps and after the last, recorded
/// in the loss rows' `val_loss`, and with `keep_best` the adapter of the lowest validation loss is returned.
/// The best adapter so far is checkpointed beside the others (`best/`), so a resumed run keeps it too.
pub fn train_with_validation(
    model: &Bloom,
    phases: &[Vec<Example>],
    validation: &[Example],
    cfg: &TrainConfig,
    checkpoint_dir: Option<&Path>,
    on_step: &mut dyn FnMut(&LossRow, usize) -> ControlFlow<()>,
) -> Result<TrainOutcome> {
    let bad = |name: &str, msg: &str| BloomError::Param {
        name: name.into(),
        msg: msg.into(),
    };
    if cfg.batch_size == 0 {
        return Err(bad("batch_size", "must be positive"));
    }
    if cfg.grad_accum == 0 {
        return Err(bad("grad_accum", "must be positive"));
    }
    if !(0.0..=1.0).contains(&cfg.warmup_ratio) {
        return Err(bad("warmup_ratio", "must be in [0, 1]"));
    }
    let phases: Vec<Vec<Example>> = phases
        .iter()
        .enumerate()
        .map(|(p, ex)| {
            ex.iter()
                .enumerate()
                .map(|(i, e)| {
                    if e.n_input > e.ids.len() || e.n_output() == 0 {
                        return Err(BloomError::Data {
                            phase: p,
                            index: i,
                            msg: "no output token to learn".into(),
                        });
                    }
                    if let Some(&x) = e
                        .ids
                        .iter()
                        .find(|&&x| x as usize >= model.config().vocab_size)
                    {
                        return Err(BloomError::Data {
                            phase: p,
                            index: i,
                            msg: format!("token id {x} >= vocab_size"),
                        });
                    }
                    Ok(truncated(e, cfg))
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    let steps = plan(&phases, cfg);
    let total = steps.len();
    let adapter = LoraAdapter::new(model.config(), cfg.lora.clone(), cfg.seed, model.device())?;
    let vars = adapter.vars();
    let mut opt = AdamW::new(&vars)?;
    let fp = fingerprint(&phases, cfg, model);
    let mut rows = Vec::new();
    let mut start = 0;
    let mut resumed_from = None;
    if let Some(dir) = checkpoint_dir {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        if let Some((n, path)) = checkpoint_dirs(dir)?.pop() {
            let st = load_checkpoint(&path, &adapter, &mut opt, &fp)?;
            if st.global_step != n || n > total {
                return Err(BloomError::Checkpoint {
                    path,
                    msg: format!(
                        "step {} does not fit a plan of {total} steps",
                        st.global_step
                    ),
                });
            }
            start = n;
            rows = st.rows;
            resumed_from = Some(n);
        }
    }
    if cfg.keep_best && validation.is_empty() {
        return Err(bad("keep_best", "needs a validation set"));
    }
    let validation: Vec<Example> = validation
        .iter()
        .filter(|e| e.n_output() > 0)
        .map(|e| {
            let (inp, out) = e.ids.split_at(e.n_input);
            let mut t = Example::from_ids(inp, out, cfg.max_input_len, cfg.max_output_len, None);
            t.n_input = t.n_input.max(1).min(t.ids.len().saturating_sub(1));
            t
        })
        .collect();
    let mut best = best_so_far(&rows);
    let mut best_weights = match (&best, checkpoint_dir) {
        (Some(_), Some(dir)) if cfg.keep_best => {
            let kept = LoraAdapter::load(&dir.join("best"), model.config(), model.device())?;
            Some(snapshot(&kept.vars())?)
        }
        _ => None,
    };
    let pad = model.config().pad_token_id;
    let mut finished = true;
    for (gi, st) in steps.iter().enumerate().skip(start) {
        let t0 = Instant::now();
        if st.step_in_phase == 0 {
            opt = AdamW::new(&vars)?;
        }
        let ex = &phases[st.phase];
        let mbs: Vec<MicroBatch> = st
            .micro
            .iter()
            .map(|idx| micro_batch(ex, idx, pad))
            .collect();
        let n_tok: usize = mbs.iter().map(|m| m.targets.len()).sum();
        let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
        let mut loss_sum = 0f64;
        let mut real = 0usize;
        for (mi, mb) in mbs.iter().enumerate() {
            real += mb.real_tokens;
            if mb.targets.is_empty() {
                continue;
            }
            let (ids, mask) = model.batch_tensors(&mb.ids, &mb.mask)?;
            let pass = Pass::Train {
                noise_key: [cfg.seed, gi as u64, mi as u64],
            };
            let h = model.hidden(&ids, &mask, None, Some(&adapter), pass)?;
            // Token-weighted share of the step's mean loss, so accumulation equals one big batch.
            let loss = (model.loss_at(&h, &mb.pos, &mb.targets)?
                * (mb.targets.len() as f64 / n_tok as f64))?;
            loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let g = loss.backward()?;
            for (slot, v) in grads.iter_mut().zip(&vars) {
                let gv = match g.get(v) {
                    Some(x) => x.clone(),
                    None => v.zeros_like()?,
                };
                *slot = Some(match slot.take() {
                    Some(acc) => (acc + gv)?,
                    None => gv,
                });
            }
        }
        let mut grads: Vec<Tensor> = grads
            .into_iter()
            .zip(&vars)
            .map(|(g, v)| g.map_or_else(|| v.zeros_like(), Ok))
            .collect::<candle_core::Result<_>>()?;
        if cfg.max_grad_norm > 0.0 {
            let mut sq = 0f64;
            for g in &grads {
                sq += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?;
            }
            let norm = sq.sqrt();
            let coef = cfg.max_grad_norm / (norm + 1e-6);
            if coef < 1.0 {
                grads = grads
                    .iter()
                    .map(|g| g * coef)
                    .collect::<candle_core::Result<_>>()?;
            }
        }
        let lr =
            cfg.learning_rate * lr_factor(st.step_in_phase, st.steps_in_phase, cfg.warmup_ratio);
        opt.step(&vars, &grads, lr, cfg)?;
        let secs = t0.elapsed().as_secs_f64().max(1e-9);
        let row = LossRow {
            step: gi + 1,
            epoch: st.epoch,
            phase: st.phase,
            loss: loss_sum,
            lr,
            tokens_per_sec: real as f64 / secs,
            val_loss: None,
        };
        let last = gi + 1 == total;
        let evaluate = !validation.is_empty()
            && (last || (cfg.eval_every > 0 && (gi + 1) % cfg.eval_every == 0));
        let mut row = row;
        if evaluate {
            let loss = validation_loss(model, &adapter, &validation, cfg.batch_size)?;
            row.val_loss = Some(loss);
            if best.is_none_or(|(_, b)| loss < b) {
                best = Some((gi + 1, loss));
                if cfg.keep_best {
                    best_weights = Some(snapshot(&vars)?);
                    if let Some(dir) = checkpoint_dir {
                        adapter.save(&dir.join("best"), "best")?;
                    }
                }
            }
        }
        rows.push(row.clone());
        let stop = on_step(&row, total).is_break();
        if let Some(dir) = checkpoint_dir
            && (stop || last || (cfg.checkpoint_every > 0 && (gi + 1) % cfg.checkpoint_every == 0))
        {
            let state = CheckpointState {
                global_step: gi + 1,
                adam_t: opt.t,
                fingerprint: fp.clone(),
                rows: rows.clone(),
            };
            save_checkpoint(dir, &adapter, &opt, &state)?;
        }
        if stop && !last {
            finished = false;
            break;
        }
    }
    let mut best_step = None;
    if let (true, Some(weights), Some((step, _))) = (finished && cfg.keep_best, best_weights, best)
    {
        for (v, w) in vars.iter().zip(&weights) {
            v.set(w)?;
        }
        best_step = Some(step);
    }
    Ok(TrainOutcome {
        adapter,
        rows,
        finished,
        resumed_from,
        total_steps: total,
        best_step,
    })
}

/// The step and validation loss of the lowest validation loss among `rows` (the first on a tie).
fn best_so_far(rows: &[LossRow]) -> Option<(usize, f64)> {
    rows.iter()
        .filter_map(|r| r.val_loss.map(|l| (r.step, l)))
        .fold(None, |best, (step, l)| match best {
            Some((_, b)) if b <= l => best,
            _ => Some((step, l)),
        })
}
