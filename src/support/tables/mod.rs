//! Conversions between the Parquet tables stages exchange and the plain structs of the domain crates.

pub mod instruct;

use polars::prelude::DataFrame;

/// The frames `build` makes of `0..items` in ranges of `chunk` (at least one call, so an empty input still gives
/// a table with its columns), one under the other. Stages whose rows depend on one input row alone build this way
/// so that only one range's structs exist at a time, whatever the table size.
pub fn concat_ranges<E: From<polars::prelude::PolarsError>>(
    items: usize,
    chunk: usize,
    mut build: impl FnMut(std::ops::Range<usize>) -> Result<DataFrame, E>,
) -> Result<DataFrame, E> {
    let chunk = chunk.max(1);
    let mut all = build(0..chunk.min(items))?;
    let mut start = chunk;
    while start < items {
        all.vstack_mut_owned(build(start..(start + chunk).min(items))?)?;
        start += chunk;
    }
    Ok(all)
}
