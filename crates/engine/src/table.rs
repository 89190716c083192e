//! Deterministic Parquet encoding of tables.
//!
//! Choice (issue 2): objects are hashed over their *bytes*, so the writer's settings are pinned — zstd at its default level,
//! fixed row-group size, serial column encoding, a single chunk — and `tests/engine.rs` checks that the same
//! table gives identical bytes for any thread count and across runs. The writer records no timestamps; its
//! `created_by` string changes only with the polars version, which is part of the binary (and so of every
//! stage's code fingerprint indirectly through `Cargo.lock`-pinned builds).

use std::io::Cursor;

use polars::prelude::*;

/// Rows per Parquet row group: large enough for good compression, small enough for readers to skip.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Encodes `df` as Parquet with pinned settings.
pub fn encode_parquet(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    df.rechunk_mut();
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .with_row_group_size(Some(ROW_GROUP_ROWS))
        .set_parallel(false)
        .finish(df)?;
    Ok(buf)
}

/// Decodes Parquet bytes into a table.
pub fn decode_parquet(bytes: Vec<u8>) -> PolarsResult<DataFrame> {
    ParquetReader::new(Cursor::new(bytes)).finish()
}
