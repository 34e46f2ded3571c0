//! Fellegi-Sunter model: u from random pairs, m and the prior by EM, match weights.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::compare::{Comparison, Kind, PairCtx};
use crate::prepare::FxMap;

/// Estimated parameters of one comparison level.
#[derive(Debug, Clone)]
pub struct LevelParams {
    /// Label.
    pub label: String,
    /// Whether the level carries no evidence (missing values).
    pub neutral: bool,
    /// P(level | match).
    pub m: f64,
    /// P(level | non-match).
    pub u: f64,
    /// log2(m / u); 0 for neutral levels.
    pub weight: f64,
    /// Candidate pairs at this level.
    pub candidates: u64,
    /// Random pairs at this level (u sample).
    pub sampled: u64,
}

/// The trained model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Prior probability of a match used for scoring (see `prior_scope` in the settings).
    pub prior: f64,
    /// Prior probability that a candidate pair matches, as estimated by EM.
    pub candidate_prior: f64,
    /// Parameters per comparison, per level.
    pub comparisons: Vec<(String, Vec<LevelParams>)>,
    /// EM iterations run.
    pub em_iterations: usize,
    /// Random pairs drawn for u.
    pub u_sample_pairs: usize,
}

impl Model {
    /// log2 prior odds.
    pub fn prior_weight(&self) -> f64 {
        (self.prior / (1.0 - self.prior)).log2()
    }
}

/// Draws `n` random pairs (seeded) and counts their levels. Rows are drawn, then mapped to nodes, so
/// profiles of identical records weigh by their size.
pub(crate) fn sample_levels(
    ctx: &PairCtx,
    comps: &[Comparison],
    rows: (&[u32], &[u32]),
    dedupe: bool,
    n: usize,
    seed: u64,
) -> Vec<Vec<u64>> {
    let (lr, rr) = rows;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pairs = Vec::with_capacity(n);
    let possible = !(lr.is_empty() || rr.is_empty() || dedupe && lr.len() < 2);
    if possible {
        while pairs.len() < n {
            let a = rng.random_range(0..lr.len());
            let b = rng.random_range(0..rr.len());
            if dedupe && a == b {
                continue;
            }
            pairs.push((lr[a], rr[b]));
        }
    }
    let nc = comps.len();
    let counts = pairs
        .par_chunks(4096)
        .map(|chunk| {
            let mut c: Vec<Vec<u64>> = comps.iter().map(|x| vec![0; x.levels.len()]).collect();
            let mut g = vec![0u8; nc];
            for (a, b) in chunk {
                ctx.levels(comps, *a, *b, &mut g);
                for (i, l) in g.iter().enumerate() {
                    c[i][*l as usize] += 1;
                }
            }
            c
        })
        .reduce(
            || comps.iter().map(|x| vec![0; x.levels.len()]).collect(),
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    for (p, q) in x.iter_mut().zip(y) {
                        *p += q;
                    }
                }
                a
            },
        );
    counts
}

/// Distinct level patterns of the candidate pairs selected by `keep`, with their counts, sorted.
pub(crate) fn patterns(
    gamma: &[u8],
    nc: usize,
    keep: impl Fn(usize) -> bool + Sync,
) -> Vec<(Vec<u8>, u64)> {
    // Few distinct patterns: count them per chunk in a map, merge, then sort the distinct keys.
    let stride = nc.max(1);
    let maps: Vec<FxMap<u64, u64>> = gamma
        .par_chunks(stride * 65_536)
        .enumerate()
        .map(|(chunk, rows)| {
            let mut m: FxMap<u64, u64> = FxMap::default();
            for (j, g) in rows.chunks(stride).enumerate() {
                if keep(chunk * 65_536 + j) {
                    let k = g.iter().fold(0u64, |acc, l| (acc << 4) | *l as u64);
                    *m.entry(k).or_insert(0) += 1;
                }
            }
            m
        })
        .collect();
    class_patterns(maps.into_iter().flatten(), nc)
}

/// Distinct level patterns of (packed levels, pairs) counts, summed and sorted.
pub(crate) fn class_patterns(
    counted: impl Iterator<Item = (u64, u64)>,
    nc: usize,
) -> Vec<(Vec<u8>, u64)> {
    let mut counts: FxMap<u64, u64> = FxMap::default();
    for (k, n) in counted {
        *counts.entry(k).or_insert(0) += n;
    }
    let mut keys: Vec<(u64, u64)> = counts.into_iter().collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|(k, n)| {
            let g = (0..nc)
                .map(|c| ((k >> (4 * (nc - 1 - c))) & 0xF) as u8)
                .collect();
            (g, n)
        })
        .collect()
}

fn normalize_with_fixed(values: &mut [f64], fixed: &[Option<f64>], neutral: &[bool]) {
    let fixed_sum: f64 = fixed.iter().flatten().sum();
    let free: f64 = values
        .iter()
        .zip(fixed)
        .zip(neutral)
        .filter(|((_, f), n)| f.is_none() && !**n)
        .map(|((v, _), _)| *v)
        .sum();
    let room = (1.0 - fixed_sum).max(1e-9);
    for ((v, f), n) in values.iter_mut().zip(fixed).zip(neutral) {
        *v = if *n {
            1.0
        } else if let Some(f) = f {
            *f
        } else if free > 0.0 {
            (*v / free * room).max(1e-9)
        } else {
            1e-9
        };
    }
}

