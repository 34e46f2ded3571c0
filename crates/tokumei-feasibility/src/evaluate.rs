//! Counting persons who meet a definition: the population (persons with their facts and events,
//! those who asked to stop already left out), the index date of each, the attrition step by step,
//! and breakdowns of the final cohort. Counts are of persons, never of records: each person
//! contributes at most one to every figure.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use crate::definition::{AgeRange, ConceptSet, Criterion, Definition, EventCriterion};

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// A diagnosis (its ICD-10 code, given or mapped from the 傷病名コード).
    Diagnosis,
    /// A prescription or dispensing.
    Drug,
    /// A procedure (診療行為).
    Procedure,
    /// A laboratory result.
    Lab,
}

/// One event of a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its kind.
    pub kind: Kind,
    /// Its code (for a diagnosis the ICD-10 code without a dot, empty when it has none), shared
    /// by every event of the code (a population holds hundreds of millions of events and a few
    /// thousand codes).
    pub code: Arc<str>,
    /// Its date.
    pub date: NaiveDate,
    /// A laboratory result's numeric value.
    pub value: Option<f64>,
}

/// A person as counts see them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Sex code (`M`, `F`).
    pub sex: Option<String>,
    /// Birth date.
    pub birth: Option<NaiveDate>,
    /// Municipality code of the latest address.
    pub municipality: Option<String>,
    /// Death date.
    pub death: Option<NaiveDate>,
    /// Providers the person has records with (sorted, distinct).
    pub providers: Vec<String>,
    /// The provider holding most of the person's events (ties: the smaller id): where the person
    /// counts in the per-provider breakdown, once.
    pub main_provider: Option<String>,
    /// First and last day of any record (the observation period).
    pub observed: Option<(NaiveDate, NaiveDate)>,
    /// Events, by date, then code ([`Facts::order_events`]): a count reads only the days its
    /// criteria ask for.
    pub events: Vec<Event>,
}

impl Facts {
    /// Puts the events in the order counts read them: by date, then code.
    pub fn order_events(&mut self) {
        self.events
            .sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.code.cmp(&b.code)));
    }
}

/// The persons counted (those who asked to stop are never in it).
#[derive(Debug, Clone, Default)]
pub struct Population {
    /// The persons.
    pub persons: Vec<Facts>,
}

impl Population {
    /// The 二次医療圏 of the population's municipalities, sorted (whatever the cohort).
    pub fn areas(&self) -> Vec<String> {
        let set: std::collections::BTreeSet<String> = self
            .persons
            .iter()
            .filter_map(|p| p.municipality.as_deref())
            .filter_map(tokumei_japan::place::medical_area_of_code)
            .map(String::from)
            .collect();
        set.into_iter().collect()
    }
}

/// One step of the attrition: persons left after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What the step requires.
    pub name: String,
    /// Persons meeting it and every step before.
    pub persons: u64,
}

/// Persons of the final cohort per value of one attribute.
pub type Breakdown = BTreeMap<String, u64>;

/// True counts, before disclosure control (never shown as such).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// The attrition, first step the index event.
    pub steps: Vec<Step>,
    /// Final cohort by sex.
    pub sex: Breakdown,
    /// Final cohort by 10-year age band at the index date.
    pub age_band: Breakdown,
    /// Final cohort by 二次医療圏 of the latest address.
    pub area: Breakdown,
    /// Final cohort by provider (each person once, for their main provider).
    pub provider: Breakdown,
}

impl Counts {
    /// Persons in the final cohort.
    pub fn total(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.persons)
    }

    /// The counts of two disjoint sets of persons under the same definition, added.
    pub fn merged(mut self, other: Counts) -> Counts {
        if self.steps.is_empty() {
            return other;
        }
        for (a, b) in self.steps.iter_mut().zip(other.steps) {
            a.persons += b.persons;
        }
        for (mine, theirs) in [
            (&mut self.sex, other.sex),
            (&mut self.age_band, other.age_band),
            (&mut self.area, other.area),
            (&mut self.provider, other.provider),
        ] {
            for (k, v) in theirs {
                *mine.entry(k).or_default() += v;
            }
        }
        self
    }
}

/// Completed years from `birth` to `day`, never negative.
pub fn age_on(birth: NaiveDate, day: NaiveDate) -> u32 {
    u32::try_from(tokumei_model::age_on(birth, day)).unwrap_or(0)
}

/// The 10-year band of an age (`40-49`, `90+`).
pub fn age_band(age: u32) -> String {
    if age >= 90 {
        "90+".into()
    } else {
        let lo = age / 10 * 10;
        format!("{lo}-{}", lo + 9)
    }
}

