//! Conversions between the Parquet tables stages exchange and the plain structs of the domain crates.
//! Stage folders that use a conversion name this folder with `// fingerprint-include: src/tables`.

pub mod instruct;
