//! Serializable configuration (TOML or JSON): attributes with roles and hierarchy sources, privacy models,
//! suppression limit and metric. A [`PolicySpec`] holds only models, limit and metric, so that presets can be
//! kept in their own files and combined with any table's attributes.
//!
//! ```toml
//! suppression_limit = 0.05
//! metric = { name = "loss", gs_factor = 0.5 }
//!
//! [[attributes]]
//! name = "age"
//! role = "quasi_identifying"
//! hierarchy = { builder = "ages", top = 90 }
//!
//! [[attributes]]
//! name = "zip"
//! role = "quasi_identifying"
//! hierarchy = { file = "zip.csv" }
//!
//! [[models]]
//! type = "k_anonymity"
//! k = 10
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{AnonError, Result};
use crate::hierarchy::{AreaTable, Hierarchy};
use crate::model::{
    Aggregate, Attribute, Config, EntropyEstimator, Metric, Policy, Population, PrivacyModel, Role,
    Search,
};
use crate::table::Table;

/// Where a hierarchy comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum HierarchySpec {
    /// An ARX hierarchy CSV file (relative to the configuration file).
    File {
        /// Path of the file.
        file: String,
    },
    /// A built-in builder applied to the column's values.
    Builder {
        /// `ages`, `dates`, `postal`, `icd10`, `intervals`, `address` or `flat`.
        builder: String,
        /// Top code for `ages` (e.g. 90 → `90+`).
        #[serde(default)]
        top: Option<u32>,
        /// Interval widths for `intervals`.
        #[serde(default)]
        widths: Option<Vec<f64>>,
        /// Lower bound for `intervals` (values below become `<bottom`).
        #[serde(default)]
        bottom: Option<f64>,
        /// Area table CSV for `address` (`prefecture,municipality,medical_area[,region]`).
        #[serde(default)]
        areas: Option<String>,
    },
}

/// One attribute of a configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// Column name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Hierarchy source.
    #[serde(default)]
    pub hierarchy: Option<HierarchySpec>,
}

/// A privacy model of a configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// k-anonymity.
    KAnonymity { k: u64 },
    /// Distinct l-diversity.
    DistinctLDiversity { attribute: String, l: u64 },
    /// Entropy l-diversity.
    EntropyLDiversity {
        attribute: String,
        l: f64,
        #[serde(default)]
        estimator: EntropyEstimator,
    },
    /// Recursive (c,l)-diversity.
    RecursiveClDiversity { attribute: String, c: f64, l: u64 },
    /// Equal-distance t-closeness.
    EqualDistanceTCloseness { attribute: String, t: f64 },
    /// Hierarchical-distance t-closeness (the attribute needs a hierarchy).
    HierarchicalDistanceTCloseness { attribute: String, t: f64 },
    /// Highest prosecutor risk.
    MaxProsecutorRisk { threshold: f64 },
    /// Average prosecutor risk.
    AverageProsecutorRisk { threshold: f64 },
    /// k-map against a population CSV with the quasi-identifier columns and a `count` column.
    KMap { k: u64, population: String },
}

/// A metric given by name and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricSpec {
    /// Just a name: `loss`, `entropy`, `discernibility`, `aecs`, `precision`.
    Name(String),
    /// Name with parameters.
    Full {
        /// Metric name.
        name: String,
        /// Generalization/suppression factor (default 0.5).
        #[serde(default)]
        gs_factor: Option<f64>,
        /// Aggregate function of Loss (default geometric mean).
        #[serde(default)]
        aggregate: Option<Aggregate>,
        /// Monotonic variant (entropy, discernibility).
        #[serde(default)]
        monotonic: Option<bool>,
    },
}

