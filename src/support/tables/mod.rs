//! Conversions between the Parquet tables stages exchange and the plain structs of the domain crates.

pub mod instruct;
