//! The DICOM reader on hostile bytes, with small limits: every refusal is an `Err`, never a panic,
//! and nothing is allocated past the limits (libFuzzer's `-malloc_limit_mb` catches a length
//! trusted before it was checked); what parses writes back and parses to the same data set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokumei_dicom::{parse, write::to_bytes, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_file: 1 << 20,
        max_inflated: 4 << 20,
        max_depth: 8,
        max_elements: 20_000,
    };
    if let Ok(file) = parse(data, &limits) {
        if let Ok(bytes) = to_bytes(&file) {
            let again = parse(&bytes, &Limits { max_file: 64 << 20, ..limits }).expect("re-read");
            // The meta group's length is recomputed; all else is as read.
            assert!(again.body == file.body && again.syntax == file.syntax);
        }
    }
});
