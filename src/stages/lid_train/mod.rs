//! `lid.train`: trains alinea's character n-gram language identifier on FLORES-200 dev files (no external model),
//! for the off-target analysis of `metrics.score`.

use std::path::{Path, PathBuf};

use alinea_metrics::{LidConfig, LidModel, MetricsError, split_lines_py};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::lang::{Language, Registry};
use alinea_engine::{
    DType, InputSlot, OutputSlot, Outputs, ParamError, PathSlot, Stage, StageCtx, StageError,
    Stats, col,
};

/// Parameters of `lid.train`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Languages (ISO codes from the registry, or FLORES-200 codes such as `rus_Cyrl`); empty = every registry
    /// language.
    pub langs: Vec<String>,
    /// Longest character n-gram (1..=5).
    pub max_order: usize,
    /// n-grams kept per language.
    pub top_k: usize,
    /// Additive smoothing.
    pub alpha: f64,
    /// Measure the accuracy per language on `<root>/devtest` when that folder exists.
    pub evaluate: bool,
    /// Languages beyond the built-in registry.
    pub extra_languages: Vec<Language>,
}

impl Default for Params {
    fn default() -> Self {
        let c = LidConfig::default();
        Params {
            langs: Vec::new(),
            max_order: c.max_order,
            top_k: c.top_k,
            alpha: c.alpha,
            evaluate: true,
            extra_languages: Vec::new(),
        }
    }
}

const ROOT: PathSlot = PathSlot::new("root", "FLORES-200 dataset folder (with dev/)");

/// The stage kind.
pub struct LidTrain;

/// One language to train: its ISO code (when the registry knows it) and its FLORES-200 label.
struct Lang {
    iso: Option<String>,
    flores: String,
}

fn languages(p: &Params) -> Result<Vec<Lang>, StageError> {
    let registry = Registry::with_extra(&p.extra_languages);
    if p.langs.is_empty() {
        return Ok(registry
            .all()
            .iter()
            .map(|l| Lang {
                iso: Some(l.code.clone()),
                flores: l.flores.clone(),
            })
            .collect());
    }
    p.langs
        .iter()
        .map(|code| {
            if let Some(l) = registry.get(code) {
                Ok(Lang {
                    iso: Some(l.code.clone()),
                    flores: l.flores.clone(),
                })
            } else if let Some(l) = registry.all().iter().find(|l| &l.flores == code) {
                Ok(Lang {
                    iso: Some(l.code.clone()),
                    flores: l.flores.clone(),
                })
            } else if code.contains('_') {
                Ok(Lang {
                    iso: None,
                    flores: code.clone(),
                })
            } else {
                Err(StageError::Param {
                    field: "langs".into(),
                    message: registry.require(code).unwrap_err(),
                })
            }
        })
        .collect()
}

/// `(dev folder, devtest folder if any)`: `root` is the `flores200_dataset` folder (with `dev/`) or a folder of
/// `*.dev` files itself.
fn folders(root: &Path) -> (PathBuf, Option<PathBuf>) {
    if root.join("dev").is_dir() {
        let devtest = root.join("devtest");
        (root.join("dev"), devtest.is_dir().then_some(devtest))
    } else {
        (root.to_path_buf(), None)
    }
}

fn dev_file(dir: &Path, l: &Lang) -> PathBuf {
    dir.join(format!("{}.dev", l.flores))
}

fn devtest_file(dir: &Path, l: &Lang) -> PathBuf {
    dir.join(format!("{}.devtest", l.flores))
}

fn metrics_err(e: MetricsError) -> StageError {
    StageError::domain("", e)
}

/// Lines of a verified input file, read as sacrebleu reads text (strict UTF-8, Python `rstrip`).
fn lines(ctx: &StageCtx, path: &Path) -> Result<Vec<String>, StageError> {
    let bytes = ctx.read_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        StageError::BadInput {
            path: path.to_path_buf(),
            line,
            message: format!("invalid UTF-8 at byte offset {}", e.valid_up_to()),
        }
    })?;
    Ok(split_lines_py(text))
}

