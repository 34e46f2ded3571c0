//! The prepared problem: quasi-identifiers encoded as integer codes per hierarchy level, the data reduced to
//! distinct tuples with counts, and the evaluation of one transformation (grouping, privacy checks,
//! suppression, metrics).

use std::cmp::Ordering;

use crate::error::{AnonError, Result};
use crate::fxhash::FxHashMap;
use crate::model::{Aggregate, EntropyEstimator, Metric};

/// One quasi-identifier, encoded.
#[derive(Debug, Clone)]
pub(crate) struct QiDim {
    pub name: String,
    pub col: usize,
    pub height: usize,
    /// `[level][code0]` → code at that level.
    pub gen: Vec<Vec<u32>>,
    /// Number of codes per level (whole hierarchy).
    pub card: Vec<u32>,
    /// `[level][code]` → label.
    pub labels: Vec<Vec<String>>,
    /// `[level][code]` → share of the domain (ARX's domain share).
    pub share: Vec<Vec<f64>>,
    /// Number of rows of the hierarchy.
    pub domain: f64,
    /// Table dictionary code → code0.
    pub from_table: Vec<u32>,
    /// `[level]` Σ over records of the domain share of their generalized value.
    pub loss_base: Vec<f64>,
    /// `[level]` Σ_v a_v log2(a_v / b_gen(v)) over the input distribution (≤ 0).
    pub entropy: Vec<f64>,
}

/// The hierarchy of a sensitive attribute for the hierarchical EMD, as levels of parent links.
#[derive(Debug, Clone)]
pub(crate) struct EmdTree {
    pub height: usize,
    /// `[level]` (level ≥ 1): for each node at `level - 1` its parent at `level`.
    pub parent: Vec<Vec<u32>>,
    /// `[level]` number of nodes at that level.
    pub nodes: Vec<usize>,
}

/// One sensitive attribute.
#[derive(Debug, Clone)]
pub(crate) struct SensDim {
    pub name: String,
    pub col: usize,
    pub card: usize,
    /// Global frequency of each value.
    pub global: Vec<u64>,
    pub tree: Option<EmdTree>,
}

#[derive(Debug, Clone)]
pub(crate) enum Check {
    K(u64),
    Distinct {
        s: usize,
        l: u64,
    },
    Entropy {
        s: usize,
        l: f64,
        est: EntropyEstimator,
    },
    Recursive {
        s: usize,
        c: f64,
        l: u64,
    },
    EqualT {
        s: usize,
        t: f64,
    },
    HierT {
        s: usize,
        t: f64,
    },
    KMap(u64),
}

/// The prepared problem.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub n: u64,
    pub qis: Vec<QiDim>,
    pub sens: Vec<SensDim>,
    pub tup_qi: Vec<Vec<u32>>,
    pub tup_sens: Vec<Vec<u32>>,
    pub tup_count: Vec<u32>,
    /// Population counts per tuple (only with k-map; population rows are extra tuples with count 0).
    pub tup_pop: Option<Vec<u64>>,
    pub row_tuple: Vec<u32>,
    pub checks: Vec<Check>,
    pub avg_risk: Option<f64>,
    pub limit_abs: u64,
    pub metric: Metric,
    /// Whether validity is monotone in generalization (predictive tagging is sound).
    pub monotone_privacy: bool,
    pub needs_hist: bool,
    /// Combination id of the sensitive values of each tuple.
    pub tup_scombo: Vec<u32>,
    pub n_scombo: u64,
    /// One cell per distinct tuple.
    pub base: Cells,
    /// Attribute weights per QI, normalized so that the largest is 1 (ARX's default: all equal).
    pub weights: Vec<f64>,
}

/// The outcome of evaluating one transformation.
#[derive(Debug, Clone)]
pub(crate) struct NodeEval {
    pub levels: Vec<u32>,
    /// Class of every source cell (of every tuple when evaluated from the base).
    pub tuple_class: Option<Vec<u32>>,
    pub class_count: Vec<u64>,
    pub class_rep: Vec<u32>,
    pub class_kept: Vec<bool>,
    pub class_pop: Option<Vec<u64>>,
    /// The cells of this node, reusable to evaluate its generalizations.
    pub cells: Option<std::sync::Arc<Cells>>,
    pub suppressed: u64,
    pub valid: bool,
    /// The count-based models alone already exceed the suppression budget (so do all predecessors).
    pub mono_invalid: bool,
}

/// Distinct (class, sensitive values) combinations of a node with counts; a coarser node can be grouped
/// from these instead of from all tuples.
#[derive(Debug, Clone)]
pub(crate) struct Cells {
    pub levels: Vec<u32>,
    pub rep: Vec<u32>,
    pub count: Vec<u64>,
    pub pop: Option<Vec<u64>>,
}

