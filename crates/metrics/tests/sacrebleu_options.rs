//! sacrebleu 2.6.0's own test vectors for the options beyond the defaults (test/test_chrf.py and
//! test/test_bleu.py of its source distribution): chrF with beta 3, epsilon smoothing, effective
//! order and kept whitespace; BLEU from given statistics (`compute_bleu`), floor smoothing with
//! corpus-level effective order (`raw_corpus_bleu`), degenerate statistics and max n-gram orders
//! 1 to 6. Tolerances are the ones sacrebleu's tests use.

use alinea_metrics::{Bleu, Chrf, Smoothing, Tokenizer};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn chrf3(eps_smoothing: bool, whitespace: bool) -> Chrf {
    Chrf {
        beta: 3,
        eps_smoothing,
        whitespace,
        ..Chrf::chrf()
    }
}

#[test]
fn chrf_beta3_epsilon_smoothing() {
    let cases: [(&[&str], &[&str], f64); 13] = [
        (&["abcdefg"], &["hijklmnop"], 0.0),
        (&["a"], &["b"], 0.0),
        (&[""], &["b"], 0.0),
        (&[""], &["ref"], 0.0),
        (&[""], &["reference"], 0.0),
        (&["aa"], &["ab"], 8.3333),
        (&["a", "b"], &["a", "c"], 8.3333),
        (&["a"], &["a"], 16.6667),
        (&["a b c"], &["a b c"], 50.0),
        (&["a b c"], &["abc"], 50.0),
        (
            &[
                " risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
            ],
            &[
                "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .",
            ],
            63.361730,
        ),
        (
            &[" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "],
            &["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."],
            64.1302698,
        ),
        (
            &["Niemand hat die Absicht, eine Mauer zu errichten"],
            &["Niemand hat die Absicht, eine Mauer zu errichten"],
            100.0,
        ),
    ];
    for (hyps, refs, want) in cases {
        let got = chrf3(true, false)
            .corpus_score(&s(hyps), &[s(refs)])
            .unwrap()
            .score;
        assert!((got - want).abs() < 1e-4, "{hyps:?}: {got} vs {want}");
    }
}

#[test]
fn chrf_beta3_effective_order() {
    let cases: [(&[&str], &[&str], f64); 7] = [
        (&["a"], &["a"], 100.0),
        (&[""], &["reference"], 0.0),
        (&["a b c"], &["a b c"], 100.0),
        (&["a b c"], &["abc"], 100.0),
        (&[""], &["c"], 0.0),
        (&["a", "b"], &["a", "c"], 50.0),
        (&["aa"], &["ab"], 25.0),
    ];
    for (hyps, refs, want) in cases {
        let got = chrf3(false, false)
            .corpus_score(&s(hyps), &[s(refs)])
            .unwrap()
            .score;
        assert!((got - want).abs() < 1e-4, "{hyps:?}: {got} vs {want}");
    }
}

#[test]
fn chrf_beta3_keeps_whitespace() {
    let cases = [
        (
            "Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
            "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.",
            67.3481606,
        ),
        (
            "risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
            "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .",
            65.2414427,
        ),
    ];
    for (hyp, r, want) in cases {
        let got = chrf3(false, true)
            .corpus_score(&s(&[hyp]), &[s(&[r])])
            .unwrap()
            .score;
        assert!((got - want).abs() < 1e-4, "{hyp}: {got} vs {want}");
        assert!(chrf3(false, true).signature(1).contains("space:yes"));
    }
}

#[test]
fn sentence_chrf_epsilon_smoothing() {
    let cases = [
        (
            "Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
            "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.",
            39.14078509,
        ),
        (
            "Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
            "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.",
            31.22557079,
        ),
        (
            "Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
            "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.",
            57.15704367,
        ),
    ];
    let c = Chrf {
        eps_smoothing: true,
        ..Chrf::chrf()
    };
    for (hyp, r, want) in cases {
        let got = c.sentence_score(hyp, &[r]).score;
        assert!((got - want).abs() < 1e-4, "{hyp}: {got} vs {want}");
    }
}

/// `sacrebleu.raw_corpus_bleu(hyps, refs, smooth_value)`: floor smoothing, tokenize none, corpus
/// effective order.
fn raw_bleu(smooth_value: Option<f64>) -> Bleu {
    Bleu {
        tokenizer: Tokenizer::None,
        smoothing: Smoothing::Floor(smooth_value),
        effective_order: true,
        ..Bleu::default()
    }
}

