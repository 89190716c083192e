//! Ports of sacrebleu 2.6.0's BLEU tokenizers (`13a`, `intl`, `zh`, `char`, `none`), byte-for-byte, and its
//! SentencePiece tokenizers (`flores200`, `flores101`, `spBLEU-1K`) through [`crate::spm`].

use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::spm::{SpmModel, spm_signature};
use crate::text::{is_py_space, py_collapse, py_strip};

/// A BLEU tokenizer, named as in sacrebleu's `--tokenize`. The SentencePiece tokenizers (spBLEU) carry their loaded
/// model: build them with [`Tokenizer::from_name`] and the model file's path.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Tokenizer {
    /// `13a`: mteval-v13a (the default).
    #[default]
    Thirteen13a,
    /// `intl`: mteval-v14 international (Unicode punctuation and symbols).
    Intl,
    /// `zh`: CJK characters split apart, the rest as `13a`.
    Zh,
    /// `char`: every character is a token.
    Char,
    /// `none`: whitespace split only.
    None,
    /// `flores200`, `flores101` (`spm`), `spBLEU-1K`: SentencePiece pieces of the given model.
    Spm {
        /// The name in the signature (`flores200`, …).
        signature: &'static str,
        /// The loaded model.
        model: SpmModel,
    },
}

/// Names [`Tokenizer::from_name`] accepts.
pub const TOKENIZER_NAMES: &str = "13a, intl, zh, char, none, flores200, flores101, spm, spBLEU-1K";

impl Tokenizer {
    /// The tokenizer called `name`; the SentencePiece ones need `spm_model`, the others refuse it (a model given
    /// to `13a` is a mistake worth saying, not ignoring).
    pub fn from_name(name: &str, spm_model: Option<SpmModel>) -> Result<Tokenizer, MetricsError> {
        if let Some(signature) = spm_signature(name) {
            return match spm_model {
                Some(model) => Ok(Tokenizer::Spm { signature, model }),
                None => Err(MetricsError::TokenizerModel(format!(
                    "tokenize {name} needs its SentencePiece model file (e.g. flores200_sacrebleu_tokenizer_spm.model, \
                     which sacrebleu downloads to ~/.sacrebleu/models/): give its local path"
                ))),
            };
        }
        let t = name.parse::<Tokenizer>()?;
        match spm_model {
            Some(model) => Err(MetricsError::TokenizerModel(format!(
                "a SentencePiece model ({}) was given but tokenize is {name}: use flores200, flores101 or spBLEU-1K",
                model.path().display()
            ))),
            None => Ok(t),
        }
    }

    /// Whether `name` names a SentencePiece tokenizer (which needs a model file).
    pub fn needs_model(name: &str) -> bool {
        spm_signature(name).is_some()
    }

    /// The name sacrebleu uses in the signature (`tok:…`).
    pub fn signature(&self) -> &'static str {
        match self {
            Tokenizer::Thirteen13a => "13a",
            Tokenizer::Intl => "intl",
            Tokenizer::Zh => "zh",
            Tokenizer::Char => "char",
            Tokenizer::None => "none",
            Tokenizer::Spm { signature, .. } => signature,
        }
    }

    /// Tokenizes one line, returning exactly the string sacrebleu's tokenizer returns.
    pub fn tokenize(&self, line: &str) -> String {
        match self {
            Tokenizer::Thirteen13a => tokenize_13a(line),
            Tokenizer::Intl => tokenize_intl(line),
            Tokenizer::Zh => tokenize_zh(line),
            Tokenizer::Char => {
                let mut out = String::with_capacity(line.len() * 2);
                for (i, c) in line.chars().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push(c);
                }
                out
            }
            Tokenizer::None => line.to_string(),
            Tokenizer::Spm { model, .. } => model.tokenize(line),
        }
    }
}

impl FromStr for Tokenizer {
    type Err = MetricsError;
    /// The tokenizers that need no model file; see [`Tokenizer::from_name`] for the others.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "13a" => Tokenizer::Thirteen13a,
            "intl" => Tokenizer::Intl,
            "zh" => Tokenizer::Zh,
            "char" => Tokenizer::Char,
            "none" => Tokenizer::None,
            other if Tokenizer::needs_model(other) => {
                return Tokenizer::from_name(other, None);
            }
            other => {
                return Err(MetricsError::UnknownOption {
                    field: "tokenize",
                    value: other.to_string(),
                    allowed: TOKENIZER_NAMES,
                });
            }
        })
    }
}

impl Serialize for Tokenizer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.signature())
    }
}

impl<'de> Deserialize<'de> for Tokenizer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.signature())
    }
}

/// `Tokenizer13a.__call__`.
fn tokenize_13a(line: &str) -> String {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        // Sequential, as in Python: "&amp;lt;" ends up as "<".
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let padded = format!(" {s} ");
    regexp_post(padded.as_bytes())
}

/// Byte class of the first 13a rule `[\{-\~\[-\` -\&\(-\+\:-\@\/]`.
#[inline]
fn rule1(b: u8) -> bool {
    matches!(b, 0x7b..=0x7e | 0x5b..=0x60 | 0x20..=0x26 | 0x28..=0x2b | 0x3a..=0x40 | b'/')
}

