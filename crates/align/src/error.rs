//! Error types. Every variant names the line/field at fault so that a user can fix the input.

use thiserror::Error;

/// Errors of the alignment entry points.
#[derive(Debug, Error)]
pub enum AlignError {
    /// The two sides of the corpus do not have the same number of sentences.
    #[error("source has {src} sentences but target has {tgt}")]
    LengthMismatch {
        /// Number of source sentences.
        src: usize,
        /// Number of target sentences.
        tgt: usize,
    },
    /// A parameter is out of its valid range.
    #[error("invalid parameter `{field}`: {reason}")]
    InvalidParam {
        /// Name of the parameter (as spelled in the stage config).
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// Every sentence pair was skipped, so there is nothing to train on.
    #[error(
        "no usable sentence pair: all {total} were skipped ({empty} with an empty side, {too_long} too long)"
    )]
    NothingToAlign {
        /// Number of input pairs.
        total: usize,
        /// Pairs skipped for an empty side.
        empty: usize,
        /// Pairs skipped for exceeding `max_sentence_len`.
        too_long: usize,
    },
    /// The alignments to learn priors from do not fit their corpus.
    #[error("priors: pair {pair}: {reason}")]
    PriorInput {
        /// 0-based index of the pair at fault.
        pair: usize,
        /// What is wrong.
        reason: String,
    },
    /// Per-pair cell lists were given for a different number of pairs than the corpus has.
    #[error("{got} cell lists given for a corpus of {expected} pairs")]
    CellCount {
        /// Lists given.
        got: usize,
        /// Pairs in the corpus.
        expected: usize,
    },
    /// A cell lies outside its pair (0-based indices; a skipped pair has no token).
    #[error("pair {pair}: cell {src}-{tgt} is outside its {n_src} × {n_tgt} tokens")]
    CellOutOfRange {
        /// Pair index (0-based).
        pair: usize,
        /// Source index of the cell.
        src: u32,
        /// Target index of the cell.
        tgt: u32,
        /// Source tokens of the pair.
        n_src: usize,
        /// Target tokens of the pair.
        n_tgt: usize,
    },
    /// The run's translation table was freed ([`crate::Alignment::release_table`]) but is needed.
    #[error("the run's translation table was released, and {what} needs it")]
    TableReleased {
        /// What needed it.
        what: &'static str,
    },
    /// The corpus has more distinct words or cells than the 32-bit indices used internally can address.
    #[error("corpus too large: {what} exceeds 2^32-1")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
    },
}

/// Errors when reading alignment files (Pharaoh, WPT).
#[derive(Debug, Error)]
pub enum FormatError {
    /// A link token could not be parsed.
    #[error("line {line}: bad link `{token}`: {reason}")]
    BadLink {
        /// 1-based line number in the input.
        line: usize,
        /// The offending token.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A WPT line does not have the `sent i j [S|P] [conf]` shape.
    #[error("line {line}: bad WPT record `{record}`: {reason}")]
    BadWpt {
        /// 1-based line number in the input.
        line: usize,
        /// The offending line.
        record: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Gold and prediction have different sentence counts where equal counts are required.
    #[error("gold has {gold} sentences but prediction has only {pred}")]
    TooFewPredictions {
        /// Gold sentence count.
        gold: usize,
        /// Prediction sentence count.
        pred: usize,
    },
    /// The two alignments to combine have different sentence counts.
    #[error("mismatched number of sentences: {a} vs {b}")]
    Mismatch {
        /// Sentences in the first alignment.
        a: usize,
        /// Sentences in the second alignment.
        b: usize,
    },
}
