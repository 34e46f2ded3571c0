//! Throughput of every reader on the native files of a generated region (single thread).
//!
//! `cargo run --release -p tokumei-formats --example read_region -- DIR` where DIR is the output of
//! `tokumei synth`. Archives are unpacked into memory first; only the readers are timed. Prints, per
//! format, the files (or archive entries), megabytes, seconds, MB/s and records read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Default)]
struct Row {
    files: usize,
    bytes: usize,
    secs: f64,
    records: usize,
    errors: usize,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: read_region DIR");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    walk(&Path::new(&dir).join("sources"), &mut files);
    let mut rows: BTreeMap<&'static str, Row> = BTreeMap::new();
    for f in files {
        let name = f.to_string_lossy().to_string();
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        if name.ends_with(".UKE") {
            // Streaming, as ingestion reads claims: each record handed on and dropped.
            let t = Instant::now();
            let mut n = 0usize;
            let r = tokumei_formats::uke::read_each(&bytes, "bench", &mut |_| n += 1);
            let row = rows.entry("レセ電 claims (UKE)").or_default();
            row.secs += t.elapsed().as_secs_f64();
            row.files += 1;
            row.bytes += bytes.len();
            row.records += n;
            row.errors += r.errors();
        } else if name.ends_with("deaths.csv") {
            let t = Instant::now();
            let r = tokumei_formats::death::read(&bytes, "bench");
            let row = rows.entry("除票 death CSV").or_default();
            row.secs += t.elapsed().as_secs_f64();
            row.files += 1;
            row.bytes += bytes.len();
            row.records += r.records.len();
            row.errors += r.errors();
        } else if name.ends_with(".ndjson") {
            let t = Instant::now();
            let r = tokumei_formats::fhir::read(&bytes, "bench");
            let row = rows.entry("JP Core FHIR (NDJSON)").or_default();
            row.secs += t.elapsed().as_secs_f64();
            row.files += 1;
            row.bytes += bytes.len();
            row.records += r.records.len();
            row.errors += r.errors();
        } else if name.ends_with(".zip") {
            let mut entries = Vec::new();
            let ok =
                tokumei_formats::archive::for_each_entry(std::io::Cursor::new(&bytes), |n, b| {
                    entries.push(tokumei_formats::ssmix2::PatientFile {
                        path: n.to_string(),
                        bytes: b,
                    })
                });
            if ok.is_err() {
                continue;
            }
            let size: usize = entries.iter().map(|e| e.bytes.len()).sum();
            let n = entries.len();
            // SS-MIX2 storage, in one archive or in parts (`ssmix2.zip`, `ssmix2-0002.zip`, ...).
            let file_name = name.rsplit('/').next().unwrap_or(&name);
            if file_name.to_ascii_lowercase().contains("ssmix2") {
                let t = Instant::now();
                let reports = tokumei_formats::ssmix2::read_tree(entries, "bench");
                let row = rows.entry("SS-MIX2 messages (HL7 v2.5)").or_default();
                row.secs += t.elapsed().as_secs_f64();
                row.files += n;
                row.bytes += size;
                row.records += reports.iter().filter(|r| r.record.is_some()).count();
                row.errors += reports.iter().map(|r| r.errors()).sum::<usize>();
            } else {
                let t = Instant::now();
                let row = rows.entry("特定健診 CDA XML").or_default();
                for e in &entries {
                    let r = tokumei_formats::kenshin::read(&e.bytes, "bench");
                    row.records += r.records.len();
                    row.errors += r.errors();
                }
                row.secs += t.elapsed().as_secs_f64();
                row.files += n;
                row.bytes += size;
            }
        }
    }
    println!(
        "{:<28} {:>9} {:>9} {:>8} {:>7} {:>9} {:>7}",
        "format", "files", "MB", "s", "MB/s", "records", "errors"
    );
    for (k, r) in rows {
        let mb = r.bytes as f64 / 1e6;
        println!(
            "{:<28} {:>9} {:>9.1} {:>8.2} {:>7.0} {:>9} {:>7}",
            k,
            r.files,
            mb,
            r.secs,
            mb / r.secs.max(1e-9),
            r.records,
            r.errors
        );
    }
}
