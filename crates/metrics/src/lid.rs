//! A character n-gram language identifier (multinomial naive Bayes) trained by alinea itself on
//! Flores-200 dev files: no external model. The model is a plain serde structure (languages,
//! the kept n-grams and their per-language counts) so a stage can cache it as JSON.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::text::{is_py_space, read_lines};

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LidConfig {
    /// Longest character n-gram (at most 5, the packing limit).
    pub max_order: usize,
    /// n-grams kept per language (the vocabulary is the union over languages).
    pub top_k: usize,
    /// Additive smoothing of the counts.
    pub alpha: f64,
}

impl Default for LidConfig {
    fn default() -> Self {
        LidConfig {
            max_order: 4,
            top_k: 3000,
            alpha: 0.5,
        }
    }
}

/// A trained identifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LidModel {
    /// Hyper-parameters it was trained with.
    pub config: LidConfig,
    /// Language labels (Flores codes such as `afr_Latn`), sorted.
    pub languages: Vec<String>,
    /// The vocabulary of character n-grams, sorted.
    pub features: Vec<String>,
    /// For each feature, `(language index, count)` for the languages where it occurs.
    pub counts: Vec<Vec<(u16, u32)>>,
    /// For each language, the number of in-vocabulary n-grams seen in training.
    pub totals: Vec<u64>,
    #[serde(skip)]
    tables: OnceLock<Tables>,
}

/// Scoring tables derived from the counts once per loaded model.
#[derive(Debug, Clone)]
struct Tables {
    index: FxHashMap<u128, u32>,
    /// Per language: ln(alpha) - ln(total + alpha * |V|), the weight of an n-gram it never saw.
    base: Vec<f64>,
    /// Per feature: `(language, ln(count + alpha) - ln(alpha))`, the bonus over `base`.
    bonus: Vec<Vec<(u16, f64)>>,
}

/// The identifier's answer for one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LidPrediction {
    /// Best language label.
    pub lang: String,
    /// Log-likelihood gap to the runner-up per n-gram (a confidence; 0 = tie).
    pub margin: f64,
    /// Number of in-vocabulary n-grams the decision used.
    pub n_features: usize,
}

/// Lowercased text with ASCII digits removed and whitespace runs collapsed, padded with one space
/// on each side so word boundaries become features.
fn normalize(text: &str) -> Vec<char> {
    let mut out = vec![' '];
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_digit() {
            continue;
        }
        let c = if is_py_space(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && out.last() == Some(&' ') {
            continue;
        }
        out.push(c);
    }
    if out.last() != Some(&' ') {
        out.push(' ');
    }
    out
}

/// Packs up to 5 characters into one exact key (21 bits each, +1 so lengths differ).
fn pack(chars: &[char]) -> u128 {
    chars
        .iter()
        .fold(0u128, |k, &c| (k << 21) | (c as u128 + 1))
}

fn unpack(mut key: u128) -> String {
    let mut cs = Vec::new();
    while key != 0 {
        let v = (key & 0x1f_ffff) as u32 - 1;
        cs.push(char::from_u32(v).unwrap_or('\u{fffd}'));
        key >>= 21;
    }
    cs.iter().rev().collect()
}

fn for_each_ngram(chars: &[char], max_order: usize, mut f: impl FnMut(u128)) {
    for n in 1..=max_order {
        if chars.len() < n {
            break;
        }
        for w in chars.windows(n) {
            // A lone space carries no language information.
            if n == 1 && w[0] == ' ' {
                continue;
            }
            f(pack(w));
        }
    }
}

