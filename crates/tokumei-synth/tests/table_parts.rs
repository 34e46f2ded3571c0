//! Canonical tables written in parts. With a small budget of rows in open files, the writer finishes
//! the largest files early and goes on in `<table>-0002.parquet`, ...: reading a table's parts gives
//! the rows of the same table written whole, in the same order, every part is a complete Parquet file,
//! and the same seed gives the same parts.

use std::path::Path;

use tokumei_model::events::{Encounter, Procedure};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::table::part_paths;
use tokumei_model::truth::{NativeLink, RecordLink, TruthPerson};
use tokumei_synth::writer::{read_sources, read_table};
use tokumei_synth::{generate, Config};

/// Enough people that rows are flushed from memory several times (more than `BUFFER_BUDGET`).
const PEOPLE: u64 = 3000;

fn generate_into(root: &Path, open_table_rows: u64) {
    let config = Config {
        people: PEOPLE,
        seed: 5,
        out: root.to_path_buf(),
        force: true,
        open_table_rows,
        ..Config::default()
    };
    generate(&config, &|_| {}).expect("generate");
}

/// Every Parquet file under `root`, relative, with its bytes.
fn parquet_files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let rel = p.strip_prefix(root).expect("rel").display().to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[test]
fn tables_in_parts_read_back_as_the_whole_tables() {
    let dir = tempfile::tempdir().expect("tmp");
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    generate_into(&whole, tokumei_synth::writer::OPEN_ROWS);
    // A budget far below the rows of the region: the largest files are cut again and again.
    generate_into(&split, 20_000);
    let parts = |root: &Path| {
        parquet_files(root)
            .keys()
            .filter(|k| k.contains("-0002.parquet"))
            .count()
    };
    assert_eq!(parts(&whole), 0);
    assert!(parts(&split) >= 3, "{} tables in parts", parts(&split));
    let h01 = split.join("sources/H01/procedures.parquet");
    assert!(part_paths(&h01).len() >= 2, "{:?}", part_paths(&h01));
    // Each part is a complete file of the table.
    for p in part_paths(&h01) {
        assert!(!read_table::<Procedure>(&p).expect("part").is_empty() || p == h01);
    }
    // The same rows in the same order, whether read whole or from parts.
    assert_eq!(
        read_sources::<Procedure>(&whole).expect("whole"),
        read_sources::<Procedure>(&split).expect("split")
    );
    assert_eq!(
        read_sources::<Encounter>(&whole).expect("whole"),
        read_sources::<Encounter>(&split).expect("split")
    );
    assert_eq!(
        read_sources::<IdentityRecord>(&whole).expect("whole"),
        read_sources::<IdentityRecord>(&split).expect("split")
    );
    let x: Vec<TruthPerson> = read_table(&whole.join("truth/persons.parquet")).expect("p");
    let y: Vec<TruthPerson> = read_table(&split.join("truth/persons.parquet")).expect("p");
    assert_eq!(x, y);
    let x: Vec<RecordLink> = read_table(&whole.join("truth/record_links.parquet")).expect("l");
    let y: Vec<RecordLink> = read_table(&split.join("truth/record_links.parquet")).expect("l");
    assert_eq!(x, y);
    let x: Vec<NativeLink> = read_table(&whole.join("truth/native_links.parquet")).expect("n");
    let y: Vec<NativeLink> = read_table(&split.join("truth/native_links.parquet")).expect("n");
    assert_eq!(x, y);
    // The same seed and budget: the same files, byte for byte.
    let again = dir.path().join("again");
    generate_into(&again, 20_000);
    assert!(parquet_files(&split) == parquet_files(&again));
}
