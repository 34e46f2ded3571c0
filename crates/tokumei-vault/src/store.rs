//! Where received records land: the identity vault (identifying fields, encrypted at rest with
//! XChaCha20-Poly1305 under the data key), the clinical store (events as Parquet, keyed by opaque
//! record ids) and the quarantine (what could not be read: file, lines and reason in the clear, the
//! original bytes encrypted).
//!
//! Files of one package are written under staging names and moved into place before the receipt is
//! recorded in the catalog; the receipt is the commit point. [`recover`] removes what a package left
//! behind when its receipt was never recorded (a crash), so a home always holds a package whole or
//! not at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use parquet::arrow::ArrowWriter;
use sha2::{Digest, Sha256};
use tokumei_model::events::{
    Death, Diagnosis, Encounter, LabResult, Prescription, Procedure, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::table::Table;

use crate::home::{io, DataKey, Home, VaultError};

/// Encrypts bytes under the data key: a random 24-byte nonce, then the ciphertext with its tag.
pub fn seal(key: &DataKey, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|e| VaultError::Key(e.to_string()))?;
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), plain)
        .map_err(|_| VaultError::Key("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend(ct);
    Ok(out)
}

/// Decrypts what [`seal`] wrote; fails on any change.
pub fn open_sealed(key: &DataKey, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < 24 {
        return Err(VaultError::Key("sealed data too short".into()));
    }
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    cipher
        .decrypt(XNonce::from_slice(&sealed[..24]), &sealed[24..])
        .map_err(|_| {
            VaultError::Key("sealed data does not decrypt (altered or another key)".into())
        })
}

/// A table as Parquet bytes.
pub fn parquet_bytes<T: Table>(rows: &[T]) -> Result<Vec<u8>, VaultError> {
    let batch = T::to_batch(rows).map_err(|e| VaultError::Store(e.to_string()))?;
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, Arc::clone(&batch.schema()), None)
        .map_err(|e| VaultError::Store(e.to_string()))?;
    w.write(&batch)
        .map_err(|e| VaultError::Store(e.to_string()))?;
    w.close().map_err(|e| VaultError::Store(e.to_string()))?;
    Ok(out)
}

/// Reads a table back from Parquet bytes.
pub fn read_parquet<T: Table>(bytes: Vec<u8>) -> Result<Vec<T>, VaultError> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .and_then(|b| b.build())
    .map_err(|e| VaultError::Store(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| VaultError::Store(e.to_string()))?;
        out.extend(T::from_batch(&batch).map_err(|e| VaultError::Store(e.to_string()))?);
    }
    Ok(out)
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quarantined {
    /// File in the package.
    pub file: String,
    /// First line (or segment) of the record; 0 for a whole archive entry.
    pub first_line: usize,
    /// Last line.
    pub last_line: usize,
    /// Why (the reader's message; it names no identifying value).
    pub reason: String,
}

/// Records refused at receipt (opt-out, notice period), counted for the report and the audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusals {
    /// Records of patients who asked to stop.
    pub opted_out: usize,
    /// Records extracted before the notice period had run.
    pub too_early: usize,
}

/// What one package put into the vault.
#[derive(Debug, Clone, Default)]
pub struct Landed {
    /// Records stored.
    pub records: usize,
    /// Clinical events stored.
    pub events: usize,
    /// Records quarantined.
    pub quarantined: usize,
    /// Images stored.
    pub images: usize,
}

/// Paths of a package's files in the home.
pub struct PackagePaths {
    /// Encrypted identity table.
    pub identity: PathBuf,
    /// Clinical tables folder.
    pub clinical: PathBuf,
    /// Quarantine report (encrypted: entry names of SS-MIX2 storage carry patient ids).
    pub quarantine: PathBuf,
    /// Encrypted originals of files with quarantined records.
    pub quarantine_files: PathBuf,
    /// The original package.
    pub original: PathBuf,
    /// Encrypted DICOM files (their headers name the patient).
    pub images: PathBuf,
}

impl PackagePaths {
    /// The paths of package `id` in `home`.
    pub fn of(home: &Home, id: &str) -> PackagePaths {
        PackagePaths {
            identity: home.root.join(format!("vault/identity/{id}.parquet.enc")),
            clinical: home.root.join(format!("vault/clinical/{id}")),
            quarantine: home.root.join(format!("quarantine/{id}.json.enc")),
            quarantine_files: home.root.join(format!("quarantine/{id}")),
            original: home.root.join(format!("packages/{id}.age")),
            images: home.root.join(format!("vault/images/{id}")),
        }
    }
}

