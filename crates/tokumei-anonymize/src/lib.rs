//! Tokumei's anonymization engine.
//!
//! The engine works on a dictionary-encoded columnar [`Table`]. Each quasi-identifier is encoded once as
//! integer codes per hierarchy level; a transformation (one generalization level per quasi-identifier) is
//! evaluated by grouping the distinct tuples of the table on integer keys. On top of this:
//!
//! - attribute roles ([`Role`]): identifiers are removed, quasi-identifiers generalized and suppressed,
//!   sensitive attributes protected, insensitive ones kept;
//! - hierarchies ([`Hierarchy`]) in ARX's CSV format and built-in builders (dates, year-months, years,
//!   ages with top coding, Japanese addresses with a secondary-medical-area table, municipality and
//!   prefecture codes, postal codes, ICD-10, numeric intervals; a missing value kept up to `*`);
//! - privacy models ([`PrivacyModel`]), combinable: k-anonymity, distinct/entropy/recursive-(c,l) diversity,
//!   t-closeness with equal and hierarchical ground distance, highest and average prosecutor risk, k-map;
//! - record suppression with a budget, with ARX's semantics: classes violating a model are suppressed; a
//!   transformation is valid if at most `limit × rows` records are suppressed;
//! - utility metrics ([`Metric`]) defined as ARX defines them (Loss, non-uniform entropy, discernibility,
//!   AECS, precision), so results compare number for number;
//! - the optimal search over the full lattice with pruning, and a greedy heuristic for large lattices;
//! - risk figures ([`RiskSummary`]) before and after;
//! - (k, k^m)-anonymity for persons with their event sets ([`SetValued`]): any m events an intruder
//!   knows, with the quasi-identifiers, are shared by at least k persons.
//!
//! The table may hold one row per person (for example per-person quasi-identifiers aggregated from several
//! source tables by the caller); the models and limits may come from a [`Policy`] loaded from a preset.

mod engine;
mod error;
mod fxhash;
mod hierarchy;
mod model;
mod prepare;
pub mod report;
mod risk;
mod search;
pub mod setvalued;
mod spec;
mod table;

use std::collections::BTreeMap;

use serde::Serialize;

pub use engine::Score;
pub use error::{AnonError, Result};
pub use hierarchy::{AreaTable, Hierarchy};
pub use model::{
    Aggregate, Attribute, Config, EntropyEstimator, Metric, Policy, Population, PrivacyModel, Role,
    Search, OPTIMAL_LATTICE_LIMIT,
};
pub use risk::{summarize as risk_summary, RiskSummary};
pub use search::SearchStats;
pub use setvalued::{KmConfig, KmCut, KmLoss, KmNode, KmOutcome, KmStats, SetValued};
pub use spec::{ConfigSpec, HierarchySpec, ModelSpec, PolicySpec};
pub use table::{Column, Format, Table};

use engine::{NodeEval, Prepared};

/// Every metric computed for the chosen transformation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricsReport {
    /// ARX Loss per quasi-identifier (gs-factor of the configuration, 0.5 if the metric is not Loss).
    pub loss_per_attribute: Vec<f64>,
    /// ARX Loss, geometric-mean aggregate (ARX's default `createLossMetric()`).
    pub loss: f64,
    /// Non-uniform entropy (monotonic variant, precomputed).
    pub entropy: f64,
    /// Non-uniform entropy including suppressed records (non-monotonic variant).
    pub entropy_non_monotonic: f64,
    /// Discernibility (suppressed records charged `n` each).
    pub discernibility: f64,
    /// DM* (classes squared, suppression ignored).
    pub discernibility_star: f64,
    /// Average equivalence class size.
    pub aecs: f64,
    /// Precision (arithmetic mean over quasi-identifiers).
    pub precision: f64,
}

