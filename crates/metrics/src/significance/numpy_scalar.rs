//! The arithmetic sacrebleu's score functions do when numpy hands them float32 statistics.
//!
//! Bootstrap resampling sums statistics as a float32 array, so inside `compute_bleu` and
//! `_compute_f_score` every operation that touches a statistic is a numpy float32 operation, while
//! constants and accumulators that start as Python floats stay float64 until they meet one. NumPy 2's
//! promotion (NEP 50) treats Python ints and floats as "weak": `py_float op float32` casts the Python
//! value to float32 and computes in float32; `py op py` stays float64. [`Num`] tracks which one a
//! value is and applies exactly that rule.

use std::ops::{Add, Div, Mul};

/// A value in sacrebleu's score arithmetic: a Python float/int or a numpy float32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// A Python `float` (or small `int`), i.e. float64.
    Py(f64),
    /// A `numpy.float32`.
    F32(f32),
}

impl Num {
    /// The value widened to f64 (exact for float32).
    pub fn to_f64(self) -> f64 {
        match self {
            Num::Py(v) => v,
            Num::F32(v) => f64::from(v),
        }
    }

    fn to_f32(self) -> f32 {
        match self {
            // numpy's cast of a weak Python float to float32: round to nearest.
            Num::Py(v) => v as f32,
            Num::F32(v) => v,
        }
    }

    fn binary(self, rhs: Num, f64_op: fn(f64, f64) -> f64, f32_op: fn(f32, f32) -> f32) -> Num {
        match (self, rhs) {
            (Num::Py(a), Num::Py(b)) => Num::Py(f64_op(a, b)),
            (a, b) => Num::F32(f32_op(a.to_f32(), b.to_f32())),
        }
    }

    /// Python truthiness / `> 0` tests compare in the value's own type.
    pub fn is_zero(self) -> bool {
        self.to_f64() == 0.0
    }
}

impl Add for Num {
    type Output = Num;
    fn add(self, rhs: Num) -> Num {
        self.binary(rhs, |a, b| a + b, |a, b| a + b)
    }
}

impl Mul for Num {
    type Output = Num;
    fn mul(self, rhs: Num) -> Num {
        self.binary(rhs, |a, b| a * b, |a, b| a * b)
    }
}

impl Div for Num {
    type Output = Num;
    fn div(self, rhs: Num) -> Num {
        self.binary(rhs, |a, b| a / b, |a, b| a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_python_floats_follow_float32() {
        // numpy 2: `100. * np.float32(1) / np.float32(3)` is float32(33.333332).
        let v = Num::Py(100.0) * Num::F32(1.0) / Num::F32(3.0);
        assert_eq!(v, Num::F32(33.333_332));
        assert_eq!(Num::Py(1.0) / Num::Py(3.0), Num::Py(1.0 / 3.0));
    }
}
