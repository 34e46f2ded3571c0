//! A link run: every identity held into the master person index.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tokumei_linkage::{Dataset, LinkOutput, Settings, UnionFind};
use tokumei_model::identity::IdentityRecord;
use tokumei_vault::access::Session;
use tokumei_vault::home::DataKey;
use tokumei_vault::lock::WriterLock;
use tokumei_vault::optout::{person_fingerprints, IndexKey};
use tokumei_vault::Home;

use crate::mpi::{assign, Changes, Mpi, ReviewPair};
use crate::purge::purge_persons;
use crate::LinkError;

/// What a run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunSummary {
    /// Records linked.
    pub records: usize,
    /// Persons in the index.
    pub persons: usize,
    /// Changes against the earlier index.
    pub changes: Changes,
    /// Pairs waiting for review.
    pub pending: usize,
    /// Accepted pairs whose records are now one person.
    pub accepted_joined: usize,
    /// Accepted pairs left apart because joining them would join a rejected pair.
    pub accepted_refused: usize,
    /// Records purged because their person asked to stop.
    pub purged: usize,
    /// Candidate pairs scored.
    pub candidates: u64,
    /// Where the candidate pairs were found (`embedded`, `ballista://host:port`).
    pub engine: String,
}

/// Every identity record held, in an order fixed by content (vault record ids are random and
/// packages arrive in any order): the same records link the same way on every run and machine.
pub fn ordered_identities(home: &Home, key: &DataKey) -> Result<Vec<IdentityRecord>, LinkError> {
    let mut identities = tokumei_vault::store::read_all_identities(home, key)?;
    IdentityRecord::order_by_content(&mut identities);
    Ok(identities)
}

/// Links every record held into the master person index, applies the review decisions and the
/// requests to stop, writes the linkage report (`reports/link-NNNN.html`, no identifying value)
/// and audits the run.
pub fn run(
    home: &Home,
    s: &Session,
    key: &DataKey,
    settings: &Settings,
    lock: &WriterLock,
) -> Result<RunSummary, LinkError> {
    run_on(None, home, s, key, settings, lock)
}

/// [`run`] with the candidate pairs found by `engine` (a distributed engine; the embedded run when
/// none): the master person index comes out the same. The audit entry names the engine.
pub fn run_on(
    engine: Option<&dyn tokumei_linkage::PairEngine>,
    home: &Home,
    s: &Session,
    key: &DataKey,
    settings: &Settings,
    _lock: &WriterLock,
) -> Result<RunSummary, LinkError> {
    s.require(home, "link.run", &[tokumei_vault::access::Role::Technician])?;
    let identities = ordered_identities(home, key)?;
    let mut summary = RunSummary::default();
    if identities.is_empty() {
        s.audit(home, "link.run", "0 records", "ok: nothing to link", None)?;
        return Ok(summary);
    }
    let data = dataset(settings, &identities)?;
    let mut mpi = Mpi::read(home, key)?;
    let rejected = rejected_rows(&mpi, &identities);
    let out = tokumei_linkage::link_with_engine(engine, settings, &data, None, None, &rejected)?;
    summary.engine = engine.map_or_else(|| "embedded".to_string(), |e| e.name());
    summary.candidates = out.candidates;
    let clusters = persons(&out, &mpi, &rejected, &mut summary);
    let direct = stopped(home, key, &identities, &clusters)?;
    let clusters: Vec<Vec<String>> = clusters
        .into_values()
        .filter(|c| !c.iter().any(|m| direct.contains(m)))
        .collect();
    summary.changes = assign(&mut mpi, &clusters)?;
    queue_uncertain_pairs(&mut mpi, &out, settings, &direct);
    summary.pending = mpi.review.iter().filter(|p| p.status == "pending").count();
    mpi.write(home, key)?;
    summary.records = mpi.person_of.len();
    summary.persons = mpi.persons();
    write_report(home, &out, mpi.runs)?;
    audit_run(home, s, &summary, mpi.runs, identities.len())?;
    summary.purged = purge_persons(home, s, key, &identities, &direct)?.records;
    Ok(summary)
}

/// The engine's table of the columns the settings use, id column first.
fn dataset(settings: &Settings, identities: &[IdentityRecord]) -> Result<Dataset, LinkError> {
    Ok(Dataset::of_records(
        "vault",
        settings,
        identities,
        IdentityRecord::column_text,
    )?)
}

/// Pairs a technician rejected, as rows: never linked again, directly or through other records.
fn rejected_rows(mpi: &Mpi, identities: &[IdentityRecord]) -> Vec<(u32, u32)> {
    let row_of_id: HashMap<&str, u32> = identities
        .iter()
        .enumerate()
        .map(|(i, r)| (r.record_id.as_str(), i as u32))
        .collect();
    mpi.review
        .iter()
        .filter(|p| p.status == "rejected")
        .filter_map(|p| {
            Some((
                *row_of_id.get(p.left.as_str())?,
                *row_of_id.get(p.right.as_str())?,
            ))
        })
        .collect()
}

