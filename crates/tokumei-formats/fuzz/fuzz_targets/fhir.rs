#![no_main]
//! Fuzz target: the JP Core FHIR reader must never panic, loop or allocate without bound on any input.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = tokumei_formats::fhir::read(data, "fuzz");
    assert!(report.records.len() + report.rejected.len() <= data.len() + 1);
    // Every record read or rejected lies within the file.
    let lines = data.split(|&b| b == b'\n').count();
    for r in &report.records {
        assert!(r.first_line >= 1 && r.last_line <= lines && r.first_line <= r.last_line);
    }
    for r in &report.rejected {
        assert!(r.first_line >= 1 && r.last_line <= lines && r.first_line <= r.last_line);
    }
});
