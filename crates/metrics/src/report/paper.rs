//! The paper's reported numbers (AlignInstruct, arXiv 2401.05811: Table 1's averages and the per-direction Tables
//! 11–18), embedded from `paper_tables.tsv`, which `extract_paper_tables.py` made from the full text.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The paper's experimental settings, as `paper_reference` names them.
pub const SETTINGS: [&str; 3] = [
    "bloomz+24",
    "bloomz+3:de-nl-ru",
    "bloomz+3:ar-de-fr-nl-ru-zh",
];

/// The model sizes of Table 1 (Tables 11–18 are all BLOOMZ-7b1).
pub const MODELS: [&str; 3] = ["bloomz-7b1", "bloomz-3b", "bloomz-1b1"];

/// One number the paper reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperScore {
    /// One of [`SETTINGS`].
    pub setting: &'static str,
    /// One of [`MODELS`].
    pub model: &'static str,
    /// `no fine-tuning`, `MTInstruct`, `MT+Align`, …
    pub objective: &'static str,
    /// The paper's table number.
    pub table: u32,
    /// `opus100` or `flores200`.
    pub test_set: &'static str,
    /// `src-tgt` in the paper's ISO 639-1 codes; `None` for a group average.
    pub direction: Option<&'static str>,
    /// `en→xx`, `xx→en`, `xx→yy` for a direction; for an average also `zero-shot` or a BLOOMZ+3 bucket.
    pub group: &'static str,
    /// `BLEU`, `chrF++` or `COMET`.
    pub metric: &'static str,
    /// As printed.
    pub value: f64,
}

const TSV: &str = include_str!("paper_tables.tsv");

/// Every number of the embedded tables, in file order (the paper's order).
pub fn all() -> &'static [PaperScore] {
    static SCORES: OnceLock<Vec<PaperScore>> = OnceLock::new();
    SCORES.get_or_init(|| {
        // The file is generated, committed and checked by a unit test: a malformed line is a build defect.
        TSV.lines()
            .skip(1)
            .enumerate()
            .map(|(i, l)| {
                parse_line(l).unwrap_or_else(|e| panic!("paper_tables.tsv:{}: {e}", i + 2))
            })
            .collect()
    })
}

fn parse_line(line: &'static str) -> Result<PaperScore, String> {
    let c: Vec<&'static str> = line.split('\t').collect();
    let [
        setting,
        model,
        objective,
        table,
        test_set,
        direction,
        group,
        metric,
        value,
    ] = c[..]
    else {
        return Err(format!("expected 9 tab-separated fields, got {}", c.len()));
    };
    Ok(PaperScore {
        setting,
        model,
        objective,
        table: table
            .parse()
            .map_err(|_| format!("table `{table}` is not a number"))?,
        test_set,
        direction: (!direction.is_empty()).then_some(direction),
        group,
        metric,
        value: value
            .parse()
            .map_err(|_| format!("value `{value}` is not a number"))?,
    })
}

/// The paper's objectives of a setting and model, in the paper's order.
pub fn objectives(setting: &str, model: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for s in all()
        .iter()
        .filter(|s| s.setting == setting && s.model == model)
    {
        if !out.contains(&s.objective) {
            out.push(s.objective);
        }
    }
    out
}

/// `paper_reference`: off, or the paper setting whose numbers a report lays beside its runs. `true` means
/// `bloomz+24` (the paper's main table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaperReference(pub Option<String>);

impl PaperReference {
    /// The setting, if on.
    pub fn setting(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl Serialize for PaperReference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            None => s.serialize_bool(false),
            Some(x) => s.serialize_str(x),
        }
    }
}

