//! `report`: the paper's score tables from one or more `metrics.score` runs, as Markdown, CSV and a self-contained
//! HTML page with charts, plus a summary table of averages per direction group and seen/unseen bucket.
// fingerprint-include: crates/metrics/src
// fingerprint-include: src/lang.rs

use std::collections::BTreeSet;
use std::fmt::Write as _;

use alinea_metrics::{ReportOptions, ScoreRow, bucket_of, render_csv, render_html, render_markdown};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::{InputSlot, Outputs, SlotKind, Stage, StageCtx, StageError, Stats};
use crate::lang::{Language, Registry};

/// Parameters of `report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Title of the documents.
    pub title: String,
    /// Decimals shown (CSV keeps full precision).
    pub decimals: usize,
    /// Add the paper's Table 1 averages (RECIPE.md §7) as reference runs.
    pub paper_reference: bool,
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
            paper_reference: false,
            metrics: vec!["BLEU".into(), "chrF++".into(), "COMET".into()],
            extra_languages: Vec::new(),
        }
    }
}

/// The stage kind.
pub struct Report;

const METRICS: [(&str, &str); 4] = [("BLEU", "bleu"), ("chrF", "chrf"), ("chrF++", "chrfpp"), ("COMET", "comet")];

/// One reported number of the paper: (run, group, BLEU, chrF++, COMET).
type PaperRow = (&'static str, &'static str, f64, f64, f64);

