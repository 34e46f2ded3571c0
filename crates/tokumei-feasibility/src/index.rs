//! An index of the population for fast counts: a compressed bitmap (`roaring`) of the persons
//! holding each code in each calendar year, per event kind. A count evaluates only the persons who
//! hold, in a year the index window touches, a code the index concept could match (a superset of
//! those with an index event, found by prefix over the sorted codes, values aside), with the same
//! evaluation as a full scan: the index prunes, it never decides, so its counts equal the scan's by
//! construction.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Datelike;
use roaring::RoaringBitmap;
use tokumei_model::postings::{InProcess, PostingsEngine, PostingsError};

use crate::definition::{ConceptSet, Definition};
use crate::evaluate::{self, Counts, Event, Kind, Population};

/// The population with its code bitmaps.
pub struct Index {
    population: Population,
    /// (kind, code) → year → persons with such an event in that year.
    codes: BTreeMap<(u8, Arc<str>), BTreeMap<i32, RoaringBitmap>>,
}

fn kind_key(k: Kind) -> u8 {
    match k {
        Kind::Diagnosis => 0,
        Kind::Drug => 1,
        Kind::Procedure => 2,
        Kind::Lab => 3,
    }
}

/// The distinct (kind, year, code) of a population's events, numbered in the order they first
/// appear; an event's number is found without copying its code.
struct Terms {
    ids: HashMap<(u8, i32), HashMap<Arc<str>, u32>>,
    order: Vec<(u8, i32, Arc<str>)>,
}

impl Terms {
    fn of(population: &Population) -> Result<Terms, PostingsError> {
        let mut t = Terms {
            ids: HashMap::new(),
            order: Vec::new(),
        };
        for e in population.persons.iter().flat_map(|p| &p.events) {
            let (kind, year) = (kind_key(e.kind), e.date.year());
            let by_code = t.ids.entry((kind, year)).or_default();
            if !by_code.contains_key(&*e.code) {
                let next = u32::try_from(t.order.len())
                    .map_err(|_| PostingsError("more than 2³² terms".into()))?;
                by_code.insert(e.code.clone(), next);
                t.order.push((kind, year, e.code.clone()));
            }
        }
        Ok(t)
    }

    fn id(&self, e: &Event) -> Option<u32> {
        let by_code = self.ids.get(&(kind_key(e.kind), e.date.year()))?;
        by_code.get(&*e.code).copied()
    }

    fn count(&self) -> u32 {
        u32::try_from(self.order.len()).unwrap_or(u32::MAX)
    }
}

impl Index {
    /// Indexes a population in this process (persons numbered by their position; at most 2³²
    /// persons), its persons' events put in the order counts read them when they are not.
    pub fn build(population: Population) -> Result<Index, PostingsError> {
        Index::build_with(population, &InProcess)
    }

    /// Indexes a population with its postings built by `engine` (the same bitmaps wherever they are
    /// built): every distinct (kind, code, year) numbered in the order the events first show it,
    /// then each event as a (person, term) row.
    pub fn build_with(
        mut population: Population,
        engine: &dyn PostingsEngine,
    ) -> Result<Index, PostingsError> {
        if u32::try_from(population.persons.len()).is_err() {
            return Err(PostingsError("more than 2³² persons".into()));
        }
        for p in population.persons.iter_mut() {
            if !p
                .events
                .is_sorted_by(|a, b| (a.date, &a.code) <= (b.date, &b.code))
            {
                p.order_events();
            }
        }
        let terms = Terms::of(&population)?;
        let mut rows = population
            .persons
            .iter()
            .zip(0u32..)
            .flat_map(|(p, i)| p.events.iter().map(move |e| (i, e)))
            .filter_map(|(i, e)| terms.id(e).map(|t| (i, t)));
        let bitmaps = engine.postings(terms.count(), &mut rows)?;
        if bitmaps.len() != terms.order.len() {
            return Err(PostingsError(
                "the engine gave another number of terms".into(),
            ));
        }
        let mut codes: BTreeMap<(u8, Arc<str>), BTreeMap<i32, RoaringBitmap>> = BTreeMap::new();
        for ((kind, year, code), b) in terms.order.into_iter().zip(bitmaps) {
            codes.entry((kind, code)).or_default().insert(year, b);
        }
        Ok(Index { population, codes })
    }

