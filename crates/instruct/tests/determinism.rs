//! Byte-identical output for any thread count, for every builder.
mod common;

use alinea_instruct::*;
use common::*;

fn jsonl(rows: &[InstructRow]) -> Vec<u8> {
    let mut v = Vec::new();
    write_jsonl(rows, ExportFormat::Rows, &mut v).unwrap();
    v
}

fn everything() -> Vec<u8> {
    let corpus = hansards_corpus(120);
    let pairs: Vec<ParallelPair> = flores("kat_Geor", "ka", 40);
    let n = names();
    let t = TokenCounter::from_file(&data("tiny-bpe-tokenizer.json")).unwrap();
    let mut rows = build_mt(&pairs, &n, &t, &MtParams::default()).unwrap().rows;
    rows.extend(
        build_align(
            &corpus,
            &n,
            &t,
            &AlignParams {
                pairs_per_sentence: 3,
                seed: 11,
                ..Default::default()
            },
        )
        .unwrap()
        .rows,
    );
    rows.extend(
        build_align(
            &corpus,
            &n,
            &t,
            &AlignParams {
                negative_origin: SwapOrigin::Other,
                seed: 11,
                ..Default::default()
            },
        )
        .unwrap()
        .rows,
    );
    rows.extend(
        build_hint(&corpus, &n, &t, &HintParams::default())
            .unwrap()
            .rows,
    );
    rows.extend(
        build_revise(&corpus, &n, &t, &ReviseParams::default())
            .unwrap()
            .rows,
    );
    rows.extend(build_mono(&pairs, &t, &MonoParams::default()).unwrap().rows);
    rows.extend(
        build_denoise(&pairs, &n, &t, &DenoiseParams::default())
            .unwrap()
            .rows,
    );
    let ext = load_alpaca(&data("alpaca_sample.jsonl")).unwrap();
    let mixed = mix(
        &rows,
        &ext,
        &t,
        &MixParams {
            count: Some(3),
            seed: 5,
            ..Default::default()
        },
    )
    .unwrap()
    .rows;
    let cur = build_curriculum(
        &mixed,
        &CurriculumParams {
            objective: "MT+Align+Hint+Revise+Mono-half+Denoise+External->MT".into(),
            seed: 9,
            ..Default::default()
        },
    )
    .unwrap();
    jsonl(&cur.rows)
}

#[test]
fn all_builders_are_thread_count_independent() {
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(everything)
    };
    let a = run(1);
    assert!(a.len() > 100_000);
    assert_eq!(a, run(3));
}
