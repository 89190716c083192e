//! Text readers shared by the ingestion stages: line splitting with UTF-8 validation that names the exact
//! file, line and byte of a fault.

pub mod pairs;

use std::path::Path;

use serde::{Deserialize, Serialize};

use alinea_engine::StageError;

/// What to do with bytes that are not UTF-8.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalidUtf8 {
    /// Fail with `file:line: invalid UTF-8 at byte N`.
    #[default]
    Error,
    /// Replace with U+FFFD and count the affected lines.
    Replace,
}

/// Lines of a text file, plus how many had invalid UTF-8 replaced.
#[derive(Debug, Default)]
pub struct Lines {
    /// The lines, without `\n`, `\r\n` or a leading BOM.
    pub lines: Vec<String>,
    /// Lines where invalid UTF-8 was replaced.
    pub replaced: u64,
}

/// Splits file content into lines: `\n` ends a line, a trailing `\r` is dropped, a UTF-8 BOM at the start is
/// dropped, and a final line without `\n` still counts.
pub fn split_lines(
    bytes: &[u8],
    path: &Path,
    on_invalid: OnInvalidUtf8,
) -> Result<Lines, StageError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Lines::default();
    if bytes.is_empty() {
        return Ok(out);
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(e) => match on_invalid {
                OnInvalidUtf8::Error => {
                    return Err(StageError::BadInput {
                        path: path.to_path_buf(),
                        line: i as u64 + 1,
                        message: format!(
                            "invalid UTF-8 at byte {} of the line (set on_invalid_utf8 = \"replace\" to substitute U+FFFD)",
                            e.valid_up_to() + 1
                        ),
                    });
                }
                OnInvalidUtf8::Replace => {
                    out.replaced += 1;
                    String::from_utf8_lossy(raw).into_owned()
                }
            },
        };
        out.lines.push(line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bom_and_cr_and_keeps_last_line() {
        let l = split_lines(
            b"\xEF\xBB\xBFa\r\nb\nc",
            Path::new("f"),
            OnInvalidUtf8::Error,
        )
        .unwrap();
        assert_eq!(l.lines, vec!["a", "b", "c"]);
        let l = split_lines(b"a\n\nb\n", Path::new("f"), OnInvalidUtf8::Error).unwrap();
        assert_eq!(l.lines, vec!["a", "", "b"]);
    }

    #[test]
    fn invalid_utf8_names_line_and_byte() {
        let err =
            split_lines(b"ok\nab\xFFc\n", Path::new("x.txt"), OnInvalidUtf8::Error).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.txt:2: invalid UTF-8 at byte 3 of the line (set on_invalid_utf8 = \"replace\" to substitute U+FFFD)"
        );
        let l = split_lines(b"ok\nab\xFFc\n", Path::new("x.txt"), OnInvalidUtf8::Replace).unwrap();
        assert_eq!((l.lines[1].as_str(), l.replaced), ("ab\u{FFFD}c", 1));
    }
}
