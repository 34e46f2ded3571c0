//! Preparing a problem: the configuration validated against the table (roles, hierarchies, models,
//! weights, parameters), the quasi-identifiers encoded per hierarchy level and the table reduced to
//! its distinct tuples. Every configuration error is reported here, before any search.

use std::collections::{HashMap, HashSet};

use crate::engine::{emd_tree, encode_qi, precompute, Cells, Check, Prepared, QiDim, SensDim};
use crate::error::{AnonError, Result};
use crate::fxhash::FxHashMap;
use crate::model::{Attribute, Config, Metric, Population, PrivacyModel, Role};
use crate::table::Table;

/// What the privacy models need: the sensitive attributes they name and the checks they make.
struct Models<'c> {
    sens: Vec<SensDim>,
    checks: Vec<Check>,
    avg_risk: Option<f64>,
    kmap_pop: Option<&'c Population>,
    /// Every model is k-like (validity is monotone in generalization whatever the suppression).
    all_k_like: bool,
}

/// The table reduced to its distinct tuples over the quasi-identifiers (level 0) and the sensitive
/// attributes.
struct Tuples {
    qi: Vec<Vec<u32>>,
    sens: Vec<Vec<u32>>,
    count: Vec<u32>,
    row_tuple: Vec<u32>,
}

impl Prepared {
    /// Validates the configuration against the table and encodes the data. Fails before any search.
    pub fn new(table: &Table, config: &Config) -> Result<Self> {
        let n = table.rows() as u64;
        check_suppression_limit(config.suppression_limit)?;
        let qis = encode_qis(table, config)?;
        let models = plan_models(table, config, n)?;
        let mut tuples = distinct_tuples(table, &qis, &models.sens);
        let tup_pop = models
            .kmap_pop
            .map(|pop| add_population(&qis, pop, &mut tuples))
            .transpose()?;
        let needs_hist = models
            .checks
            .iter()
            .any(|c| !matches!(c, Check::K(_) | Check::KMap(_)));
        let weights = attribute_weights(config, &qis)?;
        let (tup_scombo, n_scombo) = sensitive_combinations(&tuples.sens, tuples.count.len());
        let mut prepared = Prepared {
            n,
            qis,
            sens: models.sens,
            tup_qi: tuples.qi,
            tup_sens: tuples.sens,
            tup_count: tuples.count,
            tup_pop,
            row_tuple: tuples.row_tuple,
            checks: models.checks,
            avg_risk: models.avg_risk,
            limit_abs: (config.suppression_limit * n as f64 + 1e-9).floor() as u64,
            metric: config.metric,
            monotone_privacy: config.suppression_limit == 0.0 || models.all_k_like,
            needs_hist,
            tup_scombo,
            n_scombo,
            base: Cells {
                levels: Vec::new(),
                rep: Vec::new(),
                count: Vec::new(),
                pop: None,
            },
            weights,
        };
        prepared.base = prepared.base_cells();
        precompute(&mut prepared);
        check_gs_factor(config.metric)?;
        Ok(prepared)
    }
}

fn check_suppression_limit(limit: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&limit) || limit.is_nan() {
        return Err(AnonError::InvalidParameter(format!(
            "suppression limit {limit} is not in [0, 1]"
        )));
    }
    Ok(())
}

fn check_gs_factor(metric: Metric) -> Result<()> {
    match metric {
        Metric::Loss { gs_factor, .. }
        | Metric::Entropy { gs_factor, .. }
        | Metric::Precision { gs_factor }
            if !(0.0..=1.0).contains(&gs_factor) =>
        {
            Err(AnonError::InvalidParameter(format!(
                "gs-factor {gs_factor} is not in [0, 1]"
            )))
        }
        _ => Ok(()),
    }
}