/// RECIPE.md §7, Table 1: BLOOMZ-7b1 on BLOOMZ+24, OPUS-100 test, averages over 24 languages.
pub const PAPER_TABLE1: [PaperRow; 6] = [
    ("paper: no fine-tuning", "en→xx", 3.61, 8.82, 47.94),
    ("paper: MTInstruct", "en→xx", 11.54, 25.33, 64.68),
    ("paper: MT+Align", "en→xx", 12.28, 26.17, 65.28),
    ("paper: no fine-tuning", "xx→en", 6.70, 18.49, 51.49),
    ("paper: MTInstruct", "xx→en", 18.59, 33.25, 68.75),
    ("paper: MT+Align", "xx→en", 18.72, 34.02, 69.75),
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

const FAILURES: [(&str, &str); 4] =
    [("off-target", "off_target_rate"), ("source copy", "source_copy_rate"), ("oscillation", "oscillation_rate"), ("length ratio", "length_ratio")];

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
    Ok(c.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

fn read_rows(run: &str, df: &DataFrame) -> Result<Vec<DirRow>, StageError> {
    let (ts, dir, lang) = (str_col(df, run, "test_set")?, str_col(df, run, "direction")?, str_col(df, run, "lang")?);
    let values: Vec<Option<Vec<Option<f64>>>> = METRICS.iter().map(|(_, c)| f64_col(df, c)).collect::<Result<_, _>>()?;
    let failures: Vec<Option<Vec<Option<f64>>>> = FAILURES.iter().map(|(_, c)| f64_col(df, c)).collect::<Result<_, _>>()?;
    let segments: Option<Vec<Option<u64>>> = if df.get_column_names().iter().any(|c| c.as_str() == "segments") {
        Some(df.column("segments")?.cast(&DataType::UInt64)?.u64()?.iter().collect())
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
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Summary rows: (source, run, test_set, metric, group, directions, mean).
type Summary = Vec<(String, String, String, String, String, u64, Option<f64>)>;

/// Averages per run, test set, metric and direction group / bucket.
fn summarize(rows: &[ScoreRow], opts: &ReportOptions) -> Summary {
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for r in rows {
        let k = (r.run.clone(), r.test_set.clone(), r.metric.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut out = Vec::new();
    for (run, ts, metric) in keys {
        let sel: Vec<&ScoreRow> = rows.iter().filter(|r| r.run == run && r.test_set == ts && r.metric == metric).collect();
        let mut groups: Vec<String> = vec!["overall".into()];
        let mut seen = BTreeSet::new();
        for g in sel.iter().map(|r| group_of(&r.direction, &opts.english).to_string()).chain(sel.iter().map(|r| bucket_of(&r.direction, opts))) {
            if seen.insert(g.clone()) {
                groups.push(g);
            }
        }
        for g in groups {
            let members: Vec<&&ScoreRow> = sel
                .iter()
                .filter(|r| g == "overall" || group_of(&r.direction, &opts.english) == g || bucket_of(&r.direction, opts) == g)
                .collect();
            let vals: Vec<f64> = members.iter().filter_map(|r| r.value).collect();
            // A mean over only some directions would mislead: null unless every direction has the metric.
            let m = if vals.len() == members.len() { mean(&vals) } else { None };
            out.push(("alinea".into(), run.clone(), ts.clone(), metric.clone(), g, members.len() as u64, m));
        }
    }
    out
}

/// The paper-reference section (Markdown and HTML) comparing the runs' OPUS-100 averages with Table 1.
fn paper_section(rows: &[ScoreRow], opts: &ReportOptions, d: usize) -> (String, String) {
    let metrics = ["BLEU", "chrF++", "COMET"];
    let groups = ["en→xx", "xx→en"];
    let opus: Vec<&ScoreRow> = rows.iter().filter(|r| r.test_set.to_lowercase().contains("opus")).collect();
    let mut table: Vec<(String, Vec<Option<f64>>, String)> = Vec::new();
    for run in ["paper: no fine-tuning", "paper: MTInstruct", "paper: MT+Align"] {
        let mut vals = Vec::new();
        for g in groups {
            let p = PAPER_TABLE1.iter().find(|r| r.0 == run && r.1 == g).expect("table complete");
            vals.extend([Some(p.2), Some(p.3), Some(p.4)]);
        }
        table.push((run.to_string(), vals, "24".into()));
    }
    let mut runs: Vec<&str> = Vec::new();
    for r in &opus {
        if !runs.contains(&r.run.as_str()) {
            runs.push(&r.run);
        }
    }
    for run in runs {
        let mut vals = Vec::new();
        let mut langs = BTreeSet::new();
        for g in groups {
            for m in metrics {
                let sel: Vec<&&ScoreRow> =
                    opus.iter().filter(|r| r.run == run && r.metric == m && group_of(&r.direction, &opts.english) == g).collect();
                langs.extend(sel.iter().map(|r| r.lang.clone()));
                let v: Vec<f64> = sel.iter().filter_map(|r| r.value).collect();
                vals.push(if v.len() == sel.len() { mean(&v) } else { None });
            }
        }
        table.push((run.to_string(), vals, langs.len().to_string()));
    }
    let caption = "Reference: the paper's Table 1 (BLOOMZ-7b1, BLOOMZ+24, OPUS-100 test, averages over 24 languages; RECIPE.md §7) beside this report's OPUS-100 averages";
    let cols: Vec<String> = groups.iter().flat_map(|g| metrics.iter().map(move |m| format!("{g} {m}"))).collect();
    let mut md = format!("\n### {caption}\n\n| run | languages | {} |\n|---|---:|{}\n", cols.join(" | "), "---:|".repeat(cols.len()));
    let mut html = format!("<h2>{}</h2>\n<table><tr><th>run</th><th>languages</th>", esc(caption));
    for c in &cols {
        let _ = write!(html, "<th>{}</th>", esc(c));
    }
    html.push_str("</tr>");
    for (run, vals, n) in &table {
        let cells: Vec<String> = vals.iter().map(|v| fmt(*v, d)).collect();
        let _ = writeln!(md, "| {run} | {n} | {} |", cells.join(" | "));
        let _ = write!(html, "<tr><td>{}</td><td>{n}</td>", esc(run));
        for c in &cells {
            let _ = write!(html, "<td>{c}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>\n");
    if opus.is_empty() {
        md.push_str("\nNo run scored an OPUS-100 test set (`test_set` containing `opus`), so only the paper's numbers are shown.\n");
        html.push_str("<p>No run scored an OPUS-100 test set (<code>test_set</code> containing <code>opus</code>), so only the paper's numbers are shown.</p>\n");
    }
    (md, html)
}

/// The per-direction appendix (Markdown and HTML): every direction of every run with its scores and failure rates.
fn directions_section(dirs: &[DirRow], d: usize) -> (String, String) {
    let heads: Vec<&str> = ["run", "test set", "direction", "segments"]
        .into_iter()
        .chain(METRICS.iter().map(|(m, _)| *m))
        .chain(FAILURES.iter().map(|(f, _)| *f))
        .collect();
    let mut md = format!("\n### Directions\n\n| {} |\n|---|---|---|{}\n", heads.join(" | "), "---:|".repeat(heads.len() - 3));
    let mut html = String::from("<h2>Directions</h2>\n<table><tr>");
    for h in &heads {
        let _ = write!(html, "<th>{}</th>", esc(h));
    }
    html.push_str("</tr>");
    for r in dirs {
        let mut cells = vec![r.run.clone(), r.test_set.clone(), r.direction.clone(), r.segments.map_or("–".into(), |s| s.to_string())];
        cells.extend(r.values.iter().map(|v| fmt(*v, d)));
        // Rates as percentages; the length ratio as a ratio.
        cells.extend(r.failures.iter().enumerate().map(|(i, v)| if i < 3 { v.map_or("–".into(), |x| format!("{:.1}%", x * 100.0)) } else { fmt(*v, 3) }));
        let _ = writeln!(md, "| {} |", cells.join(" | "));
        html.push_str("<tr>");
        for c in &cells {
            let _ = write!(html, "<td>{}</td>", esc(c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>\n");
    (md, html)
}

impl Stage for Report {
    const KIND: &'static str = "report";
    const SUMMARY: &'static str = "the paper's score tables as Markdown, CSV and self-contained HTML with charts";
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
  paper_reference = false      add the paper's Table 1 averages (RECIPE.md §7: OPUS-100, BLOOMZ+24, 24 languages,
                               no fine-tuning / MTInstruct / MT+Align) beside the runs' averages on test sets whose name
                               contains `opus`
  metrics = [\"BLEU\", \"chrF++\", \"COMET\"]   among BLEU, chrF, chrF++, COMET; COMET is left out when no run has it
  extra_languages = []

Outputs:
  `summary` (main table): source (alinea | paper), run, test_set, metric, group (overall, en→xx, xx→en, xx→yy, or a
             bucket such as en→unseen), directions, mean (null unless every direction of the group has the metric)
  `report.md`, `report.csv` (long form: run,test_set,direction,group,bucket,lang,metric,value), `report.html` (blobs;
             `alinea report STAGE -o DIR` writes them to DIR).";
    type Params = Params;
    const INPUTS: &'static [InputSlot] =
        &[InputSlot { name: "scores", kind: SlotKind::Tables, required: true, doc: "scores tables of metrics.score stages" }];

    fn validate(p: &Params) -> Result<(), String> {
        if p.decimals > 6 {
            return Err(format!("decimals must be at most 6, got {}", p.decimals));
        }
        if p.metrics.is_empty() {
            return Err("metrics: name at least one of BLEU, chrF, chrF++, COMET".into());
        }
        for m in &p.metrics {
            if !METRICS.iter().any(|(n, _)| n == m) {
                return Err(format!("metrics: unknown `{m}` (allowed: BLEU, chrF, chrF++, COMET)"));
            }
        }
        Ok(())
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
        let english = if dirs.iter().any(|r| r.direction.split('-').any(|c| c == "eng_Latn")) { "eng_Latn" } else { "en" };
        let seen: BTreeSet<String> =
            registry.all().iter().filter(|l| l.bloom_seen).flat_map(|l| [l.code.clone(), l.flores.clone()]).collect();
        let opts = ReportOptions { title: p.title.clone(), english: english.into(), seen, decimals: p.decimals };

        let comet_present = dirs.iter().any(|r| r.values[3].is_some());
        let mut rows = Vec::new();
        for (m, (name, _)) in METRICS.iter().enumerate() {
            if !p.metrics.iter().any(|x| x == name) || (*name == "COMET" && !comet_present) {
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
        if p.paper_reference {
            let (m, h) = paper_section(&rows, &opts, p.decimals);
            extra_md.push_str(&m);
            extra_html.push_str(&h);
            for (run, group, bleu, chrfpp, comet) in PAPER_TABLE1 {
                for (metric, v) in [("BLEU", bleu), ("chrF++", chrfpp), ("COMET", comet)] {
                    summary.push(("paper".into(), run.into(), "opus100".into(), metric.into(), group.into(), 24, Some(v)));
                    let _ = writeln!(csv, "{run},opus100,,{group},,avg24,{metric},{v}");
                }
            }
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
            Column::new("source".into(), summary.iter().map(|s| s.0.clone()).collect::<Vec<_>>()),
            Column::new("run".into(), summary.iter().map(|s| s.1.clone()).collect::<Vec<_>>()),
            Column::new("test_set".into(), summary.iter().map(|s| s.2.clone()).collect::<Vec<_>>()),
            Column::new("metric".into(), summary.iter().map(|s| s.3.clone()).collect::<Vec<_>>()),
            Column::new("group".into(), summary.iter().map(|s| s.4.clone()).collect::<Vec<_>>()),
            Column::new("directions".into(), summary.iter().map(|s| s.5).collect::<Vec<_>>()),
            Column::new("mean".into(), summary.iter().map(|s| s.6).collect::<Vec<_>>()),
        ])?;
        stats.rows_out = df.height() as u64;
        stats.count("runs", tables.len() as u64);
        stats.count("directions", dirs.len() as u64);
        let mut out = Outputs::table("summary", df, stats);
        out.blobs = vec![("report.md".into(), md.into_bytes()), ("report.csv".into(), csv.into_bytes()), ("report.html".into(), html.into_bytes())];
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, dir: &str, metric: &str, v: Option<f64>) -> ScoreRow {
        let (s, t) = dir.split_once('-').unwrap();
        let lang = if s == "en" { t } else { s };
        ScoreRow { run: run.into(), test_set: "opus100".into(), direction: dir.into(), lang: lang.into(), metric: metric.into(), value: v }
    }

    fn opts() -> ReportOptions {
        ReportOptions { english: "en".into(), seen: ["en", "fr"].iter().map(|s| s.to_string()).collect(), ..ReportOptions::default() }
    }

    #[test]
    fn summary_averages_groups_and_buckets() {
        let rows = vec![row("a", "en-be", "BLEU", Some(10.0)), row("a", "en-fr", "BLEU", Some(20.0)), row("a", "be-en", "BLEU", Some(30.0))];
        let s = summarize(&rows, &opts());
        let get = |g: &str| s.iter().find(|r| r.4 == g).map(|r| (r.5, r.6)).unwrap();
        assert_eq!(get("overall"), (3, Some(20.0)));
        assert_eq!(get("en→xx"), (2, Some(15.0)));
        assert_eq!(get("xx→en"), (1, Some(30.0)));
        assert_eq!(get("en→unseen"), (1, Some(10.0)));
        assert_eq!(get("en→seen"), (1, Some(20.0)));
        let rows = vec![row("a", "en-be", "COMET", None), row("a", "en-fr", "COMET", Some(0.8))];
        assert_eq!(summarize(&rows, &opts())[0].6, None, "a partial mean is not shown");
    }

    #[test]
    fn paper_section_lists_the_three_paper_runs_and_ours() {
        let rows = vec![row("mt", "en-be", "BLEU", Some(10.0)), row("mt", "be-en", "BLEU", Some(12.0))];
        let (md, html) = paper_section(&rows, &opts(), 2);
        assert!(md.contains("| paper: MT+Align | 24 | 12.28 | 26.17 | 65.28 | 18.72 | 34.02 | 69.75 |"), "{md}");
        assert!(md.contains("| mt | 1 | 10.00 | – | – | 12.00 | – | – |"), "{md}");
        assert!(html.contains("paper: no fine-tuning"));
    }
}
