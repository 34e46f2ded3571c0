//! Loads the Adult data set and ARX's hierarchies shipped under `tests/data/adult/`.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use tokumei_anonymize::{Config, Hierarchy, Role, Table};

pub const ADULT_QIS: [&str; 9] = [
    "sex",
    "age",
    "race",
    "marital-status",
    "education",
    "native-country",
    "workclass",
    "occupation",
    "salary-class",
];

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/adult")
}

pub fn adult() -> Table {
    let f = std::fs::File::open(data_dir().join("adult.csv.gz")).expect("adult.csv.gz");
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut text)
        .expect("gunzip");
    Table::read_csv_bytes(&text, b';', "adult.csv").expect("parse adult")
}

pub fn hierarchy(attr: &str) -> Hierarchy {
    Hierarchy::read_arx_csv(&data_dir().join(format!("adult_hierarchy_{attr}.csv")))
        .expect("hierarchy")
}

/// All nine attributes as quasi-identifiers, or eight with `sensitive` (with its hierarchy) sensitive.
pub fn adult_config(sensitive: Option<&str>) -> Config {
    let mut c = Config::default();
    for a in ADULT_QIS {
        if Some(a) == sensitive {
            c = c.sensitive_with_hierarchy(a, hierarchy(a));
        } else {
            c = c.qi(a, hierarchy(a));
        }
    }
    let _ = Role::Sensitive;
    c
}
