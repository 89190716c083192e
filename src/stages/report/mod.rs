//! `report`: the paper's score tables from one or more `metrics.score` runs, as Markdown, CSV and a self-contained
//! HTML page with charts, plus a summary table of averages per direction group and seen/unseen bucket.
// fingerprint-include: crates/metrics/src
// fingerprint-include: crates/instruct/src/lang.rs

mod paper;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use alinea_metrics::{
    ReportOptions, ScoreRow, bucket_of, render_csv, render_html, render_markdown,
};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::lang::{Language, Registry};
use alinea_engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError, Stats};
pub use paper::PaperReference;

/// Parameters of `report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Title of the documents.
    pub title: String,
    /// Decimals shown (CSV keeps full precision).
    pub decimals: usize,
    /// Lay the paper's numbers beside the runs: off, `bloomz+24` (also `true`), `bloomz+3:de-nl-ru` or
    /// `bloomz+3:ar-de-fr-nl-ru-zh`.
    pub paper_reference: PaperReference,
    /// The model size whose Table 1 averages are shown (the per-direction tables are BLOOMZ-7b1's).
    pub paper_model: String,
    /// Runs compared direction by direction with one of the paper's objectives: `{ score_mt = "MTInstruct" }`.
    pub paper_match: BTreeMap<String, String>,
    /// Metrics laid out, among `BLEU`, `chrF`, `chrF++`, `COMET`.
    pub metrics: Vec<String>,
    /// Languages beyond the built-in registry (for the seen/unseen buckets).
    pub extra_languages: Vec<Language>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            title: "alinea report".into(),
            decimals: 2,
            paper_reference: PaperReference::default(),
            paper_model: paper::MODELS[0].into(),
            paper_match: BTreeMap::new(),
            metrics: vec!["BLEU".into(), "chrF++".into(), "COMET".into()],
            extra_languages: Vec::new(),
        }
    }
}

/// The stage kind.
pub struct Report;

const METRICS: [(&str, &str); 4] = [
    ("BLEU", "bleu"),
    ("chrF", "chrf"),
    ("chrF++", "chrfpp"),
    ("COMET", "comet"),
];

/// One direction of one run, as read from a scores table.
#[derive(Debug, Clone)]
struct DirRow {
    run: String,
    test_set: String,
    direction: String,
    lang: String,
    segments: Option<u64>,
    values: [Option<f64>; 4],
    failures: [Option<f64>; 4],
}

const FAILURES: [(&str, &str); 4] = [
    ("off-target", "off_target_rate"),
    ("source copy", "source_copy_rate"),
    ("oscillation", "oscillation_rate"),
    ("length ratio", "length_ratio"),
];