impl Stage for LidTrain {
    const KIND: &'static str = "lid.train";
    const SUMMARY: &'static str =
        "train the character n-gram language identifier on FLORES-200 dev files";
    const DOC: &'static str = "\
Trains alinea's own language identifier (multinomial naive Bayes over character 1..max_order-grams, no external
model) on FLORES-200 dev files, one label per file (`<flores code>.dev`). `metrics.score` uses it for off-target rates.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[ROOT.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "langs",
            &[
                col("lang", DType::Str),
                col("flores", DType::Str),
                col("train_lines", DType::U64),
                col("train_ngrams", DType::U64),
                col("eval_lines", DType::U64),
                col("eval_correct", DType::U64),
                col("accuracy", DType::F64),
            ],
            "one row per language: training lines and n-grams, devtest evaluation (with evaluate = true)",
        ),
        OutputSlot::blob(
            "model",
            "the model as JSON (alinea_metrics::LidModel), read by metrics.score's `lid` input",
        ),
    ];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if !(1..=5).contains(&p.max_order) {
            return Err(ParamError::new(
                "max_order",
                format!("must be in 1..=5, got {}", p.max_order),
            ));
        }
        if p.top_k == 0 {
            return Err(ParamError::new("top_k", "must be at least 1"));
        }
        if p.alpha.is_nan() || p.alpha <= 0.0 {
            return Err(ParamError::new(
                "alpha",
                format!("must be > 0, got {}", p.alpha),
            ));
        }
        if p.langs.len() == 1 {
            return Err(ParamError::new(
                "langs",
                "the identifier needs at least 2 languages",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(d) = p.langs.iter().find(|l| !seen.insert(l.as_str())) {
            return Err(ParamError::new("langs", format!("`{d}` is listed twice")));
        }
        Ok(())
    }

    fn input_files(p: &Params, _slot: &str, root: &Path) -> Result<Vec<PathBuf>, StageError> {
        let (dev, devtest) = folders(root);
        let mut files = Vec::new();
        for l in languages(p)? {
            let f = dev_file(&dev, &l);
            if !f.is_file() {
                return Err(StageError::BadInput {
                    path: f,
                    line: 0,
                    message: format!("missing FLORES-200 dev file for `{}`", l.flores),
                });
            }
            files.push(f);
            if let Some(dt) = devtest.as_ref().filter(|_| p.evaluate) {
                let f = devtest_file(dt, &l);
                if f.is_file() {
                    files.push(f);
                }
            }
        }
        Ok(files)
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let root = ctx.path(ROOT)?.to_path_buf();
        let (dev, devtest) = folders(&root);
        let langs = languages(p)?;
        let mut stats = Stats::default();
        let mut corpus = Vec::with_capacity(langs.len());
        let mut eval_data = Vec::new();
        for l in &langs {
            let train = lines(ctx, &dev_file(&dev, l))?;
            stats.rows_in += train.len() as u64;
            corpus.push((l.flores.clone(), train));
            if let Some(dt) = devtest.as_ref().filter(|_| p.evaluate) {
                let f = devtest_file(dt, l);
                if f.is_file() {
                    eval_data.push((l.flores.clone(), lines(ctx, &f)?));
                }
            }
        }
        let config = LidConfig {
            max_order: p.max_order,
            top_k: p.top_k,
            alpha: p.alpha,
        };
        let model = LidModel::train(&corpus, &config).map_err(metrics_err)?;
        model.validate().map_err(metrics_err)?;
        let accuracy = model.evaluate(&eval_data);

        let mut col_lang = Vec::new();
        let mut col_flores = Vec::new();
        let (mut train_lines, mut train_ngrams) = (Vec::new(), Vec::new());
        let (mut eval_lines, mut eval_correct, mut acc) = (Vec::new(), Vec::new(), Vec::new());
        for (i, label) in model.languages.iter().enumerate() {
            let l = langs
                .iter()
                .find(|l| &l.flores == label)
                .expect("trained label comes from langs");
            col_lang.push(l.iso.clone());
            col_flores.push(label.clone());
            train_lines.push(
                corpus
                    .iter()
                    .find(|(c, _)| c == label)
                    .map_or(0, |(_, v)| v.len() as u64),
            );
            train_ngrams.push(model.totals[i]);
            let e = accuracy.get(label);
            eval_lines.push(e.map(|&(_, n)| n as u64));
            eval_correct.push(e.map(|&(ok, _)| ok as u64));
            acc.push(e.map(|&(ok, n)| if n == 0 { 0.0 } else { ok as f64 / n as f64 }));
            if let Some(&(ok, n)) = e {
                stats.count("eval_lines", n as u64);
                stats.count("eval_correct", ok as u64);
            }
        }
        let df = DataFrame::new_infer_height(vec![
            Column::new("lang".into(), col_lang),
            Column::new("flores".into(), col_flores),
            Column::new("train_lines".into(), train_lines),
            Column::new("train_ngrams".into(), train_ngrams),
            Column::new("eval_lines".into(), eval_lines),
            Column::new("eval_correct".into(), eval_correct),
            Column::new("accuracy".into(), acc),
        ])?;
        stats.rows_out = df.height() as u64;
        stats.count("features", model.features.len() as u64);
        let blob =
            serde_json::to_vec(&model).map_err(StageError::with("serializing the LID model"))?;
        let mut out = Outputs::table("langs", df, stats);
        out.blob_bytes("model", blob);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_accept_iso_and_flores_codes() {
        let p = Params {
            langs: vec![
                "be".into(),
                "eng_Latn".into(),
                "rus_Cyrl".into(),
                "xyz_Latn".into(),
            ],
            ..Params::default()
        };
        let l = languages(&p).unwrap();
        assert_eq!(l[0].flores, "bel_Cyrl");
        assert_eq!(l[1].iso.as_deref(), Some("en"));
        assert_eq!(l[2].iso.as_deref(), Some("ru"));
        assert!(l[3].iso.is_none());
        let bad = Params {
            langs: vec!["qq".into(), "en".into()],
            ..Params::default()
        };
        assert!(languages(&bad).is_err());
        assert_eq!(languages(&Params::default()).unwrap().len(), 31);
    }

    #[test]
    fn validation_rejects_bad_hyper_parameters() {
        assert!(
            LidTrain::validate(&Params {
                max_order: 6,
                ..Params::default()
            })
            .is_err()
        );
        assert!(
            LidTrain::validate(&Params {
                alpha: 0.0,
                ..Params::default()
            })
            .is_err()
        );
        assert!(
            LidTrain::validate(&Params {
                langs: vec!["en".into()],
                ..Params::default()
            })
            .is_err()
        );
        assert!(
            LidTrain::validate(&Params {
                langs: vec!["en".into(), "en".into()],
                ..Params::default()
            })
            .is_err()
        );
        assert!(LidTrain::validate(&Params::default()).is_ok());
    }
}
