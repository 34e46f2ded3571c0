//! The index prunes, never decides: on random populations and definitions its counts and members
//! equal a full scan's.

use chrono::NaiveDate;
use proptest::prelude::*;
use roaring::RoaringBitmap;
use tokumei_feasibility::evaluate::{count, members, Event, Facts, Kind, Population};
use tokumei_feasibility::index::Index;
use tokumei_feasibility::Definition;
use tokumei_model::postings::{self, PostingsEngine, PostingsError};

const CODES: [(Kind, &str); 8] = [
    (Kind::Diagnosis, "E119"),
    (Kind::Diagnosis, "E11"),
    (Kind::Diagnosis, "E14"),
    (Kind::Diagnosis, "I10"),
    (Kind::Drug, "3962002F1020"),
    (Kind::Drug, "2492413G1020"),
    (Kind::Lab, "3D046000001906202"),
    (Kind::Procedure, "160000410"),
];

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2021, 1, 1).expect("date") + chrono::Days::new(u64::from(n))
}

fn person(events: Vec<(usize, u32, u8)>, birth: u32, female: bool) -> Facts {
    let events: Vec<Event> = events
        .into_iter()
        .map(|(c, d, v)| Event {
            kind: CODES[c].0,
            code: CODES[c].1.into(),
            date: day(d),
            value: (CODES[c].0 == Kind::Lab).then_some(f64::from(v) / 10.0),
        })
        .collect();
    let first = events.iter().map(|e| e.date).min();
    let observed = first.zip(events.iter().map(|e| e.date).max());
    let mut f = Facts {
        sex: Some(if female { "F" } else { "M" }.into()),
        birth: NaiveDate::from_ymd_opt(1930 + birth as i32, 6, 1),
        municipality: Some("022012".into()),
        death: None,
        providers: vec!["H01".into()],
        main_provider: Some("H01".into()),
        observed,
        events,
    };
    f.order_events();
    f
}

fn definition(index: &str, from: u32, len: u32, age: (u32, u32), window: (i32, i32)) -> Definition {
    let text = format!(
        r#"name = "random"
[concept_sets]
dx = {{ icd10 = ["{index}"] }}
drug = {{ drugs = ["3962"] }}
insulin = {{ drugs = ["2492"] }}
lab = {{ labs = ["3D046"], value = {{ min = 7.0 }} }}
[index]
concept = "dx"
from = "{}"
to = "{}"
[demographics]
age = {{ min = {}, max = {} }}
[[rules]]
name = "drug in the window"
event = {{ concept = "drug", window = {{ from = {}, to = {} }} }}
[[rules]]
name = "no insulin before, or a high lab"
any = [{{ not = {{ event = {{ concept = "insulin", window = {{ to = -1 }} }} }} }}, {{ event = {{ concept = "lab" }} }}]
"#,
        day(from),
        day(from + len),
        age.0,
        age.0 + age.1,
        window.0,
        window.0 + window.1,
    );
    Definition::parse(&text, false).expect("definition")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_index_counts_what_a_scan_counts(
        people in proptest::collection::vec(
            (
                proptest::collection::vec((0usize..8, 0u32..1200, 50u8..100), 0..12),
                0u32..70,
                any::<bool>(),
            ),
            0..60,
        ),
        index in prop_oneof![Just("E11"), Just("E11.9"), Just("I10"), Just("E119"), Just("K25")],
        from in 0u32..600,
        len in 30u32..700,
        age in (20u32..60, 0u32..40),
        window in (-200i32..100, 0i32..300),
    ) {
        let population = Population {
            persons: people.into_iter().map(|(e, b, f)| person(e, b, f)).collect(),
        };
        let def = definition(index, from, len, age, window);
        let scan = count(&def, &population);
        let scan_members = members(&def, &population);
        let index = Index::build(population).expect("index");
        prop_assert_eq!(index.count(&def), scan);
        prop_assert_eq!(index.members(&def), scan_members);
    }
}

#[test]
fn only_holders_of_an_index_code_are_candidates() {
    let population = Population {
        persons: vec![
            person(vec![(0, 10, 0)], 30, true),
            person(vec![(3, 10, 0)], 30, true),
            person(vec![(1, 500, 0), (4, 510, 0)], 30, false),
        ],
    };
    let def = definition("E11", 0, 1000, (20, 60), (0, 90));
    let index = Index::build(population).expect("index");
    let c: Vec<u32> = index.candidates(&def).iter().collect();
    assert_eq!(c, vec![0, 2]);
    assert_eq!(index.members(&def), vec![2]);
}

/// An engine that reads the rows in reverse order, as a cluster returns them in any order.
struct Reversed;

impl PostingsEngine for Reversed {
    fn postings(
        &self,
        terms: u32,
        rows: &mut dyn Iterator<Item = (u32, u32)>,
    ) -> Result<Vec<RoaringBitmap>, PostingsError> {
        let mut all: Vec<(u32, u32)> = rows.collect();
        all.reverse();
        postings::postings(terms, &mut all.into_iter())
            .ok_or_else(|| PostingsError("unknown term".into()))
    }
}

/// An engine that loses the last term.
struct Short;

impl PostingsEngine for Short {
    fn postings(
        &self,
        terms: u32,
        rows: &mut dyn Iterator<Item = (u32, u32)>,
    ) -> Result<Vec<RoaringBitmap>, PostingsError> {
        let mut v = postings::postings(terms, rows).unwrap_or_default();
        v.pop();
        Ok(v)
    }
}

#[test]
fn an_index_built_by_another_engine_counts_the_same_and_a_short_answer_is_refused() {
    let people = || Population {
        persons: vec![
            person(vec![(0, 10, 0), (2, 40, 0)], 30, true),
            person(vec![(3, 10, 0), (0, 400, 0)], 50, false),
            person(vec![(1, 500, 0), (4, 510, 0)], 30, false),
        ],
    };
    let def = definition("E11", 0, 1000, (20, 60), (0, 90));
    let here = Index::build(people()).expect("index");
    let there = Index::build_with(people(), &Reversed).expect("index");
    assert_eq!(here.size(), there.size());
    assert_eq!(here.candidates(&def), there.candidates(&def));
    assert_eq!(here.count(&def), there.count(&def));
    assert!(Index::build_with(people(), &Short).is_err());
}