fn f64_col(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<f64>>>, StageError> {
    if !df.get_column_names().iter().any(|c| c.as_str() == name) {
        return Ok(None);
    }
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(Some(c.f64()?.iter().collect()))
}

fn str_col(df: &DataFrame, run: &str, name: &str) -> Result<Vec<String>, StageError> {
    let c = df.column(name).map_err(|_| StageError::Input {
        slot: "scores".into(),
        message: format!("table of `{run}` has no column `{name}`: not a metrics.score table"),
    })?;
    let c = c.cast(&DataType::String)?;
    Ok(c.str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect())
}

fn read_rows(run: &str, df: &DataFrame) -> Result<Vec<DirRow>, StageError> {
    let (ts, dir, lang) = (
        str_col(df, run, "test_set")?,
        str_col(df, run, "direction")?,
        str_col(df, run, "lang")?,
    );
    let values: Vec<Option<Vec<Option<f64>>>> = METRICS
        .iter()
        .map(|(_, c)| f64_col(df, c))
        .collect::<Result<_, _>>()?;
    let failures: Vec<Option<Vec<Option<f64>>>> = FAILURES
        .iter()
        .map(|(_, c)| f64_col(df, c))
        .collect::<Result<_, _>>()?;
    let segments: Option<Vec<Option<u64>>> = if df
        .get_column_names()
        .iter()
        .any(|c| c.as_str() == "segments")
    {
        Some(
            df.column("segments")?
                .cast(&DataType::UInt64)?
                .u64()?
                .iter()
                .collect(),
        )
    } else {
        None
    };
    Ok((0..df.height())
        .map(|i| DirRow {
            run: run.to_string(),
            test_set: ts[i].clone(),
            direction: dir[i].clone(),
            lang: lang[i].clone(),
            segments: segments.as_ref().and_then(|s| s[i]),
            values: std::array::from_fn(|m| values[m].as_ref().and_then(|v| v[i])),
            failures: std::array::from_fn(|m| failures[m].as_ref().and_then(|v| v[i])),
        })
        .collect())
}

fn group_of(direction: &str, english: &str) -> &'static str {
    match direction.split_once('-') {
        Some((s, _)) if s == english => "en→xx",
        Some((_, t)) if t == english => "xx→en",
        _ => "xx→yy",
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn fmt(v: Option<f64>, d: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.d$}"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Summary rows: (source, run, test_set, metric, group, directions, mean).
type Summary = Vec<(String, String, String, String, String, u64, Option<f64>)>;

/// Averages per run, test set, metric and direction group / bucket.
fn summarize(rows: &[ScoreRow], opts: &ReportOptions) -> Summary {
    let keys = ordered_unique(
        rows.iter()
            .map(|r| (r.run.clone(), r.test_set.clone(), r.metric.clone())),
    );
    let mut out = Vec::new();
    for (run, ts, metric) in keys {
        let sel: Vec<&ScoreRow> = rows
            .iter()
            .filter(|r| r.run == run && r.test_set == ts && r.metric == metric)
            .collect();
        let mut groups: Vec<String> = vec!["overall".into()];
        let mut seen = BTreeSet::new();
        for g in sel
            .iter()
            .map(|r| group_of(&r.direction, &opts.english).to_string())
            .chain(sel.iter().map(|r| bucket_of(&r.direction, opts)))
        {
            if seen.insert(g.clone()) {
                groups.push(g);
            }
        }
        for g in groups {
            let members: Vec<&&ScoreRow> = sel
                .iter()
                .filter(|r| {
                    g == "overall"
                        || group_of(&r.direction, &opts.english) == g
                        || bucket_of(&r.direction, opts) == g
                })
                .collect();
            let vals: Vec<f64> = members.iter().filter_map(|r| r.value).collect();
            // A mean over only some directions would mislead: null unless every direction has the metric.
            let m = if vals.len() == members.len() {
                mean(&vals)
            } else {
                None
            };
            let source = if run.starts_with(PAPER_RUN) {
                "paper-same-directions"
            } else {
                "alinea"
            };
            out.push((
                source.into(),
                run.clone(),
                ts.clone(),
                metric.clone(),
                g,
                members.len() as u64,
                m,
            ));
        }
    }
    out
}

/// Run names of the paper's numbers start with this.
const PAPER_RUN: &str = "paper: ";

/// The paper's test set a run's test set compares with, by name: `opus…` → opus100, `flores…` → flores200.
fn paper_test_set(test_set: &str) -> Option<&'static str> {
    let t = test_set.to_lowercase();
    if t.contains("opus") {
        Some("opus100")
    } else if t.contains("flores") {
        Some("flores200")
    } else {
        None
    }
}

/// A paper direction (`en-af`) in the codes of the report's runs (`eng_Latn-afr_Latn` when they use Flores codes).
fn run_direction(paper_direction: &str, english: &str, registry: &Registry) -> Option<String> {
    if english == "en" {
        return Some(paper_direction.to_string());
    }
    let (s, t) = paper_direction.split_once('-')?;
    let flores = |c: &str| registry.get(c).map(|l| l.flores.clone());
    Some(format!("{}-{}", flores(s)?, flores(t)?))
}

/// Whether a direction counts in a group or bucket of the paper's averages.
fn in_group(direction: &str, group: &str, opts: &ReportOptions) -> bool {
    let g = group_of(direction, &opts.english);
    group == "overall"
        || g == group
        || (group == "zero-shot" && g == "xx→yy")
        || bucket_of(direction, opts) == group
}

/// The distinct items in order of first appearance (the paper's and the caller's order, never sorted).
fn ordered_unique<T: PartialEq>(it: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in it {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// The paper's per-direction numbers (BLOOMZ-7b1, Tables 11–18) for the directions the runs have, as extra runs
/// named `paper: <objective>`, so that every table shows them beside the runs.
fn paper_rows(
    setting: &str,
    dirs: &[DirRow],
    metrics: &[&str],
    english: &str,
    registry: &Registry,
) -> Vec<ScoreRow> {
    let mut out = Vec::new();
    for ts in ordered_unique(dirs.iter().map(|r| r.test_set.as_str())) {
        let Some(pts) = paper_test_set(ts) else {
            continue;
        };
        let ours: BTreeMap<&str, &str> = dirs
            .iter()
            .filter(|r| r.test_set == ts)
            .map(|r| (r.direction.as_str(), r.lang.as_str()))
            .collect();
        for s in paper::all().iter().filter(|s| {
            s.setting == setting
                && s.model == paper::MODELS[0]
                && s.test_set == pts
                && metrics.contains(&s.metric)
        }) {
            let Some(direction) = s
                .direction
                .and_then(|d| run_direction(d, english, registry))
            else {
                continue;
            };
            if let Some(lang) = ours.get(direction.as_str()) {
                out.push(ScoreRow {
                    run: format!("{PAPER_RUN}{}", s.objective),
                    test_set: ts.to_string(),
                    direction,
                    lang: lang.to_string(),
                    metric: s.metric.to_string(),
                    value: Some(s.value),
                });
            }
        }
    }
    out
}

/// How many of the paper's directions of a setting and test set a group or bucket average covers.
fn paper_direction_count(setting: &str, test_set: &str, group: &str, opts: &ReportOptions) -> u64 {
    let dirs = ordered_unique(
        paper::all()
            .iter()
            .filter(|s| {
                s.setting == setting && s.test_set == test_set && s.model == paper::MODELS[0]
            })
            .filter_map(|s| s.direction),
    );
    dirs.iter().filter(|d| in_group(d, group, opts)).count() as u64
}

/// The paper's printed averages of a setting and model, as summary rows (source `paper`).
fn paper_summary(setting: &str, model: &str, metrics: &[&str], opts: &ReportOptions) -> Summary {
    paper::all()
        .iter()
        .filter(|s| {
            s.setting == setting
                && s.model == model
                && s.direction.is_none()
                && metrics.contains(&s.metric)
        })
        .map(|s| {
            let n = paper_direction_count(setting, s.test_set, s.group, opts);
            (
                "paper".into(),
                format!("{PAPER_RUN}{}", s.objective),
                s.test_set.into(),
                s.metric.into(),
                s.group.into(),
                n,
                Some(s.value),
            )
        })
        .collect()
}

/// A Markdown and an HTML table with the same header and cells; the first `text_columns` are left-aligned.
fn both_tables(
    caption: &str,
    head: &[String],
    text_columns: usize,
    rows: &[Vec<String>],
    note: &str,
) -> (String, String) {
    let align = format!(
        "{}{}",
        "---|".repeat(text_columns),
        "---:|".repeat(head.len() - text_columns)
    );
    let mut md = format!("\n### {caption}\n\n| {} |\n|{align}\n", head.join(" | "));
    let mut html = format!("<h2>{}</h2>\n<table><tr>", esc(caption));
    for h in head {
        let _ = write!(html, "<th>{}</th>", esc(h));
    }
    html.push_str("</tr>");
    for cells in rows {
        let _ = writeln!(md, "| {} |", cells.join(" | "));
        html.push_str("<tr>");
        for c in cells {
            let _ = write!(html, "<td>{}</td>", esc(c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>\n");
    if !note.is_empty() {
        let _ = write!(md, "\n{note}\n");
        let _ = writeln!(html, "<p>{}</p>", esc(note));
    }
    (md, html)
}

/// Columns of the paper-reference tables: directions with English, then the zero-shot buckets as the paper's Table 5.
const PAPER_GROUP_ORDER: [&str; 11] = [
    "en→xx",
    "xx→en",
    "zero-shot",
    "seen→seen",
    "seen→unseen",
    "unseen→seen",
    "unseen→unseen",
    "en→seen",
    "en→unseen",
    "seen→en",
    "unseen→en",
];

/// The paper-reference section: per paper test set and metric, the paper's averages (Table 1 for BLOOMZ+24, the
/// bucket rows of Tables 14–18 for BLOOMZ+3) beside the same averages of this report's runs.
fn paper_section(
    setting: &str,
    model: &str,
    summary: &Summary,
    metrics: &[&str],
    d: usize,
) -> (String, String) {
    let (mut md, mut html) = (String::new(), String::new());
    let paper_avgs: Vec<_> = summary.iter().filter(|s| s.0 == "paper").collect();
    for pts in ordered_unique(paper_avgs.iter().map(|s| s.2.as_str())) {
        let runs: Vec<(&str, &str)> = ordered_unique(
            summary
                .iter()
                .filter(|s| s.0 == "alinea" && paper_test_set(&s.2) == Some(pts))
                .map(|s| (s.1.as_str(), s.2.as_str())),
        );
        for metric in metrics {
            let sel: Vec<_> = paper_avgs
                .iter()
                .filter(|s| s.2 == pts && s.3 == *metric)
                .collect();
            if sel.is_empty() {
                continue;
            }
            let mut groups = ordered_unique(sel.iter().map(|s| s.4.as_str()));
            groups.sort_by_key(|g| PAPER_GROUP_ORDER.iter().position(|x| x == g));
            let mut head = vec!["run".to_string()];
            head.extend(groups.iter().map(|g| g.to_string()));
            let mut rows = Vec::new();
            for objective in ordered_unique(sel.iter().map(|s| s.1.as_str())) {
                let mut cells = vec![objective.to_string()];
                cells.extend(groups.iter().map(|g| {
                    fmt(
                        sel.iter()
                            .find(|s| s.1 == objective && s.4 == *g)
                            .and_then(|s| s.6),
                        d,
                    )
                }));
                rows.push(cells);
            }
            let mut partial = false;
            for (run, ts) in &runs {
                let label = if runs.iter().filter(|r| r.0 == *run).count() > 1 {
                    format!("{run} · {ts}")
                } else {
                    run.to_string()
                };
                let mut cells = vec![label];
                for g in &groups {
                    let n = sel.iter().find(|s| s.4 == *g).map_or(0, |s| s.5);
                    let our_group = if *g == "zero-shot" { "xx→yy" } else { g };
                    let ours = summary.iter().find(|s| {
                        s.0 == "alinea"
                            && s.1 == *run
                            && s.2 == *ts
                            && s.3 == *metric
                            && s.4 == our_group
                    });
                    cells.push(match ours {
                        None => "–".into(),
                        Some(o) if o.5 == n => fmt(o.6, d),
                        Some(o) => {
                            partial = true;
                            format!("{} ({}/{n})", fmt(o.6, d), o.5)
                        }
                    });
                }
                rows.push(cells);
            }
            let tables = if setting == "bloomz+24" {
                "Table 1"
            } else {
                "Tables 14–18"
            };
            let caption = format!(
                "Paper reference · {pts} · {metric}: {setting}, {model} ({tables}) beside this report's runs"
            );
            let note = match (runs.is_empty(), partial) {
                (true, _) => format!(
                    "No run scored a test set named like `{pts}`, so only the paper's numbers are shown."
                ),
                (false, true) => {
                    "(k/n): the run's average covers k of the n directions the paper averages over."
                        .to_string()
                }
                (false, false) => String::new(),
            };
            let (m, h) = both_tables(&caption, &head, 1, &rows, &note);
            md.push_str(&m);
            html.push_str(&h);
        }
    }
    (md, html)
}

/// For each run matched with a paper objective: its scores, the paper's and the difference, direction by
/// direction, with the mean difference (also returned as summary rows, source `distance`).
fn distance_section(
    matches: &BTreeMap<String, String>,
    rows: &[ScoreRow],
    metrics: &[&str],
    english: &str,
    d: usize,
) -> (String, String, Summary) {
    let (mut md, mut html, mut summary) = (String::new(), String::new(), Summary::new());
    for (run, objective) in matches {
        let paper_run = format!("{PAPER_RUN}{objective}");
        let value = |r: &str, ts: &str, dir: &str, m: &str| {
            rows.iter()
                .find(|x| x.run == r && x.test_set == ts && x.direction == dir && x.metric == m)
                .and_then(|x| x.value)
        };
        for ts in ordered_unique(
            rows.iter()
                .filter(|r| r.run == *run)
                .map(|r| r.test_set.as_str()),
        ) {
            let dirs: Vec<&str> = ordered_unique(
                rows.iter()
                    .filter(|r| r.run == paper_run && r.test_set == ts)
                    .map(|r| r.direction.as_str()),
            );
            let dirs: Vec<&str> = dirs
                .into_iter()
                .filter(|dir| {
                    rows.iter()
                        .any(|r| r.run == *run && r.test_set == ts && r.direction == *dir)
                })
                .collect();
            if dirs.is_empty() {
                continue;
            }
            let mut head = vec!["direction".to_string()];
            for m in metrics {
                head.extend([format!("{m} {run}"), format!("{m} paper"), format!("{m} Δ")]);
            }
            let mut table = Vec::new();
            let mut deltas: Vec<Vec<(&str, f64)>> = vec![Vec::new(); metrics.len()];
            for dir in &dirs {
                let mut cells = vec![dir.to_string()];
                for (i, m) in metrics.iter().enumerate() {
                    let (ours, theirs) = (value(run, ts, dir, m), value(&paper_run, ts, dir, m));
                    let delta = ours.zip(theirs).map(|(a, b)| a - b);
                    if let Some(x) = delta {
                        deltas[i].push((*dir, x));
                    }
                    cells.extend([
                        fmt(ours, d),
                        fmt(theirs, d),
                        delta.map_or("–".into(), |x| format!("{x:+.d$}")),
                    ]);
                }
                table.push(cells);
            }
            let mut mean_row = vec!["mean".to_string()];
            for (i, m) in metrics.iter().enumerate() {
                let mean_all = mean(&deltas[i].iter().map(|x| x.1).collect::<Vec<_>>());
                mean_row.extend([
                    "".into(),
                    "".into(),
                    mean_all.map_or("–".into(), |x| format!("{x:+.d$}")),
                ]);
                for group in ["overall", "en→xx", "xx→en", "xx→yy"] {
                    let sel: Vec<f64> = deltas[i]
                        .iter()
                        .filter(|(dir, _)| group == "overall" || group_of(dir, english) == group)
                        .map(|x| x.1)
                        .collect();
                    if !sel.is_empty() {
                        summary.push((
                            "distance".into(),
                            run.clone(),
                            ts.to_string(),
                            m.to_string(),
                            group.into(),
                            sel.len() as u64,
                            mean(&sel),
                        ));
                    }
                }
            }
            table.push(mean_row);
            let caption = format!(
                "Distance to the paper · {run} vs the paper's {objective} (BLOOMZ-7b1) · {ts}"
            );
            let (m, h) = both_tables(
                &caption,
                &head,
                1,
                &table,
                "Δ = this run minus the paper, per direction the paper reports.",
            );
            md.push_str(&m);
            html.push_str(&h);
        }
    }
    (md, html, summary)
}

/// The per-direction appendix (Markdown and HTML): every direction of every run with its scores and failure rates.
fn directions_section(dirs: &[DirRow], d: usize) -> (String, String) {
    let head: Vec<String> = ["run", "test set", "direction", "segments"]
        .into_iter()
        .chain(METRICS.iter().map(|(m, _)| *m))
        .chain(FAILURES.iter().map(|(f, _)| *f))
        .map(str::to_string)
        .collect();
    let rows: Vec<Vec<String>> = dirs
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.run.clone(),
                r.test_set.clone(),
                r.direction.clone(),
                r.segments.map_or("–".into(), |s| s.to_string()),
            ];
            cells.extend(r.values.iter().map(|v| fmt(*v, d)));
            // Rates as percentages; the length ratio as a ratio.
            cells.extend(r.failures.iter().enumerate().map(|(i, v)| {
                if i < 3 {
                    v.map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
                } else {
                    fmt(*v, 3)
                }
            }));
            cells
        })
        .collect();
    both_tables("Directions", &head, 3, &rows, "")
}

impl Stage for Report {
    const KIND: &'static str = "report";
    const SUMMARY: &'static str =
        "the paper's score tables as Markdown, CSV and self-contained HTML with charts";
    const DOC: &'static str = "\
Lays out the scores of one or more `metrics.score` stages as the paper's tables: per test set and metric, one table
per direction group (en→xx, xx→en) with languages as columns and the average, the BLOOMZ+3 seen/unseen buckets
(seen = `bloom_seen` in the registry), runs side by side with the best value of every column marked, grouped bar
charts, and a per-direction appendix with the failure analysis. The run name of a scores table is the name of the
stage that made it (e.g. `score_mt`, `score_align`, or matrix instances `score[*]`).

Inputs:
  scores   the `scores` tables of metrics.score stages (any number: `[\"score_mt\", \"score_align\"]` or \"score[*]\")

Parameters (defaults):
  title = \"alinea report\"
  decimals = 2                 decimals shown (the CSV keeps full precision)
  paper_reference = false      lay the paper's numbers beside the runs: \"bloomz+24\" (or true; Table 1 and Tables
                               11–13), \"bloomz+3:de-nl-ru\" or \"bloomz+3:ar-de-fr-nl-ru-zh\" (Tables 14–18). A run's
                               test set is compared with the paper's OPUS-100 numbers when its name contains `opus`,
                               with Flores-200's when it contains `flores`. The paper's per-direction scores (BLOOMZ-7b1)
                               join every table as runs `paper: <objective>` for the directions the runs have, and a
                               section sets the paper's printed averages beside the runs' (marking partial coverage)
  paper_model = \"bloomz-7b1\"   whose Table 1 averages are shown (bloomz-7b1, bloomz-3b, bloomz-1b1)
  paper_match = {}             runs to compare direction by direction with a paper objective, e.g.
                               { score_mt = \"MTInstruct\", score_align = \"MT+Align\" }: ours, paper and Δ per direction
  metrics = [\"BLEU\", \"chrF++\", \"COMET\"]   among BLEU, chrF, chrF++, COMET; COMET is left out when no run has it
  extra_languages = []

Outputs:
  `summary` (main table): source, run, test_set, metric, group (overall, en→xx, xx→en, xx→yy, or a bucket such as
             en→unseen), directions, mean (null unless every direction of the group has the metric). source is
             alinea (a run), paper (the paper's printed averages), paper-same-directions (the paper's numbers
             averaged over the runs' directions only) or distance (mean Δ of a `paper_match` run)
  `report.md`, `report.csv` (long form: run,test_set,direction,group,bucket,lang,metric,value), `report.html` (blobs;
             `alinea report STAGE -o DIR` writes them to DIR).";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[InputSlot {
        name: "scores",
        kind: SlotKind::Tables,
        required: true,
        doc: "scores tables of metrics.score stages",
    }];

    fn validate(p: &Params) -> Result<(), String> {
        if p.decimals > 6 {
            return Err(format!("decimals must be at most 6, got {}", p.decimals));
        }
        if p.metrics.is_empty() {
            return Err("metrics: name at least one of BLEU, chrF, chrF++, COMET".into());
        }
        for m in &p.metrics {
            if !METRICS.iter().any(|(n, _)| n == m) {
                return Err(format!(
                    "metrics: unknown `{m}` (allowed: BLEU, chrF, chrF++, COMET)"
                ));
            }
        }
        if !paper::MODELS.contains(&p.paper_model.as_str()) {
            return Err(format!(
                "paper_model: unknown `{}` (allowed: {})",
                p.paper_model,
                paper::MODELS.join(", ")
            ));
        }
        match p.paper_reference.setting() {
            None if !p.paper_match.is_empty() => Err(
                "paper_match needs paper_reference (which of the paper's settings to compare with)"
                    .into(),
            ),
            None => Ok(()),
            Some(setting) => {
                let allowed = paper::objectives(setting, paper::MODELS[0]);
                for (run, objective) in &p.paper_match {
                    if !allowed.contains(&objective.as_str()) {
                        return Err(format!(
                            "paper_match.{run}: `{objective}` has no per-direction table in {setting} (allowed: {})",
                            allowed.join(", ")
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let tables = ctx.tables("scores")?;
        let mut dirs = Vec::new();
        let mut stats = Stats::default();
        for (run, df) in &tables {
            stats.rows_in += df.height() as u64;
            dirs.extend(read_rows(run, df)?);
        }
        let registry = Registry::with_extra(&p.extra_languages);
        let english = if dirs
            .iter()
            .any(|r| r.direction.split('-').any(|c| c == "eng_Latn"))
        {
            "eng_Latn"
        } else {
            "en"
        };
        let seen: BTreeSet<String> = registry
            .all()
            .iter()
            .filter(|l| l.bloom_seen)
            .flat_map(|l| [l.code.clone(), l.flores.clone()])
            .collect();
        let opts = ReportOptions {
            title: p.title.clone(),
            english: english.into(),
            seen,
            decimals: p.decimals,
        };

        for run in p.paper_match.keys() {
            if !tables.iter().any(|(name, _)| name == run) {
                let names: Vec<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
                return Err(StageError::Param {
                    field: format!("paper_match.{run}"),
                    message: format!(
                        "no scores input is named `{run}` (inputs: {})",
                        names.join(", ")
                    ),
                });
            }
        }

        let comet_present = dirs.iter().any(|r| r.values[3].is_some());
        let shown: Vec<&str> = METRICS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| p.metrics.iter().any(|x| x == n) && (*n != "COMET" || comet_present))
            .collect();
        let mut rows = Vec::new();
        for (m, (name, _)) in METRICS.iter().enumerate() {
            if !shown.contains(name) {
                continue;
            }
            for r in &dirs {
                rows.push(ScoreRow {
                    run: r.run.clone(),
                    test_set: r.test_set.clone(),
                    direction: r.direction.clone(),
                    lang: r.lang.clone(),
                    metric: name.to_string(),
                    value: r.values[m],
                });
            }
        }
        let setting = p.paper_reference.setting();
        if let Some(setting) = setting {
            rows.extend(paper_rows(setting, &dirs, &shown, english, &registry));
        }
        // Runs first, then metric, in the caller's order (the renderers keep first-met order).
        rows.sort_by_key(|r| p.metrics.iter().position(|m| *m == r.metric));

        let mut md = render_markdown(&rows, &opts);
        let mut csv = render_csv(&rows, &opts);
        let mut html = render_html(&rows, &opts);
        let mut extra_md = String::new();
        let mut extra_html = String::new();
        if p.metrics.iter().any(|m| m == "COMET") && !comet_present {
            extra_md.push_str("\nCOMET: absent (no run was given a local COMET command).\n");
            extra_html.push_str("<p>COMET: absent (no run was given a local COMET command).</p>\n");
        }
        let mut summary = summarize(&rows, &opts);
        if let Some(setting) = setting {
            let paper_opts = ReportOptions {
                english: "en".into(),
                ..opts.clone()
            };
            let printed = paper_summary(setting, &p.paper_model, &shown, &paper_opts);
            for s in &printed {
                let _ = writeln!(
                    csv,
                    "{},{},,{},,avg{},{},{}",
                    s.1,
                    s.2,
                    s.4,
                    s.5,
                    s.3,
                    s.6.unwrap_or(f64::NAN)
                );
            }
            summary.extend(printed);
            let (m, h) = paper_section(setting, &p.paper_model, &summary, &shown, p.decimals);
            extra_md.push_str(&m);
            extra_html.push_str(&h);
            let (m, h, distances) =
                distance_section(&p.paper_match, &rows, &shown, english, p.decimals);
            extra_md.push_str(&m);
            extra_html.push_str(&h);
            summary.extend(distances);
        }
        let (m, h) = directions_section(&dirs, p.decimals);
        extra_md.push_str(&m);
        extra_html.push_str(&h);
        md.push_str(&extra_md);
        match html.rfind("</body>") {
            Some(at) => html.insert_str(at, &extra_html),
            None => html.push_str(&extra_html),
        }

        let df = DataFrame::new_infer_height(vec![
            Column::new(
                "source".into(),
                summary.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "run".into(),
                summary.iter().map(|s| s.1.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "test_set".into(),
                summary.iter().map(|s| s.2.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "metric".into(),
                summary.iter().map(|s| s.3.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "group".into(),
                summary.iter().map(|s| s.4.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "directions".into(),
                summary.iter().map(|s| s.5).collect::<Vec<_>>(),
            ),
            Column::new(
                "mean".into(),
                summary.iter().map(|s| s.6).collect::<Vec<_>>(),
            ),
        ])?;
        stats.rows_out = df.height() as u64;
        stats.count("runs", tables.len() as u64);
        stats.count("directions", dirs.len() as u64);
        let mut out = Outputs::table("summary", df, stats);
        out.blobs = vec![
            ("report.md".into(), md.into_bytes()),
            ("report.csv".into(), csv.into_bytes()),
            ("report.html".into(), html.into_bytes()),
        ];
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, dir: &str, metric: &str, v: Option<f64>) -> ScoreRow {
        let (s, t) = dir.split_once('-').unwrap();
        let lang = if s == "en" { t } else { s };
        ScoreRow {
            run: run.into(),
            test_set: "opus100".into(),
            direction: dir.into(),
            lang: lang.into(),
            metric: metric.into(),
            value: v,
        }
    }

    fn opts() -> ReportOptions {
        ReportOptions {
            english: "en".into(),
            seen: ["en", "fr"].iter().map(|s| s.to_string()).collect(),
            ..ReportOptions::default()
        }
    }

    #[test]
    fn summary_averages_groups_and_buckets() {
        let rows = vec![
            row("a", "en-be", "BLEU", Some(10.0)),
            row("a", "en-fr", "BLEU", Some(20.0)),
            row("a", "be-en", "BLEU", Some(30.0)),
        ];
        let s = summarize(&rows, &opts());
        let get = |g: &str| s.iter().find(|r| r.4 == g).map(|r| (r.5, r.6)).unwrap();
        assert_eq!(get("overall"), (3, Some(20.0)));
        assert_eq!(get("en→xx"), (2, Some(15.0)));
        assert_eq!(get("xx→en"), (1, Some(30.0)));
        assert_eq!(get("en→unseen"), (1, Some(10.0)));
        assert_eq!(get("en→seen"), (1, Some(20.0)));
        let rows = vec![
            row("a", "en-be", "COMET", None),
            row("a", "en-fr", "COMET", Some(0.8)),
        ];
        assert_eq!(
            summarize(&rows, &opts())[0].6,
            None,
            "a partial mean is not shown"
        );
    }

    fn dir_row(run: &str, test_set: &str, direction: &str, lang: &str) -> DirRow {
        DirRow {
            run: run.into(),
            test_set: test_set.into(),
            direction: direction.into(),
            lang: lang.into(),
            segments: None,
            values: [None; 4],
            failures: [None; 4],
        }
    }

    #[test]
    fn paper_section_sets_table1_beside_the_runs_and_marks_partial_coverage() {
        let rows = vec![
            row("mt", "en-be", "BLEU", Some(10.0)),
            row("mt", "be-en", "BLEU", Some(12.0)),
        ];
        let mut summary = summarize(&rows, &opts());
        summary.extend(paper_summary("bloomz+24", "bloomz-7b1", &["BLEU"], &opts()));
        let (md, html) = paper_section("bloomz+24", "bloomz-7b1", &summary, &["BLEU"], 2);
        assert!(md.contains("| run | en→xx | xx→en |"), "{md}");
        assert!(md.contains("| paper: MT+Align | 12.28 | 18.72 |"), "{md}");
        assert!(
            md.contains("| paper: Align→MT | 11.73 | 17.54 |"),
            "Table 1's six objectives: {md}"
        );
        assert!(md.contains("| mt | 10.00 (1/24) | 12.00 (1/24) |"), "{md}");
        assert!(
            md.contains("### Paper reference · flores200 · BLEU"),
            "Table 1 has Flores averages too: {md}"
        );
        assert!(md.contains("| paper: MTInstruct | 3.30 | 11.37 |"), "{md}");
        assert!(html.contains("paper: no fine-tuning"));
        let (md3b, _) = paper_section(
            "bloomz+24",
            "bloomz-3b",
            &{
                let mut s = summarize(&rows, &opts());
                s.extend(paper_summary("bloomz+24", "bloomz-3b", &["BLEU"], &opts()));
                s
            },
            &["BLEU"],
            2,
        );
        assert!(
            md3b.contains("| paper: MT+Align | 10.61 | 16.73 |"),
            "{md3b}"
        );
    }

    #[test]
    fn bloomz3_reference_uses_zero_shot_and_bucket_averages() {
        let reg = Registry::with_extra(&[]);
        let seen: BTreeSet<String> = reg
            .all()
            .iter()
            .filter(|l| l.bloom_seen)
            .map(|l| l.code.clone())
            .collect();
        let o = ReportOptions {
            english: "en".into(),
            seen,
            ..ReportOptions::default()
        };
        let rows = vec![
            row("mt", "de-nl", "BLEU", Some(4.0)),
            row("mt", "ar-fr", "BLEU", Some(20.0)),
            row("mt", "en-de", "BLEU", Some(19.0)),
        ];
        let mut summary = summarize(&rows, &o);
        let printed = paper_summary("bloomz+3:de-nl-ru", "bloomz-7b1", &["BLEU"], &o);
        let count = |g: &str| {
            printed
                .iter()
                .find(|s| s.1 == "paper: MTInstruct" && s.4 == g)
                .map(|s| (s.5, s.6))
        };
        assert_eq!(count("zero-shot"), Some((30, Some(8.38))));
        assert_eq!(count("seen→unseen"), Some((9, Some(6.14))));
        assert_eq!(count("unseen→unseen"), Some((6, Some(6.85))));
        assert_eq!(count("en→unseen"), Some((3, Some(16.50))));
        summary.extend(printed);
        let (md, _) = paper_section("bloomz+3:de-nl-ru", "bloomz-7b1", &summary, &["BLEU"], 2);
        assert!(md.contains("| run | en→xx | xx→en | zero-shot | seen→seen | seen→unseen | unseen→seen | unseen→unseen | en→seen | en→unseen | seen→en | unseen→en |"), "{md}");
        assert!(md.contains("| mt | 19.00 (1/6) | – | 12.00 (2/30) | 20.00 (1/6) | – | – | 4.00 (1/6) | – | 19.00 (1/3) | – | – |"), "{md}");
    }

    #[test]
    fn paper_rows_follow_the_runs_codes_and_directions() {
        let reg = Registry::with_extra(&[]);
        let dirs = vec![
            dir_row("mt", "flores200-devtest", "eng_Latn-afr_Latn", "afr_Latn"),
            dir_row("mt", "ntrex", "eng_Latn-afr_Latn", "afr_Latn"),
        ];
        let rows = paper_rows("bloomz+24", &dirs, &["BLEU", "chrF++"], "eng_Latn", &reg);
        assert_eq!(
            rows.len(),
            2 * 3,
            "one direction, two metrics, three objectives; none for a test set the paper lacks"
        );
        let mt = rows
            .iter()
            .find(|r| r.run == "paper: MTInstruct" && r.metric == "BLEU")
            .unwrap();
        assert_eq!(
            (
                mt.test_set.as_str(),
                mt.direction.as_str(),
                mt.lang.as_str(),
                mt.value
            ),
            (
                "flores200-devtest",
                "eng_Latn-afr_Latn",
                "afr_Latn",
                Some(10.1)
            )
        );

        let mut with_ours = rows.clone();
        with_ours.push(ScoreRow {
            run: "mt".into(),
            metric: "BLEU".into(),
            value: Some(12.6),
            ..mt.clone()
        });
        let matches = BTreeMap::from([("mt".to_string(), "MTInstruct".to_string())]);
        let (md, _, summary) =
            distance_section(&matches, &with_ours, &["BLEU", "chrF++"], "eng_Latn", 2);
        assert!(
            md.contains("| eng_Latn-afr_Latn | 12.60 | 10.10 | +2.50 | – | 31.00 | – |"),
            "{md}"
        );
        let overall = summary
            .iter()
            .find(|s| s.3 == "BLEU" && s.4 == "overall")
            .unwrap();
        assert_eq!((overall.0.as_str(), overall.5), ("distance", 1));
        assert!((overall.6.unwrap() - 2.5).abs() < 1e-9);
    }
}
