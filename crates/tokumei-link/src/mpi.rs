//! The master person index (MPI): which records are one person (名寄せ), kept in the identity zone
//! and encrypted under the data key, with the clerical review queue of uncertain pairs.
//!
//! Person ids are random 128-bit values, never derived from identifying values, and stable across
//! runs: a record keeps its person while its links hold. The index is rewritten whole through a
//! staging file and a rename.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use tokumei_vault::home::{DataKey, Home};
use tokumei_vault::store::{open_sealed, seal};

use crate::LinkError;

/// A pair of records the linkage could not decide on, for a technician.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewPair {
    /// Number in the queue (stable).
    pub id: u64,
    /// One record.
    pub left: String,
    /// The other.
    pub right: String,
    /// Match probability.
    pub probability: f64,
    /// Level of each comparison.
    pub levels: Vec<u8>,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<String>,
}

/// The index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mpi {
    /// Person of every linked record.
    pub person_of: BTreeMap<String, String>,
    /// The clerical review queue.
    pub review: Vec<ReviewPair>,
    /// Runs so far.
    pub runs: u64,
}

fn path(home: &Home) -> PathBuf {
    home.root.join("vault/mpi.json.enc")
}

impl Mpi {
    /// Reads the index (empty when none was written).
    pub fn read(home: &Home, key: &DataKey) -> Result<Mpi, LinkError> {
        let p = path(home);
        match std::fs::read(&p) {
            Ok(sealed) => serde_json::from_slice(&open_sealed(key, &sealed)?)
                .map_err(|e| LinkError::Index(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Mpi::default()),
            Err(e) => Err(tokumei_fs::io(&p)(e).into()),
        }
    }

    /// Writes the index (staging file, sync, rename).
    pub fn write(&self, home: &Home, key: &DataKey) -> Result<(), LinkError> {
        let bytes = serde_json::to_vec(self).map_err(|e| LinkError::Index(e.to_string()))?;
        Ok(tokumei_fs::write_atomic(&path(home), &seal(key, &bytes)?)?)
    }

    /// Records of a person.
    pub fn records_of(&self, person: &str) -> Vec<String> {
        self.person_of
            .iter()
            .filter(|(_, p)| p.as_str() == person)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Number of persons.
    pub fn persons(&self) -> usize {
        self.person_of
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }
}

/// A new random person id.
pub fn new_person_id() -> Result<String, LinkError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| LinkError::Random(e.to_string()))?;
    Ok(format!("p{}", hex::encode(b)))
}

/// What an assignment changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Persons created.
    pub created: usize,
    /// Clusters that joined records of two or more earlier persons.
    pub merges: usize,
    /// Earlier persons whose records now fall into two or more clusters.
    pub splits: usize,
    /// Records that changed person.
    pub moved: usize,
}

/// Assigns person ids to `clusters` (lists of record ids), keeping earlier ids where they hold:
/// a cluster takes the person id most of its records had before (ties: the smallest id), and an
/// earlier person id goes to at most one cluster (the largest share of its records); the rest get
/// new ids. Records no longer present leave the index.
pub fn assign(mpi: &mut Mpi, clusters: &[Vec<String>]) -> Result<Changes, LinkError> {
    let mut changes = Changes::default();
    // Candidate (earlier person, cluster, records shared), best shares first.
    let mut shares: Vec<(usize, String, usize)> = Vec::new();
    let mut earlier_spread: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in clusters.iter().enumerate() {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for r in c {
            if let Some(p) = mpi.person_of.get(r) {
                *count.entry(p).or_default() += 1;
            }
        }
        if count.len() > 1 {
            changes.merges += 1;
        }
        for (p, n) in count {
            shares.push((n, p.to_string(), i));
            *earlier_spread.entry(p.to_string()).or_default() += 1;
        }
    }
    changes.splits = earlier_spread.values().filter(|n| **n > 1).count();
    shares.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut id_of: Vec<Option<String>> = vec![None; clusters.len()];
    let mut used = std::collections::BTreeSet::new();
    for (_, p, i) in shares {
        if id_of[i].is_none() && !used.contains(&p) {
            used.insert(p.clone());
            id_of[i] = Some(p);
        }
    }
    let mut next = BTreeMap::new();
    for (i, c) in clusters.iter().enumerate() {
        let id = match id_of[i].take() {
            Some(id) => id,
            None => {
                changes.created += 1;
                new_person_id()?
            }
        };
        for r in c {
            if mpi.person_of.get(r).is_some_and(|p| p != &id) {
                changes.moved += 1;
            }
            next.insert(r.clone(), id.clone());
        }
    }
    mpi.person_of = next;
    mpi.runs += 1;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn person_ids_are_stable_and_merges_and_splits_are_counted() {
        let mut mpi = Mpi::default();
        let ch = assign(&mut mpi, &c(&[&["a", "b"], &["c"]])).expect("assign");
        assert_eq!(ch.created, 2);
        let pa = mpi.person_of["a"].clone();
        let pc = mpi.person_of["c"].clone();
        assert_ne!(pa, pc);
        // A new record joins a; nothing else changes.
        let ch = assign(&mut mpi, &c(&[&["a", "b", "d"], &["c"]])).expect("assign");
        assert_eq!((ch.created, ch.merges, ch.splits, ch.moved), (0, 0, 0, 0));
        assert_eq!(mpi.person_of["d"], pa);
        // a's person and c's person merge: the larger share keeps its id.
        let ch = assign(&mut mpi, &c(&[&["a", "b", "d", "c"]])).expect("assign");
        assert_eq!((ch.merges, ch.moved), (1, 1));
        assert_eq!(mpi.person_of["c"], pa);
        // Split again: one part keeps the id, the other gets a new one.
        let ch = assign(&mut mpi, &c(&[&["a", "b"], &["d", "c"]])).expect("assign");
        assert_eq!((ch.splits, ch.created), (1, 1));
        assert_eq!(mpi.person_of["a"], pa);
        assert_ne!(mpi.person_of["d"], pa);
        assert_eq!(mpi.persons(), 2);
    }
}
