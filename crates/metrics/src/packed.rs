//! Exact packed n-gram keys and sorted-multiset matching, the fast path behind BLEU and chrF.
//!
//! Characters and tokens are interned to small per-segment ids (hypothesis and references share
//! the table), so an n-gram is an exact integer key: ids + 1 in `bits`-wide lanes (the +1 keeps
//! n-grams of different lengths apart). Keys fit a `u64` whenever `order × bits ≤ 64`, which is
//! nearly always the case, and a `u128` otherwise. Sorting the keys and merging sorted lists
//! gives the same clipped counts as sacrebleu's `Counter`s without hashing strings.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// Longest character n-gram the packed path handles (6 lanes of 21 bits fit a `u128`).
pub(crate) const MAX_PACKED_CHARS: usize = 6;
/// Longest token n-gram the packed path handles (4 lanes of 32 bits fit a `u128`).
pub(crate) const MAX_PACKED_TOKENS: usize = 4;

/// An integer n-gram key.
pub(crate) trait Key: Copy + Ord {
    fn lift(id: u32) -> Self;
    fn extend(self, id: u32, bits: u32) -> Self;
    /// One more empty lane (past the end of the sequence).
    fn pad(self, bits: u32) -> Self;
    fn shr(self, bits: u32) -> Self;
    fn last_lane_empty(self, bits: u32) -> bool;
}

/// The same shift-and-or arithmetic on either width.
macro_rules! impl_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            #[inline]
            fn lift(id: u32) -> Self {
                <$t>::from(id) + 1
            }
            #[inline]
            fn extend(self, id: u32, bits: u32) -> Self {
                (self << bits) | (<$t>::from(id) + 1)
            }
            #[inline]
            fn pad(self, bits: u32) -> Self {
                self << bits
            }
            #[inline]
            fn shr(self, bits: u32) -> Self {
                self >> bits
            }
            #[inline]
            fn last_lane_empty(self, bits: u32) -> bool {
                self & ((1 << bits) - 1) == 0
            }
        }
    )*};
}

impl_key!(u64, u128);

/// Lane width for ids `0..n_ids` (ids + 1 must fit).
pub(crate) fn lane_bits(n_ids: usize) -> u32 {
    (usize::BITS - (n_ids + 1).leading_zeros()).max(1)
}

/// Each position's key of `order` lanes, the lanes past the end left empty (0, below every id + 1),
/// sorted.
///
/// One sort serves every order: keys compare lane by lane from the first, so dropping the last
/// lanes (a shift) keeps them sorted, and the shifted keys of the positions whose n-th lane is not
/// empty are exactly the sorted keys of the n-grams ([`order_keys`]).
fn padded_sorted<K: Key>(ids: &[u32], order: usize, bits: u32) -> Vec<K> {
    let mut padded: Vec<K> = (0..ids.len())
        .map(|p| {
            (p + 1..p + order).fold(K::lift(ids[p]), |k, i| match ids.get(i) {
                Some(&id) => k.extend(id, bits),
                None => k.pad(bits),
            })
        })
        .collect();
    padded.sort_unstable();
    padded
}

/// The sorted keys of the `n`-grams, from [`padded_sorted`] keys of `order` lanes.
fn order_keys<K: Key>(padded: &[K], order: usize, n: usize, bits: u32) -> impl Iterator<Item = K> {
    let shift = (order - n) as u32 * bits;
    padded
        .iter()
        .map(move |&k| k.shr(shift))
        .filter(move |&k| !k.last_lane_empty(bits))
}

/// Sorted keys of every n-gram of `ids`, one vector per order 1..=`order`.
pub(crate) fn ngrams_sorted<K: Key>(ids: &[u32], order: usize, bits: u32) -> Vec<Vec<K>> {
    let padded = padded_sorted::<K>(ids, order, bits);
    (1..=order)
        .map(|n| order_keys(&padded, order, n, bits).collect())
        .collect()
}

/// [`clipped_matches`] of two sorted streams.
fn clipped_matches_of<K: Ord + Copy>(
    mut h: impl Iterator<Item = K>,
    mut r: impl Iterator<Item = K>,
) -> u64 {
    let (mut a, mut b, mut m) = (h.next(), r.next(), 0u64);
    while let (Some(x), Some(y)) = (a, b) {
        match x.cmp(&y) {
            std::cmp::Ordering::Equal => {
                m += 1;
                a = h.next();
                b = r.next();
            }
            std::cmp::Ordering::Less => a = h.next(),
            std::cmp::Ordering::Greater => b = r.next(),
        }
    }
    m
}

