//! (k, k^m)-anonymity for persons with their event sets.
//!
//! Each person has quasi-identifiers (one value per column) and a set of events, each of an event
//! kind (diagnoses, prescriptions …) with a code and a time. An event kind has two hierarchies
//! (its codes, its times); a transformation chooses one level per quasi-identifier and, per kind,
//! one level for codes and one for times. An event at a transformation is an *item*: (kind, code
//! label, time label); a person's items form a set.
//!
//! The model (joint, stronger than Poulis et al.'s (k, k^m), which protects the relational part and
//! the set part separately): for every person and every set S of at most `m` of their items, the
//! persons with the same quasi-identifier labels whose item set contains S number at least `k`
//! (S empty: k-anonymity over the quasi-identifiers). An intruder who knows a person's
//! quasi-identifiers and any `m` of their events therefore always finds at least `k` persons.
//!
//! At a transformation the model is enforced by suppression: persons in a quasi-identifier class of
//! fewer than `k` are suppressed (within the persons' suppression limit, else the transformation
//! is invalid); then, class by class, an item held by fewer than `k` of the class is removed from
//! its holders, and each person holding sets of 2..=m items held by between 1 and `k − 1` persons
//! drops items until none is left: a greedy hitting set that takes the item costing fewest
//! holdings per set it breaks, then the one with most holders (whose prevalence a lost holding
//! changes least, so that every item keeps its prevalence as far as it can), then the one standing
//! for fewest rows; repeated until nothing violates (each round only removes, so it ends). Removing an item removes every event row it stands for.
//!
//! After the search, a per-code cut ([`KmCut`]) can release some codes coarser than the
//! transformation: round by round, a code whose events the suppression removes has its times (then
//! its codes, up to [`KmConfig::max_code_level`]) lifted one level for every person, kept while it
//! lowers the loss ([`KmConfig::lift_rounds`]).
//!
//! Loss: for the quasi-identifiers, the normalized certainty penalty of each value ((leaves under
//! the label − 1) / (leaves − 1), ARX's Loss per attribute), a suppressed person 1; for the events,
//! the same penalty averaged over the code and the time of each released event row, a removed row
//! 1 (NCP for set-valued data, Terrovitis et al.). The objective weighs the two
//! ([`KmConfig::qi_weight`]); a floor on the event rows released ([`KmConfig::min_rows_released`])
//! ranks every transformation that keeps it before every one that does not. Codes a study counts
//! most can be protected ([`KmConfig::protect`]): the hitting set takes their items last and
//! spreads their losses evenly, and a ceiling on the relative error of their prevalence
//! ([`KmConfig::max_protected_error`]) ranks like the floor. The search is exhaustive over the lattice when it is small
//! ([`KmConfig::exhaustive_limit`]) and otherwise a greedy descent from the top of the lattice that
//! specializes one dimension at a time, keeping the best transformation seen, followed by a hill
//! climb from it over its neighbours. Codes can be kept below a level ([`KmConfig::max_code_level`]).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{AnonError, Result};
use crate::hierarchy::Hierarchy;

mod protect;
use protect::Protection;

/// A hierarchy encoded on integers: leaf ids, and per level each leaf's label id.
#[derive(Debug, Clone)]
struct Encoded {
    /// Leaf value → leaf id.
    ids: HashMap<String, u32>,
    /// `labels[level][label]`: the label's text.
    labels: Vec<Vec<String>>,
    /// `map[level][leaf]`: the leaf's label id at the level.
    map: Vec<Vec<u32>>,
    /// `ncp[level][label]`: the label's normalized certainty penalty.
    ncp: Vec<Vec<f64>>,
    /// `text[level][label]`: the label's text as an id shared by every level (a label spelled the
    /// same at two levels is one released value).
    text: Vec<Vec<u32>>,
}

impl Encoded {
    fn new(h: &Hierarchy) -> Encoded {
        let rows = h.rows();
        let levels = h.levels();
        let leaves = rows.len();
        let mut ids = HashMap::with_capacity(leaves);
        for (i, r) in rows.iter().enumerate() {
            ids.insert(r[0].clone(), i as u32);
        }
        let (mut labels, mut map, mut ncp) = (Vec::new(), Vec::new(), Vec::new());
        let mut texts: HashMap<String, u32> = HashMap::new();
        let mut text = Vec::with_capacity(levels);
        for level in 0..levels {
            let mut names: Vec<String> = Vec::new();
            let mut id_of: HashMap<&str, u32> = HashMap::new();
            let mut count: Vec<usize> = Vec::new();
            let mut m = Vec::with_capacity(leaves);
            for r in rows {
                let id = *id_of.entry(r[level].as_str()).or_insert_with(|| {
                    names.push(r[level].clone());
                    count.push(0);
                    (names.len() - 1) as u32
                });
                count[id as usize] += 1;
                m.push(id);
            }
            let top = level + 1 == levels && levels > 1;
            ncp.push(
                count
                    .iter()
                    .map(|&c| match (top, leaves) {
                        (true, _) => 1.0,
                        (false, 0 | 1) => 0.0,
                        _ => (c - 1) as f64 / (leaves - 1) as f64,
                    })
                    .collect(),
            );
            text.push(
                names
                    .iter()
                    .map(|n| {
                        let next = texts.len() as u32;
                        *texts.entry(n.clone()).or_insert(next)
                    })
                    .collect(),
            );
            labels.push(names);
            map.push(m);
        }
        Encoded {
            ids,
            labels,
            map,
            ncp,
            text,
        }
    }

    fn height(&self) -> usize {
        self.labels.len().saturating_sub(1)
    }

    fn leaf(&self, what: &str, value: &str) -> Result<u32> {
        self.ids
            .get(value)
            .copied()
            .ok_or_else(|| AnonError::ValueNotInHierarchy {
                column: what.to_string(),
                value: value.to_string(),
            })
    }
}

/// A quasi-identifier column of the persons.
#[derive(Debug, Clone)]
struct Qi {
    name: String,
    enc: Encoded,
    /// Per person, the leaf id.
    leaf: Vec<u32>,
}

/// An event kind with its two hierarchies.
#[derive(Debug, Clone)]
struct Kind {
    name: String,
    code: Encoded,
    time: Encoded,
}

/// One event: its person, kind and leaves.
#[derive(Debug, Clone, Copy)]
struct Row {
    person: u32,
    kind: u16,
    code: u32,
    time: u32,
}

