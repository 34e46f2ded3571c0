//! The linked vault as its readers see it: every package's identities and clinical tables, the
//! master person index, and the persons it defines (sex and birth date by majority of their
//! records, municipality of their latest record, death), with the persons who asked to stop
//! (停止の求め) named so that no reader counts or releases them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use tokumei_model::events::{
    Death, Diagnosis, Encounter, Image, LabResult, Prescription, Procedure,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_vault::catalog::Catalog;
use tokumei_vault::home::DataKey;
use tokumei_vault::optout::{person_fingerprints, subjects_of, IndexKey};
use tokumei_vault::store::{read_identities, read_parquet};
use tokumei_vault::Home;

use crate::mpi::Mpi;
use crate::LinkError;

/// One person of the linked vault.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Person {
    /// Person id (master person index).
    pub id: String,
    /// Sex code, by majority of the person's records.
    pub sex: Option<String>,
    /// Birth date, by majority of the person's records.
    pub birth: Option<NaiveDate>,
    /// Municipality code of the person's latest record that has one.
    pub municipality: Option<String>,
    /// Death date.
    pub death: Option<NaiveDate>,
}

/// All clinical tables of the vault.
#[derive(Debug, Clone, Default)]
pub struct Clinical {
    /// Encounters.
    pub encounters: Vec<Encounter>,
    /// Diagnoses.
    pub diagnoses: Vec<Diagnosis>,
    /// Prescriptions.
    pub prescriptions: Vec<Prescription>,
    /// Procedures.
    pub procedures: Vec<Procedure>,
    /// Laboratory results.
    pub labs: Vec<LabResult>,
    /// Deaths.
    pub deaths: Vec<Death>,
    /// Images (the index; the files stay sealed in the identified zone,
    /// `tokumei_vault::images::read`).
    pub images: Vec<Image>,
}

/// The linked vault, read whole.
#[derive(Debug, Clone, Default)]
pub struct LinkedVault {
    /// The master person index.
    pub mpi: Mpi,
    /// Identity records of every package.
    pub identities: Vec<IdentityRecord>,
    /// Clinical tables of every package.
    pub clinical: Clinical,
}

fn read_table<T: tokumei_model::table::Table>(path: &Path) -> Result<Vec<T>, LinkError> {
    match std::fs::read(path) {
        Ok(b) => Ok(read_parquet(b)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(tokumei_fs::io(path)(e).into()),
    }
}

fn mode<T: Ord + Clone>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut count: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *count.entry(v).or_default() += 1;
    }
    count
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(v, _)| v)
}

impl LinkedVault {
    /// Reads every received package's identities and clinical tables, and the index; refuses an
    /// empty index (nothing was linked yet).
    pub fn read(home: &Home, key: &DataKey, catalog: &Catalog) -> Result<LinkedVault, LinkError> {
        let mpi = Mpi::read(home, key)?;
        if mpi.person_of.is_empty() {
            return Err(LinkError::Index("empty: run `tokumei link` first".into()));
        }
        let mut identities: Vec<IdentityRecord> = Vec::new();
        let mut c = Clinical::default();
        for id in &catalog.receipt_ids()? {
            identities.extend(read_identities(home, key, id)?);
            let dir = home.root.join(format!("vault/clinical/{id}"));
            c.encounters
                .extend(read_table(&dir.join("encounters.parquet"))?);
            c.diagnoses
                .extend(read_table(&dir.join("diagnoses.parquet"))?);
            c.prescriptions
                .extend(read_table(&dir.join("prescriptions.parquet"))?);
            c.procedures
                .extend(read_table(&dir.join("procedures.parquet"))?);
            c.labs.extend(read_table(&dir.join("lab_results.parquet"))?);
            c.deaths.extend(read_table(&dir.join("deaths.parquet"))?);
            c.images.extend(read_table(&dir.join("images.parquet"))?);
        }
        Ok(LinkedVault {
            mpi,
            identities,
            clinical: c,
        })
    }

    /// The person of a record.
    pub fn person_of(&self, record: &str) -> Option<&String> {
        self.mpi.person_of.get(record)
    }

    /// Every person of the linked vault, and the persons who asked to stop (a record of theirs in
    /// the opt-out registry or with a stopped fingerprint).
    pub fn persons(
        &self,
        catalog: &Catalog,
        key: &DataKey,
    ) -> Result<(BTreeMap<String, Person>, HashSet<String>), LinkError> {
        let index = IndexKey::derive(key);
        let registry = catalog.optout_indexes()?;
        let stopped = catalog.optout_fingerprints()?;
        let mut excluded: HashSet<String> = HashSet::new();
        let mut by_person: HashMap<&String, Vec<&IdentityRecord>> = HashMap::new();
        for r in &self.identities {
            let Some(p) = self.person_of(&r.record_id) else {
                continue;
            };
            let hit = subjects_of(&r.provider_id, r)
                .iter()
                .any(|x| registry.contains(&index.index(x)))
                || person_fingerprints(&index, r)
                    .iter()
                    .any(|f| stopped.contains(f));
            if hit {
                excluded.insert(p.clone());
            }
            by_person.entry(p).or_default().push(r);
        }
        let deaths: HashMap<&String, NaiveDate> = self
            .clinical
            .deaths
            .iter()
            .filter_map(|d| self.person_of(&d.record_id).map(|p| (p, d.date)))
            .collect();
        let mut persons: BTreeMap<String, Person> = BTreeMap::new();
        for (p, recs) in &by_person {
            let latest = recs
                .iter()
                .filter(|r| r.municipality_code.is_some())
                .max_by_key(|r| r.recorded_on);
            let sexes = recs
                .iter()
                .filter_map(|r| r.sex.map(|s| s.code().to_string()));
            let person = Person {
                id: (*p).clone(),
                sex: mode(sexes),
                birth: mode(recs.iter().filter_map(|r| r.birth_date)),
                municipality: latest.and_then(|r| r.municipality_code.clone()),
                death: deaths.get(p).copied(),
            };
            persons.insert((*p).clone(), person);
        }
        Ok((persons, excluded))
    }
}
