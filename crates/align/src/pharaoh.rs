//! Pharaoh (`i-j` sure, `ipj` possible) and WPT (`sent i j [S|P] [conf]`) alignment formats.

use std::fmt::Write as _;

use crate::error::FormatError;

/// A gold link (0-based after reading).
pub type Link = (u32, u32);

/// Gold alignment of one sentence: sure links ⊆ possible links (possible includes sure, as in Och & Ney).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoldAlignment {
    /// Sure links, sorted, unique.
    pub sure: Vec<Link>,
    /// Possible links including the sure ones, sorted, unique.
    pub possible: Vec<Link>,
}

fn parse_index(s: &str, line: usize, token: &str) -> Result<u32, FormatError> {
    s.parse::<u32>().map_err(|_| FormatError::BadLink {
        line,
        token: token.to_string(),
        reason: "index is not a non-negative integer",
    })
}

fn shift(v: u32, one_based: bool, line: usize, token: &str) -> Result<u32, FormatError> {
    if one_based {
        v.checked_sub(1).ok_or_else(|| FormatError::BadLink {
            line,
            token: token.to_string(),
            reason: "index 0 in a 1-based file",
        })
    } else {
        Ok(v)
    }
}

/// Parses one Pharaoh line into (link, is_sure) pairs. Text up to the last ` ||| ` is ignored (as atools does).
/// `line_no` is 1-based and only used in errors.
pub fn parse_pharaoh_line(
    line: &str,
    one_based: bool,
    line_no: usize,
) -> Result<Vec<(Link, bool)>, FormatError> {
    let body = match line.rfind(" ||| ") {
        Some(p) => &line[p + 5..],
        None => line,
    };
    let mut out = Vec::new();
    for tok in body.split_ascii_whitespace() {
        let (pos, sure) = match tok.find('-') {
            Some(p) => (p, true),
            None => match tok.find('p') {
                Some(p) => (p, false),
                None => {
                    return Err(FormatError::BadLink {
                        line: line_no,
                        token: tok.to_string(),
                        reason: "expected `i-j` or `ipj`",
                    });
                }
            },
        };
        let i = shift(
            parse_index(&tok[..pos], line_no, tok)?,
            one_based,
            line_no,
            tok,
        )?;
        let j = shift(
            parse_index(&tok[pos + 1..], line_no, tok)?,
            one_based,
            line_no,
            tok,
        )?;
        out.push(((i, j), sure));
    }
    Ok(out)
}

/// Reads a Pharaoh file's text (one sentence per line) as plain links; `ipj` links are kept too.
pub fn read_pharaoh(text: &str, one_based: bool) -> Result<Vec<Vec<Link>>, FormatError> {
    lines(text)
        .enumerate()
        .map(|(k, l)| {
            Ok(parse_pharaoh_line(l, one_based, k + 1)?
                .into_iter()
                .map(|(l, _)| l)
                .collect())
        })
        .collect()
}

/// Reads a Pharaoh gold file (`i-j` sure, `ipj` possible).
pub fn read_pharaoh_gold(text: &str, one_based: bool) -> Result<Vec<GoldAlignment>, FormatError> {
    lines(text)
        .enumerate()
        .map(|(k, l)| {
            let mut g = GoldAlignment::default();
            for (link, sure) in parse_pharaoh_line(l, one_based, k + 1)? {
                if sure {
                    g.sure.push(link);
                }
                g.possible.push(link);
            }
            g.sure.sort_unstable();
            g.sure.dedup();
            g.possible.sort_unstable();
            g.possible.dedup();
            Ok(g)
        })
        .collect()
}

/// Splits into lines, dropping one trailing empty line (a final newline) and any `\r`.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let t = text.strip_suffix('\n').unwrap_or(text);
    let empty = text.is_empty();
    t.split('\n')
        .filter(move |_| !empty)
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
}

/// Reads the WPT format `sent i j [S|P] [confidence]` (1-based sentence and token numbers; a missing label means
/// sure; index 0 = NULL links are dropped). Returns `num_sentences` entries (at least the largest sentence number).
pub fn read_wpt(text: &str, num_sentences: usize) -> Result<Vec<GoldAlignment>, FormatError> {
    let mut out: Vec<GoldAlignment> = vec![GoldAlignment::default(); num_sentences];
    for (k, l) in lines(text).enumerate() {
        let line = k + 1;
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let bad = |reason| FormatError::BadWpt {
            line,
            record: l.to_string(),
            reason,
        };
        if f.len() < 3 {
            return Err(bad("expected at least `sent i j`"));
        }
        let num = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| bad("sentence and token numbers must be integers"))
        };
        let (s, i, j) = (num(f[0])?, num(f[1])?, num(f[2])?);
        if s == 0 {
            return Err(bad("sentence numbers are 1-based"));
        }
        let sure = match f.get(3).copied() {
            None | Some("S") | Some("s") => true,
            Some("P") | Some("p") => false,
            Some(_) => return Err(bad("label must be S or P")),
        };
        if i == 0 || j == 0 {
            continue;
        }
        if s > out.len() {
            out.resize(s, GoldAlignment::default());
        }
        let link = ((i - 1) as u32, (j - 1) as u32);
        if sure {
            out[s - 1].sure.push(link);
        }
        out[s - 1].possible.push(link);
    }
    for g in &mut out {
        g.sure.sort_unstable();
        g.sure.dedup();
        g.possible.sort_unstable();
        g.possible.dedup();
    }
    Ok(out)
}

/// Reads a gold file in either format: WPT (`sent i j [S|P]`, always 1-based; detected when the first non-empty
/// line is 3–5 fields whose first three are plain integers) or Pharaoh `i-j`/`ipj` (`one_based` as given).
/// For WPT the sentence count is the largest sentence number.
pub fn read_gold(text: &str, one_based: bool) -> Result<Vec<GoldAlignment>, FormatError> {
    if is_wpt(text) {
        read_wpt(text, 0)
    } else {
        read_pharaoh_gold(text, one_based)
    }
}

/// True when the first non-empty line looks like a WPT record.
pub fn is_wpt(text: &str) -> bool {
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let f: Vec<&str> = first.split_whitespace().collect();
    (3..=5).contains(&f.len()) && f[..3].iter().all(|x| x.bytes().all(|b| b.is_ascii_digit()))
}

/// Formats one sentence's links as 0-based Pharaoh (`i-j` separated by spaces, no newline), in the given order.
pub fn format_links(links: &[Link]) -> String {
    let mut s = String::with_capacity(links.len() * 6);
    for (k, (i, j)) in links.iter().enumerate() {
        if k > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{i}-{j}");
    }
    s
}

/// Writes a corpus as Pharaoh text, one line per sentence (each ending with `\n`).
pub fn write_pharaoh(alignments: &[Vec<Link>]) -> String {
    let mut s = String::new();
    for a in alignments {
        s.push_str(&format_links(a));
        s.push('\n');
    }
    s
}