#[test]
fn raw_corpus_bleu_with_effective_order() {
    let cases: [(&[&str], &[&str], f64); 6] = [
        (&["this is a test", "another test"], &["ref1", "ref2"], 0.0),
        (&["this is a test"], &["this is a test"], 1.0),
        (&["this is a fest"], &["this is a test"], 0.223606797749979),
        (&["test"], &["a test"], 0.3678794411714425),
        (&["a test"], &["a test"], 1.0),
        (&["a little test"], &["a test"], 0.03218297948685433),
    ];
    for (hyps, refs, want) in cases {
        let got = raw_bleu(Some(0.01))
            .corpus_score(&s(hyps), &[s(refs)])
            .unwrap()
            .score
            / 100.0;
        assert!((got - want).abs() < 1e-8, "{hyps:?}: {got} vs {want}");
    }
    // Statistics and the floor offset (`test_statistics`, `test_offset`).
    let (h, r) = (
        s(&["am I am a character sequence"]),
        s(&["I am a symbol string sequence a a"]),
    );
    let with = raw_bleu(Some(0.01))
        .corpus_score(&h, std::slice::from_ref(&r))
        .unwrap();
    assert_eq!(
        (with.counts, with.totals),
        (vec![4, 2, 1, 0], vec![6, 5, 4, 3])
    );
    let zero = raw_bleu(Some(0.0))
        .corpus_score(&h, std::slice::from_ref(&r))
        .unwrap();
    assert!(zero.score.abs() < 1e-8);
    let default = raw_bleu(None).corpus_score(&h, &[r]).unwrap();
    assert!((default.score / 100.0 - 0.1555722182).abs() < 1e-8);
}

/// `BLEU.compute_bleu(correct, total, sys_len, ref_len, …)`: scoring from given statistics.
fn compute_bleu(correct: [u64; 4], total: [u64; 4], sys_len: u64, ref_len: u64, b: &Bleu) -> f64 {
    let mut stats = vec![sys_len, ref_len];
    stats.extend(correct);
    stats.extend(total);
    b.score_from_stats(&stats, 1).score
}

/// `(correct, total, sys_len, ref_len, floor offset)`.
type Degenerate = ([u64; 4], [u64; 4], u64, u64, f64);

#[test]
fn bleu_from_given_statistics() {
    let got = compute_bleu(
        [9, 7, 5, 3],
        [10, 8, 6, 4],
        11,
        11,
        &Bleu {
            smoothing: Smoothing::None,
            ..Bleu::default()
        },
    );
    assert!((got / 100.0 - 0.8375922397).abs() < 1e-8, "{got}");
    // `test_degenerate_statistics`: floor smoothing, exact zeros.
    let degenerate: [Degenerate; 6] = [
        ([0, 0, 0, 0], [4, 4, 2, 1], 0, 1, 0.0),
        ([0, 0, 0, 0], [10, 11, 12, 0], 14, 10, 0.0),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.0),
        ([6, 5, 4, 0], [6, 5, 4, 3], 6, 6, 0.0),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.1),
        ([0, 0, 0, 0], [0, 0, 0, 0], 1, 5, 0.01),
    ];
    for (c, t, sys_len, ref_len, offset) in degenerate {
        let b = Bleu {
            smoothing: Smoothing::Floor(Some(offset)),
            ..Bleu::default()
        };
        assert_eq!(compute_bleu(c, t, sys_len, ref_len, &b), 0.0, "{c:?} {t:?}");
    }
}

#[test]
fn bleu_max_ngram_orders() {
    let refs = vec![
        s(&[
            "The dog bit the man.",
            "It was not unexpected.",
            "The man bit him first.",
        ]),
        s(&[
            "The dog had bit the man.",
            "No one was surprised.",
            "The man had bitten the dog.",
        ]),
    ];
    let hyps = s(&[
        "The dog bit the man.",
        "It wasn't surprising.",
        "The man had just bitten him.",
    ]);
    for (order, want) in [
        (1, "77.65"),
        (2, "60.50"),
        (3, "53.93"),
        (4, "48.53"),
        (5, "46.14"),
        (6, "43.28"),
    ] {
        let b = Bleu {
            max_ngram_order: order,
            ..Bleu::default()
        };
        let got = b.corpus_score(&hyps, &refs).unwrap().score;
        assert_eq!(format!("{got:.2}"), want, "order {order}");
    }
    // `test_corpus_bleu`: the README example under each tokenizer.
    for (tok, want) in [
        (Tokenizer::None, 49.1919566),
        (Tokenizer::Thirteen13a, 48.530827),
        (Tokenizer::Intl, 43.91623493),
    ] {
        let b = Bleu {
            tokenizer: tok,
            ..Bleu::default()
        };
        let got = b.corpus_score(&hyps, &refs).unwrap().score;
        assert!((got - want).abs() < 1e-8, "{got} vs {want}");
    }
}
