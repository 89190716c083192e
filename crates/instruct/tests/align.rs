//! AlignInstruct, HintInstruct and ReviseInstruct on the real WPT-2003 Hansards gold alignments.
mod common;

use std::collections::HashSet;

use alinea_instruct::*;
use common::*;

const N: usize = 150;

fn assertion(row: &InstructRow) -> (String, String) {
    let a = row.instruction.rsplit_once("\nAssertion: \"").unwrap().1;
    let (y, rest) = a.split_once("\" can be aligned with \"").unwrap();
    let x = rest.strip_suffix("\" statistically.").unwrap();
    (y.to_string(), x.to_string())
}

#[test]
fn true_rows_are_gold_pairs_and_negatives_are_misaligned() {
    check_misaligned(&hansards_corpus(N));
}

/// Hansards with every two consecutive diagonal links (i, j), (i+1, j+1) merged into one 2-token phrase pair, on
/// top of the one-token pairs: negatives must then respect multi-token spans too.
#[test]
fn phrase_pairs_negatives_are_misaligned() {
    let (pairs, toks, mut gold) = hansards(N);
    let mut phrases = Vec::new();
    for a in &gold {
        if let Some(b) = gold.iter().find(|b| {
            b.pair_id == a.pair_id && b.src_start == a.src_end && b.tgt_start == a.tgt_end
        }) {
            let t = toks.iter().find(|t| t.pair_id == a.pair_id).unwrap();
            let p = pairs.iter().find(|p| p.pair_id == a.pair_id).unwrap();
            phrases.push(GoldPair {
                src_end: b.src_end,
                tgt_end: b.tgt_end,
                src_phrase: p.src
                    [t.src[a.src_start as usize].start..t.src[b.src_end as usize - 1].end]
                    .to_string(),
                tgt_phrase: p.tgt
                    [t.tgt[a.tgt_start as usize].start..t.tgt[b.tgt_end as usize - 1].end]
                    .to_string(),
                ..a.clone()
            });
        }
    }
    assert!(phrases.len() > 100);
    gold.extend(phrases);
    let corpus = AlignedCorpus::new(&pairs, &toks, &gold).unwrap();
    let out = check_misaligned(&corpus);
    assert!(
        out.rows
            .iter()
            .any(|r| r.label == Some(false) && r.swap_end.unwrap() - r.swap_start.unwrap() == 2)
    );
}