/// A concept set ready to match events: its ICD-10 codes without their dots and its drug prefixes
/// ([`ConceptSet::drug_prefixes`]), once.
struct Concept<'a> {
    set: &'a ConceptSet,
    icd10: Vec<String>,
    drugs: Vec<String>,
}

/// Every concept set of a definition, by name.
type Concepts<'a> = BTreeMap<&'a str, Concept<'a>>;

fn concepts(def: &Definition) -> Concepts<'_> {
    def.concept_sets
        .iter()
        .map(|(name, set)| {
            let icd10 = set.icd10.iter().map(|c| c.replace('.', "")).collect();
            let drugs = set.drug_prefixes();
            (name.as_str(), Concept { set, icd10, drugs })
        })
        .collect()
}

fn matches(c: &Concept, e: &Event) -> bool {
    let set = c.set;
    let prefix = |list: &[String]| list.iter().any(|p| e.code.starts_with(p.as_str()));
    match e.kind {
        Kind::Diagnosis => c.icd10.iter().any(|code| {
            if set.descendants {
                e.code.starts_with(code.as_str())
            } else {
                *e.code == **code
            }
        }),
        Kind::Drug => prefix(&c.drugs),
        Kind::Procedure => prefix(&set.procedures),
        Kind::Lab => {
            prefix(&set.labs)
                && set.value.is_none_or(|r| {
                    e.value.is_some_and(|v| {
                        r.min.is_none_or(|m| v >= m) && r.max.is_none_or(|m| v <= m)
                    })
                })
        }
    }
}

fn in_age(a: AgeRange, age: Option<u32>) -> bool {
    match age {
        Some(x) => a.min.is_none_or(|m| x >= m) && a.max.is_none_or(|m| x <= m),
        None => a.min.is_none() && a.max.is_none(),
    }
}

/// One person against a definition.
struct Subject<'a> {
    def: &'a Definition,
    concepts: &'a Concepts<'a>,
    p: &'a Facts,
    index: NaiveDate,
}

impl Subject<'_> {
    fn age(&self) -> Option<u32> {
        self.p.birth.map(|b| age_on(b, self.index))
    }

    /// The day `days` after the index (before it when negative; none when open), saturating at
    /// the calendar's ends.
    fn shifted(&self, days: Option<i32>) -> Option<NaiveDate> {
        let d = days?;
        Some(
            self.index
                .checked_add_signed(chrono::Duration::days(i64::from(d)))
                .unwrap_or(if d < 0 {
                    NaiveDate::MIN
                } else {
                    NaiveDate::MAX
                }),
        )
    }

    fn event(&self, c: &EventCriterion) -> bool {
        let Some(set) = self.concepts.get(c.concept.as_str()) else {
            return false;
        };
        let (from, to) = (self.shifted(c.window.from), self.shifted(c.window.to));
        // Distinct days of matching events (the events are by date).
        let (mut n, mut last) = (0u32, None);
        for e in in_dates(&self.p.events, from, to) {
            if last != Some(e.date) && matches(set, e) {
                n = n.saturating_add(1);
                last = Some(e.date);
            }
        }
        n >= c.at_least && c.at_most.is_none_or(|m| n <= m)
    }

    fn meets(&self, c: &Criterion) -> bool {
        match c {
            Criterion::All(list) => list.iter().all(|x| self.meets(x)),
            Criterion::Any(list) => list.iter().any(|x| self.meets(x)),
            Criterion::Not(x) => !self.meets(x),
            Criterion::Event(e) => self.event(e),
            Criterion::Death(w) => self
                .p
                .death
                .is_some_and(|d| w.contains((d - self.index).num_days())),
            Criterion::Age(a) => in_age(*a, self.age()),
            Criterion::Sex(s) => self.p.sex.as_deref() == Some(s.code()),
        }
    }

    fn demographics(&self) -> bool {
        let d = &self.def.demographics;
        let area = || {
            self.p
                .municipality
                .as_deref()
                .and_then(tokumei_japan::place::medical_area_of_code)
        };
        d.sex
            .is_none_or(|s| self.p.sex.as_deref() == Some(s.code()))
            && d.age.is_none_or(|a| in_age(a, self.age()))
            && (d.municipalities.is_empty()
                || self
                    .p
                    .municipality
                    .as_ref()
                    .is_some_and(|m| d.municipalities.contains(m)))
            && (d.areas.is_empty() || area().is_some_and(|a| d.areas.iter().any(|x| x == a)))
            && (d.providers.is_empty() || self.p.providers.iter().any(|p| d.providers.contains(p)))
    }

    fn observed(&self) -> bool {
        let o = self.def.observation;
        let Some((first, last)) = self.p.observed else {
            return o.before == 0 && o.after == 0;
        };
        let before = (self.index - first).num_days() >= i64::from(o.before);
        let end = self.p.death.map_or(last, |d| d.max(last));
        let after = (end - self.index).num_days() >= i64::from(o.after)
            || self.p.death.is_some_and(|d| d >= self.index);
        before && after
    }
}