/// A comparable information loss: a number, or ARX's rank vector (sorted descending, lexicographic).
#[derive(Debug, Clone, PartialEq)]
pub enum Score {
    /// One number.
    Scalar(f64),
    /// Per-attribute values sorted in descending order.
    Vector(Vec<f64>),
}

impl Score {
    /// Total order (NaN-safe).
    pub fn compare(&self, other: &Score) -> Ordering {
        match (self, other) {
            (Score::Scalar(a), Score::Scalar(b)) => a.total_cmp(b),
            (Score::Vector(a), Score::Vector(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let c = x.total_cmp(y);
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Score::Scalar(_), Score::Vector(_)) => Ordering::Less,
            (Score::Vector(_), Score::Scalar(_)) => Ordering::Greater,
        }
    }

    /// A scalar view (the geometric mean of a rank vector, as ARX displays it).
    pub fn scalar(&self) -> f64 {
        match self {
            Score::Scalar(v) => *v,
            Score::Vector(v) => geometric_mean(v),
        }
    }
}

/// ARX keeps the first 10 decimal digits of metric components (it truncates).
pub(crate) fn round10(v: f64) -> f64 {
    (v * 1e10).floor() / 1e10
}

fn geometric_mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len() as f64;
    v.iter().fold(1.0, |acc, x| acc * (x + 1.0).powf(1.0 / n)) - 1.0
}

/// ARX's aggregate functions with attribute weights (normalized so that the largest is 1): the rank vector
/// and the arithmetic mean and sum use `v_i · w_i`, the geometric mean `Π ((v_i + 1) · w_i)^(1/n) − 1`.
pub(crate) fn aggregate_weighted(values: &[f64], weights: &[f64], a: Aggregate) -> Score {
    if weights.iter().all(|&w| w == 1.0) || weights.len() != values.len() {
        return aggregate(values, a);
    }
    match a {
        Aggregate::GeometricMean => {
            let n = values.len() as f64;
            Score::Scalar(
                values
                    .iter()
                    .zip(weights)
                    .fold(1.0, |acc, (v, w)| acc * ((v + 1.0) * w).powf(1.0 / n))
                    - 1.0,
            )
        }
        _ => {
            let weighted: Vec<f64> = values.iter().zip(weights).map(|(v, w)| v * w).collect();
            aggregate(&weighted, a)
        }
    }
}

pub(crate) fn aggregate(values: &[f64], a: Aggregate) -> Score {
    match a {
        Aggregate::GeometricMean => Score::Scalar(geometric_mean(values)),
        Aggregate::ArithmeticMean => Score::Scalar(if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }),
        Aggregate::Sum => Score::Scalar(values.iter().sum()),
        Aggregate::Maximum => Score::Scalar(values.iter().cloned().fold(0.0, f64::max)),
        Aggregate::Rank => {
            let mut v = values.to_vec();
            v.sort_by(|a, b| b.total_cmp(a));
            Score::Vector(v)
        }
    }
}

fn log2(x: f64) -> f64 {
    x.ln() / std::f64::consts::LN_2
}

impl Prepared {
    /// Heights of the quasi-identifiers.
    pub fn heights(&self) -> Vec<u32> {
        self.qis.iter().map(|q| q.height as u32).collect()
    }

    /// Groups cells (given by representative tuples) at a transformation; ids follow first appearance.
    pub fn group_reps(&self, levels: &[u32], reps: &[u32]) -> (Vec<u32>, usize) {
        let d = reps.len();
        let mut keys = vec![0u64; d];
        let mut bound: u64 = 1;
        for ((q, &l), codes) in self.qis.iter().zip(levels).zip(&self.tup_qi) {
            let gen = &q.gen[l as usize];
            let card = u64::from(q.card[l as usize].max(1));
            if card == 1 {
                continue;
            }
            match bound.checked_mul(card) {
                Some(b) => {
                    for (k, &r) in keys.iter_mut().zip(reps) {
                        *k = *k * card + u64::from(gen[codes[r as usize] as usize]);
                    }
                    bound = b;
                }
                None => {
                    let (ids, n) = dense_ids(&keys, bound);
                    for ((k, &id), &r) in keys.iter_mut().zip(&ids).zip(reps) {
                        *k = u64::from(id) * card + u64::from(gen[codes[r as usize] as usize]);
                    }
                    bound = n as u64 * card;
                }
            }
        }
        dense_ids(&keys, bound)
    }

    /// The base cells: one per distinct tuple.
    pub fn base_cells(&self) -> Cells {
        Cells {
            levels: vec![0; self.qis.len()],
            rep: (0..self.tup_count.len() as u32).collect(),
            count: self.tup_count.iter().map(|&c| u64::from(c)).collect(),
            pop: self.tup_pop.clone(),
        }
    }

    /// Evaluates one transformation from the base tuples, keeping the class of every tuple.
    pub fn evaluate(&self, levels: &[u32]) -> NodeEval {
        self.evaluate_from(levels, &self.base, true)
    }