fn staged(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".staging-{name}"))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut f = std::fs::File::create(path).map_err(|e| io(path, e))?;
    std::io::Write::write_all(&mut f, bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

/// The package as received: its file and the SHA-256 its bytes had when they were read.
#[derive(Debug, Clone)]
pub struct Original {
    /// The package file.
    pub path: PathBuf,
    /// SHA-256 (hex) of the bytes that were read and verified.
    pub sha256: String,
}

/// Copies `from` to `to` in chunks, synced, and checks the copy's SHA-256: the kept original is the
/// package that was verified, even if the file changed since.
fn copy_verified(from: &Path, to: &Path, sha256: &str) -> Result<(), VaultError> {
    use std::io::{Read, Write};
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut src = std::fs::File::open(from).map_err(|e| io(from, e))?;
    let mut dst = std::fs::File::create(to).map_err(|e| io(to, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).map_err(|e| io(from, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(|e| io(to, e))?;
    }
    dst.sync_all().map_err(|e| io(to, e))?;
    if hex::encode(hasher.finalize()) != sha256 {
        let _ = std::fs::remove_file(to);
        return Err(VaultError::Store(format!(
            "{} changed while it was received",
            from.display()
        )));
    }
    Ok(())
}

/// What one package lands.
pub struct Landing<'a> {
    /// The package's id.
    pub package_id: &'a str,
    /// Records that land.
    pub records: Vec<SourceRecord>,
    /// What could not be read.
    pub quarantine: &'a [Quarantined],
    /// The originals of files with quarantined records.
    pub quarantine_originals: &'a [(String, Vec<u8>)],
    /// Images, each with the index of its record in `records`.
    pub images: &'a [(usize, crate::images::ImageIn)],
    /// The package as received.
    pub original: &'a Original,
}

/// Writes a package's records, images, quarantine and original into the home under staging names,
/// then moves them into place (the caller records the receipt afterwards).
pub fn land(home: &Home, key: &DataKey, landing: Landing<'_>) -> Result<Landed, VaultError> {
    let Landing {
        package_id,
        records,
        quarantine,
        quarantine_originals,
        images,
        original,
    } = landing;
    let paths = PackagePaths::of(home, package_id);
    let mut landed = Landed {
        quarantined: quarantine.len(),
        images: images.len(),
        ..Landed::default()
    };
    let mut record_ids: Vec<String> = Vec::with_capacity(records.len());
    let mut identities: Vec<IdentityRecord> = Vec::with_capacity(records.len());
    let mut encounters: Vec<Encounter> = Vec::new();
    let mut diagnoses: Vec<Diagnosis> = Vec::new();
    let mut prescriptions: Vec<Prescription> = Vec::new();
    let mut procedures: Vec<Procedure> = Vec::new();
    let mut labs: Vec<LabResult> = Vec::new();
    let mut deaths: Vec<Death> = Vec::new();
    let mut counter = 0u64;
    for r in records {
        let mut id_bytes = [0u8; 16];
        getrandom::fill(&mut id_bytes).map_err(|e| VaultError::Key(e.to_string()))?;
        let record_id = hex::encode(id_bytes);
        let mut next = || {
            counter += 1;
            format!("{package_id}-{counter}")
        };
        let enc_ids: Vec<String> = r.events.encounters.iter().map(|_| next()).collect();
        let enc_ref = |e: Option<String>| {
            e.and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| enc_ids.get(i).cloned())
        };
        landed.events += r.events.len();
        for (mut e, id) in r.events.encounters.into_iter().zip(&enc_ids) {
            e.event_id = id.clone();
            e.record_id = record_id.clone();
            encounters.push(e);
        }
        for mut e in r.events.diagnoses {
            e.event_id = next();
            e.record_id = record_id.clone();
            e.encounter_id = enc_ref(e.encounter_id.take());
            diagnoses.push(e);
        }
        for mut e in r.events.prescriptions {
            e.event_id = next();
            e.record_id = record_id.clone();
            e.encounter_id = enc_ref(e.encounter_id.take());
            prescriptions.push(e);
        }
        for mut e in r.events.procedures {
            e.event_id = next();
            e.record_id = record_id.clone();
            e.encounter_id = enc_ref(e.encounter_id.take());
            procedures.push(e);
        }
        for mut e in r.events.lab_results {
            e.event_id = next();
            e.record_id = record_id.clone();
            e.encounter_id = enc_ref(e.encounter_id.take());
            labs.push(e);
        }
        for mut e in r.events.deaths {
            e.event_id = next();
            e.record_id = record_id.clone();
            deaths.push(e);
        }
        let mut id = r.identity;
        id.record_id = record_id.clone();
        record_ids.push(record_id);
        identities.push(id);
    }
    landed.records = identities.len();
    let image_rows = crate::images::index(package_id, images, &record_ids, &mut || {
        counter += 1;
        format!("{package_id}-{counter}")
    });

    // Identity zone: one encrypted Parquet table.
    let sealed = seal(key, &parquet_bytes(&identities)?)?;
    write_file(&staged(&paths.identity), &sealed)?;
    // Clinical zone.
    let clinical = staged(&paths.clinical);
    let _ = std::fs::remove_dir_all(&clinical);
    std::fs::create_dir_all(&clinical).map_err(|e| io(&clinical, e))?;
    write_file(
        &clinical.join("encounters.parquet"),
        &parquet_bytes(&encounters)?,
    )?;
    write_file(
        &clinical.join("diagnoses.parquet"),
        &parquet_bytes(&diagnoses)?,
    )?;
    write_file(
        &clinical.join("prescriptions.parquet"),
        &parquet_bytes(&prescriptions)?,
    )?;
    write_file(
        &clinical.join("procedures.parquet"),
        &parquet_bytes(&procedures)?,
    )?;
    write_file(
        &clinical.join("lab_results.parquet"),
        &parquet_bytes(&labs)?,
    )?;
    write_file(&clinical.join("deaths.parquet"), &parquet_bytes(&deaths)?)?;
    write_file(
        &clinical.join("images.parquet"),
        &parquet_bytes(&image_rows)?,
    )?;
    // Identified zone: each image sealed whole.
    let idir = staged(&paths.images);
    let _ = std::fs::remove_dir_all(&idir);
    std::fs::create_dir_all(&idir).map_err(|e| io(&idir, e))?;
    for (row, (_, image)) in image_rows.iter().zip(images) {
        write_file(&idir.join(&row.blob), &seal(key, &image.bytes)?)?;
    }
    let qdir = write_quarantine(key, &paths, quarantine, quarantine_originals)?;
    // The original package, read-only.
    let orig = staged(&paths.original);
    copy_verified(&original.path, &orig, &original.sha256)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&orig, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| io(&orig, e))?;
    }
    // Into place.
    for (from, to) in [
        (staged(&paths.identity), &paths.identity),
        (clinical, &paths.clinical),
        (staged(&paths.quarantine), &paths.quarantine),
        (qdir, &paths.quarantine_files),
        (idir, &paths.images),
        (orig, &paths.original),
    ] {
        if to.is_dir() {
            std::fs::remove_dir_all(to).map_err(|e| io(to, e))?;
        }
        std::fs::rename(&from, to).map_err(|e| io(to, e))?;
    }
    Ok(landed)
}