impl<'de> Deserialize<'de> for PaperReference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PaperReference;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "false, true (= \"bloomz+24\") or one of {}",
                    SETTINGS.map(|s| format!("\"{s}\"")).join(", ")
                )
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<PaperReference, E> {
                Ok(PaperReference(b.then(|| SETTINGS[0].to_string())))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PaperReference, E> {
                if SETTINGS.contains(&s) {
                    Ok(PaperReference(Some(s.to_string())))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(s), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_parse_and_hold_every_table() {
        let all = all();
        for t in [1, 11, 12, 13, 14, 15, 16, 17, 18] {
            assert!(all.iter().any(|s| s.table == t), "table {t} missing");
        }
        // Table 1: 3 models × 6 objectives × 4 groups × 3 metrics.
        assert_eq!(all.iter().filter(|s| s.table == 1).count(), 216);
        // Tables 11–13: 24 languages × 2 directions × 2 test sets × 3 metrics each.
        assert_eq!(
            all.iter()
                .filter(|s| s.table == 12 && s.direction.is_some())
                .count(),
            288
        );
        // Table 14 serves both BLOOMZ+3 settings: 30 zero-shot + 12 supervised directions × 3 metrics.
        for setting in &SETTINGS[1..] {
            let n = all
                .iter()
                .filter(|s| s.table == 14 && s.setting == *setting && s.direction.is_some())
                .count();
            assert_eq!(n, 126, "{setting}");
        }
        let get = |table: u32, dir: Option<&str>, test_set: &str, group: &str, metric: &str| {
            all.iter()
                .find(|s| {
                    s.table == table
                        && s.direction == dir
                        && s.test_set == test_set
                        && s.group == group
                        && s.metric == metric
                })
                .map(|s| s.value)
        };
        // Spot checks against the paper's text.
        assert_eq!(
            get(13, Some("en-af"), "opus100", "en→xx", "BLEU"),
            Some(25.0)
        );
        assert_eq!(
            get(12, Some("yi-en"), "flores200", "xx→en", "COMET"),
            Some(43.27)
        );
        assert_eq!(
            get(14, Some("zh-fr"), "opus100", "xx→yy", "BLEU"),
            Some(20.7)
        );
        assert_eq!(get(14, None, "opus100", "unseen→en", "COMET"), Some(67.23));
        assert_eq!(
            get(16, Some("ar-de"), "opus100", "xx→yy", "chrF++"),
            Some(20.8)
        );
        assert_eq!(
            get(15, Some("en-nl"), "opus100", "en→xx", "BLEU"),
            Some(15.5)
        );
        assert_eq!(
            get(15, Some("nl-en"), "opus100", "xx→en", "BLEU"),
            Some(21.8)
        );
        let t1 = |model: &str, objective: &str, group: &str| {
            all.iter()
                .find(|s| {
                    s.table == 1
                        && s.model == model
                        && s.objective == objective
                        && s.test_set == "opus100"
                        && s.group == group
                        && s.metric == "BLEU"
                })
                .map(|s| s.value)
        };
        assert_eq!(
            t1("bloomz-7b1", "MTInstruct", "xx→en"),
            Some(18.59),
            "Table 1's precision, not Table 12's 18.6"
        );
        assert_eq!(t1("bloomz-1b1", "MT+Align→MT", "en→xx"), Some(7.98));
        assert_eq!(
            objectives("bloomz+24", "bloomz-3b"),
            [
                "no fine-tuning",
                "MTInstruct",
                "AlignInstruct",
                "MT+Align",
                "Align→MT",
                "MT+Align→MT"
            ]
        );
        assert_eq!(
            objectives("bloomz+3:de-nl-ru", "bloomz-7b1"),
            ["no fine-tuning", "MTInstruct", "MT+Align"]
        );
    }

    #[test]
    fn paper_reference_accepts_bools_and_setting_names() {
        let parse = |s: &str| serde_json::from_str::<PaperReference>(s);
        assert_eq!(parse("false").unwrap().setting(), None);
        assert_eq!(parse("true").unwrap().setting(), Some("bloomz+24"));
        assert_eq!(
            parse("\"bloomz+3:de-nl-ru\"").unwrap().setting(),
            Some("bloomz+3:de-nl-ru")
        );
        let err = parse("\"bloomz+3\"").unwrap_err().to_string();
        assert!(err.contains("\"bloomz+3:ar-de-fr-nl-ru-zh\""), "{err}");
    }
}
