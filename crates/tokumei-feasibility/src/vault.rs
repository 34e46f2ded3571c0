//! The population of the linked vault: every person of the master person index with their facts
//! and events from every provider, the persons who asked to stop left out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use tokumei_link::linked::{LinkedVault, Person};
use tokumei_model::codes::CodeSystem;
use tokumei_vault::catalog::Catalog;
use tokumei_vault::home::DataKey;

use crate::evaluate::{Event, Facts, Kind, Population};
use crate::FeasibilityError;

/// The vault's population and how many persons were left out because they asked to stop.
pub fn population(
    vault: &LinkedVault,
    catalog: &Catalog,
    key: &DataKey,
) -> Result<(Population, usize), FeasibilityError> {
    let people = vault.persons(catalog, key)?;
    let (population, _, excluded) = population_where(vault, &people, None);
    Ok((population, excluded))
}

/// The linked vault's persons and the ids of those who asked to stop
/// ([`LinkedVault::persons`]), read once for every population made from them.
pub type People = (BTreeMap<String, Person>, HashSet<String>);

/// Each person's local patient ids, as (provider, local patient id), sorted.
pub type LocalIds = Vec<Vec<(String, String)>>;

/// The population as one provider's own records show it (`only`: its events, observation and
/// demographics from its identity records), or as the linked vault shows it (`None`); with each
/// person's local patient ids (at `only`, or everywhere) and how many persons were left out because
/// they asked to stop. Persons without a record at `only` have no events, so never match.
pub fn population_where(
    vault: &LinkedVault,
    (persons, excluded): &People,
    only: Option<&str>,
) -> (Population, LocalIds, usize) {
    let mut slot: HashMap<&str, usize> = HashMap::new();
    let mut facts: Vec<Facts> = Vec::new();
    for (id, p) in persons {
        if excluded.contains(id) {
            continue;
        }
        slot.insert(id.as_str(), facts.len());
        facts.push(Facts {
            sex: p.sex.clone(),
            birth: p.birth,
            municipality: p.municipality.clone(),
            death: p.death,
            ..Facts::default()
        });
    }
    let kept: HashSet<&str> = vault
        .identities
        .iter()
        .filter(|r| only.is_none_or(|p| r.provider_id == p))
        .map(|r| r.record_id.as_str())
        .collect();
    let at = |record: &str| {
        if !kept.contains(record) {
            return None;
        }
        vault
            .person_of(record)
            .and_then(|p| slot.get(p.as_str()).copied())
    };
    let mut ids: LocalIds = vec![Vec::new(); facts.len()];
    if only.is_some() {
        own_demographics(vault, &at, &mut facts);
    }
    for r in &vault.identities {
        if let (Some(i), Some(local)) = (at(&r.record_id), &r.local_patient_id) {
            ids[i].push((r.provider_id.clone(), local.clone()));
        }
    }
    for v in ids.iter_mut() {
        v.sort();
        v.dedup();
    }
    let mut providers: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); facts.len()];
    let mut provider_of: HashMap<&str, &str> = HashMap::new();
    for r in &vault.identities {
        if let Some(i) = at(&r.record_id) {
            providers[i].insert(r.provider_id.as_str());
            provider_of.insert(r.record_id.as_str(), r.provider_id.as_str());
        }
    }
    // Events per (person, provider), for each person's main provider.
    let mut per_provider: Vec<BTreeMap<&str, usize>> = vec![BTreeMap::new(); facts.len()];
    let c = &vault.clinical;
    let mut push = |record: &str, kind, code: String, date: NaiveDate, value| {
        if let Some(i) = at(record) {
            if let Some(p) = provider_of.get(record) {
                *per_provider[i].entry(p).or_default() += 1;
            }
            facts[i].events.push(Event {
                kind,
                code,
                date,
                value,
            });
        }
    };
    for d in &c.diagnoses {
        let icd = match (&d.icd10, d.code_system) {
            (Some(i), _) => i.replace('.', ""),
            (None, CodeSystem::Icd10) => d.code.replace('.', ""),
            _ => String::new(),
        };
        push(&d.record_id, Kind::Diagnosis, icd, d.date, None);
    }
    for p in &c.prescriptions {
        push(&p.record_id, Kind::Drug, p.code.clone(), p.date, None);
    }
    for p in &c.procedures {
        push(&p.record_id, Kind::Procedure, p.code.clone(), p.date, None);
    }
    for l in &c.labs {
        push(&l.record_id, Kind::Lab, l.code.clone(), l.date, l.value_num);
    }
    let mut spans: Vec<Option<(NaiveDate, NaiveDate)>> = vec![None; facts.len()];
    let mut seen = |record: &str, from: NaiveDate, to: NaiveDate| {
        if let Some(i) = at(record) {
            let s = spans[i].get_or_insert((from, to));
            *s = (s.0.min(from), s.1.max(to));
        }
    };
    for e in &c.encounters {
        seen(&e.record_id, e.start_date, e.end_date.max(e.start_date));
    }
    let mains = per_provider.iter().map(|m| {
        m.iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(p, _)| p.to_string())
    });
    for ((f, main), (p, span)) in facts
        .iter_mut()
        .zip(mains)
        .zip(providers.into_iter().zip(spans))
    {
        f.providers = p.into_iter().map(String::from).collect();
        f.main_provider = main.or_else(|| f.providers.first().cloned());
        f.events
            .sort_by(|a, b| a.date.cmp(&b.date).then(a.code.cmp(&b.code)));
        let events = f
            .events
            .first()
            .zip(f.events.last())
            .map(|(a, b)| (a.date, b.date));
        f.observed = match (span, events) {
            (Some(s), Some(e)) => Some((s.0.min(e.0), s.1.max(e.1))),
            (s, e) => s.or(e),
        };
    }
    (Population { persons: facts }, ids, excluded.len())
}

/// Sex, birth, municipality and death as the kept records (one provider's) give them, in place of
/// the linked person's.
fn own_demographics(vault: &LinkedVault, at: &impl Fn(&str) -> Option<usize>, facts: &mut [Facts]) {
    for f in facts.iter_mut() {
        *f = Facts::default();
    }
    for r in &vault.identities {
        if let Some(i) = at(&r.record_id) {
            let f = &mut facts[i];
            f.sex = f.sex.take().or_else(|| r.sex.map(|s| s.code().to_string()));
            f.birth = f.birth.or(r.birth_date);
            f.municipality = f
                .municipality
                .take()
                .or_else(|| r.municipality_code.clone());
        }
    }
    for d in &vault.clinical.deaths {
        if let Some(i) = at(&d.record_id) {
            facts[i].death = Some(d.date);
        }
    }
}
