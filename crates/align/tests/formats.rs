//! Tokenization spans, Pharaoh/WPT I/O, AER arithmetic, symmetrization worked examples, gold pair extraction.
use alinea_align::pharaoh::*;
use alinea_align::*;

#[test]
fn tokenize_modes_keep_spans() {
    let text = "Hello, world! It's 3.14 — «ok»";
    let t = tokenize(text, TokenizeMode::Unicode);
    let words: Vec<&str> = t.iter().map(|t| t.text).collect();
    assert_eq!(
        words,
        [
            "Hello", ",", "world", "!", "It's", "3.14", "—", "«", "ok", "»"
        ]
    );
    for tok in &t {
        assert_eq!(&text[tok.start..tok.end], tok.text);
    }
    let w: Vec<&str> = tokenize("  a\tb,c  d ", TokenizeMode::Whitespace)
        .iter()
        .map(|t| t.text)
        .collect();
    assert_eq!(w, ["a", "b,c", "d"]);
    // CRLF input: `\r` never ends up inside a token (upstream keeps it on the last token, notes §2).
    for mode in [
        TokenizeMode::Unicode,
        TokenizeMode::Whitespace,
        TokenizeMode::Chars,
    ] {
        let t: Vec<&str> = tokenize("a b\r\n", mode).iter().map(|t| t.text).collect();
        assert_eq!(t, ["a", "b"], "{mode:?}");
    }
    let zh = "我爱 iPhone手机。";
    let c: Vec<&str> = tokenize(zh, TokenizeMode::Chars)
        .iter()
        .map(|t| t.text)
        .collect();
    assert_eq!(c, ["我", "爱", "iPhone", "手", "机", "。"]);
    let km = "សួស្តី";
    let k = tokenize(km, TokenizeMode::Chars);
    assert!(k.len() > 1 && k.iter().all(|t| &km[t.start..t.end] == t.text));
    assert!(tokenize("", TokenizeMode::Unicode).is_empty());
    assert_eq!(
        "chars".parse::<TokenizeMode>().unwrap(),
        TokenizeMode::Chars
    );
}

#[test]
fn pharaoh_read_write_and_errors() {
    let a = read_pharaoh("0-0 1-2\n\n3-1 ||| 2-2\r\n", false).unwrap();
    assert_eq!(a, vec![vec![(0, 0), (1, 2)], vec![], vec![(2, 2)]]);
    assert_eq!(write_pharaoh(&a), "0-0 1-2\n\n2-2\n");
    let g = read_pharaoh_gold("1-1 2p3 2-3\n", true).unwrap();
    assert_eq!(g[0].sure, vec![(0, 0), (1, 2)]);
    assert_eq!(g[0].possible, vec![(0, 0), (1, 2)]);
    let g = read_pharaoh_gold("1-1 2p3\n", true).unwrap();
    assert_eq!(
        (g[0].sure.clone(), g[0].possible.clone()),
        (vec![(0, 0)], vec![(0, 0), (1, 2)])
    );
    let e = read_pharaoh("0-0\n1x2\n", false).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(read_pharaoh_gold("0-1\n", true).is_err());
    let w = read_wpt("1 1 1 S\n1 2 3 P\n2 0 1 S\n3 2 2\n", 3).unwrap();
    assert_eq!(w[0].sure, vec![(0, 0)]);
    assert_eq!(w[0].possible, vec![(0, 0), (1, 2)]);
    assert!(w[1].possible.is_empty());
    assert_eq!(w[2].sure, vec![(1, 1)]);
    assert!(
        read_wpt("1 1 1 X\n", 1)
            .unwrap_err()
            .to_string()
            .contains("line 1")
    );
}

#[test]
fn aer_arithmetic() {
    // S = {00, 11}, P = S ∪ {12}; A = {00, 12, 22}: |A∩S| = 1, |A∩P| = 2 → AER = 1 − 3/5.
    let g = read_pharaoh_gold("0-0 1-1 1p2\n", false).unwrap();
    let s = aer(&g, &[vec![(0, 0), (1, 2), (2, 2), (0, 0)]]).unwrap();
    assert!((s.aer - 0.4).abs() < 1e-12);
    assert!((s.precision - 2.0 / 3.0).abs() < 1e-12 && (s.recall - 0.5).abs() < 1e-12);
    assert!(aer(&g, &[]).is_err());
}