fn check_misaligned(corpus: &AlignedCorpus) -> BuildOutput {
    let out = build_align(
        corpus,
        &names(),
        &TokenCounter::Bytes,
        &AlignParams {
            length: unlimited(),
            ..Default::default()
        },
    )
    .unwrap();
    let by_id: std::collections::HashMap<u64, &AlignedSentence> = corpus
        .sentences
        .iter()
        .map(|s| (s.pair.pair_id, s))
        .collect();
    let (mut n_true, mut n_false, mut n_fallback) = (0, 0, 0);
    for r in &out.rows {
        let s = by_id[&r.pair_id.unwrap()];
        // English is Y (src side), French is X (tgt side).
        assert_eq!((r.src_lang.as_str(), r.tgt_lang.as_str()), ("en", "fr"));
        assert!(r.instruction.contains(&format!(
            "\nEnglish: {}\nFrench: {}\n",
            s.pair.src, s.pair.tgt
        )));
        let (yp, xp) = assertion(r);
        let gs = (r.src_start.unwrap() as usize, r.src_end.unwrap() as usize);
        let gt = (r.tgt_start.unwrap() as usize, r.tgt_end.unwrap() as usize);
        let base = s
            .gold
            .iter()
            .find(|g| g.src == gs && g.tgt == gt)
            .expect("row names a gold pair of its sentence");
        match r.label {
            Some(true) => {
                n_true += 1;
                assert_eq!(r.output, "True");
                assert_eq!(
                    (yp.as_str(), xp.as_str()),
                    (base.src_phrase.as_str(), base.tgt_phrase.as_str())
                );
                assert!(r.swapped_side.is_none());
            }
            Some(false) => {
                n_false += 1;
                assert_eq!(r.output, "False");
                let side = r.swapped_side.unwrap();
                let span = (r.swap_start.unwrap() as usize, r.swap_end.unwrap() as usize);
                // Same-sentence by default; short sentences fall back to another sentence.
                let origin_sentence = match r.swap_origin.unwrap() {
                    SwapOrigin::Same => {
                        assert_eq!(r.swap_pair_id, r.pair_id);
                        s
                    }
                    SwapOrigin::Other => {
                        n_fallback += 1;
                        assert_ne!(r.swap_pair_id, r.pair_id);
                        by_id[&r.swap_pair_id.unwrap()]
                    }
                };
                let rep = origin_sentence.span_text(side, span);
                let kept = base.phrase(side.other());
                // The assertion shows the replacement on the swapped side and the gold phrase on the other.
                let (src_t, tgt_t) = if side == Side::Src {
                    (rep, kept)
                } else {
                    (kept, rep)
                };
                assert_eq!((yp.as_str(), xp.as_str()), (src_t, tgt_t));
                // Never a gold pair of the sentence, by span or by text.
                for g in &s.gold {
                    if r.swap_origin == Some(SwapOrigin::Same) {
                        let cand = if side == Side::Src {
                            (span, base.tgt)
                        } else {
                            (base.src, span)
                        };
                        assert_ne!(
                            (g.src, g.tgt),
                            cand,
                            "negative coincides with a gold pair: {r:?}"
                        );
                    }
                    assert!(
                        !(g.src_phrase == src_t && g.tgt_phrase == tgt_t),
                        "negative text equals a gold pair: {src_t} / {tgt_t}"
                    );
                    // No replacement token is linked to the kept side's span.
                    let (gs_side, go) = (g.span(side), g.span(side.other()));
                    let kept_span = base.span(side.other());
                    if r.swap_origin == Some(SwapOrigin::Same)
                        && go.0 < kept_span.1
                        && kept_span.0 < go.1
                    {
                        assert!(
                            span.1 <= gs_side.0 || gs_side.1 <= span.0,
                            "replacement overlaps a linked token"
                        );
                    }
                }
                assert!(
                    rep.chars().any(char::is_alphanumeric),
                    "punctuation-only replacement {rep:?}"
                );
            }
            None => panic!("align row without label"),
        }
    }
    assert!(n_true > 100, "{n_true}");
    let failed = out
        .stats
        .dropped
        .get("no_negative_candidate")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        n_true,
        n_false + failed as usize,
        "ratio 1.0: one negative per positive"
    );
    assert!(
        failed * 50 < n_true as u64,
        "too many failed negatives: {failed}"
    );
    assert!(
        n_fallback * 5 < n_false,
        "fallbacks {n_fallback} of {n_false}"
    );
    assert_eq!(out.stats.by_task_label["align"]["true"], n_true as u64);
    assert_eq!(out.stats.by_task_label["align"]["false"], n_false as u64);
    // Sides are chosen uniformly.
    let src = out
        .rows
        .iter()
        .filter(|r| r.swapped_side == Some(Side::Src))
        .count() as f64;
    assert!(
        (src / n_false as f64 - 0.5).abs() < 0.15,
        "src swaps {src} of {n_false}"
    );
    out
}

