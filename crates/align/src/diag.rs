//! The diagonal alignment prior of fast_align (`da.h`), its normaliser Z and dlnZ/dλ, in both the upstream form
//! (for [`crate::Model::FastAlign`]) and the corrected form (for [`crate::Model::Fixed`]).
//!
//! Notation: the generated side has length `m` and 1-based position `j`; the conditioning side has length `n` and
//! 1-based position `i`. The feature is h(j, i, m, n) = −|i/n − j/m| ∈ [−1, 0].

/// The diagonal feature h(j, i, m, n) = −|i/n − j/m| (`da.h` `Feature`, with fast_align's argument order).
#[inline]
pub fn feature(j: u32, i: u32, m: u32, n: u32) -> f64 {
    -(f64::from(i) / f64::from(n) - f64::from(j) / f64::from(m)).abs()
}

/// exp(λ·h(j, i, m, n)), the unnormalised prior weight.
#[inline]
pub fn unnormalized(j: u32, i: u32, m: u32, n: u32, lambda: f64) -> f64 {
    (feature(j, i, m, n) * lambda).exp()
}

/// Z_λ(j, m, n) = Σ_{i=1..n} exp(λ·h(j, i, m, n)) in O(1) as two geometric series (port of `ComputeZ`).
///
/// Unsigned wrap-around of upstream's `n - floor` is reproduced on purpose: the upstream tension gradient calls this
/// with m and n swapped, where `floor` may exceed `n`.
pub fn compute_z(j: u32, m: u32, n: u32, lambda: f64) -> f64 {
    let split = f64::from(j) * f64::from(n) / f64::from(m);
    let floor = split as u32;
    let ceil = floor.wrapping_add(1);
    let ratio = (-lambda / f64::from(n)).exp();
    let num_top = n.wrapping_sub(floor);
    let mut ezt = 0.0;
    let mut ezb = 0.0;
    if num_top != 0 {
        ezt = unnormalized(j, ceil, m, n, lambda) * (1.0 - ratio.powf(f64::from(num_top)))
            / (1.0 - ratio);
    }
    if floor != 0 {
        ezb = unnormalized(j, floor, m, n, lambda) * (1.0 - ratio.powf(f64::from(floor)))
            / (1.0 - ratio);
    }
    ezb + ezt
}

/// Σ_{k=1..n} a_k g_k with a_k = a_1 + (k−1)d and g_k = g_1 r^(k−1) (port of `arithmetico_geometric_series`,
/// with the `− d·…` sign of the upstream binary, which is the mathematically correct one).
fn arithmetico_geometric_series(a_1: f64, g_1: f64, r: f64, d: f64, n: u32) -> f64 {
    let g_np1 = g_1 * r.powf(f64::from(n));
    let a_n = d * f64::from(n - 1) + a_1;
    let x_1 = a_1 * g_1;
    let g_2 = g_1 * r;
    let rm1 = r - 1.0;
    (a_n * g_np1 - x_1) / rm1 - d * (g_np1 - g_2) / (rm1 * rm1)
}

/// The unnormalised first moment Σ_i h·exp(λh) of `ComputeDLogZ`, shared by both forms.
fn moment(j: u32, m: u32, n: u32, lambda: f64) -> f64 {
    let split = f64::from(j) * f64::from(n) / f64::from(m);
    let floor = split as u32;
    let ceil = floor + 1;
    let ratio = (-lambda / f64::from(n)).exp();
    let d = -1.0 / f64::from(n);
    let num_top = n - floor;
    let mut pct = 0.0;
    let mut pcb = 0.0;
    if num_top != 0 {
        pct = arithmetico_geometric_series(
            feature(j, ceil, m, n),
            unnormalized(j, ceil, m, n, lambda),
            ratio,
            d,
            num_top,
        );
    }
    if floor != 0 {
        pcb = arithmetico_geometric_series(
            feature(j, floor, m, n),
            unnormalized(j, floor, m, n, lambda),
            ratio,
            d,
            floor,
        );
    }
    pct + pcb
}

/// Upstream `ComputeDLogZ` at cab1e9a, bug included: it normalises with `ComputeZ(j, n, m, λ)` (m and n swapped,
/// fast_align issue #11), so it is not E\[h\] whenever m ≠ n. Checked against the λ trajectory of the shared be-en
/// log (model al-feat −0.311082 at λ = 4, −110.793 at λ = 14).
pub fn dlogz_upstream(j: u32, m: u32, n: u32, lambda: f64) -> f64 {
    moment(j, m, n, lambda) / compute_z(j, n, m, lambda)
}

/// E_δ\[h\] = ∂ln Z_λ(j, m, n)/∂λ, correct. The closed form can lose precision when λ/n is tiny (r → 1 makes the
/// series' denominators vanish), so a value outside [−1, 0] falls back to the exact O(n) sum.
pub fn dlogz(j: u32, m: u32, n: u32, lambda: f64) -> f64 {
    let v = dlogz_closed(j, m, n, lambda);
    if v.is_finite() && (-1.0 - 1e-9..=1e-9).contains(&v) {
        v
    } else {
        dlogz_brute(j, m, n, lambda)
    }
}

/// E_δ\[h\] from the closed form only (no fallback), correct normaliser.
pub fn dlogz_closed(j: u32, m: u32, n: u32, lambda: f64) -> f64 {
    moment(j, m, n, lambda) / compute_z(j, m, n, lambda)
}

/// Z by direct summation (reference for tests and fallback).
pub fn z_brute(j: u32, m: u32, n: u32, lambda: f64) -> f64 {
    (1..=n).map(|i| unnormalized(j, i, m, n, lambda)).sum()
}

/// E_δ\[h\] by direct summation (reference for tests and fallback).
pub fn dlogz_brute(j: u32, m: u32, n: u32, lambda: f64) -> f64 {
    let mut z = 0.0;
    let mut s = 0.0;
    for i in 1..=n {
        let w = unnormalized(j, i, m, n, lambda);
        z += w;
        s += w * feature(j, i, m, n);
    }
    s / z
}

/// fast_align's digamma (`ttables.h` `Md::digamma`): recurrence up to x ≥ 7, then an asymptotic series in 1/(x−½).
/// Ported as is so that the VB M-step matches upstream bit for bit.
pub fn digamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 7.0 {
        result -= 1.0 / x;
        x += 1.0;
    }
    x -= 0.5;
    let xx = 1.0 / x;
    let xx2 = xx * xx;
    let xx4 = xx2 * xx2;
    result += x.ln() + (1. / 24.) * xx2 - (7.0 / 960.0) * xx4 + (31.0 / 8064.0) * xx4 * xx2
        - (127.0 / 30720.0) * xx4 * xx4;
    result
}