#[test]
fn symmetrize_worked_examples() {
    use Method::*;
    let f = [(0, 0), (1, 1), (2, 1)];
    let r = [(0, 0), (1, 1), (1, 2)];
    assert_eq!(symmetrize_sentence(&f, &r, Intersect), vec![(0, 0), (1, 1)]);
    assert_eq!(
        symmetrize_sentence(&f, &r, Union),
        vec![(0, 0), (1, 1), (1, 2), (2, 1)]
    );
    // Both union points touch (1,1) and have an unaligned row or column.
    assert_eq!(
        symmetrize_sentence(&f, &r, GrowDiag),
        vec![(0, 0), (1, 1), (1, 2), (2, 1)]
    );
    // Isolated points: grow-diag adds nothing; final-and adds A's (2,2) (row and column free), then B's (0,2) is
    // refused (row 0 taken); plain final adds (0,2) too only if row or column is free — column 2 is taken by then.
    let f = [(0, 0), (2, 2)];
    let r = [(0, 0), (0, 2)];
    assert_eq!(symmetrize_sentence(&f, &r, GrowDiag), vec![(0, 0)]);
    assert_eq!(
        symmetrize_sentence(&f, &r, GrowDiagFinalAnd),
        vec![(0, 0), (2, 2)]
    );
    assert_eq!(
        symmetrize_sentence(&f, &r, GrowDiagFinal),
        vec![(0, 0), (2, 2)]
    );
    // Points are added at once, so later candidates of the same pass see them: (1,0) joins via (0,0), then
    // (1,1) via (1,0) (column 1 free), then (2,2) via its diagonal neighbour (1,1), all in the first pass.
    let f = [(0, 0), (1, 0), (1, 1)];
    let r = [(0, 0), (2, 2)];
    assert_eq!(
        symmetrize_sentence(&f, &r, GrowDiag),
        vec![(0, 0), (1, 0), (1, 1), (2, 2)]
    );
    // Candidates come in (i, j) order: (0,1) is tried before (1,0); once (0,1) is in, column 1 and row 0 are taken.
    let f = [(1, 1), (0, 1)];
    let r = [(1, 1), (1, 0)];
    assert_eq!(
        symmetrize_sentence(&f, &r, GrowDiag),
        vec![(0, 1), (1, 0), (1, 1)]
    );
    // grow-diag-final (or) vs final-and: A's (0,1) has column 1 free but row 0 aligned.
    let f = [(0, 0), (0, 1)];
    let r = [(0, 0), (1, 0)];
    assert_eq!(
        symmetrize_sentence(&f, &r, GrowDiagFinalAnd),
        vec![(0, 0), (0, 1), (1, 0)]
    );
    let f = [(0, 0), (0, 2)];
    let r = [(0, 0)];
    assert_eq!(symmetrize_sentence(&f, &r, GrowDiagFinalAnd), vec![(0, 0)]);
    assert_eq!(
        symmetrize_sentence(&f, &r, GrowDiagFinal),
        vec![(0, 0), (0, 2)]
    );
    assert_eq!(symmetrize_sentence(&[], &[], GrowDiagFinalAnd), vec![]);
    assert!(symmetrize(&[vec![]], &[], Union).is_err());
    assert_eq!("gdfa".parse::<Method>().unwrap(), GrowDiagFinalAnd);
}