    /// The population indexed.
    pub fn population(&self) -> &Population {
        &self.population
    }

    /// Distinct (kind, code) bitmaps and their serialized size in bytes.
    pub fn size(&self) -> (usize, usize) {
        let bitmaps = self.codes.values().map(BTreeMap::len).sum();
        let bytes = self
            .codes
            .values()
            .flat_map(BTreeMap::values)
            .map(RoaringBitmap::serialized_size)
            .sum();
        (bitmaps, bytes)
    }

    /// Persons holding a code of `kind` that starts with `prefix`, in one of `years`.
    fn with_prefix(&self, kind: Kind, prefix: &str, years: (i32, i32)) -> RoaringBitmap {
        let k = kind_key(kind);
        self.codes
            .range((k, Arc::<str>::from(prefix))..)
            .take_while(|((kk, code), _)| *kk == k && code.starts_with(prefix))
            .flat_map(|(_, by_year)| by_year.range(years.0..=years.1).map(|(_, b)| b))
            .fold(RoaringBitmap::new(), |acc, b| acc | b)
    }

    /// Persons holding, in one of `years`, any code the concept set could match.
    fn holding(&self, set: &ConceptSet, years: (i32, i32)) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        for c in &set.icd10 {
            out |= self.with_prefix(Kind::Diagnosis, &c.replace('.', ""), years);
        }
        for (kind, list) in [
            (Kind::Drug, &set.drug_prefixes()),
            (Kind::Procedure, &set.procedures),
            (Kind::Lab, &set.labs),
        ] {
            for c in list {
                out |= self.with_prefix(kind, c, years);
            }
        }
        out
    }

    /// Persons who may have an index event (everyone else has none).
    pub fn candidates(&self, def: &Definition) -> RoaringBitmap {
        let years = (
            def.index.from.map_or(i32::MIN, |d| d.year()),
            def.index.to.map_or(i32::MAX, |d| d.year()),
        );
        if years.0 > years.1 {
            return RoaringBitmap::new();
        }
        def.concept_sets
            .get(&def.index.concept)
            .map_or_else(RoaringBitmap::new, |set| self.holding(set, years))
    }

    /// The counts of [`evaluate::count`], evaluating the candidates only, on every core.
    pub fn count(&self, def: &Definition) -> Counts {
        let persons = &self.population.persons;
        self.in_parallel(def, |part| {
            evaluate::count_of(def, part.iter().filter_map(|&i| persons.get(i as usize)))
        })
        .into_iter()
        .fold(Counts::default(), Counts::merged)
    }

    /// The members of [`evaluate::members`], evaluating the candidates only, on every core.
    pub fn members(&self, def: &Definition) -> Vec<usize> {
        let persons = &self.population.persons;
        self.in_parallel(def, |part| {
            evaluate::members_of(
                def,
                part.iter()
                    .filter_map(|&i| persons.get(i as usize).map(|p| (i as usize, p))),
            )
        })
        .concat()
    }

    /// `work` on the candidates in as many consecutive parts as there are cores, results in the
    /// parts' order.
    fn in_parallel<T: Send>(&self, def: &Definition, work: impl Fn(&[u32]) -> T + Sync) -> Vec<T> {
        let candidates: Vec<u32> = self.candidates(def).iter().collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let size = candidates.len().div_ceil(cores).max(4096);
        if candidates.len() <= size {
            return vec![work(&candidates)];
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = candidates
                .chunks(size)
                .map(|part| s.spawn(|| work(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}
