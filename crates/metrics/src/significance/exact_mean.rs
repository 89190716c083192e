//! Python's `statistics.mean` of floats: the exact rational mean, rounded once to float64.
//!
//! `Score.estimate_ci` (sacrebleu's single-system `--confidence`) averages with
//! `statistics.mean`, which sums the values as exact fractions. Reproduced with a small fixed-point
//! big integer (the sum of the mantissas shifted to a common exponent), one long division by the
//! count and round-half-to-even to 53 bits. Hand-written: a few dozen lines against a big-number
//! dependency for one division.

/// `(mantissa, exponent)` with `v = mantissa * 2^exponent`, for finite `v >= 0`.
fn decompose(v: f64) -> (u64, i32) {
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp - 1075)
    }
}

/// Little-endian 64-bit limbs.
type Big = Vec<u64>;

fn add_shifted(acc: &mut Big, value: u64, shift: u32) {
    let (limb, bit) = ((shift / 64) as usize, shift % 64);
    let wide = u128::from(value) << bit;
    let parts = [wide as u64, (wide >> 64) as u64];
    if acc.len() < limb + 3 {
        acc.resize(limb + 3, 0);
    }
    let mut carry = 0u64;
    let mut i = limb;
    for part in parts {
        let (s1, c1) = acc[i].overflowing_add(part);
        let (s2, c2) = s1.overflowing_add(carry);
        acc[i] = s2;
        carry = u64::from(c1) + u64::from(c2);
        i += 1;
    }
    while carry != 0 {
        if i == acc.len() {
            acc.push(0);
        }
        let (s, c) = acc[i].overflowing_add(carry);
        acc[i] = s;
        carry = u64::from(c);
        i += 1;
    }
}

/// `acc / d` in place; returns the remainder.
fn div_small(acc: &mut Big, d: u64) -> u64 {
    let mut rem = 0u128;
    for limb in acc.iter_mut().rev() {
        let cur = (rem << 64) | u128::from(*limb);
        *limb = (cur / u128::from(d)) as u64;
        rem = cur % u128::from(d);
    }
    rem as u64
}

fn bit_len(acc: &Big) -> u32 {
    for (i, &l) in acc.iter().enumerate().rev() {
        if l != 0 {
            return i as u32 * 64 + (64 - l.leading_zeros());
        }
    }
    0
}

fn bit(acc: &Big, i: u32) -> bool {
    (acc[(i / 64) as usize] >> (i % 64)) & 1 == 1
}

/// Any bit of `acc` below position `i` set?
fn any_below(acc: &Big, i: u32) -> bool {
    let full = (i / 64) as usize;
    acc[..full].iter().any(|&l| l != 0)
        || (!i.is_multiple_of(64) && acc[full] & ((1u64 << (i % 64)) - 1) != 0)
}

/// The correctly rounded mean of non-negative finite values (None for an empty slice).
pub fn exact_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let parts: Vec<(u64, i32)> = values.iter().map(|&v| decompose(v)).collect();
    let e_min = parts.iter().filter(|p| p.0 != 0).map(|p| p.1).min();
    let Some(e_min) = e_min else {
        return Some(0.0);
    };
    // 128 spare low bits keep the quotient's 53 leading bits plus rounding information exact.
    const GUARD: u32 = 128;
    let mut acc: Big = Vec::new();
    for &(m, e) in &parts {
        if m != 0 {
            add_shifted(&mut acc, m, (e - e_min) as u32 + GUARD);
        }
    }
    let rem = div_small(&mut acc, values.len() as u64);
    let len = bit_len(&acc);
    // The quotient is acc * 2^(e_min - GUARD); keep its top 53 bits.
    let drop = len.saturating_sub(53);
    let mut mant = 0u64;
    for i in (drop..len).rev() {
        mant = (mant << 1) | u64::from(bit(&acc, i));
    }
    let mut exp = e_min - GUARD as i32 + drop as i32;
    if drop > 0 {
        let half = bit(&acc, drop - 1);
        let sticky = rem != 0 || any_below(&acc, drop - 1);
        if half && (sticky || mant & 1 == 1) {
            mant += 1;
            if mant == 1u64 << 53 {
                mant >>= 1;
                exp += 1;
            }
        }
    }
    // Results below the normal range are not produced by scores in [0, 100] averaged over a
    // bootstrap; `powi` keeps them approximately right should they occur.
    Some(mant as f64 * 2f64.powi(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_the_exact_rational_mean() {
        // statistics.mean([0.1, 0.2, 0.4]) == 0.23333333333333334, while (0.1+0.2+0.4)/3 is
        // 0.23333333333333336.
        assert_eq!(exact_mean(&[0.1, 0.2, 0.4]), Some(0.233_333_333_333_333_34));
        assert_eq!(exact_mean(&[1.0, 2.0]), Some(1.5));
        assert_eq!(exact_mean(&[0.0, 0.0]), Some(0.0));
        assert_eq!(exact_mean(&[1e-300, 100.0]), Some(50.0));
    }
}
