//! Clustering into entities: union-find over links in descending score order, refusing merges that
//! would put two conflicting records into one cluster.

use crate::blocking::unpack;
use crate::prepare::{Side, NULL};

/// Attribute rules that make two nodes conflict.
pub(crate) struct Conflicts<'a> {
    /// Features that all differ (both present) → conflict.
    pub all_differ: Vec<usize>,
    /// (source feature, local id feature).
    pub same_source: Option<(usize, usize)>,
    /// Link mode: at most one node per side.
    pub one_to_one: bool,
    pub sides: (&'a Side, &'a Side),
    pub n_left: usize,
    pub dedupe: bool,
}

impl Conflicts<'_> {
    fn value(&self, f: usize, node: u32) -> u32 {
        let n = node as usize;
        if n < self.n_left {
            self.sides.0.get(f, n)
        } else {
            self.sides.1.get(f, n - self.n_left)
        }
    }

    fn conflict(&self, x: u32, y: u32) -> bool {
        if self.one_to_one
            && !self.dedupe
            && ((x as usize) < self.n_left) == ((y as usize) < self.n_left)
        {
            return true;
        }
        if !self.all_differ.is_empty()
            && self.all_differ.iter().all(|f| {
                let (a, b) = (self.value(*f, x), self.value(*f, y));
                a != NULL && b != NULL && a != b
            })
        {
            return true;
        }
        if let Some((s, l)) = self.same_source {
            let (sa, sb) = (self.value(s, x), self.value(s, y));
            let (la, lb) = (self.value(l, x), self.value(l, y));
            if sa != NULL && sa == sb && la != NULL && lb != NULL && la != lb {
                return true;
            }
        }
        false
    }
}

/// Outcome of clustering.
#[derive(Debug, Clone, Default)]
pub struct ClusterStats {
    /// Links at or above the threshold.
    pub links: u64,
    /// Links that joined two clusters.
    pub merges: u64,
    /// Links refused because the merge would join conflicting records.
    pub refused: u64,
    /// Links refused because the clusters were too large to check.
    pub refused_size: u64,
}

/// Clusters `n` graph nodes. `edges` are (packed pair, weight) over graph nodes (link mode: right nodes
/// offset by the left count); `is_negative` says whether two nodes must not be joined.
pub(crate) fn cluster(
    n: usize,
    mut edges: Vec<(u64, f64)>,
    is_negative: impl Fn(u32, u32) -> bool,
    conflicts: &Conflicts,
) -> (Vec<u32>, ClusterStats) {
    let mut stats = ClusterStats {
        links: edges.len() as u64,
        ..Default::default()
    };
    edges.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut sets = crate::UnionFind::new(n);
    let mut members: Vec<Vec<u32>> = Vec::new();
    let mut slot: Vec<u32> = vec![u32::MAX; n];
    let get_members = |slot: &mut Vec<u32>, members: &mut Vec<Vec<u32>>, root: u32| -> usize {
        if slot[root as usize] == u32::MAX {
            slot[root as usize] = members.len() as u32;
            members.push(vec![root]);
        }
        slot[root as usize] as usize
    };
    for (p, _) in edges {
        let (a, b) = unpack(p);
        let (ra, rb) = (sets.find(a), sets.find(b));
        if ra == rb {
            continue;
        }
        let sa = get_members(&mut slot, &mut members, ra);
        let sb = get_members(&mut slot, &mut members, rb);
        let (ma, mb) = (&members[sa], &members[sb]);
        if (ma.len() as u64) * (mb.len() as u64) > 1_000_000 {
            stats.refused_size += 1;
            continue;
        }
        let bad = ma.iter().any(|x| {
            mb.iter()
                .any(|y| conflicts.conflict(*x, *y) || is_negative(*x, *y))
        });
        if bad {
            stats.refused += 1;
            continue;
        }
        stats.merges += 1;
        let (big, small, root, child) = if ma.len() >= mb.len() {
            (sa, sb, ra, rb)
        } else {
            (sb, sa, rb, ra)
        };
        let moved = std::mem::take(&mut members[small]);
        members[big].extend(moved);
        sets.join(root, child);
        slot[child as usize] = u32::MAX;
    }
    (sets.roots(), stats)
}
