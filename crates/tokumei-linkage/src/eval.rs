//! Evaluation against ground truth: pairwise precision, recall and F1 by threshold, and cluster metrics.

use std::collections::HashMap;
use std::path::Path;

use crate::dataset::Dataset;
use crate::error::LinkageError;
use crate::prepare::FxMap;

/// Ground truth: true pairs, or a record → entity mapping.
#[derive(Debug, Clone)]
pub enum Truth {
    /// True pairs (first column: left/first record, second column: right/second record).
    Pairs(Vec<(String, String)>),
    /// Record id → entity id.
    Entities(HashMap<String, String>),
}

/// Headers that mark a record → entity truth file.
const ENTITY_HEADERS: [&str; 3] = ["entity_id", "person_id", "cluster_id"];

fn require_at(ds: &Dataset, i: usize) -> Result<&crate::dataset::TextColumn, LinkageError> {
    let name = ds.column_names().get(i).cloned().unwrap_or_default();
    ds.column(&name).ok_or_else(|| LinkageError::Input {
        file: ds.name.clone(),
        message: "needs at least two columns".into(),
    })
}

impl Truth {
    /// Reads a truth CSV: two id columns (pairs), or (record id, entity id) when a header is
    /// `entity_id` or `person_id`.
    pub fn load(path: &Path) -> Result<Truth, LinkageError> {
        let ds = Dataset::read_csv(path, "utf-8")?;
        let names = ds.column_names().to_vec();
        if let Some(e) = names
            .iter()
            .position(|n| ENTITY_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
        {
            let r = if e == 0 { 1 } else { 0 };
            let (rc, ec) = (require_at(&ds, r)?, require_at(&ds, e)?);
            let mut map = HashMap::with_capacity(ds.len());
            for row in 0..ds.len() {
                if let (Some(a), Some(b)) = (rc.get(row), ec.get(row)) {
                    map.insert(a.trim().to_string(), b.trim().to_string());
                }
            }
            return Ok(Truth::Entities(map));
        }
        let (a, b) = (require_at(&ds, 0)?, require_at(&ds, 1)?);
        let pairs = (0..ds.len())
            .filter_map(|row| match (a.get(row), b.get(row)) {
                (Some(x), Some(y)) => Some((x.trim().to_string(), y.trim().to_string())),
                _ => None,
            })
            .collect();
        Ok(Truth::Pairs(pairs))
    }

    fn index(&self) -> TruthIndex<'_> {
        match self {
            Truth::Pairs(p) => {
                let mut set: FxMap<(&str, &str), ()> = FxMap::default();
                for (a, b) in p {
                    // Equal ids are a real pair in link mode (two files may number alike).
                    set.insert((a.as_str(), b.as_str()), ());
                }
                let total = set.len() as u64;
                TruthIndex::Pairs(set, total)
            }
            Truth::Entities(m) => {
                let mut sizes: FxMap<&str, u64> = FxMap::default();
                for e in m.values() {
                    *sizes.entry(e.as_str()).or_insert(0) += 1;
                }
                let total = sizes.values().map(|k| k * (k - 1) / 2).sum();
                TruthIndex::Entities(m, total)
            }
        }
    }
}

enum TruthIndex<'a> {
    Pairs(FxMap<(&'a str, &'a str), ()>, u64),
    Entities(&'a HashMap<String, String>, u64),
}

impl TruthIndex<'_> {
    fn total(&self) -> u64 {
        match self {
            TruthIndex::Pairs(_, t) | TruthIndex::Entities(_, t) => *t,
        }
    }
    fn is_true(&self, a: &str, b: &str) -> bool {
        match self {
            TruthIndex::Pairs(s, _) => s.contains_key(&(a, b)) || s.contains_key(&(b, a)),
            TruthIndex::Entities(m, _) => {
                a != b && matches!((m.get(a), m.get(b)), (Some(x), Some(y)) if x == y)
            }
        }
    }
}

