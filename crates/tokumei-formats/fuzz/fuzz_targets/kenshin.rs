#![no_main]
//! Fuzz target: the 特定健診 CDA reader must never panic on any input, gives at most one record or
//! rejection per file, and whatever it reads is written and read back as its canonical form.

use libfuzzer_sys::fuzz_target;
use tokumei_formats::kenshin::{canonicalize, read, write};

fuzz_target!(|data: &[u8]| {
    let report = read(data, "fuzz");
    assert!(report.records.len() + report.rejected.len() <= 1);
    if let Some(parsed) = report.records.first() {
        if let Ok(bytes) = write(&parsed.record) {
            let back = read(&bytes, "fuzz");
            assert_eq!(back.errors(), 0);
            assert_eq!(
                back.records.first().map(|p| &p.record),
                Some(&canonicalize(&parsed.record))
            );
        }
    }
});
