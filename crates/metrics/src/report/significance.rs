//! The report's significance section: for each test set and metric, every direction's systems
//! against the baseline with the score difference and p-value of a `metrics.compare` stage,
//! significant differences (p <= 0.05) marked with `*` as sacrebleu marks them; and the [`Marks`]
//! the paper-style tables put on the cells of those significant differences.

use std::collections::{BTreeMap, BTreeSet};

use crate::html::escape;

/// One paired comparison (a row of a `metrics.compare` table).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Test set.
    pub test_set: String,
    /// Direction, e.g. `en-de`.
    pub direction: String,
    /// The baseline run.
    pub baseline: String,
    /// The compared run.
    pub system: String,
    /// Metric name (`BLEU`, `chrF2`, `chrF2++`).
    pub metric: String,
    /// `bs` or `ar`.
    pub test: String,
    /// The baseline's score.
    pub baseline_score: f64,
    /// The system's score.
    pub score: f64,
    /// The p-value.
    pub p_value: f64,
    /// p <= 0.05.
    pub significant: bool,
    /// Resamples (bs) or trials (ar).
    pub samples: u64,
    /// The resampling seed, from the signature (`seed:N`).
    pub seed: Option<u64>,
}

/// The marker of a table cell whose difference to the baseline is significant.
pub const MARK: &str = "†";

/// The report's metric name of a sacrebleu score name: `chrF2` is `chrF`, `chrF2++` is `chrF++`.
fn report_metric(name: &str) -> &str {
    match name {
        n if n.starts_with("chrF") && n.ends_with("++") => "chrF++",
        n if n.starts_with("chrF") => "chrF",
        n => n,
    }
}

/// Which cells of the paper-style tables are significantly different from their baseline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    /// (scores run, test set, report metric, direction).
    cells: BTreeSet<(String, String, String, String)>,
    /// One line per (baseline, test, samples, seed) among the marked cells.
    legend: Vec<String>,
}

impl Marks {
    /// The marks of `rows`. `runs` names, for a scores run, the generations run metrics.compare
    /// knew it as (`score_align` → `gen_align`); a run it does not name is matched by its own name.
    pub fn new(rows: &[Comparison], runs: &BTreeMap<String, String>) -> Marks {
        let mut by_system: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (run, system) in runs {
            by_system
                .entry(system.as_str())
                .or_default()
                .push(run.as_str());
        }
        let mut marks = Marks::default();
        for r in rows.iter().filter(|r| r.significant) {
            let scores_runs = match by_system.get(r.system.as_str()) {
                Some(v) => v.clone(),
                None if !runs.contains_key(&r.system) => vec![r.system.as_str()],
                None => Vec::new(),
            };
            for run in scores_runs {
                marks.cells.insert((
                    run.to_string(),
                    r.test_set.clone(),
                    report_metric(&r.metric).to_string(),
                    r.direction.clone(),
                ));
            }
            let line = format!(
                "{MARK} significantly different from the baseline `{}` (p <= {}; sacrebleu's {}, {} {}, seed {})",
                r.baseline,
                alinea_p_threshold(),
                test_name(&r.test),
                r.samples,
                if r.test == "ar" {
                    "trials"
                } else {
                    "resamples"
                },
                r.seed.map_or("unknown".to_string(), |s| s.to_string())
            );
            if !marks.legend.contains(&line) {
                marks.legend.push(line);
            }
        }
        marks
    }

    /// The marker of a cell: [`MARK`] or nothing.
    pub fn get(&self, run: &str, test_set: &str, metric: &str, direction: &str) -> &'static str {
        let key = (
            run.to_string(),
            test_set.to_string(),
            metric.to_string(),
            direction.to_string(),
        );
        if self.cells.contains(&key) { MARK } else { "" }
    }

    /// The legend lines (none without marks).
    pub fn legend(&self) -> &[String] {
        &self.legend
    }
}

fn alinea_p_threshold() -> f64 {
    crate::significance::SIGNIFICANCE_LEVEL
}

fn test_name(test: &str) -> &'static str {
    match test {
        "ar" => "paired approximate randomization",
        _ => "paired bootstrap resampling",
    }
}

type Groups<'a> = BTreeMap<(&'a str, &'a str), Vec<&'a Comparison>>;

fn groups(rows: &[Comparison]) -> Groups<'_> {
    let mut g: Groups = BTreeMap::new();
    for r in rows {
        g.entry((r.test_set.as_str(), r.metric.as_str()))
            .or_default()
            .push(r);
    }
    g
}

fn cell(r: &Comparison, decimals: usize) -> String {
    format!(
        "{:.decimals$} ({:+.decimals$}, p = {:.4}){}",
        r.score,
        r.score - r.baseline_score,
        r.p_value,
        if r.significant { "*" } else { "" }
    )
}

