//! Search over the generalization lattice: the global optimum with monotonicity pruning and lower bounds,
//! and a greedy top-down heuristic for lattices too large to enumerate.
//!
//! Optimal search: nodes are visited in ascending order of a lower bound of the metric that needs no
//! grouping (Loss without suppression cost, precomputed non-uniform entropy); the search stops when the
//! bound reaches the best score found, since no remaining node can be better. What is pruned:
//!
//! - When validity is monotone in generalization (k-anonymity, distinct l-diversity, k-map and the highest
//!   risk threshold with any suppression limit; every class-level model without suppression), the validity
//!   of an unknown node is found by a binary search along a chain of unknown nodes upwards from it: an
//!   invalid node marks all its predecessors invalid, a valid node all its successors valid. With no
//!   suppression allowed, a valid node's Loss or entropy equals its bound, so it is not grouped at all.
//! - When it is not (entropy/recursive l-diversity, t-closeness or the average risk with suppression), a node
//!   is skipped only if its count-based part (k-anonymity, k-map, the distinct values that l-diversity
//!   implies) already needs more suppression than allowed — then so do all its predecessors; every other node
//!   whose bound is below the best score is evaluated.
//! - Metrics without a bound (discernibility, AECS, precision) are evaluated on every node not known to be
//!   invalid, except that DM* and the monotonic entropy skip the successors of a valid node.
//!
//! Nodes are grouped from the cells of a cached, more specific node when one is available (fewer rows to
//! group), otherwise from the distinct tuples.

use std::cmp::Ordering;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use std::sync::Arc;

use crate::engine::{Cells, NodeEval, Prepared, Score};

const UNKNOWN: u8 = 0;
const INVALID: u8 = 1;
const VALID: u8 = 2;
const DOMINATED: u8 = 4;

/// Statistics of a search.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchStats {
    /// Nodes in the lattice.
    pub lattice_nodes: u64,
    /// Transformations grouped and checked.
    pub evaluated: u64,
    /// Whether the result is the global optimum (false for the heuristic).
    pub optimal: bool,
    /// Search wall time in milliseconds.
    pub millis: f64,
}

/// The best node found, if any transformation is valid.
pub(crate) struct Found {
    pub eval: Option<NodeEval>,
    pub score: Option<Score>,
    pub stats: SearchStats,
}

struct Lattice {
    radix: Vec<u64>,
    stride: Vec<u64>,
    total: u64,
}

impl Lattice {
    fn new(heights: &[u32]) -> Option<Self> {
        let radix: Vec<u64> = heights.iter().map(|&h| u64::from(h) + 1).collect();
        let mut stride = vec![1u64; radix.len()];
        let mut total: u64 = 1;
        for i in (0..radix.len()).rev() {
            stride[i] = total;
            total = total.checked_mul(radix[i])?;
        }
        Some(Lattice {
            radix,
            stride,
            total,
        })
    }
    fn levels(&self, mut idx: u64) -> Vec<u32> {
        let mut out = vec![0u32; self.radix.len()];
        for (o, &st) in out.iter_mut().zip(&self.stride) {
            *o = (idx / st) as u32;
            idx %= st;
        }
        out
    }
    /// Marks `start` and all nodes below (`up == false`) or above it with `flag`.
    fn mark(&self, state: &mut [u8], start: u64, up: bool, flag: u8) {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if state[i as usize] & flag != 0 {
                continue;
            }
            state[i as usize] |= flag;
            let lv = self.levels(i);
            for ((&l, &r), &st) in lv.iter().zip(&self.radix).zip(&self.stride) {
                if up {
                    if u64::from(l) + 1 < r {
                        stack.push(i + st);
                    }
                } else if l > 0 {
                    stack.push(i - st);
                }
            }
        }
    }
}

fn better(a: &(Score, u32, u64), b: &(Score, u32, u64)) -> bool {
    match a.0.compare(&b.0) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => (a.1, a.2) < (b.1, b.2),
    }
}

/// Recently evaluated nodes' cells, to group coarser nodes from them instead of from all tuples.
struct CellCache {
    entries: std::collections::VecDeque<Arc<Cells>>,
    total: usize,
    budget: usize,
}

const CACHE_ENTRIES: usize = 192;

impl CellCache {
    fn pick(&self, levels: &[u32]) -> Option<Arc<Cells>> {
        let mut best: Option<&Arc<Cells>> = None;
        for e in &self.entries {
            if e.levels.iter().zip(levels).all(|(a, b)| a <= b)
                && best.is_none_or(|b| e.rep.len() < b.rep.len())
            {
                best = Some(e);
            }
        }
        best.cloned()
    }
    fn insert(&mut self, c: Arc<Cells>) {
        self.total += c.rep.len();
        self.entries.push_back(c);
        while (self.total > self.budget || self.entries.len() > CACHE_ENTRIES)
            && self.entries.len() > 1
        {
            if let Some(old) = self.entries.pop_front() {
                self.total -= old.rep.len();
            }
        }
    }
}

/// Number of nodes evaluated together (fixed so that results do not depend on the thread count).
const BATCH: usize = 8;

