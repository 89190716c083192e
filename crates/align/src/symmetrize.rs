//! Symmetrization of two directional alignments, reproducing atools (`fast_align/src/atools.cc`) exactly,
//! including its order of growth (notes §8): candidates are visited in lexicographic (i, j) order and added at once.

use serde::{Deserialize, Serialize};

use crate::error::FormatError;

/// Symmetrization heuristic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A ∩ B.
    Intersect,
    /// A ∪ B.
    Union,
    /// Intersection grown with neighbouring (8-neighbourhood) union points.
    GrowDiag,
    /// grow-diag, then points of A and B whose row or column is unaligned.
    GrowDiagFinal,
    /// grow-diag, then points of A and B whose row and column are both unaligned. Default.
    #[default]
    GrowDiagFinalAnd,
}

impl std::str::FromStr for Method {
    type Err = String;
    /// Accepts atools' names and the usual abbreviations (`gd`, `gdf`, `gdfa`).
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "intersect" | "intersection" => Method::Intersect,
            "union" => Method::Union,
            "grow-diag" | "gd" => Method::GrowDiag,
            "grow-diag-final" | "gdf" => Method::GrowDiagFinal,
            "grow-diag-final-and" | "gdfa" => Method::GrowDiagFinalAnd,
            other => {
                return Err(format!(
                    "unknown symmetrization `{other}` (intersect, union, grow-diag, grow-diag-final, grow-diag-final-and)"
                ));
            }
        })
    }
}

struct Grid {
    w: usize,
    h: usize,
    cells: Vec<bool>,
}

impl Grid {
    fn new(w: usize, h: usize) -> Self {
        Grid {
            w,
            h,
            cells: vec![false; w * h],
        }
    }
    fn get(&self, i: i64, j: i64) -> bool {
        i >= 0
            && j >= 0
            && (i as usize) < self.w
            && (j as usize) < self.h
            && self.cells[i as usize * self.h + j as usize]
    }
    fn set(&mut self, i: usize, j: usize) {
        self.cells[i * self.h + j] = true;
    }
}

const NEIGHBOURS: [(i64, i64); 8] = [
    (1, 0),
    (-1, 0),
    (0, 1),
    (0, -1),
    (1, 1),
    (-1, 1),
    (1, -1),
    (-1, -1),
];

