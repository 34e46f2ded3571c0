//! Answers kept per normalized query: the same definition under the same policy, asked again
//! while the data are unchanged, gets the same answer (nothing new is disclosed, no quota is
//! spent). A receipt, a link run, a request to stop or a purge changes the data's version and
//! with it every key. The cache is sealed under the data key in the home
//! (`feasibility/answers.json.enc`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokumei_vault::catalog::Catalog;
use tokumei_vault::home::DataKey;
use tokumei_vault::store::{open_sealed, seal};
use tokumei_vault::Home;

use crate::{CountAnswer, Definition, FeasibilityError, Policy};

/// Most answers kept; the oldest go first.
const MAX_ANSWERS: usize = 1024;

#[derive(Default, Serialize, Deserialize)]
struct Cache {
    /// Key (data version, definition, policy) → (order written, answer).
    answers: BTreeMap<String, (u64, CountAnswer)>,
    /// Answers written so far.
    written: u64,
}

fn path(home: &Home) -> std::path::PathBuf {
    home.root.join("feasibility/answers.json.enc")
}

/// The audit actions that change what a count reads; the data's version counts them.
pub const DATA_ACTIONS: [&str; 3] = ["link.run", "optout.purge", "optout.add"];

/// The data's version: the packages received, the requests to stop, the master person index as
/// sealed, and how many link runs and purges the log records (`log`: its entries of
/// [`DATA_ACTIONS`], and maybe others).
pub fn data_version(
    home: &Home,
    catalog: &Catalog,
    log: &[tokumei_audit::Entry],
) -> Result<String, FeasibilityError> {
    let mut h = Sha256::new();
    for id in catalog.receipt_ids()? {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    for set in [catalog.optout_indexes()?, catalog.optout_fingerprints()?] {
        let mut v: Vec<String> = set.into_iter().collect();
        v.sort();
        h.update(v.join("\n").as_bytes());
        h.update(b"\n--\n");
    }
    let mpi = std::fs::read(home.root.join("vault/mpi.json.enc")).unwrap_or_default();
    h.update(Sha256::digest(&mpi));
    for action in DATA_ACTIONS {
        let n = log.iter().filter(|e| e.action == action).count();
        h.update(n.to_le_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The cache key of a query at a data version.
pub fn key(version: &str, def: &Definition, policy: &Policy) -> String {
    let policy = serde_json::to_string(policy).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(version.as_bytes());
    h.update(def.normalized().as_bytes());
    h.update(policy.as_bytes());
    hex::encode(h.finalize())
}

fn read(home: &Home, key: &DataKey) -> Cache {
    std::fs::read(path(home))
        .ok()
        .and_then(|b| open_sealed(key, &b).ok())
        .and_then(|p| serde_json::from_slice(&p).ok())
        .unwrap_or_default()
}

/// The answer kept under `k`, if any.
pub fn get(home: &Home, key: &DataKey, k: &str) -> Option<CountAnswer> {
    read(home, key).answers.remove(k).map(|(_, a)| a)
}

/// Keeps an answer under `k` (the oldest dropped beyond the bound).
pub fn put(home: &Home, key: &DataKey, k: &str, a: &CountAnswer) -> Result<(), FeasibilityError> {
    let mut c = read(home, key);
    c.written += 1;
    c.answers.insert(k.to_string(), (c.written, a.clone()));
    while c.answers.len() > MAX_ANSWERS {
        let oldest = c
            .answers
            .iter()
            .min_by_key(|(_, (n, _))| *n)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(o) => c.answers.remove(&o),
            None => break,
        };
    }
    let plain = serde_json::to_vec(&c).map_err(|e| FeasibilityError::Policy(e.to_string()))?;
    let p = path(home);
    if let Some(dir) = p.parent() {
        let io = |e| FeasibilityError::Io(dir.into(), e);
        std::fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
    }
    Ok(tokumei_fs::write_atomic(&p, &seal(key, &plain)?)?)
}
