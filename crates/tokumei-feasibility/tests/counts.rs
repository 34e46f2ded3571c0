//! Cohort definitions, counts and disclosure control on hand-built populations.

use chrono::NaiveDate;
use proptest::prelude::*;
use tokumei_feasibility::disclosure::{apply, shown, Policy, Shown};
use tokumei_feasibility::evaluate::{count, Counts, Event, Facts, Kind, Population, Step};
use tokumei_feasibility::noise::Widths;
use tokumei_feasibility::Definition;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn ev(kind: Kind, code: &str, date: &str, value: Option<f64>) -> Event {
    Event {
        kind,
        code: code.into(),
        date: day(date),
        value,
    }
}

fn person(sex: &str, birth: &str, events: Vec<Event>) -> Facts {
    let first = events.iter().map(|e| e.date).min();
    let observed = first.zip(events.iter().map(|e| e.date).max());
    let mut f = Facts {
        sex: Some(sex.into()),
        birth: Some(day(birth)),
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

const DEFINITION: &str = r#"
name = "t2dm"
[concept_sets]
t2dm = { icd10 = ["E11"] }
metformin = { drugs = ["3962002"] }
insulin = { drugs = ["2492"] }
hba1c = { labs = ["3D046"], value = { min = 7.0 } }
[index]
concept = "t2dm"
from = "2022-01-01"
[demographics]
age = { min = 40, max = 74 }
[observation]
before = 30
[[rules]]
name = "metformin within 90 days"
event = { concept = "metformin", window = { from = 0, to = 90 } }
[[rules]]
name = "no insulin before"
not = { event = { concept = "insulin", window = { to = -1 } } }
[[rules]]
name = "two high HbA1c"
event = { concept = "hba1c", at_least = 2 }
"#;

/// Persons built to pass each step up to a known one.
fn population() -> Population {
    use Kind::*;
    let base = |extra: Vec<Event>| {
        let mut e = vec![
            ev(Diagnosis, "I10", "2021-11-01", None),
            ev(Diagnosis, "E119", "2022-02-01", None),
        ];
        e.extend(extra);
        e
    };
    let full = || {
        base(vec![
            ev(Drug, "3962002F1020", "2022-03-01", None),
            ev(Lab, "3D046000001906202", "2022-02-01", Some(7.5)),
            ev(Lab, "3D046000001906202", "2022-05-01", Some(8.1)),
        ])
    };
    Population {
        persons: vec![
            // 0: no diabetes.
            person(
                "F",
                "1960-01-01",
                vec![ev(Diagnosis, "I10", "2022-03-01", None)],
            ),
            // 1: too young.
            person("M", "1995-01-01", full()),
            // 2: no record 30 days before the index.
            person(
                "M",
                "1960-01-01",
                vec![
                    ev(Diagnosis, "E11", "2022-02-01", None),
                    ev(Drug, "3962002F1020", "2022-03-01", None),
                ],
            ),
            // 3: metformin too late (day 120).
            person(
                "F",
                "1960-01-01",
                base(vec![ev(Drug, "3962002F1020", "2022-06-01", None)]),
            ),
            // 4: insulin before the index.
            person("F", "1960-01-01", {
                let mut e = full();
                e.push(ev(Drug, "2492413G1020", "2021-12-01", None));
                e
            }),
            // 5: one high HbA1c only (the other is 6.5).
            person(
                "M",
                "1960-01-01",
                base(vec![
                    ev(Drug, "3962002F1020", "2022-03-01", None),
                    ev(Lab, "3D046000001906202", "2022-02-01", Some(7.5)),
                    ev(Lab, "3D046000001906202", "2022-05-01", Some(6.5)),
                ]),
            ),
            // 6, 7: everything.
            person("F", "1960-01-01", full()),
            person("M", "1955-06-30", full()),
        ],
    }
}

#[test]
fn the_attrition_counts_each_person_at_the_step_they_fail() {
    let def = Definition::parse(DEFINITION, false).expect("definition");
    let c = count(&def, &population());
    let steps: Vec<(&str, u64)> = c
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.persons))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("index event in the period", 7),
            ("demographics", 6),
            ("observation", 5),
            ("metformin within 90 days", 4),
            ("no insulin before", 3),
            ("two high HbA1c", 2),
        ]
    );
    assert_eq!(c.total(), 2);
    assert_eq!(c.sex.get("F"), Some(&1));
    assert_eq!(c.sex.get("M"), Some(&1));
    // Ages at the index (2022-02-01): 62 and 66.
    assert_eq!(c.age_band.get("60-69"), Some(&2));
    assert_eq!(c.provider.get("H01"), Some(&2));
}

