//! Converts a synthetic region (from `tokumei synth`) into linkage input: every provider's identity records
//! in one CSV, and the ground truth as a record → person mapping.
//!
//! ```text
//! cargo run --release -p tokumei-linkage --example region_csv -- REGION_DIR OUT_DIR
//! tokumei linkage run --settings crates/tokumei-link/settings/japanese.toml --left OUT_DIR/identities.csv \
//!     --out OUT_DIR/linkage --truth OUT_DIR/truth.csv
//! ```
//!
//! `truth.csv` has columns `record_id`, `person_id` (all pairs of records of one person would be quadratic
//! in the records per person; the evaluation reads the mapping directly).

use std::path::PathBuf;
use std::process::ExitCode;

use tokumei_model::identity::IdentityRecord;
use tokumei_model::truth::RecordLink;
use tokumei_synth::writer::{read_sources, read_table};

fn row(r: &IdentityRecord) -> [String; 23] {
    IdentityRecord::COLUMNS.map(|c| r.column_text(c).unwrap_or_default())
}

fn run(region: PathBuf, out: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&out)?;
    let records: Vec<IdentityRecord> = read_sources(&region)?;
    let mut w = csv::Writer::from_path(out.join("identities.csv"))?;
    w.write_record(IdentityRecord::COLUMNS)?;
    for r in &records {
        w.write_record(row(r))?;
    }
    w.flush()?;
    let links: Vec<RecordLink> = read_table(&region.join("truth/record_links.parquet"))?;
    let mut t = csv::Writer::from_path(out.join("truth.csv"))?;
    t.write_record(["record_id", "person_id"])?;
    for l in &links {
        t.write_record([l.record_id.as_str(), l.person_id.as_str()])?;
    }
    t.flush()?;
    println!(
        "{} identity records, {} truth links written to {}",
        records.len(),
        links.len(),
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [region, out] = args.as_slice() else {
        eprintln!("usage: region_csv REGION_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    match run(PathBuf::from(region), PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