fn neutral_flags(comps: &[Comparison]) -> Vec<Vec<bool>> {
    comps
        .iter()
        .map(|c| c.levels.iter().map(|l| l.kind == Kind::Null).collect())
        .collect()
}

/// u from the random-pair counts, with add-one smoothing; fixed values kept.
pub(crate) fn estimate_u(comps: &[Comparison], sample: &[Vec<u64>]) -> Vec<Vec<f64>> {
    let neutral = neutral_flags(comps);
    comps
        .iter()
        .enumerate()
        .map(|(c, comp)| {
            let mut v: Vec<f64> = sample[c].iter().map(|n| *n as f64 + 1.0).collect();
            let fixed: Vec<Option<f64>> = comp.levels.iter().map(|l| l.fixed_u).collect();
            normalize_with_fixed(&mut v, &fixed, &neutral[c]);
            v
        })
        .collect()
}

/// Starting m: most mass on the first informative level, decreasing along the levels.
pub(crate) fn initial_m(comps: &[Comparison]) -> Vec<Vec<f64>> {
    let neutral = neutral_flags(comps);
    comps
        .iter()
        .enumerate()
        .map(|(c, comp)| {
            let k = comp.levels.len();
            let mut v: Vec<f64> = (0..k).map(|i| 0.5f64.powi(2 * i as i32 + 1)).collect();
            if let Some(first) = (0..k).find(|i| !neutral[c][*i]) {
                v[first] = 4.0;
            }
            let fixed: Vec<Option<f64>> = comp.levels.iter().map(|l| l.fixed_m).collect();
            normalize_with_fixed(&mut v, &fixed, &neutral[c]);
            v
        })
        .collect()
}

/// One EM run over `pats` with u fixed: the `active` comparisons take part, the m of those also in
/// `train` is updated, and the prior unless fixed. Returns the prior and the iterations run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn em(
    comps: &[Comparison],
    u: &[Vec<f64>],
    m: &mut [Vec<f64>],
    pats: &[(Vec<u8>, u64)],
    active: &[bool],
    train: &[bool],
    prior: Option<f64>,
    start_prior: f64,
    max_iter: usize,
    tol: f64,
) -> (f64, usize) {
    let neutral = neutral_flags(comps);
    let mut lambda = prior.unwrap_or(start_prior);
    let mut iterations = 0;
    for _ in 0..max_iter {
        iterations += 1;
        let mut sum_w = 0.0;
        let mut total = 0.0;
        let mut acc: Vec<Vec<f64>> = comps.iter().map(|c| vec![0.0; c.levels.len()]).collect();
        for (g, n) in pats {
            let mut pm = lambda;
            let mut pu = 1.0 - lambda;
            for (c, l) in g.iter().enumerate() {
                if active[c] {
                    pm *= m[c][*l as usize];
                    pu *= u[c][*l as usize];
                }
            }
            let w = if pm + pu > 0.0 { pm / (pm + pu) } else { 0.0 };
            let wn = w * *n as f64;
            sum_w += wn;
            total += *n as f64;
            for (c, l) in g.iter().enumerate() {
                acc[c][*l as usize] += wn;
            }
        }
        let new_lambda = match prior {
            Some(p) => p,
            None => (sum_w / total.max(1.0)).clamp(1e-9, 1.0 - 1e-9),
        };
        let mut delta = (new_lambda - lambda).abs();
        lambda = new_lambda;
        {
            for (c, comp) in comps.iter().enumerate() {
                if !active[c] || !train[c] {
                    continue;
                }
                let fixed: Vec<Option<f64>> = comp.levels.iter().map(|l| l.fixed_m).collect();
                let mut v = acc[c].clone();
                normalize_with_fixed(&mut v, &fixed, &neutral[c]);
                for (a, b) in v.iter().zip(&m[c]) {
                    delta = delta.max((a - b).abs());
                }
                m[c] = v;
            }
        }
        if delta < tol {
            break;
        }
    }
    (lambda, iterations)
}

/// Assembles the model.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    comps: &[Comparison],
    m: &[Vec<f64>],
    u: &[Vec<f64>],
    sample: &[Vec<u64>],
    pats: &[(Vec<u8>, u64)],
    prior: f64,
    candidate_prior: f64,
    em_iterations: usize,
    u_sample_pairs: usize,
) -> Model {
    let neutral = neutral_flags(comps);
    let mut cand: Vec<Vec<u64>> = comps.iter().map(|c| vec![0; c.levels.len()]).collect();
    for (g, n) in pats {
        for (c, l) in g.iter().enumerate() {
            cand[c][*l as usize] += n;
        }
    }
    let comparisons = comps
        .iter()
        .enumerate()
        .map(|(c, comp)| {
            let levels = comp
                .levels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let neutral = neutral[c][i];
                    LevelParams {
                        label: l.label.clone(),
                        neutral,
                        m: m[c][i],
                        u: u[c][i],
                        weight: if neutral {
                            0.0
                        } else {
                            (m[c][i] / u[c][i]).log2()
                        },
                        candidates: cand[c][i],
                        sampled: sample[c][i],
                    }
                })
                .collect();
            (comp.name.clone(), levels)
        })
        .collect();
    Model {
        prior,
        candidate_prior,
        comparisons,
        em_iterations,
        u_sample_pairs,
    }
}

/// Probability of a match weight.
pub fn probability(weight: f64) -> f64 {
    if weight.is_infinite() && weight > 0.0 {
        return 1.0;
    }
    let odds = weight.exp2();
    odds / (1.0 + odds)
}