#[test]
fn the_members_of_a_recruitment_list_are_exactly_those_counted_in_the_final_cohort() {
    let def = Definition::parse(DEFINITION, false).expect("definition");
    let pop = population();
    assert_eq!(
        tokumei_feasibility::evaluate::members(&def, &pop),
        vec![6, 7]
    );
    // A person who fails any step (here the youngest, 1, and the one with insulin, 4) is never a
    // member, whatever else they meet.
    let mut younger = pop.clone();
    younger.persons[7].birth = NaiveDate::from_ymd_opt(2000, 1, 1);
    assert_eq!(
        tokumei_feasibility::evaluate::members(&def, &younger),
        vec![6]
    );
}

#[test]
fn a_person_counts_once_however_many_events() {
    let def = Definition::parse(DEFINITION, false).expect("definition");
    let mut pop = population();
    let twin = pop.persons[6].clone();
    pop.persons[6].events.extend(
        twin.events
            .iter()
            .cloned()
            .chain(twin.events.iter().cloned()),
    );
    pop.persons[6].order_events();
    assert_eq!(count(&def, &pop).total(), 2);
}

#[test]
fn definitions_are_refused_with_the_path_of_the_fault() {
    let cases = [
        (
            DEFINITION.replace("concept = \"metformin\"", "concept = \"metformn\""),
            "rules[0].event.concept: unknown concept set `metformn`",
        ),
        (
            DEFINITION.replace("icd10 = [\"E11\"]", "icd10 = [\"E1\"]"),
            "concept_sets.t2dm: `E1` is not an ICD-10 code",
        ),
        (
            DEFINITION.replace("from = 0, to = 90", "from = 90, to = 0"),
            "rules[0].event.window: the window ends",
        ),
        (
            DEFINITION.replace("min = 40, max = 74", "min = 74, max = 40"),
            "demographics.age",
        ),
        (
            DEFINITION.replace("[observation]", "[observation]\nbefor = 3"),
            "unknown field `befor`",
        ),
        (
            DEFINITION.replace("not = {", "nor = {"),
            "unknown field `nor`, expected one of `name`, `all`",
        ),
    ];
    for (text, wanted) in cases {
        let e = Definition::parse(&text, false)
            .expect_err(wanted)
            .to_string();
        assert!(e.contains(wanted), "{e} / {wanted}");
    }
    // The same definition as JSON parses to the same thing, with the same hash.
    let def = Definition::parse(DEFINITION, false).expect("definition");
    let json = serde_json::to_string(&def).expect("json");
    let again = Definition::parse(&json, true).expect("json definition");
    assert_eq!(again, def);
    assert_eq!(again.hash(), def.hash());
}

#[test]
fn the_shipped_schema_is_the_one_the_types_generate() {
    let shipped = include_str!("../schema/cohort.schema.json");
    assert!(
        shipped == tokumei_feasibility::definition::schema(),
        "schema/cohort.schema.json is stale: tokumei feasibility schema > crates/tokumei-feasibility/schema/cohort.schema.json"
    );
}

#[test]
fn the_shipped_example_and_policy_parse() {
    let def = Definition::parse(include_str!("../cohorts/t2dm-metformin.toml"), false);
    assert!(def.is_ok(), "{def:?}");
    let p = Policy::parse(include_str!("../policies/ndb.toml")).expect("policy");
    assert_eq!((p.min_cell, p.rounding), (10, 10));
    assert_eq!(Policy::ndb(), p);
}

fn value(s: &Shown) -> Option<u64> {
    match s {
        Shown::Count { value, .. } => Some(*value),
        Shown::Suppressed => None,
    }
}

