//! What stage kinds share, one place each: the language registry, the conversions between stage tables and the
//! domain crates' structs, the text readers of the ingestion stages, and model loading.

pub mod lang;
pub mod model;
pub mod tables;
pub mod text;

#[cfg(test)]
pub mod fuzz;