/// `TokenizerRegexp.__call__`: the four substitutions then whitespace collapsing.
///
/// Every pattern only names ASCII bytes except `[^0-9]`, which matches any character; working on
/// UTF-8 bytes gives the same output because continuation bytes are never digits, `.`, `,` or `-`,
/// and Python's left-to-right non-overlapping scan is reproduced exactly.
fn regexp_post(line: &[u8]) -> String {
    // rule 1: ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
    let mut a = Vec::with_capacity(line.len() * 2);
    for &b in line {
        if rule1(b) {
            a.extend_from_slice(&[b' ', b, b' ']);
        } else {
            a.push(b);
        }
    }
    // rule 2: ([^0-9])([\.,]) -> '\1 \2 '
    let mut b2 = Vec::with_capacity(a.len() + 16);
    let mut i = 0;
    while i < a.len() {
        if i + 1 < a.len() && !a[i].is_ascii_digit() && matches!(a[i + 1], b'.' | b',') {
            b2.extend_from_slice(&[a[i], b' ', a[i + 1], b' ']);
            i += 2;
        } else {
            b2.push(a[i]);
            i += 1;
        }
    }
    // rule 3: ([\.,])([^0-9]) -> ' \1 \2'
    let mut c = Vec::with_capacity(b2.len() + 16);
    let mut i = 0;
    while i < b2.len() {
        if i + 1 < b2.len() && matches!(b2[i], b'.' | b',') && !b2[i + 1].is_ascii_digit() {
            c.extend_from_slice(&[b' ', b2[i], b' ', b2[i + 1]]);
            i += 2;
        } else {
            c.push(b2[i]);
            i += 1;
        }
    }
    // rule 4: ([0-9])(-) -> '\1 \2 '
    let mut d = Vec::with_capacity(c.len() + 16);
    let mut i = 0;
    while i < c.len() {
        if i + 1 < c.len() && c[i].is_ascii_digit() && c[i + 1] == b'-' {
            d.extend_from_slice(&[c[i], b' ', b'-', b' ']);
            i += 2;
        } else {
            d.push(c[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were inserted next to whole characters or ASCII bytes, so UTF-8 holds.
    let s = String::from_utf8(d).expect("13a rules keep UTF-8 intact");
    py_collapse(&s)
}

fn intl_regexes() -> &'static [(Regex, &'static str); 3] {
    static RE: OnceLock<[(Regex, &'static str); 3]> = OnceLock::new();
    RE.get_or_init(|| {
        [
            (
                Regex::new(r"(\P{N})(\p{P})").expect("valid regex"),
                "${1} ${2} ",
            ),
            (
                Regex::new(r"(\p{P})(\P{N})").expect("valid regex"),
                " ${1} ${2}",
            ),
            (Regex::new(r"(\p{S})").expect("valid regex"), " ${1} "),
        ]
    })
}

/// `TokenizerV14International.__call__`.
fn tokenize_intl(line: &str) -> String {
    let mut s = line.to_string();
    for (re, rep) in intl_regexes() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    py_collapse(&s)
}

/// The code points sacrebleu's `TokenizerZh._is_chinese_char` accepts. This is not the table
/// written in its source: ranges like `u'\u20000'` are two-character strings compared
/// lexicographically, so the effective set (computed by enumerating every code point with
/// sacrebleu 2.6.0) includes U+2001–U+2A6D (general punctuation, quotes, dashes…) and no
/// supplementary-plane ideographs. Reproducing the quirk is what exactness requires.
const ZH_RANGES: [(u32, u32); 13] = [
    (0x2001, 0x2a6d),
    (0x2e80, 0x2fdf),
    (0x2ff0, 0x303f),
    (0x3100, 0x312f),
    (0x31a0, 0x31ef),
    (0x3200, 0x4db5),
    (0x4e00, 0x9fbb),
    (0xf900, 0xfa2d),
    (0xfa30, 0xfa6a),
    (0xfa70, 0xfad9),
    (0xfe10, 0xfe1f),
    (0xfe30, 0xfe4f),
    (0xff00, 0xffef),
];

/// sacrebleu's (quirky) Chinese-character test, over the ranges of `ZH_RANGES`.
pub fn is_zh_char(c: char) -> bool {
    let u = c as u32;
    ZH_RANGES.iter().any(|&(lo, hi)| lo <= u && u <= hi)
}

/// `TokenizerZh.__call__`.
fn tokenize_zh(line: &str) -> String {
    let line = py_strip(line);
    let mut s = String::with_capacity(line.len() * 2);
    for c in line.chars() {
        if is_zh_char(c) {
            s.push(' ');
            s.push(c);
            s.push(' ');
        } else {
            s.push(c);
        }
    }
    regexp_post(s.as_bytes())
}

/// Tokens of a tokenized line (Python `str.split()`), as BLEU's n-gram extraction sees them.
pub(crate) fn tokens(tokenized: &str) -> Vec<&str> {
    tokenized
        .split(is_py_space)
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_a_basics() {
        let t = Tokenizer::Thirteen13a;
        assert_eq!(t.tokenize("Hello, world."), "Hello , world .");
        assert_eq!(
            t.tokenize("It costs $3,000.50 (approx.)"),
            "It costs $ 3,000.50 ( approx . )"
        );
        assert_eq!(
            t.tokenize("1990-2000 a-b &amp;lt;x&gt;"),
            "1990 - 2000 a-b < x >"
        );
        assert_eq!(t.tokenize("a..b"), "a . . b");
    }

    #[test]
    fn zh_quirk_splits_quotes() {
        assert!(is_zh_char('\u{201c}'));
        assert!(!is_zh_char('\u{20000}'));
        assert_eq!(Tokenizer::Zh.tokenize("我爱“北京”。"), "我 爱 “ 北 京 ” 。");
    }

    #[test]
    fn parse_names() {
        assert_eq!("intl".parse::<Tokenizer>().unwrap(), Tokenizer::Intl);
        assert!("mecab".parse::<Tokenizer>().is_err());
    }
}
