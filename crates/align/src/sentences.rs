//! The links of every pair of a run with their scores, in one flat store.
//!
//! A run's result used to be one [`SentenceAlignment`] per pair: 72 bytes of vector headers and three small heap
//! blocks per pair, about 200 bytes for a pair of five links. Stored flat, the same pair takes 16 bytes per link and
//! 8 per pair, which is what lets both directions of a corpus sit in memory together within fast_align's bound.

use crate::ibm2::SentenceAlignment;

/// One pair's links and their scores, borrowed from [`Sentences`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SentenceLinks<'a> {
    /// Links (src index, tgt index), 0-based, in the model's order.
    pub links: &'a [(u32, u32)],
    /// Posterior of each link under the final parameters (or pooled sample marginal).
    pub posteriors: &'a [f32],
    /// Translation probability t(generated | conditioning) of each link.
    pub ttable: &'a [f32],
}

impl SentenceLinks<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> SentenceAlignment {
        SentenceAlignment {
            links: self.links.to_vec(),
            posteriors: self.posteriors.to_vec(),
            ttable: self.ttable.to_vec(),
        }
    }
}

/// Every pair's links, in input order: pair k's are `links[start[k]..start[k + 1]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentences {
    start: Vec<usize>,
    links: Vec<(u32, u32)>,
    posteriors: Vec<f32>,
    ttable: Vec<f32>,
}

impl Default for Sentences {
    fn default() -> Self {
        Sentences {
            start: vec![0],
            links: Vec::new(),
            posteriors: Vec::new(),
            ttable: Vec::new(),
        }
    }
}

impl Sentences {
    /// An empty store with room for `pairs` pairs.
    pub fn with_capacity(pairs: usize) -> Self {
        let mut start = Vec::with_capacity(pairs + 1);
        start.push(0);
        Sentences {
            start,
            ..Default::default()
        }
    }

    /// Reserves room for `n` more links (a run knows its bound: one link at most per generated token).
    pub fn reserve_links(&mut self, n: usize) {
        self.links.reserve_exact(n);
        self.posteriors.reserve_exact(n);
        self.ttable.reserve_exact(n);
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pair k (panics when k ≥ len, as indexing does).
    pub fn get(&self, k: usize) -> SentenceLinks<'_> {
        let (a, b) = (self.start[k], self.start[k + 1]);
        SentenceLinks {
            links: &self.links[a..b],
            posteriors: &self.posteriors[a..b],
            ttable: &self.ttable[a..b],
        }
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SentenceLinks<'_>> + '_ {
        (0..self.len()).map(|k| self.get(k))
    }

    /// Links of all pairs together.
    pub fn total_links(&self) -> usize {
        self.links.len()
    }

    /// Appends a pair.
    pub fn push(&mut self, links: &[(u32, u32)], posteriors: &[f32], ttable: &[f32]) {
        self.start.push(self.links.len());
        self.extend_last(links, posteriors, ttable);
    }

    /// Appends pairs without links until there are `len` pairs.
    pub fn pad_to(&mut self, len: usize) {
        while self.len() < len {
            self.start.push(self.links.len());
        }
    }

    /// Appends links to the last pair (the pieces of a pair split across work chunks arrive in order).
    pub fn extend_last(&mut self, links: &[(u32, u32)], posteriors: &[f32], ttable: &[f32]) {
        assert!(
            links.len() == posteriors.len() && links.len() == ttable.len() && !self.is_empty(),
            "one score of each kind per link, on an existing pair"
        );
        self.links.extend_from_slice(links);
        self.posteriors.extend_from_slice(posteriors);
        self.ttable.extend_from_slice(ttable);
        *self.start.last_mut().expect("start holds len + 1 entries") = self.links.len();
    }

    /// Releases spare capacity (a finished run's store is read only).
    pub fn shrink_to_fit(&mut self) {
        self.start.shrink_to_fit();
        self.links.shrink_to_fit();
        self.posteriors.shrink_to_fit();
        self.ttable.shrink_to_fit();
    }
}

impl<'a> IntoIterator for &'a Sentences {
    type Item = SentenceLinks<'a>;
    type IntoIter = Box<dyn ExactSizeIterator<Item = SentenceLinks<'a>> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl FromIterator<SentenceAlignment> for Sentences {
    fn from_iter<I: IntoIterator<Item = SentenceAlignment>>(it: I) -> Self {
        let mut out = Sentences::default();
        for s in it {
            out.push(&s.links, &s.posteriors, &s.ttable);
        }
        out.shrink_to_fit();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_pads_and_split_pieces_read_back_in_order() {
        let mut s = Sentences::with_capacity(4);
        s.push(&[(0, 1)], &[0.5], &[0.25]);
        s.pad_to(3);
        s.push(&[(2, 0)], &[0.75], &[0.125]);
        s.extend_last(&[(3, 1), (4, 4)], &[0.5, 0.5], &[1.0, 0.0]);
        s.pad_to(5);
        assert_eq!(s.len(), 5);
        assert_eq!(s.get(0).links, &[(0, 1)]);
        assert!(s.get(1).links.is_empty() && s.get(2).links.is_empty());
        assert_eq!(s.get(3).links, &[(2, 0), (3, 1), (4, 4)]);
        assert_eq!(s.get(3).ttable, &[0.125, 1.0, 0.0]);
        assert!(s.get(4).links.is_empty());
        assert_eq!(s.total_links(), 4);
        let back: Sentences = s.iter().map(|x| x.to_owned()).collect();
        assert_eq!(back, s);
    }
}
