//! BLOOM causal language model for alinea, in candle: loading of local Hugging Face folders,
//! LoRA fine-tuning with PEFT-compatible adapters, and batched greedy generation.
//!
//! Everything runs on CPU by default; the `cuda` feature adds GPU devices (`cuda`, `cuda:N`), where
//! [`default_dtype`] (dtype `auto`) picks bf16 weights from Ampere on (LoRA factors, LayerNorms, softmax and loss
//! stay f32). A CUDA device name never falls back to the CPU: see [`parse_device`].
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use std::path::Path;
//! use alinea_bloom::*;
//!
//! # fn main() -> alinea_bloom::Result<()> {
//! let device = parse_device("cpu")?;
//! let dir = Path::new("models/bloomz-1b1");
//! let model = Bloom::load(dir, &device, default_dtype(&device))?;
//! let tok = load_tokenizer(dir)?;
//! let cfg = TrainConfig::default();
//! let ex = Example::encode(&tok, "Translate from English to Welsh.\nEnglish: Hello\nWelsh:", " Helo",
//!     cfg.max_input_len, cfg.max_output_len, Some(model.config().eos_token_id))?;
//! let out = train(&model, &[vec![ex]], &cfg, Some(Path::new("ckpt")), &mut |_row, _total| ControlFlow::Continue(()))?;
//! out.adapter.save(Path::new("adapter"), "bigscience/bloomz-1b1")?;
//! let hyps = generate_text(&model, Some(&out.adapter), &tok, &["...".to_string()], &GenerateConfig::default())?;
//! # Ok(()) }
//! ```
//!
//! On a loaded machine set `CANDLE_NUM_THREADS=1`: candle's CPU thread pool spin-waits and runs
//! several times slower when the cores are oversubscribed (results are identical either way).

#![warn(missing_docs)]

pub mod config;
pub mod device;
pub mod error;
pub mod generate;
pub mod lora;
pub mod model;
pub mod pretrain;
pub mod rng;
pub mod tiny;
pub mod train;

pub use config::{BloomConfig, ParamCount, count_params, count_params_for};
pub use device::{compute_capability, default_dtype, parse_device, parse_dtype};
pub use error::{BloomError, Result};
pub use generate::{
    GenerateConfig, generate_ids, generate_text, generate_text_with_stops, newline_token_ids,
    stop_token_ids,
};
pub use lora::{LoraAdapter, LoraConfig, LoraModule, LoraTarget};
pub use model::{Bloom, KvCache};
pub use pretrain::{PretrainConfig, pretrain};
pub use tiny::{load_tokenizer, tiny_config, train_tokenizer, write_tiny_model};
pub use train::{
    Example, LossRow, TrainConfig, TrainOutcome, lr_factor, step_batches, train,
    train_with_validation,
};
