//! Sealed receipt: open a provider's package, check it, keep it, record it.
//!
//! Checks, in order, each refusal audited with its reason: the package decrypts with the operator's
//! key (a damaged or foreign package does not); the provider is registered; the manifest is signed by
//! the provider's registered key; every file is present with its SHA-256 and nothing else is there;
//! the package id was not received before (the same package again is a no-op that says so; another
//! package reusing the id is a replay). The original encrypted package is then kept read-only under
//! `packages/`, and the receipt recorded (Art 55: date, provider, confirmed items, batch hash).
//!
//! The files are then read with the format readers (in parallel; each file's records read plus
//! quarantined are checked against the count its manifest states), each record is checked against
//! the opt-out registry and the notice period, and the rest land: identifying fields in the identity
//! vault, clinical events in the clinical store, unreadable records in the quarantine.

use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Verifier};
use sha2::{Digest, Sha256};
use tokumei_audit::Entry;

use tokumei_model::events::SourceRecord;

use crate::catalog::{Catalog, Receipt};
use crate::home::{DataKey, Home, VaultError};
use crate::optout::IndexKey;
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
    /// Each file's counts, in package order.
    pub files: Vec<FileCount>,
    /// Files whose units read differ from the count their manifest states (audited).
    pub mismatched: Vec<String>,
}

/// What was read from one file of a package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCount {
    /// Path in the package.
    pub path: String,
    /// Records read.
    pub read: u64,
    /// Records (or messages, or the whole file) quarantined.
    pub quarantined: u64,
}

/// Where a receipt is, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Decrypting and checking the package (bytes of the encrypted package).
    Opening {
        /// Size of the package file.
        bytes: u64,
    },
    /// Reading the files with the format readers.
    Reading {
        /// Files read so far.
        done: usize,
        /// Files in the package.
        total: usize,
    },
    /// Writing into the vault.
    Landing,
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
    receive_with(home, package, actor, key, &|_| {})
}

/// [`receive`], reporting progress to `progress` (called from several threads).
pub fn receive_with(
    home: &Home,
    package: &Path,
    actor: &str,
    key: &DataKey,
    progress: &(dyn Fn(Stage) + Sync),
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
    match receive_inner(home, package, key, progress) {
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
                         (notice period){}",
                        report.stored,
                        report.quarantined,
                        report.refusals.opted_out,
                        report.refusals.too_early,
                        if report.mismatched.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; {} file(s) differ from their manifest count",
                                report.mismatched.len()
                            )
                        }
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

fn receive_inner(
    home: &Home,
    package: &Path,
    key: &DataKey,
    progress: &(dyn Fn(Stage) + Sync),
) -> Result<(Outcome, String), Failed> {
    let file = std::fs::File::open(package).map_err(|e| (io(package, e), None))?;
    let size = file.metadata().map_err(|e| (io(package, e), None))?.len();
    progress(Stage::Opening { bytes: size });
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
    // The package is streamed from its file (never held whole in memory) and hashed as it is read:
    // the batch hash is over every byte of the file.
    let mut hasher = Sha256::new();
    let mut source = Hashing {
        inner: std::io::BufReader::new(file),
        hasher: &mut hasher,
    };
    // Read the tar stream into memory, hashing every file; nothing of the extract is written in
    // plain text.
    let (manifest_bytes, signature, files) = {
        let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(&mut source))
            .map_err(|_| not_ours())?;
        let reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|_| not_ours())?;
        unpack(reader)?
    };
    std::io::copy(&mut source, &mut std::io::sink()).map_err(|e| (io(package, e), None))?;
    let batch_hash = hex::encode(hasher.finalize());
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
    progress(Stage::Reading {
        done: 0,
        total: files.len(),
    });
    let Parsed {
        records,
        quarantine,
        originals,
        warnings,
        counts,
    } = parse_files(&files, &pid, progress);
    drop(files);
    let read = records.len();
    // Each file's units (records read + quarantined) against the count its manifest states.
    let mismatched: Vec<String> = counts
        .iter()
        .filter(|c| {
            manifest
                .files
                .iter()
                .find(|f| f.path == c.path)
                .and_then(|f| f.records)
                .is_some_and(|n| n != c.read + c.quarantined)
        })
        .map(|c| c.path.clone())
        .collect();
    // Opt-out registry and notice period.
    let index = IndexKey::derive(key);
    let wait = chrono::Days::new(u64::from(home.config.notice_wait_days));
    let opted_out = catalog
        .optout_indexes()
        .map_err(|e| (e, Some(pid.clone())))?;
    let mut refusals = Refusals::default();
    let mut fingerprints = std::collections::BTreeSet::new();
    let mut kept_records = Vec::with_capacity(records.len());
    for r in records {
        let subjects = crate::optout::subjects_of(&pid, &r.identity);
        if subjects
            .iter()
            .any(|sub| opted_out.contains(&index.index(sub)))
        {
            refusals.opted_out += 1;
            // The person's fingerprints: their records from other providers are purged when linked.
            fingerprints.extend(crate::optout::person_fingerprints(&index, &r.identity));
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
    progress(Stage::Landing);
    let landed = store::land(
        home,
        key,
        &manifest.package_id,
        kept_records,
        &quarantine,
        &originals,
        &store::Original {
            path: package.to_path_buf(),
            sha256: batch_hash.clone(),
        },
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
    for f in &fingerprints {
        catalog
            .add_optout_fingerprint(f)
            .map_err(|e| (e, Some(pid.clone())))?;
    }
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
                files: counts,
                mismatched,
            },
        },
        pid,
    ))
}

