//! Scoring where the pairs are: the match weight as a function of what a pair's class holds (its
//! levels, whether a deterministic rule matches it, the term frequencies it reads), so that an
//! engine can count its candidate pairs by class, the linkage trains the model on the counts, and
//! only the pairs the model keeps come back ([`ScoringJob`]).
//!
//! The weight is computed by [`Scoring::weight`] everywhere: in the embedded run for every pair, in
//! the driver for every class, and on an engine's workers (from [`Scoring::spec`]) for every pair, so
//! a pair's weight and the decision to keep it are the same bits wherever they are made.

use serde::{Deserialize, Serialize};

use crate::compare::Comparison;
use crate::model::{probability, Model};
use crate::{LinkageError, PairSet};

/// One class of candidate pairs as an engine counts them.
#[derive(Debug, Clone, PartialEq)]
pub struct PairClass {
    /// The first rule that produces the pairs (the rule they count for).
    pub first: u32,
    /// Bit `j` set when rule `j` produces the pairs (at most 64 rules).
    pub produced: u64,
    /// The levels, packed as [`crate::LevelFn::packed`].
    pub levels: u64,
    /// Whether a deterministic rule matches the pairs (all its columns present and equal).
    pub deterministic: bool,
    /// Per comparison: the term frequency of the left node's value when the pairs sit at the
    /// comparison's term-frequency level (and the value has one), else none.
    pub tf: Vec<Option<f64>>,
    /// Number of pairs.
    pub pairs: u64,
}

/// A job an engine trains and scores where its pairs are: it counts the candidate pairs by class,
/// then returns the pairs a [`Scoring`] keeps. The job's files live as long as the value.
pub trait ScoringJob {
    /// Every class of candidate pairs with its number of pairs (in any order).
    fn classes(&mut self) -> Result<Vec<PairClass>, LinkageError>;
    /// The candidate pairs whose weight `scoring` keeps, with their levels; `expected` of them, by the
    /// classes' counts.
    fn kept(&mut self, scoring: &Scoring, expected: u64) -> Result<PairSet, LinkageError>;
}

/// The match weight of a pair and the threshold of the pairs kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    /// log2 prior odds.
    prior_weight: f64,
    /// Per comparison, per level: (weight, u).
    levels: Vec<Vec<(f64, f64)>>,
    /// Per comparison: the term-frequency level and the smallest u it uses.
    tf: Vec<Option<(u8, f64)>>,
    /// Pairs whose match probability reaches this are kept.
    keep: f64,
}

impl Scoring {
    /// The weight of the fitted model over the compiled comparisons; pairs of probability `keep` and
    /// up are kept.
    pub(crate) fn new(model: &Model, comps: &[Comparison], keep: f64) -> Self {
        Scoring {
            prior_weight: model.prior_weight(),
            levels: model
                .comparisons
                .iter()
                .map(|(_, ls)| ls.iter().map(|p| (p.weight, p.u)).collect())
                .collect(),
            tf: comps
                .iter()
                .map(|c| c.tf.as_ref().map(|t| (t.level as u8, t.min_u)))
                .collect(),
            keep,
        }
    }

    /// The scoring as text that travels with a query plan (every number to the bit).
    pub fn spec(&self) -> String {
        serde_json::to_string(&SpecText::from(self)).unwrap_or_default()
    }

    /// The scoring a [`Scoring::spec`] describes.
    pub fn from_spec(spec: &str) -> Result<Self, LinkageError> {
        let text: SpecText = serde_json::from_str(spec).map_err(|e| LinkageError::Settings {
            file: "<scoring>".into(),
            message: e.to_string(),
        })?;
        Ok(text.into())
    }

    /// Number of comparisons.
    pub fn comparisons(&self) -> usize {
        self.levels.len()
    }

    /// The level at which comparison `c` reads a term frequency.
    pub fn tf_level(&self, c: usize) -> Option<u8> {
        self.tf.get(c).copied().flatten().map(|t| t.0)
    }

