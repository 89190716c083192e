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
    /// Never generate an n-gram of this many tokens twice in one continuation (0: off), as transformers'
    /// `no_repeat_ngram_size` but over the generated tokens only (a translation may repeat the prompt's words).
    /// Stops the loops a small greedy model falls into ("реререре...").
    pub no_repeat_ngram_size: usize,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            max_new_tokens: 256,
            batch_size: 8,
            max_input_len: 384,
            no_repeat_ngram_size: 0,
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
            let logits = model.project(&last)?;
            let next: Vec<u32> = if cfg.no_repeat_ngram_size == 0 {
                logits.argmax(D::Minus1)?.to_vec1()?
            } else {
                let rows: Vec<Vec<f32>> = logits.to_vec2()?;
                rows.iter()
                    .zip(&produced)
                    .map(|(l, prev)| argmax_without(l, &banned(prev, cfg.no_repeat_ngram_size)))
                    .collect()
            };
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

/// The tokens that would repeat an `n`-gram of `prev` if appended to it (transformers' `_get_ngrams` rule).
fn banned(prev: &[u32], n: usize) -> HashSet<u32> {
    if n == 0 || prev.len() + 1 < n {
        return HashSet::new();
    }
    let tail = &prev[prev.len() + 1 - n..];
    prev.windows(n)
        .filter(|w| w[..n - 1] == *tail)
        .map(|w| w[n - 1])
        .collect()
}

/// The index of the largest logit outside `banned` (the first on a tie, as `argmax`); all banned: the argmax.
fn argmax_without(logits: &[f32], banned: &HashSet<u32>) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if banned.contains(&(i as u32)) {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or_else(
        || {
            logits
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |a, (i, &v)| if v > a.1 { (i, v) } else { a },
                )
                .0 as u32
        },
        |(i, _)| i as u32,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banned_tokens_are_those_that_would_repeat_an_ngram() {
        // "a b a" + next: "a b" was followed by "a", and the tail "a" was followed by "b".
        assert_eq!(banned(&[1, 2, 1], 2), HashSet::from([2]));
        assert_eq!(banned(&[1, 2, 3, 1, 2], 3), HashSet::from([3]));
        assert_eq!(banned(&[1, 2, 3], 3), HashSet::new());
        assert_eq!(banned(&[5, 5], 1), HashSet::from([5]));
        assert_eq!(argmax_without(&[0.1, 0.9, 0.5], &HashSet::from([1])), 2);
        assert_eq!(argmax_without(&[0.1, 0.9], &HashSet::from([0, 1])), 1);
    }
}
