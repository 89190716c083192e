//! Alignment error rate (Och & Ney 2003) with sure/possible gold links.

use serde::{Deserialize, Serialize};

use crate::error::FormatError;
use crate::pharaoh::{GoldAlignment, Link};

/// Precision, recall and AER (fractions in [0, 1]) and the counts behind them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AerScore {
    /// AER = 1 − (|A∩S| + |A∩P|)/(|A| + |S|).
    pub aer: f64,
    /// |A∩P| / |A|.
    pub precision: f64,
    /// |A∩S| / |S|.
    pub recall: f64,
    /// Sentences scored.
    pub sentences: usize,
    /// |A|.
    pub predicted: usize,
    /// |S|.
    pub sure: usize,
}

/// Scores the first `gold.len()` predicted sentences against the gold (predictions beyond are ignored, as in
/// `aer.py`). Duplicate predicted links count once. Errors when there are fewer predictions than gold sentences.
pub fn aer(gold: &[GoldAlignment], pred: &[Vec<Link>]) -> Result<AerScore, FormatError> {
    if pred.len() < gold.len() {
        return Err(FormatError::TooFewPredictions {
            gold: gold.len(),
            pred: pred.len(),
        });
    }
    let (mut a, mut s, mut a_s, mut a_p) = (0usize, 0usize, 0usize, 0usize);
    for (g, p) in gold.iter().zip(pred) {
        let mut p = p.clone();
        p.sort_unstable();
        p.dedup();
        a += p.len();
        s += g.sure.len();
        for l in &p {
            if g.sure.binary_search(l).is_ok() {
                a_s += 1;
            }
            if g.possible.binary_search(l).is_ok() {
                a_p += 1;
            }
        }
    }
    let ratio = |x: usize, y: usize| if y == 0 { 0.0 } else { x as f64 / y as f64 };
    Ok(AerScore {
        aer: 1.0 - ratio(a_s + a_p, a + s),
        precision: ratio(a_p, a),
        recall: ratio(a_s, s),
        sentences: gold.len(),
        predicted: a,
        sure: s,
    })
}
