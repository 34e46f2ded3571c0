//! Differential privacy for counts: every figure of an answer gets noise from OpenDP's
//! discrete Laplace mechanism, in one vector measurement whose privacy loss OpenDP computes.
//!
//! The figures are laid out so that one person changes few of them:
//! - the attrition as a partition: the persons who fall out at each step and those who stay to the
//!   end (a person is in exactly one part, so the parts together have L1 sensitivity 1); the
//!   persons left after each step are sums of the noisy parts (post-processing);
//! - each breakdown (sex, age band, 二次医療圏, provider) a partition of the final cohort over a
//!   domain fixed before the data are looked at (sexes and age bands by definition, areas of the
//!   population's municipalities, registered providers), so an empty cell gets noise too and a
//!   cell's presence says nothing.
//!
//! The L1 sensitivity of the whole vector is therefore 5 (the attrition and four breakdowns), and
//! the scale is 5 / ε for an answer that spends ε. OpenDP's randomness is not seeded (its
//! sampler draws from OpenSSL's generator): tests check distributions, never values.
//!
//! [`half_width`] gives the 95 % interval of a sum of such noises, from their exact distribution.

use std::collections::BTreeMap;

use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::make_laplace;
use opendp::metrics::L1Distance;

use crate::evaluate::{age_band, Breakdown, Counts, Step};
use crate::FeasibilityError;

/// Parts of the vector one person can change: the attrition's partition and four breakdowns.
pub const SENSITIVITY: i64 = 5;

/// The cells every breakdown shows, fixed before the data are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domains {
    /// 二次医療圏 of the population's municipalities.
    pub areas: Vec<String>,
    /// Registered providers.
    pub providers: Vec<String>,
}

/// What the noise did: the scale and each figure's 95 % half-width.
#[derive(Debug, Clone, PartialEq)]
pub struct Widths {
    /// ε spent (as OpenDP's privacy map gives it).
    pub epsilon: f64,
    /// Laplace scale of each noisy part.
    pub scale: f64,
    /// Half-width for the persons after each step (the last is the cohort).
    pub steps: Vec<u64>,
    /// Half-width for a breakdown cell.
    pub cell: u64,
}

impl Widths {
    /// No noise: exact counts (`steps` figures of attrition).
    pub fn exact(steps: usize) -> Widths {
        Widths {
            epsilon: 0.0,
            scale: 0.0,
            steps: vec![0; steps],
            cell: 0,
        }
    }
}

fn sexes() -> Vec<String> {
    ["F", "M", "unknown"].map(String::from).to_vec()
}

fn age_bands() -> Vec<String> {
    (0..10)
        .map(|d| age_band(d * 10))
        .chain(std::iter::once("unknown".to_string()))
        .collect()
}

/// A breakdown over a fixed domain: every cell of the domain (zero when nobody is in it), and
/// any cell outside it folded into `unknown`.
fn over(domain: &[String], b: &Breakdown) -> Breakdown {
    let mut out: Breakdown = domain.iter().map(|k| (k.clone(), 0)).collect();
    out.entry("unknown".into()).or_default();
    for (k, n) in b {
        let key = if out.contains_key(k) {
            k.clone()
        } else {
            "unknown".into()
        };
        *out.entry(key).or_default() += n;
    }
    out
}

/// Adds noise spending `epsilon` to the counts; returns the noisy counts (never negative) and what
/// the noise did.
pub fn perturb(
    counts: &Counts,
    domains: &Domains,
    epsilon: f64,
) -> Result<(Counts, Widths), FeasibilityError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(FeasibilityError::Policy(
            "ε per count must be above 0".into(),
        ));
    }
    let scale = SENSITIVITY as f64 / epsilon;
    let meas = make_laplace(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L1Distance::<i64>::default(),
        scale,
        None,
    )
    .map_err(dp)?;
    let spent = meas.map(&SENSITIVITY).map_err(dp)?;
    if spent > epsilon * (1.0 + 1e-9) {
        return Err(FeasibilityError::Policy(format!(
            "the mechanism would spend ε {spent}, above the {epsilon} allowed"
        )));
    }
    let layout = Layout::of(counts, domains);
    let noisy = meas.invoke(&layout.values).map_err(dp)?;
    let out = layout.rebuild(counts, &noisy);
    // Step j sums the noises of the parts from it on: n − j of them.
    let mut steps = half_widths(scale, counts.steps.len());
    steps.reverse();
    Ok((
        out,
        Widths {
            epsilon: spent,
            scale,
            steps,
            cell: half_width(scale, 1),
        },
    ))
}

fn dp(e: opendp::error::Error) -> FeasibilityError {
    FeasibilityError::Policy(format!("differential privacy: {e}"))
}

