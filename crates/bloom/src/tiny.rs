//! Offline tiny BLOOM-architecture models for the demo and tests: a byte-level BPE tokenizer
//! trained on given text and a seeded random model, written as a Hugging Face folder.

use std::path::Path;

use candle_core::Device;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::ModelWrapper;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::config::BloomConfig;
use crate::error::{BloomError, Result};
use crate::model::Bloom;

/// BLOOM's special tokens, in BLOOM's id order (0 unk, 1 bos, 2 eos, 3 pad).
pub const SPECIAL_TOKENS: [&str; 4] = ["<unk>", "<s>", "</s>", "<pad>"];

fn tok_err(e: impl std::fmt::Display) -> BloomError {
    BloomError::Tokenizer {
        path: "<memory>".into(),
        msg: e.to_string(),
    }
}

/// Trains a byte-level BPE tokenizer (BLOOM's kind: no prefix space, every byte in the base
/// alphabet so nothing is unknown) with at most `vocab_size` entries on `texts`.
pub fn train_tokenizer(texts: &[String], vocab_size: usize) -> Result<Tokenizer> {
    let alphabet = ByteLevel::alphabet();
    if vocab_size < alphabet.len() + SPECIAL_TOKENS.len() {
        return Err(BloomError::Param {
            name: "vocab_size".into(),
            msg: format!(
                "must be at least {} (bytes + special tokens)",
                alphabet.len() + SPECIAL_TOKENS.len()
            ),
        });
    }
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|s| AddedToken::from(*s, true))
                .collect(),
        )
        .initial_alphabet(alphabet.into_iter().collect())
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    let mut tk = Tokenizer::new(ModelWrapper::BPE(BPE::default()));
    let bl = ByteLevel::new(false, true, true);
    tk.with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(bl)));
    tk.with_decoder(Some(DecoderWrapper::ByteLevel(bl)));
    tk.train(&mut trainer, texts.iter()).map_err(tok_err)?;
    Ok(tk)
}

/// A small BLOOM config (64 wide, 2 layers, 4 heads) for a given vocabulary.
pub fn tiny_config(vocab_size: usize) -> BloomConfig {
    BloomConfig {
        vocab_size,
        hidden_size: 64,
        n_layer: 2,
        n_head: 4,
        layer_norm_epsilon: 1e-5,
        apply_residual_connection_post_layernorm: false,
        bos_token_id: 1,
        eos_token_id: 2,
        pad_token_id: 3,
        tie_word_embeddings: true,
    }
}

/// Writes a complete offline model folder (`config.json`, `model.safetensors`, `tokenizer.json`):
/// a tokenizer trained on `texts` with at most `vocab_size` entries and a random model of `config`
/// (its `vocab_size` replaced by the tokenizer's) drawn from `seed` with weights ~ N(0, `init_std`).
/// Same inputs, same bytes. A large `init_std` (transformers' tiny test models use 0.25) matters
/// with a frozen tied head: with 0.02 the logits of a 64-wide model cannot leave a +-1.5 range, so
/// LoRA can barely lower the loss.
pub fn write_tiny_model(
    dir: &Path,
    texts: &[String],
    vocab_size: usize,
    config: BloomConfig,
    seed: u64,
    init_std: f64,
) -> Result<()> {
    let tk = train_tokenizer(texts, vocab_size)?;
    let config = BloomConfig {
        vocab_size: tk.get_vocab_size(true),
        ..config
    };
    let model = Bloom::random(config, seed, init_std, &Device::Cpu)?;
    model.save(dir)?;
    let p = dir.join("tokenizer.json");
    tk.save(&p, false).map_err(|e| BloomError::Tokenizer {
        path: p.clone(),
        msg: e.to_string(),
    })
}

/// Loads `tokenizer.json` from a model folder.
pub fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let p = dir.join("tokenizer.json");
    if !p.is_file() {
        return Err(BloomError::MissingFile {
            path: p,
            what: "tokenizer",
        });
    }
    Tokenizer::from_file(&p).map_err(|e| BloomError::Tokenizer {
        path: p.clone(),
        msg: e.to_string(),
    })
}
