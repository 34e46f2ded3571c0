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

use tokumei_model::events::SourceRecord;

use crate::catalog::{Catalog, Receipt};
use crate::home::{DataKey, Home, VaultError};
use crate::optout::{IndexKey, Subject};
use crate::package::{safe_path, Manifest, MANIFEST_FORMAT};
use crate::store::{self, Quarantined, Refusals};

/// Largest manifest or signature read (16 MiB).
const MAX_META: u64 = 16 << 20;
/// Largest file of a package read (4 GiB).
const MAX_FILE: u64 = 4 << 30;
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
        /// What landed where.
        report: ReceiveReport,
    },
    /// Received before, with the same bytes: nothing was done.
    AlreadyReceived {
        /// Package id.
        package_id: String,
        /// When.
        received_at: String,
    },
}

/// What a received package put into the home.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveReport {
    /// Records read from the files.
    pub read: usize,
    /// Records stored in the vault.
    pub stored: usize,
    /// Records (or messages) quarantined, with file, line and reason.
    pub quarantined: usize,
    /// Records refused by the opt-out registry and the notice period.
    pub refusals: Refusals,
    /// Clinical events stored.
    pub events: usize,
    /// Warnings of the readers.
    pub warnings: usize,
}

fn io(path: &Path, source: std::io::Error) -> VaultError {
    VaultError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Receives one package file into the home; every outcome and refusal is audited. The data key
/// encrypts the identity vault and the quarantine.
pub fn receive(
    home: &Home,
    package: &Path,
    actor: &str,
    key: &DataKey,
) -> Result<Outcome, VaultError> {
    let mut log = home.audit()?;
    // A package interrupted before its receipt was recorded left files behind: remove them first.
    let catalog = Catalog::open(&home.root.join("catalog/catalog.sqlite"))?;
    let cleaned = store::recover(home, &|id| Ok(catalog.receipt(id)?.is_some()))?;
    drop(catalog);
    if cleaned > 0 {
        log.append(Entry::now(
            actor,
            "technician",
            "receive.recover",
            &format!("{cleaned} interrupted package(s) removed"),
            "ok",
            None,
        ))?;
    }
    let object = package
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    match receive_inner(home, package, key) {
        Ok((outcome, provider)) => {
            let (obj, result) = match &outcome {
                Outcome::Received {
                    manifest, report, ..
                } => (
                    format!(
                        "package {} ({} files, {} records in the manifest)",
                        manifest.package_id,
                        manifest.files.len(),
                        manifest.records()
                    ),
                    format!(
                        "ok: {} records stored, {} quarantined, {} refused (opt-out), {} refused \
                         (notice period)",
                        report.stored,
                        report.quarantined,
                        report.refusals.opted_out,
                        report.refusals.too_early
                    ),
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

fn receive_inner(home: &Home, package: &Path, key: &DataKey) -> Result<(Outcome, String), Failed> {
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

    // Read the tar stream into memory, hashing every file; nothing of the extract is written in
    // plain text.
    let (manifest_bytes, signature, files) = unpack(reader)?;
    let hashes: Vec<(String, String)> = files
        .iter()
        .map(|(p, b)| (p.clone(), hex::encode(Sha256::digest(b))))
        .collect();
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
    let provider_key = tokumei_audit::public_key_from_hex(&provider.public_key)
        .map_err(|e| (VaultError::Audit(e), Some(pid.clone())))?;
    let sig = hex::decode(signature.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok());
    let signed = sig.is_some_and(|s| provider_key.verify(&manifest_bytes, &s).is_ok());
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
    // The notice period must be known: the provider's registration or the manifest states it.
    let notice_start = provider
        .notice_start
        .clone()
        .or_else(|| manifest.notice_start.clone());
    let Some(notice_start) = notice_start
        .as_deref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    else {
        return Err(refuse(
            format!(
                "no notice start date is known for provider {} (register it with --notice-start)",
                safe_id(&pid)
            ),
            Some(&pid),
        ));
    };
    let extracted_on = chrono::NaiveDate::parse_from_str(&manifest.extracted_on, "%Y-%m-%d")
        .map_err(|_| {
            refuse(
                "the manifest's extraction date is not YYYY-MM-DD",
                Some(&pid),
            )
        })?;

    // Read every file with the format readers.
    let (records, quarantine, originals, warnings) = parse_files(&files, &pid);
    let read = records.len();
    // Opt-out registry and notice period.
    let index = IndexKey::derive(key);
    let wait = chrono::Days::new(u64::from(home.config.notice_wait_days));
    let opted_out = catalog
        .optout_indexes()
        .map_err(|e| (e, Some(pid.clone())))?;
    let mut refusals = Refusals::default();
    let mut kept_records = Vec::with_capacity(records.len());
    for r in records {
        let id = &r.identity;
        let mut subjects = Vec::new();
        if let Some(l) = &id.local_patient_id {
            subjects.push(Subject::Patient {
                provider_id: pid.clone(),
                local_patient_id: l.clone(),
            });
        }
        if let (Some(ins), Some(num)) = (&id.insurer_number, &id.insured_number) {
            subjects.push(Subject::Insured {
                insurer_number: ins.clone(),
                symbol: id.insured_symbol.clone(),
                number: num.clone(),
                branch: id.insured_branch.clone(),
            });
        }
        if subjects
            .iter()
            .any(|sub| opted_out.contains(&index.index(sub)))
        {
            refusals.opted_out += 1;
            continue;
        }
        // RULES §4 item 37: extraction on or after max(notice start, first visit after it) + wait.
        let first_visit = r
            .events
            .encounters
            .iter()
            .map(|e| e.start_date)
            .filter(|d| *d >= notice_start)
            .min()
            .unwrap_or(notice_start);
        let threshold = first_visit.max(notice_start).checked_add_days(wait);
        if threshold.is_none_or(|t| extracted_on < t) {
            refusals.too_early += 1;
            continue;
        }
        kept_records.push(r);
    }
    let landed = store::land(
        home,
        key,
        &manifest.package_id,
        kept_records,
        &quarantine,
        &originals,
        &bytes,
    )
    .map_err(|e| (e, Some(pid.clone())))?;
    let kept = store::PackagePaths::of(home, &manifest.package_id).original;
    let confirmed = format!(
        "name={}; address={}; representative={}; acquisition={}; notice_filing={}; notice_start={}",
        provider.name,
        provider.address,
        provider.representative,
        provider.acquisition,
        manifest.notice_filing.clone().unwrap_or_default(),
        notice_start
    );
    catalog
        .add_receipt(&Receipt {
            package_id: manifest.package_id.clone(),
            provider_id: pid.clone(),
            received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            batch_hash,
            files: manifest.files.len() as i64,
            records: landed.records as i64,
            confirmed,
        })
        .map_err(|e| (e, Some(pid.clone())))?;
    Ok((
        Outcome::Received {
            manifest: Box::new(manifest),
            kept,
            report: ReceiveReport {
                read,
                stored: landed.records,
                quarantined: landed.quarantined,
                refusals,
                events: landed.events,
                warnings,
            },
        },
        pid,
    ))
}

type Parsed = (
    Vec<SourceRecord>,
    Vec<Quarantined>,
    Vec<(String, Vec<u8>)>,
    usize,
);

/// Reads every file of a package with the format readers: records read, what could not be read
/// (file, lines, reason), the originals of files with quarantined records, and the warnings.
fn parse_files(files: &[(String, Vec<u8>)], provider_id: &str) -> Parsed {
    let mut records = Vec::new();
    let mut quarantine = Vec::new();
    let mut originals = Vec::new();
    let mut warnings = 0usize;
    for (name, bytes) in files {
        let before = quarantine.len();
        let file_name = name.rsplit('/').next().unwrap_or(name);
        if tokumei_formats::archive::is_zip(bytes) {
            let cursor = std::io::Cursor::new(bytes);
            if name.contains("ssmix2") {
                match tokumei_formats::ssmix2::read_zip(cursor, provider_id) {
                    Ok(reports) => {
                        for p in reports {
                            for (path, fr) in &p.files {
                                warnings += fr.warnings();
                                for r in &fr.rejected {
                                    quarantine.push(Quarantined {
                                        file: format!("{name}#{path}"),
                                        first_line: r.first_line,
                                        last_line: r.last_line,
                                        reason: r.reason.clone(),
                                    });
                                }
                            }
                            if let Some(rec) = p.record {
                                records.push(rec);
                            }
                        }
                    }
                    Err(e) => quarantine.push(Quarantined {
                        file: name.clone(),
                        first_line: 0,
                        last_line: 0,
                        reason: e.to_string(),
                    }),
                }
            } else {
                let result = tokumei_formats::archive::for_each_entry(cursor, |entry, data| {
                    let f = entry.rsplit('/').next().unwrap_or(entry);
                    match tokumei_formats::sniff(f, &data[..data.len().min(64)]) {
                        Some(format) => {
                            let r = tokumei_formats::read(format, &data, provider_id);
                            warnings += r.warnings();
                            for q in &r.rejected {
                                quarantine.push(Quarantined {
                                    file: format!("{name}#{entry}"),
                                    first_line: q.first_line,
                                    last_line: q.last_line,
                                    reason: q.reason.clone(),
                                });
                            }
                            records.extend(r.records.into_iter().map(|p| p.record));
                        }
                        None => quarantine.push(Quarantined {
                            file: format!("{name}#{entry}"),
                            first_line: 0,
                            last_line: 0,
                            reason: "not a supported format".into(),
                        }),
                    }
                });
                if let Err(e) = result {
                    quarantine.push(Quarantined {
                        file: name.clone(),
                        first_line: 0,
                        last_line: 0,
                        reason: e.to_string(),
                    });
                }
            }
        } else {
            match tokumei_formats::sniff(file_name, &bytes[..bytes.len().min(64)]) {
                Some(format) => {
                    let r = tokumei_formats::read(format, bytes, provider_id);
                    warnings += r.warnings();
                    for q in &r.rejected {
                        quarantine.push(Quarantined {
                            file: name.clone(),
                            first_line: q.first_line,
                            last_line: q.last_line,
                            reason: q.reason.clone(),
                        });
                    }
                    // A file with errors but nothing rejected (an unreadable encoding) is
                    // quarantined whole.
                    if r.records.is_empty() && r.rejected.is_empty() && r.errors() > 0 {
                        quarantine.push(Quarantined {
                            file: name.clone(),
                            first_line: 0,
                            last_line: 0,
                            reason: r
                                .issues
                                .first()
                                .map(|i| i.message.clone())
                                .unwrap_or_default(),
                        });
                    }
                    records.extend(r.records.into_iter().map(|p| p.record));
                }
                None => quarantine.push(Quarantined {
                    file: name.clone(),
                    first_line: 0,
                    last_line: 0,
                    reason: "not a supported format".into(),
                }),
            }
        }
        if quarantine.len() > before {
            originals.push((name.clone(), bytes.clone()));
        }
    }
    (records, quarantine, originals, warnings)
}

/// An id for a message: letters, digits, `-` and `_` only, at most 64 characters.
fn safe_id(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect()
}

type Unpacked = (Vec<u8>, String, Vec<(String, Vec<u8>)>);

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
                let mut data = Vec::with_capacity(entry.size().min(1 << 30) as usize);
                (&mut entry)
                    .take(MAX_FILE + 1)
                    .read_to_end(&mut data)
                    .map_err(|e| damaged(e.to_string()))?;
                if data.len() as u64 > MAX_FILE {
                    return Err(refuse("a file of the package is too large", None));
                }
                hashes.push((rel.to_string(), data));
            }
        }
    }
    let manifest = manifest.ok_or_else(|| refuse("the package has no manifest", None))?;
    let signature = signature.ok_or_else(|| refuse("the package has no signature", None))?;
    Ok((manifest, signature, hashes))
}
