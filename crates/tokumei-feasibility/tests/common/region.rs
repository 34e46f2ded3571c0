//! The population of a synthetic region's canonical tables (`DIR/sources/<provider>/*.parquet`),
//! standing in for the vault's clinical store, with the region's truth as the master person index
//! (`truth/record_links`): what the counts see of a region once every record is linked to its true
//! person. Providers are read one at a time, so memory holds the population, not the tables.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tokumei_feasibility::evaluate::{Facts, Population};
use tokumei_feasibility::vault::Assembly;
use tokumei_link::linked::Clinical;
use tokumei_model::identity::IdentityRecord;
use tokumei_model::truth::{RecordLink, TruthPerson};
use tokumei_synth::writer::read_table;

type Error = Box<dyn std::error::Error>;

/// The region's population (persons in `excluded` left out) and each slot's true person id.
/// Demographics are the truth's (sex, birth, municipality at the end of the period); deaths, events,
/// providers and observation come from the providers' records, as in the vault.
pub fn population(
    region: &Path,
    excluded: &HashSet<String>,
) -> Result<(Population, Vec<String>), Error> {
    let persons: Vec<TruthPerson> = read_table(&region.join("truth/persons.parquet"))?;
    let mut ids = Vec::new();
    let mut facts = Vec::new();
    for p in persons
        .into_iter()
        .filter(|p| !excluded.contains(&p.person_id))
    {
        facts.push(Facts {
            sex: Some(p.sex.code().to_string()),
            birth: Some(p.birth_date),
            municipality: Some(p.municipality_code),
            ..Facts::default()
        });
        ids.push(p.person_id);
    }
    let slot: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let links: Vec<RecordLink> = read_table(&region.join("truth/record_links.parquet"))?;
    let person_of: HashMap<String, usize> = links
        .into_iter()
        .filter_map(|l| slot.get(l.person_id.as_str()).map(|&i| (l.record_id, i)))
        .collect();
    let at = |record: &str| person_of.get(record).copied();
    let mut assembly = Assembly::new(facts);
    let mut deaths = Vec::new();
    for dir in providers(region)? {
        let identities: Vec<IdentityRecord> = read_table(&dir.join("identities.parquet"))?;
        let clinical = Clinical {
            encounters: read_table(&dir.join("encounters.parquet"))?,
            diagnoses: read_table(&dir.join("diagnoses.parquet"))?,
            prescriptions: read_table(&dir.join("prescriptions.parquet"))?,
            procedures: read_table(&dir.join("procedures.parquet"))?,
            labs: read_table(&dir.join("lab_results.parquet"))?,
            deaths: read_table(&dir.join("deaths.parquet"))?,
            images: Vec::new(),
        };
        assembly.add(&identities, &clinical, &at);
        deaths.extend(
            clinical
                .deaths
                .iter()
                .filter_map(|d| at(&d.record_id).map(|i| (i, d.date))),
        );
    }
    let mut population = assembly.finish();
    for (i, day) in deaths {
        population.persons[i].death = Some(day);
    }
    Ok((population, ids))
}

/// The provider folders of a region, sorted.
fn providers(region: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(region.join("sources"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}
