//! Disclosure control of counts: a policy file (`policies/ndb.toml` is the default, after the NDB's
//! rule that no published cell holds 1–9 patients) applied to the true counts, so that what is
//! shown never holds, and never lets one derive, a count of 1 to `min_cell − 1` persons.
//!
//! In order: each person counts once (the counts are of persons); a count of 1..min_cell is
//! suppressed; in a breakdown that partitions the cohort (sex, age band, area), a single suppressed
//! cell is joined by the smallest other non-zero cell (complementary suppression, so that no hidden
//! cell follows from the total); shown counts are rounded to the policy's base, with the range the
//! true count lies in; per-provider figures (each person once, for the provider holding most of
//! their events) are shown only when enough providers each report enough persons, and suppressed
//! like the other partitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evaluate::{Breakdown, Counts};
use crate::FeasibilityError;

/// A disclosure-control policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// Smallest count shown (smaller non-zero counts are suppressed, and never derivable).
    pub min_cell: u64,
    /// Shown counts are rounded to a multiple of it (1: not rounded).
    pub rounding: u64,
    /// Per-provider figures only when at least this many providers …
    pub min_sites: usize,
    /// … each count at least this many persons.
    pub min_site_persons: u64,
    /// Most counts a user is answered in any minute …
    pub max_per_minute: u32,
    /// … and in any 7 days (then refused until older answers fall out of the window).
    pub max_per_week: u32,
    /// ε one fresh answer spends (differential privacy; the noise scale is 5 / ε).
    pub epsilon_per_count: f64,
    /// ε all answers under one application may spend.
    pub epsilon_per_application: f64,
    /// ε all answers to one user may spend …
    pub epsilon_per_user: f64,
    /// … in any window of this many days, by the server's clock (none: ever). An application's
    /// budget never renews: it ends with the application.
    #[serde(default)]
    pub user_budget_days: Option<u32>,
}

const NDB: &str = include_str!("../policies/ndb.toml");

impl Policy {
    /// The default policy (NDB-like).
    pub fn ndb() -> Policy {
        // The shipped file is checked by the crate's tests.
        Policy::parse(NDB).unwrap_or(Policy {
            name: "ndb".into(),
            min_cell: 10,
            rounding: 10,
            min_sites: 5,
            min_site_persons: 10,
            max_per_minute: 3,
            max_per_week: 50,
            epsilon_per_count: 1.0,
            epsilon_per_application: 20.0,
            epsilon_per_user: 50.0,
            user_budget_days: Some(365),
        })
    }

    /// Reads a policy from TOML and checks it.
    pub fn parse(text: &str) -> Result<Policy, FeasibilityError> {
        let p: Policy =
            toml::from_str(text).map_err(|e| FeasibilityError::Policy(e.to_string()))?;
        if p.min_cell == 0 || p.rounding == 0 || p.min_sites == 0 || p.max_per_week == 0 {
            return Err(FeasibilityError::Policy(
                "min_cell, rounding, min_sites and max_per_week are at least 1".into(),
            ));
        }
        let eps = [
            p.epsilon_per_count,
            p.epsilon_per_application,
            p.epsilon_per_user,
        ];
        if eps.iter().any(|e| !(e.is_finite() && *e > 0.0)) {
            return Err(FeasibilityError::Policy(
                "epsilon_per_count, epsilon_per_application and epsilon_per_user are above 0 \
                 (every answer carries noise)"
                    .into(),
            ));
        }
        if p.user_budget_days == Some(0) {
            return Err(FeasibilityError::Policy(
                "user_budget_days is at least 1 (or absent: the budget never renews)".into(),
            ));
        }
        if p.epsilon_per_count > p.epsilon_per_application.min(p.epsilon_per_user) {
            return Err(FeasibilityError::Policy(
                "epsilon_per_count is above a budget: no answer could be given".into(),
            ));
        }
        Ok(p)
    }
}

/// A count as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "shown", rename_all = "snake_case")]
pub enum Shown {
    /// Shown: rounded, with the range the true count lies in.
    Count {
        /// The count shown.
        value: u64,
        /// The 95 % interval of the true count: what the rounding and the noise leave (exactly
        /// the counts it can stand for when there is no noise).
        range: [u64; 2],
    },
    /// Hidden (`< min_cell`, or hidden so that another hidden cell cannot be derived).
    Suppressed,
}

/// A breakdown as shown, or withheld with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShownBreakdown {
    /// Cells (empty when withheld).
    pub cells: BTreeMap<String, Shown>,
    /// Why the breakdown is withheld.
    pub withheld: Option<String>,
}

/// One attrition step as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShownStep {
    /// What the step requires.
    pub name: String,
    /// Persons after it.
    pub persons: Shown,
}