#[test]
fn label_balance_follows_the_ratio() {
    let corpus = hansards_corpus(N);
    for (per, ratio) in [(2usize, 0.5f64), (3, 2.0), (1, 0.0)] {
        let p = AlignParams {
            pairs_per_sentence: per,
            negative_ratio: ratio,
            length: unlimited(),
            ..Default::default()
        };
        let out = build_align(&corpus, &names(), &TokenCounter::Bytes, &p).unwrap();
        let t = out.rows.iter().filter(|r| r.label == Some(true)).count() as f64;
        let f = out.rows.iter().filter(|r| r.label == Some(false)).count() as f64
            + *out.stats.dropped.get("no_negative_candidate").unwrap_or(&0) as f64;
        assert!(t > 0.0);
        assert!(
            (f / t - ratio).abs() < 0.05 + ratio * 0.02,
            "per {per} ratio {ratio}: {t} true, {f} false"
        );
        // No sentence yields more True rows than asked.
        let mut per_pair = std::collections::HashMap::new();
        for r in out.rows.iter().filter(|r| r.label == Some(true)) {
            *per_pair.entry(r.pair_id).or_insert(0usize) += 1;
        }
        assert!(per_pair.values().all(|&n| n <= per));
    }
}

#[test]
fn negatives_from_other_sentences() {
    let corpus = hansards_corpus(N);
    let p = AlignParams {
        negative_origin: SwapOrigin::Other,
        length: unlimited(),
        ..Default::default()
    };
    let out = build_align(&corpus, &names(), &TokenCounter::Bytes, &p).unwrap();
    let by_id: std::collections::HashMap<u64, &AlignedSentence> = corpus
        .sentences
        .iter()
        .map(|s| (s.pair.pair_id, s))
        .collect();
    let all_gold: HashSet<(String, String)> = corpus
        .sentences
        .iter()
        .flat_map(|s| {
            s.gold
                .iter()
                .map(|g| (g.src_phrase.clone(), g.tgt_phrase.clone()))
        })
        .collect();
    let negs: Vec<&InstructRow> = out.rows.iter().filter(|r| r.label == Some(false)).collect();
    assert!(negs.len() > 100);
    for r in negs {
        assert_eq!(r.swap_origin, Some(SwapOrigin::Other));
        assert_ne!(r.swap_pair_id, r.pair_id);
        let side = r.swapped_side.unwrap();
        let o = by_id[&r.swap_pair_id.unwrap()];
        let rep = o.span_text(
            side,
            (r.swap_start.unwrap() as usize, r.swap_end.unwrap() as usize),
        );
        let (yp, xp) = assertion(r);
        assert_eq!(if side == Side::Src { yp } else { xp }, rep);
        // Not a gold pair of any sentence of the corpus (corpus-wide check, on by default).
        assert!(
            !all_gold.contains(&assertion(r)),
            "negative recreates a gold pair: {r:?}"
        );
    }
    assert!(out.stats.swaps.keys().all(|k| k.ends_with("/other")));
    // Without the corpus-wide check, other-sentence swaps do recreate gold pairs now and then.
    let p = AlignParams {
        corpus_wide_check: false,
        pairs_per_sentence: 0,
        ..p
    };
    let loose = build_align(&corpus, &names(), &TokenCounter::Bytes, &p).unwrap();
    let recreated = loose
        .rows
        .iter()
        .filter(|r| r.label == Some(false) && all_gold.contains(&assertion(r)))
        .count();
    assert!(recreated > 0, "the check is not vacuous on this data");
}

fn to_jsonl(rows: &[InstructRow]) -> Vec<u8> {
    let mut v = Vec::new();
    write_jsonl(rows, ExportFormat::Rows, &mut v).unwrap();
    v
}

