//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0) §2.1: tree hash, inclusion and
//! consistency proofs, and their verification.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `HASH(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `HASH(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, `HASH()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// `MTH(D[n])` over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path `PATH(m, D[n])` of leaf `m`; `None` when `m` is out of range.
pub fn inclusion_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(leaves, m, &mut out);
    Some(out)
}

fn path(leaves: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(&leaves[..k], m, out);
        out.push(root(&leaves[k..]));
    } else {
        path(&leaves[k..], m - k, out);
        out.push(root(&leaves[..k]));
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && &r == root
}

/// The consistency proof `PROOF(m, D[n])` between the tree of the first `m` leaves and the whole
/// tree; `None` unless `0 < m <= n`.
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    subproof(leaves, m, true, &mut out);
    Some(out)
}

fn subproof(leaves: &[Hash], m: usize, complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(&leaves[..k], m, complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(&leaves[k..], m - k, false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): the tree of `first` leaves with root
/// `first_root` is a prefix of the tree of `second` leaves with root `second_root`.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    &fr == first_root && &sr == second_root && s == 0
}

/// The right edge of a tree being built: the roots of its perfect subtrees, largest first, so that
/// appending a leaf and computing the root cost O(log n).
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    peaks: Vec<(u64, Hash)>,
    size: u64,
}

impl Frontier {
    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut cur = (1u64, leaf);
        while let Some(&(n, h)) = self.peaks.last() {
            if n != cur.0 {
                break;
            }
            self.peaks.pop();
            cur = (n * 2, node_hash(&h, &cur.1));
        }
        self.peaks.push(cur);
        self.size += 1;
    }

    /// `MTH` of the leaves so far: the peaks folded from the right.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(&(_, mut r)) = it.next() else {
            return empty_root();
        };
        for (_, h) in it {
            r = node_hash(h, &r);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn frontier_matches_the_recursive_root() {
        let all = leaves(70);
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        for (i, l) in all.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), root(&all[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies() {
        for n in 1..40 {
            let all = leaves(n);
            let r = root(&all);
            for m in 0..n {
                let p = inclusion_proof(&all, m).expect("proof");
                assert!(verify_inclusion(m as u64, n as u64, &all[m], &p, &r));
                // A wrong leaf, index or size fails.
                assert!(!verify_inclusion(
                    m as u64,
                    n as u64,
                    &leaf_hash(b"x"),
                    &p,
                    &r
                ));
                if n > 1 {
                    assert!(!verify_inclusion(
                        ((m + 1) % n) as u64,
                        n as u64,
                        &all[m],
                        &p,
                        &r
                    ));
                }
            }
            for m in 1..=n {
                let p = consistency_proof(&all, m).expect("proof");
                let old = root(&all[..m]);
                assert!(
                    verify_consistency(m as u64, n as u64, &old, &r, &p),
                    "{m} {n}"
                );
                if m < n {
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &leaf_hash(b"x"),
                        &r,
                        &p
                    ));
                }
            }
        }
    }
}
