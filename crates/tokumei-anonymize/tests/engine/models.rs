//! Behaviour of the risk-based models, k-map, the heuristic search and configuration errors.

use crate::common;

use tokumei_anonymize::{
    AnonError, Anonymizer, Config, Hierarchy, Metric, Population, PrivacyModel, Role, Search, Table,
};

fn small() -> (Table, Config) {
    let mut rows = Vec::new();
    for i in 0..60u32 {
        rows.push(vec![
            (20 + (i * 7) % 50).to_string(),
            ["F", "M"][(i % 2) as usize].to_string(),
            format!("d{}", i % 3),
        ]);
    }
    let t = Table::from_rows(&["age", "sex", "dx"], &rows).unwrap();
    let ages: Vec<String> = (0..100).map(|a| a.to_string()).collect();
    let c = Config::default()
        .qi("age", Hierarchy::ages(&ages, Some(90)).unwrap())
        .qi("sex", Hierarchy::flat(&["F", "M"]).unwrap())
        .attribute("dx", Role::Sensitive);
    (t, c)
}

#[test]
fn highest_risk_threshold_equals_k_anonymity() {
    let table = common::adult();
    let base = common::adult_config(None)
        .suppression(0.05)
        .metric(Metric::default());
    let by_risk = Anonymizer::new(
        &table,
        &base
            .clone()
            .model(PrivacyModel::MaxProsecutorRisk { threshold: 0.2 }),
    )
    .unwrap()
    .search()
    .unwrap();
    let by_k = Anonymizer::new(&table, &base.model(PrivacyModel::KAnonymity { k: 5 }))
        .unwrap()
        .search()
        .unwrap();
    assert_eq!(by_risk.0, by_k.0);
    assert_eq!(by_risk.1, by_k.1);
}

#[test]
fn average_risk_is_met_after_suppression() {
    let (t, c) = small();
    let out = Anonymizer::new(
        &t,
        &c.suppression(0.2)
            .model(PrivacyModel::AverageProsecutorRisk { threshold: 0.1 }),
    )
    .unwrap()
    .run()
    .unwrap();
    assert!(out.report.risk_after.prosecutor_avg <= 0.1);
    assert!(out.report.suppressed_records <= 12);
}

#[test]
fn k_map_counts_the_population() {
    let (t, c) = small();
    // A population of three people per sample record: 3-map holds at the bottom, 4-map does not.
    let pop_rows: Vec<Vec<String>> = (0..t.rows())
        .map(|r| {
            vec![
                t.column("age").unwrap().get(r).to_string(),
                t.column("sex").unwrap().get(r).to_string(),
            ]
        })
        .collect();
    let population = Population {
        columns: vec!["age".into(), "sex".into()],
        counts: vec![3; pop_rows.len()],
        rows: pop_rows,
    };
    let three = Anonymizer::new(
        &t,
        &c.clone().model(PrivacyModel::KMap {
            k: 3,
            population: population.clone(),
        }),
    )
    .unwrap()
    .search()
    .unwrap();
    assert_eq!(three.0, vec![0, 0]);
    let four = Anonymizer::new(&t, &c.model(PrivacyModel::KMap { k: 4, population }))
        .unwrap()
        .search()
        .unwrap();
    assert_ne!(four.0, vec![0, 0]);
}

#[test]
fn heuristic_finds_a_valid_transformation_no_better_than_the_optimum() {
    let table = common::adult();
    let base = common::adult_config(None)
        .suppression(0.05)
        .model(PrivacyModel::KAnonymity { k: 5 });
    let mut h = base.clone();
    h.search = Search::Heuristic {
        max_evaluations: 200,
    };
    let a = Anonymizer::new(&table, &h).unwrap();
    let (levels, score, stats) = a.search().unwrap();
    assert!(!stats.optimal);
    let (s, valid, _) = a.score(&levels).unwrap();
    assert!(valid);
    assert_eq!(s, score);
    assert!(score.scalar() >= 0.241932 - 1e-6);
}

#[test]
fn configuration_errors_name_the_problem() {
    let (t, c) = small();
    let e = Anonymizer::new(
        &t,
        &c.clone()
            .qi("nosuch", Hierarchy::flat(&["x"]).unwrap())
            .model(PrivacyModel::KAnonymity { k: 2 }),
    )
    .err()
    .unwrap();
    assert!(
        matches!(e, AnonError::UnknownColumn(ref n) if n == "nosuch"),
        "{e}"
    );
    let e = Anonymizer::new(&t, &c.clone().model(PrivacyModel::KAnonymity { k: 61 }))
        .err()
        .unwrap();
    assert!(e.to_string().contains("larger than the table"), "{e}");
    let e = Anonymizer::new(
        &t,
        &c.clone().model(PrivacyModel::DistinctLDiversity {
            attribute: "age".into(),
            l: 2,
        }),
    )
    .err()
    .unwrap();
    assert!(matches!(e, AnonError::NotSensitive { .. }), "{e}");
    let e = Anonymizer::new(
        &t,
        &c.clone().model(PrivacyModel::DistinctLDiversity {
            attribute: "dx".into(),
            l: 4,
        }),
    )
    .err()
    .unwrap();
    assert!(matches!(e, AnonError::Contradiction(_)), "{e}");
    let e = Anonymizer::new(
        &t,
        &Config::default()
            .qi("sex", Hierarchy::flat(&["F"]).unwrap())
            .model(PrivacyModel::KAnonymity { k: 2 }),
    )
    .err()
    .unwrap();
    assert!(
        matches!(e, AnonError::ValueNotInHierarchy { ref value, .. } if value == "M"),
        "{e}"
    );
    let e = Anonymizer::new(
        &t,
        &c.clone()
            .weight("dx", 1.0)
            .model(PrivacyModel::KAnonymity { k: 2 }),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("dx"), "{e}");
    let e = Anonymizer::new(
        &t,
        &c.model(PrivacyModel::HierarchicalDistanceTCloseness {
            attribute: "dx".into(),
            t: 0.2,
        }),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("needs a hierarchy"), "{e}");
}