#[test]
fn deterministic_and_thread_count_independent() {
    let corpus = hansards_corpus(N);
    let p = AlignParams {
        pairs_per_sentence: 2,
        negative_ratio: 1.5,
        seed: 7,
        ..Default::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            to_jsonl(
                &build_align(&corpus, &names(), &TokenCounter::Bytes, &p)
                    .unwrap()
                    .rows,
            )
        })
    };
    let one = run(1);
    assert_eq!(one, run(4));
    assert_eq!(one, run(1));
    let other_seed = AlignParams {
        seed: 8,
        ..p.clone()
    };
    assert_ne!(
        one,
        to_jsonl(
            &build_align(&corpus, &names(), &TokenCounter::Bytes, &other_seed)
                .unwrap()
                .rows
        )
    );
    // Without the other-sentence fallback and the corpus-wide check, a pair's rows do not depend on the other
    // pairs.
    let p = AlignParams {
        fallback_to_other: false,
        corpus_wide_check: false,
        ..p
    };
    let (pairs, toks, gold) = hansards(N);
    let sub = AlignedCorpus::new(
        &pairs[..40],
        &toks[..40],
        &gold
            .iter()
            .filter(|g| g.pair_id < 1040)
            .cloned()
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let small = build_align(&sub, &names(), &TokenCounter::Bytes, &p)
        .unwrap()
        .rows;
    let full = build_align(&corpus, &names(), &TokenCounter::Bytes, &p)
        .unwrap()
        .rows;
    let full_first: Vec<_> = full
        .into_iter()
        .filter(|r| r.pair_id.unwrap() < 1040)
        .collect();
    assert_eq!(small, full_first);
}

