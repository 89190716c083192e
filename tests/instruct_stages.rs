//! Instruction stages through the engine, on the shipped OPUS-100 samples.

mod common;

use common::*;

fn pipeline(dir: &std::path::Path) -> String {
    write(
        dir,
        "instr.toml",
        &format!(
            r#"[pipeline]
root = "{}"
[stages.opus]
kind = "ingest.opus100"
inputs = {{ root = "datasets/opus-100" }}
langs = ["be", "li"]
splits = ["train"]
[stages.sample]
kind = "sample"
inputs = {{ pairs = "opus" }}
per_lang = 200
[stages.mt]
kind = "instruct.mt"
inputs = {{ pairs = "sample" }}
[stages.mono]
kind = "instruct.mono"
inputs = {{ pairs = "sample" }}
[stages.train_set]
kind = "instruct.curriculum"
inputs = {{ tasks = ["mt", "mono"] }}
seed = 3
matrix = {{ objective = ["MT+Mono-full", "Mono-full->MT"] }}
"#,
            repo().display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

#[test]
fn mt_rows_follow_the_paper_template_exactly_and_trace_back_to_their_pair() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    json(&store, &["run", &pipeline(dir.path())]);
    let rows = json(
        &store,
        &[
            "query",
            "SELECT m.instruction, m.output, s.src, s.tgt FROM mt m JOIN sample s ON m.pair_id = s.pair_id WHERE m.direction = 'en-be' ORDER BY m.pair_id LIMIT 3",
        ],
    );
    for r in rows.as_array().unwrap() {
        let (be, en) = (r["src"].as_str().unwrap(), r["tgt"].as_str().unwrap());
        assert_eq!(
            r["instruction"],
            format!("Translate from English to Belarusian.\nEnglish: {en}\nBelarusian:")
        );
        assert_eq!(r["output"], format!(" {be}"));
    }
    let counts = json(
        &store,
        &[
            "query",
            "SELECT direction, count(*) AS n FROM mt GROUP BY direction ORDER BY direction",
        ],
    );
    let n: Vec<(String, u64)> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        n.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        ["be-en", "en-be", "en-li", "li-en"]
    );
    assert!(n.iter().all(|(_, c)| *c > 150 && *c <= 200), "{n:?}");
}

#[test]
fn curricula_put_phases_in_order_and_exports_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let report = json(&store, &["run", &pipeline(dir.path())]);
    let staged = json(
        &store,
        &[
            "query",
            "SELECT phase, task, count(*) AS n FROM train_set_mono_full_mt GROUP BY phase, task ORDER BY phase",
        ],
    );
    assert_eq!(staged[0]["phase"], 1);
    assert_eq!(staged[0]["task"], "mono-full");
    assert_eq!(staged[1]["phase"], 2);
    assert_eq!(staged[1]["task"], "mt");
    let mixed = json(
        &store,
        &["query", "SELECT DISTINCT phase FROM train_set_mt_mono_full"],
    );
    assert_eq!(mixed.as_array().unwrap().len(), 1);

    let out = dir.path().join("train.jsonl");
    json(
        &store,
        &[
            "export",
            "train_set_mt_mono_full",
            "-o",
            out.to_str().unwrap(),
            "--as",
            "alpaca",
        ],
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let rows = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "train_set_mt_mono_full")
        .unwrap()["rows"]
        .as_u64()
        .unwrap();
    assert_eq!(text.lines().count() as u64, rows);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["instruction"].is_string() && v["input"].is_string() && v["output"].is_string());
    }
}

#[test]
fn instruction_artifacts_do_not_depend_on_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let one = json(&dir.path().join("a"), &["--threads", "1", "run", &p]);
    let three = json(&dir.path().join("b"), &["--threads", "3", "run", &p]);
    assert_eq!(statuses(&one), statuses(&three));
}

#[test]
fn align_instructions_balance_labels_and_negatives_are_never_gold() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let p = write(
        dir.path(),
        "align.toml",
        &format!(
            r#"[pipeline]
root = "{}"
[stages.opus]
kind = "ingest.opus100"
inputs = {{ root = "datasets/opus-100" }}
langs = ["be"]
splits = ["train"]
[stages.sample]
kind = "sample"
inputs = {{ pairs = "opus" }}
per_lang = 1500
[stages.align]
kind = "align.ibm2"
inputs = {{ pairs = "sample" }}
[stages.gold]
kind = "align.pairs"
inputs = {{ alignments = "align" }}
[stages.ai]
kind = "instruct.align"
inputs = {{ alignments = "align", gold = "gold" }}
"#,
            repo().display()
        ),
    );
    json(&store, &["run", p.to_str().unwrap()]);
    let labels = json(
        &store,
        &[
            "query",
            "SELECT label, count(*) AS n FROM ai GROUP BY label ORDER BY label",
        ],
    );
    let (f, t) = (
        labels[0]["n"].as_u64().unwrap(),
        labels[1]["n"].as_u64().unwrap(),
    );
    assert!(t > 100, "{labels}");
    // negative_ratio 1 makes one negative per positive; rows over the token limit are dropped afterwards, whatever
    // their label, so the counts may differ by at most the rows dropped as too long.
    let log = json(&store, &["log", "ai"]);
    let too_long = log["stats"]["dropped"]["input_too_long"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        f.abs_diff(t) <= too_long,
        "negative_ratio 1 balances the labels: {labels}, {too_long} dropped as too long"
    );
    // A negative's (src span, tgt span) after the swap is never a gold pair of its sentence.
    let clash = json(
        &store,
        &[
            "query",
            "SELECT count(*) AS n FROM ai a JOIN gold g ON a.pair_id = g.pair_id \
                    WHERE a.label = false AND a.swap_origin = 'same' AND \
                    ((a.swapped_side = 'src' AND g.src_start = a.swap_start AND g.src_end = a.swap_end AND g.tgt_start = a.tgt_start AND g.tgt_end = a.tgt_end) OR \
                     (a.swapped_side = 'tgt' AND g.tgt_start = a.swap_start AND g.tgt_end = a.swap_end AND g.src_start = a.src_start AND g.src_end = a.src_end))",
        ],
    );
    assert_eq!(clash[0]["n"], 0);
    let same = json(
        &store,
        &[
            "query",
            "SELECT count(*) AS n FROM ai WHERE label = false AND swap_origin = 'same'",
        ],
    );
    assert!(
        same[0]["n"].as_u64().unwrap() > 50,
        "the check above must have negatives to look at: {same}"
    );
    let row = json(
        &store,
        &[
            "query",
            "SELECT instruction, output FROM ai WHERE label = true LIMIT 1",
        ],
    );
    let instruction = row[0]["instruction"].as_str().unwrap();
    assert!(instruction.starts_with("Given the following parallel sentence between English and Belarusian, judge whether the assertion is True or False.\nEnglish: "), "{instruction}");
    assert!(instruction.ends_with("statistically."));
    assert_eq!(row[0]["output"], "True");
}
