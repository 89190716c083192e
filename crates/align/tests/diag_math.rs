//! The diagonal prior's closed forms against brute force, and upstream's documented wrong values (notes §5).
use alinea_align::diag::*;

#[test]
fn z_closed_form_matches_brute_force() {
    for m in 1..=12u32 {
        for n in 1..=12u32 {
            for j in 1..=m {
                for &l in &[0.1, 1.0, 4.0, 9.5, 14.0] {
                    let (a, b) = (compute_z(j, m, n, l), z_brute(j, m, n, l));
                    assert!(
                        (a - b).abs() <= 1e-9 * b,
                        "Z({j},{m},{n},{l}) = {a} vs brute {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn dlogz_closed_form_matches_brute_force() {
    for m in 1..=12u32 {
        for n in 1..=12u32 {
            for j in 1..=m {
                for &l in &[0.1, 1.0, 4.0, 9.5, 14.0] {
                    let (a, b) = (dlogz_closed(j, m, n, l), dlogz_brute(j, m, n, l));
                    assert!(
                        (a - b).abs() < 1e-7,
                        "dlnZ({j},{m},{n},{l}) = {a} vs brute {b}"
                    );
                    assert!((-1.0..=0.0).contains(&b));
                }
            }
        }
    }
    // Long sentences with a flat prior: the closed form's r → 1 regime still gives E[h] (via the fallback).
    for &(j, m, n) in &[(1u32, 300u32, 280u32), (150, 300, 280), (999, 1000, 1000)] {
        let (a, b) = (dlogz(j, m, n, 0.1), dlogz_brute(j, m, n, 0.1));
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn dlogz_by_finite_difference() {
    for &(j, m, n, l) in &[(2u32, 5u32, 7u32, 4.0f64), (3, 4, 9, 6.0), (7, 7, 3, 1.5)] {
        let h = 1e-5;
        let fd = (z_brute(j, m, n, l + h).ln() - z_brute(j, m, n, l - h).ln()) / (2.0 * h);
        assert!((dlogz(j, m, n, l) - fd).abs() < 1e-6);
    }
}

#[test]
fn upstream_values_from_notes_table() {
    // (j, m, n, λ, exact E[h], upstream value) from fast_align-notes.md §5.
    for &(j, m, n, l, exact, up) in &[
        (2u32, 5u32, 7u32, 4.0f64, -0.169, -0.272),
        (1, 2, 9, 6.0, -0.146, -4.003),
    ] {
        assert!((dlogz(j, m, n, l) - exact).abs() < 5e-4);
        assert!(
            (dlogz_upstream(j, m, n, l) - up).abs() < 5e-4,
            "{}",
            dlogz_upstream(j, m, n, l)
        );
    }
    // m == n: the swap is harmless and both agree.
    assert!((dlogz_upstream(3, 6, 6, 4.0) - dlogz(3, 6, 6, 4.0)).abs() < 1e-12);
}

#[test]
fn digamma_known_values() {
    let euler = 0.577_215_664_901_532_9;
    assert!((digamma(1.0) + euler).abs() < 1e-9);
    assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-9);
    assert!((digamma(10.0) - 2.251_752_589_066_721).abs() < 1e-9);
}
