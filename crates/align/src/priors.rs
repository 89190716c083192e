//! Priors for the Bayesian aligner, learned from one corpus's alignments and reused on another.
//!
//! The use case (Mozilla's translations pipeline does this with eflomal): align a large parallel corpus once, keep
//! what its alignments say about the language pair, and align a smaller or noisier corpus later (back-translated
//! data, a new sample) with that knowledge instead of from nothing. Here the knowledge is the count tables the
//! collapsed model is built from, taken from the finished alignments:
//!
//! | kind | counted | pseudo-count of |
//! |---|---|---|
//! | translation | each generated token with its conditioning word (NULL when unlinked) | c(e, f) |
//! | jump | each linked token's jump d from the previous linked position (0 = start), and each sentence's jump to the end position n + 1 | c(d) |
//! | null | each unlinked generated token | c(NULL event) |
//! | fertility | each conditioning position's number of linked generated tokens φ | c(e, φ) |
//!
//! per direction (forward: the target generated from the source; reverse: the opposite). The reusing run adds
//! them, times a weight, to its Dirichlet parameters: a translation prior α_t becomes α_t + π(e, f), and so on (see
//! [`crate::gibbs`]). Words are matched by their text, so the two corpora need no shared numbering; prior entries
//! of words the new corpus does not have are ignored, and words without a prior keep the symmetric α alone.
//!
//! A generated token with several links (an aligner that links one token to many) counts as linked to the first
//! of them, the lowest position: the model generates each token from exactly one position.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::AlignError;
use crate::ibm2::{Alignment, Corpus};

/// One direction of an alignment model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The target side generated from the source side.
    Forward,
    /// The source side generated from the target side.
    Reverse,
}

impl Direction {
    /// `forward` or `reverse`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }

    /// The direction named `forward` or `reverse`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "forward" => Some(Direction::Forward),
            "reverse" => Some(Direction::Reverse),
            _ => None,
        }
    }
}

/// What one prior entry is a pseudo-count of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PriorKind {
    /// c(e, f): generated word `generated` from conditioning word `conditioning` (`None` = NULL).
    Translation {
        /// The conditioning word, `None` for NULL.
        conditioning: Option<String>,
        /// The generated word.
        generated: String,
    },
    /// c(d): a jump of `d` positions from the previous linked position.
    Jump(i64),
    /// c(NULL event): a generated token left unlinked.
    Null,
    /// c(e, φ): conditioning word `conditioning` with `fertility` generated tokens linked to it.
    Fertility {
        /// The conditioning word.
        conditioning: String,
        /// The number of tokens linked to it.
        fertility: u32,
    },
}

impl PriorKind {
    /// `translation`, `jump`, `null` or `fertility`.
    pub fn name(&self) -> &'static str {
        match self {
            PriorKind::Translation { .. } => "translation",
            PriorKind::Jump(_) => "jump",
            PriorKind::Null => "null",
            PriorKind::Fertility { .. } => "fertility",
        }
    }
}

/// The pseudo-counts of one direction, every count > 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectionPriors {
    /// c(e, f) by (conditioning word, `None` = NULL; generated word).
    pub translation: BTreeMap<(Option<String>, String), f64>,
    /// c(d) by jump width d (the end jumps included).
    pub jump: BTreeMap<i64, f64>,
    /// c(NULL event).
    pub null: f64,
    /// c(e, φ) by (conditioning word, fertility φ).
    pub fertility: BTreeMap<(String, u32), f64>,
}

impl DirectionPriors {
    /// Adds `count` to the entry of `kind` (entries of the same kind and key add up).
    pub fn add(&mut self, kind: PriorKind, count: f64) {
        match kind {
            PriorKind::Translation {
                conditioning,
                generated,
            } => {
                *self
                    .translation
                    .entry((conditioning, generated))
                    .or_insert(0.0) += count
            }
            PriorKind::Jump(d) => *self.jump.entry(d).or_insert(0.0) += count,
            PriorKind::Null => self.null += count,
            PriorKind::Fertility {
                conditioning,
                fertility,
            } => {
                *self
                    .fertility
                    .entry((conditioning, fertility))
                    .or_insert(0.0) += count
            }
        }
    }