/// The engine's clusters, joined where a technician accepted a pair unless that would join a
/// rejected pair; record ids by cluster root.
fn persons(
    out: &LinkOutput,
    mpi: &Mpi,
    rejected: &[(u32, u32)],
    summary: &mut RunSummary,
) -> BTreeMap<u32, Vec<String>> {
    let mut sets = UnionFind::new(out.left_ids.len());
    let mut first_of_cluster: HashMap<u32, u32> = HashMap::new();
    for (row, c) in out.left_clusters.iter().enumerate() {
        let first = *first_of_cluster.entry(*c).or_insert(row as u32);
        sets.join(first, row as u32);
    }
    let row_of: HashMap<&str, u32> = out
        .left_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect();
    for p in mpi.review.iter().filter(|p| p.status == "accepted") {
        let (Some(&a), Some(&b)) = (row_of.get(p.left.as_str()), row_of.get(p.right.as_str()))
        else {
            continue;
        };
        let (ra, rb) = (sets.find(a), sets.find(b));
        let joins_rejected = rejected.iter().any(|&(x, y)| {
            let (rx, ry) = (sets.find(x), sets.find(y));
            (rx == ra && ry == rb) || (rx == rb && ry == ra)
        });
        if joins_rejected {
            summary.accepted_refused += 1;
        } else {
            sets.join(ra, rb);
            summary.accepted_joined += 1;
        }
    }
    let mut clusters: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (row, id) in out.left_ids.iter().enumerate() {
        clusters
            .entry(sets.find(row as u32))
            .or_default()
            .push(id.clone());
    }
    clusters
}

/// Records of persons who asked to stop: a cluster with a record in the registry, or with the
/// fingerprint of a person who asked, is the whole person's.
fn stopped(
    home: &Home,
    key: &DataKey,
    identities: &[IdentityRecord],
    clusters: &BTreeMap<u32, Vec<String>>,
) -> Result<HashSet<String>, LinkError> {
    let index = IndexKey::derive(key);
    let catalog = home.catalog()?;
    let registry = catalog.optout_indexes()?;
    let fingerprints = catalog.optout_fingerprints()?;
    let by_id: HashMap<&str, &IdentityRecord> = identities
        .iter()
        .map(|r| (r.record_id.as_str(), r))
        .collect();
    let asked = |r: &IdentityRecord| {
        tokumei_vault::optout::subjects_of(&r.provider_id, r)
            .iter()
            .any(|s| registry.contains(&index.index(s)))
            || person_fingerprints(&index, r)
                .iter()
                .any(|f| fingerprints.contains(f))
    };
    let mut direct = HashSet::new();
    for members in clusters.values() {
        if members
            .iter()
            .any(|m| by_id.get(m.as_str()).is_some_and(|r| asked(r)))
        {
            direct.extend(members.iter().cloned());
        }
    }
    Ok(direct)
}

/// New pairs of the review band join the queue; decided ones stay decided; pairs of records no
/// longer indexed leave it.
fn queue_uncertain_pairs(
    mpi: &mut Mpi,
    out: &LinkOutput,
    settings: &Settings,
    direct: &HashSet<String>,
) {
    let lower = settings.thresholds.review_lower;
    let upper = settings.thresholds.review_upper;
    let mut known: HashSet<(String, String)> = mpi
        .review
        .iter()
        .map(|p| (p.left.clone(), p.right.clone()))
        .collect();
    let mut next_id = mpi.review.iter().map(|p| p.id).max().unwrap_or(0) + 1;
    for p in &out.pairs {
        if p.deterministic || p.probability < lower || p.probability >= upper {
            continue;
        }
        let a = out.left_ids[p.left_row as usize].clone();
        let b = out.left_ids[p.right_row as usize].clone();
        if direct.contains(&a) || direct.contains(&b) {
            continue;
        }
        let pair = if a < b { (a, b) } else { (b, a) };
        if known.insert(pair.clone()) {
            mpi.review.push(ReviewPair {
                id: next_id,
                left: pair.0,
                right: pair.1,
                probability: p.probability,
                levels: p.levels.clone(),
                status: "pending".into(),
                decided_by: None,
            });
            next_id += 1;
        }
    }
    let person_of = &mpi.person_of;
    mpi.review
        .retain(|p| person_of.contains_key(&p.left) && person_of.contains_key(&p.right));
}

/// The linkage report of run `runs` (weights, histogram, review band; no identifying value).
fn write_report(home: &Home, out: &LinkOutput, runs: u64) -> Result<(), LinkError> {
    let reports = home.root.join("reports");
    let html = tokumei_linkage::report::html(out, "Tokumei vault: master person index", None, None);
    let path = reports.join(format!("link-{runs:04}.html"));
    tokumei_fs::write_atomic(&path, html.as_bytes())?;
    Ok(())
}

fn audit_run(
    home: &Home,
    s: &Session,
    x: &RunSummary,
    runs: u64,
    records: usize,
) -> Result<(), LinkError> {
    let on = match x.engine.as_str() {
        "" | "embedded" => String::new(),
        other => format!(" on {other}"),
    };
    let object = format!(
        "run {runs}: {records} records, {} candidate pairs{on}",
        x.candidates
    );
    let result = format!(
        "ok: {} persons; {} created, {} merges, {} splits, {} records moved; {} accepted pairs \
         joined, {} refused; {} pairs pending review",
        x.persons,
        x.changes.created,
        x.changes.merges,
        x.changes.splits,
        x.changes.moved,
        x.accepted_joined,
        x.accepted_refused,
        x.pending
    );
    s.audit(home, "link.run", &object, &result, None)?;
    Ok(())
}
