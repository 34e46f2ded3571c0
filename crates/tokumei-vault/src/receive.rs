//! Sealed receipt: open a provider's package, check it, keep it, record it.
//!
//! Checks, in order, each refusal audited with its reason: the package decrypts with the operator's
//! key (a damaged or foreign package does not); the provider is registered; the manifest is signed by
//! the provider's registered key; every file is present with its SHA-256 and nothing else is there;
//! the package id was not received before (the same package again is a no-op that says so; another
//! package reusing the id is a replay). The original encrypted package is then kept read-only under
//! `packages/`, and the receipt recorded (Art 55: date, provider, confirmed items, batch hash).
//!
//! Reading the extract with the format readers and splitting it into the identity vault and the
//! clinical store follows in the next increment.

use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Verifier};
use sha2::{Digest, Sha256};
use tokumei_audit::Entry;

use crate::catalog::{Catalog, Receipt};
use crate::home::{Home, VaultError};
use crate::package::{safe_path, Manifest, MANIFEST_FORMAT};

/// Largest manifest or signature read (16 MiB).
const MAX_META: u64 = 16 << 20;
/// Most entries in a package.
const MAX_ENTRIES: usize = 10_000_000;

/// What happened to a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Received now.
    Received {
        /// Its manifest.
        manifest: Box<Manifest>,
        /// Where the original is kept.
        kept: PathBuf,
    },
    /// Received before, with the same bytes: nothing was done.
    AlreadyReceived {
        /// Package id.
        package_id: String,
        /// When.
        received_at: String,
    },
}

fn io(path: &Path, source: std::io::Error) -> VaultError {
    VaultError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Receives one package file into the home; every outcome and refusal is audited.
pub fn receive(home: &Home, package: &Path, actor: &str) -> Result<Outcome, VaultError> {
    let mut log = home.audit()?;
    let object = package
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    match receive_inner(home, package) {
        Ok((outcome, provider)) => {
            let (obj, result) = match &outcome {
                Outcome::Received { manifest, .. } => (
                    format!(
                        "package {} ({} files, {} records)",
                        manifest.package_id,
                        manifest.files.len(),
                        manifest.records()
                    ),
                    "ok".to_string(),
                ),
                Outcome::AlreadyReceived { package_id, .. } => (
                    format!("package {package_id}"),
                    "already received: nothing done".to_string(),
                ),
            };
            log.append(Entry::now(
                actor,
                "technician",
                "receive",
                &obj,
                &result,
                Some(&provider),
            ))?;
            Ok(outcome)
        }
        Err((e, provider)) => {
            log.append(Entry::now(
                actor,
                "technician",
                "receive",
                &object,
                &match e {
                    VaultError::Refused(_) => e.to_string(),
                    _ => format!("failed: {e}"),
                },
                provider.as_deref(),
            ))?;
            Err(e)
        }
    }
}

type Failed = (VaultError, Option<String>);

fn refuse(msg: impl Into<String>, provider: Option<&str>) -> Failed {
    (
        VaultError::Refused(msg.into()),
        provider.map(str::to_string),
    )
}

fn receive_inner(home: &Home, package: &Path) -> Result<(Outcome, String), Failed> {
    let bytes = std::fs::read(package).map_err(|e| (io(package, e), None))?;
    let batch_hash = hex::encode(Sha256::digest(&bytes));
    let identity_path = home.root.join("keys/operator.identity");
    let identity: age::x25519::Identity = std::fs::read_to_string(&identity_path)
        .map_err(|e| (io(&identity_path, e), None))?
        .trim()
        .parse()
        .map_err(|_| refuse("the operator identity file is damaged", None))?;
    let not_ours = || {
        refuse(
            "the package does not decrypt with this operator's key: it is damaged or was encrypted \
             to another operator",
            None,
        )
    };
    let decryptor = age::Decryptor::new_buffered(bytes.as_slice()).map_err(|_| not_ours())?;
    let reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|_| not_ours())?;

    // Read the tar stream, hashing every file; nothing of the extract is written in plain text.
    let (manifest_bytes, signature, hashes) = unpack(reader)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| refuse(format!("the manifest is not readable: {e}"), None))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(refuse("unknown manifest format", None));
    }
    let pid = manifest.provider_id.clone();
    let catalog = Catalog::open(&home.root.join("catalog/catalog.sqlite"))
        .map_err(|e| (e, Some(pid.clone())))?;
    let Some(provider) = catalog.provider(&pid).map_err(|e| (e, Some(pid.clone())))? else {
        return Err(refuse(
            format!(
                "provider {} is not registered (register it with `tokumei provider add`)",
                safe_id(&pid)
            ),
            None,
        ));
    };
    let key = tokumei_audit::public_key_from_hex(&provider.public_key)
        .map_err(|e| (VaultError::Audit(e), Some(pid.clone())))?;
    let sig = hex::decode(signature.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok());
    let signed = sig.is_some_and(|s| key.verify(&manifest_bytes, &s).is_ok());
    if !signed {
        return Err(refuse(
            format!(
                "the package is not signed by the registered key of provider {}",
                safe_id(&pid)
            ),
            Some(&pid),
        ));
    }
    // Files: exactly those of the manifest, with their hashes.
    if hashes.len() != manifest.files.len() {
        return Err(refuse(
            format!(
                "the package holds {} files, its manifest lists {}",
                hashes.len(),
                manifest.files.len()
            ),
            Some(&pid),
        ));
    }
    for f in &manifest.files {
        match hashes.iter().find(|(p, _)| p == &f.path) {
            Some((_, h)) if h == &f.sha256 => {}
            Some(_) => {
                return Err(refuse(
                    format!("file {} does not match its SHA-256 in the manifest", f.path),
                    Some(&pid),
                ))
            }
            None => {
                return Err(refuse(
                    format!("file {} of the manifest is missing", f.path),
                    Some(&pid),
                ))
            }
        }
    }
    // Replays.
    if let Some(r) = catalog
        .receipt(&manifest.package_id)
        .map_err(|e| (e, Some(pid.clone())))?
    {
        if r.batch_hash == batch_hash {
            return Ok((
                Outcome::AlreadyReceived {
                    package_id: r.package_id,
                    received_at: r.received_at,
                },
                pid,
            ));
        }
        return Err(refuse(
            format!(
                "package id {} was already received on {} with other content (replay)",
                safe_id(&manifest.package_id),
                r.received_at
            ),
            Some(&pid),
        ));
    }
    // Keep the original, read-only, then record the receipt.
    let kept = home
        .root
        .join(format!("packages/{}.age", manifest.package_id));
    let tmp = kept.with_extension("age.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| (io(&tmp, e), Some(pid.clone())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| (io(&tmp, e), Some(pid.clone())))?;
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| (io(&tmp, e), Some(pid.clone())))?;
    std::fs::rename(&tmp, &kept).map_err(|e| (io(&kept, e), Some(pid.clone())))?;
    let confirmed = format!(
        "name={}; address={}; representative={}; acquisition={}; notice_filing={}; notice_start={}",
        provider.name,
        provider.address,
        provider.representative,
        provider.acquisition,
        manifest.notice_filing.clone().unwrap_or_default(),
        manifest.notice_start.clone().unwrap_or_default()
    );
    catalog
        .add_receipt(&Receipt {
            package_id: manifest.package_id.clone(),
            provider_id: pid.clone(),
            received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            batch_hash,
            files: manifest.files.len() as i64,
            records: manifest.records() as i64,
            confirmed,
        })
        .map_err(|e| (e, Some(pid.clone())))?;
    Ok((
        Outcome::Received {
            manifest: Box::new(manifest),
            kept,
        },
        pid,
    ))
}