/// Checks the roles (every attribute a column, named once; at least one quasi-identifier and one
/// model) and encodes each quasi-identifier with its hierarchy.
fn encode_qis(table: &Table, config: &Config) -> Result<Vec<QiDim>> {
    let mut seen = HashSet::new();
    for a in &config.attributes {
        if table.index_of(&a.name).is_none() {
            return Err(AnonError::UnknownColumn(a.name.clone()));
        }
        if !seen.insert(a.name.as_str()) {
            return Err(AnonError::DuplicateColumn(a.name.clone()));
        }
    }
    let qi_attrs: Vec<&Attribute> = config
        .attributes
        .iter()
        .filter(|a| a.role == Role::QuasiIdentifying)
        .collect();
    if qi_attrs.is_empty() {
        return Err(AnonError::Config(
            "no quasi-identifier is configured".into(),
        ));
    }
    if config.models.is_empty() {
        return Err(AnonError::Config("no privacy model is configured".into()));
    }
    qi_attrs
        .iter()
        .map(|a| {
            let h = a
                .hierarchy
                .as_ref()
                .ok_or_else(|| AnonError::MissingHierarchy(a.name.clone()))?;
            let col = table
                .index_of(&a.name)
                .ok_or_else(|| AnonError::UnknownColumn(a.name.clone()))?;
            encode_qi(&a.name, col, h, &table.columns()[col].values)
        })
        .collect()
}

/// Validates every model and turns it into a check, registering the sensitive attributes it names.
fn plan_models<'c>(table: &Table, config: &'c Config, n: u64) -> Result<Models<'c>> {
    let mut m = Models {
        sens: Vec::new(),
        checks: Vec::new(),
        avg_risk: None,
        kmap_pop: None,
        all_k_like: true,
    };
    for model in &config.models {
        plan_model(table, config, n, model, &mut m)?;
    }
    Ok(m)
}

fn invalid(message: String) -> AnonError {
    AnonError::InvalidParameter(message)
}

fn plan_model<'c>(
    table: &Table,
    config: &Config,
    n: u64,
    model: &'c PrivacyModel,
    m: &mut Models<'c>,
) -> Result<()> {
    let sens = |attr: &str, tree: bool, sens: &mut Vec<SensDim>| {
        sensitive_index(table, config, model, attr, tree, sens)
    };
    let (check, k_like) = match model {
        PrivacyModel::KAnonymity { k } => (Check::K(k_of_anonymity(*k, n)?), true),
        PrivacyModel::MaxProsecutorRisk { threshold } => {
            (Check::K(k_of_highest_risk(*threshold, n)?), true)
        }
        PrivacyModel::AverageProsecutorRisk { threshold } => {
            check_risk_threshold(*threshold)?;
            m.avg_risk = Some(m.avg_risk.map_or(*threshold, |t: f64| t.min(*threshold)));
            m.all_k_like = false;
            return Ok(());
        }
        PrivacyModel::DistinctLDiversity { attribute, l } => {
            let s = sens(attribute, false, &mut m.sens)?;
            if *l == 0 {
                return Err(invalid("l must be at least 1".into()));
            }
            let distinct = m.sens[s].global.iter().filter(|&&c| c > 0).count() as u64;
            if *l > distinct {
                return Err(AnonError::Contradiction(format!(
                    "l = {l} but `{attribute}` has only {distinct} distinct values"
                )));
            }
            (Check::Distinct { s, l: *l }, true)
        }
        PrivacyModel::EntropyLDiversity {
            attribute,
            l,
            estimator,
        } => {
            let s = sens(attribute, false, &mut m.sens)?;
            if l.is_nan() || *l < 1.0 {
                return Err(invalid(format!("l = {l} must be at least 1")));
            }
            let est = *estimator;
            (Check::Entropy { s, l: *l, est }, false)
        }
        PrivacyModel::RecursiveClDiversity { attribute, c, l } => {
            let s = sens(attribute, false, &mut m.sens)?;
            if *l == 0 || c.is_nan() || *c <= 0.0 {
                return Err(invalid(format!("recursive-(c,l): c = {c}, l = {l}")));
            }
            (Check::Recursive { s, c: *c, l: *l }, false)
        }
        PrivacyModel::EqualDistanceTCloseness { attribute, t } => {
            let s = sens(attribute, false, &mut m.sens)?;
            check_t(*t)?;
            (Check::EqualT { s, t: *t }, false)
        }
        PrivacyModel::HierarchicalDistanceTCloseness { attribute, t } => {
            let s = sens(attribute, true, &mut m.sens)?;
            check_t(*t)?;
            (Check::HierT { s, t: *t }, false)
        }
        PrivacyModel::KMap { k, population } => {
            if m.kmap_pop.is_some() {
                return Err(AnonError::Contradiction(
                    "more than one k-map population".into(),
                ));
            }
            if *k == 0 {
                return Err(invalid("k-map: k must be at least 1".into()));
            }
            m.kmap_pop = Some(population);
            (Check::KMap(*k), true)
        }
    };
    m.checks.push(check);
    m.all_k_like &= k_like;
    Ok(())
}

