//! Hand-checked tiny corpus, thread-count determinism, and the pathologies of fast_align-notes §7.
mod common;
use alinea_align::*;
use common::*;

fn v(s: &[&str]) -> Vec<Vec<String>> {
    s.iter()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn tiny_corpus_hand_checked() {
    // "la" co-occurs with "the" twice, "maison" with "house" twice: EM must pair them, in both directions.
    let src = v(&["la maison", "la fleur", "maison", "la"]);
    let tgt = v(&["the house", "the flower", "house", "the"]);
    for model in [Model::Fixed, Model::FastAlign] {
        let p = Ibm2Params {
            model,
            ..Default::default()
        };
        let (f, r) = align_bidirectional(&src, &tgt, &p).unwrap();
        for a in [&f, &r] {
            assert_eq!(
                a.sentences.get(0).links,
                vec![(0, 0), (1, 1)],
                "{model:?} reverse={}",
                a.reverse
            );
            assert_eq!(a.sentences.get(1).links, vec![(0, 0), (1, 1)]);
            assert_eq!(a.sentences.get(2).links, vec![(0, 0)]);
            assert!(
                a.sentences
                    .get(0)
                    .posteriors
                    .iter()
                    .all(|&q| q > 0.5 && q <= 1.0)
            );
        }
        assert!(
            f.ttable.prob(Some("maison"), "house").unwrap()
                > f.ttable.prob(Some("maison"), "the").unwrap()
        );
        assert!(r.ttable.prob(Some("house"), "maison").unwrap() > 0.5);
    }
    // -I 1 gives prior-only (diagonal) alignments: with λ = 4 and equal lengths, position i links to i.
    let p = Ibm2Params {
        iterations: 1,
        ..Default::default()
    };
    let a = align_corpus(&v(&["a b c d"]), &v(&["w x y z"]), &p).unwrap();
    assert_eq!(
        a.sentences.get(0).links,
        vec![(0, 0), (1, 1), (2, 2), (3, 3)]
    );
    // Reverse links keep src-tgt orientation and come in source order.
    let p = Ibm2Params {
        iterations: 1,
        reverse: true,
        ..Default::default()
    };
    let a = align_corpus(&v(&["a b c"]), &v(&["x y z"]), &p).unwrap();
    assert_eq!(a.sentences.get(0).links, vec![(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn em_without_vb_and_model1_run() {
    let src = v(&["la maison", "la fleur", "maison"]);
    let tgt = v(&["the house", "the flower", "house"]);
    for (fd, vb) in [(false, false), (true, false), (false, true)] {
        let p = Ibm2Params {
            favor_diagonal: fd,
            variational_bayes: vb,
            iterations: 8,
            ..Default::default()
        };
        let a = align_corpus(&src, &tgt, &p).unwrap();
        assert_eq!(
            a.sentences.get(0).links,
            vec![(0, 0), (1, 1)],
            "diag={fd} vb={vb}"
        );
        if !vb {
            // EM rows sum to 1.
            let row: f64 = ["the", "house"]
                .iter()
                .map(|w| a.ttable.prob(Some("maison"), w).unwrap())
                .sum();
            assert!((row - 1.0).abs() < 1e-9);
        }
    }
}

#[test]
fn no_null_word_links_every_generated_token() {
    let src = v(&["la maison bleue", "la fleur", "maison"]);
    let tgt = v(&["the blue house", "the flower", "house"]);
    for reverse in [false, true] {
        let p = Ibm2Params {
            no_null_word: true,
            reverse,
            ..Default::default()
        };
        let a = align_corpus(&src, &tgt, &p).unwrap();
        for (k, s) in a.sentences.iter().enumerate() {
            let generated = if reverse { src[k].len() } else { tgt[k].len() };
            assert_eq!(s.links.len(), generated, "reverse={reverse} sentence {k}");
            assert!(s.posteriors.iter().all(|q| q.is_finite() && *q > 0.0));
        }
    }
}

#[test]
fn fast_align_mode_is_deterministic_too() {
    let (src, tgt) = be_en();
    let (src, tgt) = (&src[..1500], &tgt[..1500]);
    let p = Ibm2Params {
        model: Model::FastAlign,
        ..Default::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (f, r) = align_bidirectional(src, tgt, &p).unwrap();
            (
                pharaoh::write_pharaoh(&f.links()),
                pharaoh::write_pharaoh(&r.links()),
                format!("{:?}{:?}", f.stats, r.stats),
            )
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn output_is_identical_for_1_2_4_threads() {
    let (src, tgt) = be_en();
    let (src, tgt) = (&src[..4000], &tgt[..4000]);
    let p = Ibm2Params {
        keep_posteriors: true,
        ..Default::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (f, r) = align_bidirectional(src, tgt, &p).unwrap();
            let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
            let post: Vec<u32> = f
                .posteriors
                .as_ref()
                .unwrap()
                .iter()
                .flat_map(|x| x.p.iter().map(|v| v.to_bits()))
                .collect();
            (
                pharaoh::write_pharaoh(&f.links()),
                pharaoh::write_pharaoh(&r.links()),
                pharaoh::write_pharaoh(&g),
                format!("{:?}{:?}", f.stats, r.stats),
                post,
            )
        })
    };
    let one = run(1);
    assert!(one.0.lines().filter(|l| !l.is_empty()).count() > 3900);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
}

#[test]
fn empty_sides_are_skipped_not_poisoning_the_corpus() {
    // Notes §7: one ` ||| hello world` line made upstream `-d -o -v` print 0 non-empty lines out of 1,001.
    let (src, tgt) = be_en();
    let (mut src, mut tgt) = (src[..1000].to_vec(), tgt[..1000].to_vec());
    src.push(vec![]);
    tgt.push(vec!["hello".into(), "world".into()]);
    src.insert(10, vec!["x".into()]);
    tgt.insert(10, vec![]);
    for model in [Model::Fixed, Model::FastAlign] {
        let p = Ibm2Params {
            model,
            ..Default::default()
        };
        let (f, r) = align_bidirectional(&src, &tgt, &p).unwrap();
        for a in [&f, &r] {
            assert_eq!(a.sentences.len(), 1002);
            let nonempty = a.sentences.iter().filter(|s| !s.links.is_empty()).count();
            assert!(
                nonempty >= 990,
                "{model:?} reverse={}: {nonempty}",
                a.reverse
            );
            assert!(a.stats.final_tension.is_finite());
            assert!(
                a.stats
                    .iterations
                    .iter()
                    .all(|it| it.log_likelihood.is_finite())
            );
            assert!(
                a.sentences
                    .iter()
                    .flat_map(|s| s.posteriors)
                    .all(|q| q.is_finite())
            );
            assert_eq!(
                a.stats.skipped,
                vec![
                    Skipped {
                        index: 10,
                        reason: SkipReason::EmptyTarget
                    },
                    Skipped {
                        index: 1001,
                        reason: SkipReason::EmptySource
                    }
                ]
            );
            assert!(a.sentences.get(10).links.is_empty() && a.sentences.get(1001).links.is_empty());
        }
    }
}

#[test]
fn separators_and_eps_tokens_are_ordinary_words() {
    // Upstream treats `|||` as the side separator, `<eps>` as NULL and a tab as a separator (notes §2).
    let src = v(&["a ||| b", "<eps> c", "a b"]);
    let mut tgt = v(&["x y z", "w v", "x z"]);
    tgt[1][0] = "w\tq".into();
    let a = align_corpus(&src, &tgt, &Ibm2Params::default()).unwrap();
    assert_eq!(a.stats.suspicious_tokens, 3);
    assert_eq!(a.stats.aligned, 3);
    assert!(a.sentences.iter().all(|s| !s.links.is_empty()));
    assert!(
        a.sentences
            .get(0)
            .links
            .iter()
            .all(|&(i, j)| i < 3 && j < 3)
    );
}

#[test]
fn long_sentences_are_skipped_and_counted() {
    let long: Vec<String> = (0..50).map(|k| format!("w{k}")).collect();
    let src = vec![vec!["a".to_string()], long.clone(), vec!["b".to_string()]];
    let tgt = vec![vec!["x".to_string()], long, vec!["y".to_string()]];
    let p = Ibm2Params {
        max_sentence_len: 40,
        ..Default::default()
    };
    let a = align_corpus(&src, &tgt, &p).unwrap();
    assert_eq!(a.stats.count(SkipReason::TooLong), 1);
    assert_eq!(a.stats.skipped[0].index, 1);
    assert_eq!(a.sentences.get(0).links, vec![(0, 0)]);
    // Without the limit the long pair is aligned.
    let a = align_corpus(&src, &tgt, &Ibm2Params::default()).unwrap();
    assert!(!a.sentences.get(1).links.is_empty());
    assert!(a.stats.skipped.is_empty());
}

#[test]
fn bad_input_gives_errors_not_panics() {
    let e: Vec<Vec<String>> = vec![vec![], vec![]];
    let t = v(&["x", "y"]);
    assert!(matches!(
        align_corpus(&e, &t, &Ibm2Params::default()),
        Err(AlignError::NothingToAlign {
            total: 2,
            empty: 2,
            ..
        })
    ));
    assert!(matches!(
        align_corpus(&t[..1], &t, &Ibm2Params::default()),
        Err(AlignError::LengthMismatch { src: 1, tgt: 2 })
    ));
    for p in [
        Ibm2Params {
            iterations: 0,
            ..Default::default()
        },
        Ibm2Params {
            alpha: 0.0,
            ..Default::default()
        },
        Ibm2Params {
            p0: 1.0,
            ..Default::default()
        },
        Ibm2Params {
            diagonal_tension: f64::NAN,
            ..Default::default()
        },
    ] {
        let err = align_corpus(&t, &t, &p).unwrap_err();
        assert!(matches!(err, AlignError::InvalidParam { .. }), "{err}");
    }
}

#[test]
fn params_serde_defaults_and_unknown_fields() {
    let p: Ibm2Params =
        serde_json::from_str(r#"{"model": "fast_align", "reverse": true}"#).unwrap();
    assert_eq!(p.model, Model::FastAlign);
    assert!(p.reverse && p.favor_diagonal && p.optimizes_tension() && p.variational_bayes);
    assert_eq!(p.optimize_tension, None);
    // The fixed default does not optimise λ; an explicit value wins in either mode.
    assert!(!Ibm2Params::default().optimizes_tension());
    let q: Ibm2Params = serde_json::from_str(r#"{"optimize_tension": true}"#).unwrap();
    assert!(q.optimizes_tension() && q.model == Model::Fixed);
    assert_eq!(
        (p.iterations, p.alpha, p.diagonal_tension, p.p0),
        (5, 0.01, 4.0, 0.08)
    );
    assert!(serde_json::from_str::<Ibm2Params>(r#"{"iterationz": 3}"#).is_err());
    let d: Ibm2Params = serde_json::from_str("{}").unwrap();
    assert_eq!(d, Ibm2Params::default());
}

#[test]
fn posteriors_at_links_equal_the_dense_matrices_bit_for_bit() {
    // The align.ibm2 stage scores symmetrized links with posteriors computed at the link from the final
    // parameters instead of storing every pair's dense matrices: both must give the same bits, for every cell of
    // the grid (not only Viterbi links), with and without NULL and tension optimisation, a skipped pair included.
    let src_text = read("reference/aer-protocol/enfr/src");
    let tgt_text = read("reference/aer-protocol/enfr/tgt");
    let mut src: Vec<&str> = src_text.lines().take(300).collect();
    let tgt: Vec<&str> = tgt_text.lines().take(300).collect();
    src[4] = "";
    let cases = [
        Ibm2Params::default(),
        Ibm2Params {
            model: Model::FastAlign,
            ..Default::default()
        },
        Ibm2Params {
            no_null_word: true,
            iterations: 3,
            ..Default::default()
        },
        Ibm2Params {
            iterations: 1,
            ..Default::default()
        },
    ];
    for params in cases {
        let dense_params = Ibm2Params {
            keep_posteriors: true,
            ..params.clone()
        };
        let corpus = Corpus::from_lines(&src, &tgt, 1000, |l, push| {
            l.split_whitespace().for_each(push)
        })
        .unwrap();
        let every_cell: Vec<Vec<(u32, u32)>> = src
            .iter()
            .zip(&tgt)
            .map(|(s, t)| {
                let (n, m) = (s.split_whitespace().count(), t.split_whitespace().count());
                if n == 0 {
                    return Vec::new();
                }
                (0..n as u32)
                    .flat_map(|i| (0..m as u32).map(move |j| (i, j)))
                    .collect()
            })
            .collect();
        for reverse in [false, true] {
            let run = align_interned(&corpus, &dense_params, reverse).unwrap();
            let dense = run.posteriors.as_ref().unwrap();
            let at = posteriors_at(&corpus, &run, &params, &every_cell).unwrap();
            let mut compared = 0;
            for (k, cells) in every_cell.iter().enumerate() {
                for (x, &(i, j)) in cells.iter().enumerate() {
                    assert_eq!(
                        at[k][x].to_bits(),
                        dense[k].get(i, j).to_bits(),
                        "{params:?} reverse {reverse} pair {k} cell {i}-{j}"
                    );
                    compared += 1;
                }
            }
            assert!(compared > 50_000, "{compared}");
        }
        // Link scores on the interned corpus equal the string-based ones over dense matrices.
        let (f, r) = (
            align_interned(&corpus, &dense_params, false).unwrap(),
            align_interned(&corpus, &dense_params, true).unwrap(),
        );
        let sym = symmetrize_runs(&f, &r, Method::GrowDiagFinalAnd).unwrap();
        let words = |t: &[&str]| -> Vec<Vec<String>> {
            t.iter()
                .zip(&src)
                .map(|(l, s)| {
                    if s.is_empty() {
                        Vec::new()
                    } else {
                        l.split_whitespace().map(String::from).collect()
                    }
                })
                .collect()
        };
        let by_strings = link_scores(&words(&src), &words(&tgt), &sym, &f, &r, false).unwrap();
        let by_ids = link_scores_interned(&corpus, &sym, &f, &r, Some(&params)).unwrap();
        assert_eq!(by_ids, by_strings, "{params:?}");
        assert!(by_ids.iter().map(Vec::len).sum::<usize>() > 3000);
    }
    // A cell outside its pair and a released table are refused, naming what is wrong.
    let corpus = Corpus::from_lines(&src, &tgt, 1000, |l, push| {
        l.split_whitespace().for_each(push)
    })
    .unwrap();
    let p = Ibm2Params::default();
    let mut run = align_interned(&corpus, &p, false).unwrap();
    let mut cells = vec![Vec::new(); src.len()];
    cells[4] = vec![(0, 0)];
    let e = posteriors_at(&corpus, &run, &p, &cells).unwrap_err();
    assert!(
        e.to_string()
            .contains("pair 4: cell 0-0 is outside its 0 ×"),
        "{e}"
    );
    run.release_table();
    let e = posteriors_at(&corpus, &run, &p, &vec![Vec::new(); src.len()]).unwrap_err();
    assert!(e.to_string().contains("released"), "{e}");
}
