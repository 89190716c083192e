//! BLOOM configuration (`config.json`), built-in BLOOMZ presets and parameter counting.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BloomError, Result, read_json};
use crate::lora::{LoraConfig, LoraTarget};

/// The fields of a Hugging Face `BloomConfig` that the forward pass needs. Old BLOOM configs name
/// fields `n_embed` / `num_attention_heads`; both spellings are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BloomConfig {
    /// Vocabulary size (rows of `word_embeddings`).
    pub vocab_size: usize,
    /// Model width.
    #[serde(alias = "n_embed")]
    pub hidden_size: usize,
    /// Number of transformer blocks.
    #[serde(alias = "num_hidden_layers")]
    pub n_layer: usize,
    /// Number of attention heads.
    #[serde(alias = "num_attention_heads")]
    pub n_head: usize,
    /// Epsilon of every LayerNorm.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Whether residuals are taken after the LayerNorms (BLOOM-176B style) instead of before.
    #[serde(default)]
    pub apply_residual_connection_post_layernorm: bool,
    /// Beginning-of-sequence id.
    #[serde(default = "one")]
    pub bos_token_id: u32,
    /// End-of-sequence id.
    #[serde(default = "two")]
    pub eos_token_id: u32,
    /// Padding id.
    #[serde(default = "three")]
    pub pad_token_id: u32,
    /// Whether the LM head reuses `word_embeddings` (always so for released BLOOM models).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn default_eps() -> f64 {
    1e-5
}
fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}
fn yes() -> bool {
    true
}

impl BloomConfig {
    /// Reads `config.json`, checking that the head count divides the width.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: BloomConfig = read_json(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks internal consistency; `origin` names the source in errors.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |field: &str, msg: String| BloomError::Config {
            path: origin.to_path_buf(),
            field: field.into(),
            msg,
        };
        if self.n_head == 0
            || self.hidden_size == 0
            || !self.hidden_size.is_multiple_of(self.n_head)
        {
            return Err(bad(
                "n_head",
                format!(
                    "{} heads do not divide hidden_size {}",
                    self.n_head, self.hidden_size
                ),
            ));
        }
        if self.vocab_size == 0 {
            return Err(bad("vocab_size", "must be positive".into()));
        }
        if self.n_layer == 0 {
            return Err(bad("n_layer", "must be positive".into()));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.n_head
    }

    /// A built-in preset holding the public BLOOMZ config of that size.
    pub fn preset(name: &str) -> Result<Self> {
        let (hidden, layers, heads) = match name {
            "bloomz-560m" => (1024, 24, 16),
            "bloomz-1b1" => (1536, 24, 16),
            "bloomz-3b" => (2560, 30, 32),
            "bloomz-7b1" => (4096, 30, 32),
            _ => return Err(BloomError::UnknownPreset(name.to_string())),
        };
        Ok(BloomConfig {
            vocab_size: 250_880,
            hidden_size: hidden,
            n_layer: layers,
            n_head: heads,
            layer_norm_epsilon: 1e-5,
            apply_residual_connection_post_layernorm: false,
            bos_token_id: 1,
            eos_token_id: 2,
            pad_token_id: 3,
            tie_word_embeddings: true,
        })
    }

    /// `(out, in)` of a LoRA-targetable linear layer.
    pub fn linear_shape(&self, target: LoraTarget) -> (usize, usize) {
        let h = self.hidden_size;
        match target {
            LoraTarget::QueryKeyValue => (3 * h, h),
            LoraTarget::Dense => (h, h),
            LoraTarget::DenseHTo4h => (4 * h, h),
            LoraTarget::Dense4hToH => (h, 4 * h),
        }
    }

    /// Parameters of the base model (tied head counted once, as `model.num_parameters()` does).
    pub fn base_params(&self) -> u64 {
        let h = self.hidden_size as u64;
        let ln = 2 * h;
        let per_layer =
            ln + (3 * h * h + 3 * h) + (h * h + h) + ln + (4 * h * h + 4 * h) + (4 * h * h + h);
        let head = if self.tie_word_embeddings {
            0
        } else {
            self.vocab_size as u64 * h
        };
        self.vocab_size as u64 * h + ln + self.n_layer as u64 * per_layer + ln + head
    }
}

/// Parameter counts of a model with a LoRA adapter, as PEFT's `print_trainable_parameters` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCount {
    /// Base plus adapter parameters (PEFT's "all params").
    pub total_params: u64,
    /// LoRA parameters (the only trainable ones).
    pub trainable_params: u64,
    /// Base model parameters alone.
    pub base_params: u64,
}

/// Counts base and LoRA parameters: each targeted linear layer adds `rank * (in + out)`.
pub fn count_params(cfg: &BloomConfig, lora: &LoraConfig) -> ParamCount {
    let per_layer: u64 = lora
        .targets
        .iter()
        .map(|&t| {
            let (o, i) = cfg.linear_shape(t);
            (lora.rank * (o + i)) as u64
        })
        .sum();
    let trainable = per_layer * cfg.n_layer as u64;
    let base = cfg.base_params();
    ParamCount {
        total_params: base + trainable,
        trainable_params: trainable,
        base_params: base,
    }
}

/// Counts parameters for a preset name or a `config.json` path (a path is anything that is not a
/// preset name).
pub fn count_params_for(preset_or_config: &str, lora: &LoraConfig) -> Result<ParamCount> {
    let cfg = match BloomConfig::preset(preset_or_config) {
        Ok(c) => c,
        Err(e) => {
            let p = PathBuf::from(preset_or_config);
            if p.exists() {
                BloomConfig::from_file(&p)?
            } else {
                return Err(e);
            }
        }
    };
    Ok(count_params(&cfg, lora))
}