/// Parameters of (k, k^m)-anonymity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KmConfig {
    /// Smallest number of persons sharing the quasi-identifiers and any `m` items (≥ 1).
    pub k: usize,
    /// Largest number of items an intruder knows (0: k-anonymity over the quasi-identifiers only).
    pub m: usize,
    /// Largest share of persons suppressed for the quasi-identifiers.
    pub suppression_limit: f64,
    /// Weight of the quasi-identifiers' loss in the objective (the events' loss weighs 1 − it).
    pub qi_weight: f64,
    /// The search is exhaustive when the lattice has at most this many nodes, greedy otherwise.
    pub exhaustive_limit: usize,
    /// The highest level the search may give each event kind's codes (`None`: up to `*`); a
    /// hierarchy's own height bounds it too. Keeps codes useful (ICD-10 at least at its
    /// 3-character category with 1), leaving the rest to the times and to suppression.
    pub max_code_level: Option<usize>,
    /// Rounds of per-code generalization after the search ([`KmCut`]; 0: none): the codes whose
    /// events the suppression removes have their times, then their codes, lifted one level while
    /// that lowers the loss.
    pub lift_rounds: usize,
    /// The share of event rows a transformation should release (0: no floor). The search ranks
    /// every transformation that releases at least this share before every one that releases less
    /// (by objective within each group; below the floor, the nearer to it the better): a study
    /// that needs its events keeps them at the cost of coarser quasi-identifiers and dates.
    pub min_rows_released: f64,
    /// The codes a study counts most: per event kind, the `protect` codes held by the most persons
    /// (grouped at `protect_level`, or at the transformation's code level when coarser). An item
    /// standing for one of them gives up a holding only when every item of the violating set is
    /// protected too; then the one that has lost the smallest share of its holders goes, so that
    /// no protected code's prevalence bears the loss alone. A missing (empty) code and `*` are
    /// never protected. 0: none.
    pub protect: usize,
    /// The code level at which the protected codes are counted (ICD-10 3-character categories
    /// and drug ingredients with 1).
    pub protect_level: usize,
    /// The largest relative error of a protected code's prevalence (persons holding it over
    /// persons released, against the unprocessed data) a transformation should keep (1: no
    /// ceiling). Ranked like the rows' floor: transformations within it before those beyond.
    pub max_protected_error: f64,
}

impl Default for KmConfig {
    fn default() -> Self {
        KmConfig {
            k: 10,
            m: 2,
            suppression_limit: 0.05,
            qi_weight: 0.5,
            exhaustive_limit: 256,
            max_code_level: None,
            lift_rounds: 4,
            min_rows_released: 0.0,
            protect: 0,
            protect_level: 0,
            max_protected_error: 1.0,
        }
    }
}

/// A transformation: a level per quasi-identifier, and (code level, time level) per event kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct KmNode {
    /// Level of each quasi-identifier, in the order they were added.
    pub qi: Vec<usize>,
    /// (code level, time level) of each event kind, in the order they were added.
    pub kinds: Vec<(usize, usize)>,
}

/// A per-code generalization cut on top of a transformation: for each event kind and each code
/// label at the transformation's code level, how many levels its times and its codes are lifted
/// (the same for every person: an intruder's known event maps to exactly one released item).
/// Rare codes are thus released coarser instead of removed, while frequent ones keep the
/// transformation's detail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmCut {
    /// `lift[kind][code label]`: (code levels, time levels) above the node's.
    lift: Vec<Vec<(u8, u8)>>,
}

impl KmCut {
    /// No lift.
    fn none(data: &SetValued, node: &KmNode) -> KmCut {
        KmCut {
            lift: data
                .kinds
                .iter()
                .zip(&node.kinds)
                .map(|(k, &(cl, _))| vec![(0, 0); k.code.labels.get(cl).map_or(0, Vec::len)])
                .collect(),
        }
    }

    fn is_none(&self) -> bool {
        self.lift.iter().flatten().all(|&l| l == (0, 0))
    }

    /// Per event kind: (code labels whose times are lifted, code labels whose codes are lifted).
    pub fn lifted(&self) -> Vec<(usize, usize)> {
        self.lift
            .iter()
            .map(|l| {
                (
                    l.iter().filter(|x| x.1 > 0).count(),
                    l.iter().filter(|x| x.0 > 0).count(),
                )
            })
            .collect()
    }
}

/// The loss of a transformation with its suppression.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KmLoss {
    /// Quasi-identifiers: mean normalized certainty penalty over persons and columns (suppressed 1).
    pub qi: f64,
    /// Events: mean penalty over event rows (removed rows 1).
    pub events: f64,
    /// Events: mean penalty of the rows released only (their generalization).
    pub events_released: f64,
    /// The objective: `qi_weight × qi + (1 − qi_weight) × events`.
    pub objective: f64,
}

/// Search statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KmStats {
    /// Nodes of the lattice.
    pub lattice: usize,
    /// Nodes evaluated.
    pub evaluated: usize,
    /// Nodes evaluated that met the persons' suppression limit.
    pub valid: usize,
    /// Whether the whole lattice was searched.
    pub exhaustive: bool,
}

/// The outcome of (k, k^m)-anonymization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KmOutcome {
    /// The transformation chosen.
    pub node: KmNode,
    /// The per-code lifts on top of it.
    #[serde(skip)]
    pub cut: KmCut,
    /// Whether each person was suppressed.
    #[serde(skip)]
    pub person_suppressed: Vec<bool>,
    /// Whether each event row (in the order added) is released.
    #[serde(skip)]
    pub row_released: Vec<bool>,
    /// Persons suppressed.
    pub persons_suppressed: usize,
    /// Event rows removed (of suppressed persons, or their item removed).
    pub rows_removed: usize,
    /// (person, item) pairs removed from persons kept.
    pub items_removed: usize,
    /// The loss.
    pub loss: KmLoss,
    /// The largest relative error of a protected code's prevalence ([`KmConfig::protect`]; `None`
    /// without protected codes).
    pub protected_error: Option<f64>,
    /// The search.
    pub stats: KmStats,
}

/// Persons with quasi-identifiers and events, encoded for (k, k^m)-anonymization.
#[derive(Debug, Clone)]
pub struct SetValued {
    persons: usize,
    qis: Vec<Qi>,
    kinds: Vec<Kind>,
    rows: Vec<Row>,
}

/// A transformation evaluated: who and what the model's suppression removes, and the loss.
struct Evaluation {
    person_suppressed: Vec<bool>,
    row_released: Vec<bool>,
    items_removed: usize,
    loss: KmLoss,
    protected_error: Option<f64>,
}

