#![no_main]
//! Fuzz target: the claims reader must never panic, loop or allocate without bound on any input.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = tokumei_formats::uke::read(data, "fuzz");
    // Every record read or rejected lies within the file.
    let lines = data.split(|&b| b == b'\n').count();
    for r in &report.records {
        assert!(r.first_line >= 1 && r.last_line <= lines && r.first_line <= r.last_line);
    }
});
