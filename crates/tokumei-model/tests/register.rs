//! The class finder finds, for any register person, exactly the released classes every one of
//! whose values the person agrees with (each distinct class under its first number), and the
//! counts add up: every person's classes are counted, and the score histogram covers the register.

use chrono::NaiveDate;
use proptest::prelude::*;
use tokumei_model::register::{self, agrees, ClassFinder, RegisterJob, RegisterPerson};

const COLUMNS: [&str; 5] = ["sex", "age", "birth_year_month", "birth_date", "prefecture"];

/// Released values of each column: exact, generalized, top and blank.
fn value(column: usize) -> BoxedStrategy<Option<String>> {
    let pool: &[&str] = match column {
        0 => &["M", "F", "*"],
        1 => &["40-49", "43", "90+", "0-39", "*", "x"],
        2 => &["1980-05", "1980-1989", "1981", "1980-06", "*"],
        3 => &["1980-05-02", "1980-05-03", "1980-5-02", "*"],
        _ => &["13", "131016", "01", "*"],
    };
    prop_oneof![
        4 => proptest::sample::select(pool.to_vec()).prop_map(|v| Some(v.to_string())),
        1 => Just(None),
    ]
    .boxed()
}

fn class() -> impl Strategy<Value = Vec<Option<String>>> {
    (value(0), value(1), value(2), value(3), value(4))
        .prop_map(|(a, b, c, d, e)| vec![a, b, c, d, e])
}

fn person() -> impl Strategy<Value = RegisterPerson> {
    let births = [
        "1980-05-02",
        "1980-05-03",
        "1981-01-01",
        "1933-12-31",
        "2000-02-29",
    ];
    let places = ["131016", "131024", "011002"];
    (
        proptest::option::of(proptest::sample::select(vec!["M", "F"])),
        proptest::option::of(proptest::sample::select(births.to_vec())),
        proptest::option::of(proptest::sample::select(places.to_vec())),
    )
        .prop_map(|(sex, birth, place)| RegisterPerson {
            id: String::new(),
            sex: sex.map(str::to_string),
            birth: birth.and_then(|b| NaiveDate::parse_from_str(b, "%Y-%m-%d").ok()),
            municipality: place.map(str::to_string),
        })
}

proptest! {
    #[test]
    fn classes_found_are_those_every_value_agrees_with(
        classes in proptest::collection::vec(class(), 1..24),
        people in proptest::collection::vec(person(), 1..24),
    ) {
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
        let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        let f = ClassFinder::new(&columns, classes.clone(), end);
        let mut found = Vec::new();
        for p in &people {
            f.classes_of(p, &mut found);
            found.sort_unstable();
            let want: Vec<u32> = (0..classes.len())
                .filter(|n| classes[..*n].iter().all(|c| *c != classes[*n]))
                .filter(|n| {
                    COLUMNS.iter().zip(&classes[*n]).all(|(c, v)| {
                        v.as_deref().is_none_or(|v| agrees(c, v, p, end))
                    })
                })
                .map(|n| n as u32)
                .collect();
            prop_assert_eq!(&found, &want);
        }
        let release = vec![1u64; classes.len()];
        let members: Vec<bool> = (0..people.len()).map(|i| i % 2 == 0).collect();
        let job = RegisterJob { finder: &f, release: &release, register: &people, members: Some(&members) };
        let counts = register::counts(&job);
        let total: u64 = counts.scores.expect("scores").iter().map(|s| s.members + s.others).sum();
        prop_assert_eq!(total, people.len() as u64);
    }
}
