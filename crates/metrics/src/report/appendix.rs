//! The report as a paper's appendix: what a reader needs to reproduce and trust the numbers of one run beyond the
//! score tables. The run (id, version, overrides), the parameters that differ from the defaults and across the
//! pipeline's runs, the data sizes, the sacrebleu signature of every metric, the training and validation loss of
//! every adapter, and sweep plots when a matrix varies a parameter.
//!
//! Pure rendering from a [`Provenance`] that `alinea report` gathers from the store: a cached `report` stage's
//! documents cannot hold it, since the same bytes serve every run with the same inputs, while a run id names one.

use std::fmt::Write as _;

use crate::chart::{LineChart, Series, line_chart};
use crate::html::escape;

use super::axis_title;

/// One run of the pipeline and everything the appendix says about it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Provenance {
    /// The run id (`alinea runs`).
    pub run_id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// When the run started, UTC (`yyyymmdd-hhmmss`).
    pub started: String,
    /// Wall time of the run in seconds.
    pub duration_s: f64,
    /// Version of alinea that ran it.
    pub alinea_version: String,
    /// The `--set` overrides of the run, as given.
    pub overrides: Vec<String>,
    /// How many runs of the pipeline the store keeps (the population `params` compares across).
    pub runs_compared: usize,
    /// Parameters that differ from their kind's default or across the pipeline's runs.
    pub params: Vec<ParamRow>,
    /// Row counts of every table the report depends on.
    pub tables: Vec<TableSize>,
    /// Sentence pairs per split and direction in each pairs table (training and test sets).
    pub splits: Vec<SplitSize>,
    /// Distinct sacrebleu signatures, per metric.
    pub signatures: Vec<(String, String)>,
    /// The loss curves of every adapter.
    pub losses: Vec<LossCurve>,
    /// Sweep plots, one per varied parameter, test set and metric.
    pub sweeps: Vec<Sweep>,
}

/// A parameter of one stage worth a reader's attention.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamRow {
    /// Stage instance.
    pub stage: String,
    /// Parameter name.
    pub param: String,
    /// Its value in this run (JSON).
    pub value: String,
    /// The kind's default (JSON), when it differs from `value`.
    pub default: Option<String>,
    /// The other values it took in the pipeline's kept runs (JSON), when it varied.
    pub others: Vec<String>,
}

/// Rows of one table output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableSize {
    /// Stage instance.
    pub stage: String,
    /// Stage kind.
    pub kind: String,
    /// Output name.
    pub output: String,
    /// Row count.
    pub rows: u64,
}

/// Sentence pairs of one split and direction in one stage's pairs table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SplitSize {
    /// Stage instance.
    pub stage: String,
    /// Split (`train`, `dev`, `devtest`…).
    pub split: String,
    /// Direction `src-tgt`.
    pub direction: String,
    /// Pairs.
    pub rows: u64,
}

/// The loss table of one `train.lora` stage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LossCurve {
    /// The adapter (the stage instance that trained it).
    pub adapter: String,
    /// `(step, training loss)` per optimiser step.
    pub train: Vec<(f64, f64)>,
    /// `(step, validation loss)` on evaluation steps.
    pub validation: Vec<(f64, f64)>,
}

/// One metric over the values of a matrix axis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sweep {
    /// The axis (parameter) varied.
    pub axis: String,
    /// Test set.
    pub test_set: String,
    /// Metric.
    pub metric: String,
    /// The axis values in order, as shown on the x axis.
    pub values: Vec<String>,
    /// Whether every value is a number (a numeric axis); else the values are categories.
    pub numeric: bool,
    /// One series per direction: `(index into values, metric)`.
    pub series: Vec<(String, Vec<(usize, f64)>)>,
}

/// Markdown and HTML of the appendix, in this order: the run, parameters, data sizes, signatures, loss curves,
/// sweeps. The HTML holds the charts (inline SVG); the Markdown says where they are.
pub fn render_appendix(p: &Provenance) -> (String, String) {
    let mut md = String::from("\n## Appendix: provenance of this run\n");
    // The page's tables right-align numbers; the appendix is mostly text (names, values, signatures).
    let mut html = String::from(
        "<section class=\"appendix\">\n<style>.appendix td,.appendix th{text-align:left}</style>\n\
<h2>Appendix: provenance of this run</h2>\n",
    );
    run_section(p, &mut md, &mut html);
    params_section(p, &mut md, &mut html);
    sizes_section(p, &mut md, &mut html);
    signatures_section(p, &mut md, &mut html);
    loss_section(p, &mut md, &mut html);
    sweep_section(p, &mut md, &mut html);
    html.push_str("</section>\n");
    (md, html)
}

/// Inserts `section` before the closing `</body>` of `html` (at the end if there is none).
pub fn insert_before_body_end(html: &str, section: &str) -> String {
    let mut out = html.to_string();
    match out.rfind("</body>") {
        Some(at) => out.insert_str(at, section),
        None => out.push_str(section),
    }
    out
}

