//! The population of the linked vault: every person of the master person index with their facts
//! and events from every provider, the persons who asked to stop left out.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use tokumei_link::linked::{Clinical, LinkedVault, Person};
use tokumei_model::codes::CodeSystem;
use tokumei_model::identity::IdentityRecord;
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

/// The facts of a person as the linked vault gives them (events come from the records).
pub fn facts_of(p: &Person) -> Facts {
    Facts {
        sex: p.sex.clone(),
        birth: p.birth,
        municipality: p.municipality.clone(),
        death: p.death,
        ..Facts::default()
    }
}

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
        facts.push(facts_of(p));
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
    let mut assembly = Assembly::new(facts);
    assembly.add(&vault.identities, &vault.clinical, &at);
    (assembly.finish(), ids, excluded.len())
}

/// A population put together from records that may arrive in parts (one provider's tables at a
/// time): each person's events, providers, main provider and observation period.
pub struct Assembly {
    facts: Vec<Facts>,
    providers: Vec<BTreeSet<String>>,
    /// Events per (person, provider), for each person's main provider.
    per_provider: Vec<BTreeMap<String, usize>>,
    spans: Vec<Option<(NaiveDate, NaiveDate)>>,
    /// Every code seen, held once.
    codes: HashSet<Arc<str>>,
}

impl Assembly {
    /// An assembly of these persons (their demographics set, no events yet).
    pub fn new(facts: Vec<Facts>) -> Assembly {
        let n = facts.len();
        Assembly {
            facts,
            providers: vec![BTreeSet::new(); n],
            per_provider: vec![BTreeMap::new(); n],
            spans: vec![None; n],
            codes: HashSet::new(),
        }
    }

    /// Adds the records of `identities` and their clinical rows; `at` gives the person (a slot of
    /// the facts given to [`Assembly::new`]) of a record, or none to leave it out.
    pub fn add(
        &mut self,
        identities: &[IdentityRecord],
        clinical: &Clinical,
        at: &impl Fn(&str) -> Option<usize>,
    ) {
        let mut provider_of: HashMap<&str, &str> = HashMap::new();
        for r in identities {
            if let Some(i) = at(&r.record_id) {
                if !self.providers[i].contains(&r.provider_id) {
                    self.providers[i].insert(r.provider_id.clone());
                }
                provider_of.insert(r.record_id.as_str(), r.provider_id.as_str());
            }
        }
        let c = clinical;
        let mut push = |record: &str, kind, code: &str, date: NaiveDate, value| {
            let Some(i) = at(record) else { return };
            let code = match self.codes.get(code) {
                Some(c) => c.clone(),
                None => {
                    let c: Arc<str> = Arc::from(code);
                    self.codes.insert(c.clone());
                    c
                }
            };
            if let Some(p) = provider_of.get(record) {
                match self.per_provider[i].get_mut(*p) {
                    Some(n) => *n += 1,
                    None => {
                        self.per_provider[i].insert(p.to_string(), 1);
                    }
                }
            }
            self.facts[i].events.push(Event {
                kind,
                code,
                date,
                value,
            });
        };
        for d in &c.diagnoses {
            push(&d.record_id, Kind::Diagnosis, &icd10_of(d), d.date, None);
        }
        for p in &c.prescriptions {
            push(&p.record_id, Kind::Drug, &p.code, p.date, None);
        }
        for p in &c.procedures {
            push(&p.record_id, Kind::Procedure, &p.code, p.date, None);
        }
        for l in &c.labs {
            push(&l.record_id, Kind::Lab, &l.code, l.date, l.value_num);
        }
        for e in &c.encounters {
            if let Some(i) = at(&e.record_id) {
                let (from, to) = (e.start_date, e.end_date.max(e.start_date));
                let s = self.spans[i].get_or_insert((from, to));
                *s = (s.0.min(from), s.1.max(to));
            }
        }
    }

    /// The population: events by date, each person's main provider (the one holding most of their
    /// events; ties: the smaller id) and observation period (records and events together).
    pub fn finish(self) -> Population {
        let mut facts = self.facts;
        let mains = self.per_provider.iter().map(|m| {
            m.iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(p, _)| p.clone())
        });
        for ((f, main), (p, span)) in facts
            .iter_mut()
            .zip(mains)
            .zip(self.providers.into_iter().zip(self.spans))
        {
            f.providers = p.into_iter().collect();
            f.main_provider = main.or_else(|| f.providers.first().cloned());
            f.order_events();
            f.events.shrink_to_fit();
            // By date now: the first and the last are the period's ends.
            let events = f.events.first().zip(f.events.last());
            let events = events.map(|(a, b)| (a.date, b.date));
            f.observed = match (span, events) {
                (Some(s), Some(e)) => Some((s.0.min(e.0), s.1.max(e.1))),
                (s, e) => s.or(e),
            };
        }
        Population { persons: facts }
    }
}

/// A diagnosis's ICD-10 code without its dot: given, or the code itself in an ICD-10 system;
/// empty when it has none. Borrowed unless there is a dot to take out (one per diagnosis read).
fn icd10_of(d: &tokumei_model::events::Diagnosis) -> Cow<'_, str> {
    fn undotted(c: &str) -> Cow<'_, str> {
        if c.contains('.') {
            Cow::Owned(c.replace('.', ""))
        } else {
            Cow::Borrowed(c)
        }
    }
    match (&d.icd10, d.code_system) {
        (Some(i), _) => undotted(i),
        (None, CodeSystem::Icd10) => undotted(&d.code),
        _ => Cow::Borrowed(""),
    }
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