#[test]
fn gold_pairs_from_original_text() {
    let src_text = ["La maison bleue.", "Le chat !", "la maison"];
    let tgt_text = ["The blue house.", "The cat!", "the house"];
    let s_tok: Vec<Vec<Token>> = src_text
        .iter()
        .map(|t| tokenize(t, TokenizeMode::Unicode))
        .collect();
    let t_tok: Vec<Vec<Token>> = tgt_text
        .iter()
        .map(|t| tokenize(t, TokenizeMode::Unicode))
        .collect();
    let words = |v: &Vec<Vec<Token>>| -> Vec<Vec<String>> {
        v.iter()
            .map(|s| s.iter().map(|t| t.text.to_lowercase()).collect())
            .collect()
    };
    let p = Ibm2Params {
        keep_posteriors: true,
        ..Default::default()
    };
    let (f, r) = align_bidirectional(&words(&s_tok), &words(&t_tok), &p).unwrap();
    // A hand alignment to make the expected pairs certain: la-the, maison-house, bleue-blue, .-. ; le-the, chat-cat, !-!
    let links = vec![
        vec![(0, 0), (1, 2), (2, 1), (3, 3)],
        vec![(0, 0), (1, 1), (2, 2)],
        vec![(0, 0), (1, 1)],
    ];
    let input = PairInput {
        src_text: &src_text,
        tgt_text: &tgt_text,
        src_tokens: &s_tok,
        tgt_tokens: &t_tok,
        links: &links,
        forward: &f,
        reverse: &r,
    };
    let all = extract_pairs(
        input,
        &PairParams {
            filter: PairFilter {
                min_score: 0.0,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let got: Vec<(usize, &str, &str)> = all
        .iter()
        .map(|p| (p.sentence, p.src_text.as_str(), p.tgt_text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "La", "The"),
            (0, "maison", "house"),
            (0, "bleue", "blue"),
            (1, "Le", "The"),
            (1, "chat", "cat"),
            (2, "la", "the"),
            (2, "maison", "house")
        ]
    );
    assert!(all.iter().all(|p| (0.0..=1.0).contains(&p.score)));
    assert_eq!(all[1].src_span, (1, 2));
    assert_eq!(all[1].tgt_span, (2, 3));
    // Phrases up to 2 tokens: "maison bleue" ↔ "blue house" is consistent; text comes from the original.
    let two = extract_pairs(
        input,
        &PairParams {
            filter: PairFilter {
                max_len: 2,
                min_score: 0.0,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        two.iter()
            .any(|p| p.src_text == "maison bleue" && p.tgt_text == "blue house" && p.links == 2)
    );
    assert!(
        !two.iter().any(|p| p.src_text == "La maison"),
        "inconsistent span kept"
    );
    // Punctuation-only pairs are kept when asked.
    let punct = extract_pairs(
        input,
        &PairParams {
            filter: PairFilter {
                min_score: 0.0,
                skip_punctuation: false,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert!(punct.iter().any(|p| p.src_text == "." && p.tgt_text == "."));
    // Threshold filters, and every score kind works.
    for score in [
        ScoreKind::Posterior,
        ScoreKind::TranslationProb,
        ScoreKind::Product,
    ] {
        let hi = extract_pairs(
            input,
            &PairParams {
                filter: PairFilter {
                    min_score: 0.999_999,
                    score,
                    ..Default::default()
                },
                lowercase: true,
            },
        )
        .unwrap();
        assert!(hi.len() < all.len(), "{score:?}");
    }
    // From stored per-link scores (what the align.pairs stage does): identical rows, plus counts of the drops.
    let words = |v: &Vec<Vec<Token>>| -> Vec<Vec<String>> {
        v.iter()
            .map(|s| s.iter().map(|t| t.text.to_string()).collect())
            .collect()
    };
    let scores = link_scores(&words(&s_tok), &words(&t_tok), &links, &f, &r, true).unwrap();
    assert_eq!(
        scores.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![4, 3, 2]
    );
    assert!(
        scores
            .iter()
            .flatten()
            .all(|s| (0.0..=1.0).contains(&s.posterior)
                && (0.0..=1.0).contains(&s.tprob)
                && s.get(ScoreKind::Product) == s.posterior * s.tprob)
    );
    let scored = ScoredPairInput {
        src_text: &src_text,
        tgt_text: &tgt_text,
        src_tokens: &s_tok,
        tgt_tokens: &t_tok,
        links: &links,
        scores: &scores,
    };
    for params in [
        PairParams {
            filter: PairFilter {
                min_score: 0.0,
                ..Default::default()
            },
            lowercase: true,
        },
        PairParams {
            filter: PairFilter {
                min_score: 0.999_999,
                ..Default::default()
            },
            lowercase: true,
        },
    ] {
        let (rows, st) = extract_pairs_scored(scored, &params.filter).unwrap();
        assert_eq!(rows, extract_pairs(input, &params).unwrap());
        assert_eq!(st.kept, rows.len() as u64);
        assert_eq!(st.candidates, st.kept + st.punctuation + st.below_threshold);
        assert_eq!(st.punctuation, 2, "`.`-`.` and `!`-`!`");
        assert_eq!(st.sentences_without_links, 0);
    }
    let short = vec![vec![], vec![], vec![]];
    let e = extract_pairs_scored(
        ScoredPairInput {
            scores: &short,
            ..scored
        },
        &PairFilter::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("4 links but 0 link scores"), "{e}");
    // Bad links are reported, not panicked on.
    let bad = vec![vec![(9, 0)], vec![], vec![]];
    let e = extract_pairs(
        PairInput {
            links: &bad,
            ..input
        },
        &PairParams::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("sentence 0"), "{e}");
}