#[test]
fn hint_uses_at_most_five_gold_pairs() {
    let corpus = hansards_corpus(N);
    let out = build_hint(
        &corpus,
        &names(),
        &TokenCounter::Bytes,
        &HintParams {
            length: unlimited(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(out.rows.len() > 100);
    let by_id: std::collections::HashMap<u64, &AlignedSentence> = corpus
        .sentences
        .iter()
        .map(|s| (s.pair.pair_id, s))
        .collect();
    let mut saw_five = false;
    for r in &out.rows {
        let s = by_id[&r.pair_id.unwrap()];
        let hints: Vec<&str> = r
            .instruction
            .lines()
            .filter(|l| l.starts_with("- ("))
            .collect();
        assert!((1..=5).contains(&hints.len()));
        saw_five |= hints.len() == 5;
        let gold: HashSet<String> = s
            .gold
            .iter()
            .map(|g| format!("- ({}, {}),", g.tgt_phrase, g.src_phrase))
            .collect();
        for h in hints {
            assert!(gold.contains(h), "hint {h} is not a gold pair");
        }
        assert!(r.instruction.starts_with("Use the following alignment hints and translate from English to French.\nAlignments between French and English:\n- ("));
        assert!(
            r.instruction
                .ends_with(&format!("\nEnglish: {}\nFrench:", s.pair.src))
        );
        assert_eq!(r.output, format!(" {}", s.pair.tgt));
    }
    assert!(saw_five);
    let p: HintParams = serde_json::from_str(
        r#"{"max_hints": 2, "directions": "both", "selection": "top-score", "length": {"max_input_tokens": 0}}"#,
    )
    .unwrap();
    let out2 = build_hint(&corpus, &names(), &TokenCounter::Bytes, &p).unwrap();
    assert_eq!(out2.rows.len(), 2 * out.rows.len());
    assert!(out2.rows.iter().all(|r| {
        r.instruction
            .lines()
            .filter(|l| l.starts_with("- ("))
            .count()
            <= 2
    }));
    assert!(
        out2.rows[1]
            .instruction
            .starts_with("Use the following alignment hints and translate from French to English.")
    );
}

#[test]
fn revise_corrupts_exactly_one_span() {
    let corpus = hansards_corpus(N);
    for origin in [SwapOrigin::Other, SwapOrigin::Same] {
        let p = ReviseParams {
            origin,
            length: unlimited(),
            ..Default::default()
        };
        let out = build_revise(&corpus, &names(), &TokenCounter::Bytes, &p).unwrap();
        assert!(out.rows.len() > 100);
        let by_id: std::collections::HashMap<u64, &AlignedSentence> = corpus
            .sentences
            .iter()
            .map(|s| (s.pair.pair_id, s))
            .collect();
        for r in &out.rows {
            let s = by_id[&r.pair_id.unwrap()];
            let x = &s.pair.tgt;
            let corrupted = r.instruction.rsplit_once("\nFrench: ").unwrap().1;
            let (t0, t1) = (r.tgt_start.unwrap() as usize, r.tgt_end.unwrap() as usize);
            let (b0, b1) = s.byte_range(Side::Tgt, (t0, t1));
            let rep = &corrupted[b0..corrupted.len() - (x.len() - b1)];
            assert_eq!(&corrupted[..b0], &x[..b0]);
            assert_eq!(&corrupted[corrupted.len() - (x.len() - b1)..], &x[b1..]);
            assert_ne!(rep, &x[b0..b1]);
            assert_eq!(
                r.output,
                format!(
                    "The incorrectly translated word is \"{rep}\". It should be \"{}\".",
                    &x[b0..b1]
                )
            );
            assert_eq!(r.swapped_side, Some(Side::Tgt));
            assert_eq!(r.swap_origin, Some(origin));
            assert!(r.instruction.starts_with(&format!(
                "Given the following translation of French from English, output the incorrectly translated word and correct it.\nEnglish: {}\nFrench: ",
                s.pair.src
            )));
        }
    }
}

#[test]
fn invalid_inputs_name_the_field() {
    let (pairs, toks, mut gold) = hansards(10);
    gold[3].tgt_end = 99;
    let e = AlignedCorpus::new(&pairs, &toks, &gold)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("gold pairs row 3 (pair ") && e.contains("field `tgt_end` = 99"),
        "{e}"
    );
    let (pairs, toks, mut gold) = hansards(10);
    gold[0].pair_id = 5;
    let e = AlignedCorpus::new(&pairs, &toks, &gold)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "gold pairs row 0: pair_id 5 not found in pairs");
    let (pairs, mut toks, gold) = hansards(10);
    toks[2].src[0].end = 10_000;
    let e = AlignedCorpus::new(&pairs, &toks, &gold)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("tokens of pair 1002, side src, token 0: byte span"),
        "{e}"
    );
    let (mut pairs, toks, gold) = hansards(10);
    pairs[4].pair_id = pairs[3].pair_id;
    assert!(matches!(
        AlignedCorpus::new(&pairs, &toks, &gold),
        Err(InstructError::DuplicatePair { row: 4, .. })
    ));
    let e = build_align(
        &hansards_corpus(5),
        &names(),
        &TokenCounter::Bytes,
        &AlignParams {
            negative_ratio: -1.0,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("negative_ratio"));
}

/// Building range by range (what the stage does, so that a paper-scale corpus never holds all its rows as
/// structs) gives the rows and drop counts of one call, other-sentence negatives and the corpus-wide check
/// included: every range still swaps from the whole corpus.
#[test]
fn sentence_ranges_concatenate_to_the_whole_build() {
    let corpus = hansards_corpus(N);
    let p = AlignParams {
        negative_origin: SwapOrigin::Other,
        corpus_wide_check: true,
        length: unlimited(),
        ..Default::default()
    };
    let names = names();
    let whole = build_align(&corpus, &names, &TokenCounter::Bytes, &p).unwrap();
    let builder = AlignBuilder::new(&corpus, &names, &TokenCounter::Bytes, &p).unwrap();
    let (mut rows, mut dropped) = (Vec::new(), std::collections::BTreeMap::<String, u64>::new());
    let n = corpus.sentences.len();
    for start in (0..n).step_by(17) {
        let part = builder.sentences(start..(start + 17).min(n)).unwrap();
        rows.extend(part.rows);
        for (k, v) in part.stats.dropped {
            *dropped.entry(k).or_default() += v;
        }
    }
    assert!(
        whole
            .rows
            .iter()
            .any(|r| r.swap_origin == Some(SwapOrigin::Other))
    );
    assert_eq!(rows.len(), whole.rows.len());
    assert!(
        rows == whole.rows,
        "the ranges' rows differ from the whole build's"
    );
    assert_eq!(dropped, whole.stats.dropped);
}
