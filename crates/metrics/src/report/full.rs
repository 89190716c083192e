//! The whole report of the `report` stage from per-direction scores: the paper's tables ([`render_markdown`],
//! [`render_csv`], [`render_html`]), the summary of averages per direction group and seen/unseen bucket, the paper's
//! numbers beside the runs ([`paper`]), the distance of matched runs to the paper, and the per-direction appendix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{
    ReportOptions, ScoreRow, bucket_of, fmt_val, group_of, mean, ordered_unique, paper,
    render_csv_rows, render_html, render_markdown,
};
use crate::html::escape;

/// The metrics a report lays out, in the order of [`DirectionScores::values`].
pub const METRICS: [&str; 4] = ["BLEU", "chrF", "chrF++", "COMET"];

/// The failure measures of the appendix, in the order of [`DirectionScores::failures`]: every failure column of a
/// scores table, six rates (empty output first: a model that says nothing scores zero everywhere, and the reader must
/// see why) and the length ratio.
pub const FAILURES: [&str; 7] = [
    "empty output",
    "off-target",
    "source copy",
    "oscillation",
    "over-translation",
    "under-translation",
    "length ratio",
];

/// How many of [`FAILURES`] are rates (shown as percentages); the rest are ratios.
const FAILURE_RATES: usize = 6;

/// One direction of one run, as a scores table of `metrics.score` has it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DirectionScores {
    /// Run name (the stage that scored).
    pub run: String,
    /// Test set.
    pub test_set: String,
    /// Direction `src-tgt`.
    pub direction: String,
    /// The language shown in the tables.
    pub lang: String,
    /// Number of segments, if known.
    pub segments: Option<u64>,
    /// The scores of [`METRICS`], each if present.
    pub values: [Option<f64>; 4],
    /// The failure measures of [`FAILURES`], each if present.
    pub failures: [Option<f64>; 7],
}

/// What a report shows, beyond the scores.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportSpec {
    /// Title of the documents.
    pub title: String,
    /// Decimals shown (the CSV keeps full precision).
    pub decimals: usize,
    /// Metrics laid out, among [`METRICS`], in this order; COMET is left out when no direction has it.
    pub metrics: Vec<String>,
    /// The paper setting laid beside the runs (one of [`paper::SETTINGS`]), if any.
    pub paper_setting: Option<String>,
    /// The model size whose Table 1 averages are shown (one of [`paper::MODELS`]).
    pub paper_model: String,
    /// Runs compared direction by direction with a paper objective.
    pub paper_match: BTreeMap<String, String>,
    /// Languages seen in pre-training, in every code the runs may use (ISO and Flores-200), for the buckets.
    pub seen: BTreeSet<String>,
    /// ISO 639-1 code → Flores-200 code, to name the paper's directions as runs with Flores codes do.
    pub flores: BTreeMap<String, String>,
    /// Significance markers of the per-direction cells.
    pub marks: super::significance::Marks,
}

/// A built report: the three documents and the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `report.md`.
    pub markdown: String,
    /// `report.csv` (long form: run,test_set,direction,group,bucket,lang,metric,value).
    pub csv: String,
    /// `report.html`, self-contained.
    pub html: String,
    /// The summary rows (the stage's `summary` table).
    pub summary: Vec<SummaryRow>,
}

