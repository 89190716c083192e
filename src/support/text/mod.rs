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

/// Lines of a text file, plus the oddities tolerated while splitting them.
#[derive(Debug, Default)]
pub struct Lines {
    /// The lines, without their line end or a leading BOM.
    pub lines: Vec<String>,
    /// Lines where invalid UTF-8 was replaced.
    pub replaced: u64,
    /// Lines ended by a lone `\r` (classic Mac line ends), which count as line ends as in Python's universal
    /// newlines instead of gluing the whole file into one line.
    pub cr_line_ends: u64,
}

impl Lines {
    /// Counts the tolerated oddities in a stage's stats.
    pub fn count_into(&self, stats: &mut alinea_engine::Stats) {
        stats.count("replaced_invalid_utf8_lines", self.replaced);
        stats.count("cr_only_line_ends", self.cr_line_ends);
    }
}

/// The raw lines of `bytes` and whether each ended by a lone `\r`: `\n`, `\r\n` and a lone `\r` end a line, and
/// a final line without an end still counts.
fn raw_lines(bytes: &[u8]) -> Vec<(&[u8], bool)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push((&bytes[start..i], false));
                start = i + 1;
            }
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.push((&bytes[start..i], false));
                i += 1;
                start = i + 1;
            }
            b'\r' => {
                out.push((&bytes[start..i], true));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push((&bytes[start..], false));
    }
    out
}

/// Splits file content into lines: `\n`, `\r\n` and a lone `\r` end a line (lone ones counted), a UTF-8 BOM at
/// the start is dropped, and a final line without an end still counts.
pub fn split_lines(
    bytes: &[u8],
    path: &Path,
    on_invalid: OnInvalidUtf8,
) -> Result<Lines, StageError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Lines::default();
    for (i, (raw, lone_cr)) in raw_lines(bytes).into_iter().enumerate() {
        out.cr_line_ends += u64::from(lone_cr);
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
    fn lone_cr_ends_lines_and_is_counted() {
        let l = split_lines(b"a\rb\rc", Path::new("f"), OnInvalidUtf8::Error).unwrap();
        assert_eq!(
            (l.lines, l.cr_line_ends),
            (vec!["a".into(), "b".into(), "c".into()], 2)
        );
        let l = split_lines(b"a\r\nb\r\rc\n", Path::new("f"), OnInvalidUtf8::Error).unwrap();
        assert_eq!(l.lines, vec!["a", "b", "", "c"]);
        assert_eq!(
            l.cr_line_ends, 2,
            "b\\r and the empty line's \\r; a\\r\\n is one ordinary end"
        );
        let l = split_lines(b"a\n\n", Path::new("f"), OnInvalidUtf8::Error).unwrap();
        assert_eq!((l.lines, l.cr_line_ends), (vec!["a".into(), "".into()], 0));
        assert!(
            split_lines(b"", Path::new("f"), OnInvalidUtf8::Error)
                .unwrap()
                .lines
                .is_empty()
        );
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