    /// Every entry in a fixed order: translation (by words), jump (by width), null, fertility (by word, φ).
    pub fn entries(&self) -> impl Iterator<Item = (PriorKind, f64)> + '_ {
        let translation = self.translation.iter().map(|((e, f), &c)| {
            (
                PriorKind::Translation {
                    conditioning: e.clone(),
                    generated: f.clone(),
                },
                c,
            )
        });
        let jump = self.jump.iter().map(|(&d, &c)| (PriorKind::Jump(d), c));
        let null = (self.null > 0.0).then_some((PriorKind::Null, self.null));
        let fertility = self.fertility.iter().map(|((e, phi), &c)| {
            (
                PriorKind::Fertility {
                    conditioning: e.clone(),
                    fertility: *phi,
                },
                c,
            )
        });
        translation.chain(jump).chain(null).chain(fertility)
    }

    /// Whether there is no entry at all.
    pub fn is_empty(&self) -> bool {
        self.translation.is_empty()
            && self.jump.is_empty()
            && self.null == 0.0
            && self.fertility.is_empty()
    }

    /// Counts the events of one direction's alignment of one pair: `cond` conditions, `gen_` is generated, and
    /// `links` are (conditioning index, generated index), 0-based.
    fn count_pair<S: AsRef<str>>(&mut self, cond: &[S], gen_: &[S], links: &[(u32, u32)]) {
        // a[j] = 1-based conditioning position of generated token j (0 = NULL): its lowest link.
        let mut a = vec![0u32; gen_.len()];
        for &(i, j) in links {
            let slot = &mut a[j as usize];
            if *slot == 0 || i + 1 < *slot {
                *slot = i + 1;
            }
        }
        let mut phi = vec![0u32; cond.len()];
        let mut prev = 0i64;
        for (j, &aj) in a.iter().enumerate() {
            let word = |i: u32| cond[i as usize - 1].as_ref().to_string();
            let generated = gen_[j].as_ref().to_string();
            if aj == 0 {
                self.add(
                    PriorKind::Translation {
                        conditioning: None,
                        generated,
                    },
                    1.0,
                );
                self.add(PriorKind::Null, 1.0);
            } else {
                self.add(
                    PriorKind::Translation {
                        conditioning: Some(word(aj)),
                        generated,
                    },
                    1.0,
                );
                self.add(PriorKind::Jump(i64::from(aj) - prev), 1.0);
                prev = i64::from(aj);
                phi[aj as usize - 1] += 1;
            }
        }
        self.add(PriorKind::Jump(cond.len() as i64 + 1 - prev), 1.0);
        for (e, &n) in cond.iter().zip(&phi) {
            self.add(
                PriorKind::Fertility {
                    conditioning: e.as_ref().to_string(),
                    fertility: n,
                },
                1.0,
            );
        }
    }

    /// Every count multiplied by `weight`.
    fn scale(&mut self, weight: f64) {
        for c in self.translation.values_mut() {
            *c *= weight;
        }
        for c in self.jump.values_mut() {
            *c *= weight;
        }
        self.null *= weight;
        for c in self.fertility.values_mut() {
            *c *= weight;
        }
    }
}

/// The priors of both directions of one language pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Priors {
    /// The target generated from the source.
    pub forward: DirectionPriors,
    /// The source generated from the target.
    pub reverse: DirectionPriors,
}

impl Priors {
    /// The priors of one direction.
    pub fn direction(&self, d: Direction) -> &DirectionPriors {
        match d {
            Direction::Forward => &self.forward,
            Direction::Reverse => &self.reverse,
        }
    }

    /// The priors of one direction, to fill.
    pub fn direction_mut(&mut self, d: Direction) -> &mut DirectionPriors {
        match d {
            Direction::Forward => &mut self.forward,
            Direction::Reverse => &mut self.reverse,
        }
    }

