//! Python-compatible string helpers: sacrebleu's results depend on Python's notion of whitespace
//! (`str.isspace`), which differs from Rust's `char::is_whitespace` (U+001C–U+001F are spaces in
//! Python, and U+0085/U+00A0 handling must match too), so every strip/split goes through here.

use std::path::Path;

use crate::MetricsError;

/// True when Python 3's `str.isspace()` is true for `c` (the set `str.split()`/`str.rstrip()` use).
#[inline]
pub fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python `s.rstrip()`.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Python `s.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python `s.split()` (no argument): runs of whitespace separate, no empty tokens.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|t| !t.is_empty())
}

/// Python `' '.join(s.split())`.
pub fn py_collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, t) in py_split(s).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Splits decoded text into lines exactly as
/// `[l.rstrip() for l in open(p, encoding="utf-8", newline="\n")]` does: only `\n` ends a line
/// (a lone `\r` does not, though `rstrip` later removes a trailing one), a final line without
/// `\n` still counts, and an empty text has no lines.
pub fn split_lines_py(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.split('\n').map(|l| py_rstrip(l).to_string()).collect();
    // `split` yields one empty piece after a final '\n' (or for an empty text) that Python's
    // line iterator does not produce.
    if text.is_empty() || text.ends_with('\n') {
        lines.pop();
    }
    lines
}

/// Reads a UTF-8 text file into lines with sacrebleu's semantics (see [`split_lines_py`]).
/// `-` is standard input; a name ending in `.gz` is gunzipped first (all members, as Python's
/// `gzip.open` reads them; sacrebleu's `smart_open` does the same). Invalid UTF-8 is an error
/// naming the file and line, as Python's strict decoder refuses it.
pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<String>, MetricsError> {
    let path = path.as_ref();
    let io_err = |source| MetricsError::Io {
        path: display_name(path),
        source,
    };
    let bytes = read_bytes(path).map_err(io_err)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let off = e.valid_up_to();
        let line = bytes[..off].iter().filter(|&&b| b == b'\n').count() + 1;
        MetricsError::Utf8 {
            path: display_name(path),
            line,
            byte_offset: off,
        }
    })?;
    Ok(split_lines_py(text))
}

/// How a path is named in messages: `<stdin>` for `-`.
pub fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut raw = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().lock().read_to_end(&mut raw)?;
    } else {
        raw = std::fs::read(path)?;
    }
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
        return Ok(out);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rstrip_matches_python_set() {
        assert_eq!(py_rstrip("ab\u{1c}\u{1f} \u{a0}\u{3000}\r"), "ab");
        // U+200B (zero width space) is not whitespace in Python either.
        assert_eq!(py_rstrip("ab\u{200b}"), "ab\u{200b}");
        assert_eq!(py_rstrip("  ab"), "  ab");
    }

    #[test]
    fn split_lines_like_python() {
        assert_eq!(split_lines_py(""), Vec::<String>::new());
        assert_eq!(split_lines_py("\n"), vec![""]);
        assert_eq!(split_lines_py("a\nb"), vec!["a", "b"]);
        assert_eq!(split_lines_py("a \r\nb\rc\n"), vec!["a", "b\rc"]);
    }

    #[test]
    fn gz_files_read_like_plain_ones() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("alinea-text-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gz = dir.join("x.txt.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all("caf\u{e9} \nb\n".as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_lines(&gz).unwrap(), vec!["caf\u{e9}", "b"]);
        std::fs::write(dir.join("bad.gz"), b"not gzip").unwrap();
        let err = read_lines(dir.join("bad.gz")).unwrap_err().to_string();
        assert!(err.contains("bad.gz"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn split_uses_python_whitespace() {
        let v: Vec<&str> = py_split("a\u{1c}b\u{a0} c\u{200b}d").collect();
        assert_eq!(v, vec!["a", "b", "c\u{200b}d"]);
    }
}