impl MetricSpec {
    /// Resolves the metric.
    pub fn resolve(&self) -> Result<Metric> {
        let (name, gs, agg, mono) = match self {
            MetricSpec::Name(n) => (n.as_str(), None, None, None),
            MetricSpec::Full {
                name,
                gs_factor,
                aggregate,
                monotonic,
            } => (name.as_str(), *gs_factor, *aggregate, *monotonic),
        };
        // A parameter the metric does not take is refused, never silently ignored.
        let takes = |param: &str| match param {
            "monotonic" => matches!(name, "entropy" | "discernibility"),
            "aggregate" => name == "loss",
            _ => matches!(name, "loss" | "entropy" | "precision"),
        };
        for (param, given) in [
            ("monotonic", mono.is_some()),
            ("aggregate", agg.is_some()),
            ("gs_factor", gs.is_some()),
        ] {
            if given && !takes(param) {
                return Err(AnonError::Config(format!(
                    "the {name} metric takes no `{param}` (monotonic: entropy and discernibility; \
                     aggregate: loss; gs_factor: loss, entropy and precision)"
                )));
            }
        }
        let gs = gs.unwrap_or(0.5);
        Ok(match name {
            "loss" => Metric::Loss {
                gs_factor: gs,
                aggregate: agg.unwrap_or(Aggregate::GeometricMean),
            },
            "entropy" => Metric::Entropy {
                monotonic: mono.unwrap_or(false),
                gs_factor: gs,
            },
            "discernibility" => Metric::Discernibility {
                monotonic: mono.unwrap_or(false),
            },
            "aecs" => Metric::Aecs,
            "precision" => Metric::Precision { gs_factor: gs },
            other => {
                return Err(AnonError::Config(format!(
                    "unknown metric `{other}` (loss, entropy, discernibility, aecs, precision)"
                )))
            }
        })
    }
}

/// Models, limit and metric: the part of a configuration a policy preset fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Privacy models.
    #[serde(default)]
    pub models: Vec<ModelSpec>,
    /// Suppression limit in [0, 1].
    #[serde(default)]
    pub suppression_limit: f64,
    /// Metric.
    #[serde(default)]
    pub metric: Option<MetricSpec>,
}

impl PolicySpec {
    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| AnonError::Config(e.to_string()))
    }

    /// Resolves into a [`Policy`]; relative paths (k-map populations) are taken from `base`.
    pub fn resolve(&self, base: &Path) -> Result<Policy> {
        Ok(Policy {
            models: self
                .models
                .iter()
                .map(|m| resolve_model(m, base))
                .collect::<Result<_>>()?,
            suppression_limit: self.suppression_limit,
            metric: self.metric.as_ref().map(MetricSpec::resolve).transpose()?,
        })
    }
}

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// Attributes.
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
    /// Privacy models.
    #[serde(default)]
    pub models: Vec<ModelSpec>,
    /// Suppression limit in [0, 1].
    #[serde(default)]
    pub suppression_limit: f64,
    /// Metric (default: Loss, gs-factor 0.5).
    #[serde(default)]
    pub metric: Option<MetricSpec>,
    /// Search strategy.
    #[serde(default)]
    pub search: Search,
    /// Threshold for counting records at risk.
    #[serde(default)]
    pub risk_threshold: Option<f64>,
    /// Size of the population the table was drawn from.
    #[serde(default)]
    pub population_size: Option<u64>,
    /// Weights of quasi-identifiers in multi-dimensional metrics (default 0.5 each).
    #[serde(default)]
    pub weights: std::collections::BTreeMap<String, f64>,
}

impl ConfigSpec {
    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| AnonError::Config(e.to_string()))
    }

    /// Resolves hierarchies (files relative to `base`, builders over the table's values) and models.
    pub fn resolve(&self, base: &Path, table: &Table) -> Result<Config> {
        let mut attributes = Vec::new();
        for a in &self.attributes {
            let hierarchy = match &a.hierarchy {
                None => None,
                Some(h) => {
                    let values: &[String] = &table
                        .column(&a.name)
                        .ok_or_else(|| AnonError::UnknownColumn(a.name.clone()))?
                        .values;
                    Some(resolve_hierarchy(h, base, values)?)
                }
            };
            attributes.push(Attribute {
                name: a.name.clone(),
                role: a.role,
                hierarchy,
            });
        }
        Ok(Config {
            attributes,
            models: self
                .models
                .iter()
                .map(|m| resolve_model(m, base))
                .collect::<Result<_>>()?,
            suppression_limit: self.suppression_limit,
            metric: match &self.metric {
                Some(m) => m.resolve()?,
                None => Metric::default(),
            },
            search: self.search,
            risk_threshold: self.risk_threshold.unwrap_or(0.2),
            population_size: self.population_size,
            weights: self.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        })
    }
}

