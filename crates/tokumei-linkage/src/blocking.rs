//! Blocking: candidate pairs as the union of several key rules, each pair produced once.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::prepare::{Side, NULL};

/// Missing key.
pub(crate) const KEY_NULL: u128 = u128::MAX;

/// A rule with its keys computed per node.
pub(crate) struct RuleKeys {
    pub name: String,
    pub left: Vec<u128>,
    pub right: Vec<u128>,
    /// Whether `right` differs from `left` in construction (a swapped rule).
    pub asymmetric: bool,
    /// Keys of blocks skipped as too large.
    pub skipped: HashSet<u128>,
}

/// What one rule contributed.
#[derive(Debug, Clone, Default)]
pub struct RuleStats {
    /// Rule name.
    pub name: String,
    /// New candidate pairs (not produced by an earlier rule).
    pub new_pairs: u64,
    /// Blocks skipped because they exceeded the limit.
    pub skipped_blocks: u64,
    /// Pairs in the skipped blocks.
    pub skipped_pairs: u64,
    /// Records in the largest skipped block.
    pub largest_skipped_block: u64,
}

/// Key of every node from the feature ids of its key parts.
pub(crate) fn keys(side: &Side, feats: &[usize]) -> Vec<u128> {
    (0..side.len())
        .into_par_iter()
        .with_min_len(4096)
        .map(|n| {
            let mut k: u128 = 0;
            for f in feats {
                let id = side.get(*f, n);
                if id == NULL {
                    return KEY_NULL;
                }
                k = (k << 32) | id as u128;
            }
            k
        })
        .collect()
}

/// A block: its key, its range of left entries and its range of right entries.
type Block = (u128, (usize, usize), (usize, usize));

/// Packs a pair.
#[inline]
pub(crate) fn pack(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

/// Unpacks a pair.
#[inline]
pub(crate) fn unpack(p: u64) -> (u32, u32) {
    ((p >> 32) as u32, p as u32)
}

#[inline]
pub(crate) fn produced_by(rule: &RuleKeys, a: u32, b: u32, dedupe: bool) -> bool {
    let (la, rb) = (rule.left[a as usize], rule.right[b as usize]);
    if la != KEY_NULL && la == rb && !rule.skipped.contains(&la) {
        return true;
    }
    if dedupe && rule.asymmetric {
        let (ra, lb) = (rule.right[a as usize], rule.left[b as usize]);
        if lb != KEY_NULL && lb == ra && !rule.skipped.contains(&lb) {
            return true;
        }
    }
    false
}

fn sorted_entries(keys: &[u128]) -> Vec<(u128, u32)> {
    let mut v: Vec<(u128, u32)> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| **k != KEY_NULL)
        .map(|(i, k)| (*k, i as u32))
        .collect();
    v.par_sort_unstable();
    v
}

fn runs(v: &[(u128, u32)]) -> Vec<(u128, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i + 1;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        out.push((v[i].0, i, j));
        i = j;
    }
    out
}

/// The blocks of one rule that are kept, with the rule's entries sorted by key.
pub(crate) struct BlockPlan {
    left: Vec<(u128, u32)>,
    right: Vec<(u128, u32)>,
    self_join: bool,
    /// Whether the right entries are another table's (link).
    right_is_other_side: bool,
    blocks: Vec<Block>,
}

impl BlockPlan {
    /// Pairs of a kept block.
    fn pairs(&self, (_, (a, b), (c, d)): &Block) -> u64 {
        let (nl, nr) = ((b - a) as u64, (d - c) as u64);
        if self.self_join {
            nl * nl.saturating_sub(1) / 2
        } else {
            nl * nr
        }
    }

    /// The pairs of the kept blocks: the rule's candidate pairs, exactly, unless the rule swaps
    /// columns in a dedupe (its blocks then meet each pair in both orientations and each node with
    /// itself).
    pub(crate) fn kept_pairs(&self) -> Option<u64> {
        let exact = self.self_join || self.right_is_other_side;
        exact.then(|| self.blocks.iter().map(|b| self.pairs(b)).sum())
    }