/// The vector the mechanism sees: the attrition's parts (fallen out at each step, then the final
/// cohort), then the breakdowns' cells over their domains.
struct Layout {
    values: Vec<i64>,
    breakdowns: [Breakdown; 4],
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Layout {
    fn of(counts: &Counts, domains: &Domains) -> Layout {
        let persons: Vec<u64> = counts.steps.iter().map(|s| s.persons).collect();
        let mut values: Vec<i64> = persons
            .windows(2)
            .map(|w| signed(w[0].saturating_sub(w[1])))
            .collect();
        values.push(signed(counts.total()));
        let breakdowns = [
            over(&sexes(), &counts.sex),
            over(&age_bands(), &counts.age_band),
            over(&domains.areas, &counts.area),
            over(&domains.providers, &counts.provider),
        ];
        for b in &breakdowns {
            values.extend(b.values().map(|&n| signed(n)));
        }
        Layout { values, breakdowns }
    }

    /// The noisy counts: persons after each step as the sum of the parts from it on, every figure
    /// at least 0.
    fn rebuild(&self, counts: &Counts, noisy: &[i64]) -> Counts {
        let n = counts.steps.len();
        let mut after = vec![0u64; n];
        let mut sum: i64 = 0;
        for j in (0..n).rev() {
            // Part j is the final cohort for the last step, else those who fall out after step j.
            let part = if j + 1 == n { n - 1 } else { j };
            sum = sum.saturating_add(noisy.get(part).copied().unwrap_or(0));
            after[j] = u64::try_from(sum).unwrap_or(0);
        }
        let mut at = n.max(1);
        let mut cells = self.breakdowns.clone().map(|b| {
            b.into_keys()
                .map(|k| {
                    let v = noisy.get(at).copied().unwrap_or(0);
                    at += 1;
                    (k, u64::try_from(v).unwrap_or(0))
                })
                .collect::<BTreeMap<String, u64>>()
        });
        let steps = counts
            .steps
            .iter()
            .zip(after)
            .map(|(s, persons)| Step {
                name: s.name.clone(),
                persons,
            })
            .collect();
        Counts {
            steps,
            sex: std::mem::take(&mut cells[0]),
            age_band: std::mem::take(&mut cells[1]),
            area: std::mem::take(&mut cells[2]),
            provider: std::mem::take(&mut cells[3]),
        }
    }
}

/// The smallest t with P(|X₁ + … + X_terms| ≤ t) ≥ 95 % for independent discrete Laplace noises
/// of `scale` (P(X = x) ∝ exp(−|x| / scale)), from the exact distribution of the sum.
pub fn half_width(scale: f64, terms: usize) -> u64 {
    half_widths(scale, terms).last().copied().unwrap_or(0)
}

/// [`half_width`] for sums of 1, 2, …, `terms` noises, the distribution of each sum convolved from
/// the one before.
pub fn half_widths(scale: f64, terms: usize) -> Vec<u64> {
    if terms == 0 || !(scale.is_finite() && scale > 0.0) {
        return vec![0; terms];
    }
    let alpha = (-1.0 / scale).exp();
    // Mass beyond `reach` per term is negligible (below 1e-12).
    let reach = ((1e-12f64).ln() / alpha.ln()).ceil().max(1.0) as usize;
    let one: Vec<f64> = (0..=2 * reach)
        .map(|i| {
            let x = i.abs_diff(reach) as f64;
            (1.0 - alpha) / (1.0 + alpha) * alpha.powf(x)
        })
        .collect();
    let mut pmf = one.clone();
    let mut out = vec![central_95(&pmf)];
    for _ in 1..terms {
        pmf = convolve(&pmf, &one);
        out.push(central_95(&pmf));
    }
    out
}

/// The smallest t whose central interval [−t, t] of a symmetric pmf (centred in the vector) holds
/// 95 % of its mass.
fn central_95(pmf: &[f64]) -> u64 {
    let centre = (pmf.len() - 1) / 2;
    let mut mass = pmf[centre];
    let mut t = 0;
    while mass < 0.95 && t < centre {
        t += 1;
        mass += pmf[centre - t] + pmf[centre + t];
    }
    t as u64
}

fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_width_matches_the_closed_form_for_one_term() {
        // P(|X| > t) = 2 α^(t+1) / (1 + α): the smallest t with that ≤ 5 %.
        for scale in [0.5f64, 1.0, 5.0, 20.0] {
            let alpha: f64 = (-1.0 / scale).exp();
            let tail = |t: u64| 2.0 * alpha.powf(t as f64 + 1.0) / (1.0 + alpha);
            let t = half_width(scale, 1);
            assert!(tail(t) <= 0.05 + 1e-9, "scale {scale}: t {t}");
            assert!(
                t == 0 || tail(t - 1) > 0.05,
                "scale {scale}: t {t} not the smallest"
            );
        }
        assert!(half_width(5.0, 4) > half_width(5.0, 1));
        // A sum of more noises is wider: each step of the attrition widens its interval.
        let all = half_widths(5.0, 4);
        assert_eq!(all.len(), 4);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    }
}
