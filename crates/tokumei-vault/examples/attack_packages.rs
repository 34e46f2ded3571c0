//! Writes the packages of the hardening measurements (`scripts/bench-attacks.sh`): what an attacker
//! holding the public receiving key, or a provider's key, can send.
//!
//! Usage: attack_packages RECIPIENT_FILE PROVIDER_ID PROVIDER_KEY OUT_DIR
//!
//! - `sparse-unsigned.tkm`: the public key only; a GNU sparse entry of 1 GiB first.
//! - `sparse-signed.tkm`: a manifest signed by the provider, then a sparse entry of 1 GiB.
//! - `bomb-ssmix2.tkm`: signed; an SS-MIX2 storage ZIP of 16 entries of 63 MiB of zeros (about 1 MB).
//! - `bomb-commas.tkm`: signed; a ZIP holding 63 MiB of commas as a claims file (about 64 KB).

use std::io::Write;
use std::path::Path;

use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};
use tokumei_vault::package::{Manifest, ManifestFile, MANIFEST_FORMAT};

fn entry(tar: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, body: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o600);
    h.set_size(body.len() as u64);
    if kind == tar::EntryType::GNUSparse {
        if let Some(gnu) = h.as_gnu_mut() {
            gnu.set_real_size(1 << 30);
            gnu.sparse[0].set_offset(1 << 30);
            gnu.sparse[0].set_length(0);
        }
    }
    h.set_cksum();
    tar.append(&h, body).expect("append");
}

fn manifest(provider: &str, id: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let m = Manifest {
        format: MANIFEST_FORMAT.into(),
        package_id: id.into(),
        provider_id: provider.into(),
        extracted_on: "2025-06-01".into(),
        period_from: None,
        period_to: None,
        notice_filing: None,
        notice_start: None,
        files: files
            .iter()
            .map(|(p, b)| ManifestFile {
                path: (*p).into(),
                sha256: hex::encode(Sha256::digest(b)),
                bytes: b.len() as u64,
                format: None,
                records: None,
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&m).expect("json")
}

fn seal(recipient: &age::x25519::Recipient, plain: &[u8], out: &Path) {
    let enc = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        .expect("encryptor");
    let mut bytes = Vec::new();
    let mut w = enc.wrap_output(&mut bytes).expect("wrap");
    w.write_all(plain).expect("write");
    w.finish().expect("finish");
    std::fs::write(out, bytes).expect("write");
}

fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), opts).expect("entry");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("finish");
    out.into_inner()
}

fn signed_package(
    provider: &str,
    key: &ed25519_dalek::SigningKey,
    id: &str,
    files: &[(&str, &[u8])],
    sparse_after: bool,
) -> Vec<u8> {
    let m = manifest(provider, id, files);
    let sig = hex::encode(key.sign(&m).to_bytes());
    let mut tar = tar::Builder::new(Vec::new());
    entry(&mut tar, "manifest.json", tar::EntryType::Regular, &m);
    entry(
        &mut tar,
        "manifest.sig",
        tar::EntryType::Regular,
        sig.as_bytes(),
    );
    for (p, b) in files {
        let kind = if sparse_after {
            tar::EntryType::GNUSparse
        } else {
            tar::EntryType::Regular
        };
        entry(
            &mut tar,
            &format!("files/{p}"),
            kind,
            if sparse_after { &[] } else { b },
        );
    }
    tar.into_inner().expect("tar")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, recipient, provider, key, out] = args.as_slice() else {
        eprintln!("usage: attack_packages RECIPIENT_FILE PROVIDER_ID PROVIDER_KEY OUT_DIR");
        std::process::exit(2);
    };
    let recipient: age::x25519::Recipient = std::fs::read_to_string(recipient)
        .expect("recipient")
        .trim()
        .parse()
        .expect("age recipient");
    let key = tokumei_audit::key_from_hex(&std::fs::read_to_string(key).expect("key"))
        .expect("provider key");
    let out = Path::new(out);
    std::fs::create_dir_all(out).expect("mkdir");

    let mut tar = tar::Builder::new(Vec::new());
    entry(&mut tar, "files/a.csv", tar::EntryType::GNUSparse, &[]);
    seal(
        &recipient,
        &tar.into_inner().expect("tar"),
        &out.join("sparse-unsigned.tkm"),
    );

    let plain = signed_package(provider, &key, "sparse", &[("a.csv", b"")], true);
    seal(&recipient, &plain, &out.join("sparse-signed.tkm"));

    let zeros = vec![0u8; 63 << 20];
    let bomb = zip_of(
        &(0..16)
            .map(|i| (format!("0/{i:02}/P{i}/2025/ADT.hl7"), zeros.clone()))
            .collect::<Vec<_>>(),
    );
    drop(zeros);
    let plain = signed_package(provider, &key, "bomb1", &[("ssmix2.zip", &bomb)], false);
    seal(&recipient, &plain, &out.join("bomb-ssmix2.tkm"));

    let commas = zip_of(&[("RECEIPTC.UKE".into(), vec![b','; 63 << 20])]);
    let plain = signed_package(provider, &key, "bomb2", &[("claims.zip", &commas)], false);
    seal(&recipient, &plain, &out.join("bomb-commas.tkm"));
    println!(
        "ssmix2 bomb {} bytes, commas {} bytes; packages in {}",
        bomb.len(),
        commas.len(),
        out.display()
    );
}
