//! Instruction materialization for alinea (issue 4, domain part): the task builders of the AlignInstruct paper and
//! its companions (RECIPE.md §4) on plain Rust structs.
//!
//! * [`build_mt`] (MTInstruct), [`build_align`] (AlignInstruct with negative swapping), [`build_hint`],
//!   [`build_revise`], [`build_mono`] (full/half), [`build_denoise`] (InstructAlign word/span denoising),
//!   [`mix()`] (CrossAlpaca interleaving, experience replay), [`build_curriculum`] (objectives of Tables 1–4 with
//!   phases), [`build_prompts`] (Table 8 inference prompts).
//! * Every builder returns [`BuildOutput`]: rows of the one shared [`InstructRow`] schema plus [`Stats`].
//! * Randomness comes from ChaCha8 streams keyed by (seed, task, pair id): output is identical for any thread count
//!   and a pair's rows do not change when other pairs are added or removed, except where the corpus is consulted
//!   on purpose: negatives taken from other sentences ([`AlignParams::negative_origin`],
//!   [`AlignParams::fallback_to_other`]) and the corpus-wide gold check ([`AlignParams::corpus_wide_check`]).
//!
//! ```
//! use alinea_instruct::*;
//!
//! let pairs = vec![ParallelPair {
//!     pair_id: 7,
//!     src_lang: "en".into(),
//!     tgt_lang: "af".into(),
//!     src: "The cat sleeps.".into(),
//!     tgt: "Die kat slaap.".into(),
//! }];
//! let out = build_mt(&pairs, &paper_language_names(), &TokenCounter::Bytes, &MtParams::default()).unwrap();
//! assert_eq!(out.rows[0].instruction, "Translate from English to Afrikaans.\nEnglish: The cat sleeps.\nAfrikaans:");
//! assert_eq!(out.rows[0].output, " Die kat slaap.");
//! assert_eq!(out.rows[1].direction, "af-en");
//!
//! // Gold pairs from the aligner (token spans, end exclusive) drive AlignInstruct.
//! let tokens = vec![SentenceTokens {
//!     pair_id: 7,
//!     src: whitespace_tokens(&pairs[0].src),
//!     tgt: whitespace_tokens(&pairs[0].tgt),
//! }];
//! let gold = vec![GoldPair {
//!     pair_id: 7, src_start: 1, src_end: 2, tgt_start: 1, tgt_end: 2,
//!     src_phrase: "cat".into(), tgt_phrase: "kat".into(), score: 0.9,
//! }];
//! let corpus = AlignedCorpus::new(&pairs, &tokens, &gold).unwrap();
//! let out = build_align(&corpus, &paper_language_names(), &TokenCounter::Bytes, &AlignParams::default()).unwrap();
//! assert_eq!(out.stats.by_task_label["align"]["true"], 1);
//! assert_eq!(out.stats.by_task_label["align"]["false"], 1);
//! ```

#![warn(missing_docs)]

pub mod align;
pub mod curriculum;
pub mod error;
pub mod export;
pub mod generative;
pub mod lang;
pub mod length;
pub mod mix;
pub mod model;
pub mod row;
pub mod template;

pub use align::{
    AlignBuilder, AlignParams, HintParams, HintSelection, ReviseParams, build_align, build_hint,
    build_revise,
};
pub use curriculum::{CurriculumParams, Objective, PhaseOrder, build_curriculum, curriculum_order};
pub use error::{InstructError, Result};
pub use export::{ExportFormat, PromptCompletion, read_jsonl, write_jsonl};
pub use generative::{
    DenoiseLevels, DenoiseParams, MonoMode, MonoParams, MonoSides, MtParams, PromptParams,
    build_denoise, build_mono, build_mt, build_prompts,
};
pub use lang::{Language, Registry, paper_language_names};
pub use length::{LengthParams, Overflow, TokenCounter, apply_lengths};
pub use mix::{AlpacaRecord, MixParams, load_alpaca, mix, parse_alpaca};
pub use model::{
    AlignedCorpus, AlignedSentence, Directions, GoldPair, LanguageNames, NameFn, ParallelPair,
    SentenceTokens, Side, Token, XSide, whitespace_tokens,
};
pub use row::{BuildOutput, InstructRow, RowFacts, Stats, SwapOrigin, Task};
pub use template::PromptVariant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub(crate) const SALT_ALIGN: u64 = 1;
pub(crate) const SALT_HINT: u64 = 2;
pub(crate) const SALT_REVISE: u64 = 3;
pub(crate) const SALT_DENOISE: u64 = 4;
pub(crate) const SALT_MIX: u64 = 5;
pub(crate) const SALT_CURRICULUM: u64 = 6;

/// An independent random stream per (seed, task salt, key): the key is a pair id (or a phase number), so results
/// never depend on processing order or thread count.
pub(crate) fn rng_for(seed: u64, salt: u64, key: u64) -> ChaCha8Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..16].copy_from_slice(&salt.to_le_bytes());
    s[16..24].copy_from_slice(&key.to_le_bytes());
    ChaCha8Rng::from_seed(s)
}
