//! The Adult figures of ANCHORS.md §1 (ARX 3.9.2, Loss with gs-factor 0.5, geometric-mean aggregate).

use crate::common;

use tokumei_anonymize::{Anonymizer, Metric, PrivacyModel};

fn rel(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        a.abs()
    } else {
        ((a - b) / b).abs()
    }
}

fn run(k: u64, limit: f64) -> tokumei_anonymize::Report {
    let table = common::adult();
    let config = common::adult_config(None)
        .model(PrivacyModel::KAnonymity { k })
        .suppression(limit)
        .metric(Metric::default());
    let a = Anonymizer::new(&table, &config).expect("config");
    a.run().expect("solution").report
}

#[test]
fn k5_no_suppression() {
    let r = run(5, 0.0);
    assert_eq!(r.transformation_vector, vec![0, 4, 1, 1, 3, 2, 2, 1, 0]);
    assert!(
        rel(r.information_loss, 0.573151) < 1e-6,
        "{}",
        r.information_loss
    );
    assert_eq!(r.suppressed_records, 0);
    assert_eq!(r.classes, 24);
    assert_eq!(r.min_class_size, 69);
}

#[test]
fn k5_five_percent() {
    let r = run(5, 0.05);
    assert_eq!(r.transformation_vector, vec![0, 3, 0, 0, 2, 1, 1, 2, 0]);
    assert!(
        rel(r.information_loss, 0.241932) < 1e-5,
        "{}",
        r.information_loss
    );
    assert_eq!(r.suppressed_records, 1346);
    assert_eq!(r.classes, 397);
    assert_eq!(r.min_class_size, 5);
}