/// Writes a package's quarantine under staging names: the report and the originals, encrypted (file
/// and entry names of SS-MIX2 storage carry patient ids); returns the staged folder of originals.
fn write_quarantine(
    key: &DataKey,
    paths: &PackagePaths,
    quarantine: &[Quarantined],
    originals: &[(String, Vec<u8>)],
) -> Result<PathBuf, VaultError> {
    let report =
        serde_json::to_vec_pretty(quarantine).map_err(|e| VaultError::Store(e.to_string()))?;
    write_file(&staged(&paths.quarantine), &seal(key, &report)?)?;
    let qdir = staged(&paths.quarantine_files);
    let _ = std::fs::remove_dir_all(&qdir);
    std::fs::create_dir_all(&qdir).map_err(|e| io(&qdir, e))?;
    let names: Vec<&str> = originals.iter().map(|(n, _)| n.as_str()).collect();
    let names = serde_json::to_vec(&names).map_err(|e| VaultError::Store(e.to_string()))?;
    write_file(&qdir.join("names.json.enc"), &seal(key, &names)?)?;
    for (i, (_, bytes)) in originals.iter().enumerate() {
        write_file(&qdir.join(format!("{i}.enc")), &seal(key, bytes)?)?;
    }
    Ok(qdir)
}

/// A package's quarantine report (decrypted).
pub fn read_quarantine(
    home: &Home,
    key: &DataKey,
    package_id: &str,
) -> Result<Vec<Quarantined>, VaultError> {
    let path = PackagePaths::of(home, package_id).quarantine;
    let sealed = std::fs::read(&path).map_err(|e| io(&path, e))?;
    serde_json::from_slice(&open_sealed(key, &sealed)?)
        .map_err(|e| VaultError::Store(e.to_string()))
}

/// The original files of a package that hold quarantined records: (path in the package, bytes).
pub fn read_quarantine_files(
    home: &Home,
    key: &DataKey,
    package_id: &str,
) -> Result<Vec<(String, Vec<u8>)>, VaultError> {
    let dir = PackagePaths::of(home, package_id).quarantine_files;
    let index = dir.join("names.json.enc");
    let sealed = std::fs::read(&index).map_err(|e| io(&index, e))?;
    let names: Vec<String> = serde_json::from_slice(&open_sealed(key, &sealed)?)
        .map_err(|e| VaultError::Store(e.to_string()))?;
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let path = dir.join(format!("{i}.enc"));
        let sealed = std::fs::read(&path).map_err(|e| io(&path, e))?;
        out.push((name, open_sealed(key, &sealed)?));
    }
    Ok(out)
}