/// Builds or reads one hierarchy for a column with the given distinct values.
pub fn resolve_hierarchy(h: &HierarchySpec, base: &Path, values: &[String]) -> Result<Hierarchy> {
    match h {
        HierarchySpec::File { file } => Hierarchy::read_arx_csv(&base.join(file)),
        HierarchySpec::Builder {
            builder,
            top,
            widths,
            bottom,
            areas,
        } => match builder.as_str() {
            "ages" => Hierarchy::ages(values, *top),
            "dates" => Hierarchy::dates(values),
            "postal" => Hierarchy::postal_codes(values),
            "icd10" => Hierarchy::icd10(values),
            "flat" => Hierarchy::flat(values),
            "intervals" => {
                let w = widths
                    .as_ref()
                    .ok_or_else(|| AnonError::Config("intervals builder needs `widths`".into()))?;
                Hierarchy::intervals(values, w, *bottom, top.map(f64::from))
            }
            "address" => {
                let path = areas
                    .as_ref()
                    .ok_or_else(|| AnonError::Config("address builder needs `areas` (a CSV file)".into()))?;
                let p = base.join(path);
                let text = std::fs::read_to_string(&p).map_err(|e| AnonError::io(p.display().to_string(), e))?;
                Hierarchy::japanese_addresses(values, &AreaTable::from_csv(&text)?)
            }
            other => Err(AnonError::Config(format!(
                "unknown hierarchy builder `{other}` (ages, dates, postal, icd10, intervals, address, flat)"
            ))),
        },
    }
}

fn resolve_model(m: &ModelSpec, base: &Path) -> Result<PrivacyModel> {
    Ok(match m.clone() {
        ModelSpec::KAnonymity { k } => PrivacyModel::KAnonymity { k },
        ModelSpec::DistinctLDiversity { attribute, l } => {
            PrivacyModel::DistinctLDiversity { attribute, l }
        }
        ModelSpec::EntropyLDiversity {
            attribute,
            l,
            estimator,
        } => PrivacyModel::EntropyLDiversity {
            attribute,
            l,
            estimator,
        },
        ModelSpec::RecursiveClDiversity { attribute, c, l } => {
            PrivacyModel::RecursiveClDiversity { attribute, c, l }
        }
        ModelSpec::EqualDistanceTCloseness { attribute, t } => {
            PrivacyModel::EqualDistanceTCloseness { attribute, t }
        }
        ModelSpec::HierarchicalDistanceTCloseness { attribute, t } => {
            PrivacyModel::HierarchicalDistanceTCloseness { attribute, t }
        }
        ModelSpec::MaxProsecutorRisk { threshold } => PrivacyModel::MaxProsecutorRisk { threshold },
        ModelSpec::AverageProsecutorRisk { threshold } => {
            PrivacyModel::AverageProsecutorRisk { threshold }
        }
        ModelSpec::KMap { k, population } => {
            let (t, _) = Table::read(&base.join(&population))?;
            let ci = t.index_of("count").ok_or_else(|| {
                AnonError::Config(format!(
                    "population table {population} has no `count` column"
                ))
            })?;
            let columns: Vec<String> = t
                .names()
                .iter()
                .filter(|n| *n != "count")
                .cloned()
                .collect();
            let mut rows = Vec::with_capacity(t.rows());
            let mut counts = Vec::with_capacity(t.rows());
            for r in 0..t.rows() {
                let mut row = Vec::new();
                for (i, c) in t.columns().iter().enumerate() {
                    if i == ci {
                        let v = c.get(r);
                        counts.push(v.trim().parse::<u64>().map_err(|_| {
                            AnonError::Config(format!(
                                "population table {population}: bad count `{v}`"
                            ))
                        })?);
                    } else {
                        row.push(c.get(r).to_string());
                    }
                }
                rows.push(row);
            }
            PrivacyModel::KMap {
                k,
                population: Population {
                    columns,
                    rows,
                    counts,
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(name: &str, monotonic: Option<bool>, aggregate: Option<Aggregate>) -> MetricSpec {
        MetricSpec::Full {
            name: name.into(),
            gs_factor: None,
            aggregate,
            monotonic,
        }
    }

    #[test]
    fn a_parameter_a_metric_does_not_take_is_refused() {
        // `monotonic = true` for precision used to be accepted and ignored.
        let e = full("precision", Some(true), None)
            .resolve()
            .expect_err("refused");
        assert!(e.to_string().contains("monotonic"), "{e}");
        assert!(full("loss", Some(false), None).resolve().is_err());
        assert!(full("aecs", Some(true), None).resolve().is_err());
        assert!(full("entropy", None, Some(Aggregate::GeometricMean))
            .resolve()
            .is_err());
        assert_eq!(
            full("discernibility", Some(true), None)
                .resolve()
                .expect("ok"),
            Metric::Discernibility { monotonic: true }
        );
        assert!(full("loss", None, Some(Aggregate::GeometricMean))
            .resolve()
            .is_ok());
    }
}