    /// The match weight (log2 odds) of a pair at `levels` (infinite when a deterministic rule
    /// matches); `tf(c)` gives the term frequency comparison `c` reads at its term-frequency level.
    pub fn weight(
        &self,
        levels: &[u8],
        deterministic: bool,
        tf: impl Fn(usize) -> Option<f64>,
    ) -> f64 {
        if deterministic {
            return f64::INFINITY;
        }
        let mut w = self.prior_weight;
        for (c, l) in levels.iter().enumerate() {
            let Some(&(weight, u)) = self.levels.get(c).and_then(|ls| ls.get(*l as usize)) else {
                return f64::NAN;
            };
            w += weight;
            if let Some(Some((level, min_u))) = self.tf.get(c) {
                if *level == *l {
                    if let Some(f) = tf(c) {
                        w += (u / f.max(*min_u)).log2();
                    }
                }
            }
        }
        w
    }

    /// Whether a pair of weight `weight` is kept.
    pub fn keeps(&self, weight: f64) -> bool {
        probability(weight) >= self.keep
    }

    /// The weight of every pair of a class.
    pub fn class_weight(&self, class: &PairClass) -> f64 {
        let mut g = [0u8; 16];
        let n = self.levels.len().min(16);
        crate::unpack_levels(class.levels, n, &mut g[..n]);
        self.weight(&g[..n], class.deterministic, |c| {
            class.tf.get(c).copied().flatten()
        })
    }
}

/// [`Scoring`] with every number as its bits, so the text round-trips exactly.
#[derive(Serialize, Deserialize)]
struct SpecText {
    prior_weight: u64,
    levels: Vec<Vec<(u64, u64)>>,
    tf: Vec<Option<(u8, u64)>>,
    keep: u64,
}

impl From<&Scoring> for SpecText {
    fn from(s: &Scoring) -> Self {
        SpecText {
            prior_weight: s.prior_weight.to_bits(),
            levels: s
                .levels
                .iter()
                .map(|ls| ls.iter().map(|(w, u)| (w.to_bits(), u.to_bits())).collect())
                .collect(),
            tf: s
                .tf
                .iter()
                .map(|t| t.map(|(l, m)| (l, m.to_bits())))
                .collect(),
            keep: s.keep.to_bits(),
        }
    }
}

impl From<SpecText> for Scoring {
    fn from(s: SpecText) -> Self {
        Scoring {
            prior_weight: f64::from_bits(s.prior_weight),
            levels: s
                .levels
                .iter()
                .map(|ls| {
                    ls.iter()
                        .map(|(w, u)| (f64::from_bits(*w), f64::from_bits(*u)))
                        .collect()
                })
                .collect(),
            tf: s
                .tf
                .iter()
                .map(|t| t.map(|(l, m)| (l, f64::from_bits(m))))
                .collect(),
            keep: f64::from_bits(s.keep),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scoring() -> Scoring {
        Scoring {
            prior_weight: -13.287_712_379_549_449,
            levels: vec![
                vec![(7.1, 0.001), (2.3, 0.01), (-4.7, 0.98)],
                vec![(5.0, 0.002), (-3.3, 0.99)],
            ],
            tf: vec![Some((0, 0.0001)), None],
            keep: 0.5,
        }
    }

    #[test]
    fn the_spec_round_trips_to_the_bit() {
        let s = scoring();
        let back = Scoring::from_spec(&s.spec()).expect("spec");
        assert_eq!(back, s);
        let w = |s: &Scoring| s.weight(&[0, 0], false, |_| Some(0.000_37)).to_bits();
        assert_eq!(w(&back), w(&s));
    }

    #[test]
    fn a_term_frequency_counts_only_at_its_level() {
        let s = scoring();
        let base = s.weight(&[1, 0], false, |_| None);
        assert_eq!(s.weight(&[1, 0], false, |_| Some(0.5)), base);
        let rare = s.weight(&[0, 0], false, |_| Some(0.000_01));
        let common = s.weight(&[0, 0], false, |_| Some(0.2));
        assert!(rare > common, "{rare} {common}");
        assert_eq!(s.weight(&[2, 1], true, |_| None), f64::INFINITY);
        assert!(s.weight(&[3, 0], false, |_| None).is_nan());
        assert!(Scoring::from_spec("{").is_err());
    }
}