/// What the readers made of a package's files.
struct Parsed {
    records: Vec<SourceRecord>,
    quarantine: Vec<Quarantined>,
    originals: Vec<(String, Vec<u8>)>,
    warnings: usize,
    counts: Vec<FileCount>,
}

/// Reads every file of a package with the format readers (files in parallel, results in package
/// order): records read, what could not be read (file, lines, reason), the originals of files with
/// quarantined records, the warnings and each file's counts.
fn parse_files(
    files: &[(String, Vec<u8>)],
    provider_id: &str,
    progress: &(dyn Fn(Stage) + Sync),
) -> Parsed {
    use rayon::prelude::*;
    let total = files.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let reads: Vec<Option<tokumei_formats::any::FileRead>> = files
        .par_iter()
        .map(|(name, bytes)| {
            let r = tokumei_formats::any::read_file(name, bytes, provider_id);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(Stage::Reading { done: n, total });
            r
        })
        .collect();
    let mut out = Parsed {
        records: Vec::new(),
        quarantine: Vec::new(),
        originals: Vec::new(),
        warnings: 0,
        counts: Vec::with_capacity(files.len()),
    };
    for ((name, bytes), read) in files.iter().zip(reads) {
        let Some(r) = read else {
            out.quarantine.push(Quarantined {
                file: name.clone(),
                first_line: 0,
                last_line: 0,
                reason: "not a supported format".into(),
            });
            out.originals.push((name.clone(), bytes.clone()));
            out.counts.push(FileCount {
                path: name.clone(),
                read: 0,
                quarantined: 1,
            });
            continue;
        };
        out.warnings += r.warnings();
        out.counts.push(FileCount {
            path: name.clone(),
            read: r.records.len() as u64,
            quarantined: r.rejected.len() as u64,
        });
        if !r.rejected.is_empty() {
            out.originals.push((name.clone(), bytes.clone()));
        }
        out.quarantine
            .extend(r.rejected.into_iter().map(|q| Quarantined {
                file: match q.entry {
                    Some(e) => format!("{name}#{e}"),
                    None => name.clone(),
                },
                first_line: q.rejected.first_line,
                last_line: q.rejected.last_line,
                reason: q.rejected.reason,
            }));
        out.records.extend(r.records);
    }
    out
}

/// An id for a message: letters, digits, `-` and `_` only, at most 64 characters.
fn safe_id(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect()
}

type Unpacked = (Vec<u8>, String, Vec<(String, Vec<u8>)>);

/// A reader that hashes every byte it passes on.
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

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