    /// Learns the priors of an aligned corpus: `src[k]`, `tgt[k]` are pair k's tokens, `forward[k]` and `reverse[k]`
    /// its two directions' links as (source index, target index), 0-based; every count is multiplied by `weight`
    /// (> 0). Pass only the pairs that were aligned: a skipped pair's empty links would count as all-NULL.
    /// A link outside its pair is an error naming the pair.
    pub fn learn<S: AsRef<str>>(
        src: &[Vec<S>],
        tgt: &[Vec<S>],
        forward: &[Vec<(u32, u32)>],
        reverse: &[Vec<(u32, u32)>],
        weight: f64,
    ) -> Result<Self, AlignError> {
        check_weight(weight)?;
        let n = src.len();
        if tgt.len() != n || forward.len() != n || reverse.len() != n {
            return Err(AlignError::PriorInput {
                pair: n.min(tgt.len()).min(forward.len()).min(reverse.len()),
                reason: format!(
                    "{n} source sentences, {} target sentences, {} forward and {} reverse alignments: all four must be equal",
                    tgt.len(),
                    forward.len(),
                    reverse.len()
                ),
            });
        }
        let mut p = Priors::default();
        for k in 0..n {
            p.count_pair(k, &src[k], &tgt[k], &forward[k], &reverse[k])?;
        }
        p.scale(weight);
        Ok(p)
    }

    /// [`Priors::learn`] on an interned corpus and the two directions aligned on it (`forward`, `reverse`: as
    /// [`crate::align_interned`] or the Bayesian aligner return them, links in src-tgt orientation). Skipped pairs
    /// are left out. Words are the corpus's interned forms (lowercased when it was built lowercased); no string is
    /// kept per token, so this serves a corpus whose text was freed after interning.
    pub fn learn_interned(
        corpus: &Corpus,
        forward: &Alignment,
        reverse: &Alignment,
        weight: f64,
    ) -> Result<Self, AlignError> {
        check_weight(weight)?;
        let n = corpus.len();
        for (name, run) in [("forward", forward), ("reverse", reverse)] {
            if run.sentences.len() != n {
                return Err(AlignError::PriorInput {
                    pair: n.min(run.sentences.len()),
                    reason: format!(
                        "the {name} alignment has {} sentences, the corpus {n}: align both directions on this corpus",
                        run.sentences.len()
                    ),
                });
            }
        }
        let (src_words, tgt_words) = (corpus.src_vocab.words(), corpus.tgt_vocab.words());
        // Borrowed words: the counting copies a word only into a new table entry.
        fn spell<'w>(words: &[&'w str], ids: &[u32]) -> Vec<&'w str> {
            ids.iter().map(|&id| words[id as usize]).collect()
        }
        let mut p = Priors::default();
        for k in 0..n {
            let (s, t) = corpus.pair_ids(k);
            if s.is_empty() {
                continue;
            }
            let (s, t) = (spell(&src_words, s), spell(&tgt_words, t));
            let (f, r) = (forward.sentences.get(k), reverse.sentences.get(k));
            p.count_pair(k, &s, &t, f.links, r.links)?;
        }
        p.scale(weight);
        Ok(p)
    }

    /// Counts pair `k` (tokens `s`, `t`; both directions' links in src-tgt orientation) into both directions.
    fn count_pair<S: AsRef<str>>(
        &mut self,
        k: usize,
        s: &[S],
        t: &[S],
        forward: &[(u32, u32)],
        reverse: &[(u32, u32)],
    ) -> Result<(), AlignError> {
        for (name, links) in [("forward", forward), ("reverse", reverse)] {
            if let Some(&(i, j)) = links
                .iter()
                .find(|&&(i, j)| i as usize >= s.len() || j as usize >= t.len())
            {
                return Err(AlignError::PriorInput {
                    pair: k,
                    reason: format!(
                        "{name} link {i}-{j} is outside a pair of {} source and {} target tokens",
                        s.len(),
                        t.len()
                    ),
                });
            }
        }
        self.forward.count_pair(s, t, forward);
        let flipped: Vec<(u32, u32)> = reverse.iter().map(|&(i, j)| (j, i)).collect();
        self.reverse.count_pair(t, s, &flipped);
        Ok(())
    }

    fn scale(&mut self, weight: f64) {
        if weight != 1.0 {
            self.forward.scale(weight);
            self.reverse.scale(weight);
        }
    }
}

