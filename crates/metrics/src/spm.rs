//! SentencePiece tokenization for spBLEU: sacrebleu's `flores101`, `flores200` and `spBLEU-1K` tokenizers, which
//! join `SentencePieceProcessor.EncodeAsPieces(line)` with spaces. sacrebleu downloads the model file; alinea runs
//! offline, so the user gives its local path.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sentencepiece_rust::{ModelType, SentencePieceProcessor};

use crate::MetricsError;

/// sacrebleu's SentencePiece tokenizer names, with the name its signature shows (`spm` is `flores101`'s old name).
pub const SPM_TOKENIZERS: [(&str, &str); 4] = [
    ("flores200", "flores200"),
    ("flores101", "flores101"),
    ("spm", "flores101"),
    ("spBLEU-1K", "spBLEU-1K"),
];

/// The name sacrebleu's signature shows for SPM tokenizer `name`, if it is one.
pub fn spm_signature(name: &str) -> Option<&'static str> {
    SPM_TOKENIZERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

/// A loaded SentencePiece model (cheap to clone).
#[derive(Clone)]
pub struct SpmModel {
    path: PathBuf,
    processor: Arc<SentencePieceProcessor>,
}

impl SpmModel {
    /// Loads a model file.
    pub fn open(path: &Path) -> Result<SpmModel, MetricsError> {
        let bytes = std::fs::read(path).map_err(|source| MetricsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        SpmModel::from_bytes(path, &bytes)
    }

    /// Loads a model from the bytes of the file at `path` (named in errors).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<SpmModel, MetricsError> {
        let bad = |message: String| MetricsError::SpmModel {
            path: path.display().to_string(),
            message,
        };
        let processor = SentencePieceProcessor::from_bytes(bytes)
            .map_err(|e| bad(format!("not a SentencePiece model ({e}); expected e.g. flores200_sacrebleu_tokenizer_spm.model")))?;
        if matches!(processor.model_type(), ModelType::Word | ModelType::Char) {
            return Err(bad(
                "a word or char model; spBLEU uses a unigram or BPE model".into(),
            ));
        }
        if processor.piece_size() == 0 {
            return Err(bad("the model has no pieces".into()));
        }
        Ok(SpmModel {
            path: path.to_path_buf(),
            processor: Arc::new(processor),
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pieces of a line, as `EncodeAsPieces`.
    pub fn pieces(&self, line: &str) -> Vec<String> {
        // The port fails only on Word/Char models, which loading refuses.
        self.processor.encode_pieces(line).unwrap_or_default()
    }

    /// `" ".join(sp.EncodeAsPieces(line))`: what sacrebleu's SPM tokenizers return.
    pub fn tokenize(&self, line: &str) -> String {
        self.pieces(line).join(" ")
    }
}

impl fmt::Debug for SpmModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpmModel({})", self.path.display())
    }
}

impl PartialEq for SpmModel {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && Arc::ptr_eq(&self.processor, &other.processor)
    }
}
