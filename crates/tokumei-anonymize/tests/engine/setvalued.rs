//! (k, k^m)-anonymity for persons with their event sets: every output satisfies the model, checked
//! by brute force over every subset of at most m items, for the exhaustive and the greedy search.

use proptest::prelude::*;
use tokumei_anonymize::setvalued::brute_force_violations;
use tokumei_anonymize::{Hierarchy, KmConfig, KmNode, SetValued};

/// Codes `A0`..`C3` (letter → `*`), months of 2022 (month → quarter → year → `*`).
fn hierarchies() -> (Hierarchy, Hierarchy, Hierarchy) {
    let codes: Vec<Vec<String>> = (0..12)
        .map(|i| {
            let letter = ["A", "B", "C"][i / 4];
            vec![
                format!("{letter}{}", i % 4),
                letter.to_string(),
                "*".to_string(),
            ]
        })
        .collect();
    let codes = Hierarchy::from_rows("codes", codes).unwrap();
    let months: Vec<String> = (1..=12).map(|m| format!("2022-{m:02}")).collect();
    let months = Hierarchy::calendar_months(&months).unwrap();
    let sex = Hierarchy::flat(&["F", "M"]).unwrap();
    (codes, months, sex)
}

/// Persons (sex index, events as (kind, code index, month index)).
type Persons = Vec<(u8, Vec<(u8, u8, u8)>)>;

fn data(persons: &Persons) -> SetValued {
    let (codes, months, sex) = hierarchies();
    let mut d = SetValued::new(persons.len());
    let sexes: Vec<&str> = persons
        .iter()
        .map(|(s, _)| ["F", "M"][usize::from(s % 2)])
        .collect();
    d.quasi_identifier("sex", &sexes, &sex).unwrap();
    d.kind("diagnoses", &codes, &months).unwrap();
    d.kind("prescriptions", &codes, &months).unwrap();
    for (p, (_, events)) in persons.iter().enumerate() {
        for &(kind, code, month) in events {
            let letter = ["A", "B", "C"][usize::from(code % 12) / 4];
            let code = format!("{letter}{}", code % 4);
            let month = format!("2022-{:02}", month % 12 + 1);
            d.event(p, usize::from(kind % 2), &code, &month).unwrap();
        }
    }
    d
}

/// Every column at its finest level.
fn finest() -> KmNode {
    KmNode {
        qi: vec![0],
        kinds: vec![(0, 0), (0, 0)],
    }
}

/// The model enforced at [`finest`] (a valid node).
fn at_finest(d: &SetValued, k: usize, m: usize) -> tokumei_anonymize::KmOutcome {
    let cfg = KmConfig {
        k,
        m,
        ..KmConfig::default()
    };
    d.apply(&cfg, &finest()).unwrap().expect("valid")
}

fn violations(d: &SetValued, out: &tokumei_anonymize::KmOutcome, k: usize, m: usize) -> usize {
    brute_force_violations(&d.released_classes(out), &d.released_items(out), k, m)
}

#[test]
fn a_pair_held_by_one_person_is_broken_and_shared_items_stay() {
    // Ten persons share A0 and B0 in January; person 0 alone also has C0 in March.
    let mut persons: Persons = (0..10).map(|_| (0, vec![(0, 0, 0), (1, 4, 0)])).collect();
    persons[0].1.push((0, 8, 2));
    let d = data(&persons);
    let cfg = KmConfig {
        k: 10,
        m: 2,
        ..KmConfig::default()
    };
    let node = finest();
    let out = d.apply(&cfg, &node).unwrap().expect("valid");
    assert_eq!(out.persons_suppressed, 0);
    // The one rare item goes; the twenty shared rows stay.
    assert_eq!(out.rows_removed, 1);
    assert!(!out.row_released[2]);
    assert_eq!(violations(&d, &out, 10, 2), 0);
    // Unprotected, the rare item violates.
    let raw = KmConfig { k: 10, m: 0, ..cfg };
    let all = d.apply(&raw, &node).unwrap().expect("valid");
    assert!(violations(&d, &all, 10, 2) > 0);
    let items: Vec<Vec<u32>> = d.released_items(&all).into_iter().flatten().collect();
    let fast = tokumei_anonymize::setvalued::violations(&d.released_classes(&all), items, 10, 2);
    assert!(fast > 0);
}

/// `n` women: persons `0..a_until` hold diagnosis A0, persons `b_from..n` prescription B0, both in
/// January.
fn overlapping(n: usize, a_until: usize, b_from: usize) -> Persons {
    (0..n)
        .map(|p| {
            let mut e = Vec::new();
            if p < a_until {
                e.push((0, 0, 0));
            }
            if p >= b_from {
                e.push((1, 4, 0));
            }
            (0, e)
        })
        .collect()
}