/// `Σ_g min(count_h(g), count_r(g))` for two sorted multisets.
pub(crate) fn clipped_matches<K: Ord>(h: &[K], r: &[K]) -> u64 {
    let (mut i, mut j, mut m) = (0, 0, 0u64);
    while i < h.len() && j < r.len() {
        match h[i].cmp(&r[j]) {
            std::cmp::Ordering::Equal => {
                m += 1;
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    m
}

/// Union of sorted multisets keeping, for each key, its largest multiplicity (sacrebleu's
/// multi-reference `max` merge of BLEU n-gram counts).
pub(crate) fn max_union<K: Ord + Copy>(a: &[K], b: &[K]) -> Vec<K> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let k = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let (mut ca, mut cb) = (0, 0);
        while a.get(i) == Some(&k) {
            ca += 1;
            i += 1;
        }
        while b.get(j) == Some(&k) {
            cb += 1;
            j += 1;
        }
        out.extend(std::iter::repeat_n(k, ca.max(cb)));
    }
    out
}

/// `[hyp, ref, match]` per order of the hypothesis against each reference, as chrF counts them
/// (`hyp` is 0 when the reference has no n-gram of that order).
pub(crate) fn chrf_triples(
    h: &[u32],
    refs: &[Vec<u32>],
    order: usize,
    n_ids: usize,
) -> Vec<Vec<[u64; 3]>> {
    fn run<K: Key>(h: &[u32], refs: &[Vec<u32>], order: usize, bits: u32) -> Vec<Vec<[u64; 3]>> {
        // Straight from the one sorted key list of each side: no vector per order.
        let hp = padded_sorted::<K>(h, order, bits);
        refs.iter()
            .map(|r| {
                let rp = padded_sorted::<K>(r, order, bits);
                (1..=order)
                    .map(|n| {
                        // A sequence of `len` items has `len - n + 1` n-grams.
                        let (hn, rn) = (
                            (h.len() + 1).saturating_sub(n),
                            (r.len() + 1).saturating_sub(n),
                        );
                        [
                            if rn == 0 { 0 } else { hn as u64 },
                            rn as u64,
                            clipped_matches_of(
                                order_keys(&hp, order, n, bits),
                                order_keys(&rp, order, n, bits),
                            ),
                        ]
                    })
                    .collect()
            })
            .collect()
    }
    let bits = lane_bits(n_ids);
    if bits as usize * order <= 64 {
        run::<u64>(h, refs, order, bits)
    } else {
        run::<u128>(h, refs, order, bits)
    }
}

/// BLEU's clipped matches and totals per order: hypothesis n-grams against the per-key maximum
/// over the references.
pub(crate) fn bleu_counts(
    h: &[u32],
    refs: &[Vec<u32>],
    order: usize,
    n_ids: usize,
) -> (Vec<u64>, Vec<u64>) {
    fn run<K: Key>(h: &[u32], refs: &[Vec<u32>], order: usize, bits: u32) -> (Vec<u64>, Vec<u64>) {
        // A sequence of `len` items has `len - n + 1` n-grams.
        let total = (1..=order)
            .map(|n| (h.len() + 1).saturating_sub(n) as u64)
            .collect();
        if let [r] = refs {
            // One reference: straight from the one sorted key list of each side.
            let (hp, rp) = (
                padded_sorted::<K>(h, order, bits),
                padded_sorted::<K>(r, order, bits),
            );
            let correct = (1..=order)
                .map(|n| {
                    clipped_matches_of(
                        order_keys(&hp, order, n, bits),
                        order_keys(&rp, order, n, bits),
                    )
                })
                .collect();
            return (correct, total);
        }
        let hg = ngrams_sorted::<K>(h, order, bits);
        let mut merged: Option<Vec<Vec<K>>> = None;
        for r in refs {
            let g = ngrams_sorted::<K>(r, order, bits);
            merged = Some(match merged {
                None => g,
                Some(m) => m.iter().zip(&g).map(|(a, b)| max_union(a, b)).collect(),
            });
        }
        let rg = merged.unwrap_or_else(|| vec![Vec::new(); order]);
        let correct = (0..order)
            .map(|n| clipped_matches(&hg[n], &rg[n]))
            .collect();
        (correct, total)
    }
    let bits = lane_bits(n_ids);
    if bits as usize * order <= 64 {
        run::<u64>(h, refs, order, bits)
    } else {
        run::<u128>(h, refs, order, bits)
    }
}

/// Per-segment interner: equal items get equal ids, so packed keys compare exactly.
pub(crate) struct Interner<T> {
    ids: FxHashMap<T, u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            ids: FxHashMap::default(),
        }
    }
}

