//! Deterministic Parquet encoding of tables.
//!
//! Choice (issue 2): objects are hashed over their *bytes*, so the writer's settings are pinned — zstd at its default level,
//! fixed row-group size, serial column encoding, a single chunk — and `tests/engine.rs` checks that the same
//! table gives identical bytes for any thread count and across runs. The writer records no timestamps; its
//! `created_by` string changes only with the polars version, which is part of the binary (and so of every
//! stage's code fingerprint indirectly through `Cargo.lock`-pinned builds).
//!
//! Readers (issue 13): the footer's `ARROW:schema` entry, which pyarrow, pandas, HF datasets and duckdb follow,
//! describes text and binary columns as `large_string` / `large_binary`, not polars' in-memory `string_view` /
//! `binary_view`: pandas cannot convert `list<string_view>` with pyarrow 21 and newer ("Not implemented type for
//! Arrow list to pandas"), and older readers do not know view types at all. The column data is the same Parquet
//! `BYTE_ARRAY`/`STRING` either way; only the hint differs, and polars reads both back as `String`/`Binary`.

use std::io::Cursor;

use polars::prelude::*;
use polars_parquet::write::schema_to_metadata_key;

/// Rows per Parquet row group: large enough for good compression, small enough for readers to skip.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Encodes `df` as Parquet with pinned settings.
pub fn encode_parquet(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    encode_parquet_into(df, &mut buf)?;
    Ok(buf)
}

/// [`encode_parquet`] into a writer (a file of the store's scratch space: a paper-scale table's encoding is
/// gigabytes, which need not sit in memory beside the table).
pub fn encode_parquet_into<W: std::io::Write>(df: &mut DataFrame, w: W) -> PolarsResult<()> {
    df.rechunk_mut();
    ParquetWriter::new(w)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .with_row_group_size(Some(ROW_GROUP_ROWS))
        .set_parallel(false)
        .with_key_value_metadata(Some(portable_arrow_schema(df)))
        .finish(df)?;
    Ok(())
}

/// The footer's `ARROW:schema` entry with every view type replaced by its `large_` form (see the module docs);
/// given explicitly, it takes the place of the one the writer would derive from the in-memory types.
fn portable_arrow_schema(df: &DataFrame) -> KeyValueMetadata {
    let schema = df.schema().to_arrow(CompatLevel::oldest());
    KeyValueMetadata::Static(vec![schema_to_metadata_key(&schema)])
}

/// Decodes Parquet bytes into a table. Malformed bytes (truncated, damaged, not Parquet) are an error, never a
/// panic: the reader asserts on some damage (e.g. `offset + length <= self.length`), so decoding runs under
/// `catch_unwind` and such a panic becomes a `ComputeError` saying what the reader found.
pub fn decode_parquet(bytes: Vec<u8>) -> PolarsResult<DataFrame> {
    let bytes = polars_buffer::Buffer::from_vec(bytes);
    if let Err(msg) = quiet_panics(|| check_value_counts(&bytes)).and_then(|r| r) {
        return Err(PolarsError::ComputeError(
            format!("malformed Parquet: {msg}").into(),
        ));
    }
    quiet_panics(|| ParquetReader::new(Cursor::new(bytes.as_ref())).finish()).unwrap_or_else(
        |msg| {
            Err(PolarsError::ComputeError(
                format!("malformed Parquet (the reader failed: {msg})").into(),
            ))
        },
    )
}

/// Checks, from the footer and the page headers only, that every count the decoder will allocate by agrees with
/// the others: a flat column's pages hold exactly its row group's rows, a nested column's pages exactly its chunk's
/// values. A damaged count (a flipped bit in a header) would otherwise make the reader allocate exabytes and abort
/// the process, which no error handling can catch.
fn check_value_counts(bytes: &polars_buffer::Buffer<u8>) -> Result<(), String> {
    use polars_parquet::parquet::page::CompressedPage;
    use polars_parquet::parquet::read::{get_page_iterator, read_metadata};
    let meta = read_metadata(&mut Cursor::new(bytes.as_ref())).map_err(|e| e.to_string())?;
    let mut rows_total = 0usize;
    for (g, group) in meta.row_groups.iter().enumerate() {
        let rows = group.num_rows();
        rows_total = rows_total.saturating_add(rows);
        for column in group.parquet_columns() {
            let flat = column.descriptor().descriptor.max_rep_level == 0;
            let expected = if flat {
                rows as u64
            } else {
                u64::try_from(column.num_values()).map_err(|_| {
                    format!(
                        "row group {g}: negative value count {}",
                        column.num_values()
                    )
                })?
            };
            let pages = get_page_iterator(column, Cursor::new(bytes.clone()), vec![], bytes.len())
                .map_err(|e| e.to_string())?;
            let mut seen = 0u64;
            for page in pages {
                if let CompressedPage::Data(data) = page.map_err(|e| e.to_string())? {
                    seen = seen.saturating_add(data.num_values() as u64);
                    if seen > expected {
                        break;
                    }
                }
            }
            if seen != expected {
                return Err(format!(
                    "row group {g}, column {}: pages hold {seen} values, the metadata says {expected}",
                    column.descriptor().path_in_schema.join(".")
                ));
            }
        }
    }
    if rows_total != meta.num_rows {
        return Err(format!(
            "row groups hold {rows_total} rows, the footer says {}",
            meta.num_rows
        ));
    }
    Ok(())
}

/// [`decode_parquet`] with the object or file named in the error, e.g. `object <digest> (stage `opus`)`.
pub fn decode_table(
    bytes: Vec<u8>,
    what: impl FnOnce() -> String,
) -> Result<DataFrame, crate::StageError> {
    decode_parquet(bytes).map_err(|source| crate::StageError::BadTable {
        what: what(),
        source,
    })
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err(message)`; the panic hook stays silent for panics of this thread
/// meanwhile, since the panic is reported as an error instead.
fn quiet_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|p| panic_message(p.as_ref()))
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut df = df!(
            "src" => (0..2000).map(|i| format!("сказ {i}")).collect::<Vec<_>>(),
            "n" => (0..2000i64).collect::<Vec<_>>(),
        )
        .unwrap();
        encode_parquet(&mut df).unwrap()
    }

    #[test]
    fn truncated_or_damaged_parquet_is_an_error_naming_the_object_never_a_panic() {
        let bytes = sample();
        assert_eq!(decode_parquet(bytes.clone()).unwrap().height(), 2000);
        let n = bytes.len();
        let footer_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
        let mut damaged = vec![bytes[..n / 2].to_vec(), bytes[..n - 3].to_vec()];
        let mut flipped = bytes.clone();
        for b in &mut flipped[n - 8 - footer_len..n - footer_len] {
            *b ^= 0xFF;
        }
        damaged.push(flipped);
        // Column-chunk bytes past the first page's header: the reader trusts offsets it finds there.
        let mut mid = bytes.clone();
        for b in &mut mid[4..64] {
            *b = 0xFF;
        }
        damaged.push(mid);
        for (i, d) in damaged.into_iter().enumerate() {
            let err = decode_table(d, || format!("object abc{i}"))
                .expect_err("damaged bytes must not decode");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("object abc{i}: not a readable Parquet table: ")),
                "{msg}"
            );
            assert!(
                std::error::Error::source(&err).is_some(),
                "the Parquet error is kept"
            );
        }
    }
}
