//! The one union-find (disjoint sets) of the workspace: clustering of links, ground-truth entities of
//! the evaluation, and the master person index's joins of reviewed pairs all use it.

/// Disjoint sets over `0..n`, with path halving.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Adds a singleton and returns it.
    pub fn push(&mut self) -> u32 {
        let x = self.parent.len() as u32;
        self.parent.push(x);
        x
    }

    /// The root of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = p;
            x = p;
        }
        x
    }

    /// Joins the sets of `keep` and `other` under the root of `keep`; false when already one set.
    pub fn join(&mut self, keep: u32, other: u32) -> bool {
        let (a, b) = (self.find(keep), self.find(other));
        if a == b {
            return false;
        }
        self.parent[b as usize] = a;
        true
    }

    /// Whether `a` and `b` are in one set.
    pub fn same(&mut self, a: u32, b: u32) -> bool {
        self.find(a) == self.find(b)
    }

    /// The root of every element, in order.
    pub fn roots(&mut self) -> Vec<u32> {
        (0..self.parent.len() as u32)
            .map(|x| self.find(x))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Joining is an equivalence: the sets equal the connected components of the joins.
        #[test]
        fn sets_are_the_connected_components(n in 1usize..40, joins in proptest::collection::vec((0u32..40, 0u32..40), 0..60)) {
            let mut uf = UnionFind::new(n);
            let mut comp: Vec<usize> = (0..n).collect();
            for (a, b) in joins {
                let (a, b) = (a % n as u32, b % n as u32);
                uf.join(a, b);
                let (ca, cb) = (comp[a as usize], comp[b as usize]);
                for c in comp.iter_mut() {
                    if *c == cb {
                        *c = ca;
                    }
                }
            }
            for a in 0..n {
                for b in 0..n {
                    prop_assert_eq!(uf.same(a as u32, b as u32), comp[a] == comp[b]);
                }
            }
        }
    }

    #[test]
    fn join_keeps_the_first_root() {
        let mut uf = UnionFind::new(4);
        assert!(uf.join(2, 3));
        assert!(uf.join(0, 3));
        assert!(!uf.join(2, 0));
        assert_eq!(uf.roots(), vec![0, 1, 0, 0]);
        assert_eq!(uf.push(), 4);
        assert_eq!(uf.len(), 5);
    }
}