pub(crate) fn optimal(p: &Prepared) -> Option<Found> {
    let started = Instant::now();
    let heights = p.heights();
    let lat = Lattice::new(&heights)?;
    let total = lat.total;
    let n = usize::try_from(total).ok()?;
    // Bounds and order.
    let bounds: Vec<Option<Score>> = (0..total)
        .into_par_iter()
        .map(|i| p.lower_bound(&lat.levels(i)))
        .collect();
    let heights_of: Vec<u32> = (0..total).map(|i| lat.levels(i).iter().sum()).collect();
    let mut order: Vec<u64> = (0..total).collect();
    order.sort_by(|&a, &b| {
        let (ba, bb) = (&bounds[a as usize], &bounds[b as usize]);
        let c = match (ba, bb) {
            (Some(x), Some(y)) => x.compare(y),
            _ => Ordering::Equal,
        };
        c.then(heights_of[a as usize].cmp(&heights_of[b as usize]))
            .then(a.cmp(&b))
    });
    let mut s = SearchState {
        p,
        lat: &lat,
        heights: &heights,
        heights_of: &heights_of,
        state: vec![UNKNOWN; n],
        best: None,
        best_eval: None,
        evaluated: 0,
        cache: CellCache {
            entries: std::collections::VecDeque::new(),
            total: 0,
            budget: (p.base.rep.len() * 4).max(2_000_000),
        },
    };
    let monotone = p.monotone_privacy;
    let bound_is_score = p.score_is_bound_when_valid();
    let mut pos = 0usize;
    while pos < order.len() {
        let mut batch: Vec<u64> = Vec::with_capacity(BATCH);
        let mut stop = false;
        while pos < order.len() && batch.len() < BATCH {
            let i = order[pos];
            if let (Some(b), Some((bs, _, _))) = (&bounds[i as usize], &s.best) {
                if b.compare(bs) != Ordering::Less {
                    stop = true;
                    break;
                }
            }
            let st = s.state[i as usize];
            if st & (INVALID | DOMINATED | SCORED) != 0 {
                pos += 1;
                continue;
            }
            if monotone && st & VALID == 0 {
                if batch.is_empty() {
                    // Classify by a binary search along a chain of unknown nodes upwards from here.
                    s.classify_chain(i, &bounds);
                    continue; // re-examine `i` with its state known
                }
                break;
            }
            if st & VALID != 0 && bound_is_score {
                if let Some(b) = &bounds[i as usize] {
                    s.consider(i, b.clone(), None);
                    s.state[i as usize] |= SCORED;
                    pos += 1;
                    continue;
                }
            }
            pos += 1;
            batch.push(i);
        }
        if batch.is_empty() {
            if stop {
                break;
            }
            continue;
        }
        s.evaluate_batch(&batch);
        if stop {
            break;
        }
    }
    Some(Found {
        score: s.best.map(|b| b.0),
        eval: s.best_eval,
        stats: SearchStats {
            lattice_nodes: total,
            evaluated: s.evaluated,
            optimal: true,
            millis: started.elapsed().as_secs_f64() * 1e3,
        },
    })
}

const SCORED: u8 = 8;

struct SearchState<'a> {
    p: &'a Prepared,
    lat: &'a Lattice,
    heights: &'a [u32],
    heights_of: &'a [u32],
    state: Vec<u8>,
    best: Option<(Score, u32, u64)>,
    best_eval: Option<NodeEval>,
    evaluated: u64,
    cache: CellCache,
}