#[test]
fn a_rare_pair_of_common_items_is_broken() {
    // Persons 0..10 hold A0 (January); persons 5..15 hold B0 (January); only 5..10 hold both.
    let persons = overlapping(15, 10, 5);
    let d = data(&persons);
    for (m, rows_removed) in [(1, 0), (2, 5)] {
        let out = at_finest(&d, 6, m);
        assert_eq!(out.rows_removed, rows_removed, "m = {m}");
        assert_eq!(violations(&d, &out, 6, m), 0);
    }
}

#[test]
fn of_a_rare_and_a_frequent_item_the_frequent_one_gives_up_the_pair() {
    // A0 is held by persons 0..20, B0 by persons 18..24; only 18 and 19 hold both, fewer than
    // k = 3. Breaking the pair with A0 costs it 2 of 20 holders, with B0 2 of 6: A0 goes.
    let d = data(&overlapping(24, 20, 18));
    let out = at_finest(&d, 3, 2);
    assert_eq!(out.rows_removed, 2);
    // Rows are added person by person: person p < 18 has row p; 18 and 19 have A0 then B0.
    let removed: Vec<usize> = (0..out.row_released.len())
        .filter(|&r| !out.row_released[r])
        .collect();
    assert_eq!(removed, vec![18, 20]);
    assert_eq!(violations(&d, &out, 3, 2), 0);
}

#[test]
fn a_protected_code_keeps_its_holders_when_a_pair_must_be_broken() {
    // As above, and persons 0..10 also hold prescription B1, which makes B1 the prescriptions'
    // most held code and leaves B0 unprotected. Protected, A0 keeps all 20 holders and B0 gives
    // up the pair.
    let mut persons = overlapping(24, 20, 18);
    for p in persons.iter_mut().take(10) {
        p.1.push((1, 5, 0));
    }
    let d = data(&persons);
    let cfg = KmConfig {
        k: 3,
        m: 2,
        protect: 1,
        ..KmConfig::default()
    };
    let removed = |out: &tokumei_anonymize::KmOutcome| -> Vec<usize> {
        (0..out.row_released.len())
            .filter(|&r| !out.row_released[r])
            .collect()
    };
    // Rows: persons 0..10 hold A0 then B1 (rows 0..20), 10..18 A0 (20..28), 18 and 19 A0 then
    // B0 (28..32), 20..24 B0.
    let plain = d
        .apply(
            &KmConfig {
                protect: 0,
                ..cfg.clone()
            },
            &finest(),
        )
        .unwrap()
        .expect("valid");
    assert_eq!(
        (removed(&plain), plain.protected_error),
        (vec![28, 30], None)
    );
    let out = d.apply(&cfg, &finest()).unwrap().expect("valid");
    assert_eq!(removed(&out), vec![29, 31]);
    assert_eq!(out.protected_error, Some(0.0));
    assert_eq!(violations(&d, &out, 3, 2), 0);
}

/// Ten women and ten men all hold prescription B0; five of each hold diagnosis A0 too (January).
fn half_hold_a0() -> Persons {
    (0..20)
        .map(|p| {
            let mut e = vec![(1, 4, 0)];
            if p % 10 < 5 {
                e.push((0, 0, 0));
            }
            (u8::from(p >= 10), e)
        })
        .collect()
}

#[test]
fn a_ceiling_on_the_protected_codes_error_trades_the_quasi_identifiers_for_their_prevalence() {
    // With k = 6, A0 goes from both sexes: the least loss keeps sex and loses A0 (error 100 %);
    // the ceiling keeps A0.
    let d = data(&half_hold_a0());
    let cfg = KmConfig {
        k: 6,
        m: 1,
        protect: 1,
        ..KmConfig::default()
    };
    let least_loss = d.anonymize(&cfg).unwrap();
    assert_eq!(
        (least_loss.node.qi.clone(), least_loss.protected_error),
        (vec![0], Some(1.0))
    );
    let ceiling = KmConfig {
        max_protected_error: 0.05,
        ..cfg
    };
    let kept = d.anonymize(&ceiling).unwrap();
    assert_eq!(
        (kept.node.qi.clone(), kept.protected_error),
        (vec![1], Some(0.0))
    );
    assert_eq!(violations(&d, &kept, 6, 1), 0);
}

#[test]
fn a_floor_on_the_rows_released_trades_the_quasi_identifiers_for_the_events() {
    // With k = 6, A0 goes from both sexes (5 holders each), and 20 of 30 rows stay; only without
    // sex does A0 stay.
    let d = data(&half_hold_a0());
    let cfg = KmConfig {
        k: 6,
        m: 1,
        ..KmConfig::default()
    };
    let least_loss = d.anonymize(&cfg).unwrap();
    assert_eq!(
        (least_loss.node.qi.clone(), least_loss.rows_removed),
        (vec![0], 10)
    );
    let floor = KmConfig {
        min_rows_released: 0.9,
        ..cfg
    };
    let kept = d.anonymize(&floor).unwrap();
    assert_eq!((kept.node.qi.clone(), kept.rows_removed), (vec![1], 0));
    assert_eq!(violations(&d, &kept, 6, 1), 0);
    assert!(d
        .anonymize(&KmConfig {
            min_rows_released: 1.5,
            ..cfg
        })
        .is_err());
}