/// Pairwise metrics at one threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairMetrics {
    /// Pairs with probability at or above this are predicted matches.
    pub threshold: f64,
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

fn metrics(threshold: f64, tp: u64, predicted: u64, total: u64) -> PairMetrics {
    let precision = if predicted == 0 {
        1.0
    } else {
        tp as f64 / predicted as f64
    };
    let recall = if total == 0 {
        1.0
    } else {
        tp as f64 / total as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    PairMetrics {
        threshold,
        tp,
        fp: predicted - tp,
        fn_: total.saturating_sub(tp),
        precision,
        recall,
        f1,
    }
}

/// Pairwise evaluation of scored pairs `(id, id, probability)`.
#[derive(Debug, Clone)]
pub struct PairEvaluation {
    /// Metrics at the requested threshold.
    pub at_threshold: PairMetrics,
    /// Metrics at the threshold with the best F1.
    pub best: PairMetrics,
    /// Metrics at every distinct probability (descending), thinned to at most ~400 points.
    pub curve: Vec<PairMetrics>,
    /// True pairs in the truth.
    pub true_pairs: u64,
}

/// Evaluates scored pairs against the truth.
pub fn evaluate_pairs(
    pairs: &[(String, String, f64)],
    truth: &Truth,
    threshold: f64,
) -> PairEvaluation {
    let index = truth.index();
    let total = index.total();
    let mut scored: Vec<(f64, bool)> = pairs
        .iter()
        .map(|(a, b, p)| (*p, index.is_true(a, b)))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut tp_at = 0;
    let mut pred_at = 0;
    for (p, t) in &scored {
        if *p >= threshold {
            pred_at += 1;
            tp_at += u64::from(*t);
        }
    }
    let mut curve = Vec::new();
    let mut best = metrics(1.0, 0, 0, total);
    let (mut tp, mut pred) = (0u64, 0u64);
    let mut i = 0;
    while i < scored.len() {
        let p = scored[i].0;
        while i < scored.len() && scored[i].0 == p {
            pred += 1;
            tp += u64::from(scored[i].1);
            i += 1;
        }
        let m = metrics(p, tp, pred, total);
        if m.f1 > best.f1 {
            best = m;
        }
        curve.push(m);
    }
    if curve.len() > 400 {
        let step = curve.len() as f64 / 400.0;
        let last = *curve.last().unwrap_or(&best);
        curve = (0..400)
            .map(|k| curve[(k as f64 * step) as usize])
            .collect();
        curve.push(last);
    }
    PairEvaluation {
        at_threshold: metrics(threshold, tp_at, pred_at, total),
        best,
        curve,
        true_pairs: total,
    }
}

/// Cluster-level metrics.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetrics {
    /// Predicted clusters.
    pub clusters: u64,
    /// Predicted clusters with two or more records.
    pub multi_record_clusters: u64,
    /// Predicted clusters holding records of two or more true entities.
    pub joining: u64,
    /// True entities with two or more records (among the clustered records).
    pub true_entities_multi: u64,
    /// True entities (two or more records) spread over two or more predicted clusters.
    pub split: u64,
    /// Pairwise precision of the pairs implied by the clusters.
    pub precision: f64,
    /// Pairwise recall of the pairs implied by the clusters.
    pub recall: f64,
    /// Pairwise F1 of the pairs implied by the clusters.
    pub f1: f64,
}

fn c2(k: u64) -> u64 {
    k * k.saturating_sub(1) / 2
}

