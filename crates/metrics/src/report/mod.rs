//! Pure rendering of the paper's score tables from an in-memory score table: Markdown, CSV and a
//! self-contained HTML page with inline SVG grouped bar charts. Objectives (runs) sit side by
//! side, the best value of every column is marked, and directions are averaged per group and per
//! seen/unseen bucket (BLOOMZ+3 style). [`build_report`] adds what the `report` stage shows beyond these tables:
//! the paper's numbers ([`paper`]), the summary of averages, the distance to the paper and a per-direction appendix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::chart::{PALETTE, grouped_bars};
use crate::html::escape;

pub mod appendix;
mod full;
pub mod paper;
pub mod significance;

pub use full::{
    DirectionScores, FAILURES, METRICS, Report, ReportSpec, SummaryRow, build_report, summarize,
};

/// One score: a run (objective) on a test set for a direction and metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    /// Run or objective name (a column group in the paper's tables).
    pub run: String,
    /// Test set, e.g. `flores200`.
    pub test_set: String,
    /// Direction `src-tgt`, e.g. `eng_Latn-hau_Latn` (codes must not contain `-`).
    pub direction: String,
    /// The language shown in the table (the non-English side).
    pub lang: String,
    /// Metric, e.g. `BLEU`, `chrF++`, `COMET`.
    pub metric: String,
    /// The value; `None` when absent (e.g. COMET without a local model).
    pub value: Option<f64>,
}

/// Rendering options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// Page / document title.
    pub title: String,
    /// The English code used in directions (`eng_Latn`, `en`).
    pub english: String,
    /// Languages seen in pre-training (from the registry) for the seen/unseen buckets.
    pub seen: BTreeSet<String>,
    /// Decimals shown.
    pub decimals: usize,
    /// Significance markers of the per-direction cells (from metrics.compare).
    #[serde(skip)]
    pub marks: significance::Marks,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "alinea report".into(),
            english: "eng_Latn".into(),
            seen: BTreeSet::new(),
            decimals: 2,
            marks: significance::Marks::default(),
        }
    }
}

/// The BLOOMZ+3 bucket of a direction: `en→seen`, `unseen→en`, `seen→unseen`, …
pub fn bucket_of(direction: &str, opts: &ReportOptions) -> String {
    let (src, tgt) = direction.split_once('-').unwrap_or((direction, ""));
    let side = |l: &str| {
        if l == opts.english {
            "en"
        } else if opts.seen.contains(l) {
            "seen"
        } else {
            "unseen"
        }
    };
    format!("{}→{}", side(src), side(tgt))
}

/// `en→xx` or `xx→en` (or `xx→yy`) group of a direction.
pub fn group_of(direction: &str, english: &str) -> &'static str {
    match direction.split_once('-') {
        Some((s, _)) if s == english => "en→xx",
        Some((_, t)) if t == english => "xx→en",
        _ => "xx→yy",
    }
}

/// The distinct items in order of first appearance (the paper's and the caller's order, never sorted), so the
/// output follows the caller's ordering.
pub(crate) fn ordered_unique<T: PartialEq>(it: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in it {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// The arithmetic mean; `None` for no values.
pub(crate) fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// One rendered table: rows = runs, columns = languages then the average.
struct Table {
    caption: String,
    /// The metric of every cell, for the chart's axis.
    metric: String,
    columns: Vec<String>,
    rows: Vec<(String, Vec<Option<f64>>)>,
    /// Significance markers per row and column (empty for tables without per-direction cells).
    marks: Vec<Vec<&'static str>>,
}

impl Table {
    fn mark(&self, row: usize, col: usize) -> &'static str {
        self.marks
            .get(row)
            .and_then(|r| r.get(col))
            .copied()
            .unwrap_or("")
    }
}

impl Table {
    /// Index of the best row per column (highest value; first on ties).
    fn best(&self) -> Vec<Option<usize>> {
        (0..self.columns.len())
            .map(|c| {
                let mut best: Option<(usize, f64)> = None;
                for (r, (_, vals)) in self.rows.iter().enumerate() {
                    if let Some(v) = vals[c]
                        && best.is_none_or(|(_, b)| v > b)
                    {
                        best = Some((r, v));
                    }
                }
                best.map(|(r, _)| r)
            })
            .collect()
    }
}

/// The column a score goes to: its language, except for zero-shot directions, which share their languages
/// (ar-de, ar-fr) and so are named by direction.
fn column_of<'a>(r: &'a ScoreRow, group: &str) -> &'a str {
    if group == "xx→yy" {
        &r.direction
    } else {
        &r.lang
    }
}