impl Evaluation {
    /// What the search minimizes: the objective (at most 1), plus 1 and the shortfall when fewer
    /// rows are released than the floor ([`KmConfig::min_rows_released`]), plus 1 and the excess
    /// when a protected code's prevalence errs beyond [`KmConfig::max_protected_error`].
    fn score(&self, cfg: &KmConfig) -> f64 {
        let rows = self.row_released.len();
        let released = self.row_released.iter().filter(|&&r| r).count();
        let share = if rows == 0 {
            1.0
        } else {
            released as f64 / rows as f64
        };
        let short = cfg.min_rows_released - share;
        let excess = self.protected_error.unwrap_or(0.0) - cfg.max_protected_error;
        let penalty = |x: f64| if x > 0.0 { 1.0 + x } else { 0.0 };
        self.loss.objective + penalty(short) + penalty(excess)
    }
}

impl SetValued {
    /// Data on `persons` persons (indexes `0..persons`), no columns and no events yet.
    pub fn new(persons: usize) -> SetValued {
        SetValued {
            persons,
            qis: Vec::new(),
            kinds: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Adds a quasi-identifier: every person's value (level 0 of `hierarchy`).
    pub fn quasi_identifier<S: AsRef<str>>(
        &mut self,
        name: &str,
        values: &[S],
        hierarchy: &Hierarchy,
    ) -> Result<()> {
        if values.len() != self.persons {
            return Err(AnonError::InvalidParameter(format!(
                "quasi-identifier `{name}` has {} values for {} persons",
                values.len(),
                self.persons
            )));
        }
        let enc = Encoded::new(hierarchy);
        let leaf = values
            .iter()
            .map(|v| enc.leaf(name, v.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        self.qis.push(Qi {
            name: name.to_string(),
            enc,
            leaf,
        });
        Ok(())
    }

    /// Adds an event kind with the hierarchies of its codes and times; returns its index.
    pub fn kind(&mut self, name: &str, codes: &Hierarchy, times: &Hierarchy) -> Result<usize> {
        if self.kinds.len() >= usize::from(u16::MAX) {
            return Err(AnonError::InvalidParameter("too many event kinds".into()));
        }
        self.kinds.push(Kind {
            name: name.to_string(),
            code: Encoded::new(codes),
            time: Encoded::new(times),
        });
        Ok(self.kinds.len() - 1)
    }

    /// Adds an event of `person` of kind `kind`; its row index is the number of events added before.
    pub fn event(&mut self, person: usize, kind: usize, code: &str, time: &str) -> Result<()> {
        let k = self
            .kinds
            .get(kind)
            .ok_or_else(|| AnonError::InvalidParameter(format!("no event kind {kind}")))?;
        if person >= self.persons {
            return Err(AnonError::InvalidParameter(format!(
                "person {person} of {}",
                self.persons
            )));
        }
        let row = Row {
            person: person as u32,
            kind: kind as u16,
            code: k.code.leaf(&k.name, code)?,
            time: k.time.leaf(&k.name, time)?,
        };
        self.rows.push(row);
        Ok(())
    }

    /// Persons.
    pub fn persons(&self) -> usize {
        self.persons
    }

    /// Event rows.
    pub fn events(&self) -> usize {
        self.rows.len()
    }

    /// The quasi-identifier names, in order.
    pub fn quasi_identifiers(&self) -> Vec<&str> {
        self.qis.iter().map(|q| q.name.as_str()).collect()
    }

    /// The event kind names, in order.
    pub fn kinds(&self) -> Vec<&str> {
        self.kinds.iter().map(|k| k.name.as_str()).collect()
    }

    /// Person `person`'s label of quasi-identifier `qi` at `level`.
    pub fn qi_label(&self, qi: usize, person: usize, level: usize) -> Option<&str> {
        let q = self.qis.get(qi)?;
        let leaf = *q.leaf.get(person)? as usize;
        let label = *q.enc.map.get(level)?.get(leaf)? as usize;
        q.enc.labels[level].get(label).map(String::as_str)
    }

    /// Event row `row`'s (code, time) labels as the outcome releases them (its node's levels of
    /// the row's kind, lifted by its cut).
    pub fn event_labels(&self, row: usize, outcome: &KmOutcome) -> Option<(&str, &str)> {
        let r = self.rows.get(row)?;
        let k = &self.kinds[usize::from(r.kind)];
        outcome.node.kinds.get(usize::from(r.kind))?;
        let (cl, tl) = self.levels_of(r, &outcome.node, &outcome.cut);
        let c = *k.code.map.get(cl)?.get(r.code as usize)? as usize;
        let t = *k.time.map.get(tl)?.get(r.time as usize)? as usize;
        Some((&k.code.labels[cl][c], &k.time.labels[tl][t]))
    }

    /// The heights of the lattice's dimensions: quasi-identifiers, then code and time per kind.
    fn heights(&self) -> Vec<usize> {
        self.qis
            .iter()
            .map(|q| q.enc.height())
            .chain(
                self.kinds
                    .iter()
                    .flat_map(|k| [k.code.height(), k.time.height()]),
            )
            .collect()
    }

    /// The heights the search may use: codes bounded by [`KmConfig::max_code_level`] (a flat
    /// hierarchy, `code → *`, then keeps its codes: suppression alone protects them).
    fn search_heights(&self, cfg: &KmConfig) -> Vec<usize> {
        let q = self.qis.len();
        let mut h = self.heights();
        if let Some(max) = cfg.max_code_level {
            for (i, k) in self.kinds.iter().enumerate() {
                let below_top = k.code.height().saturating_sub(1);
                h[q + 2 * i] = max.min(below_top);
            }
        }
        h
    }

    fn node_of(&self, levels: &[usize]) -> KmNode {
        let q = self.qis.len();
        KmNode {
            qi: levels[..q].to_vec(),
            kinds: levels[q..].chunks(2).map(|c| (c[0], c[1])).collect(),
        }
    }

    fn check_config(&self, cfg: &KmConfig) -> Result<()> {
        if cfg.k == 0 {
            return Err(AnonError::InvalidParameter("k is at least 1".into()));
        }
        let shares = [cfg.suppression_limit, cfg.qi_weight, cfg.min_rows_released];
        if !shares.iter().all(|v| (0.0..=1.0).contains(v)) {
            return Err(AnonError::InvalidParameter(
                "the suppression limit, the weight and the rows' floor are between 0 and 1".into(),
            ));
        }
        if cfg.k > self.persons {
            return Err(AnonError::Contradiction(format!(
                "k = {} is larger than the {} persons",
                cfg.k, self.persons
            )));
        }
        Ok(())
    }

    /// Applies a given transformation with the model's suppression; `None` when it suppresses more
    /// persons than the limit allows.
    pub fn apply(&self, cfg: &KmConfig, node: &KmNode) -> Result<Option<KmOutcome>> {
        self.check_config(cfg)?;
        let heights = self.heights();
        let levels: Vec<usize> = node
            .qi
            .iter()
            .copied()
            .chain(node.kinds.iter().flat_map(|&(c, t)| [c, t]))
            .collect();
        if levels.len() != heights.len() || levels.iter().zip(&heights).any(|(l, h)| l > h) {
            return Err(AnonError::InvalidTransformation(format!(
                "{node:?} does not fit the lattice {heights:?}"
            )));
        }
        let stats = KmStats {
            lattice: lattice_size(&heights),
            evaluated: 1,
            valid: 0,
            exhaustive: false,
        };
        let protection = Protection::new(self, cfg);
        let first = self.evaluate(cfg, &protection, node, &KmCut::none(self, node));
        Ok(first.map(|e| {
            let (cut, e) = self.lift(cfg, &protection, node, e);
            self.outcome(node.clone(), cut, e, stats)
        }))
    }

    /// Searches the transformation of least loss and applies it.
    pub fn anonymize(&self, cfg: &KmConfig) -> Result<KmOutcome> {
        self.check_config(cfg)?;
        let heights = self.search_heights(cfg);
        let size = lattice_size(&heights);
        let mut search = Search {
            data: self,
            cfg,
            protection: Protection::new(self, cfg),
            seen: HashMap::new(),
            best: None,
        };
        let exhaustive = size <= cfg.exhaustive_limit;
        if exhaustive {
            search.exhaustive(&heights);
        } else {
            search.greedy(&heights);
            search.refine(&heights);
        }
        let stats = KmStats {
            lattice: size,
            evaluated: search.seen.len(),
            valid: search.seen.values().filter(|v| v.is_some()).count(),
            exhaustive,
        };
        let Some((levels, _)) = search.best else {
            return Err(AnonError::NoSolution(format!(
                "(k = {}, k^m with m = {}) anonymity",
                cfg.k, cfg.m
            )));
        };
        let node = self.node_of(&levels);
        let protection = &search.protection;
        let eval = self
            .evaluate(cfg, protection, &node, &KmCut::none(self, &node))
            .ok_or_else(|| {
                AnonError::NoSolution("the chosen transformation is no longer valid".into())
            })?;
        let (cut, eval) = self.lift(cfg, protection, &node, eval);
        Ok(self.outcome(node, cut, eval, stats))
    }

    fn outcome(&self, node: KmNode, cut: KmCut, e: Evaluation, stats: KmStats) -> KmOutcome {
        let persons_suppressed = e.person_suppressed.iter().filter(|&&s| s).count();
        let rows_removed = e.row_released.iter().filter(|&&r| !r).count();
        KmOutcome {
            node,
            cut,
            person_suppressed: e.person_suppressed,
            row_released: e.row_released,
            persons_suppressed,
            rows_removed,
            items_removed: e.items_removed,
            loss: e.loss,
            protected_error: e.protected_error,
            stats,
        }
    }

    /// Each person's quasi-identifier class at the node (class ids dense from 0).
    fn classes(&self, node: &KmNode) -> (Vec<u32>, Vec<usize>) {
        let mut ids: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut sizes = Vec::new();
        let mut class = Vec::with_capacity(self.persons);
        for p in 0..self.persons {
            let key: Vec<u32> = self
                .qis
                .iter()
                .zip(&node.qi)
                .map(|(q, &l)| q.enc.map[l][q.leaf[p] as usize])
                .collect();
            let next = ids.len() as u32;
            let c = *ids.entry(key).or_insert(next);
            if c as usize == sizes.len() {
                sizes.push(0);
            }
            sizes[c as usize] += 1;
            class.push(c);
        }
        (class, sizes)
    }

    /// The (code, time) levels of an event row at a node with a cut.
    fn levels_of(&self, r: &Row, node: &KmNode, cut: &KmCut) -> (usize, usize) {
        let k = usize::from(r.kind);
        let kind = &self.kinds[k];
        let (cl, tl) = node.kinds[k];
        let base = kind.code.map[cl][r.code as usize] as usize;
        let (du, dt) = cut
            .lift
            .get(k)
            .and_then(|l| l.get(base))
            .copied()
            .unwrap_or((0, 0));
        (
            (cl + usize::from(du)).min(kind.code.height()),
            (tl + usize::from(dt)).min(kind.time.height()),
        )
    }

    /// Item ids of every row at the node: without a cut dense per kind, (code label, time label)
    /// mixed radix; with one, one id per (kind, code text, time text).
    fn items(&self, node: &KmNode, cut: &KmCut) -> Vec<u32> {
        if !cut.is_none() {
            let mut dense: HashMap<(u16, u32, u32), u32> = HashMap::new();
            return self
                .rows
                .iter()
                .map(|r| {
                    let (cl, tl) = self.levels_of(r, node, cut);
                    let kind = &self.kinds[usize::from(r.kind)];
                    let c = kind.code.text[cl][kind.code.map[cl][r.code as usize] as usize];
                    let t = kind.time.text[tl][kind.time.map[tl][r.time as usize] as usize];
                    let next = dense.len() as u32;
                    *dense.entry((r.kind, c, t)).or_insert(next)
                })
                .collect();
        }
        let mut offset = Vec::with_capacity(self.kinds.len());
        let mut next = 0u64;
        for (k, &(cl, tl)) in self.kinds.iter().zip(&node.kinds) {
            offset.push(next);
            next += (k.code.labels[cl].len() * k.time.labels[tl].len()) as u64;
        }
        self.rows
            .iter()
            .map(|r| {
                let k = usize::from(r.kind);
                let kind = &self.kinds[k];
                let (cl, tl) = node.kinds[k];
                let c = u64::from(kind.code.map[cl][r.code as usize]);
                let t = u64::from(kind.time.map[tl][r.time as usize]);
                (offset[k] + c * kind.time.labels[tl].len() as u64 + t) as u32
            })
            .collect()
    }

    /// The model enforced at a node by suppression; `None` beyond the persons' suppression limit.
    /// `protection` is [`Protection::new`] of the same `cfg` (made once per search).
    fn evaluate(
        &self,
        cfg: &KmConfig,
        protection: &Protection,
        node: &KmNode,
        cut: &KmCut,
    ) -> Option<Evaluation> {
        let (class, sizes) = self.classes(node);
        let person_suppressed: Vec<bool> =
            class.iter().map(|&c| sizes[c as usize] < cfg.k).collect();
        let suppressed = person_suppressed.iter().filter(|&&s| s).count();
        if suppressed as f64 > cfg.suppression_limit * self.persons as f64 {
            return None;
        }
        let item = self.items(node, cut);
        let guarded: HashSet<u32> = self
            .rows
            .iter()
            .zip(&item)
            .filter(|(r, _)| protection.holds(self, r))
            .map(|(_, &it)| it)
            .collect();
        // Each kept person's items, grouped by class.
        let mut held: Vec<Vec<u32>> = vec![Vec::new(); self.persons];
        for (r, &it) in self.rows.iter().zip(&item) {
            if !person_suppressed[r.person as usize] {
                held[r.person as usize].push(it);
            }
        }
        for h in held.iter_mut() {
            h.sort_unstable();
        }
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); sizes.len()];
        for (p, &c) in class.iter().enumerate() {
            if !person_suppressed[p] {
                members[c as usize].push(p as u32);
            }
        }
        let removed: Vec<(u32, Vec<u32>)> = members
            .par_iter()
            .filter(|m| !m.is_empty())
            .flat_map_iter(|m| {
                let rows: Vec<Vec<(u32, u32)>> =
                    m.iter().map(|&p| runs(&held[p as usize])).collect();
                let mut sets: Vec<Vec<u32>> = rows
                    .iter()
                    .map(|r| r.iter().map(|&(it, _)| it).collect())
                    .collect();
                let gone = enforce(&mut sets, &rows, cfg.k, cfg.m, &guarded);
                m.iter()
                    .zip(gone)
                    .filter(|(_, g)| !g.is_empty())
                    .map(|(&p, g)| (p, g))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut gone: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut items_removed = 0;
        for (p, g) in removed {
            items_removed += g.len();
            gone.insert(p, g);
        }
        let row_released: Vec<bool> = self
            .rows
            .iter()
            .zip(&item)
            .map(|(r, it)| {
                !person_suppressed[r.person as usize]
                    && gone
                        .get(&r.person)
                        .is_none_or(|g| g.binary_search(it).is_err())
            })
            .collect();
        let loss = self.loss(cfg, node, cut, &person_suppressed, &row_released);
        let protected_error = protection.error(self, node, cut, &person_suppressed, &row_released);
        Some(Evaluation {
            person_suppressed,
            row_released,
            items_removed,
            loss,
            protected_error,
        })
    }

    fn loss(
        &self,
        cfg: &KmConfig,
        node: &KmNode,
        cut: &KmCut,
        suppressed: &[bool],
        released: &[bool],
    ) -> KmLoss {
        let n = self.persons.max(1) as f64;
        let qi = if self.qis.is_empty() {
            0.0
        } else {
            let per: f64 = self
                .qis
                .iter()
                .zip(&node.qi)
                .map(|(q, &l)| {
                    (0..self.persons)
                        .map(|p| {
                            if suppressed[p] {
                                1.0
                            } else {
                                q.enc.ncp[l][q.enc.map[l][q.leaf[p] as usize] as usize]
                            }
                        })
                        .sum::<f64>()
                        / n
                })
                .sum();
            per / self.qis.len() as f64
        };
        let (mut total, mut kept_total, mut kept) = (0.0, 0.0, 0usize);
        for (r, &ok) in self.rows.iter().zip(released) {
            if !ok {
                total += 1.0;
                continue;
            }
            let x = self.row_ncp(r, self.levels_of(r, node, cut));
            total += x;
            kept_total += x;
            kept += 1;
        }
        let rows = self.rows.len();
        let events = if rows == 0 { 0.0 } else { total / rows as f64 };
        let (wq, we) = match (self.qis.is_empty(), rows == 0) {
            (true, false) => (0.0, 1.0),
            (false, true) => (1.0, 0.0),
            _ => (cfg.qi_weight, 1.0 - cfg.qi_weight),
        };
        KmLoss {
            qi,
            events,
            events_released: if kept == 0 {
                0.0
            } else {
                kept_total / kept as f64
            },
            objective: wq * qi + we * events,
        }
    }

    /// An event row's penalty at (code level, time level): the mean of its code's and its time's.
    fn row_ncp(&self, r: &Row, (cl, tl): (usize, usize)) -> f64 {
        let k = &self.kinds[usize::from(r.kind)];
        let c = k.code.ncp[cl][k.code.map[cl][r.code as usize] as usize];
        let t = k.time.ncp[tl][k.time.map[tl][r.time as usize] as usize];
        (c + t) / 2.0
    }

    /// Lifts, round by round, the code labels whose events the suppression removes (their times
    /// first, then their codes up to the bound), and keeps the cut of least loss seen (a lift may
    /// pay off only a level further up).
    fn lift(
        &self,
        cfg: &KmConfig,
        protection: &Protection,
        node: &KmNode,
        first: Evaluation,
    ) -> (KmCut, Evaluation) {
        let none = KmCut::none(self, node);
        let mut current = (none.clone(), None::<Evaluation>);
        let mut best = (none, first);
        let mut idle = 0;
        for _ in 0..cfg.lift_rounds {
            // Two rounds in a row without a better cut: further lifts only coarsen more.
            if idle == 2 {
                break;
            }
            let e = current.1.as_ref().unwrap_or(&best.1);
            let next = self.next_cut(cfg, node, &current.0, e);
            if next == current.0 {
                break;
            }
            let Some(e) = self.evaluate(cfg, protection, node, &next) else {
                break;
            };
            if e.score(cfg) < best.1.score(cfg) {
                best = (next.clone(), e);
                current = (next, None);
                idle = 0;
            } else {
                current = (next, Some(e));
                idle += 1;
            }
        }
        best
    }

    /// A code label's next lift: its time one level up while below `*`, else its code one level up
    /// while below `*`; `None` when neither can rise.
    fn next_lift(
        &self,
        cfg: &KmConfig,
        node: &KmNode,
        kind: usize,
        (du, dt): (u8, u8),
    ) -> Option<(u8, u8)> {
        let k = &self.kinds[kind];
        let (cl, tl) = node.kinds[kind];
        let code_top = k
            .code
            .height()
            .saturating_sub(1)
            .min(cfg.max_code_level.unwrap_or(usize::MAX));
        if tl + usize::from(dt) < k.time.height() {
            Some((du, dt + 1))
        } else if cl + usize::from(du) < code_top {
            Some((du + 1, dt))
        } else {
            None
        }
    }

    /// The next cut: each code label with events removed from persons kept is lifted one step
    /// when the rows removed outweigh what the step adds to the penalty of all its rows.
    fn next_cut(&self, cfg: &KmConfig, node: &KmNode, cut: &KmCut, e: &Evaluation) -> KmCut {
        let mut removed: Vec<Vec<f64>> = cut.lift.iter().map(|l| vec![0.0; l.len()]).collect();
        let mut cost = removed.clone();
        let steps: Vec<Vec<Option<(u8, u8)>>> = cut
            .lift
            .iter()
            .enumerate()
            .map(|(k, l)| l.iter().map(|&x| self.next_lift(cfg, node, k, x)).collect())
            .collect();
        for (r, &ok) in self.rows.iter().zip(&e.row_released) {
            if e.person_suppressed[r.person as usize] {
                continue;
            }
            let k = usize::from(r.kind);
            let base = self.kinds[k].code.map[node.kinds[k].0][r.code as usize] as usize;
            if !ok {
                removed[k][base] += 1.0;
            }
            if let Some(step) = steps[k][base] {
                let now = self.levels_of(r, node, cut);
                let (cl, tl) = node.kinds[k];
                let then = (
                    (cl + usize::from(step.0)).min(self.kinds[k].code.height()),
                    (tl + usize::from(step.1)).min(self.kinds[k].time.height()),
                );
                cost[k][base] += self.row_ncp(r, then) - self.row_ncp(r, now);
            }
        }
        let mut next = cut.clone();
        for (k, l) in next.lift.iter_mut().enumerate() {
            for (base, x) in l.iter_mut().enumerate() {
                if let Some(step) = steps[k][base] {
                    if removed[k][base] > cost[k][base] {
                        *x = step;
                    }
                }
            }
        }
        next
    }

    /// The items of each person at the outcome's node, as released (suppressed persons `None`):
    /// what [`violations`] checks.
    pub fn released_items(&self, outcome: &KmOutcome) -> Vec<Option<Vec<u32>>> {
        let item = self.items(&outcome.node, &outcome.cut);
        let mut out: Vec<Option<Vec<u32>>> = outcome
            .person_suppressed
            .iter()
            .map(|&s| (!s).then(Vec::new))
            .collect();
        for ((r, it), &ok) in self.rows.iter().zip(item).zip(&outcome.row_released) {
            if ok {
                if let Some(v) = out[r.person as usize].as_mut() {
                    v.push(it);
                }
            }
        }
        for v in out.iter_mut().flatten() {
            v.sort_unstable();
            v.dedup();
        }
        out
    }

    /// Each person's quasi-identifier class at the outcome's node.
    pub fn released_classes(&self, outcome: &KmOutcome) -> Vec<u32> {
        self.classes(&outcome.node).0
    }
}

fn lattice_size(heights: &[usize]) -> usize {
    heights.iter().fold(1usize, |a, &h| a.saturating_mul(h + 1))
}

/// What the hitting set weighs beside the holdings: the items standing for protected codes, and
/// each item's holders in the class before enforcement.
struct Guard<'a> {
    protected: &'a HashSet<u32>,
    before: HashMap<u32, usize>,
}

/// Enforces k^m on one class's item sets (sorted, distinct); returns, per member, the items removed
/// (sorted). Items in `protected` give up holdings last ([`cover`]).
fn enforce(
    sets: &mut [Vec<u32>],
    rows: &[Vec<(u32, u32)>],
    k: usize,
    m: usize,
    protected: &HashSet<u32>,
) -> Vec<Vec<u32>> {
    let mut gone: Vec<Vec<u32>> = vec![Vec::new(); sets.len()];
    if m == 0 {
        return gone;
    }
    let guard = Guard {
        protected,
        before: singletons(sets),
    };
    loop {
        let support = singletons(sets);
        // Items held by fewer than k: removed from their holders.
        let mut changed = false;
        for (s, g) in sets.iter_mut().zip(gone.iter_mut()) {
            s.retain(|it| {
                let keep = support[it] >= k;
                if !keep {
                    g.push(*it);
                    changed = true;
                }
                keep
            });
        }
        if changed {
            continue;
        }
        if m < 2 {
            break;
        }
        let drops = if m == 2 {
            pair_violations(sets, &support, k, Some((rows, &guard)))
        } else {
            set_violations(sets, &support, k, m, Some((rows, &guard)))
        };
        if drops.is_empty() {
            break;
        }
        for (member, it) in drops {
            let s = &mut sets[member];
            if let Ok(i) = s.binary_search(&it) {
                s.remove(i);
                gone[member].push(it);
            }
        }
    }
    for g in gone.iter_mut() {
        g.sort_unstable();
    }
    gone
}

fn singletons(sets: &[Vec<u32>]) -> HashMap<u32, usize> {
    let mut support: HashMap<u32, usize> = HashMap::new();
    for s in sets {
        for &it in s {
            *support.entry(it).or_default() += 1;
        }
    }
    support
}

/// Sorted items with repeats → (item, repeats).
fn runs(sorted: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &it in sorted {
        match out.last_mut() {
            Some((last, n)) if *last == it => *n += 1,
            _ => out.push((it, 1)),
        }
    }
    out
}

/// A class's rows per member and its [`Guard`], when the hitting set weighs them.
type Weights<'a> = (&'a [Vec<(u32, u32)>], &'a Guard<'a>);

/// How [`cover`] ranks an item it could drop.
struct Key {
    /// It stands for a protected code.
    protected: bool,
    /// Holdings the class would have lost of it with this drop, of its holders before.
    lost: (usize, usize),
    /// Holdings lost by this drop (every holder left when it falls below `k`).
    cost: usize,
    /// Violating sets it breaks.
    sets: usize,
    /// Holders left.
    left: usize,
    /// Event rows it stands for.
    rows: u32,
    id: u32,
}

impl Key {
    fn better(&self, b: &Key) -> std::cmp::Ordering {
        let both = self.protected && b.protected;
        self.protected
            .cmp(&b.protected)
            .then_with(|| match both {
                true => (self.lost.0 * b.lost.1).cmp(&(b.lost.0 * self.lost.1)),
                false => std::cmp::Ordering::Equal,
            })
            .then((self.cost * b.sets).cmp(&(b.cost * self.sets)))
            .then(b.left.cmp(&self.left))
            .then(self.rows.cmp(&b.rows))
            .then(b.id.cmp(&self.id))
    }
}

/// The items a member drops to break its violating sets (a greedy hitting set). An item standing
/// for a protected code goes only when every set left holds protected items alone; of those, the
/// one that has lost the smallest share of the class's holders. Otherwise each step takes the item
/// that costs fewest holdings per set broken: 1 while it keeps at least `k` holders after the drops
/// planned this round, else every holder left (it will go from all of them); then the item with
/// more holders left, whose prevalence one holding changes least; then the one standing for fewer
/// event rows, the larger id. Of a rare item and a frequent one that together are held by fewer
/// than `k`, the frequent one gives up this holding: the rare one would lose a larger share of its
/// holders (a top item held by 90 persons loses 1/90 of its prevalence per drop, one held by 5,000
/// loses 1/5,000), and no item is taken down that others still share.
fn cover(
    violating: &[Vec<u32>],
    weights: Option<(&[(u32, u32)], &Guard)>,
    support: &HashMap<u32, usize>,
    planned: &mut HashMap<u32, usize>,
    k: usize,
) -> Vec<u32> {
    let rows = weights.map(|w| w.0);
    let guard = weights.map(|w| w.1);
    let weight = |it: u32| -> u32 {
        rows.and_then(|r| {
            r.binary_search_by_key(&it, |&(i, _)| i)
                .ok()
                .map(|i| r[i].1)
        })
        .unwrap_or(1)
    };
    let key = |it: u32, sets: usize, planned: &HashMap<u32, usize>| -> Key {
        let left = support
            .get(&it)
            .copied()
            .unwrap_or(0)
            .saturating_sub(planned.get(&it).copied().unwrap_or(0));
        let cost = if left > k { 1 } else { left };
        let before = guard
            .and_then(|g| g.before.get(&it).copied())
            .unwrap_or(left)
            .max(1);
        let lost = if left > k {
            before.saturating_sub(left) + 1
        } else {
            before
        };
        Key {
            protected: guard.is_some_and(|g| g.protected.contains(&it)),
            lost: (lost, before),
            cost,
            sets,
            left,
            rows: weight(it),
            id: it,
        }
    };
    let mut sets_of: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, set) in violating.iter().enumerate() {
        for &it in set {
            sets_of.entry(it).or_default().push(i);
        }
    }
    let mut count: Vec<(u32, usize)> = sets_of.iter().map(|(&it, v)| (it, v.len())).collect();
    count.sort_unstable();
    let mut broken = vec![false; violating.len()];
    let mut out = Vec::new();
    loop {
        let best = count
            .iter()
            .filter(|&&(_, n)| n > 0)
            .map(|&(it, n)| key(it, n, planned))
            .min_by(|a, b| a.better(b));
        let Some(best) = best.map(|b| b.id) else {
            break;
        };
        *planned.entry(best).or_default() += 1;
        out.push(best);
        for &i in sets_of.get(&best).map_or(&[][..], Vec::as_slice) {
            if !std::mem::replace(&mut broken[i], true) {
                for it in &violating[i] {
                    if let Ok(j) = count.binary_search_by_key(it, |&(x, _)| x) {
                        count[j].1 -= 1;
                    }
                }
            }
        }
    }
    out
}

/// For m = 2: pair supports counted member by member (a dense triangular table over the class's
/// items when it fits, a hash map otherwise); every member holding pairs of support in 1..k drops
/// items until none is left ([`cover`]).
fn pair_violations(
    sets: &[Vec<u32>],
    support: &HashMap<u32, usize>,
    k: usize,
    rows: Option<Weights>,
) -> Vec<(usize, u32)> {
    let mut index: Vec<u32> = support.keys().copied().collect();
    index.sort_unstable();
    let f = index.len();
    let pos = |it: u32| index.binary_search(&it).unwrap_or(0);
    let dense = f <= 4096;
    let tri = |a: usize, b: usize| b * (b - 1) / 2 + a; // a < b
    let mut table: Vec<u32> = if dense {
        vec![0; f * f.saturating_sub(1) / 2 + 1]
    } else {
        Vec::new()
    };
    let mut sparse: HashMap<u64, u32> = HashMap::new();
    let local: Vec<Vec<usize>> = sets
        .iter()
        .map(|s| s.iter().map(|&it| pos(it)).collect())
        .collect();
    for s in &local {
        for (j, &b) in s.iter().enumerate() {
            for &a in &s[..j] {
                if dense {
                    table[tri(a, b)] += 1;
                } else {
                    *sparse.entry(((a as u64) << 32) | b as u64).or_default() += 1;
                }
            }
        }
    }
    let count = |a: usize, b: usize| -> usize {
        if dense {
            table[tri(a, b)] as usize
        } else {
            sparse
                .get(&(((a as u64) << 32) | b as u64))
                .copied()
                .unwrap_or(0) as usize
        }
    };
    let mut drops = Vec::new();
    let mut planned = HashMap::new();
    for (member, s) in local.iter().enumerate() {
        let mut bad: Vec<Vec<u32>> = Vec::new();
        for (j, &b) in s.iter().enumerate() {
            for &a in &s[..j] {
                if count(a, b) < k {
                    bad.push(vec![index[a], index[b]]);
                }
            }
        }
        if !bad.is_empty() {
            let mine = rows.map(|(r, g)| (r[member].as_slice(), g));
            let gone = cover(&bad, mine, support, &mut planned, k);
            drops.extend(gone.into_iter().map(|it| (member, it)));
        }
    }
    drops
}

/// For m ≥ 3: a depth-first walk over item sets of 2..=m items with member bitsets; a set held by
/// 1..k members is broken by each of them ([`cover`]). Sets are extended only while their
/// support is at least k (a subset of a violating set already violates).
fn set_violations(
    sets: &[Vec<u32>],
    support: &HashMap<u32, usize>,
    k: usize,
    m: usize,
    rows: Option<Weights>,
) -> Vec<(usize, u32)> {
    let mut index: Vec<u32> = support.keys().copied().collect();
    index.sort_unstable();
    let words = sets.len().div_ceil(64);
    let mut bits: Vec<Vec<u64>> = vec![vec![0; words]; index.len()];
    for (member, s) in sets.iter().enumerate() {
        for it in s {
            if let Ok(i) = index.binary_search(it) {
                bits[i][member / 64] |= 1 << (member % 64);
            }
        }
    }
    let mut found: Vec<(Vec<u32>, Vec<u64>)> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..index.len() {
        stack.push(i);
        walk(&bits, &mut stack, &bits[i].clone(), k, m, &mut found);
        stack.pop();
    }
    let mut bad: Vec<Vec<Vec<u32>>> = vec![Vec::new(); sets.len()];
    for (set, holders) in found {
        let items: Vec<u32> = set.iter().map(|&i| index[i as usize]).collect();
        for (member, b) in bad.iter_mut().enumerate() {
            if holders[member / 64] >> (member % 64) & 1 == 1 {
                b.push(items.clone());
            }
        }
    }
    let mut drops = Vec::new();
    let mut planned = HashMap::new();
    for (member, b) in bad.iter().enumerate() {
        if !b.is_empty() {
            let mine = rows.map(|(r, g)| (r[member].as_slice(), g));
            let gone = cover(b, mine, support, &mut planned, k);
            drops.extend(gone.into_iter().map(|it| (member, it)));
        }
    }
    drops
}

fn walk(
    bits: &[Vec<u64>],
    stack: &mut Vec<usize>,
    current: &[u64],
    k: usize,
    m: usize,
    found: &mut Vec<(Vec<u32>, Vec<u64>)>,
) {
    if stack.len() >= m {
        return;
    }
    let last = *stack.last().unwrap_or(&0);
    for j in last + 1..bits.len() {
        let and: Vec<u64> = current.iter().zip(&bits[j]).map(|(a, b)| a & b).collect();
        let s: usize = and.iter().map(|w| w.count_ones() as usize).sum();
        if s == 0 {
            continue;
        }
        stack.push(j);
        if s < k {
            found.push((stack.iter().map(|&i| i as u32).collect(), and));
        } else {
            walk(bits, stack, &and, k, m, found);
        }
        stack.pop();
    }
}

/// The search over the lattice, remembering every node evaluated and the best valid one.
struct Search<'a> {
    data: &'a SetValued,
    cfg: &'a KmConfig,
    /// The protected codes of `cfg`, found once for the whole search.
    protection: Protection,
    seen: HashMap<Vec<usize>, Option<f64>>,
    best: Option<(Vec<usize>, f64)>,
}