/// Evaluates clusters `(cluster id, record key)`. Record keys for link mode are `L:<id>` and `R:<id>`;
/// a pair truth is read as (left id, right id) then. Records absent from the truth are their own entity.
pub fn evaluate_clusters(
    clusters: &[(String, String)],
    truth: &Truth,
    link: bool,
) -> ClusterMetrics {
    // Entity of every clustered record.
    let mut entity: FxMap<&str, String> = FxMap::default();
    match truth {
        Truth::Entities(m) => {
            for (_, r) in clusters {
                let id = if link { &r[2..] } else { r.as_str() };
                if let Some(e) = m.get(id) {
                    entity.insert(r.as_str(), e.clone());
                }
            }
        }
        Truth::Pairs(p) => {
            // Entities are the connected components of the true pairs, named by their least id.
            let mut index: FxMap<String, u32> = FxMap::default();
            let mut names: Vec<String> = Vec::new();
            let mut sets = crate::UnionFind::new(0);
            fn node(
                k: String,
                index: &mut FxMap<String, u32>,
                names: &mut Vec<String>,
                sets: &mut crate::UnionFind,
            ) -> u32 {
                *index.entry(k.clone()).or_insert_with(|| {
                    names.push(k);
                    sets.push()
                })
            }
            for (a, b) in p {
                let (ka, kb) = if link {
                    (format!("L:{a}"), format!("R:{b}"))
                } else {
                    (a.clone(), b.clone())
                };
                let na = node(ka, &mut index, &mut names, &mut sets);
                let nb = node(kb, &mut index, &mut names, &mut sets);
                let (ra, rb) = (sets.find(na), sets.find(nb));
                if names[ra as usize] <= names[rb as usize] {
                    sets.join(ra, rb);
                } else {
                    sets.join(rb, ra);
                }
            }
            for (_, r) in clusters {
                if let Some(&n) = index.get(r.as_str()) {
                    let root = names[sets.find(n) as usize].clone();
                    entity.insert(r.as_str(), root);
                }
            }
        }
    }
    let ent = |r: &str| -> String {
        entity
            .get(r)
            .cloned()
            .unwrap_or_else(|| format!("\u{1}{r}"))
    };
    let mut cluster_sizes: FxMap<&str, u64> = FxMap::default();
    let mut entity_sizes: FxMap<String, u64> = FxMap::default();
    let mut cells: FxMap<(&str, String), u64> = FxMap::default();
    for (c, r) in clusters {
        let e = ent(r);
        *cluster_sizes.entry(c.as_str()).or_insert(0) += 1;
        *entity_sizes.entry(e.clone()).or_insert(0) += 1;
        *cells.entry((c.as_str(), e)).or_insert(0) += 1;
    }
    let mut entities_per_cluster: FxMap<&str, u64> = FxMap::default();
    let mut clusters_per_entity: FxMap<&str, u64> = FxMap::default();
    let mut tp = 0;
    for ((c, e), n) in &cells {
        *entities_per_cluster.entry(c).or_insert(0) += 1;
        *clusters_per_entity.entry(e.as_str()).or_insert(0) += 1;
        tp += c2(*n);
    }
    let predicted: u64 = cluster_sizes.values().map(|k| c2(*k)).sum();
    let total: u64 = entity_sizes.values().map(|k| c2(*k)).sum();
    let m = metrics(0.0, tp, predicted, total);
    ClusterMetrics {
        clusters: cluster_sizes.len() as u64,
        multi_record_clusters: cluster_sizes.values().filter(|k| **k > 1).count() as u64,
        joining: entities_per_cluster.values().filter(|k| **k > 1).count() as u64,
        true_entities_multi: entity_sizes.values().filter(|k| **k > 1).count() as u64,
        split: clusters_per_entity.values().filter(|k| **k > 1).count() as u64,
        precision: m.precision,
        recall: m.recall,
        f1: m.f1,
    }
}

/// Reads `pairs.csv` (columns `left_id`, `right_id`, `probability`).
pub fn read_pairs(path: &Path) -> Result<Vec<(String, String, f64)>, LinkageError> {
    let ds = Dataset::read_csv(path, "utf-8")?;
    let (l, r, p) = (
        ds.require("left_id")?,
        ds.require("right_id")?,
        ds.require("probability")?,
    );
    let mut out = Vec::with_capacity(ds.len());
    for row in 0..ds.len() {
        let prob = p
            .get(row)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .ok_or_else(|| LinkageError::Csv {
                file: ds.name.clone(),
                line: row as u64 + 2,
                message: "column `probability` is not a number".into(),
            })?;
        out.push((
            l.get(row).unwrap_or("").to_string(),
            r.get(row).unwrap_or("").to_string(),
            prob,
        ));
    }
    Ok(out)
}