impl<T: Hash + Eq + Copy> Interner<T> {
    pub(crate) fn ids(&mut self, items: impl IntoIterator<Item = T>) -> Vec<u32> {
        items
            .into_iter()
            .map(|t| {
                let next = self.ids.len() as u32;
                *self.ids.entry(t).or_insert(next)
            })
            .collect()
    }

    /// Number of distinct items seen.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Character interner with a direct table for ASCII, the common case.
pub(crate) struct CharInterner {
    ascii: [u32; 128],
    other: FxHashMap<char, u32>,
    n: u32,
}

impl Default for CharInterner {
    fn default() -> Self {
        CharInterner {
            ascii: [u32::MAX; 128],
            other: FxHashMap::default(),
            n: 0,
        }
    }
}

impl CharInterner {
    pub(crate) fn ids(&mut self, chars: impl Iterator<Item = char>) -> Vec<u32> {
        let mut out = Vec::with_capacity(chars.size_hint().0);
        for c in chars {
            let id = if c.is_ascii() {
                let slot = &mut self.ascii[c as usize];
                if *slot == u32::MAX {
                    *slot = self.n;
                    self.n += 1;
                }
                *slot
            } else {
                let next = self.n;
                let id = *self.other.entry(c).or_insert(next);
                if id == next {
                    self.n += 1;
                }
                id
            };
            out.push(id);
        }
        out
    }

    /// Number of distinct characters seen.
    pub(crate) fn len(&self) -> usize {
        self.n as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipped_and_max_union() {
        let a: Vec<u64> = vec![1, 1, 2, 5, 5, 5];
        let b: Vec<u64> = vec![1, 5, 5, 7];
        assert_eq!(clipped_matches(&a, &b), 3);
        assert_eq!(max_union(&a, &b), vec![1, 1, 2, 5, 5, 5, 7]);
    }

    #[test]
    fn refined_order_equals_sorting_every_order() {
        // Real text: the ids of a Flores-200 line's characters, and a run-heavy repetitive one.
        let line = "Le lundi, des scientifiques de l'École de médecine de l'Université de Stanford ont annoncé";
        let mut interner = CharInterner::default();
        for text in [line, "aaaaabaaaaabaaaaab abab ab"] {
            let ids = interner.ids(text.chars());
            let bits = lane_bits(interner.len());
            let got = ngrams_sorted::<u64>(&ids, 6, bits);
            for (n, sorted) in got.iter().enumerate() {
                let mut want: Vec<u64> = ids
                    .windows(n + 1)
                    .map(|w| {
                        w.iter()
                            .fold(0u64, |k, &id| (k << bits) | (u64::from(id) + 1))
                    })
                    .collect();
                want.sort_unstable();
                assert_eq!(sorted, &want, "order {}", n + 1);
            }
        }
    }

    #[test]
    fn keys_distinguish_lengths_and_widths_agree() {
        let ids = [0u32, 0, 0, 1];
        let g = ngrams_sorted::<u64>(&ids, 3, lane_bits(2));
        assert_eq!(g[0].len(), 4);
        assert_eq!(g[2].len(), 2);
        assert!(!g[0].contains(&g[1][0]));
        let refs = vec![vec![0u32, 1, 1], vec![]];
        let narrow = chrf_triples(&ids, &refs, 3, 2);
        // Forcing the u128 path (huge id count) must give the same counts.
        assert_eq!(narrow, chrf_triples(&ids, &refs, 3, 1 << 20));
        assert_eq!(
            bleu_counts(&ids, &refs, 3, 2),
            bleu_counts(&ids, &refs, 3, 1 << 30)
        );
    }
}