/// Builds the whole report of `dirs`: the paper's tables per test set, metric and direction group, the paper's
/// numbers beside them when `spec.paper_setting` is set, the summary of averages and the per-direction appendix.
pub fn build_report(dirs: &[DirectionScores], spec: &ReportSpec) -> Report {
    let english = if dirs
        .iter()
        .any(|r| r.direction.split('-').any(|c| c == "eng_Latn"))
    {
        "eng_Latn"
    } else {
        "en"
    };
    let opts = ReportOptions {
        title: spec.title.clone(),
        english: english.into(),
        seen: spec.seen.clone(),
        decimals: spec.decimals,
        marks: spec.marks.clone(),
    };
    let comet_present = dirs.iter().any(|r| r.values[3].is_some());
    let shown: Vec<&str> = METRICS
        .into_iter()
        .filter(|n| spec.metrics.iter().any(|x| x == n) && (*n != "COMET" || comet_present))
        .collect();
    let mut rows = Vec::new();
    for (m, name) in METRICS.iter().enumerate() {
        if !shown.contains(name) {
            continue;
        }
        for r in dirs {
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
    let setting = spec.paper_setting.as_deref();
    if let Some(setting) = setting {
        rows.extend(paper_rows(setting, dirs, &shown, english, &spec.flores));
    }
    // Runs first, then metric, in the caller's order (the renderers keep first-met order).
    rows.sort_by_key(|r| spec.metrics.iter().position(|m| *m == r.metric));

    let mut md = render_markdown(&rows, &opts);
    let mut csv_rows: Vec<[String; 8]> = Vec::new();
    let mut html = render_html(&rows, &opts);
    let mut extra_md = String::new();
    let mut extra_html = String::new();
    if spec.metrics.iter().any(|m| m == "COMET") && !comet_present {
        extra_md.push_str("\nCOMET: absent (no run was given a local COMET command).\n");
        extra_html.push_str("<p>COMET: absent (no run was given a local COMET command).</p>\n");
    }
    let mut summary = summarize(&rows, &opts);
    if let Some(setting) = setting {
        let paper_opts = ReportOptions {
            english: "en".into(),
            ..opts.clone()
        };
        let printed = paper_summary(setting, &spec.paper_model, &shown, &paper_opts);
        // The paper's printed averages as CSV lines: no direction nor bucket, `avg<n>` (directions averaged) as
        // the language, NaN for a missing value.
        for s in &printed {
            csv_rows.push([
                s.run.clone(),
                s.test_set.clone(),
                String::new(),
                s.group.clone(),
                String::new(),
                format!("avg{}", s.directions),
                s.metric.clone(),
                s.mean.unwrap_or(f64::NAN).to_string(),
            ]);
        }
        summary.extend(printed);
        let (m, h) = paper_section(setting, &spec.paper_model, &summary, &shown, spec.decimals);
        extra_md.push_str(&m);
        extra_html.push_str(&h);
        let (m, h, distances) =
            distance_section(&spec.paper_match, &rows, &shown, english, spec.decimals);
        extra_md.push_str(&m);
        extra_html.push_str(&h);
        summary.extend(distances);
    }
    let (m, h) = directions_section(dirs, spec.decimals);
    extra_md.push_str(&m);
    extra_html.push_str(&h);
    md.push_str(&extra_md);
    match html.rfind("</body>") {
        Some(at) => html.insert_str(at, &extra_html),
        None => html.push_str(&extra_html),
    }
    Report {
        markdown: md,
        csv: render_csv_rows(&rows, &opts, &csv_rows),
        html,
        summary,
    }
}

/// One row of the report's summary table: an average over the directions of a group or bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// `alinea` (a run), `paper` (the paper's printed averages), `paper-same-directions` (the paper's numbers
    /// averaged over the runs' directions only) or `distance` (mean Δ of a `paper_match` run).
    pub source: String,
    /// Run name.
    pub run: String,
    /// Test set.
    pub test_set: String,
    /// Metric.
    pub metric: String,
    /// `overall`, `en→xx`, `xx→en`, `xx→yy`, `zero-shot` or a bucket such as `en→unseen`.
    pub group: String,
    /// How many directions the mean covers.
    pub directions: u64,
    /// The mean; `None` unless every direction of the group has the metric.
    pub mean: Option<f64>,
}

type Summary = Vec<SummaryRow>;

/// Averages per run, test set, metric and direction group / bucket.
pub fn summarize(rows: &[ScoreRow], opts: &ReportOptions) -> Summary {
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
            out.push(SummaryRow {
                source: source.into(),
                run: run.clone(),
                test_set: ts.clone(),
                metric: metric.clone(),
                group: g,
                directions: members.len() as u64,
                mean: m,
            });
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
fn run_direction(
    paper_direction: &str,
    english: &str,
    flores: &BTreeMap<String, String>,
) -> Option<String> {
    if english == "en" {
        return Some(paper_direction.to_string());
    }
    let (s, t) = paper_direction.split_once('-')?;
    let code = |c: &str| flores.get(c);
    Some(format!("{}-{}", code(s)?, code(t)?))
}

/// Whether a direction counts in a group or bucket of the paper's averages.
fn in_group(direction: &str, group: &str, opts: &ReportOptions) -> bool {
    let g = group_of(direction, &opts.english);
    group == "overall"
        || g == group
        || (group == "zero-shot" && g == "xx→yy")
        || bucket_of(direction, opts) == group
}

/// The paper's per-direction numbers (BLOOMZ-7b1, Tables 11–18) for the directions the runs have, as extra runs
/// named `paper: <objective>`, so that every table shows them beside the runs.
fn paper_rows(
    setting: &str,
    dirs: &[DirectionScores],
    metrics: &[&str],
    english: &str,
    flores: &BTreeMap<String, String>,
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
            let Some(direction) = s.direction.and_then(|d| run_direction(d, english, flores))
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
            SummaryRow {
                source: "paper".into(),
                run: format!("{PAPER_RUN}{}", s.objective),
                test_set: s.test_set.into(),
                metric: s.metric.into(),
                group: s.group.into(),
                directions: n,
                mean: Some(s.value),
            }
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
    let mut html = format!("<h2>{}</h2>\n<table><tr>", escape(caption));
    for h in head {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr>");
    for cells in rows {
        let _ = writeln!(md, "| {} |", cells.join(" | "));
        html.push_str("<tr>");
        for c in cells {
            let _ = write!(html, "<td>{}</td>", escape(c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>\n");
    if !note.is_empty() {
        let _ = write!(md, "\n{note}\n");
        let _ = writeln!(html, "<p>{}</p>", escape(note));
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
    let paper_avgs: Vec<_> = summary.iter().filter(|s| s.source == "paper").collect();
    for pts in ordered_unique(paper_avgs.iter().map(|s| s.test_set.as_str())) {
        let runs: Vec<(&str, &str)> = ordered_unique(
            summary
                .iter()
                .filter(|s| s.source == "alinea" && paper_test_set(&s.test_set) == Some(pts))
                .map(|s| (s.run.as_str(), s.test_set.as_str())),
        );
        for metric in metrics {
            let sel: Vec<_> = paper_avgs
                .iter()
                .filter(|s| s.test_set == pts && s.metric == *metric)
                .collect();
            if sel.is_empty() {
                continue;
            }
            let mut groups = ordered_unique(sel.iter().map(|s| s.group.as_str()));
            groups.sort_by_key(|g| PAPER_GROUP_ORDER.iter().position(|x| x == g));
            let mut head = vec!["run".to_string()];
            head.extend(groups.iter().map(|g| g.to_string()));
            let mut rows = Vec::new();
            for objective in ordered_unique(sel.iter().map(|s| s.run.as_str())) {
                let mut cells = vec![objective.to_string()];
                cells.extend(groups.iter().map(|g| {
                    fmt_val(
                        sel.iter()
                            .find(|s| s.run == objective && s.group == *g)
                            .and_then(|s| s.mean),
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
                    let n = sel
                        .iter()
                        .find(|s| s.group == *g)
                        .map_or(0, |s| s.directions);
                    let our_group = if *g == "zero-shot" { "xx→yy" } else { g };
                    let ours = summary.iter().find(|s| {
                        s.source == "alinea"
                            && s.run == *run
                            && s.test_set == *ts
                            && s.metric == *metric
                            && s.group == our_group
                    });
                    cells.push(match ours {
                        None => "–".into(),
                        Some(o) if o.directions == n => fmt_val(o.mean, d),
                        Some(o) => {
                            partial = true;
                            format!("{} ({}/{n})", fmt_val(o.mean, d), o.directions)
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
                        fmt_val(ours, d),
                        fmt_val(theirs, d),
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
                        summary.push(SummaryRow {
                            source: "distance".into(),
                            run: run.clone(),
                            test_set: ts.to_string(),
                            metric: m.to_string(),
                            group: group.into(),
                            directions: sel.len() as u64,
                            mean: mean(&sel),
                        });
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
fn directions_section(dirs: &[DirectionScores], d: usize) -> (String, String) {
    let head: Vec<String> = ["run", "test set", "direction", "segments"]
        .into_iter()
        .chain(METRICS)
        .chain(FAILURES)
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
            cells.extend(r.values.iter().map(|v| fmt_val(*v, d)));
            // Rates as percentages; the length ratio as a ratio.
            cells.extend(r.failures.iter().enumerate().map(|(i, v)| {
                if i < FAILURE_RATES {
                    v.map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
                } else {
                    fmt_val(*v, 3)
                }
            }));
            cells
        })
        .collect();
    both_tables("Directions", &head, 3, &rows, "")
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
        let get = |g: &str| {
            s.iter()
                .find(|r| r.group == g)
                .map(|r| (r.directions, r.mean))
                .unwrap()
        };
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
            summarize(&rows, &opts())[0].mean,
            None,
            "a partial mean is not shown"
        );
    }

    fn dir_row(run: &str, test_set: &str, direction: &str, lang: &str) -> DirectionScores {
        DirectionScores {
            run: run.into(),
            test_set: test_set.into(),
            direction: direction.into(),
            lang: lang.into(),
            segments: None,
            values: [None; 4],
            failures: [None; 7],
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
        // The languages BLOOM saw in pre-training among the paper's 31 (`bloom_seen` in the registry).
        let seen: BTreeSet<String> = ["en", "ar", "fr", "zh"].map(String::from).into();
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
                .find(|s| s.run == "paper: MTInstruct" && s.group == g)
                .map(|s| (s.directions, s.mean))
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
        let flores = BTreeMap::from([
            ("en".to_string(), "eng_Latn".to_string()),
            ("af".to_string(), "afr_Latn".to_string()),
        ]);
        let dirs = vec![
            dir_row("mt", "flores200-devtest", "eng_Latn-afr_Latn", "afr_Latn"),
            dir_row("mt", "ntrex", "eng_Latn-afr_Latn", "afr_Latn"),
        ];
        let rows = paper_rows("bloomz+24", &dirs, &["BLEU", "chrF++"], "eng_Latn", &flores);
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
            .find(|s| s.metric == "BLEU" && s.group == "overall")
            .unwrap();
        assert_eq!(
            (overall.source.as_str(), overall.directions),
            ("distance", 1)
        );
        assert!((overall.mean.unwrap() - 2.5).abs() < 1e-9);
    }
}