/// Reads `clusters.csv` (`cluster_id`, `record_id`, optional `side`); returns the rows as (cluster, key)
/// and whether sides are present (link mode).
pub fn read_clusters(path: &Path) -> Result<(Vec<(String, String)>, bool), LinkageError> {
    let ds = Dataset::read_csv(path, "utf-8")?;
    let (c, r) = (ds.require("cluster_id")?, ds.require("record_id")?);
    let side = ds.column("side");
    let mut out = Vec::with_capacity(ds.len());
    for row in 0..ds.len() {
        let id = r.get(row).unwrap_or("").to_string();
        let key = match side.and_then(|s| s.get(row)) {
            Some("left") => format!("L:{id}"),
            Some("right") => format!("R:{id}"),
            _ => id,
        };
        out.push((c.get(row).unwrap_or("").to_string(), key));
    }
    Ok((out, side.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn pairwise_metrics_and_best_threshold() {
        let truth = Truth::Pairs(vec![
            (s("a1"), s("b1")),
            (s("a2"), s("b2")),
            (s("a3"), s("b3")),
        ]);
        let pairs = vec![
            (s("a1"), s("b1"), 0.99),
            (s("b2"), s("a2"), 0.9), // either order counts
            (s("a1"), s("b2"), 0.6),
            (s("a3"), s("b3"), 0.4),
        ];
        let ev = evaluate_pairs(&pairs, &truth, 0.5);
        assert_eq!(
            (ev.at_threshold.tp, ev.at_threshold.fp, ev.at_threshold.fn_),
            (2, 1, 1)
        );
        assert!((ev.at_threshold.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(ev.best.threshold, 0.4);
        assert!((ev.best.f1 - 6.0 / 7.0).abs() < 1e-12);
        assert_eq!(ev.true_pairs, 3);
    }

    #[test]
    fn entity_truth_counts_all_pairs_of_an_entity() {
        let truth = Truth::Entities(
            [("r1", "p1"), ("r2", "p1"), ("r3", "p1"), ("r4", "p2")]
                .iter()
                .map(|(a, b)| (s(a), s(b)))
                .collect(),
        );
        let ev = evaluate_pairs(
            &[(s("r1"), s("r2"), 0.9), (s("r3"), s("r4"), 0.8)],
            &truth,
            0.5,
        );
        assert_eq!(ev.true_pairs, 3);
        assert_eq!((ev.at_threshold.tp, ev.at_threshold.fp), (1, 1));
        // Clusters: {r1, r2}, {r3, r4}: one cluster joins two people, p1 is split.
        let clusters = vec![
            (s("1"), s("r1")),
            (s("1"), s("r2")),
            (s("2"), s("r3")),
            (s("2"), s("r4")),
        ];
        let c = evaluate_clusters(&clusters, &truth, false);
        assert_eq!(
            (c.clusters, c.joining, c.split, c.true_entities_multi),
            (2, 1, 1, 1)
        );
        assert!((c.precision - 0.5).abs() < 1e-12);
        assert!((c.recall - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn link_clusters_use_sides() {
        let truth = Truth::Pairs(vec![(s("1"), s("1")), (s("2"), s("3"))]);
        let clusters = vec![
            (s("c1"), s("L:1")),
            (s("c1"), s("R:1")),
            (s("c2"), s("L:2")),
            (s("c3"), s("R:3")),
        ];
        let c = evaluate_clusters(&clusters, &truth, true);
        assert_eq!((c.joining, c.split), (0, 1));
        assert!((c.precision - 1.0).abs() < 1e-12);
        assert!((c.recall - 0.5).abs() < 1e-12);
    }
}
