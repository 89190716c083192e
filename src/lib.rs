//! alinea: a data-pipeline engine with content-addressed caching, built to run the experiments of instruction-tuning
//! LLMs for machine translation in unseen, low-resource languages (AlignInstruct, arXiv 2401.05811).
//!
//! The crate is layered in one direction only:
//! - the engine crate, [`alinea_engine`], knows DAGs, cache keys, the store and the executor, and nothing about
//!   what a stage means;
//! - [`stages`] holds one folder per stage kind, each implementing [`alinea_engine::Stage`];
//! - [`cli`] turns command lines into calls on the two above.
//!
//! What stages share (language registry, table conversions, text readers, model loading) lives in [`support`].

pub mod cli;
pub mod stages;
pub mod support;
