//! Throughput of every builder on the full OPUS-100 be-en train set (67,312 pairs). Gold pairs are synthetic
//! diagonal one-token links (the aligner's output is not part of the shared data): they exercise the same code
//! paths at a realistic density. Run: `cargo bench -p alinea-instruct` (prints one line per step).

use std::path::PathBuf;
use std::time::Instant;

use alinea_instruct::*;

fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")).join(rel);
    assert!(p.exists(), "bench data missing: {}", p.display());
    p
}

fn timed<T>(label: &str, f: impl FnOnce() -> T, rows: impl Fn(&T) -> usize) -> T {
    let t = Instant::now();
    let out = f();
    let s = t.elapsed().as_secs_f64();
    let n = rows(&out);
    println!(
        "{label:<38} {n:>9} rows {s:>8.3} s {:>11.0} rows/s",
        n as f64 / s.max(1e-9)
    );
    out
}

fn main() {
    let dir = "datasets/opus-100/opus-100-corpus/v1.0/supervised/be-en";
    let be = std::fs::read_to_string(shared(&format!("{dir}/opus.be-en-train.be"))).unwrap();
    let en = std::fs::read_to_string(shared(&format!("{dir}/opus.be-en-train.en"))).unwrap();
    let pairs: Vec<ParallelPair> = en
        .lines()
        .zip(be.lines())
        .enumerate()
        .map(|(i, (e, b))| ParallelPair {
            pair_id: i as u64,
            src_lang: "en".into(),
            tgt_lang: "be".into(),
            src: e.into(),
            tgt: b.into(),
        })
        .collect();
    let names = paper_language_names();
    let tok_path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tiny-bpe-tokenizer.json"
    ));
    let bytes = TokenCounter::Bytes;
    let bpe = TokenCounter::from_file(&tok_path).unwrap();
    println!(
        "pairs: {}, rayon threads: {}",
        pairs.len(),
        rayon::current_num_threads()
    );

    let mt = timed(
        "mt (byte fallback)",
        || build_mt(&pairs, &names, &bytes, &MtParams::default()).unwrap(),
        |o| o.rows.len(),
    );
    timed(
        "mt (tokenizer.json, tiny BPE)",
        || build_mt(&pairs, &names, &bpe, &MtParams::default()).unwrap(),
        |o| o.rows.len(),
    );

    let (toks, gold) = timed(
        "tokens + synthetic gold",
        || {
            let mut toks = Vec::new();
            let mut gold = Vec::new();
            for p in &pairs {
                let (s, t) = (whitespace_tokens(&p.src), whitespace_tokens(&p.tgt));
                let mut last = usize::MAX;
                for i in 0..s.len() {
                    if t.is_empty() {
                        break;
                    }
                    let j = (i * t.len()) / s.len();
                    if j == last {
                        continue;
                    }
                    last = j;
                    gold.push(GoldPair {
                        pair_id: p.pair_id,
                        src_start: i as u32,
                        src_end: i as u32 + 1,
                        tgt_start: j as u32,
                        tgt_end: j as u32 + 1,
                        src_phrase: s[i].text(&p.src).to_string(),
                        tgt_phrase: t[j].text(&p.tgt).to_string(),
                        score: 1.0,
                    });
                }
                toks.push(SentenceTokens {
                    pair_id: p.pair_id,
                    src: s,
                    tgt: t,
                });
            }
            (toks, gold)
        },
        |(_, g)| g.len(),
    );
    let corpus = timed(
        "AlignedCorpus::new (validate+join)",
        || AlignedCorpus::new(&pairs, &toks, &gold).unwrap(),
        |c| c.sentences.len(),
    );
    let align = timed(
        "align (same-sentence negatives)",
        || build_align(&corpus, &names, &bytes, &AlignParams::default()).unwrap(),
        |o| o.rows.len(),
    );
    timed(
        "align (other-sentence, 2/sentence)",
        || {
            let p = AlignParams {
                negative_origin: SwapOrigin::Other,
                pairs_per_sentence: 2,
                ..Default::default()
            };
            build_align(&corpus, &names, &bytes, &p).unwrap()
        },
        |o| o.rows.len(),
    );
    timed(
        "hint",
        || build_hint(&corpus, &names, &bytes, &HintParams::default()).unwrap(),
        |o| o.rows.len(),
    );
    timed(
        "revise",
        || build_revise(&corpus, &names, &bytes, &ReviseParams::default()).unwrap(),
        |o| o.rows.len(),
    );
    timed(
        "mono (full+half)",
        || build_mono(&pairs, &bytes, &MonoParams::default()).unwrap(),
        |o| o.rows.len(),
    );
    timed(
        "denoise (word+span)",
        || build_denoise(&pairs, &names, &bytes, &DenoiseParams::default()).unwrap(),
        |o| o.rows.len(),
    );
    let all: Vec<InstructRow> = mt.rows.iter().chain(&align.rows).cloned().collect();
    let cur = timed(
        "curriculum MT+Align->MT",
        || {
            build_curriculum(
                &all,
                &CurriculumParams {
                    objective: "MT+Align->MT".into(),
                    ..Default::default()
                },
            )
            .unwrap()
        },
        |o| o.rows.len(),
    );
    let ext: Vec<AlpacaRecord> = (0..2000)
        .map(|i| AlpacaRecord {
            instruction: format!("instruction {i}"),
            input: String::new(),
            output: format!("output {i}"),
        })
        .collect();
    timed(
        "mix (replay 1000)",
        || {
            mix(
                &cur.rows,
                &ext,
                &bytes,
                &MixParams {
                    count: Some(1000),
                    ..Default::default()
                },
            )
            .unwrap()
        },
        |o| o.rows.len(),
    );
    timed(
        "export jsonl (prompt-completion)",
        || {
            let mut buf = Vec::new();
            write_jsonl(&cur.rows, ExportFormat::PromptCompletion, &mut buf).unwrap();
            buf
        },
        |_| cur.rows.len(),
    );
    println!(
        "align stats: {}",
        serde_json::to_string(&align.stats.by_task_label).unwrap()
    );
    println!(
        "align drops: {}",
        serde_json::to_string(&align.stats.dropped).unwrap()
    );
}