fn legend(rows: &[Comparison]) -> String {
    let test = test_name(rows.first().map_or("bs", |r| r.test.as_str()));
    format!(
        "Each run against the baseline with sacrebleu's {test} test: score (difference to the baseline, p-value); `*` marks p <= 0.05, a difference unlikely to be chance."
    )
}

/// The Markdown section (empty without comparisons).
pub fn significance_markdown(rows: &[Comparison], decimals: usize) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!("\n## Significance\n\n{}\n", legend(rows));
    for ((test_set, metric), rs) in groups(rows) {
        out.push_str(&format!(
            "\n### {test_set} {metric} (baseline {})\n\n| direction | baseline | system | score (Δ, p) |\n|---|---|---|---|\n",
            rs[0].baseline
        ));
        for r in rs {
            out.push_str(&format!(
                "| {} | {:.decimals$} | {} | {} |\n",
                r.direction,
                r.baseline_score,
                r.system,
                cell(r, decimals)
            ));
        }
    }
    out
}

/// The HTML section (empty without comparisons).
pub fn significance_html(rows: &[Comparison], decimals: usize) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<section id=\"significance\"><h2>Significance</h2><p>{}</p>\n",
        escape(&legend(rows))
    );
    for ((test_set, metric), rs) in groups(rows) {
        out.push_str(&format!(
            "<h3>{} {} (baseline {})</h3><table><thead><tr><th>direction</th><th>baseline</th><th>system</th><th>score (Δ, p)</th></tr></thead><tbody>\n",
            escape(test_set),
            escape(metric),
            escape(&rs[0].baseline)
        ));
        for r in rs {
            let class = if r.significant {
                " class=\"significant\""
            } else {
                ""
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td>{:.decimals$}</td><td>{}</td><td{class}>{}</td></tr>\n",
                escape(&r.direction),
                r.baseline_score,
                escape(&r.system),
                escape(&cell(r, decimals))
            ));
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
    out
}

/// `html` with the section inserted before `</body>`.
pub fn insert_into_html(html: &str, section: &str) -> String {
    match html.rfind("</body>") {
        Some(i) => format!("{}{section}{}", &html[..i], &html[i..]),
        None => format!("{html}{section}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_only_significant_differences() {
        let row = |system: &str, score: f64, p: f64| Comparison {
            test_set: "flores200".into(),
            direction: "en-de".into(),
            baseline: "gen_mt".into(),
            system: system.into(),
            metric: "BLEU".into(),
            test: "bs".into(),
            baseline_score: 20.0,
            score,
            p_value: p,
            significant: p <= 0.05,
            samples: 1000,
            seed: Some(12345),
        };
        let md =
            significance_markdown(&[row("gen_align", 21.0, 0.001), row("gen_x", 20.1, 0.4)], 2);
        assert!(
            md.contains("| en-de | 20.00 | gen_align | 21.00 (+1.00, p = 0.0010)* |"),
            "{md}"
        );
        assert!(
            md.contains("| en-de | 20.00 | gen_x | 20.10 (+0.10, p = 0.4000) |"),
            "{md}"
        );
        assert!(significance_markdown(&[], 2).is_empty());
        let html = insert_into_html(
            "<html><body>x</body></html>",
            &significance_html(&[row("a", 19.0, 0.01)], 1),
        );
        assert!(
            html.contains("class=\"significant\">19.0 (-1.0, p = 0.0100)*</td>")
                && html.ends_with("</body></html>"),
            "{html}"
        );
        // The scores run `score_align` was compared as `gen_align`; `gen_x`'s difference is not
        // significant, so its cell is not marked.
        let rows = [row("gen_align", 21.0, 0.001), row("gen_x", 20.1, 0.4)];
        let runs = BTreeMap::from([("score_align".to_string(), "gen_align".to_string())]);
        let marks = Marks::new(&rows, &runs);
        assert_eq!(marks.get("score_align", "flores200", "BLEU", "en-de"), MARK);
        assert_eq!(marks.get("gen_align", "flores200", "BLEU", "en-de"), "");
        assert_eq!(marks.get("gen_x", "flores200", "BLEU", "en-de"), "");
        assert_eq!(marks.get("score_align", "flores200", "chrF++", "en-de"), "");
        assert_eq!(
            marks.legend(),
            [
                "† significantly different from the baseline `gen_mt` (p <= 0.05; sacrebleu's paired bootstrap resampling, 1000 resamples, seed 12345)"
            ]
        );
        assert_eq!(report_metric("chrF2++"), "chrF++");
        assert_eq!(report_metric("chrF3"), "chrF");
    }
}