    /// Keys of the kept blocks with more than `threshold` pairs.
    pub(crate) fn large_blocks(&self, threshold: u64) -> HashSet<u128> {
        self.blocks
            .iter()
            .filter(|b| self.pairs(b) > threshold)
            .map(|b| b.0)
            .collect()
    }
}

/// The blocks of rule `rule`: blocks over `max_block_pairs` are skipped (their keys recorded in the
/// rule and counted in the statistics).
pub(crate) fn plan(
    rule: &mut RuleKeys,
    dedupe: bool,
    max_block_pairs: u64,
) -> (BlockPlan, RuleStats) {
    let left = sorted_entries(&rule.left);
    let self_join = dedupe && !rule.asymmetric;
    let right = if self_join {
        Vec::new()
    } else {
        sorted_entries(&rule.right)
    };
    let mut blocks: Vec<Block> = Vec::new();
    if self_join {
        for (key, a, b) in runs(&left) {
            if b - a > 1 {
                blocks.push((key, (a, b), (a, b)));
            }
        }
    } else {
        let rr = runs(&right);
        let mut j = 0;
        for (key, a, b) in runs(&left) {
            while j < rr.len() && rr[j].0 < key {
                j += 1;
            }
            if j < rr.len() && rr[j].0 == key {
                blocks.push((key, (a, b), (rr[j].1, rr[j].2)));
            }
        }
    }
    let mut stats = RuleStats {
        name: rule.name.clone(),
        ..Default::default()
    };
    let mut plan = BlockPlan {
        left,
        right,
        self_join,
        right_is_other_side: !dedupe,
        blocks: Vec::new(),
    };
    for block in blocks {
        let (_, (a, b), (c, d)) = block;
        let pairs = plan.pairs(&block);
        if pairs > max_block_pairs {
            let records = if self_join { b - a } else { b - a + d - c } as u64;
            stats.skipped_blocks += 1;
            stats.skipped_pairs += pairs;
            stats.largest_skipped_block = stats.largest_skipped_block.max(records);
            rule.skipped.insert(block.0);
        } else {
            plan.blocks.push(block);
        }
    }
    (plan, stats)
}

/// Candidate pairs of rule `k` that no earlier rule produced. Link pairs are (left node, right node);
/// dedupe pairs are (smaller node, larger node).
pub(crate) fn generate(
    rules: &mut [RuleKeys],
    k: usize,
    dedupe: bool,
    max_block_pairs: u64,
) -> (Vec<u64>, RuleStats) {
    let (plan, mut stats) = plan(&mut rules[k], dedupe, max_block_pairs);
    let (earlier, rest) = rules.split_at(k);
    let rule = &rest[0];
    let (left, right, self_join) = (&plan.left, &plan.right, plan.self_join);
    let chunks: Vec<Vec<u64>> = plan
        .blocks
        .par_chunks(256)
        .map(|chunk| {
            let mut out = Vec::new();
            let mut emit = |a: u32, b: u32| {
                if !earlier.iter().any(|r| produced_by(r, a, b, dedupe)) {
                    out.push(pack(a, b));
                }
            };
            for (_, (a, b), (c, d)) in chunk {
                if self_join {
                    let members = &left[*a..*b];
                    for x in 0..members.len() {
                        for y in x + 1..members.len() {
                            emit(members[x].1, members[y].1);
                        }
                    }
                } else {
                    for l in &left[*a..*b] {
                        for r in &right[*c..*d] {
                            let (x, y) = (l.1, r.1);
                            if !dedupe {
                                emit(x, y);
                            } else if x != y {
                                // Both orientations may hold; keep one.
                                if x < y || rule.left[y as usize] != rule.right[x as usize] {
                                    emit(x.min(y), x.max(y));
                                }
                            }
                        }
                    }
                }
            }
            out
        })
        .collect();
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut pairs = Vec::with_capacity(total);
    for c in chunks {
        pairs.extend(c);
    }
    stats.new_pairs = pairs.len() as u64;
    (pairs, stats)
}
