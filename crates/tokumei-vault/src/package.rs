//! Sealed packages: what a provider sends. A package is an age-encrypted tar holding `manifest.json`
//! (package id, provider id, extraction date, period, notice filing and start, per-file SHA-256, size,
//! format and record count), `manifest.sig` (the provider's Ed25519 signature of the manifest bytes,
//! hex) and the extract under `files/`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::home::{io, write_secret, VaultError};

/// Format tag of the manifest.
pub const MANIFEST_FORMAT: &str = "tokumei-package-1";

/// One file of the extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Path inside the extract (forward slashes, relative).
    pub path: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Format recognised by the provider's side, if any.
    pub format: Option<String>,
    /// Records the file holds, as counted when packaging.
    pub records: Option<u64>,
}

/// The manifest of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Random id of the package (replays are refused by it).
    pub package_id: String,
    /// The provider.
    pub provider_id: String,
    /// Date of extraction (YYYY-MM-DD).
    pub extracted_on: String,
    /// First day covered (YYYY-MM-DD), if stated.
    pub period_from: Option<String>,
    /// Last day covered (YYYY-MM-DD), if stated.
    pub period_to: Option<String>,
    /// The provider's notice filing reference with the minister.
    pub notice_filing: Option<String>,
    /// The date the provider's notice to patients began (YYYY-MM-DD).
    pub notice_start: Option<String>,
    /// Files of the extract.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// Records over all files.
    pub fn records(&self) -> u64 {
        self.files.iter().filter_map(|f| f.records).sum()
    }
}

/// Details a provider states when packaging.
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    /// Extraction date (YYYY-MM-DD); today when empty.
    pub extracted_on: Option<String>,
    /// Period covered.
    pub period_from: Option<String>,
    /// Period covered.
    pub period_to: Option<String>,
    /// Notice filing reference.
    pub notice_filing: Option<String>,
    /// Notice start date.
    pub notice_start: Option<String>,
    /// A fixed package id (a provider re-sending a package under its original id); random otherwise.
    pub package_id: Option<String>,
    /// File extensions (without the dot) left out of the package, e.g. `parquet` for a folder that
    /// also holds a system's own tables.
    pub exclude_extensions: Vec<String>,
}

