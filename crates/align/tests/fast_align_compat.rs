//! `Model::FastAlign` against single-threaded fast_align's outputs on be-en (67k pairs), and atools' gdfa order.
mod common;
use alinea_align::*;
use common::*;

#[test]
fn symmetrize_reproduces_atools_gdfa_byte_for_byte() {
    let fwd = pharaoh::read_pharaoh(
        &read("reference/fast_align-outputs/be-en-67k/fa.fwd.gz"),
        false,
    )
    .unwrap();
    let rev = pharaoh::read_pharaoh(
        &read("reference/fast_align-outputs/be-en-67k/fa.rev.gz"),
        false,
    )
    .unwrap();
    let gdfa = read("reference/fast_align-outputs/be-en-67k/fa.gdfa.gz");
    let mine = symmetrize(&fwd, &rev, Method::GrowDiagFinalAnd).unwrap();
    let text = pharaoh::write_pharaoh(&mine);
    let diff = text
        .lines()
        .zip(gdfa.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(diff, 0, "{diff} lines differ from atools");
    assert_eq!(text, gdfa);
}

#[test]
fn fast_align_mode_agrees_with_upstream_on_be_en() {
    let (src, tgt) = be_en();
    let p = Ibm2Params {
        model: Model::FastAlign,
        ..Default::default()
    };
    let (f, r) = align_bidirectional(&src, &tgt, &p).unwrap();
    // λ trajectory of the logs: forward jumps to 14 in the first update, reverse ends at 0.1.
    assert_eq!(f.stats.final_tension, 14.0);
    assert_eq!(r.stats.final_tension, 0.1);
    // log_e likelihoods printed by fast_align for passes 1 and 2 (forward).
    assert!((f.stats.iterations[0].log_likelihood / -6.8795e6 - 1.0).abs() < 1e-4);
    assert!((f.stats.iterations[1].log_likelihood / -1.51058e6 - 1.0).abs() < 1e-5);
    let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
    for (name, mine) in [("fwd", f.links()), ("rev", r.links()), ("gdfa", g)] {
        let fa = pharaoh::read_pharaoh(
            &read(&format!(
                "reference/fast_align-outputs/be-en-67k/fa.{name}.gz"
            )),
            false,
        )
        .unwrap();
        let (both, na, nb) = agreement(&mine, &fa);
        let pct = both as f64 / na.max(nb) as f64;
        println!(
            "{name}: {both} common of {na} (mine) / {nb} (fast_align) = {:.4}%",
            100.0 * pct
        );
        assert!(pct >= 0.995, "{name}: agreement {pct}");
    }
    // Forward output in fast_align's order is the same text on (nearly) every line.
    let fa_fwd = read("reference/fast_align-outputs/be-en-67k/fa.fwd.gz");
    let text = pharaoh::write_pharaoh(&f.links());
    let same = text
        .lines()
        .zip(fa_fwd.lines())
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        same as f64 >= 0.999 * src.len() as f64,
        "{same} identical lines"
    );
}