#[test]
fn beyond_the_suppression_limit_a_node_is_invalid_and_the_search_generalizes() {
    // Nine women, one man: k = 10 needs sex generalized (or 10 % suppressed).
    let persons: Persons = (0..10)
        .map(|p| (u8::from(p == 0), vec![(0, 0, 0)]))
        .collect();
    let d = data(&persons);
    let cfg = KmConfig {
        k: 10,
        m: 2,
        suppression_limit: 0.0,
        ..KmConfig::default()
    };
    let node = finest();
    assert!(d.apply(&cfg, &node).unwrap().is_none());
    let out = d.anonymize(&cfg).unwrap();
    assert_eq!(out.node.qi, vec![1]);
    assert_eq!(out.rows_removed, 0);
    assert!(d.anonymize(&KmConfig { k: 11, ..cfg }).is_err());
}

fn persons_strategy() -> impl Strategy<Value = Persons> {
    prop::collection::vec(
        (
            0u8..2,
            prop::collection::vec((0u8..2, 0u8..12, 0u8..12), 0..6),
        ),
        4..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_output_satisfies_the_model(
        persons in persons_strategy(),
        k in 2usize..4,
        m in 1usize..4,
        greedy in any::<bool>(),
        bounded in any::<bool>(),
    ) {
        prop_assume!(persons.len() >= k);
        let d = data(&persons);
        let cfg = KmConfig {
            k,
            m,
            suppression_limit: 0.25,
            exhaustive_limit: if greedy { 0 } else { 10_000 },
            max_code_level: bounded.then_some(0),
            ..KmConfig::default()
        };
        if let Ok(out) = d.anonymize(&cfg) {
            if bounded {
                prop_assert!(out.node.kinds.iter().all(|&(c, _)| c == 0));
            }
            prop_assert_eq!(violations(&d, &out, k, m), 0);
            // The fast checker agrees on the output.
            let items: Vec<Vec<u32>> =
                d.released_items(&out).into_iter().flatten().collect();
            let classes: Vec<u32> = d
                .released_classes(&out)
                .into_iter()
                .zip(&out.person_suppressed)
                .filter_map(|(c, &s)| (!s).then_some(c))
                .collect();
            prop_assert_eq!(tokumei_anonymize::setvalued::violations(&classes, items, k, m), 0);
            prop_assert!(out.persons_suppressed as f64 <= 0.25 * persons.len() as f64);
            // Same input, same output.
            prop_assert_eq!(d.anonymize(&cfg).unwrap(), out);
        }
    }

    #[test]
    fn the_exhaustive_search_is_never_worse_than_the_greedy_one(
        persons in persons_strategy(),
    ) {
        let d = data(&persons);
        // The searches compare transformations; the per-code cut comes after either.
        let cfg = KmConfig {
            k: 2, m: 2, suppression_limit: 0.5, lift_rounds: 0, ..KmConfig::default()
        };
        let full = d.anonymize(&KmConfig { exhaustive_limit: 10_000, ..cfg.clone() });
        let greedy = d.anonymize(&KmConfig { exhaustive_limit: 0, ..cfg });
        if let (Ok(f), Ok(g)) = (full, greedy) {
            prop_assert!(f.loss.objective <= g.loss.objective + 1e-12);
            prop_assert!(f.stats.exhaustive && !g.stats.exhaustive);
        }
    }
}

#[test]
fn a_rare_code_is_released_with_coarser_dates_instead_of_removed() {
    // Twelve persons: A0 (a diagnosis) each in a different month, B0 (a prescription) all in
    // January. At months each A0 item is held by one person; at years by all twelve.
    let persons: Persons = (0..12u8).map(|p| (0, vec![(0, 0, p), (1, 4, 0)])).collect();
    let d = data(&persons);
    let cfg = KmConfig {
        k: 10,
        m: 2,
        ..KmConfig::default()
    };
    let node = KmNode {
        qi: vec![1],
        kinds: vec![(0, 0), (0, 0)],
    };
    let out = d.apply(&cfg, &node).unwrap().expect("valid");
    assert_eq!(out.rows_removed, 0);
    assert_eq!(out.cut.lifted(), vec![(1, 0), (0, 0)]);
    assert_eq!(d.event_labels(0, &out), Some(("A0", "2022")));
    assert_eq!(d.event_labels(1, &out), Some(("B0", "2022-01")));
    assert_eq!(violations(&d, &out, 10, 2), 0);
    // Without lifts the twelve A0 rows go.
    let plain = d
        .apply(
            &KmConfig {
                lift_rounds: 0,
                ..cfg
            },
            &node,
        )
        .unwrap()
        .expect("valid");
    assert_eq!(plain.rows_removed, 12);
    assert_eq!(violations(&d, &plain, 10, 2), 0);
}
