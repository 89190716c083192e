//! The optional HMM model: hand-checked tiny corpus, determinism, bad input, AER on ro-en (small enough for debug).
mod common;
use alinea_align::*;
use common::*;

fn v(s: &[&str]) -> Vec<Vec<String>> {
    s.iter()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn hmm_tiny_corpus_and_empty_sides() {
    let src = v(&["la maison", "la fleur", "maison", "", "la"]);
    let tgt = v(&["the house", "the flower", "house", "x", "the"]);
    let (f, r) =
        align_hmm_bidirectional(&src, &tgt, &Ibm2Params::default(), &HmmParams::default()).unwrap();
    for a in [&f, &r] {
        assert_eq!(
            a.sentences.get(0).links,
            vec![(0, 0), (1, 1)],
            "reverse={}",
            a.reverse
        );
        assert_eq!(a.sentences.get(2).links, vec![(0, 0)]);
        assert!(a.sentences.get(3).links.is_empty());
        assert_eq!(a.stats.count(SkipReason::EmptySource), 1);
        assert!(
            a.sentences
                .iter()
                .flat_map(|s| s.posteriors)
                .all(|q| q.is_finite() && *q <= 1.0 + 1e-6)
        );
        assert!(
            a.stats
                .iterations
                .iter()
                .all(|i| i.log_likelihood.is_finite())
        );
    }
    // Dense posteriors: every target column sums to at most 1 (the rest is NULL mass).
    let p = Ibm2Params {
        keep_posteriors: true,
        ..Default::default()
    };
    let (f, r) = align_hmm_bidirectional(&src, &tgt, &p, &HmmParams::default()).unwrap();
    for a in [&f, &r] {
        let post = a.posteriors.as_ref().unwrap();
        let x = &post[0];
        assert_eq!((x.n_src, x.n_tgt), (2, 2));
        assert!(x.get(0, 0) > 0.5 && x.get(1, 1) > 0.5);
        if !a.reverse {
            for j in 0..x.n_tgt {
                let col: f32 = (0..x.n_src).map(|i| x.get(i, j)).sum();
                assert!(col <= 1.0 + 1e-5, "{col}");
            }
        }
    }
    let bad = HmmParams {
        p0: 0.0,
        ..Default::default()
    };
    assert!(align_hmm_bidirectional(&src, &tgt, &Ibm2Params::default(), &bad).is_err());
}

#[test]
fn hmm_is_deterministic_across_threads() {
    let (src, tgt) = be_en();
    let (src, tgt) = (&src[..1200], &tgt[..1200]);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (f, r) =
                align_hmm_bidirectional(src, tgt, &Ibm2Params::default(), &HmmParams::default())
                    .unwrap();
            (
                pharaoh::write_pharaoh(&f.links()),
                pharaoh::write_pharaoh(&r.links()),
                format!("{:?}", f.stats.iterations),
            )
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn hmm_beats_fast_align_on_roen() {
    let src = toks(&read("reference/aer-protocol/roen/src"));
    let tgt = toks(&read("reference/aer-protocol/roen/tgt"));
    let gold = pharaoh::read_pharaoh_gold(&read("reference/aer-protocol/roen/gold"), true).unwrap();
    let (f, r) =
        align_hmm_bidirectional(&src, &tgt, &Ibm2Params::default(), &HmmParams::default()).unwrap();
    let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
    let s = aer(&gold, &g).unwrap();
    println!("roen HMM gdfa AER {:.2}", 100.0 * s.aer);
    assert!(100.0 * s.aer < 48.3, "{}", s.aer);
}
