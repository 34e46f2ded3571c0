//! The package reader on hostile bytes: a decrypted package (tar stream with manifest, signature and
//! files) read with small limits. The signature check is replaced by acceptance, so that the fuzzer
//! reaches the file entries; every refusal is an `Err`, never a panic, and nothing is allocated
//! beyond the limits (libFuzzer's `-malloc_limit_mb` catches any single allocation past them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokumei_vault::unpack::{read, Limits, Next, Refused};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        meta: 64 << 10,
        files: 64,
        file: 1 << 20,
        package: 4 << 20,
    };
    let mut decide = |_: &tokumei_vault::unpack::Meta| -> Result<Next, Refused> { Ok(Next::Files) };
    if let Ok(u) = read(data, limits, &mut decide) {
        let files = u.files.unwrap_or_default();
        assert!(files.len() <= limits.files);
        assert!(files.iter().map(|(_, b)| b.len() as u64).sum::<u64>() <= limits.package);
    }
});