fn build_tables(rows: &[ScoreRow], opts: &ReportOptions) -> Vec<Table> {
    let runs = ordered_unique(rows.iter().map(|r| r.run.as_str()));
    let mut tables = Vec::new();
    for ts in ordered_unique(rows.iter().map(|r| r.test_set.as_str())) {
        for metric in ordered_unique(
            rows.iter()
                .filter(|r| r.test_set == ts)
                .map(|r| r.metric.as_str()),
        ) {
            let sel: Vec<&ScoreRow> = rows
                .iter()
                .filter(|r| r.test_set == ts && r.metric == metric)
                .collect();
            for group in ["en→xx", "xx→en", "xx→yy"] {
                let g: Vec<&ScoreRow> = sel
                    .iter()
                    .copied()
                    .filter(|r| group_of(&r.direction, &opts.english) == group)
                    .collect();
                if g.is_empty() {
                    continue;
                }
                let langs = ordered_unique(g.iter().map(|r| column_of(r, group)));
                let mut columns: Vec<String> = langs.iter().map(|s| s.to_string()).collect();
                columns.push("Avg".into());
                let mut trows = Vec::new();
                let mut marks = Vec::new();
                for run in &runs {
                    let cells: Vec<Option<&&ScoreRow>> = langs
                        .iter()
                        .map(|l| {
                            g.iter()
                                .find(|r| r.run == *run && column_of(r, group) == *l)
                        })
                        .collect();
                    marks.push(
                        cells
                            .iter()
                            .map(|c| {
                                c.map_or("", |r| opts.marks.get(run, ts, metric, &r.direction))
                            })
                            .collect(),
                    );
                    let mut vals: Vec<Option<f64>> =
                        cells.iter().map(|c| c.and_then(|r| r.value)).collect();
                    // The average is only shown when the run has every language (else "–").
                    let avg = if vals.iter().all(Option::is_some) {
                        mean(&vals.iter().flatten().copied().collect::<Vec<_>>())
                    } else {
                        None
                    };
                    vals.push(avg);
                    trows.push((run.to_string(), vals));
                }
                tables.push(Table {
                    caption: format!("{ts} · {metric} · {group}"),
                    metric: metric.to_string(),
                    columns,
                    rows: trows,
                    marks,
                });
            }
            // Seen/unseen buckets over all directions of this test set and metric.
            let mut buckets: BTreeMap<String, ()> = BTreeMap::new();
            for r in &sel {
                buckets.insert(bucket_of(&r.direction, opts), ());
            }
            let mut columns = vec!["overall".to_string()];
            columns.extend(buckets.keys().cloned());
            let mut trows = Vec::new();
            for run in &runs {
                let vals = columns
                    .iter()
                    .map(|b| {
                        let v: Vec<f64> = sel
                            .iter()
                            .filter(|r| {
                                r.run == *run
                                    && (b == "overall" || bucket_of(&r.direction, opts) == *b)
                            })
                            .filter_map(|r| r.value)
                            .collect();
                        mean(&v)
                    })
                    .collect();
                trows.push((run.to_string(), vals));
            }
            tables.push(Table {
                caption: format!("{ts} · {metric} · buckets"),
                metric: metric.to_string(),
                columns,
                rows: trows,
                marks: Vec::new(),
            });
        }
    }
    tables
}

/// The title of a chart axis showing `metric`, with its unit: sacrebleu's BLEU and chrF are on a 0–100 scale.
pub fn axis_title(metric: &str) -> String {
    match metric {
        "COMET" => "COMET (score, higher is better)".into(),
        m => format!("{m} (0–100, higher is better)"),
    }
}