fn k_of_anonymity(k: u64, n: u64) -> Result<u64> {
    if k == 0 {
        return Err(invalid("k must be at least 1".into()));
    }
    if k > n {
        return Err(AnonError::Contradiction(format!(
            "k = {k} is larger than the table ({n} rows)"
        )));
    }
    Ok(k)
}

fn check_risk_threshold(threshold: f64) -> Result<()> {
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(invalid(format!(
            "risk threshold {threshold} is not in (0, 1]"
        )));
    }
    Ok(())
}

/// The class size a highest prosecutor risk requires.
fn k_of_highest_risk(threshold: f64, n: u64) -> Result<u64> {
    check_risk_threshold(threshold)?;
    let k = (1.0 / threshold - 1e-9).ceil().max(1.0) as u64;
    if k > n {
        return Err(AnonError::Contradiction(format!(
            "a highest risk of {threshold} needs classes of {k}, larger than the table ({n} rows)"
        )));
    }
    Ok(k)
}

fn check_t(t: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&t) {
        return Err(invalid(format!("t = {t} is not in [0, 1]")));
    }
    Ok(())
}

/// The index of a model's sensitive attribute among `sens`, registered on first use (with its
/// hierarchy's tree when `need_tree`, for the hierarchical distance).
fn sensitive_index(
    table: &Table,
    config: &Config,
    model: &PrivacyModel,
    attr: &str,
    need_tree: bool,
    sens: &mut Vec<SensDim>,
) -> Result<usize> {
    let a = config
        .attributes
        .iter()
        .find(|a| a.name == attr && a.role == Role::Sensitive)
        .ok_or_else(|| AnonError::NotSensitive {
            model: model.name(),
            attribute: attr.to_string(),
        })?;
    let idx = match sens.iter().position(|s| s.name == attr) {
        Some(i) => i,
        None => {
            let col = table
                .index_of(attr)
                .ok_or_else(|| AnonError::UnknownColumn(attr.into()))?;
            let c = &table.columns()[col];
            let mut global = vec![0u64; c.values.len()];
            for &code in &c.codes {
                global[code as usize] += 1;
            }
            sens.push(SensDim {
                name: attr.to_string(),
                col,
                card: c.values.len(),
                global,
                tree: None,
            });
            sens.len() - 1
        }
    };
    if need_tree && sens[idx].tree.is_none() {
        let h = a.hierarchy.as_ref().ok_or_else(|| {
            AnonError::Config(format!(
                "hierarchical t-closeness on `{attr}` needs a hierarchy for `{attr}`"
            ))
        })?;
        let col = sens[idx].col;
        sens[idx].tree = Some(emd_tree(attr, h, &table.columns()[col].values)?);
    }
    Ok(idx)
}

