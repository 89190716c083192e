//! Tokenization for alignment. Every token keeps its byte span in the original text so that aligned pairs can be
//! printed exactly as written.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

/// How to cut a sentence into alignment tokens.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenizeMode {
    /// Unicode word boundaries (UAX #29): punctuation becomes separate tokens, whitespace is dropped. Default.
    #[default]
    Unicode,
    /// Split on whitespace only (for pre-tokenized corpora).
    Whitespace,
    /// As `Unicode`, but every word that contains a character of a script written without spaces (Han, kana,
    /// Thai, Lao, Khmer, Myanmar, fullwidth forms) is cut into grapheme clusters. Latin words inside such text
    /// stay whole.
    Chars,
}

impl std::str::FromStr for TokenizeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unicode" => Ok(Self::Unicode),
            "whitespace" => Ok(Self::Whitespace),
            "chars" => Ok(Self::Chars),
            other => Err(format!(
                "unknown tokenize mode `{other}` (unicode, whitespace, chars)"
            )),
        }
    }
}

/// A token and its byte span `[start, end)` in the original text (`&text[start..end] == self.text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The token text, borrowed from the original.
    pub text: &'a str,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

/// True for characters of scripts conventionally written without spaces between words.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF        // Thai, Lao
        | 0x1000..=0x109F      // Myanmar
        | 0xA9E0..=0xA9FF | 0xAA60..=0xAA7F // Myanmar extensions
        | 0x1780..=0x17FF | 0x19E0..=0x19FF // Khmer
        | 0x2E80..=0x2FDF      // CJK radicals
        | 0x3000..=0x30FF      // CJK punctuation, Hiragana, Katakana
        | 0x3100..=0x31FF      // Bopomofo, Katakana extensions
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF // CJK ideographs
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFF00..=0xFFEF      // half/fullwidth forms
        | 0x20000..=0x3FFFF) // CJK extensions
}

/// Tokenizes `text` with the given mode.
pub fn tokenize(text: &str, mode: TokenizeMode) -> Vec<Token<'_>> {
    let mk = |start: usize, s: &'_ str| Token {
        text: &text[start..start + s.len()],
        start,
        end: start + s.len(),
    };
    match mode {
        TokenizeMode::Whitespace => {
            let mut out = Vec::new();
            let mut start = None;
            for (k, c) in text.char_indices() {
                if c.is_whitespace() {
                    if let Some(s) = start.take() {
                        out.push(mk(s, &text[s..k]));
                    }
                } else if start.is_none() {
                    start = Some(k);
                }
            }
            if let Some(s) = start {
                out.push(mk(s, &text[s..]));
            }
            out
        }
        TokenizeMode::Unicode | TokenizeMode::Chars => {
            let mut out = Vec::new();
            for (k, w) in text.split_word_bound_indices() {
                if w.chars().all(char::is_whitespace) {
                    continue;
                }
                if mode == TokenizeMode::Chars && w.chars().any(unspaced) {
                    for (g, s) in w.grapheme_indices(true) {
                        if !s.chars().all(char::is_whitespace) {
                            out.push(mk(k + g, s));
                        }
                    }
                } else {
                    out.push(mk(k, w));
                }
            }
            out
        }
    }
}
