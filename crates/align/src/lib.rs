//! Word alignment for alinea.
//!
//! - [`tokenize`](mod@tokenize): alignment tokenization that keeps each token's byte span in the original text;
//! - [`ibm2`]: IBM Model 2 with fast_align's diagonal reparameterization (Dyer et al. 2013), trained in parallel
//!   with rayon and deterministic for any thread count, in a bug-fixed mode ([`Model::Fixed`], the default) and an
//!   upstream-compatible mode ([`Model::FastAlign`]). The default is the fixed maths WITHOUT tension optimisation
//!   (λ fixed at fast_align's 4.0): AER 20.7 (en-fr) / 47.6 (ro-en) on the shared protocol against fast_align's
//!   22.5 / 48.3, while optimising λ (`optimize_tension = true`) converges to the maximum-likelihood λ and scores
//!   23.0 / 48.5; `fast_align` mode keeps upstream's `-d -o -v` exactly;
//! - [`gibbs`]: the Bayesian aligner (Östling & Tiedemann 2016's model class): IBM1 → HMM → HMM + fertility by
//!   collapsed Gibbs sampling, several samplers pooled into per-link marginals, seeded and deterministic for any
//!   thread count, memory linear in the tokens;
//! - [`hmm`]: optional stronger model, a first-order HMM (jump widths, NULL states) trained after IBM Model 2;
//! - [`symmetrize`](mod@symmetrize): atools' intersect / union / grow-diag / grow-diag-final / grow-diag-final-and;
//! - [`pairs`]: gold word/phrase pairs for AlignInstruct, with model scores ([`link_scores`] once per link, then
//!   [`extract_pairs_scored`] from those stored scores; [`extract_pairs`] does both);
//! - [`priors`]: pseudo-counts learned from one corpus's alignments, reused by the Bayesian aligner on another;
//! - [`pharaoh`]: Pharaoh `i-j` / `ipj` and WPT `sent i j S|P` readers and writers;
//! - [`aer`](mod@aer): alignment error rate with sure/possible links.

pub mod aer;
pub mod diag;
pub mod error;
pub mod gibbs;
pub mod hmm;
pub mod ibm2;
pub mod pairs;
pub mod pharaoh;
pub mod priors;
pub mod sentences;
pub mod symmetrize;
pub mod tokenize;

pub use aer::{AerScore, aer};
pub use error::{AlignError, FormatError};
pub use gibbs::{
    BayesModel, BayesParams, align_bayes_bidirectional, align_bayes_bidirectional_with_priors,
    align_bayes_corpus, align_bayes_interned, align_bayes_interned_bidirectional,
};
pub use hmm::{HmmParams, align_hmm_bidirectional};
pub use ibm2::{
    AlignStats, Alignment, Corpus, Ibm2Params, IterationLog, Model, Posteriors, SentenceAlignment,
    SkipReason, Skipped, TranslationTable, align_bidirectional, align_corpus, align_interned,
    length_limit, posteriors_at,
};
pub use pairs::{
    LinkScore, PairError, PairFilter, PairInput, PairParams, PairRow, PairStats, ScoreKind,
    ScoredPairInput, extract_pairs, extract_pairs_scored, link_scores, link_scores_interned,
};
pub use pharaoh::{GoldAlignment, Link};
pub use priors::{Direction, DirectionPriors, PriorKind, Priors};
pub use sentences::{SentenceLinks, Sentences};
pub use symmetrize::{
    Method, symmetrize, symmetrize_posteriors, symmetrize_runs, symmetrize_sentence,
};
pub use tokenize::{Token, TokenizeMode, tokenize};