/// The answer to a count: every figure under the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The policy applied.
    pub policy: String,
    /// Its smallest count shown.
    pub min_cell: u64,
    /// Its rounding base.
    pub rounding: u64,
    /// The privacy loss ε this answer spent (0 for exact counts).
    #[serde(default)]
    pub epsilon: f64,
    /// The attrition.
    pub steps: Vec<ShownStep>,
    /// The final cohort.
    pub total: Shown,
    /// By sex.
    pub sex: ShownBreakdown,
    /// By 10-year age band at the index date.
    pub age_band: ShownBreakdown,
    /// By 二次医療圏.
    pub area: ShownBreakdown,
    /// By provider.
    pub provider: ShownBreakdown,
}

/// One count under the policy, before complementary suppression: `n` is the (noisy) count and `t`
/// the half-width of its noise's 95 % interval (0 when exact).
pub fn shown(policy: &Policy, n: u64, t: u64) -> Shown {
    if n > 0 && n < policy.min_cell {
        return Shown::Suppressed;
    }
    let b = policy.rounding;
    let value = (n + b / 2) / b * b;
    let [lo, hi] = if b == 1 || value == 0 {
        // Not rounded, or 0 (1..min_cell are suppressed, so a shown 0 is 0).
        [n, n]
    } else {
        // Every n' that rounds to the value and is not suppressed.
        let lo = (value + b / 2).saturating_sub(b);
        let lo = if t == 0 { lo.max(policy.min_cell) } else { lo };
        [lo, value + (b - 1) / 2]
    };
    Shown::Count {
        value,
        range: [lo.saturating_sub(t), hi.saturating_add(t)],
    }
}

/// A breakdown that partitions a shown total: primary suppression, then, when exactly one cell is
/// hidden, the smallest other non-zero cell too.
fn partition(policy: &Policy, cells: &Breakdown, t: u64) -> ShownBreakdown {
    let mut out: BTreeMap<String, Shown> = cells
        .iter()
        .map(|(k, &n)| (k.clone(), shown(policy, n, t)))
        .collect();
    let hidden = out.values().filter(|s| **s == Shown::Suppressed).count();
    if hidden == 1 {
        let partner = cells
            .iter()
            .filter(|(k, &n)| n > 0 && out.get(*k) != Some(&Shown::Suppressed))
            .min_by_key(|(k, &n)| (n, (*k).clone()))
            .map(|(k, _)| k.clone());
        if let Some(k) = partner {
            out.insert(k, Shown::Suppressed);
        }
    }
    ShownBreakdown {
        cells: out,
        withheld: None,
    }
}

/// Per-provider figures (a partition: each person counts for one provider), or withheld when too
/// few providers report enough persons.
fn sites(policy: &Policy, cells: &Breakdown, t: u64) -> ShownBreakdown {
    let enough = cells
        .values()
        .filter(|&&n| n >= policy.min_site_persons)
        .count();
    if enough < policy.min_sites {
        return ShownBreakdown {
            cells: BTreeMap::new(),
            withheld: Some(format!(
                "per-provider figures need at least {} providers with {} persons or more each",
                policy.min_sites, policy.min_site_persons
            )),
        };
    }
    partition(policy, cells, t)
}

/// Applies the policy to counts: `widths` says how noisy each figure is
/// ([`crate::noise::Widths::exact`] for true counts).
pub fn apply(policy: &Policy, counts: &Counts, widths: &crate::noise::Widths) -> Answer {
    let t_total = widths.steps.last().copied().unwrap_or(0);
    let total = shown(policy, counts.total(), t_total);
    let cohort_shown = matches!(total, Shown::Count { value, .. } if value > 0);
    let t = widths.cell;
    let part = |b: &Breakdown| {
        if cohort_shown {
            partition(policy, b, t)
        } else {
            withheld()
        }
    };
    Answer {
        policy: policy.name.clone(),
        min_cell: policy.min_cell,
        rounding: policy.rounding,
        epsilon: widths.epsilon,
        steps: counts
            .steps
            .iter()
            .enumerate()
            .map(|(j, s)| ShownStep {
                name: s.name.clone(),
                persons: shown(policy, s.persons, widths.steps.get(j).copied().unwrap_or(0)),
            })
            .collect(),
        total,
        sex: part(&counts.sex),
        age_band: part(&counts.age_band),
        area: part(&counts.area),
        provider: if cohort_shown {
            sites(policy, &counts.provider, t)
        } else {
            withheld()
        },
    }
}

fn withheld() -> ShownBreakdown {
    ShownBreakdown {
        cells: BTreeMap::new(),
        withheld: Some("the cohort is suppressed".into()),
    }
}
