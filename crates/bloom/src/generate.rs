//! Batched greedy decoding with a KV cache.

use std::collections::HashSet;

use candle_core::{D, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{BloomError, Result};
use crate::lora::LoraAdapter;
use crate::model::{Bloom, KvCache, Pass};

/// Decoding parameters (beam size 1, as the paper). Missing fields take their defaults; the `generate` stage
/// embeds it as its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct GenerateConfig {
    /// Most tokens generated per prompt.
    pub max_new_tokens: usize,
    /// Prompts decoded together (prompts are sorted by length first to limit padding).
    pub batch_size: usize,
    /// Longest prompt kept (tokens, truncated from the left so the cue at its end survives).
    pub max_input_len: usize,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            max_new_tokens: 256,
            batch_size: 8,
            max_input_len: 384,
        }
    }
}

/// Greedy continuation of every prompt, stopping at the first token in `stop_ids` (not included in
/// the output) or after `max_new_tokens`. Outputs are in prompt order. The result depends only on
/// the inputs and the batch size, not on thread count.
pub fn generate_ids(
    model: &Bloom,
    lora: Option<&LoraAdapter>,
    prompts: &[Vec<u32>],
    stop_ids: &HashSet<u32>,
    cfg: &GenerateConfig,
) -> Result<Vec<Vec<u32>>> {
    if cfg.batch_size == 0 {
        return Err(BloomError::Param {
            name: "batch_size".into(),
            msg: "must be positive".into(),
        });
    }
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(BloomError::Data {
                phase: 0,
                index: i,
                msg: "empty prompt".into(),
            });
        }
    }
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(prompts[i].len().min(cfg.max_input_len)));
    let mut out = vec![Vec::new(); prompts.len()];
    let pad = model.config().pad_token_id;
    for chunk in order.chunks(cfg.batch_size) {
        let rows: Vec<&[u32]> = chunk
            .iter()
            .map(|&i| {
                let p = &prompts[i];
                &p[p.len().saturating_sub(cfg.max_input_len)..]
            })
            .collect();
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(1);
        let mut ids = Vec::with_capacity(rows.len());
        let mut mask: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = vec![pad; t - r.len()];
            row.extend_from_slice(r);
            ids.push(row);
            let mut m = vec![0u8; t - r.len()];
            m.resize(t, 1);
            mask.push(m);
        }
        let b = rows.len();
        let (mut input, _) = model.batch_tensors(&ids, &mask)?;
        let mut cache = KvCache::new();
        let mut done = vec![cfg.max_new_tokens == 0; b];
        let mut produced: Vec<Vec<u32>> = vec![Vec::new(); b];
        for _ in 0..cfg.max_new_tokens {
            let flat: Vec<u8> = mask.iter().flatten().copied().collect();
            let h = model.hidden(&input, &flat, Some(&mut cache), lora, Pass::Eval)?;
            let last = h.narrow(1, h.dims()[1] - 1, 1)?.squeeze(1)?;
            let next: Vec<u32> = model.project(&last)?.argmax(D::Minus1)?.to_vec1()?;
            for r in 0..b {
                if done[r] {
                    continue;
                }
                if stop_ids.contains(&next[r]) {
                    done[r] = true;
                } else {
                    produced[r].push(next[r]);
                    done[r] = produced[r].len() >= cfg.max_new_tokens;
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
            let feed: Vec<u32> = (0..b)
                .map(|r| if done[r] { pad } else { next[r] })
                .collect();
            input = Tensor::from_vec(feed, (b, 1), model.device())?;
            for m in mask.iter_mut() {
                m.push(1);
            }
        }
        for (k, &i) in chunk.iter().enumerate() {
            out[i] = std::mem::take(&mut produced[k]);
        }
    }
    Ok(out)
}

/// Ids of the vocabulary entries whose text contains a newline (decoding stops at the first one).
pub fn newline_token_ids(tokenizer: &tokenizers::Tokenizer) -> HashSet<u32> {
    let n = tokenizer.get_vocab_size(true) as u32;
    (0..n)
        .filter(|&id| {
            tokenizer
                .decode(&[id], false)
                .map(|s| s.contains('\n'))
                .unwrap_or(false)
        })
        .collect()
}

/// Tokenises prompts (no special tokens), decodes greedily until EOS or the first newline, and
/// returns the continuations as trimmed text, in prompt order. Computes the newline ids on each call
/// (a scan of the vocabulary); callers decoding many chunks can compute [`stop_token_ids`] once and
/// use [`generate_text_with_stops`].
pub fn generate_text(
    model: &Bloom,
    lora: Option<&LoraAdapter>,
    tokenizer: &tokenizers::Tokenizer,
    prompts: &[String],
    cfg: &GenerateConfig,
) -> Result<Vec<String>> {
    let stop = stop_token_ids(model, tokenizer);
    generate_text_with_stops(model, lora, tokenizer, prompts, &stop, cfg)
}

/// EOS plus every token containing a newline: where [`generate_text`] stops.
pub fn stop_token_ids(model: &Bloom, tokenizer: &tokenizers::Tokenizer) -> HashSet<u32> {
    let mut stop = newline_token_ids(tokenizer);
    stop.insert(model.config().eos_token_id);
    stop
}

/// [`generate_text`] with precomputed stop ids.
pub fn generate_text_with_stops(
    model: &Bloom,
    lora: Option<&LoraAdapter>,
    tokenizer: &tokenizers::Tokenizer,
    prompts: &[String],
    stop: &HashSet<u32>,
    cfg: &GenerateConfig,
) -> Result<Vec<String>> {
    let tok_err = |e: tokenizers::Error| BloomError::Tokenizer {
        path: "<memory>".into(),
        msg: e.to_string(),
    };
    let ids = prompts
        .iter()
        .map(|p| {
            Ok(tokenizer
                .encode(p.as_str(), false)
                .map_err(tok_err)?
                .get_ids()
                .to_vec())
        })
        .collect::<Result<Vec<_>>>()?;
    let out = generate_ids(model, lora, &ids, stop, cfg)?;
    out.iter()
        .map(|o| {
            Ok(tokenizer
                .decode(o, true)
                .map_err(tok_err)?
                .trim()
                .to_string())
        })
        .collect()
}
