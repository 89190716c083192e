//! sacrebleu's `compute_bleu` and `CHRF._compute_f_score` as they run on the float32 sums of a
//! bootstrap resample (see [`Num`] for the promotion rules).

use super::numpy_scalar::Num;
use crate::bleu::{Bleu, Smoothing};
use crate::chrf::Chrf;

/// `my_log`: `log(0)` floored at -9999999999.
fn my_log(p: Num) -> f64 {
    if p.is_zero() {
        -9_999_999_999.0
    } else {
        p.to_f64().ln()
    }
}

/// BLEU of float32 statistics `[hyp_len, ref_len, correct.., total..]`; a Python float.
pub fn bleu(cfg: &Bleu, stats: &[f32]) -> f64 {
    let n_max = cfg.max_ngram_order;
    // `int(stats[0])`, `int(stats[1])`: the lengths leave numpy before the brevity penalty.
    let (sys_len, ref_len) = (stats[0] as u64, stats[1] as u64);
    let mut bp = 1.0f64;
    if sys_len < ref_len {
        bp = if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        };
    }
    let mut correct: Vec<Num> = stats[2..2 + n_max].iter().map(|&v| Num::F32(v)).collect();
    let mut total: Vec<Num> = stats[2 + n_max..2 + 2 * n_max]
        .iter()
        .map(|&v| Num::F32(v))
        .collect();
    if correct.iter().all(|c| c.is_zero()) {
        return 0.0;
    }
    let smooth_value = cfg.smoothing.value();
    let mut precisions = vec![Num::Py(0.0); n_max];
    let mut smooth_mteval = 1.0f64;
    let mut eff_order = n_max;
    for n in 1..=n_max {
        if let (Smoothing::AddK(_), Some(k)) = (cfg.smoothing, smooth_value)
            && n > 1
        {
            correct[n - 1] = correct[n - 1] + Num::Py(k);
            total[n - 1] = total[n - 1] + Num::Py(k);
        }
        if total[n - 1].is_zero() {
            break;
        }
        if cfg.effective_order {
            eff_order = n;
        }
        if correct[n - 1].is_zero() {
            match cfg.smoothing {
                Smoothing::Exp => {
                    smooth_mteval *= 2.0;
                    precisions[n - 1] = Num::Py(100.0) / (Num::Py(smooth_mteval) * total[n - 1]);
                }
                Smoothing::Floor(_) => {
                    let v = smooth_value.unwrap_or(0.1);
                    precisions[n - 1] = Num::Py(100.0 * v) / total[n - 1];
                }
                Smoothing::AddK(_) | Smoothing::None => {}
            }
        } else {
            precisions[n - 1] = Num::Py(100.0) * correct[n - 1] / total[n - 1];
        }
    }
    let mut sum = 0.0f64;
    for &p in &precisions[..eff_order] {
        sum += my_log(p);
    }
    bp * (sum / eff_order as f64).exp()
}

/// chrF of float32 `[hyp, ref, match]` triples; a float32 unless no statistic took part.
pub fn chrf(cfg: &Chrf, stats: &[f32]) -> Num {
    let eps = Num::Py(1e-16);
    let factor = Num::Py(f64::from(cfg.beta * cfg.beta));
    let one_plus = Num::Py(1.0) + factor;
    let order = cfg.char_order + cfg.word_order;
    let mut score = Num::Py(0.0);
    let mut effective_order = 0usize;
    let (mut avg_prec, mut avg_rec) = (Num::Py(0.0), Num::Py(0.0));
    for i in 0..order {
        let (n_hyp, n_ref, n_match) = (
            Num::F32(stats[3 * i]),
            Num::F32(stats[3 * i + 1]),
            Num::F32(stats[3 * i + 2]),
        );
        let hyp_pos = n_hyp.to_f64() > 0.0;
        let ref_pos = n_ref.to_f64() > 0.0;
        let prec = if hyp_pos { n_match / n_hyp } else { eps };
        let rec = if ref_pos { n_match / n_ref } else { eps };
        let denom = factor * prec + rec;
        score = score
            + if denom.to_f64() > 0.0 {
                one_plus * prec * rec / denom
            } else {
                eps
            };
        if hyp_pos && ref_pos {
            avg_prec = avg_prec + prec;
            avg_rec = avg_rec + rec;
            effective_order += 1;
        }
    }
    if cfg.eps_smoothing {
        return Num::Py(100.0) * score / Num::Py(order as f64);
    }
    if effective_order == 0 {
        avg_prec = Num::Py(0.0);
        avg_rec = Num::Py(0.0);
    } else {
        avg_prec = avg_prec / Num::Py(effective_order as f64);
        avg_rec = avg_rec / Num::Py(effective_order as f64);
    }
    if (avg_prec + avg_rec).is_zero() {
        return Num::Py(0.0);
    }
    let s = one_plus * avg_prec * avg_rec;
    let s = s / (factor * avg_prec + avg_rec);
    Num::Py(100.0) * s
}