/// A value with `d` decimals, `–` when absent.
pub(crate) fn fmt_val(v: Option<f64>, d: usize) -> String {
    v.map_or("–".to_string(), |x| format!("{x:.d$}"))
}

/// Markdown: one table per test set × metric × direction group (rows = runs, columns =
/// languages + Avg) plus a bucket table; the best value per column is in bold.
pub fn render_markdown(rows: &[ScoreRow], opts: &ReportOptions) -> String {
    let mut out = format!("# {}\n", opts.title);
    for line in opts.marks.legend() {
        let _ = write!(out, "\n{line}\n");
    }
    for t in build_tables(rows, opts) {
        let best = t.best();
        let _ = write!(
            out,
            "\n### {}\n\n| run | {} |\n|---|{}\n",
            t.caption,
            t.columns.join(" | "),
            "---:|".repeat(t.columns.len())
        );
        for (ri, (run, vals)) in t.rows.iter().enumerate() {
            let cells: Vec<String> = vals
                .iter()
                .enumerate()
                .map(|(c, v)| {
                    let s = fmt_val(*v, opts.decimals);
                    let mark = t.mark(ri, c);
                    if best[c] == Some(ri) && t.rows.len() > 1 {
                        format!("**{s}**{mark}")
                    } else {
                        format!("{s}{mark}")
                    }
                })
                .collect();
            let _ = writeln!(out, "| {run} | {} |", cells.join(" | "));
        }
    }
    out
}

/// CSV in long form, one line per score, with its group and seen/unseen bucket; values at full
/// precision, empty when absent.
pub fn render_csv(rows: &[ScoreRow], opts: &ReportOptions) -> String {
    render_csv_rows(rows, opts, &[])
}

/// [`render_csv`] with `extra` records (same eight columns) after the scores.
pub(crate) fn render_csv_rows(
    rows: &[ScoreRow],
    opts: &ReportOptions,
    extra: &[[String; 8]],
) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let records = rows
        .iter()
        .map(|r| {
            [
                r.run.clone(),
                r.test_set.clone(),
                r.direction.clone(),
                group_of(&r.direction, &opts.english).to_string(),
                bucket_of(&r.direction, opts),
                r.lang.clone(),
                r.metric.clone(),
                r.value.map_or(String::new(), |v| v.to_string()),
            ]
        })
        .chain(extra.iter().cloned());
    // Writing to memory fails only on a record of another length, which the array type rules out.
    w.write_record([
        "run",
        "test_set",
        "direction",
        "group",
        "bucket",
        "lang",
        "metric",
        "value",
    ])
    .expect("in-memory CSV");
    for r in records {
        w.write_record(&r).expect("in-memory CSV");
    }
    let bytes = w.into_inner().expect("in-memory CSV");
    String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8")
}