impl LidModel {
    /// Trains on `(label, lines)` pairs. Deterministic: parallel over languages, ties broken by
    /// n-gram.
    pub fn train(
        corpus: &[(String, Vec<String>)],
        config: &LidConfig,
    ) -> Result<LidModel, MetricsError> {
        if corpus.len() < 2 {
            return Err(MetricsError::Lid(format!(
                "need at least 2 languages to train, got {}",
                corpus.len()
            )));
        }
        if !(1..=5).contains(&config.max_order) {
            return Err(MetricsError::Lid(format!(
                "max_order must be 1..=5, got {}",
                config.max_order
            )));
        }
        if corpus.len() > usize::from(u16::MAX) {
            return Err(MetricsError::Lid("too many languages".into()));
        }
        let mut sorted: Vec<&(String, Vec<String>)> = corpus.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for w in sorted.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(MetricsError::Lid(format!(
                    "language {} given twice",
                    w[0].0
                )));
            }
        }
        let per_lang: Vec<FxHashMap<u128, u32>> = sorted
            .par_iter()
            .map(|(_, lines)| {
                let mut m: FxHashMap<u128, u32> = FxHashMap::default();
                for l in lines {
                    for_each_ngram(&normalize(l), config.max_order, |k| {
                        *m.entry(k).or_insert(0) += 1
                    });
                }
                m
            })
            .collect();
        for ((lang, _), m) in sorted.iter().zip(&per_lang) {
            if m.is_empty() {
                return Err(MetricsError::Lid(format!(
                    "language {lang} has no training text"
                )));
            }
        }
        let mut vocab: Vec<u128> = per_lang
            .par_iter()
            .flat_map_iter(|m| {
                let mut v: Vec<(u32, u128)> = m.iter().map(|(&k, &c)| (c, k)).collect();
                v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                v.truncate(config.top_k);
                v.into_iter().map(|(_, k)| k)
            })
            .collect();
        let mut strs: Vec<(String, u128)> = {
            vocab.sort_unstable();
            vocab.dedup();
            vocab.iter().map(|&k| (unpack(k), k)).collect()
        };
        strs.sort();
        let mut totals = vec![0u64; sorted.len()];
        let counts: Vec<Vec<(u16, u32)>> = strs
            .iter()
            .map(|(_, k)| {
                let mut v = Vec::new();
                for (li, m) in per_lang.iter().enumerate() {
                    if let Some(&c) = m.get(k) {
                        v.push((li as u16, c));
                        totals[li] += u64::from(c);
                    }
                }
                v
            })
            .collect();
        Ok(LidModel {
            config: config.clone(),
            languages: sorted.iter().map(|(l, _)| l.clone()).collect(),
            features: strs.into_iter().map(|(s, _)| s).collect(),
            counts,
            totals,
            tables: OnceLock::new(),
        })
    }

    /// Trains on every `*.dev` file of a Flores-200 `dev` folder (label = file stem), or only on
    /// `languages` when given.
    pub fn train_flores_dir(
        dir: impl AsRef<Path>,
        languages: Option<&[&str]>,
        config: &LidConfig,
    ) -> Result<LidModel, MetricsError> {
        let dir = dir.as_ref();
        let mut corpus = Vec::new();
        match languages {
            Some(langs) => {
                for l in langs {
                    corpus.push((l.to_string(), read_lines(dir.join(format!("{l}.dev")))?));
                }
            }
            None => {
                let rd = std::fs::read_dir(dir).map_err(|source| MetricsError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                let mut paths: Vec<_> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "dev"))
                    .collect();
                paths.sort();
                for p in paths {
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    corpus.push((stem, read_lines(&p)?));
                }
            }
        }
        if corpus.is_empty() {
            return Err(MetricsError::Lid(format!(
                "no *.dev files in {}",
                dir.display()
            )));
        }
        LidModel::train(&corpus, config)
    }

    fn tables(&self) -> &Tables {
        self.tables.get_or_init(|| {
            let a = self.config.alpha;
            let v = self.features.len() as f64;
            let index = self
                .features
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let cs: Vec<char> = f.chars().collect();
                    (pack(&cs), i as u32)
                })
                .collect();
            let base = self
                .totals
                .iter()
                .map(|&t| a.ln() - (t as f64 + a * v).ln())
                .collect();
            let bonus = self
                .counts
                .iter()
                .map(|cs| {
                    // Entries naming no language (a damaged model file) are ignored rather than
                    // panicking; `validate` reports them.
                    cs.iter()
                        .filter(|&&(l, _)| usize::from(l) < self.totals.len())
                        .map(|&(l, c)| (l, (f64::from(c) + a).ln() - a.ln()))
                        .collect()
                })
                .collect();
            Tables { index, base, bonus }
        })
    }

    /// Checks the model's internal consistency (after deserializing a file).
    pub fn validate(&self) -> Result<(), MetricsError> {
        if self.counts.len() != self.features.len() || self.totals.len() != self.languages.len() {
            return Err(MetricsError::Lid(
                "model arrays have inconsistent lengths".into(),
            ));
        }
        if self
            .counts
            .iter()
            .flatten()
            .any(|&(l, _)| usize::from(l) >= self.languages.len())
        {
            return Err(MetricsError::Lid(
                "model refers to a language index out of range".into(),
            ));
        }
        if self
            .features
            .iter()
            .any(|f| f.is_empty() || f.chars().count() > 5)
            || self.config.alpha.is_nan()
            || self.config.alpha <= 0.0
        {
            return Err(MetricsError::Lid(
                "model has an invalid feature or alpha".into(),
            ));
        }
        Ok(())
    }

    /// Per-language log-likelihoods of `text` (in `languages` order) and the n-grams used.
    pub fn log_likelihoods(&self, text: &str) -> (Vec<f64>, usize) {
        let t = self.tables();
        let mut bonus = vec![0.0f64; t.base.len()];
        let mut n = 0usize;
        for_each_ngram(&normalize(text), self.config.max_order, |k| {
            if let Some(&fi) = t.index.get(&k) {
                n += 1;
                for &(l, b) in &t.bonus[fi as usize] {
                    bonus[usize::from(l)] += b;
                }
            }
        });
        let scores = t
            .base
            .iter()
            .zip(&bonus)
            .map(|(&b, &x)| b * n as f64 + x)
            .collect();
        (scores, n)
    }

    /// The most likely language of `text`, or `None` when it has no known n-gram (e.g. empty).
    pub fn identify(&self, text: &str) -> Option<LidPrediction> {
        let (scores, n) = self.log_likelihoods(text);
        if n == 0 || scores.is_empty() || scores.len() > self.languages.len() {
            return None;
        }
        let mut best = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s > scores[best] {
                best = i;
            }
        }
        let second = scores
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != best)
            .map(|(_, &s)| s)
            .fold(f64::NEG_INFINITY, f64::max);
        Some(LidPrediction {
            lang: self.languages[best].clone(),
            margin: (scores[best] - second) / n as f64,
            n_features: n,
        })
    }

    /// Accuracy per language on labelled lines: `label -> (correct, total)`.
    pub fn evaluate(&self, data: &[(String, Vec<String>)]) -> BTreeMap<String, (usize, usize)> {
        data.par_iter()
            .map(|(lang, lines)| {
                let ok = lines
                    .iter()
                    .filter(|l| self.identify(l).is_some_and(|p| &p.lang == lang))
                    .count();
                (lang.clone(), (ok, lines.len()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_roundtrip() {
        for s in ["a", " th", "日本語", "\u{10ffff}ab", "abcde"] {
            let cs: Vec<char> = s.chars().collect();
            assert_eq!(unpack(pack(&cs)), s);
        }
    }

    #[test]
    fn toy_model_separates_scripts() {
        let corpus = vec![
            (
                "eng".to_string(),
                vec![
                    "the cat sat on the mat".to_string(),
                    "this is the house".to_string(),
                ],
            ),
            (
                "rus".to_string(),
                vec![
                    "кошка сидит на коврике".to_string(),
                    "это мой дом".to_string(),
                ],
            ),
        ];
        let m = LidModel::train(&corpus, &LidConfig::default()).unwrap();
        assert_eq!(m.identify("the mat").unwrap().lang, "eng");
        assert_eq!(m.identify("мой дом").unwrap().lang, "rus");
        assert!(m.identify("  123 ").is_none());
        let json = serde_json::to_string(&m).unwrap();
        let back: LidModel = serde_json::from_str(&json).unwrap();
        back.validate().unwrap();
        assert_eq!(
            back.identify("мой дом").unwrap(),
            m.identify("мой дом").unwrap()
        );
    }
}
