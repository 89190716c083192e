//! AER on the shared gold sets (aer-protocol: train on all lines, gdfa, score the gold lines), WPT reader.
mod common;
use alinea_align::*;
use common::*;

fn run(set: &str, model: Model) -> (AerScore, AerScore, AerScore) {
    let src = toks(&read(&format!("reference/aer-protocol/{set}/src")));
    let tgt = toks(&read(&format!("reference/aer-protocol/{set}/tgt")));
    let gold =
        pharaoh::read_pharaoh_gold(&read(&format!("reference/aer-protocol/{set}/gold")), true)
            .unwrap();
    let p = Ibm2Params {
        model,
        ..Default::default()
    };
    let (f, r) = align_bidirectional(&src, &tgt, &p).unwrap();
    let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
    let s = (
        aer(&gold, &f.links()).unwrap(),
        aer(&gold, &r.links()).unwrap(),
        aer(&gold, &g).unwrap(),
    );
    println!(
        "{set} {model:?}: fwd {:.2} rev {:.2} gdfa {:.2} (P {:.3} R {:.3})",
        100.0 * s.0.aer,
        100.0 * s.1.aer,
        100.0 * s.2.aer,
        s.2.precision,
        s.2.recall
    );
    s
}

/// peer-figures.md: fast_align fwd / rev / gdfa AER on this protocol.
const PEERS: [(&str, f64, f64, f64); 2] = [("enfr", 23.5, 22.0, 22.5), ("roen", 50.5, 49.2, 48.3)];

#[test]
fn fast_align_mode_reproduces_peer_aer() {
    for (set, fwd, rev, gdfa) in PEERS {
        let (f, r, g) = run(set, Model::FastAlign);
        assert!((100.0 * f.aer - fwd).abs() <= 0.1, "{set} fwd {}", f.aer);
        assert!((100.0 * r.aer - rev).abs() <= 0.1, "{set} rev {}", r.aer);
        assert!((100.0 * g.aer - gdfa).abs() <= 0.1, "{set} gdfa {}", g.aer);
    }
}

#[test]
fn fixed_mode_aer_within_the_bar() {
    // Default (fixed maths, λ fixed at 4): measured enfr 20.70, roen 47.60 (fast_align 22.5, 48.3): the bar.
    for (set, _, _, gdfa) in PEERS {
        let (_, _, g) = run(set, Model::Fixed);
        assert!(100.0 * g.aer <= gdfa, "{set} gdfa {}", g.aer);
    }
}

#[test]
fn fixed_mode_with_tension_optimisation_stays_close_to_fast_align() {
    // Measured: enfr 23.04, roen 48.50 (fast_align 22.5, 48.3): the ML tension costs AER, hence the default.
    for (set, _, _, gdfa) in PEERS {
        let src = toks(&read(&format!("reference/aer-protocol/{set}/src")));
        let tgt = toks(&read(&format!("reference/aer-protocol/{set}/tgt")));
        let gold =
            pharaoh::read_pharaoh_gold(&read(&format!("reference/aer-protocol/{set}/gold")), true)
                .unwrap();
        let p = Ibm2Params {
            optimize_tension: Some(true),
            ..Default::default()
        };
        let (f, r) = align_bidirectional(&src, &tgt, &p).unwrap();
        let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
        let s = aer(&gold, &g).unwrap();
        assert!(100.0 * s.aer <= gdfa + 0.7, "{set} gdfa {}", s.aer);
    }
}

#[test]
fn posterior_symmetrization_beats_fast_align_gdfa() {
    for (set, _, _, gdfa) in PEERS {
        let src = toks(&read(&format!("reference/aer-protocol/{set}/src")));
        let tgt = toks(&read(&format!("reference/aer-protocol/{set}/tgt")));
        let gold =
            pharaoh::read_pharaoh_gold(&read(&format!("reference/aer-protocol/{set}/gold")), true)
                .unwrap();
        let p = Ibm2Params {
            keep_posteriors: true,
            ..Default::default()
        };
        let (f, r) = align_bidirectional(&src, &tgt, &p).unwrap();
        let links = symmetrize_posteriors(
            f.posteriors.as_ref().unwrap(),
            r.posteriors.as_ref().unwrap(),
            0.4,
        )
        .unwrap();
        let s = aer(&gold, &links).unwrap();
        println!("{set} posterior-average ≥ 0.4: {:.2}", 100.0 * s.aer);
        assert!(100.0 * s.aer < gdfa, "{set}: {}", s.aer);
    }
}

#[test]
fn wpt_reader_matches_protocol_gold() {
    let wa =
        read("datasets/alignment-gold/enfr-hansards-wpt03/testing/answers/test.wa.nonullalign");
    let gold = pharaoh::read_pharaoh_gold(&read("reference/aer-protocol/enfr/gold"), true).unwrap();
    let wpt = pharaoh::read_wpt(&wa, gold.len()).unwrap();
    assert_eq!(wpt.len(), 447);
    assert_eq!(wpt, gold);
    // Format detection, as `eval-align --gold F` needs it.
    assert_eq!(pharaoh::read_gold(&wa, true).unwrap(), gold);
    let roen = read("reference/aer-protocol/roen/gold");
    assert!(!pharaoh::is_wpt(&roen));
    assert_eq!(pharaoh::read_gold(&roen, true).unwrap().len(), 248);
}
