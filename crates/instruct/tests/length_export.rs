//! Token-length accounting (tokenizer.json and byte fallback) and JSONL exports.
mod common;

use alinea_instruct::*;
use common::*;

fn tok() -> TokenCounter {
    TokenCounter::from_file(&data("tiny-bpe-tokenizer.json")).unwrap()
}

#[test]
fn tokenizer_counts_fewer_tokens_than_bytes() {
    let t = tok();
    let s = "Translate from English to Afrikaans.";
    let n = t.count(s).unwrap();
    assert_eq!(
        n, 20,
        "the fixture's own tokenization printed by make_tokenizer.py"
    );
    assert_eq!(TokenCounter::Bytes.count(s).unwrap(), s.len());
    let be = flores("bel_Cyrl", "be", 1).remove(0).tgt;
    assert!(t.count(&be).unwrap() < be.len());
    let cut = t.truncate(&be, 10).unwrap();
    assert!(be.starts_with(cut) && t.count(cut).unwrap() <= 10 && !cut.is_empty());
    let cut = TokenCounter::Bytes.truncate(&be, 11).unwrap();
    assert!(
        cut.len() <= 11 && be.starts_with(cut),
        "cut on a char boundary"
    );
    let e = TokenCounter::from_file(&data("missing-tokenizer.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing-tokenizer.json"));
}

#[test]
fn limits_drop_or_truncate_and_count() {
    let pairs = flores("afr_Latn", "af", 60);
    let lim = |overflow| LengthParams {
        max_input_tokens: 60,
        max_output_tokens: 40,
        overflow,
    };
    let t = tok();
    let all = build_mt(
        &pairs,
        &names(),
        &t,
        &MtParams {
            length: LengthParams {
                max_input_tokens: 0,
                max_output_tokens: 0,
                overflow: Overflow::Drop,
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(all.rows.len(), 120);
    let over = all
        .rows
        .iter()
        .filter(|r| r.input_tokens > 60 || r.output_tokens > 40)
        .count() as u64;
    assert!(over > 0 && over < 120);

    let dropped = build_mt(
        &pairs,
        &names(),
        &t,
        &MtParams {
            length: lim(Overflow::Drop),
            ..Default::default()
        },
    )
    .unwrap();
    let d = &dropped.stats.dropped;
    assert_eq!(
        dropped.stats.rows
            + d.get("input_too_long").unwrap_or(&0)
            + d.get("output_too_long").unwrap_or(&0),
        120
    );
    assert_eq!(dropped.stats.rows, 120 - over);
    assert!(
        dropped
            .rows
            .iter()
            .all(|r| r.input_tokens <= 60 && r.output_tokens <= 40 && !r.truncated)
    );

    let cut = build_mt(
        &pairs,
        &names(),
        &t,
        &MtParams {
            length: lim(Overflow::Truncate),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cut.rows.len(), 120);
    assert_eq!(cut.stats.truncated, over);
    for r in &cut.rows {
        assert!(r.input_tokens <= 60 && r.output_tokens <= 40);
        assert_eq!(r.input_tokens as usize, t.count(&r.instruction).unwrap());
        let orig = all
            .rows
            .iter()
            .find(|o| o.pair_id == r.pair_id && o.direction == r.direction)
            .unwrap();
        assert!(orig.instruction.starts_with(&r.instruction) && orig.output.starts_with(&r.output));
        assert_eq!(
            r.truncated,
            orig.instruction != r.instruction || orig.output != r.output
        );
    }
}

#[test]
fn exports_parse_back() {
    let pairs = flores("ydd_Hebr", "yi", 5);
    let mut rows = build_mt(
        &pairs,
        &names(),
        &TokenCounter::Bytes,
        &MtParams {
            length: unlimited(),
            ..Default::default()
        },
    )
    .unwrap()
    .rows;
    rows.extend(
        load_alpaca(&data("alpaca_sample.json"))
            .unwrap()
            .iter()
            .map(|a| a.to_row("alpaca")),
    );
    let corpus = hansards_corpus(10);
    rows.extend(
        build_align(
            &corpus,
            &names(),
            &TokenCounter::Bytes,
            &AlignParams {
                length: unlimited(),
                ..Default::default()
            },
        )
        .unwrap()
        .rows,
    );

    let mut buf = Vec::new();
    write_jsonl(&rows, ExportFormat::Alpaca, &mut buf).unwrap();
    let back: Vec<AlpacaRecord> = read_jsonl(&buf[..], "alpaca.jsonl").unwrap();
    assert_eq!(back.len(), rows.len());
    for (a, r) in back.iter().zip(&rows) {
        assert_eq!(
            (&a.instruction, &a.input, &a.output),
            (&r.instruction, &r.input, &r.output)
        );
    }
    // The Alpaca export is itself a valid Alpaca file for `instruct.mix`.
    let text = String::from_utf8(buf.clone()).unwrap();
    assert_eq!(
        parse_alpaca(&text, std::path::Path::new("x.jsonl")).unwrap(),
        back
    );

    let mut buf = Vec::new();
    write_jsonl(&rows, ExportFormat::PromptCompletion, &mut buf).unwrap();
    let back: Vec<PromptCompletion> = read_jsonl(&buf[..], "pc.jsonl").unwrap();
    for (p, r) in back.iter().zip(&rows) {
        assert_eq!((p.prompt.clone(), &p.completion), (r.prompt(), &r.output));
    }
    assert!(back[0].completion.starts_with(' '));

    let mut buf = Vec::new();
    write_jsonl(&rows, ExportFormat::Rows, &mut buf).unwrap();
    let back: Vec<InstructRow> = read_jsonl(&buf[..], "rows.jsonl").unwrap();
    assert_eq!(back, rows);
    let e = read_jsonl::<InstructRow, _>(&b"{}\n"[..], "bad.jsonl")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bad.jsonl:1:"), "{e}");
}

#[test]
fn params_defaults_equal_empty_json() {
    assert_eq!(
        serde_json::from_str::<MtParams>("{}").unwrap(),
        MtParams::default()
    );
    assert_eq!(
        serde_json::from_str::<AlignParams>("{}").unwrap(),
        AlignParams::default()
    );
    assert_eq!(
        serde_json::from_str::<HintParams>("{}").unwrap(),
        HintParams::default()
    );
    assert_eq!(
        serde_json::from_str::<ReviseParams>("{}").unwrap(),
        ReviseParams::default()
    );
    assert_eq!(
        serde_json::from_str::<MonoParams>("{}").unwrap(),
        MonoParams::default()
    );
    assert_eq!(
        serde_json::from_str::<DenoiseParams>("{}").unwrap(),
        DenoiseParams::default()
    );
    assert_eq!(
        serde_json::from_str::<MixParams>("{}").unwrap(),
        MixParams::default()
    );
    assert_eq!(
        serde_json::from_str::<CurriculumParams>("{}").unwrap(),
        CurriculumParams::default()
    );
    assert_eq!(
        serde_json::from_str::<PromptParams>("{}").unwrap(),
        PromptParams::default()
    );
    assert_eq!(
        serde_json::from_str::<LengthParams>("{}").unwrap(),
        LengthParams::default()
    );
    assert!(serde_json::from_str::<LengthParams>(r#"{"max_tokens": 3}"#).is_err());
}
