//! The scoring options as a plain configuration (strings and numbers) shared by `alinea score` and
//! the `metrics.score` / `metrics.compare` stages, checked once into [`ScoreOptions`].

use serde::{Deserialize, Serialize};

use crate::bleu::Smoothing;
use crate::spm::SpmModel;
use crate::tokenize::Tokenizer;
use crate::{MetricsError, ScoreOptions};

fn is_false(v: &bool) -> bool {
    !*v
}
fn default_max_ngram_order() -> usize {
    4
}
fn is_default_max_ngram_order(v: &usize) -> bool {
    *v == 4
}
fn default_char_order() -> usize {
    6
}
fn is_default_char_order(v: &usize) -> bool {
    *v == 6
}
fn default_beta() -> u32 {
    2
}
fn is_default_beta(v: &u32) -> bool {
    *v == 2
}

/// sacrebleu's BLEU / chrF options by name, with its defaults. Options added after the first
/// release are left out of the serialized form while at their defaults, so configurations written
/// before them (and the cache keys made from them) stay the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreConfig {
    /// BLEU tokenizer: `13a`, `intl`, `zh`, `char`, `none`, or SentencePiece `flores200`, `flores101`,
    /// `spBLEU-1K` (spBLEU, with a SentencePiece model file).
    pub tokenize: String,
    /// Lowercase for BLEU (sacrebleu `-lc`; chrF stays case-sensitive).
    pub lowercase: bool,
    /// Lowercase for chrF / chrF++ (sacrebleu `--chrf-lowercase`).
    pub chrf_lowercase: bool,
    /// BLEU smoothing: `exp`, `floor`, `add-k`, `none`.
    pub smoothing: String,
    /// Value of `floor` / `add-k` (sacrebleu's default when absent): a finite number >= 0.
    pub smooth_value: Option<f64>,
    /// BLEU's maximum n-gram order (sacrebleu `max_ngram_order`, default 4).
    #[serde(
        default = "default_max_ngram_order",
        skip_serializing_if = "is_default_max_ngram_order"
    )]
    pub bleu_max_ngram_order: usize,
    /// Corpus-level effective order for BLEU (sacrebleu `effective_order`; sentence scores always
    /// use it).
    #[serde(skip_serializing_if = "is_false")]
    pub bleu_effective_order: bool,
    /// chrF character n-gram order (sacrebleu `--chrf-char-order`, default 6).
    #[serde(
        default = "default_char_order",
        skip_serializing_if = "is_default_char_order"
    )]
    pub chrf_char_order: usize,
    /// chrF recall weight beta (sacrebleu `--chrf-beta`, default 2).
    #[serde(default = "default_beta", skip_serializing_if = "is_default_beta")]
    pub chrf_beta: u32,
    /// Keep whitespace in chrF's character n-grams (sacrebleu `--chrf-whitespace`).
    #[serde(skip_serializing_if = "is_false")]
    pub chrf_whitespace: bool,
    /// chrF++.py-style epsilon smoothing (sacrebleu `--chrf-eps-smoothing`).
    #[serde(skip_serializing_if = "is_false")]
    pub chrf_eps_smoothing: bool,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            tokenize: "13a".into(),
            lowercase: false,
            chrf_lowercase: false,
            smoothing: "exp".into(),
            smooth_value: None,
            bleu_max_ngram_order: 4,
            bleu_effective_order: false,
            chrf_char_order: 6,
            chrf_beta: 2,
            chrf_whitespace: false,
            chrf_eps_smoothing: false,
        }
    }
}

/// sacrebleu spells non-finite floats as Python does: `nan`, `inf`, `-inf`.
pub fn py_float(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:.decimals$}")
    }
}

impl ScoreConfig {
    /// Checks every value and builds the options (with the SentencePiece model when the
    /// tokenizer needs one). Errors name the option and what it accepts.
    pub fn options(&self, spm_model: Option<SpmModel>) -> Result<ScoreOptions, MetricsError> {
        if let Some(v) = self.smooth_value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(MetricsError::BadValue {
                field: "smooth_value",
                value: py_float(v, 2),
                expected: "a finite number >= 0",
            });
        }
        let positive = |field: &'static str, v: usize| {
            if v == 0 {
                Err(MetricsError::BadValue {
                    field,
                    value: "0".into(),
                    expected: "an integer >= 1",
                })
            } else {
                Ok(())
            }
        };
        positive("bleu_max_ngram_order", self.bleu_max_ngram_order)?;
        positive("chrf_char_order", self.chrf_char_order)?;
        Ok(ScoreOptions {
            tokenize: Tokenizer::from_name(&self.tokenize, spm_model)?,
            lowercase: self.lowercase,
            chrf_lowercase: self.chrf_lowercase,
            smoothing: Smoothing::from_name(&self.smoothing, self.smooth_value)?,
            bleu_max_ngram_order: self.bleu_max_ngram_order,
            bleu_effective_order: self.bleu_effective_order,
            chrf_char_order: self.chrf_char_order,
            chrf_beta: self.chrf_beta,
            chrf_whitespace: self.chrf_whitespace,
            chrf_eps_smoothing: self.chrf_eps_smoothing,
        })
    }
}

impl ScoreConfig {
    /// Checks the values without a SentencePiece model (a tokenizer that needs one is checked
    /// when the model is at hand); on error, the parameter's key and the message.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let needs_model = Tokenizer::needs_model(&self.tokenize);
        let cfg = ScoreConfig {
            tokenize: if needs_model {
                "13a".into()
            } else {
                self.tokenize.clone()
            },
            ..self.clone()
        };
        cfg.options(None).map(|_| ()).map_err(|e| {
            let field = match &e {
                MetricsError::BadValue { field, .. } => field,
                MetricsError::UnknownOption {
                    field: "smooth_method",
                    ..
                } => "smoothing",
                _ => "tokenize",
            };
            (field, e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_smooth_values_are_refused_by_name() {
        for v in [f64::NAN, f64::INFINITY, -1.0] {
            let cfg = ScoreConfig {
                smoothing: "floor".into(),
                smooth_value: Some(v),
                ..ScoreConfig::default()
            };
            let err = cfg.options(None).unwrap_err().to_string();
            assert!(
                err.contains("smooth_value") && err.contains(">= 0"),
                "{err}"
            );
        }
        assert!(py_float(f64::NAN, 2) == "nan" && py_float(f64::NEG_INFINITY, 2) == "-inf");
    }

    #[test]
    fn defaults_serialize_without_the_later_options() {
        let v = serde_json::to_value(ScoreConfig::default()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "tokenize",
                "lowercase",
                "chrf_lowercase",
                "smoothing",
                "smooth_value"
            ]
        );
    }
}
