//! Token-length accounting: the paper's 384-token limits on input and output, with a `tokenizer.json` when the
//! model provides one and a byte count otherwise.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{InstructError, Result};
use crate::row::{InstructRow, Stats};

/// What to do with a row whose prompt or output exceeds its limit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// Drop the row (counted as `input_too_long` / `output_too_long`). Default: a truncated MT prompt loses its
    /// trailing `{X}:` cue and a truncated output is a wrong target.
    #[default]
    Drop,
    /// Keep the longest prefix within the limit (on token boundaries) and flag the row `truncated`.
    Truncate,
}

fn default_limit() -> usize {
    384
}

/// Length limits, shared by every builder's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LengthParams {
    /// Maximum prompt tokens (default 384, App. B). 0 disables the limit.
    #[serde(default = "default_limit")]
    pub max_input_tokens: usize,
    /// Maximum output tokens (default 384). 0 disables the limit.
    #[serde(default = "default_limit")]
    pub max_output_tokens: usize,
    /// Drop (default) or truncate over-long rows.
    pub overflow: Overflow,
}

impl Default for LengthParams {
    fn default() -> Self {
        LengthParams {
            max_input_tokens: 384,
            max_output_tokens: 384,
            overflow: Overflow::Drop,
        }
    }
}

/// Counts tokens of a text.
pub enum TokenCounter {
    /// One token per UTF-8 byte: an upper bound for byte-level BPE (BLOOM's tokenizer never emits more tokens than
    /// bytes), so a row that passes here passes with the real tokenizer.
    Bytes,
    /// A Hugging Face `tokenizer.json`, counted without special tokens.
    Tokenizer(Box<tokenizers::Tokenizer>),
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenCounter::Bytes => write!(f, "TokenCounter::Bytes"),
            TokenCounter::Tokenizer(_) => write!(f, "TokenCounter::Tokenizer"),
        }
    }
}

impl TokenCounter {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(InstructError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "tokenizer file not found",
                ),
            });
        }
        let t = tokenizers::Tokenizer::from_file(path).map_err(|e| InstructError::Tokenizer {
            what: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(TokenCounter::Tokenizer(Box::new(t)))
    }

    /// `from_file` when a path is given, the byte fallback otherwise.
    pub fn from_optional(path: Option<&Path>) -> Result<Self> {
        path.map_or(Ok(TokenCounter::Bytes), Self::from_file)
    }

    /// Byte ends of the tokens of `text`, in order (the last one is `text.len()` for a non-empty text).
    fn token_ends(&self, text: &str) -> Result<Vec<usize>> {
        match self {
            TokenCounter::Bytes => Ok((1..=text.len()).collect()),
            TokenCounter::Tokenizer(t) => {
                let enc = t
                    .encode(text, false)
                    .map_err(|e| InstructError::Tokenizer {
                        what: "encode".into(),
                        message: e.to_string(),
                    })?;
                Ok(enc.get_offsets().iter().map(|o| o.1).collect())
            }
        }
    }

    /// Number of tokens of `text`.
    pub fn count(&self, text: &str) -> Result<usize> {
        match self {
            TokenCounter::Bytes => Ok(text.len()),
            // `encode_fast` skips offset tracking, which counting does not need.
            TokenCounter::Tokenizer(t) => {
                t.encode_fast(text, false)
                    .map(|e| e.len())
                    .map_err(|e| InstructError::Tokenizer {
                        what: "encode".into(),
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Longest prefix of `text` (cut at a token end and a character boundary) that counts at most `max` tokens.
    pub fn truncate<'a>(&self, text: &'a str, max: usize) -> Result<&'a str> {
        let ends = self.token_ends(text)?;
        if ends.len() <= max {
            return Ok(text);
        }
        let mut k = max;
        while k > 0 {
            let mut cut = ends[k - 1].min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let prefix = &text[..cut];
            // Re-encoding a cut word can merge differently, so check the prefix itself.
            if self.count(prefix)? <= max {
                return Ok(prefix);
            }
            k -= 1;
        }
        Ok("")
    }
}

/// Outcome of fitting one row to the limits.
enum Fit {
    Keep,
    Drop(&'static str),
}

/// Counts every row's tokens, then drops or truncates over-long rows per `params`, counting both in `stats`
/// (`dropped["input_too_long"]`, `dropped["output_too_long"]`, `dropped["instruction_too_long"]`). Counting runs in
/// parallel; the result does not depend on the thread count.
pub fn apply_lengths(
    rows: Vec<InstructRow>,
    counter: &TokenCounter,
    params: &LengthParams,
    stats: &mut Stats,
) -> Result<Vec<InstructRow>> {
    let results: Vec<Result<(Fit, InstructRow)>> = rows
        .into_par_iter()
        .map(|mut r| fit_row(&mut r, counter, params).map(|f| (f, r)))
        .collect();
    let mut out = Vec::with_capacity(results.len());
    for res in results {
        match res? {
            (Fit::Keep, r) => out.push(r),
            (Fit::Drop(reason), _) => stats.drop_n(reason, 1),
        }
    }
    Ok(out)
}

fn fit_row(r: &mut InstructRow, counter: &TokenCounter, params: &LengthParams) -> Result<Fit> {
    let mut in_tok = counter.count(&r.prompt())?;
    let mut out_tok = counter.count(&r.output)?;
    let max_in = if params.max_input_tokens == 0 {
        usize::MAX
    } else {
        params.max_input_tokens
    };
    let max_out = if params.max_output_tokens == 0 {
        usize::MAX
    } else {
        params.max_output_tokens
    };
    if in_tok > max_in {
        if params.overflow == Overflow::Drop {
            return Ok(Fit::Drop("input_too_long"));
        }
        if r.input.is_empty() {
            r.instruction = counter.truncate(&r.instruction, max_in)?.to_string();
        } else {
            let head = counter.count(&format!("{}\n", r.instruction))?;
            if head >= max_in {
                return Ok(Fit::Drop("instruction_too_long"));
            }
            r.input = counter.truncate(&r.input, max_in - head)?.to_string();
            // Token merges across the joining newline can differ; shave until the whole prompt fits.
            while counter.count(&r.prompt())? > max_in && !r.input.is_empty() {
                let n = counter.count(&r.input)?;
                r.input = counter.truncate(&r.input, n.saturating_sub(1))?.to_string();
            }
        }
        in_tok = counter.count(&r.prompt())?;
        r.truncated = true;
    }
    if out_tok > max_out {
        if params.overflow == Overflow::Drop {
            return Ok(Fit::Drop("output_too_long"));
        }
        r.output = counter.truncate(&r.output, max_out)?.to_string();
        out_tok = counter.count(&r.output)?;
        r.truncated = true;
    }
    r.input_tokens = in_tok as u32;
    r.output_tokens = out_tok as u32;
    Ok(Fit::Keep)
}
