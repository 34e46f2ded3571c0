//! The population of the linked vault: every person of the master person index with their facts
//! and events from every provider, the persons who asked to stop left out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use tokumei_link::linked::LinkedVault;
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
    let (persons, excluded) = vault.persons(catalog, key)?;
    let mut slot: HashMap<&str, usize> = HashMap::new();
    let mut facts: Vec<Facts> = Vec::new();
    for (id, p) in &persons {
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
    let at = |record: &str| {
        vault
            .person_of(record)
            .and_then(|p| slot.get(p.as_str()).copied())
    };
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
    Ok((Population { persons: facts }, excluded.len()))
}