impl Search<'_> {
    /// The score of a node ([`Evaluation::score`]; `None`: invalid), evaluated once.
    fn score(&mut self, levels: &[usize]) -> Option<f64> {
        if let Some(s) = self.seen.get(levels) {
            return *s;
        }
        let node = self.data.node_of(levels);
        let s = self
            .data
            .evaluate(
                self.cfg,
                &self.protection,
                &node,
                &KmCut::none(self.data, &node),
            )
            .map(|e| e.score(self.cfg));
        self.seen.insert(levels.to_vec(), s);
        if let Some(x) = s {
            let better = self
                .best
                .as_ref()
                .is_none_or(|(l, b)| (x, levels) < (*b, l.as_slice()));
            if better {
                self.best = Some((levels.to_vec(), x));
            }
        }
        s
    }

    fn exhaustive(&mut self, heights: &[usize]) {
        let mut levels = vec![0usize; heights.len()];
        loop {
            self.score(&levels.clone());
            // Next node in mixed radix.
            let mut d = 0;
            loop {
                if d == heights.len() {
                    return;
                }
                if levels[d] < heights[d] {
                    levels[d] += 1;
                    break;
                }
                levels[d] = 0;
                d += 1;
            }
        }
    }

    /// From the top, step to the child (one dimension one level down) of least loss among the
    /// valid ones; continue while a child exists, stop after three steps without improving on the
    /// best node seen. [`Search::refine`] then climbs from the best node to its best neighbours.
    fn greedy(&mut self, heights: &[usize]) {
        let mut node = heights.to_vec();
        let mut since_best = 0;
        let mut best = self.score(&node).unwrap_or(f64::INFINITY);
        while since_best < 3 {
            let mut next: Option<(f64, Vec<usize>)> = None;
            for d in 0..node.len() {
                if node[d] == 0 {
                    continue;
                }
                let mut child = node.clone();
                child[d] -= 1;
                if let Some(s) = self.score(&child) {
                    if next.as_ref().is_none_or(|(b, c)| (s, &child) < (*b, c)) {
                        next = Some((s, child));
                    }
                }
            }
            let Some((s, child)) = next else { break };
            node = child;
            if s < best {
                best = s;
                since_best = 0;
            } else {
                since_best += 1;
            }
        }
    }
}

