//! Configuration: attribute roles, privacy models, utility metrics and the search strategy.

use serde::{Deserialize, Serialize};

use crate::hierarchy::Hierarchy;

/// The role of a column in an anonymization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Direct identifier: removed from the output.
    Identifying,
    /// Quasi-identifier: generalized and suppressed.
    QuasiIdentifying,
    /// Sensitive attribute: kept, protected by l-diversity or t-closeness.
    Sensitive,
    /// Kept as it is.
    Insensitive,
}

/// Entropy estimator of entropy-l-diversity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EntropyEstimator {
    /// Plug-in (maximum-likelihood) Shannon entropy.
    #[default]
    Shannon,
    /// Grassberger's bias-corrected estimator.
    Grassberger,
}

/// A population table for k-map and population-based risk: rows of quasi-identifier values (at the original
/// granularity) with the number of people having them.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// Column names, which must be the quasi-identifiers of the anonymization.
    pub columns: Vec<String>,
    /// Rows of values, one per combination.
    pub rows: Vec<Vec<String>>,
    /// People per row.
    pub counts: Vec<u64>,
}

/// A privacy model. Models combine: a transformation is valid when every class that is kept satisfies every
/// class-level model and the table-level models hold.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivacyModel {
    /// Every class has at least `k` records.
    KAnonymity { k: u64 },
    /// Every class has at least `l` distinct sensitive values.
    DistinctLDiversity { attribute: String, l: u64 },
    /// The entropy of the sensitive values of every class is at least `log(l)`.
    EntropyLDiversity {
        attribute: String,
        l: f64,
        estimator: EntropyEstimator,
    },
    /// Recursive (c,l)-diversity: `r1 < c (r_l + … + r_m)` on the sorted sensitive frequencies of every class.
    RecursiveClDiversity { attribute: String, c: f64, l: u64 },
    /// t-closeness with the equal ground distance (variational distance).
    EqualDistanceTCloseness { attribute: String, t: f64 },
    /// t-closeness with the hierarchical ground distance over the sensitive attribute's hierarchy.
    HierarchicalDistanceTCloseness { attribute: String, t: f64 },
    /// Highest prosecutor re-identification risk (1 / smallest class) at most `threshold`.
    MaxProsecutorRisk { threshold: f64 },
    /// Average prosecutor re-identification risk (classes / records kept) at most `threshold`; the smallest
    /// classes are suppressed (within the budget) until it holds.
    AverageProsecutorRisk { threshold: f64 },
    /// k-map: every class matches at least `k` people of the population table.
    KMap { k: u64, population: Population },
}

impl PrivacyModel {
    /// A short name for messages and reports.
    pub fn name(&self) -> String {
        match self {
            PrivacyModel::KAnonymity { k } => format!("{k}-anonymity"),
            PrivacyModel::DistinctLDiversity { attribute, l } => {
                format!("distinct-{l}-diversity({attribute})")
            }
            PrivacyModel::EntropyLDiversity {
                attribute,
                l,
                estimator,
            } => {
                format!("entropy-{l}-diversity({attribute}, {estimator:?})")
            }
            PrivacyModel::RecursiveClDiversity { attribute, c, l } => {
                format!("recursive-({c},{l})-diversity({attribute})")
            }
            PrivacyModel::EqualDistanceTCloseness { attribute, t } => {
                format!("equal-distance-{t}-closeness({attribute})")
            }
            PrivacyModel::HierarchicalDistanceTCloseness { attribute, t } => {
                format!("hierarchical-distance-{t}-closeness({attribute})")
            }
            PrivacyModel::MaxProsecutorRisk { threshold } => {
                format!("max-prosecutor-risk<={threshold}")
            }
            PrivacyModel::AverageProsecutorRisk { threshold } => {
                format!("average-prosecutor-risk<={threshold}")
            }
            PrivacyModel::KMap { k, .. } => format!("{k}-map"),
        }
    }

    /// The sensitive attribute the model protects, if any.
    pub fn sensitive_attribute(&self) -> Option<&str> {
        match self {
            PrivacyModel::DistinctLDiversity { attribute, .. }
            | PrivacyModel::EntropyLDiversity { attribute, .. }
            | PrivacyModel::RecursiveClDiversity { attribute, .. }
            | PrivacyModel::EqualDistanceTCloseness { attribute, .. }
            | PrivacyModel::HierarchicalDistanceTCloseness { attribute, .. } => Some(attribute),
            _ => None,
        }
    }
}

/// How per-attribute information losses are combined into one comparable value (ARX's aggregate functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// `Π (v_i + 1)^(1/n) − 1` (ARX's default for Loss).
    GeometricMean,
    /// The values sorted in descending order, compared lexicographically.
    Rank,
    /// Arithmetic mean.
    ArithmeticMean,
    /// Sum.
    Sum,
    /// Maximum.
    Maximum,
}