#[test]
fn small_counts_are_suppressed_and_shown_counts_rounded_with_their_range() {
    let p = Policy::ndb();
    assert_eq!(
        shown(&p, 0, 0),
        Shown::Count {
            value: 0,
            range: [0, 0]
        }
    );
    for n in 1..10 {
        assert_eq!(shown(&p, n, 0), Shown::Suppressed, "{n}");
    }
    assert_eq!(
        shown(&p, 10, 0),
        Shown::Count {
            value: 10,
            range: [10, 14]
        }
    );
    assert_eq!(
        shown(&p, 134, 0),
        Shown::Count {
            value: 130,
            range: [125, 134]
        }
    );
    assert_eq!(
        shown(&p, 135, 0),
        Shown::Count {
            value: 140,
            range: [135, 144]
        }
    );
    // With noise of 95 % half-width 15, the interval widens by it on both sides, and a true count
    // under min_cell is no longer ruled out.
    assert_eq!(
        shown(&p, 134, 15),
        Shown::Count {
            value: 130,
            range: [110, 149]
        }
    );
    assert_eq!(
        shown(&p, 10, 15),
        Shown::Count {
            value: 10,
            range: [0, 29]
        }
    );
}

proptest! {
    /// No shown cell holds 1–9, every shown count's range holds the true count, and no hidden
    /// cell of a breakdown that partitions the cohort is alone (so none follows from the total).
    #[test]
    fn no_small_cell_is_shown_or_alone_in_a_partition(
        sex in proptest::collection::vec(0u64..40, 1..4),
        bands in proptest::collection::vec(0u64..40, 1..10),
    ) {
        let p = Policy::ndb();
        let total: u64 = sex.iter().sum();
        let bands: Vec<u64> = {
            // Scale the bands to the same total (a partition of the same cohort).
            let mut b = bands.clone();
            let s: u64 = b.iter().sum();
            for x in b.iter_mut() { *x = (*x * total).checked_div(s).unwrap_or(0); }
            let rest = total - b.iter().sum::<u64>();
            b[0] += rest;
            b
        };
        let counts = Counts {
            steps: vec![Step { name: "index".into(), persons: total }],
            sex: sex.iter().enumerate().map(|(i, &n)| (format!("s{i}"), n)).collect(),
            age_band: bands.iter().enumerate().map(|(i, &n)| (format!("b{i}"), n)).collect(),
            ..Counts::default()
        };
        let a = apply(&p, &counts, &Widths::exact(1));
        for (cells, truth) in [(&a.sex, &counts.sex), (&a.age_band, &counts.age_band)] {
            if cells.withheld.is_some() {
                continue;
            }
            let hidden = cells.cells.values().filter(|s| value(s).is_none()).count();
            prop_assert!(hidden != 1, "{cells:?}");
            for (k, s) in &cells.cells {
                if let Shown::Count { value, range } = s {
                    prop_assert!(*value == 0 || *value >= 10);
                    prop_assert!(range[0] <= truth[k] && truth[k] <= range[1]);
                }
            }
        }
    }
}

#[test]
fn a_concept_over_several_kinds_counts_distinct_days_across_them() {
    use Kind::*;
    let def = Definition::parse(
        r#"
name = "mixed"
[concept_sets]
t2dm = { icd10 = ["E11"] }
treated = { icd10 = ["E11"], drugs = ["3962002"] }
[index]
concept = "t2dm"
[[rules]]
name = "treated on two days"
event = { concept = "treated", at_least = 2 }
"#,
        false,
    )
    .expect("definition");
    let same_day = person(
        "F",
        "1960-01-01",
        vec![
            ev(Drug, "3962002F1020", "2022-02-01", None),
            ev(Diagnosis, "E119", "2022-02-01", None),
        ],
    );
    let two_days = person(
        "F",
        "1960-01-01",
        vec![
            ev(Drug, "3962002F1020", "2022-03-01", None),
            ev(Diagnosis, "E119", "2022-02-01", None),
        ],
    );
    let c = count(
        &def,
        &Population {
            persons: vec![same_day, two_days],
        },
    );
    assert_eq!(
        c.steps.iter().map(|s| s.persons).collect::<Vec<_>>(),
        [2, 2, 2, 1]
    );
}