/// A self-contained HTML page (no external resources): for each table a grouped bar chart
/// (inline SVG, one colour per run) and the numbers with the best per column in bold.
pub fn render_html(rows: &[ScoreRow], opts: &ReportOptions) -> String {
    let tables = build_tables(rows, opts);
    let runs: Vec<String> = tables
        .first()
        .map(|t| t.rows.iter().map(|(r, _)| r.clone()).collect())
        .unwrap_or_default();
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title><style>\
body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:.5em 0 2em}}\
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
.best{{font-weight:bold;background:#eef6ee}}.legend span{{display:inline-block;margin-right:1em}}\
.sw{{display:inline-block;width:10px;height:10px;margin-right:4px}}</style></head><body>\n<h1>{0}</h1>\n<p class=\"legend\">",
        escape(&opts.title)
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(
            out,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            PALETTE[i % PALETTE.len()],
            escape(r)
        );
    }
    out.push_str("</p>\n");
    for line in opts.marks.legend() {
        let _ = writeln!(out, "<p class=\"marks\">{}</p>", escape(line));
    }
    for t in &tables {
        let best = t.best();
        let _ = write!(
            out,
            "<h2>{}</h2>\n{}\n<table><tr><th>run</th>",
            escape(&t.caption),
            grouped_bars(&t.caption, &axis_title(&t.metric), &t.columns, &t.rows)
        );
        for c in &t.columns {
            let _ = write!(out, "<th>{}</th>", escape(c));
        }
        out.push_str("</tr>");
        for (ri, (run, vals)) in t.rows.iter().enumerate() {
            let _ = write!(out, "<tr><td>{}</td>", escape(run));
            for (c, v) in vals.iter().enumerate() {
                let class = if best[c] == Some(ri) && t.rows.len() > 1 {
                    " class=\"best\""
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "<td{class}>{}{}</td>",
                    fmt_val(*v, opts.decimals),
                    t.mark(ri, c)
                );
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<ScoreRow> {
        let mut v = Vec::new();
        for (run, base) in [("mt-instruct", 10.0), ("align-instruct", 11.0)] {
            for (i, l) in ["hau_Latn", "afr_Latn"].iter().enumerate() {
                for (dir, off) in [
                    (format!("eng_Latn-{l}"), 0.0),
                    (format!("{l}-eng_Latn"), 5.0),
                ] {
                    v.push(ScoreRow {
                        run: run.into(),
                        test_set: "flores200".into(),
                        direction: dir,
                        lang: l.to_string(),
                        metric: "BLEU".into(),
                        value: Some(base + off + i as f64),
                    });
                }
            }
        }
        v.push(ScoreRow {
            run: "mt-instruct".into(),
            test_set: "flores200".into(),
            direction: "eng_Latn-hau_Latn".into(),
            lang: "hau_Latn".into(),
            metric: "COMET".into(),
            value: None,
        });
        v
    }

    fn opts() -> ReportOptions {
        ReportOptions {
            seen: ["eng_Latn", "afr_Latn"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..ReportOptions::default()
        }
    }

    #[test]
    fn buckets() {
        assert_eq!(bucket_of("eng_Latn-hau_Latn", &opts()), "en→unseen");
        assert_eq!(bucket_of("afr_Latn-eng_Latn", &opts()), "seen→en");
        assert_eq!(bucket_of("afr_Latn-hau_Latn", &opts()), "seen→unseen");
    }

    #[test]
    fn markdown_marks_best_and_lists_every_direction() {
        let md = render_markdown(&rows(), &opts());
        assert!(md.contains("### flores200 · BLEU · en→xx"));
        assert!(md.contains("| run | hau_Latn | afr_Latn | Avg |"));
        assert!(
            md.contains("| align-instruct | **11.00** | **12.00** | **11.50** |"),
            "{md}"
        );
        assert!(md.contains("| mt-instruct | – | – |"), "{md}");
        assert!(
            md.contains("overall | en→seen | en→unseen | seen→en | unseen→en"),
            "{md}"
        );
    }

    #[test]
    fn zero_shot_directions_get_a_column_each() {
        let row = |direction: &str, v: f64| ScoreRow {
            run: "mt".into(),
            test_set: "opus100".into(),
            direction: direction.into(),
            lang: direction.split('-').next().unwrap().into(),
            metric: "BLEU".into(),
            value: Some(v),
        };
        let o = ReportOptions {
            english: "en".into(),
            ..opts()
        };
        let md = render_markdown(&[row("ar-de", 1.0), row("ar-fr", 21.0)], &o);
        assert!(md.contains("### opus100 · BLEU · xx→yy"), "{md}");
        assert!(md.contains("| run | ar-de | ar-fr | Avg |"), "{md}");
        assert!(md.contains("| mt | 1.00 | 21.00 | 11.00 |"), "{md}");
    }

    #[test]
    fn csv_and_html_are_complete() {
        let r = rows();
        let csv = render_csv(&r, &opts());
        assert_eq!(csv.lines().count(), r.len() + 1);
        assert!(
            csv.contains(
                "mt-instruct,flores200,eng_Latn-hau_Latn,en→xx,en→unseen,hau_Latn,COMET,\n"
            )
        );
        let html = render_html(&r, &opts());
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        // Self-contained: no external scripts, styles or images.
        assert!(!html.contains("src=") && !html.contains("href="));
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        for d in ["hau_Latn", "afr_Latn", "align-instruct", "class=\"best\""] {
            assert!(html.contains(d), "{d}");
        }
    }
}