/// The identity table of a package (decrypted).
pub fn read_identities(
    home: &Home,
    key: &DataKey,
    package_id: &str,
) -> Result<Vec<IdentityRecord>, VaultError> {
    let path = PackagePaths::of(home, package_id).identity;
    let sealed = std::fs::read(&path).map_err(|e| io(&path, e))?;
    read_parquet(open_sealed(key, &sealed)?)
}

/// Every identity record of every package received, in order of receipt.
pub fn read_all_identities(home: &Home, key: &DataKey) -> Result<Vec<IdentityRecord>, VaultError> {
    let mut out = Vec::new();
    for id in home.catalog()?.receipt_ids()? {
        out.extend(read_identities(home, key, &id)?);
    }
    Ok(out)
}

/// The names a package's files take in each folder of the home (after its id).
pub(crate) const LAYOUT: [(&str, &[&str]); 5] = [
    ("vault/identity", &[".parquet.enc"]),
    ("vault/clinical", &[""]),
    ("vault/images", &[""]),
    ("quarantine", &[".json.enc", ""]),
    ("packages", &[".age"]),
];

/// The package a file of the home belongs to, by the exact names of [`LAYOUT`]: `(id, staged)`;
/// `None` for a name the layout does not make (left alone, and reported by the home check).
pub fn package_of(folder: &str, name: &str) -> Option<(String, bool)> {
    let suffixes = LAYOUT.iter().find(|(d, _)| *d == folder)?.1;
    let (rest, staged) = match name.strip_prefix(".staging-") {
        Some(r) => (r, true),
        None => (name, false),
    };
    suffixes.iter().find_map(|suffix| {
        let id = rest.strip_suffix(suffix)?;
        tokumei_model::ids::is_valid(id).then(|| (id.to_string(), staged))
    })
}

/// Removes every file a package left without a recorded receipt (staging names, and packages whose
/// receipt is missing); returns how many packages were cleaned. Names are matched exactly against
/// the layout, so a file of a received package is never taken for another's. The caller holds the
/// writer lock ([`crate::lock`]), so no other command is writing staging files meanwhile.
pub fn recover(
    home: &Home,
    received: &dyn Fn(&str) -> Result<bool, VaultError>,
) -> Result<usize, VaultError> {
    let mut cleaned = std::collections::BTreeSet::new();
    for (dir, _) in LAYOUT {
        let d = home.root.join(dir);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().to_string();
            let Some((id, staged)) = package_of(dir, &name) else {
                continue;
            };
            if staged || !received(&id)? {
                remove_any(&e.path())?;
                cleaned.insert(id);
            }
        }
    }
    Ok(cleaned.len())
}

/// Removes a file (read-only ones too) or a folder.
fn remove_any(p: &Path) -> Result<(), VaultError> {
    let meta = std::fs::symlink_metadata(p).map_err(|e| io(p, e))?;
    if meta.is_dir() {
        return std::fs::remove_dir_all(p).map_err(|e| io(p, e));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::remove_file(p).map_err(|e| io(p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_belong_to_packages_by_their_exact_names() {
        assert_eq!(
            package_of("vault/identity", "P1.parquet.enc"),
            Some(("P1".into(), false))
        );
        assert_eq!(
            package_of("quarantine", ".staging-P1.json.enc"),
            Some(("P1".into(), true))
        );
        assert_eq!(package_of("quarantine", "P1"), Some(("P1".into(), false)));
        assert_eq!(package_of("packages", "P1.age"), Some(("P1".into(), false)));
        // A dotted name is no package's: the stem of `2026.batch1.age` is not the package `2026`.
        assert_eq!(package_of("packages", "2026.batch1.age"), None);
        assert_eq!(package_of("vault/clinical", "notes.txt"), None);
        assert_eq!(package_of("packages", "P1.parquet.enc"), None);
    }

    #[test]
    fn the_kept_original_is_the_verified_package_or_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("p.age");
        std::fs::write(&from, b"sealed package bytes").expect("write");
        let sha = hex::encode(Sha256::digest(b"sealed package bytes"));
        let to = dir.path().join("kept/p.age");
        copy_verified(&from, &to, &sha).expect("copy");
        assert_eq!(std::fs::read(&to).expect("read"), b"sealed package bytes");
        // The file changed after it was verified: nothing is kept.
        std::fs::write(&from, b"other bytes").expect("write");
        let to2 = dir.path().join("kept/q.age");
        assert!(copy_verified(&from, &to2, &sha).is_err());
        assert!(!to2.exists());
    }
}
