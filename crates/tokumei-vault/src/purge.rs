//! Purging held records of patients who asked to stop (RULES §4 item 40).
//!
//! A request to stop bars future receipt (checked at every receipt) and, for data already held,
//! deletes the identified records: the record's identifying fields in the identity vault and its
//! clinical events. Packages are visited one by one; in each, the clinical tables are rewritten
//! first and the identity table last, each through a staging file and a rename, so an interrupted
//! purge leaves the identity record in place and simply runs again (filtering is idempotent).
//!
//! The original encrypted package is kept unchanged: it is the evidence of receipt (Art 55) and its
//! signature covers the whole extract. It is never read again for data: a later re-reading of an
//! original applies the registry at that time, as every receipt does.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use tokumei_model::events::{
    Death, Diagnosis, Encounter, Image, LabResult, Prescription, Procedure,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::table::Table;

use crate::home::{io, DataKey, Home, VaultError};
use crate::optout::{subjects_of, IndexKey};
use crate::store::{open_sealed, parquet_bytes, read_parquet, seal, PackagePaths};
use tokumei_fs::write_atomic;

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Packages visited.
    pub packages: usize,
    /// Packages that held records of opted-out patients: (package id, records, events removed).
    pub touched: Vec<(String, usize, usize)>,
    /// Identity records removed.
    pub records: usize,
    /// Clinical events removed.
    pub events: usize,
}

/// Rewrites one clinical table without the events of `gone`; returns how many were removed.
fn filter_table<T: Table>(
    path: &Path,
    gone: &HashSet<String>,
    record_id: impl Fn(&T) -> &str,
) -> Result<usize, VaultError> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(0);
    };
    let rows: Vec<T> = read_parquet(bytes)?;
    let before = rows.len();
    let kept: Vec<T> = rows
        .into_iter()
        .filter(|r| !gone.contains(record_id(r)))
        .collect();
    let removed = before - kept.len();
    if removed > 0 {
        write_atomic(path, &parquet_bytes(&kept)?)?;
    }
    Ok(removed)
}

/// Removes the images of `gone` from a package: their sealed files first, then their index rows
/// (an interrupted purge finds the rows again and removes what is left).
fn purge_images(paths: &PackagePaths, gone: &HashSet<String>) -> Result<usize, VaultError> {
    let index = paths.clinical.join("images.parquet");
    let Ok(bytes) = std::fs::read(&index) else {
        return Ok(0);
    };
    let rows: Vec<Image> = read_parquet(bytes)?;
    for r in rows.iter().filter(|r| gone.contains(&r.record_id)) {
        let blob = paths.images.join(&r.blob);
        match std::fs::remove_file(&blob) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&blob, e)),
            _ => {}
        }
    }
    filter_table::<Image>(&index, gone, |r| &r.record_id)
}

/// Removes from every received package the records whose blind index is in `indexes` (the whole
/// registry, or the requests just recorded).
pub fn purge(
    home: &Home,
    key: &DataKey,
    indexes: &HashSet<String>,
) -> Result<PurgeReport, VaultError> {
    let index_key = IndexKey::derive(key);
    purge_where(home, key, &|r: &IdentityRecord| {
        subjects_of(&r.provider_id, r)
            .iter()
            .any(|s| indexes.contains(&index_key.index(s)))
    })
}

/// Removes the records with the given ids (every record of a person who asked to stop, found
/// through the master person index).
pub fn purge_records(
    home: &Home,
    key: &DataKey,
    records: &HashSet<String>,
) -> Result<PurgeReport, VaultError> {
    purge_where(home, key, &|r: &IdentityRecord| {
        records.contains(&r.record_id)
    })
}

fn purge_where(
    home: &Home,
    key: &DataKey,
    doomed: &dyn Fn(&IdentityRecord) -> bool,
) -> Result<PurgeReport, VaultError> {
    let mut report = PurgeReport::default();
    let dir = home.root.join("vault/identity");
    let mut packages = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix(".parquet.enc") {
                if !name.starts_with('.') {
                    packages.insert(id.to_string());
                }
            }
        }
    }
    for id in packages {
        report.packages += 1;
        let paths = PackagePaths::of(home, &id);
        let sealed = std::fs::read(&paths.identity).map_err(|e| io(&paths.identity, e))?;
        let identities: Vec<IdentityRecord> = read_parquet(open_sealed(key, &sealed)?)?;
        let gone: HashSet<String> = identities
            .iter()
            .filter(|r| doomed(r))
            .map(|r| r.record_id.clone())
            .collect();
        if gone.is_empty() {
            continue;
        }
        let c = &paths.clinical;
        let mut events = 0;
        events +=
            filter_table::<Encounter>(&c.join("encounters.parquet"), &gone, |r| &r.record_id)?;
        events += filter_table::<Diagnosis>(&c.join("diagnoses.parquet"), &gone, |r| &r.record_id)?;
        events += filter_table::<Prescription>(&c.join("prescriptions.parquet"), &gone, |r| {
            &r.record_id
        })?;
        events +=
            filter_table::<Procedure>(&c.join("procedures.parquet"), &gone, |r| &r.record_id)?;
        events +=
            filter_table::<LabResult>(&c.join("lab_results.parquet"), &gone, |r| &r.record_id)?;
        events += filter_table::<Death>(&c.join("deaths.parquet"), &gone, |r| &r.record_id)?;
        events += purge_images(&paths, &gone)?;
        // The identity table last: it is what makes a later purge find the record again.
        let kept: Vec<IdentityRecord> = identities
            .into_iter()
            .filter(|r| !gone.contains(&r.record_id))
            .collect();
        write_atomic(&paths.identity, &seal(key, &parquet_bytes(&kept)?)?)?;
        report.records += gone.len();
        report.events += events;
        report.touched.push((id, gone.len(), events));
    }
    Ok(report)
}