/// The report of one anonymization.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Quasi-identifiers in configuration order.
    pub quasi_identifiers: Vec<String>,
    /// Generalization level per quasi-identifier.
    pub transformation: BTreeMap<String, u32>,
    /// Levels in the order of `quasi_identifiers`.
    pub transformation_vector: Vec<u32>,
    /// Height of each hierarchy.
    pub heights: Vec<u32>,
    /// Rows of the input.
    pub rows: u64,
    /// Suppressed records (`*` rows in the output).
    pub suppressed_records: u64,
    /// Configured suppression limit.
    pub suppression_limit: f64,
    /// Equivalence classes among the records kept.
    pub classes: u64,
    /// Smallest class among the records kept (0 if all were suppressed).
    pub min_class_size: u64,
    /// Largest class among the records kept.
    pub max_class_size: u64,
    /// Whether the transformation satisfies the models within the limit.
    pub valid: bool,
    /// Name of the configured metric.
    pub metric: String,
    /// The configured metric as one number (for ARX's rank aggregate: the geometric mean of the vector).
    pub information_loss: f64,
    /// The configured metric's per-attribute vector when the aggregate is the rank function.
    pub information_loss_rank: Option<Vec<f64>>,
    /// All metrics.
    pub metrics: MetricsReport,
    /// Privacy models.
    pub models: Vec<String>,
    /// Columns removed as direct identifiers.
    pub removed_columns: Vec<String>,
    /// Risk of the input over the quasi-identifiers.
    pub risk_before: RiskSummary,
    /// Risk of the output (suppressed records excluded).
    pub risk_after: RiskSummary,
    /// Search statistics (absent when the transformation was given).
    pub search: Option<SearchStats>,
}

/// The transformed table and its report.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The output table: identifiers removed, quasi-identifiers generalized, suppressed rows as `*`.
    pub output: Table,
    /// The report.
    pub report: Report,
    /// Whether each input row was suppressed (its quasi-identifiers are `*` in the output).
    pub suppressed_rows: Vec<bool>,
}

/// A validated, encoded anonymization problem.
pub struct Anonymizer<'a> {
    table: &'a Table,
    config: Config,
    prepared: Prepared,
}

impl<'a> Anonymizer<'a> {
    /// Validates the configuration against the table and encodes the data. Every configuration error
    /// (unknown column, value missing from a hierarchy, k larger than the table, contradictory models, bad
    /// parameters) is reported here, before any search.
    pub fn new(table: &'a Table, config: &Config) -> Result<Self> {
        let prepared = Prepared::new(table, config)?;
        Ok(Anonymizer {
            table,
            config: config.clone(),
            prepared,
        })
    }

    /// Quasi-identifier names in lattice order.
    pub fn quasi_identifiers(&self) -> Vec<String> {
        self.prepared.qis.iter().map(|q| q.name.clone()).collect()
    }

    /// Hierarchy heights in lattice order.
    pub fn heights(&self) -> Vec<u32> {
        self.prepared.heights()
    }

    /// Number of distinct (quasi-identifier, sensitive) tuples the evaluation works on.
    pub fn distinct_tuples(&self) -> usize {
        self.prepared.tup_count.iter().filter(|&&c| c > 0).count()
    }

    /// Searches the best transformation and applies it.
    pub fn run(&self) -> Result<Outcome> {
        let found = self.search_only()?;
        let stats = found.stats.clone();
        match found.eval {
            Some(e) => Ok(self.outcome(&e, Some(stats))),
            None => Err(AnonError::NoSolution(self.models_text())),
        }
    }

    /// Searches only, returning the transformation, its score and statistics.
    pub fn search(&self) -> Result<(Vec<u32>, Score, SearchStats)> {
        let found = self.search_only()?;
        match (found.eval, found.score) {
            (Some(e), Some(s)) => Ok((e.levels, s, found.stats)),
            _ => Err(AnonError::NoSolution(self.models_text())),
        }
    }

    fn search_only(&self) -> Result<search::Found> {
        let heights = self.prepared.heights();
        let nodes = heights
            .iter()
            .fold(1u64, |a, &h| a.saturating_mul(u64::from(h) + 1));
        let heuristic = match self.config.search {
            Search::Auto => (nodes > OPTIMAL_LATTICE_LIMIT).then_some(10_000),
            Search::Optimal => None,
            Search::Heuristic { max_evaluations } => Some(max_evaluations.max(1)),
        };
        match heuristic {
            Some(budget) => Ok(search::heuristic(&self.prepared, budget)),
            None => search::optimal(&self.prepared).ok_or_else(|| {
                AnonError::Config(format!(
                    "the lattice has too many nodes ({nodes}) for the optimal search"
                ))
            }),
        }
    }

    /// Scores one transformation (levels in lattice order) without applying it.
    pub fn score(&self, levels: &[u32]) -> Result<(Score, bool, u64)> {
        self.check_levels(levels)?;
        let e = self.prepared.evaluate(levels);
        Ok((self.prepared.score(&e), e.valid, e.suppressed))
    }

    /// Applies a given transformation (levels in lattice order); the report computes every metric.
    pub fn apply(&self, levels: &[u32]) -> Result<Outcome> {
        self.check_levels(levels)?;
        let e = self.prepared.evaluate(levels);
        Ok(self.outcome(&e, None))
    }