    /// Evaluates one transformation from the cells of a more specific transformation (or the base):
    /// classes, privacy checks, suppression and validity.
    pub fn evaluate_from(&self, levels: &[u32], src: &Cells, keep_tuple_class: bool) -> NodeEval {
        let (class_of_cell, nc) = self.group_reps(levels, &src.rep);
        let mut class_count = vec![0u64; nc];
        let mut class_rep = vec![u32::MAX; nc];
        for (i, &c) in class_of_cell.iter().enumerate() {
            class_count[c as usize] += src.count[i];
            if class_rep[c as usize] == u32::MAX {
                class_rep[c as usize] = src.rep[i];
            }
        }
        let class_pop: Option<Vec<u64>> = src.pop.as_ref().map(|pop| {
            let mut cp = vec![0u64; nc];
            for (i, &c) in class_of_cell.iter().enumerate() {
                cp[c as usize] += pop[i];
            }
            cp
        });
        // Cells of this node: (class, sensitive combination).
        let (cells, cell_class) = if self.sens.is_empty() {
            (
                Cells {
                    levels: levels.to_vec(),
                    rep: class_rep.clone(),
                    count: class_count.clone(),
                    pop: class_pop.clone(),
                },
                Vec::new(),
            )
        } else {
            let ns = self.n_scombo;
            let keys: Vec<u64> = class_of_cell
                .iter()
                .zip(&src.rep)
                .map(|(&c, &r)| u64::from(c) * ns + u64::from(self.tup_scombo[r as usize]))
                .collect();
            let (cell_of, ncell) = dense_ids(&keys, nc as u64 * ns);
            let mut rep = vec![u32::MAX; ncell];
            let mut count = vec![0u64; ncell];
            let mut cell_class = vec![0u32; ncell];
            let mut pop = src.pop.as_ref().map(|_| vec![0u64; ncell]);
            for (i, &y) in cell_of.iter().enumerate() {
                if rep[y as usize] == u32::MAX {
                    rep[y as usize] = src.rep[i];
                    cell_class[y as usize] = class_of_cell[i];
                }
                count[y as usize] += src.count[i];
                if let (Some(p), Some(sp)) = (pop.as_mut(), src.pop.as_ref()) {
                    p[y as usize] += sp[i];
                }
            }
            (
                Cells {
                    levels: levels.to_vec(),
                    rep,
                    count,
                    pop,
                },
                cell_class,
            )
        };
        let mut class_kept = vec![true; nc];
        for chk in &self.checks {
            match chk {
                Check::K(k) => {
                    for (kept, &cnt) in class_kept.iter_mut().zip(&class_count) {
                        if cnt < *k {
                            *kept = false;
                        }
                    }
                }
                Check::KMap(k) => {
                    if let Some(cp) = &class_pop {
                        for ((kept, &p), &cnt) in class_kept.iter_mut().zip(cp).zip(&class_count) {
                            if cnt > 0 && p < *k {
                                *kept = false;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // Suppression required by the monotone count-based models alone (k-anonymity, k-map): if it exceeds
        // the budget, every more specific transformation is invalid too, whatever the other models say.
        let mut mono_kept = class_kept.clone();
        if self.needs_hist {
            let cell_class: Vec<u32> = if self.sens.is_empty() {
                (0..nc as u32).collect()
            } else {
                cell_class
            };
            self.check_distributions(
                &cells,
                &cell_class,
                &class_count,
                &mut class_kept,
                &mut mono_kept,
            );
        }
        let mono_suppressed: u64 = class_count
            .iter()
            .zip(&mono_kept)
            .filter(|(_, &k)| !k)
            .map(|(&c, _)| c)
            .sum();
        // Table-level: average prosecutor risk.
        if let Some(t) = self.avg_risk {
            let mut kept_rows: u64 = 0;
            let mut kept_classes: u64 = 0;
            for (c, &cnt) in class_count.iter().enumerate() {
                if cnt > 0 && class_kept[c] {
                    kept_rows += cnt;
                    kept_classes += 1;
                }
            }
            if kept_rows > 0 && kept_classes as f64 / kept_rows as f64 > t {
                let mut order: Vec<usize> = (0..nc)
                    .filter(|&c| class_kept[c] && class_count[c] > 0)
                    .collect();
                order.sort_by_key(|&c| (class_count[c], self.class_key(levels, class_rep[c])));
                for c in order {
                    if kept_rows == 0 || kept_classes as f64 / kept_rows as f64 <= t {
                        break;
                    }
                    class_kept[c] = false;
                    kept_rows -= class_count[c];
                    kept_classes -= 1;
                }
            }
        }
        let suppressed: u64 = class_count
            .iter()
            .zip(&class_kept)
            .filter(|(_, &k)| !k)
            .map(|(&c, _)| c)
            .sum();
        NodeEval {
            levels: levels.to_vec(),
            tuple_class: keep_tuple_class.then_some(class_of_cell),
            class_count,
            class_rep,
            class_kept,
            class_pop,
            cells: Some(std::sync::Arc::new(cells)),
            suppressed,
            valid: suppressed <= self.limit_abs,
            mono_invalid: mono_suppressed > self.limit_abs,
        }
    }

    /// The generalized codes of a tuple at a transformation (a canonical class key).
    pub fn class_key(&self, levels: &[u32], rep: u32) -> Vec<u32> {
        self.qis
            .iter()
            .zip(levels)
            .zip(&self.tup_qi)
            .map(|((q, &l), codes)| q.gen[l as usize][codes[rep as usize] as usize])
            .collect()
    }

    fn check_distributions(
        &self,
        cells: &Cells,
        cell_class: &[u32],
        class_count: &[u64],
        kept: &mut [bool],
        mono_kept: &mut [bool],
    ) {
        // Distinct values each sensitive attribute needs in every class: implied by distinct, entropy and
        // recursive l-diversity, and monotone under generalization.
        let need_distinct = self.needed_distinct();
        let nc = class_count.len();
        let (start, order) = cells_by_class(cell_class, nc);
        let mut hists: Vec<Vec<u64>> = self.sens.iter().map(|s| vec![0u64; s.card]).collect();
        let mut touched: Vec<Vec<u32>> = self.sens.iter().map(|_| Vec::new()).collect();
        let grassberger = self.checks.iter().any(|c| {
            matches!(
                c,
                Check::Entropy {
                    est: EntropyEstimator::Grassberger,
                    ..
                }
            )
        });
        let mut first: Vec<u32> = vec![0; self.sens.iter().map(|s| s.card).max().unwrap_or(0)];
        let mut freq: Vec<u64> = Vec::new();
        for c in 0..nc {
            if !kept[c] || class_count[c] == 0 {
                continue;
            }
            for (s, (h, tl)) in hists.iter_mut().zip(touched.iter_mut()).enumerate() {
                for &y in &order[start[c]..start[c + 1]] {
                    let cnt = cells.count[y as usize];
                    if cnt == 0 {
                        continue;
                    }
                    let rep = cells.rep[y as usize];
                    let v = self.tup_sens[s][rep as usize] as usize;
                    if h[v] == 0 {
                        tl.push(v as u32);
                        first[v] = rep;
                    } else if rep < first[v] {
                        first[v] = rep;
                    }
                    h[v] += cnt;
                }
                if grassberger {
                    // Values in the order their first record appears (tuple ids follow the data's order).
                    tl.sort_unstable_by_key(|&v| first[v as usize]);
                }
            }
            let total = class_count[c];
            if touched
                .iter()
                .zip(&need_distinct)
                .any(|(t, &need)| (t.len() as u64) < need)
            {
                mono_kept[c] = false;
            }
            let ok = self
                .checks
                .iter()
                .all(|chk| self.class_satisfies(chk, &touched, &hists, total, &mut freq));
            if !ok {
                kept[c] = false;
            }
            for (h, tl) in hists.iter_mut().zip(touched.iter_mut()) {
                for &v in tl.iter() {
                    h[v as usize] = 0;
                }
                tl.clear();
            }
        }
    }

    /// Distinct values each sensitive attribute needs in every class: implied by distinct, entropy
    /// and recursive l-diversity, and monotone under generalization.
    fn needed_distinct(&self) -> Vec<u64> {
        let mut need = vec![0u64; self.sens.len()];
        for chk in &self.checks {
            match *chk {
                Check::Distinct { s, l } | Check::Recursive { s, l, .. } => {
                    need[s] = need[s].max(l)
                }
                Check::Entropy { s, l, .. } => need[s] = need[s].max(l.ceil() as u64),
                _ => {}
            }
        }
        need
    }

    /// Whether one class satisfies one class-level check, given its histograms of the sensitive
    /// values (`touched` lists the values present) and its size.
    fn class_satisfies(
        &self,
        chk: &Check,
        touched: &[Vec<u32>],
        hists: &[Vec<u64>],
        total: u64,
        freq: &mut Vec<u64>,
    ) -> bool {
        match *chk {
            Check::K(_) | Check::KMap(_) => true,
            Check::Distinct { s, l } => touched[s].len() as u64 >= l,
            Check::Entropy { s, l, est } => {
                if (touched[s].len() as f64) < l.ceil() {
                    false
                } else {
                    let h = &hists[s];
                    let tf = total as f64;
                    let e = match est {
                        EntropyEstimator::Shannon => {
                            let sum: f64 = touched[s]
                                .iter()
                                .map(|&v| {
                                    let f = h[v as usize] as f64;
                                    f * log2(f)
                                })
                                .sum();
                            log2(tf) - sum / tf
                        }
                        EntropyEstimator::Grassberger => {
                            if grassberger_diverse(&touched[s], h, total, l, freq) {
                                f64::INFINITY
                            } else {
                                f64::NEG_INFINITY
                            }
                        }
                    };
                    e >= log2(l)
                }
            }
            Check::Recursive { s, c: cc, l } => {
                let m = touched[s].len();
                if (m as u64) < l {
                    false
                } else {
                    freq.clear();
                    freq.extend(touched[s].iter().map(|&v| hists[s][v as usize]));
                    freq.sort_unstable_by(|a, b| b.cmp(a));
                    let tail: u64 = freq[(l as usize - 1)..].iter().sum();
                    (freq[0] as f64) < cc * tail as f64
                }
            }
            Check::EqualT { s, t } => {
                let g = &self.sens[s].global;
                let n = self.n as f64;
                let tf = total as f64;
                let mut d = 0.0;
                for (v, &gv) in g.iter().enumerate() {
                    d += (gv as f64 / n - hists[s][v] as f64 / tf).abs();
                }
                d / 2.0 <= t
            }
            Check::HierT { s, t } => {
                let sd = &self.sens[s];
                match &sd.tree {
                    Some(tree) => hierarchical_emd(tree, &sd.global, &hists[s], self.n, total) <= t,
                    None => false,
                }
            }
        }
    }

    /// Per-attribute Loss values (normalized, rounded) of an evaluated node.
    pub fn loss_values(&self, e: &NodeEval, gs: f64) -> Vec<f64> {
        let (g, s) = Metric::factors(gs);
        let nf = self.n as f64;
        // Suppressed classes in a canonical order (by generalized values), so that sums do not depend on
        // how the classes were grouped.
        let mut supp: Vec<(Vec<u32>, u64)> = e
            .class_count
            .iter()
            .enumerate()
            .filter(|&(c, &cnt)| cnt > 0 && !e.class_kept[c])
            .map(|(c, &cnt)| (self.class_key(&e.levels, e.class_rep[c]), cnt))
            .collect();
        supp.sort_unstable();
        self.qis
            .iter()
            .enumerate()
            .map(|(qi, q)| {
                let l = e.levels[qi] as usize;
                let mut r = q.loss_base[l] * g;
                for &(ref key, cnt) in &supp {
                    let code = key[qi] as usize;
                    let share = cnt as f64 * q.share[l][code];
                    r -= share * g;
                    r += if s == 1.0 {
                        cnt as f64
                    } else {
                        share + s * (cnt as f64 - share)
                    };
                }
                normalize_loss(r, q.domain, nf, g)
            })
            .collect()
    }

    /// Lower bound of Loss per attribute (no suppression cost); equals the loss when nothing is suppressed.
    pub fn loss_bound(&self, levels: &[u32], gs: f64) -> Vec<f64> {
        let (g, _) = Metric::factors(gs);
        let nf = self.n as f64;
        self.qis
            .iter()
            .zip(levels)
            .map(|(q, &l)| normalize_loss(q.loss_base[l as usize] * g, q.domain, nf, g))
            .collect()
    }

    /// Per-attribute non-uniform entropy (rounded, ≥ 0); the non-monotonic variant adds the suppressed records.
    pub fn entropy_values(
        &self,
        e: Option<&NodeEval>,
        levels: &[u32],
        gs: f64,
        monotonic: bool,
    ) -> Vec<f64> {
        let (g, s) = Metric::factors(gs);
        let mut out: Vec<f64> = self
            .qis
            .iter()
            .zip(levels)
            .map(|(q, &l)| q.entropy[l as usize] * g)
            .collect();
        if let (false, Some(e)) = (monotonic, e) {
            let suppressed: u64 = e.suppressed;
            if suppressed > 0 {
                let sf = suppressed as f64;
                for (qi, q) in self.qis.iter().enumerate() {
                    let l = levels[qi] as usize;
                    let mut counts: FxHashMap<u32, u64> = FxHashMap::default();
                    for (c, &cnt) in e.class_count.iter().enumerate() {
                        if cnt == 0 || e.class_kept[c] {
                            continue;
                        }
                        let t = e.class_rep[c] as usize;
                        *counts
                            .entry(q.gen[l][self.tup_qi[qi][t] as usize])
                            .or_insert(0) += cnt;
                    }
                    let mut keys: Vec<_> = counts.into_iter().collect();
                    keys.sort_unstable();
                    for (_, cnt) in keys {
                        let cf = cnt as f64;
                        out[qi] += cf * log2(cf / sf) * s;
                    }
                }
            }
        }
        out.iter()
            .map(|&v| round10(if v == 0.0 { 0.0 } else { -v }))
            .collect()
    }

    /// Discernibility: (DM, DM*).
    pub fn discernibility(&self, e: &NodeEval) -> (f64, f64) {
        let nf = self.n as f64;
        let mut dm = 0.0;
        let mut dm_star = 0.0;
        for (c, &cnt) in e.class_count.iter().enumerate() {
            if cnt == 0 {
                continue;
            }
            let cf = cnt as f64;
            dm_star += cf * cf;
            dm += if e.class_kept[c] { cf * cf } else { nf * cf };
        }
        (dm, dm_star)
    }

    /// Average equivalence class size; all suppressed records form one class.
    pub fn aecs(&self, e: &NodeEval) -> f64 {
        let kept = e
            .class_count
            .iter()
            .zip(&e.class_kept)
            .filter(|(&c, &k)| c > 0 && k)
            .count();
        let classes = kept + usize::from(e.suppressed > 0);
        if classes == 0 {
            0.0
        } else {
            self.n as f64 / classes as f64
        }
    }

    /// Precision per attribute: average of level/height over cells, suppressed cells count 1 (× factors).
    pub fn precision_values(&self, e: &NodeEval, gs: f64) -> Vec<f64> {
        let (g, s) = Metric::factors(gs);
        let nf = self.n as f64;
        let kept: u64 = self.n - e.suppressed;
        self.qis
            .iter()
            .zip(&e.levels)
            .map(|(q, &l)| {
                let h = if q.height == 0 {
                    0.0
                } else {
                    l as f64 / q.height as f64
                };
                round10((kept as f64 * h * g + e.suppressed as f64 * s) / nf)
            })
            .collect()
    }

    /// The configured metric of an evaluated node.
    pub fn score(&self, e: &NodeEval) -> Score {
        match self.metric {
            Metric::Loss {
                gs_factor,
                aggregate: a,
            } => aggregate_weighted(&self.loss_values(e, gs_factor), &self.weights, a),
            Metric::Entropy {
                monotonic,
                gs_factor,
            } => Score::Scalar(
                self.entropy_values(Some(e), &e.levels, gs_factor, monotonic)
                    .iter()
                    .sum(),
            ),
            Metric::Discernibility { monotonic } => {
                let (dm, dms) = self.discernibility(e);
                Score::Scalar(if monotonic { dms } else { dm })
            }
            Metric::Aecs => Score::Scalar(self.aecs(e)),
            Metric::Precision { gs_factor } => aggregate(
                &self.precision_values(e, gs_factor),
                Aggregate::ArithmeticMean,
            ),
        }
    }

    /// A lower bound of the metric that needs no grouping (`None` when none is known).
    pub fn lower_bound(&self, levels: &[u32]) -> Option<Score> {
        match self.metric {
            Metric::Loss {
                gs_factor,
                aggregate: a,
            } => Some(aggregate_weighted(
                &self.loss_bound(levels, gs_factor),
                &self.weights,
                a,
            )),
            Metric::Entropy { gs_factor, .. } => Some(Score::Scalar(
                self.entropy_values(None, levels, gs_factor, true)
                    .iter()
                    .sum(),
            )),
            _ => None,
        }
    }

    /// Whether a valid node's score equals its lower bound (nothing may be suppressed, and the metric's
    /// bound is exact without suppression).
    pub fn score_is_bound_when_valid(&self) -> bool {
        self.limit_abs == 0 && matches!(self.metric, Metric::Loss { .. } | Metric::Entropy { .. })
    }

    /// Whether the metric can only grow with generalization for valid nodes (successors of a valid node need
    /// no evaluation once one valid node is scored).
    pub fn metric_monotone(&self) -> bool {
        match self.metric {
            Metric::Discernibility { monotonic } => monotonic,
            Metric::Entropy { monotonic, .. } => monotonic,
            _ => false,
        }
    }
}

fn normalize_loss(r: f64, domain: f64, n: f64, g: f64) -> f64 {
    let min = g * n / domain;
    let max = n;
    let v = (r - min) / (max - min);
    round10(if v >= 0.0 { v } else { 0.0 })
}

/// Entropy l-diversity of one class under Grassberger's estimator, evaluated as ARX evaluates it: the class is
/// diverse when Σ n·G(n) ≤ N·(G(N) − ln l), the sum taken over the class's values in the order of ARX's
/// open-addressing frequency table (home bucket `code mod capacity`, linear probing, capacity 8 doubled past a
/// 0.75 load) and abandoned as soon as a partial sum exceeds the bound. G(1) is negative, so that early exit
/// can reject a class whose full sum would pass; reproducing it keeps results identical to ARX's.
fn grassberger_diverse(
    values: &[u32],
    hist: &[u64],
    total: u64,
    l: f64,
    slots: &mut Vec<u64>,
) -> bool {
    let mut capacity = 8usize;
    while values.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    const EMPTY: u64 = u64::MAX;
    slots.clear();
    slots.resize(capacity, EMPTY);
    for &v in values {
        let mut i = v as usize & (capacity - 1);
        while slots[i] != EMPTY {
            i = (i + 1) & (capacity - 1);
        }
        slots[i] = u64::from(v);
    }
    let bound = total as f64 * (grassberger_g(total) - l.ln());
    let mut sum = 0.0;
    for &v in slots.iter().filter(|&&v| v != EMPTY) {
        let f = hist[v as usize];
        sum += f as f64 * grassberger_g(f);
        if bound < sum {
            return false;
        }
    }
    true
}

/// Grassberger's (2003) correction term in nats: G(2m) = −γ − ln 2 + Σ_{k=1..m} 2/(2k−1) and G(2m+1) = G(2m),
/// which equals ψ(n) + ½ (−1)^n (ψ((n+1)/2) − ψ(n/2)); beyond n = 100 its expansion at infinity,
/// ln n + 1/24·m − 7/960·m² + 31/8064·m³ with m = (n/2)^−2 (n even), as ARX evaluates it.
fn grassberger_g(n: u64) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    let even = n - n % 2;
    if even == 0 {
        return -EULER_GAMMA - std::f64::consts::LN_2;
    }
    if even <= 100 {
        let half = even / 2;
        let series: f64 = (1..=half).map(|k| 2.0 / (2 * k - 1) as f64).sum();
        return -EULER_GAMMA - std::f64::consts::LN_2 + series;
    }
    let half = (even / 2) as f64;
    let m = 1.0 / (half * half);
    (even as f64).ln() + m * (1.0 / 24.0 - m * (7.0 / 960.0 - m * (31.0 / 8064.0)))
}

/// Earth mover's distance with the hierarchical ground distance (Li, Li, Venkatasubramanian 2007), as ARX
/// computes it: for every inner node at level `h`, `h / H · min(positive extra, negative extra)`, on integer
/// extras `p_i·Q − q_i·P`, divided by `P·Q`.
fn hierarchical_emd(
    tree: &EmdTree,
    global: &[u64],
    class: &[u64],
    p_total: u64,
    q_total: u64,
) -> f64 {
    let mut extra: Vec<i128> = global
        .iter()
        .zip(class)
        .map(|(&p, &q)| i128::from(p) * i128::from(q_total) - i128::from(q) * i128::from(p_total))
        .collect();
    let height = tree.height as f64;
    let mut cost = 0.0;
    for level in 1..=tree.height {
        let parents = &tree.parent[level];
        let mut pos = vec![0i128; tree.nodes[level]];
        let mut neg = vec![0i128; tree.nodes[level]];
        for (child, &e) in extra.iter().enumerate() {
            let p = parents[child] as usize;
            if e > 0 {
                pos[p] += e;
            } else {
                neg[p] -= e;
            }
        }
        for (p, n) in pos.iter().zip(&neg) {
            cost += (level as f64 / height) * (*p.min(n) as f64);
        }
        extra = pos.iter().zip(&neg).map(|(p, n)| p - n).collect();
    }
    cost / (p_total as f64 * q_total as f64)
}

/// Assigns dense ids to keys in order of first appearance.
fn dense_ids(keys: &[u64], bound: u64) -> (Vec<u32>, usize) {
    let mut ids = Vec::with_capacity(keys.len());
    let mut next: u32 = 0;
    if bound <= (keys.len() as u64 * 2).max(256) {
        let mut table = vec![u32::MAX; bound as usize];
        for &k in keys {
            let slot = &mut table[k as usize];
            if *slot == u32::MAX {
                *slot = next;
                next += 1;
            }
            ids.push(*slot);
        }
    } else {
        let mut map: FxHashMap<u64, u32> = FxHashMap::default();
        map.reserve(keys.len() / 4 + 16);
        for &k in keys {
            let id = *map.entry(k).or_insert_with(|| {
                next += 1;
                next - 1
            });
            ids.push(id);
        }
    }
    (ids, next as usize)
}

pub(crate) fn encode_qi(
    name: &str,
    col: usize,
    h: &crate::hierarchy::Hierarchy,
    table_values: &[String],
) -> Result<QiDim> {
    let levels = h.levels();
    let rows = h.rows();
    let mut labels: Vec<Vec<String>> = vec![Vec::new(); levels];
    let mut index: Vec<std::collections::HashMap<&str, u32>> =
        vec![std::collections::HashMap::new(); levels];
    let mut row_codes: Vec<Vec<u32>> = Vec::with_capacity(rows.len());
    let mut label_rows: Vec<Vec<u64>> = vec![Vec::new(); levels];
    for r in rows {
        let mut rc = Vec::with_capacity(levels);
        for (l, v) in r.iter().enumerate() {
            let code = match index[l].get(v.as_str()) {
                Some(&c) => c,
                None => {
                    let c = labels[l].len() as u32;
                    labels[l].push(v.clone());
                    label_rows[l].push(0);
                    index[l].insert(v.as_str(), c);
                    c
                }
            };
            label_rows[l][code as usize] += 1;
            rc.push(code);
        }
        row_codes.push(rc);
    }
    let card: Vec<u32> = labels.iter().map(|l| l.len() as u32).collect();
    let mut gen: Vec<Vec<u32>> = vec![vec![0u32; card[0] as usize]; levels];
    for rc in &row_codes {
        for l in 0..levels {
            gen[l][rc[0] as usize] = rc[l];
        }
    }
    let domain = rows.len() as f64;
    let share: Vec<Vec<f64>> = label_rows
        .iter()
        .map(|lr| lr.iter().map(|&c| c as f64 / domain).collect())
        .collect();
    let from_table: Vec<u32> = table_values
        .iter()
        .map(|v| {
            index[0]
                .get(v.as_str())
                .copied()
                .ok_or_else(|| AnonError::ValueNotInHierarchy {
                    column: name.to_string(),
                    value: v.clone(),
                })
        })
        .collect::<Result<_>>()?;
    drop(index);
    Ok(QiDim {
        name: name.to_string(),
        col,
        height: levels - 1,
        gen,
        card,
        labels,
        share,
        domain,
        from_table,
        loss_base: Vec::new(),
        entropy: Vec::new(),
    })
}

/// Fills the data-dependent per-level tables (Loss base, non-uniform entropy) of every QI.
/// The cells ordered by class (a counting sort): the cells of class `c` are
/// `order[start[c]..start[c + 1]]`.
fn cells_by_class(cell_class: &[u32], classes: usize) -> (Vec<usize>, Vec<u32>) {
    let mut start = vec![0usize; classes + 1];
    for &c in cell_class {
        start[c as usize + 1] += 1;
    }
    for i in 0..classes {
        start[i + 1] += start[i];
    }
    let mut pos = start.clone();
    let mut order = vec![0u32; cell_class.len()];
    for (y, &c) in cell_class.iter().enumerate() {
        order[pos[c as usize]] = y as u32;
        pos[c as usize] += 1;
    }
    (start, order)
}

pub(crate) fn precompute(p: &mut Prepared) {
    let d = p.tup_count.len();
    for (qi, q) in p.qis.iter_mut().enumerate() {
        let mut cnt0 = vec![0u64; q.card[0] as usize];
        for t in 0..d {
            cnt0[p.tup_qi[qi][t] as usize] += u64::from(p.tup_count[t]);
        }
        let levels = q.height + 1;
        q.loss_base = (0..levels)
            .map(|l| {
                cnt0.iter()
                    .enumerate()
                    .map(|(v, &c)| c as f64 * q.share[l][q.gen[l][v] as usize])
                    .sum()
            })
            .collect();
        q.entropy = (0..levels)
            .map(|l| {
                let mut b = vec![0u64; q.card[l] as usize];
                for (v, &c) in cnt0.iter().enumerate() {
                    b[q.gen[l][v] as usize] += c;
                }
                let mut value = 0.0;
                for (v, &a) in cnt0.iter().enumerate() {
                    if a != 0 {
                        let a = a as f64;
                        value += a * log2(a / b[q.gen[l][v] as usize] as f64);
                    }
                }
                value
            })
            .collect();
    }
}

pub(crate) fn emd_tree(
    name: &str,
    h: &crate::hierarchy::Hierarchy,
    values: &[String],
) -> Result<EmdTree> {
    let levels = h.levels();
    let rows = h.rows();
    let by_value: std::collections::HashMap<&str, &Vec<String>> =
        rows.iter().map(|r| (r[0].as_str(), r)).collect();
    // Level-0 nodes are the data's values (table codes); higher levels are labels.
    let mut parent: Vec<Vec<u32>> = vec![Vec::new(); levels];
    let mut nodes = vec![values.len(); levels];
    let mut prev_labels: Vec<String> = values.to_vec();
    let mut paths: Vec<&Vec<String>> = Vec::with_capacity(values.len());
    for v in values {
        paths.push(by_value.get(v.as_str()).copied().ok_or_else(|| {
            AnonError::ValueNotInHierarchy {
                column: name.to_string(),
                value: v.clone(),
            }
        })?);
    }
    for l in 1..levels {
        let mut idx: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        let mut labels_l: Vec<String> = Vec::new();
        // Parent of each node at level l-1: take it from any value whose path passes through that node.
        let mut par = vec![0u32; prev_labels.len()];
        let mut prev_index: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::new();
        for (i, pl) in prev_labels.iter().enumerate() {
            prev_index.insert(pl.as_str(), i);
        }
        for p in &paths {
            let up = &p[l];
            let code = match idx.get(up) {
                Some(&c) => c,
                None => {
                    let c = labels_l.len() as u32;
                    labels_l.push(up.clone());
                    idx.insert(up.clone(), c);
                    c
                }
            };
            if let Some(&i) = prev_index.get(p[l - 1].as_str()) {
                par[i] = code;
            }
        }
        parent[l] = par;
        nodes[l] = labels_l.len();
        prev_labels = labels_l;
    }
    Ok(EmdTree {
        height: levels - 1,
        parent,
        nodes,
    })
}