/// The distinct tuples of the table over the quasi-identifiers (as level-0 codes) and the sensitive
/// attributes, their counts and each row's tuple; tuples are numbered in order of first appearance.
fn distinct_tuples(table: &Table, qis: &[QiDim], sens: &[SensDim]) -> Tuples {
    let width = qis.len() + sens.len();
    let rows = table.rows();
    let cols: Vec<&[u32]> = qis
        .iter()
        .map(|q| table.columns()[q.col].codes.as_slice())
        .chain(sens.iter().map(|s| table.columns()[s.col].codes.as_slice()))
        .collect();
    let mut flat = vec![0u32; rows * width];
    for (j, c) in cols.iter().enumerate() {
        let map = qis.get(j).map(|q| &q.from_table);
        for (i, &v) in c.iter().enumerate() {
            flat[i * width + j] = match map {
                Some(m) => m[v as usize],
                None => v,
            };
        }
    }
    let mut index: HashMap<&[u32], u32> = HashMap::with_capacity(rows / 2);
    let mut count: Vec<u32> = Vec::new();
    let mut row_tuple = Vec::with_capacity(rows);
    let mut firsts: Vec<usize> = Vec::new();
    for i in 0..rows {
        let key = &flat[i * width..(i + 1) * width];
        let t = *index.entry(key).or_insert_with(|| {
            firsts.push(i);
            count.push(0);
            (count.len() - 1) as u32
        });
        count[t as usize] += 1;
        row_tuple.push(t);
    }
    drop(index);
    let column = |j: usize| -> Vec<u32> { firsts.iter().map(|&i| flat[i * width + j]).collect() };
    Tuples {
        qi: (0..qis.len()).map(column).collect(),
        sens: (qis.len()..width).map(column).collect(),
        count,
        row_tuple,
    }
}

/// Appends the k-map population's rows as extra tuples (count 0) and returns the population count
/// of every tuple.
fn add_population(qis: &[QiDim], pop: &Population, t: &mut Tuples) -> Result<Vec<u64>> {
    let mut counts = vec![0u64; t.count.len()];
    let cols: Vec<usize> = qis
        .iter()
        .map(|q| {
            pop.columns
                .iter()
                .position(|c| *c == q.name)
                .ok_or_else(|| {
                    AnonError::Config(format!("population table has no column `{}`", q.name))
                })
        })
        .collect::<Result<_>>()?;
    if pop.rows.len() != pop.counts.len() {
        return Err(AnonError::Config(
            "population table: rows and counts differ in length".into(),
        ));
    }
    for (r, &cnt) in pop.rows.iter().zip(&pop.counts) {
        for ((q, &c), tq) in qis.iter().zip(&cols).zip(t.qi.iter_mut()) {
            let v = r.get(c).map(String::as_str).unwrap_or("");
            let code = q.labels[0].iter().position(|l| l == v).ok_or_else(|| {
                AnonError::ValueNotInHierarchy {
                    column: q.name.clone(),
                    value: v.to_string(),
                }
            })?;
            tq.push(code as u32);
        }
        for ts in t.sens.iter_mut() {
            ts.push(0);
        }
        t.count.push(0);
        counts.push(cnt);
    }
    Ok(counts)
}

/// Attribute weights per quasi-identifier (ARX: 0.5 unless set, normalized by the largest; all 1
/// when every weight is 0).
fn attribute_weights(config: &Config, qis: &[QiDim]) -> Result<Vec<f64>> {
    for (name, w) in &config.weights {
        if !qis.iter().any(|q| &q.name == name) {
            return Err(AnonError::Config(format!(
                "weight given for `{name}`, which is not a quasi-identifier"
            )));
        }
        if !(w.is_finite() && *w >= 0.0) {
            return Err(invalid(format!("weight {w} of `{name}` must be ≥ 0")));
        }
    }
    let raw: Vec<f64> = qis
        .iter()
        .map(|q| {
            config
                .weights
                .iter()
                .rev()
                .find(|(n, _)| *n == q.name)
                .map_or(0.5, |(_, w)| *w)
        })
        .collect();
    let max = raw.iter().cloned().fold(0.0, f64::max);
    Ok(if max == 0.0 {
        vec![1.0; raw.len()]
    } else {
        raw.iter().map(|w| w / max).collect()
    })
}

/// The combination id of each tuple's sensitive values, and the number of combinations (at least 1).
fn sensitive_combinations(tup_sens: &[Vec<u32>], tuples: usize) -> (Vec<u32>, u64) {
    let mut index: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
    let mut combo = Vec::with_capacity(tuples);
    for t in 0..tuples {
        let key: Vec<u32> = tup_sens.iter().map(|c| c[t]).collect();
        let next = index.len() as u32;
        combo.push(*index.entry(key).or_insert(next));
    }
    (combo, index.len().max(1) as u64)
}
