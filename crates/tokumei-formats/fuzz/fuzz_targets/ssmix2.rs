#![no_main]
//! Fuzz target: the SS-MIX2 message reader (one file, and a patient directory of two files) must
//! never panic on any input.

use libfuzzer_sys::fuzz_target;
use tokumei_formats::ssmix2::{read, read_patient, PatientFile};

fuzz_target!(|data: &[u8]| {
    let report = read(data, "fuzz");
    assert!(report.records.len() + report.rejected.len() <= 1);
    let half = data.len() / 2;
    let files = [
        PatientFile {
            path: "000/000/0000001/-/ADT-00/0000001_-_ADT-00_999999999999999_20250101000000000_-_1"
                .into(),
            bytes: data[..half].to_vec(),
        },
        PatientFile {
            path: "000/000/0000001/20250101/OML-11/0000001_20250101_OML-11_000000000000001_20250101000000000_01_1"
                .into(),
            bytes: data[half..].to_vec(),
        },
    ];
    let _ = read_patient(&files, "fuzz");
});