/// Symmetrizes one sentence. `a` is the forward and `b` the reverse alignment, both as (src, tgt) links.
/// Output is sorted i-major (atools' output order), without duplicates.
pub fn symmetrize_sentence(a: &[(u32, u32)], b: &[(u32, u32)], method: Method) -> Vec<(u32, u32)> {
    let w = a
        .iter()
        .chain(b)
        .map(|l| l.0 as usize + 1)
        .max()
        .unwrap_or(1);
    let h = a
        .iter()
        .chain(b)
        .map(|l| l.1 as usize + 1)
        .max()
        .unwrap_or(1);
    let mut ga = Grid::new(w, h);
    let mut gb = Grid::new(w, h);
    for &(i, j) in a {
        ga.set(i as usize, j as usize);
    }
    for &(i, j) in b {
        gb.set(i as usize, j as usize);
    }
    let mut res = Grid::new(w, h);
    let mut row = vec![false; w];
    let mut col = vec![false; h];
    match method {
        Method::Intersect | Method::Union => {
            for k in 0..w * h {
                res.cells[k] = if method == Method::Intersect {
                    ga.cells[k] && gb.cells[k]
                } else {
                    ga.cells[k] || gb.cells[k]
                };
            }
        }
        _ => {
            let align =
                |res: &mut Grid, row: &mut Vec<bool>, col: &mut Vec<bool>, i: usize, j: usize| {
                    res.set(i, j);
                    row[i] = true;
                    col[j] = true;
                };
            for i in 0..w {
                for j in 0..h {
                    if ga.cells[i * h + j] && gb.cells[i * h + j] {
                        align(&mut res, &mut row, &mut col, i, j);
                    }
                }
            }
            // grow-diag over the union, candidates in (i, j) order, repeated until a pass adds nothing.
            let mut p: Vec<(usize, usize)> = (0..w)
                .flat_map(|i| (0..h).map(move |j| (i, j)))
                .filter(|&(i, j)| {
                    (ga.cells[i * h + j] || gb.cells[i * h + j]) && !res.cells[i * h + j]
                })
                .collect();
            loop {
                let mut added = false;
                let mut keep = Vec::with_capacity(p.len());
                for &(i, j) in &p {
                    let one_unaligned = !(row[i] && col[j]);
                    let neighbour = NEIGHBOURS
                        .iter()
                        .any(|&(di, dj)| res.get(i as i64 + di, j as i64 + dj));
                    if one_unaligned && neighbour {
                        align(&mut res, &mut row, &mut col, i, j);
                        added = true;
                    } else {
                        keep.push((i, j));
                    }
                }
                p = keep;
                if !added {
                    break;
                }
            }
            if method != Method::GrowDiag {
                let and = method == Method::GrowDiagFinalAnd;
                for g in [&ga, &gb] {
                    for i in 0..w {
                        for j in 0..h {
                            if g.cells[i * h + j] && !res.cells[i * h + j] {
                                let ok = if and {
                                    !(row[i] || col[j])
                                } else {
                                    !(row[i] && col[j])
                                };
                                if ok {
                                    align(&mut res, &mut row, &mut col, i, j);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for i in 0..w {
        for j in 0..h {
            if res.cells[i * h + j] {
                out.push((i as u32, j as u32));
            }
        }
    }
    out
}

/// Symmetrizes a corpus (parallel, order-preserving). Errors when the sentence counts differ.
pub fn symmetrize(
    forward: &[Vec<(u32, u32)>],
    reverse: &[Vec<(u32, u32)>],
    method: Method,
) -> Result<Vec<Vec<(u32, u32)>>, FormatError> {
    use rayon::prelude::*;
    if forward.len() != reverse.len() {
        return Err(FormatError::Mismatch {
            a: forward.len(),
            b: reverse.len(),
        });
    }
    Ok(forward
        .par_iter()
        .zip(reverse)
        .map(|(a, b)| symmetrize_sentence(a, b, method))
        .collect())
}

/// [`symmetrize`] of two runs' links, read in place (no copy of either run's links is made).
pub fn symmetrize_runs(
    forward: &crate::ibm2::Alignment,
    reverse: &crate::ibm2::Alignment,
    method: Method,
) -> Result<Vec<Vec<(u32, u32)>>, FormatError> {
    use rayon::prelude::*;
    let (f, r) = (&forward.sentences, &reverse.sentences);
    if f.len() != r.len() {
        return Err(FormatError::Mismatch {
            a: f.len(),
            b: r.len(),
        });
    }
    Ok((0..f.len())
        .into_par_iter()
        .map(|k| symmetrize_sentence(f.get(k).links, r.get(k).links, method))
        .collect())
}

/// Soft symmetrization (not an atools method): keeps the links whose averaged directional posteriors
/// (q_fwd(i, j) + q_rev(i, j)) / 2 reach `threshold`, in i-major order. Needs both runs with `keep_posteriors`.
/// On the AER protocol (fixed model) θ = 0.5 scored 17.5 (en-fr) / 47.5 (ro-en) and θ = 0.4 scored 20.2 / 46.9,
/// against 23.0 / 48.5 for grow-diag-final-and.
pub fn symmetrize_posteriors(
    forward: &[crate::ibm2::Posteriors],
    reverse: &[crate::ibm2::Posteriors],
    threshold: f32,
) -> Result<Vec<Vec<(u32, u32)>>, FormatError> {
    use rayon::prelude::*;
    if forward.len() != reverse.len() {
        return Err(FormatError::Mismatch {
            a: forward.len(),
            b: reverse.len(),
        });
    }
    Ok(forward
        .par_iter()
        .zip(reverse)
        .map(|(a, b)| {
            let (ns, nt) = (a.n_src.max(b.n_src), a.n_tgt.max(b.n_tgt));
            let mut v = Vec::new();
            for i in 0..ns {
                for j in 0..nt {
                    if (a.get(i, j) + b.get(i, j)) / 2.0 >= threshold {
                        v.push((i, j));
                    }
                }
            }
            v
        })
        .collect())
}
