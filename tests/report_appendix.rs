//! The report as a paper's appendix (issue 13), on a real small run: a learning-rate sweep of the demo's recipe
//! (tests/data/pipelines/sweep.toml) on the shipped samples. `alinea report` must name the run, its parameters,
//! data sizes and metric signatures, draw loss curves and a sweep plot whose SVG parses as XML with both axes.

mod common;

use std::path::Path;

use common::*;
use quick_xml::Reader;
use quick_xml::events::Event;

const PIPELINE: &str = "tests/data/pipelines/sweep.toml";

/// The report documents of stage `report` as `alinea report` writes them: (Markdown, HTML).
fn documents(store: &Path, out: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["report", "report", "-o", out.to_str().unwrap()];
    args.extend(extra);
    json(store, &args);
    (
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        std::fs::read_to_string(out.join("report.html")).unwrap(),
    )
}

/// Every inline `<svg>…</svg>` of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("every svg is closed") + start + 6;
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// Parses one SVG as XML (well-formed, end tags matching) and returns the `class` attributes of its elements and
/// its text.
fn parse_svg(svg: &str) -> (Vec<String>, Vec<String>) {
    let mut reader = Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let (mut classes, mut texts) = (Vec::new(), Vec::new());
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                for a in e.attributes() {
                    let a = a.expect("well-formed attribute");
                    if a.key.as_ref() == b"class" {
                        classes.push(String::from_utf8(a.value.to_vec()).unwrap());
                    }
                }
            }
            Ok(Event::Text(t)) => texts.push(t.decode().unwrap().into_owned()),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("SVG is not well-formed XML: {e}\n{svg}"),
        }
    }
    (classes, texts)
}

#[test]
fn the_report_carries_the_runs_provenance_loss_curves_and_a_sweep_plot() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = json(&store, &["run", PIPELINE]);
    // A second run that changes only the report's title: the appendix names the other value and its run.
    let second = json(
        &store,
        &["run", PIPELINE, "--set", "report.title=\"lr sweep\""],
    );
    let (first_id, second_id) = (
        first["run"].as_str().unwrap(),
        second["run"].as_str().unwrap(),
    );
    let (md, html) = documents(&store, &dir.path().join("out"), &[]);

    // The run, its version and overrides.
    assert!(md.contains(&format!("| run id | {second_id} |")), "{md}");
    assert!(md.contains(&format!(
        "| alinea version | {} |",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(
        md.contains("| --set overrides | report.title=\"lr sweep\" |"),
        "{md}"
    );
    // Parameters: against the defaults, and across the pipeline's runs.
    assert!(
        md.contains("| sample | per_lang | 40 | 200000 | – |"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| report | title | \"lr sweep\" | \"alinea report\" | \"learning-rate sweep\" ({first_id}) |"
        )),
        "{md}"
    );
    // Data sizes: rows of the tables, pairs per split and direction of the training and test sets.
    assert!(md.contains("| sample | sample | pairs | 40 |"), "{md}");
    assert!(md.contains("| sample | train | be-en | 40 |"), "{md}");
    assert!(md.contains("| test | devtest | be-en | 3 |"), "{md}");
    // sacrebleu's signatures, as metrics.score wrote them.
    assert!(
        md.contains(
            "| BLEU | nrefs:1\\|case:mixed\\|eff:no\\|tok:13a\\|smooth:exp\\|version:2.6.0 |"
        ),
        "{md}"
    );
    assert!(md.contains(
        "| chrF++ | nrefs:1\\|case:mixed\\|eff:yes\\|nc:6\\|nw:2\\|space:no\\|version:2.6.0 |"
    ));
    // Loss per adapter, and the sweep over the matrix axis, one column per value in numeric order.
    assert!(md.contains("| lora_0_01 | train.lora | loss | 5 |"), "{md}");
    assert!(
        md.contains("| lora_0_01 | 5 | "),
        "five optimiser steps of the loss table: {md}"
    );
    assert!(
        md.contains("#### Sweep: flores200 · chrF++ over learning_rate"),
        "{md}"
    );
    assert!(
        md.contains("| direction | learning_rate = 0.001 | learning_rate = 0.01 |"),
        "{md}"
    );
    // Every failure column of the scores, empty output first.
    assert!(md.contains("| empty output | off-target | source copy | oscillation | over-translation | under-translation | length ratio |"), "{md}");

    // Every chart parses as XML; the appendix's have both axes titled, the loss and sweep ones among them.
    let charts = svgs(&html);
    assert!(charts.len() >= 6, "score charts, two loss curves, sweeps");
    let mut titles = Vec::new();
    for svg in &charts {
        let (classes, texts) = parse_svg(svg);
        assert!(classes.iter().any(|c| c == "y-axis"), "no y axis: {svg}");
        assert!(classes.iter().any(|c| c == "legend"), "no legend: {svg}");
        titles.extend(texts);
    }
    for t in [
        "optimiser step",
        "cross-entropy (nats/token)",
        "learning_rate",
        "chrF++ (0–100, higher is better)",
        "lora_0_001 training",
        "flores200 · chrF++ over learning_rate",
    ] {
        assert!(
            titles.iter().any(|x| x == t),
            "no `{t}` in the charts: {titles:?}"
        );
    }
    assert!(html.contains(&format!("<td>{second_id}</td>")));

    // `--run` writes the first run's appendix.
    let (md, _) = documents(&store, &dir.path().join("out1"), &["--run", first_id]);
    assert!(md.contains(&format!("| run id | {first_id} |")), "{md}");
    assert!(md.contains("| --set overrides | none |"), "{md}");
}
