//! Table files exchanged with a command: JSON Lines, CSV, TSV or Parquet, through polars' readers and writers.

use std::fmt;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use alinea_engine::StageError;

/// A table file format.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Apache Parquet.
    #[default]
    Parquet,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated, with a header line.
    Csv,
    /// Tab-separated, with a header line.
    Tsv,
}

impl TableFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Jsonl => "jsonl",
            TableFormat::Csv => "csv",
            TableFormat::Tsv => "tsv",
        }
    }
}

impl fmt::Display for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

fn bad_file(path: &Path, format: TableFormat, e: impl fmt::Display) -> StageError {
    StageError::BadInput {
        path: path.to_path_buf(),
        line: 0,
        message: format!("declared output is not a readable {format} table: {e}"),
    }
}

/// Reads a table the command wrote. Column types are inferred from the whole file (not a prefix of it), so the
/// same bytes always give the same table.
pub(crate) fn read_table(format: TableFormat, path: &Path) -> Result<DataFrame, StageError> {
    let err = |e: PolarsError| bad_file(path, format, e);
    let file = std::fs::File::open(path).map_err(StageError::io(path))?;
    match format {
        TableFormat::Parquet => ParquetReader::new(file).finish().map_err(err),
        TableFormat::Jsonl => JsonReader::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .infer_schema_len(None)
            .finish()
            .map_err(err),
        TableFormat::Csv | TableFormat::Tsv => {
            let separator = if format == TableFormat::Tsv { b'\t' } else { b',' };
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(None)
                .with_parse_options(CsvParseOptions::default().with_separator(separator))
                .into_reader_with_file_handle(file)
                .finish()
                .map_err(err)
        }
    }
}

/// Writes an input table for the command in `format`.
pub(crate) fn write_table(
    df: &mut DataFrame,
    format: TableFormat,
    path: &Path,
) -> Result<(), StageError> {
    let mut file = std::fs::File::create(path).map_err(StageError::io(path))?;
    let result = match format {
        TableFormat::Parquet => ParquetWriter::new(&mut file).finish(df).map(|_| ()),
        TableFormat::Jsonl => JsonWriter::new(&mut file)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df),
        TableFormat::Csv | TableFormat::Tsv => {
            let separator = if format == TableFormat::Tsv { b'\t' } else { b',' };
            CsvWriter::new(&mut file)
                .include_header(true)
                .with_separator(separator)
                .finish(df)
        }
    };
    result.map_err(|e| StageError::Other(format!("{}: cannot write the input as {format}: {e}", path.display())))
}