impl SearchState<'_> {
    fn consider(&mut self, i: u64, score: Score, e: Option<NodeEval>) {
        let cand = (score, self.heights_of[i as usize], i);
        let replace = match &self.best {
            None => true,
            Some(b) => better(&cand, b),
        };
        if replace {
            self.best = Some(cand);
            self.best_eval = Some(match e {
                Some(e) => e,
                None => self
                    .p
                    .evaluate_from(&self.lat.levels(i), &self.p.base, false),
            });
        }
    }

    fn evaluate_batch(&mut self, batch: &[u64]) {
        let p = self.p;
        let lat = self.lat;
        let sources: Vec<Option<Arc<Cells>>> = batch
            .iter()
            .map(|&i| self.cache.pick(&lat.levels(i)))
            .collect();
        let results: Vec<(u64, NodeEval)> = batch
            .par_iter()
            .zip(&sources)
            .map(|(&i, src)| {
                let levels = lat.levels(i);
                (
                    i,
                    p.evaluate_from(&levels, src.as_deref().unwrap_or(&p.base), false),
                )
            })
            .collect();
        self.evaluated += results.len() as u64;
        for ((i, e), src) in results.into_iter().zip(&sources) {
            self.record(i, e, src.as_ref().map(|s| s.rep.len()));
        }
    }

    fn record(&mut self, i: u64, mut e: NodeEval, from: Option<usize>) {
        let p = self.p;
        if let Some(c) = e.cells.take() {
            let from = from.unwrap_or(p.base.rep.len());
            if c.rep.len() < from {
                self.cache.insert(c);
            }
        }
        self.state[i as usize] |= SCORED;
        if e.valid {
            if p.monotone_privacy {
                self.lat.mark(&mut self.state, i, true, VALID);
            }
            if p.metric_monotone() {
                let lv = self.lat.levels(i);
                for ((&l, &h), &st) in lv.iter().zip(self.heights).zip(&self.lat.stride) {
                    if l < h {
                        self.lat.mark(&mut self.state, i + st, true, DOMINATED);
                    }
                }
            }
            let score = p.score(&e);
            self.consider(i, score, Some(e));
        } else if p.monotone_privacy || e.mono_invalid {
            self.lat.mark(&mut self.state, i, false, INVALID);
        }
    }

    /// Binary search for the lowest valid node on a chain of unknown nodes from `start` upwards
    /// (validity is monotone, so the chain is invalid up to some point and valid after it).
    fn classify_chain(&mut self, start: u64, bounds: &[Option<Score>]) {
        let lat = self.lat;
        let mut chain = vec![start];
        let mut cur = start;
        loop {
            let lv = lat.levels(cur);
            let mut next: Option<u64> = None;
            for ((&l, &h), &st) in lv.iter().zip(self.heights).zip(&lat.stride) {
                if l < h {
                    let j = cur + st;
                    if self.state[j as usize] & (VALID | INVALID) != 0 {
                        continue;
                    }
                    let better_bound = match (next, &bounds[j as usize]) {
                        (None, _) => true,
                        (Some(k), Some(bj)) => match &bounds[k as usize] {
                            Some(bk) => bj.compare(bk) == Ordering::Less,
                            None => false,
                        },
                        (Some(_), None) => false,
                    };
                    if better_bound {
                        next = Some(j);
                    }
                }
            }
            match next {
                Some(j) => {
                    chain.push(j);
                    cur = j;
                }
                None => break,
            }
        }
        let (mut lo, mut hi) = (0usize, chain.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let i = chain[mid];
            let st = self.state[i as usize];
            let valid = if st & VALID != 0 {
                true
            } else if st & INVALID != 0 {
                false
            } else {
                let src = self.cache.pick(&lat.levels(i));
                let e = self.p.evaluate_from(
                    &lat.levels(i),
                    src.as_deref().unwrap_or(&self.p.base),
                    false,
                );
                self.evaluated += 1;
                let v = e.valid;
                self.record(i, e, src.as_ref().map(|s| s.rep.len()));
                v
            };
            if valid {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        // Nothing on the chain was left unknown at `start`: if every probe was valid down to index 0 the
        // start is tagged valid, otherwise a probe at or above it was invalid and tagged it.
        if self.state[start as usize] & (VALID | INVALID) == 0 {
            let src = self.cache.pick(&lat.levels(start));
            let e = self.p.evaluate_from(
                &lat.levels(start),
                src.as_deref().unwrap_or(&self.p.base),
                false,
            );
            self.evaluated += 1;
            self.record(start, e, src.as_ref().map(|s| s.rep.len()));
        }
    }
}

/// Greedy top-down search: from the most general node, repeatedly move to the best valid direct
/// predecessor until none is valid or the budget is spent. Returns the best valid node seen.
pub(crate) fn heuristic(p: &Prepared, max_evaluations: usize) -> Found {
    let started = Instant::now();
    let heights = p.heights();
    let total = heights
        .iter()
        .fold(1u64, |acc, &h| acc.saturating_mul(u64::from(h) + 1));
    let mut current = heights.clone();
    let top = p.evaluate(&current);
    let mut evaluated = 1u64;
    if !top.valid {
        return Found {
            eval: None,
            score: None,
            stats: SearchStats {
                lattice_nodes: total,
                evaluated,
                optimal: false,
                millis: started.elapsed().as_secs_f64() * 1e3,
            },
        };
    }
    let mut best_score = p.score(&top);
    let mut best = top;
    loop {
        let preds: Vec<Vec<u32>> = (0..current.len())
            .filter(|&d| current[d] > 0)
            .map(|d| {
                let mut l = current.clone();
                l[d] -= 1;
                l
            })
            .collect();
        if preds.is_empty() || evaluated as usize + preds.len() > max_evaluations {
            break;
        }
        let evals: Vec<NodeEval> = preds.par_iter().map(|l| p.evaluate(l)).collect();
        evaluated += evals.len() as u64;
        let mut step: Option<(Score, NodeEval)> = None;
        for e in evals {
            if !e.valid {
                continue;
            }
            let s = p.score(&e);
            let take = match &step {
                None => true,
                Some((bs, _)) => s.compare(bs) == Ordering::Less,
            };
            if take {
                step = Some((s, e));
            }
        }
        match step {
            None => break,
            Some((s, e)) => {
                current = e.levels.clone();
                if s.compare(&best_score) != Ordering::Greater {
                    best_score = s;
                    best = e;
                }
            }
        }
    }
    Found {
        eval: Some(best),
        score: Some(best_score),
        stats: SearchStats {
            lattice_nodes: total,
            evaluated,
            optimal: false,
            millis: started.elapsed().as_secs_f64() * 1e3,
        },
    }
}