impl Search<'_> {
    /// From the best node, moves to the best neighbour (one dimension one level up or down) while
    /// that improves the objective.
    fn refine(&mut self, heights: &[usize]) {
        while let Some((start, score)) = self.best.clone() {
            for d in 0..start.len() {
                for up in [false, true] {
                    let mut n = start.clone();
                    match up {
                        true if n[d] < heights[d] => n[d] += 1,
                        false if n[d] > 0 => n[d] -= 1,
                        _ => continue,
                    }
                    self.score(&n);
                }
            }
            if self.best.as_ref().is_none_or(|(_, b)| *b >= score) {
                return;
            }
        }
    }
}

/// Violations of (k, k^m)-anonymity, counted as the enforcement counts them: per class (persons
/// with the same `classes` value), the items held by fewer than `k` of the class, then (nothing
/// else being wrong) the removals the sets of 2..=m items held by 1..k persons would need; 0 when
/// the data satisfy the model. `items[p]` is person p's items (any order, repeats allowed). For
/// checking released data at any size.
pub fn violations(classes: &[u32], items: Vec<Vec<u32>>, k: usize, m: usize) -> usize {
    let mut by_class: HashMap<u32, Vec<Vec<u32>>> = HashMap::new();
    for (&c, mut s) in classes.iter().zip(items) {
        s.sort_unstable();
        s.dedup();
        by_class.entry(c).or_default().push(s);
    }
    let mut broken = 0;
    for sets in by_class.values() {
        if sets.len() < k {
            broken += sets.len();
            continue;
        }
        if m == 0 {
            continue;
        }
        let support = singletons(sets);
        let rare: usize = sets
            .iter()
            .map(|s| s.iter().filter(|it| support[it] < k).count())
            .sum();
        broken += rare;
        if rare == 0 && m >= 2 {
            broken += if m == 2 {
                pair_violations(sets, &support, k, None).len()
            } else {
                set_violations(sets, &support, k, m, None).len()
            };
        }
    }
    broken
}

