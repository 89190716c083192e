//! The language registry of the stages: the one table lives in the instruction crate, whose templates use the
//! English names ([`alinea_instruct::lang`]); this module re-exports it for the stages.

pub use alinea_instruct::lang::{Language, Registry, builtin};