/// An id for a message: letters, digits, `-` and `_` only, at most 64 characters.
fn safe_id(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect()
}

type Unpacked = (Vec<u8>, String, Vec<(String, String)>);

/// Reads the tar stream: the manifest and its signature into memory (bounded), the SHA-256 of every
/// file under `files/`.
fn unpack<R: Read>(reader: R) -> Result<Unpacked, Failed> {
    let damaged = |what: String| refuse(format!("the package is damaged: {what}"), None);
    let mut archive = tar::Archive::new(reader);
    let mut manifest = None;
    let mut signature = None;
    let mut hashes = Vec::new();
    let entries = archive.entries().map_err(|e| damaged(e.to_string()))?;
    for (i, entry) in entries.enumerate() {
        if i >= MAX_ENTRIES {
            return Err(refuse("the package has too many entries", None));
        }
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .into_owned();
        if !safe_path(&path) {
            return Err(refuse("the package holds an unsafe path", None));
        }
        let name = path.to_string_lossy().replace('\\', "/");
        match name.as_str() {
            "manifest.json" | "manifest.sig" => {
                let mut buf = Vec::new();
                (&mut entry)
                    .take(MAX_META + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| damaged(e.to_string()))?;
                if buf.len() as u64 > MAX_META {
                    return Err(refuse("the manifest is too large", None));
                }
                if name == "manifest.json" {
                    manifest = Some(buf);
                } else {
                    signature = Some(String::from_utf8_lossy(&buf).into_owned());
                }
            }
            _ => {
                let Some(rel) = name.strip_prefix("files/") else {
                    return Err(refuse("the package holds a file outside files/", None));
                };
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let k = entry.read(&mut buf).map_err(|e| damaged(e.to_string()))?;
                    if k == 0 {
                        break;
                    }
                    h.update(&buf[..k]);
                }
                hashes.push((rel.to_string(), hex::encode(h.finalize())));
            }
        }
    }
    let manifest = manifest.ok_or_else(|| refuse("the package has no manifest", None))?;
    let signature = signature.ok_or_else(|| refuse("the package has no signature", None))?;
    Ok((manifest, signature, hashes))
}