/// Violations of (k, k^m)-anonymity counted by brute force: for every person kept (`Some`) and
/// every set of at most `m` of their items (the empty set included), whether fewer than `k`
/// persons of the same class hold it; returns the number of (person, set) pairs that violate. For
/// checking outputs on small data (it enumerates every subset).
pub fn brute_force_violations(
    classes: &[u32],
    items: &[Option<Vec<u32>>],
    k: usize,
    m: usize,
) -> usize {
    let mut violations = 0;
    for (p, mine) in items.iter().enumerate() {
        let Some(mine) = mine else { continue };
        let mut subsets: Vec<Vec<u32>> = vec![Vec::new()];
        for &it in mine {
            let more: Vec<Vec<u32>> = subsets
                .iter()
                .filter(|s| s.len() < m)
                .map(|s| {
                    let mut t = s.clone();
                    t.push(it);
                    t
                })
                .collect();
            subsets.extend(more);
        }
        for s in subsets {
            let holders = items
                .iter()
                .enumerate()
                .filter(|(q, other)| {
                    classes[*q] == classes[p]
                        && other
                            .as_ref()
                            .is_some_and(|o| s.iter().all(|it| o.binary_search(it).is_ok()))
                })
                .count();
            if holders < k {
                violations += 1;
            }
        }
    }
    violations
}