/// Utility metric to minimize, defined as ARX defines it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Metric {
    /// ARX's Loss (normalized domain share), with generalization/suppression factor.
    Loss {
        gs_factor: f64,
        aggregate: Aggregate,
    },
    /// Non-uniform entropy, precomputed from the input distribution; `monotonic` ignores suppression, the
    /// non-monotonic variant adds the entropy of the suppressed records.
    Entropy { monotonic: bool, gs_factor: f64 },
    /// Discernibility: non-monotonic DM charges suppressed records `n` each; `monotonic` (DM*) does not.
    Discernibility { monotonic: bool },
    /// Average equivalence class size (all suppressed records count as one class).
    Aecs,
    /// Precision (average generalization height per cell; suppressed cells count 1).
    Precision { gs_factor: f64 },
}

impl Default for Metric {
    fn default() -> Self {
        Metric::Loss {
            gs_factor: 0.5,
            aggregate: Aggregate::GeometricMean,
        }
    }
}

impl Metric {
    /// Generalization and suppression factors derived from the gs-factor as ARX does.
    pub(crate) fn factors(gs: f64) -> (f64, f64) {
        let s = if gs < 0.5 { 2.0 * gs } else { 1.0 };
        let g = if gs <= 0.5 {
            1.0
        } else {
            1.0 - 2.0 * (gs - 0.5)
        };
        (g, s)
    }
}

/// The search strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// Optimal search when the lattice has at most [`OPTIMAL_LATTICE_LIMIT`] nodes, heuristic otherwise.
    #[default]
    Auto,
    /// Always search the whole lattice (with pruning) for the global optimum.
    Optimal,
    /// Greedy top-down search with the given evaluation budget.
    Heuristic { max_evaluations: usize },
}

/// Lattices larger than this are searched heuristically under [`Search::Auto`].
pub const OPTIMAL_LATTICE_LIMIT: u64 = 2_000_000;

/// One configured attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Column name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Hierarchy (required for quasi-identifiers; for a sensitive attribute only with hierarchical t-closeness).
    pub hierarchy: Option<Hierarchy>,
}

/// The complete configuration of one anonymization. Columns not listed are insensitive.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Attributes with roles and hierarchies.
    pub attributes: Vec<Attribute>,
    /// Privacy models (combined).
    pub models: Vec<PrivacyModel>,
    /// Largest share of records that may be suppressed, in [0, 1].
    pub suppression_limit: f64,
    /// Metric to minimize.
    pub metric: Metric,
    /// Search strategy.
    pub search: Search,
    /// Risk threshold used to count records at risk in reports.
    pub risk_threshold: f64,
    /// Size of the population the table was drawn from (for the population-uniqueness estimate).
    pub population_size: Option<u64>,
    /// Attribute weights of quasi-identifiers for multi-dimensional metrics (ARX semantics: 0.5 unless
    /// given, normalized so that the largest weight is 1).
    pub weights: Vec<(String, f64)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            attributes: Vec::new(),
            models: Vec::new(),
            suppression_limit: 0.0,
            metric: Metric::default(),
            search: Search::Auto,
            risk_threshold: 0.2,
            population_size: None,
            weights: Vec::new(),
        }
    }
}

impl Config {
    /// Adds a quasi-identifier with its hierarchy.
    pub fn qi(mut self, name: &str, hierarchy: Hierarchy) -> Self {
        self.attributes.push(Attribute {
            name: name.to_string(),
            role: Role::QuasiIdentifying,
            hierarchy: Some(hierarchy),
        });
        self
    }

    /// Adds an attribute with a role and no hierarchy.
    pub fn attribute(mut self, name: &str, role: Role) -> Self {
        self.attributes.push(Attribute {
            name: name.to_string(),
            role,
            hierarchy: None,
        });
        self
    }

    /// Adds a sensitive attribute with a hierarchy (for hierarchical t-closeness).
    pub fn sensitive_with_hierarchy(mut self, name: &str, hierarchy: Hierarchy) -> Self {
        self.attributes.push(Attribute {
            name: name.to_string(),
            role: Role::Sensitive,
            hierarchy: Some(hierarchy),
        });
        self
    }

    /// Sets the weight of a quasi-identifier in multi-dimensional metrics.
    pub fn weight(mut self, name: &str, w: f64) -> Self {
        self.weights.push((name.to_string(), w));
        self
    }

    /// Adds a privacy model.
    pub fn model(mut self, m: PrivacyModel) -> Self {
        self.models.push(m);
        self
    }

    /// Sets the suppression limit.
    pub fn suppression(mut self, limit: f64) -> Self {
        self.suppression_limit = limit;
        self
    }

    /// Sets the metric.
    pub fn metric(mut self, m: Metric) -> Self {
        self.metric = m;
        self
    }

    /// Replaces models, suppression limit and metric by those of a policy (for example loaded from a preset
    /// file), keeping the attributes.
    pub fn with_policy(mut self, policy: &Policy) -> Self {
        self.models = policy.models.clone();
        self.suppression_limit = policy.suppression_limit;
        if let Some(m) = policy.metric {
            self.metric = m;
        }
        self
    }
}

/// A reusable set of privacy models, suppression limit and metric, independent of any table.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Privacy models.
    pub models: Vec<PrivacyModel>,
    /// Suppression limit in [0, 1].
    pub suppression_limit: f64,
    /// Metric, if the policy fixes one.
    pub metric: Option<Metric>,
}
