#![no_main]
//! Fuzz target: the death-record CSV reader must never panic on any input.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = tokumei_formats::death::read(data, "fuzz");
    assert!(report.records.len() + report.rejected.len() <= data.len() + 1);
});