/// Creates a provider's signing key pair: `DIR/<id>.key` (owner-only, hex seed) and `DIR/<id>.pub`.
pub fn provider_init(id: &str, dir: &Path) -> Result<(PathBuf, PathBuf), VaultError> {
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Provider, id)
        .map_err(|e| VaultError::Refused(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let key = tokumei_audit::generate_key()?;
    let key_path = dir.join(format!("{id}.key"));
    let pub_path = dir.join(format!("{id}.pub"));
    write_secret(
        &key_path,
        format!("{}\n", tokumei_audit::key_to_hex(&key)).as_bytes(),
    )?;
    std::fs::write(
        &pub_path,
        format!("{}\n", hex::encode(key.verifying_key().to_bytes())),
    )
    .map_err(|e| io(&pub_path, e))?;
    Ok((key_path, pub_path))
}

/// The files under `dir`, sorted. Links are refused, never followed (an extract holding a link to
/// `/etc` must not pack the system's files), and so is anything that is neither a file nor a folder.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), VaultError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| io(dir, e)))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        let kind = std::fs::symlink_metadata(&p)
            .map_err(|e| io(&p, e))?
            .file_type();
        if kind.is_symlink() {
            return Err(VaultError::Refused(format!(
                "{} is a symbolic link: an extract holds plain files only (links are not followed)",
                p.display()
            )));
        } else if kind.is_dir() {
            files_under(&p, out)?;
        } else if kind.is_file() {
            out.push(p);
        } else {
            return Err(VaultError::Refused(format!(
                "{} is not a plain file",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Hashes a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), VaultError> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Recognises a file's format and counts its records (source formats the readers know; a DICOM
/// file is one image).
fn count_records(name: &str, path: &Path) -> Result<(Option<String>, Option<u64>), VaultError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    if crate::images::is_dicom(name, &bytes) {
        return Ok((Some("dicom".into()), Some(1)));
    }
    Ok(
        match tokumei_formats::any::read_file(name, &bytes, "package") {
            Some(r) => (Some(r.kind.code().to_string()), Some(r.units() as u64)),
            None => (None, None),
        },
    )
}

/// Builds a package of everything under `source` for the operator whose age recipient is
/// `recipient`, signed with the provider's key, written to `out` (through a temporary file).
pub fn package(
    key: &SigningKey,
    provider_id: &str,
    recipient: &str,
    source: &Path,
    out: &Path,
    opts: &PackageOptions,
) -> Result<Manifest, VaultError> {
    let recipient: age::x25519::Recipient = recipient
        .trim()
        .parse()
        .map_err(|e| VaultError::Key(format!("operator recipient: {e}")))?;
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Provider, provider_id)
        .map_err(|e| VaultError::Refused(e.to_string()))?;
    if let Some(id) = &opts.package_id {
        tokumei_model::ids::check(tokumei_model::ids::IdKind::Package, id)
            .map_err(|e| VaultError::Refused(e.to_string()))?;
    }
    for d in [
        &opts.extracted_on,
        &opts.period_from,
        &opts.period_to,
        &opts.notice_start,
    ]
    .into_iter()
    .flatten()
    {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| VaultError::Refused("a date of the package is not YYYY-MM-DD".into()))?;
    }
    if out.is_dir() {
        return Err(VaultError::Refused(format!(
            "{} is a folder; the package is written to a file",
            out.display()
        )));
    }
    let mut paths = Vec::new();
    files_under(source, &mut paths)?;
    paths.retain(|p| {
        !p.extension().is_some_and(|e| {
            opts.exclude_extensions
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        })
    });
    let mut files = Vec::with_capacity(paths.len());
    for p in &paths {
        let rel = p
            .strip_prefix(source)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/");
        if !crate::unpack::valid_file_path(&rel) {
            return Err(VaultError::Refused(format!(
                "{} has a name the operator cannot accept (control characters, or too long)",
                p.display()
            )));
        }
        let (sha256, bytes) = sha256_file(p)?;
        let (format, records) = count_records(&rel, p)?;
        files.push(ManifestFile {
            path: rel,
            sha256,
            bytes,
            format,
            records,
        });
    }
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| VaultError::Key(e.to_string()))?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        package_id: opts.package_id.clone().unwrap_or_else(|| hex::encode(id)),
        provider_id: provider_id.into(),
        extracted_on: opts
            .extracted_on
            .clone()
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string()),
        period_from: opts.period_from.clone(),
        period_to: opts.period_to.clone(),
        notice_filing: opts.notice_filing.clone(),
        notice_start: opts.notice_start.clone(),
        files,
    };
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| VaultError::Refused(e.to_string()))?;
    let signature = hex::encode(key.sign(&manifest_bytes).to_bytes());

    let staged = tokumei_fs::StagedFile::new(out)?;
    let tmp = staged.path();
    let mut sealed =
        crate::sealed::SealedTar::create(tmp, &recipient, 0o600).map_err(|e| io(tmp, e))?;
    sealed
        .append_bytes("manifest.json", &manifest_bytes)
        .map_err(|e| io(tmp, e))?;
    sealed
        .append_bytes("manifest.sig", signature.as_bytes())
        .map_err(|e| io(tmp, e))?;
    for (p, f) in paths.iter().zip(&manifest.files) {
        let src = std::fs::File::open(p).map_err(|e| io(p, e))?;
        sealed
            .append(&format!("files/{}", f.path), f.bytes, src)
            .map_err(|e| io(p, e))?;
    }
    sealed.finish().map_err(|e| io(tmp, e))?;
    staged.commit()?;
    Ok(manifest)
}

/// Whether a path inside a package is safe to extract (relative, no `..`).
pub fn safe_path(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_)))
}