fn check_weight(weight: f64) -> Result<(), AlignError> {
    if weight > 0.0 && weight.is_finite() {
        Ok(())
    } else {
        Err(AlignError::InvalidParam {
            field: "weight",
            reason: format!("must be a finite number > 0, got {weight}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(e: Option<&str>, f: &str) -> (Option<String>, String) {
        (e.map(String::from), f.to_string())
    }

    #[test]
    fn counts_are_the_events_the_model_generates() {
        // src "a b c", tgt "x y z w": forward links a-x, c-y, c-z (w unlinked); reverse links a-x, b-y.
        let src = vec![vec!["a", "b", "c"]];
        let tgt = vec![vec!["x", "y", "z", "w"]];
        let fwd = vec![vec![(0, 0), (2, 1), (2, 2)]];
        let rev = vec![vec![(0, 0), (1, 1)]];
        let p = Priors::learn(&src, &tgt, &fwd, &rev, 2.0).unwrap();
        let f = &p.forward;
        assert_eq!(
            f.translation,
            BTreeMap::from([
                (t(Some("a"), "x"), 2.0),
                (t(Some("c"), "y"), 2.0),
                (t(Some("c"), "z"), 2.0),
                (t(None, "w"), 2.0),
            ])
        );
        // Jumps: start → 1 (+1), 1 → 3 (+2), 3 → 3 (0), 3 → end 4 (+1); w is a NULL event.
        assert_eq!(f.jump, BTreeMap::from([(0, 2.0), (1, 4.0), (2, 2.0)]));
        assert_eq!(f.null, 2.0);
        assert_eq!(
            f.fertility,
            BTreeMap::from([
                (("a".into(), 1), 2.0),
                (("b".into(), 0), 2.0),
                (("c".into(), 2), 2.0)
            ])
        );
        // Reverse: the source generated from the target; c is unlinked.
        let r = &p.reverse;
        assert_eq!(
            r.translation,
            BTreeMap::from([
                (t(Some("x"), "a"), 2.0),
                (t(Some("y"), "b"), 2.0),
                (t(None, "c"), 2.0),
            ])
        );
        // start → 1, 1 → 2, 2 → end 5 (n = 4 target words).
        assert_eq!(r.jump, BTreeMap::from([(1, 4.0), (3, 2.0)]));
        assert_eq!(r.null, 2.0);
        assert_eq!(r.fertility.len(), 4);
        // entries() lists every count once, in a fixed order.
        let kinds: Vec<&str> = f.entries().map(|(k, _)| k.name()).collect();
        assert_eq!(
            kinds,
            [
                "translation",
                "translation",
                "translation",
                "translation",
                "jump",
                "jump",
                "jump",
                "null",
                "fertility",
                "fertility",
                "fertility"
            ]
        );
    }

    #[test]
    fn a_token_with_several_links_counts_once_at_its_lowest_position() {
        let p = Priors::learn(
            &[vec!["a", "b"]],
            &[vec!["x"]],
            &[vec![(1, 0), (0, 0)]],
            &[vec![]],
            1.0,
        )
        .unwrap();
        assert_eq!(
            p.forward.translation,
            BTreeMap::from([(t(Some("a"), "x"), 1.0)])
        );
        assert_eq!(p.forward.jump, BTreeMap::from([(1, 1.0), (2, 1.0)]));
    }

    #[test]
    fn bad_links_and_weights_are_refused_with_the_pair_named() {
        let e = Priors::learn(&[vec!["a"]], &[vec!["x"]], &[vec![(0, 1)]], &[vec![]], 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pair 0") && e.contains("forward link 0-1"),
            "{e}"
        );
        let e = Priors::learn(&[vec!["a"]], &[vec!["x"]], &[vec![]], &[vec![]], 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight"), "{e}");
        let e = Priors::learn::<&str>(&[vec!["a"]], &[], &[], &[], 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be equal"), "{e}");
    }
}