    /// Applies a transformation given by attribute name; attributes not named stay at level 0.
    pub fn apply_named(&self, levels: &[(String, u32)]) -> Result<Outcome> {
        let mut v = vec![0u32; self.prepared.qis.len()];
        for (name, l) in levels {
            let i = self
                .prepared
                .qis
                .iter()
                .position(|q| &q.name == name)
                .ok_or_else(|| {
                    AnonError::InvalidTransformation(format!("`{name}` is not a quasi-identifier"))
                })?;
            v[i] = *l;
        }
        self.apply(&v)
    }

    fn check_levels(&self, levels: &[u32]) -> Result<()> {
        let h = self.prepared.heights();
        if levels.len() != h.len() {
            return Err(AnonError::InvalidTransformation(format!(
                "{} levels given for {} quasi-identifiers",
                levels.len(),
                h.len()
            )));
        }
        for ((l, hh), q) in levels.iter().zip(&h).zip(&self.prepared.qis) {
            if l > hh {
                return Err(AnonError::InvalidTransformation(format!(
                    "level {l} of `{}` exceeds the hierarchy height {hh}",
                    q.name
                )));
            }
        }
        Ok(())
    }

    fn models_text(&self) -> String {
        self.config
            .models
            .iter()
            .map(PrivacyModel::name)
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The output table (identifiers removed, quasi-identifiers at the node's levels, suppressed
    /// rows `*`) and the names of the columns removed.
    fn output_table(&self, e: &NodeEval, supp_row: &dyn Fn(usize) -> bool) -> (Table, Vec<String>) {
        let p = &self.prepared;
        let mut names = Vec::new();
        let mut columns = Vec::new();
        let mut removed = Vec::new();
        for (ci, name) in self.table.names().iter().enumerate() {
            let role = self
                .config
                .attributes
                .iter()
                .find(|a| &a.name == name)
                .map(|a| a.role)
                .unwrap_or(Role::Insensitive);
            if role == Role::Identifying {
                removed.push(name.clone());
                continue;
            }
            let src = &self.table.columns()[ci];
            let col = match p.qis.iter().position(|q| q.col == ci) {
                Some(qi) => {
                    let q = &p.qis[qi];
                    let l = e.levels[qi] as usize;
                    let mut values = q.labels[l].clone();
                    let star = match values.iter().position(|v| v == "*") {
                        Some(i) => i as u32,
                        None => {
                            values.push("*".to_string());
                            (values.len() - 1) as u32
                        }
                    };
                    let codes = src
                        .codes
                        .iter()
                        .enumerate()
                        .map(|(r, &c)| {
                            if supp_row(r) {
                                star
                            } else {
                                q.gen[l][q.from_table[c as usize] as usize]
                            }
                        })
                        .collect();
                    Column { values, codes }
                }
                None => src.clone(),
            };
            names.push(name.clone());
            columns.push(col);
        }
        let output = Table::new(names, columns).unwrap_or_else(|_| self.table.clone());
        (output, removed)
    }

    /// The risk figures before (every record, level 0) and after (the records kept at the node),
    /// and the sizes of the classes kept.
    fn risks(&self, e: &NodeEval) -> (RiskSummary, RiskSummary, Vec<u64>) {
        let p = &self.prepared;
        let bottom = p.evaluate(&vec![0; p.qis.len()]);
        let before_sizes: Vec<u64> = bottom.class_count.clone();
        let (before_pop, after_pop) = (bottom.class_pop.clone(), e.class_pop.clone());
        let mut after_sizes = Vec::new();
        let mut after_p = Vec::new();
        for (c, &cnt) in e.class_count.iter().enumerate() {
            if cnt > 0 && e.class_kept[c] {
                after_sizes.push(cnt);
                if let Some(ap) = &after_pop {
                    after_p.push(ap[c]);
                }
            }
        }
        let thr = self.config.risk_threshold;
        let risk_before = risk::summarize(
            &before_sizes,
            before_pop.as_deref(),
            self.config.population_size,
            thr,
        );
        let risk_after = risk::summarize(
            &after_sizes,
            after_pop.as_ref().map(|_| after_p.as_slice()),
            self.config.population_size,
            thr,
        );
        (risk_before, risk_after, after_sizes)
    }

    fn outcome(&self, searched: &NodeEval, stats: Option<SearchStats>) -> Outcome {
        let p = &self.prepared;
        // Regroup from the tuples to know every row's class.
        let full;
        let e = if searched.tuple_class.is_some() {
            searched
        } else {
            full = p.evaluate(&searched.levels);
            &full
        };
        let metrics = metrics_of(p, e);
        let score = p.score(e);
        let information_loss_rank = match &score {
            Score::Vector(v) => Some(v.clone()),
            Score::Scalar(_) => None,
        };
        // Output table.
        let supp_row = |row: usize| -> bool {
            let t = p.row_tuple[row] as usize;
            e.tuple_class
                .as_ref()
                .is_some_and(|tc| !e.class_kept[tc[t] as usize])
        };
        let (output, removed) = self.output_table(e, &supp_row);
        let (risk_before, risk_after, after_sizes) = self.risks(e);
        let qnames: Vec<String> = p.qis.iter().map(|q| q.name.clone()).collect();
        let report = Report {
            transformation: qnames
                .iter()
                .cloned()
                .zip(e.levels.iter().copied())
                .collect(),
            quasi_identifiers: qnames,
            transformation_vector: e.levels.clone(),
            heights: p.heights(),
            rows: p.n,
            suppressed_records: e.suppressed,
            suppression_limit: self.config.suppression_limit,
            classes: after_sizes.len() as u64,
            min_class_size: after_sizes.iter().copied().min().unwrap_or(0),
            max_class_size: after_sizes.iter().copied().max().unwrap_or(0),
            valid: e.valid,
            metric: metric_name(&p.metric),
            information_loss: score.scalar(),
            information_loss_rank,
            metrics,
            models: self.config.models.iter().map(PrivacyModel::name).collect(),
            removed_columns: removed,
            risk_before,
            risk_after,
            search: stats,
        };
        let suppressed_rows = (0..self.table.rows()).map(supp_row).collect();
        Outcome {
            output,
            report,
            suppressed_rows,
        }
    }
}

/// Every metric of an evaluated node.
fn metrics_of(p: &Prepared, e: &NodeEval) -> MetricsReport {
    let gs = match p.metric {
        Metric::Loss { gs_factor, .. } => gs_factor,
        _ => 0.5,
    };
    let loss_values = p.loss_values(e, gs);
    let entropy_gs = match p.metric {
        Metric::Entropy { gs_factor, .. } => gs_factor,
        _ => 0.5,
    };
    let (dm, dms) = p.discernibility(e);
    MetricsReport {
        loss: engine::aggregate(&loss_values, Aggregate::GeometricMean).scalar(),
        loss_per_attribute: loss_values,
        entropy: p
            .entropy_values(Some(e), &e.levels, entropy_gs, true)
            .iter()
            .sum(),
        entropy_non_monotonic: p
            .entropy_values(Some(e), &e.levels, entropy_gs, false)
            .iter()
            .sum(),
        discernibility: dm,
        discernibility_star: dms,
        aecs: p.aecs(e),
        precision: engine::aggregate(&p.precision_values(e, 0.5), Aggregate::ArithmeticMean)
            .scalar(),
    }
}

/// A human-readable metric name.
pub fn metric_name(m: &Metric) -> String {
    match m {
        Metric::Loss {
            gs_factor,
            aggregate,
        } => format!("loss(gs={gs_factor}, {aggregate:?})"),
        Metric::Entropy {
            monotonic,
            gs_factor,
        } => {
            format!(
                "non-uniform entropy(gs={gs_factor}{})",
                if *monotonic { ", monotonic" } else { "" }
            )
        }
        Metric::Discernibility { monotonic } => {
            if *monotonic {
                "discernibility (DM*)".into()
            } else {
                "discernibility".into()
            }
        }
        Metric::Aecs => "average equivalence class size".into(),
        Metric::Precision { gs_factor } => format!("precision(gs={gs_factor})"),
    }
}

/// Assesses the re-identification risk of a table over the given quasi-identifiers without changing it.
pub fn assess_risk(
    table: &Table,
    qis: &[&str],
    population_size: Option<u64>,
    threshold: f64,
) -> Result<RiskSummary> {
    if qis.is_empty() {
        return Err(AnonError::Config("no quasi-identifier given".into()));
    }
    let mut cols = Vec::new();
    for q in qis {
        let c = table
            .column(q)
            .ok_or_else(|| AnonError::UnknownColumn(q.to_string()))?;
        cols.push(c);
    }
    let mut map: std::collections::HashMap<Vec<u32>, u64> = std::collections::HashMap::new();
    let mut key = vec![0u32; cols.len()];
    for r in 0..table.rows() {
        for (k, c) in key.iter_mut().zip(&cols) {
            *k = c.codes[r];
        }
        *map.entry(key.clone()).or_insert(0) += 1;
    }
    let mut sizes: Vec<u64> = map.into_values().collect();
    sizes.sort_unstable();
    Ok(risk::summarize(&sizes, None, population_size, threshold))
}