/// The index date of a person: the first event of the index concept within the period.
fn index_of(def: &Definition, concepts: &Concepts, p: &Facts) -> Option<NaiveDate> {
    let set = concepts.get(def.index.concept.as_str())?;
    in_dates(&p.events, def.index.from, def.index.to)
        .find(|e| matches(set, e))
        .map(|e| e.date)
}

/// The events (by date) from `from` to `to` (bounds included; open when absent), found by binary
/// search.
fn in_dates(
    events: &[Event],
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> impl Iterator<Item = &Event> {
    let start = from.map_or(0, |f| events.partition_point(|e| e.date < f));
    let end = to.map_or(events.len(), |t| events.partition_point(|e| e.date <= t));
    events.get(start..end.max(start)).unwrap_or_default().iter()
}

/// Counts the persons of `population` meeting `def`, step by step, with breakdowns of the final
/// cohort.
pub fn count(def: &Definition, population: &Population) -> Counts {
    count_of(def, population.persons.iter())
}

/// Counts like [`count`], over the persons given (those without an index event may be left out:
/// they count nowhere).
pub fn count_of<'a>(def: &Definition, persons: impl Iterator<Item = &'a Facts>) -> Counts {
    let names: Vec<String> = ["index event in the period", "demographics", "observation"]
        .into_iter()
        .map(String::from)
        .chain(def.rules.iter().map(|r| r.name.clone()))
        .collect();
    let mut left = vec![0u64; names.len()];
    let mut out = Counts::default();
    let concepts = concepts(def);
    for p in persons {
        let Some((passed, s)) = steps_passed(def, &concepts, p) else {
            continue;
        };
        for l in left.iter_mut().take(passed) {
            *l += 1;
        }
        if passed == names.len() {
            tally(&mut out, &s);
        }
    }
    out.steps = names
        .into_iter()
        .zip(left)
        .map(|(name, persons)| Step { name, persons })
        .collect();
    out
}

/// How many steps of the attrition a person passes (with the person as evaluated), or `None`
/// without an index event.
fn steps_passed<'a>(
    def: &'a Definition,
    concepts: &'a Concepts,
    p: &'a Facts,
) -> Option<(usize, Subject<'a>)> {
    let index = index_of(def, concepts, p)?;
    let s = Subject {
        def,
        concepts,
        p,
        index,
    };
    let passed = std::iter::once(true)
        .chain(std::iter::once_with(|| s.demographics()))
        .chain(std::iter::once_with(|| s.observed()))
        .chain(def.rules.iter().map(|r| s.meets(&r.criterion)))
        .take_while(|&ok| ok)
        .count();
    Some((passed, s))
}

/// The positions in `population` of the persons of the final cohort (for recruitment lists, never
/// shown as counts).
pub fn members(def: &Definition, population: &Population) -> Vec<usize> {
    members_of(def, population.persons.iter().enumerate())
}

/// The positions of the persons of the final cohort among those given (with their positions).
pub fn members_of<'a>(
    def: &Definition,
    persons: impl Iterator<Item = (usize, &'a Facts)>,
) -> Vec<usize> {
    let concepts = concepts(def);
    let all = 3 + def.rules.len();
    persons
        .filter(|(_, p)| steps_passed(def, &concepts, p).is_some_and(|(n, _)| n == all))
        .map(|(i, _)| i)
        .collect()
}

fn tally(out: &mut Counts, s: &Subject) {
    let unknown = || "unknown".to_string();
    *out.sex
        .entry(s.p.sex.clone().unwrap_or_else(unknown))
        .or_default() += 1;
    *out.age_band
        .entry(s.age().map_or_else(unknown, age_band))
        .or_default() += 1;
    let area =
        s.p.municipality
            .as_deref()
            .and_then(tokumei_japan::place::medical_area_of_code)
            .map_or_else(unknown, String::from);
    *out.area.entry(area).or_default() += 1;
    let main = s.p.main_provider.clone().unwrap_or_else(unknown);
    *out.provider.entry(main).or_default() += 1;
}