/// A Markdown table cell: pipes would end the cell and newlines the row.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Appends one table in both formats.
fn table(md: &mut String, html: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(
        md,
        "\n| {} |\n|{}",
        head.join(" | "),
        "---|".repeat(head.len())
    );
    html.push_str("<table><tr>");
    for h in head {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr>");
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
        html.push_str("<tr>");
        for c in r {
            let _ = write!(html, "<td>{}</td>", escape(c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>\n");
}

fn heading(md: &mut String, html: &mut String, title: &str, note: &str) {
    let _ = writeln!(md, "\n### {title}");
    let _ = writeln!(html, "<h3>{}</h3>", escape(title));
    if !note.is_empty() {
        let _ = writeln!(md, "\n{note}");
        let _ = writeln!(html, "<p>{}</p>", escape(note));
    }
}

fn run_section(p: &Provenance, md: &mut String, html: &mut String) {
    heading(md, html, "Run", "");
    let overrides = if p.overrides.is_empty() {
        "none".to_string()
    } else {
        p.overrides.join(" ")
    };
    let rows = vec![
        vec!["run id".into(), p.run_id.clone()],
        vec!["pipeline".into(), p.pipeline.clone()],
        vec!["started (UTC)".into(), p.started.clone()],
        vec!["wall time".into(), format!("{:.1} s", p.duration_s)],
        vec!["alinea version".into(), p.alinea_version.clone()],
        vec!["--set overrides".into(), overrides],
    ];
    table(md, html, &["item", "value"], &rows);
}

fn params_section(p: &Provenance, md: &mut String, html: &mut String) {
    let note = format!(
        "Every parameter that differs from its stage kind's default, or that took another value in one of the \
{} kept runs of `{}`; all others are the defaults (`alinea help KIND`).",
        p.runs_compared, p.pipeline
    );
    heading(md, html, "Parameters", &note);
    let rows: Vec<Vec<String>> = p
        .params
        .iter()
        .map(|r| {
            vec![
                r.stage.clone(),
                r.param.clone(),
                r.value.clone(),
                r.default.clone().unwrap_or_else(|| "(same)".into()),
                if r.others.is_empty() {
                    "–".into()
                } else {
                    r.others.join(", ")
                },
            ]
        })
        .collect();
    table(
        md,
        html,
        &["stage", "parameter", "this run", "default", "other runs"],
        &rows,
    );
}

fn sizes_section(p: &Provenance, md: &mut String, html: &mut String) {
    heading(
        md,
        html,
        "Data sizes",
        "Rows of every table the report depends on (inputs, training sets, generations and scores).",
    );
    let rows: Vec<Vec<String>> = p
        .tables
        .iter()
        .map(|t| {
            vec![
                t.stage.clone(),
                t.kind.clone(),
                t.output.clone(),
                t.rows.to_string(),
            ]
        })
        .collect();
    table(md, html, &["stage", "kind", "table", "rows"], &rows);
    if !p.splits.is_empty() {
        heading(
            md,
            html,
            "Sentence pairs per split and direction",
            "Training and test sets: the pairs of every ingested or sampled table, per split and direction.",
        );
        let rows: Vec<Vec<String>> = p
            .splits
            .iter()
            .map(|s| {
                vec![
                    s.stage.clone(),
                    s.split.clone(),
                    s.direction.clone(),
                    s.rows.to_string(),
                ]
            })
            .collect();
        table(md, html, &["stage", "split", "direction", "pairs"], &rows);
    }
}

fn signatures_section(p: &Provenance, md: &mut String, html: &mut String) {
    heading(
        md,
        html,
        "Metric signatures",
        "sacrebleu signatures of the scores (the same scorer settings give the same signature).",
    );
    let rows: Vec<Vec<String>> = p
        .signatures
        .iter()
        .map(|(m, s)| vec![m.clone(), s.clone()])
        .collect();
    table(md, html, &["metric", "signature"], &rows);
}

fn loss_section(p: &Provenance, md: &mut String, html: &mut String) {
    if p.losses.is_empty() {
        return;
    }
    heading(
        md,
        html,
        "Training and validation loss",
        "Per adapter: the training loss of every optimiser step (solid) and the validation loss on evaluation \
steps (dashed), from train.lora's `loss` table.",
    );
    let mut rows = Vec::new();
    for c in &p.losses {
        let mut series = vec![Series {
            name: format!("{} training", c.adapter),
            points: c.train.clone(),
            dashed: false,
        }];
        if !c.validation.is_empty() {
            series.push(Series {
                name: format!("{} validation", c.adapter),
                points: c.validation.clone(),
                dashed: true,
            });
        }
        let chart = LineChart {
            title: format!("Loss · {}", c.adapter),
            x_label: "optimiser step".into(),
            y_label: "cross-entropy (nats/token)".into(),
            series,
            categories: None,
        };
        let _ = writeln!(html, "<figure>{}</figure>", line_chart(&chart));
        let last = |v: &[(f64, f64)]| v.last().map_or("–".into(), |p| format!("{:.4}", p.1));
        let best = c
            .validation
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or("–".into(), |p| format!("{:.4} (step {})", p.1, p.0));
        rows.push(vec![
            c.adapter.clone(),
            c.train.len().to_string(),
            c.train
                .first()
                .map_or("–".into(), |p| format!("{:.4}", p.1)),
            last(&c.train),
            last(&c.validation),
            best,
        ]);
    }
    let _ = writeln!(md, "(Charts in report.html.)");
    table(
        md,
        html,
        &[
            "adapter",
            "steps",
            "first training loss",
            "last training loss",
            "last validation loss",
            "lowest validation loss",
        ],
        &rows,
    );
}

fn sweep_section(p: &Provenance, md: &mut String, html: &mut String) {
    if p.sweeps.is_empty() {
        return;
    }
    heading(
        md,
        html,
        "Sweeps",
        "Each varied matrix parameter against each metric: one line per direction.",
    );
    for s in &p.sweeps {
        let numeric: Option<Vec<f64>> = s
            .numeric
            .then(|| s.values.iter().map(|v| v.parse().ok()).collect())
            .flatten();
        let series = s
            .series
            .iter()
            .map(|(name, pts)| Series {
                name: name.clone(),
                points: pts
                    .iter()
                    .map(|&(i, y)| (numeric.as_ref().map_or(i as f64, |xs| xs[i]), y))
                    .collect(),
                dashed: false,
            })
            .collect();
        let chart = LineChart {
            title: format!("{} · {} over {}", s.test_set, s.metric, s.axis),
            x_label: s.axis.clone(),
            y_label: axis_title(&s.metric),
            series,
            categories: numeric.is_none().then(|| s.values.clone()),
        };
        let _ = writeln!(
            md,
            "\n#### Sweep: {} · {} over {}",
            s.test_set, s.metric, s.axis
        );
        let _ = writeln!(
            html,
            "<h4>Sweep: {} · {} over {}</h4>\n<figure>{}</figure>",
            escape(&s.test_set),
            escape(&s.metric),
            escape(&s.axis),
            line_chart(&chart)
        );
        let mut head = vec!["direction".to_string()];
        head.extend(s.values.iter().map(|v| format!("{} = {v}", s.axis)));
        let rows: Vec<Vec<String>> = s
            .series
            .iter()
            .map(|(name, pts)| {
                let mut r = vec![name.clone()];
                r.extend((0..s.values.len()).map(|i| {
                    pts.iter()
                        .find(|p| p.0 == i)
                        .map_or("–".into(), |p| format!("{:.2}", p.1))
                }));
                r
            })
            .collect();
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        table(md, html, &head, &rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_written_in_both_formats() {
        let p = Provenance {
            run_id: "20261202-101010-abcdef".into(),
            pipeline: "demo".into(),
            started: "20261202-101010".into(),
            duration_s: 12.5,
            alinea_version: "0.1.0".into(),
            overrides: vec!["lora.epochs=2".into()],
            runs_compared: 2,
            params: vec![ParamRow {
                stage: "lora".into(),
                param: "epochs".into(),
                value: "2".into(),
                default: Some("3".into()),
                others: vec!["1".into()],
            }],
            tables: vec![TableSize {
                stage: "sample".into(),
                kind: "sample".into(),
                output: "pairs".into(),
                rows: 1200,
            }],
            splits: vec![SplitSize {
                stage: "sample".into(),
                split: "train".into(),
                direction: "en-be".into(),
                rows: 600,
            }],
            signatures: vec![("BLEU".into(), "nrefs:1|case:mixed|tok:13a".into())],
            losses: vec![LossCurve {
                adapter: "lora_mt".into(),
                train: vec![(1.0, 5.0), (2.0, 4.0)],
                validation: vec![(2.0, 4.5)],
            }],
            sweeps: vec![Sweep {
                axis: "objective".into(),
                test_set: "flores200".into(),
                metric: "chrF++".into(),
                values: vec!["MT".into(), "MT+Align".into()],
                numeric: false,
                series: vec![("en-be".into(), vec![(0, 10.0), (1, 12.0)])],
            }],
        };
        let (md, html) = render_appendix(&p);
        for s in [
            "| run id | 20261202-101010-abcdef |",
            "| lora | epochs | 2 | 3 | 1 |",
            "| sample | train | en-be | 600 |",
            "| BLEU | nrefs:1\\|case:mixed\\|tok:13a |",
            "| lora_mt | 2 | 5.0000 | 4.0000 | 4.5000 | 4.5000 (step 2) |",
            "| en-be | 10.00 | 12.00 |",
        ] {
            assert!(md.contains(s), "{s}: {md}");
        }
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "a loss chart and a sweep chart"
        );
        assert!(
            html.contains(">MT+Align</text>"),
            "categories label the sweep's x axis"
        );
        assert!(html.contains(">optimiser step</text>"));
        let page = insert_before_body_end("<html><body><p>x</p></body></html>", &html);
        assert!(page.ends_with("</section>\n</body></html>"));
    }
}
