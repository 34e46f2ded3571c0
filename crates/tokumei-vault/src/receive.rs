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

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};
use tokumei_audit::Entry;

use tokumei_model::events::SourceRecord;

use crate::catalog::{Catalog, Receipt};
use crate::home::{io, DataKey, Home, VaultError};
use crate::optout::IndexKey;
use crate::package::Manifest;
use crate::store::{self, Quarantined, Refusals};

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
    /// Images (DICOM files) stored, tied to their patient's record.
    pub images: usize,
    /// Images refused with their patient (requests to stop, notice period).
    pub images_refused: usize,
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
    /// Waiting for another command to finish changing the home.
    Waiting,
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
    receive_checked(home, package, actor, key, None, progress)
}

/// [`receive_with`] for a package a provider's user uploaded: refused (audited) unless its manifest
/// names that provider, so that one provider's user cannot deliver in another's name even with its
/// signing key.
pub fn receive_uploaded(
    home: &Home,
    package: &Path,
    actor: &str,
    key: &DataKey,
    uploader: &str,
    progress: &(dyn Fn(Stage) + Sync),
) -> Result<Outcome, VaultError> {
    receive_checked(home, package, actor, key, Some(uploader), progress)
}

fn receive_checked(
    home: &Home,
    package: &Path,
    actor: &str,
    key: &DataKey,
    uploader: Option<&str>,
    progress: &(dyn Fn(Stage) + Sync),
) -> Result<Outcome, VaultError> {
    // One writer at a time: the recovery below must never remove what another receipt is writing.
    let _lock = crate::lock::writer(home, "receive", crate::lock::wait_from_env(), &|_| {
        progress(Stage::Waiting)
    })?;
    let mut log = home.audit()?;
    // A package interrupted before its receipt was recorded left files behind: remove them first,
    // then record the outcome of every receipt begun and never recorded.
    let catalog = home.catalog()?;
    let cleaned = store::recover(home, &|id| Ok(catalog.receipt(id)?.is_some()))?;
    for p in crate::intent::pending(home, "receive")? {
        let committed = catalog.receipt(&p.intent.id)?.is_some();
        let entry = crate::intent::recovered_entry(&p.intent, committed, "its receipt");
        crate::intent::finish(home, p, entry)?;
    }
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
    // The file's name is the operator's, but it is kept printable and short in the log.
    let object: String = package
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let mut begun = None;
    let result = receive_inner(
        home,
        &catalog,
        (package, uploader),
        actor,
        key,
        progress,
        &mut begun,
    );
    // The outcome closes the intent the receipt declared (if it got that far).
    let mut record = |entry: Entry| -> Result<(), VaultError> {
        match begun.take() {
            Some(p) => crate::intent::finish(home, p, entry),
            None => log.append(entry).map(|_| ()).map_err(VaultError::from),
        }
    };
    match result {
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
            record(Entry::now(
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
            record(Entry::now(
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

impl From<crate::unpack::Refused> for (VaultError, Option<String>) {
    fn from(r: crate::unpack::Refused) -> Self {
        (VaultError::Refused(r.0), None)
    }
}

fn refuse(msg: impl Into<String>, provider: Option<&str>) -> Failed {
    (
        VaultError::Refused(msg.into()),
        provider.map(str::to_string),
    )
}

fn receive_inner(
    home: &Home,
    catalog: &Catalog,
    (package, uploader): (&Path, Option<&str>),
    actor: &str,
    key: &DataKey,
    progress: &(dyn Fn(Stage) + Sync),
    begun: &mut Option<crate::intent::Pending>,
) -> Result<(Outcome, String), Failed> {
    let opened = match open_package(home, catalog, (package, uploader), key, progress)? {
        Opened::Fresh(o) => o,
        Opened::Again(outcome, pid) => return Ok((outcome, pid)),
    };
    // From here on the receipt writes into the home: declared first, so that it never ends
    // without its audit entry.
    let pid = opened.manifest.provider_id.clone();
    *begun = Some(
        crate::intent::begin(
            home,
            crate::intent::Intent {
                kind: "receive".into(),
                id: opened.manifest.package_id.clone(),
                actor: actor.into(),
                role: "technician".into(),
                provider: Some(pid.clone()),
                paths: Vec::new(),
            },
        )
        .map_err(|e| (e, Some(pid)))?,
    );
    land_package(home, catalog, package, key, progress, opened)
}

/// A package whose signature, files and hashes were checked.
struct Checked {
    manifest: Manifest,
    provider: crate::catalog::Provider,
    files: Vec<(String, Vec<u8>)>,
    batch_hash: String,
}

enum Opened {
    /// Not received before.
    Fresh(Box<Checked>),
    /// Received before with the same bytes.
    Again(Outcome, String),
}

/// Decrypts the package as it streams from its file and reads it as hostile input
/// ([`crate::unpack`]): nothing but the manifest and its signature is held before the provider's
/// registered signature is checked; a package received before is read to its end for its hash only.
fn open_package(
    home: &Home,
    catalog: &Catalog,
    (package, uploader): (&Path, Option<&str>),
    key: &DataKey,
    progress: &(dyn Fn(Stage) + Sync),
) -> Result<Opened, Failed> {
    let file = std::fs::File::open(package).map_err(|e| (io(package, e), None))?;
    let size = file.metadata().map_err(|e| (io(package, e), None))?.len();
    progress(Stage::Opening { bytes: size });
    let identity = home.operator_identity(key).map_err(|e| (e, None))?;
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
    let mut provider = None;
    let mut previous = None;
    let unpacked = {
        let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(&mut source))
            .map_err(|_| not_ours())?;
        let reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|_| not_ours())?;
        let read = crate::unpack::read(reader, home.limits(), &mut |meta| {
            let named = &meta.manifest.provider_id;
            if uploader.is_some_and(|u| u != named) {
                return Err(refuse(
                    format!(
                        "the package names provider {named}, not the provider that uploaded it"
                    ),
                    uploader,
                ));
            }
            provider = Some(check_signature(catalog, meta)?);
            previous = catalog
                .receipt(&meta.manifest.package_id)
                .map_err(|e| (e, Some(meta.manifest.provider_id.clone())))?;
            Ok(if previous.is_some() {
                crate::unpack::Next::Skip
            } else {
                crate::unpack::Next::Files
            })
        });
        // A refusal after the signature was checked concerns that provider (its export shows it).
        let signed_by = provider.as_ref().map(|p| p.id.clone());
        read.map_err(|(e, p): Failed| (e, p.or(signed_by)))?
    };
    std::io::copy(&mut source, &mut std::io::sink()).map_err(|e| (io(package, e), None))?;
    let batch_hash = hex::encode(hasher.finalize());
    let manifest = unpacked.meta.manifest;
    let pid = manifest.provider_id.clone();
    match (previous, unpacked.files, provider) {
        (Some(r), _, _) if r.batch_hash == batch_hash => Ok(Opened::Again(
            Outcome::AlreadyReceived {
                package_id: r.package_id,
                received_at: r.received_at,
            },
            pid,
        )),
        (Some(r), _, _) => Err(refuse(
            format!(
                "package id {} was already received on {} with other content (replay)",
                manifest.package_id, r.received_at
            ),
            Some(&pid),
        )),
        (None, Some(files), Some(provider)) => Ok(Opened::Fresh(Box::new(Checked {
            manifest,
            provider,
            files,
            batch_hash,
        }))),
        _ => Err(refuse("the package could not be read", Some(&pid))),
    }
}

/// The registered provider whose key signed the manifest; a refusal otherwise.
fn check_signature(
    catalog: &Catalog,
    meta: &crate::unpack::Meta,
) -> Result<crate::catalog::Provider, Failed> {
    let pid = meta.manifest.provider_id.clone();
    let Some(provider) = catalog.provider(&pid).map_err(|e| (e, Some(pid.clone())))? else {
        return Err(refuse(
            format!("provider {pid} is not registered (register it with `tokumei provider add`)"),
            None,
        ));
    };
    let provider_key = tokumei_audit::public_key_from_hex(&provider.public_key)
        .map_err(|e| (VaultError::Audit(e), Some(pid.clone())))?;
    let sig = hex::decode(meta.signature.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok());
    if sig.is_none_or(|s| provider_key.verify_strict(&meta.bytes, &s).is_err()) {
        return Err(refuse(
            format!("the package is not signed by the registered key of provider {pid}"),
            Some(&pid),
        ));
    }
    Ok(provider)
}

fn land_package(
    home: &Home,
    catalog: &Catalog,
    package: &Path,
    key: &DataKey,
    progress: &(dyn Fn(Stage) + Sync),
    opened: Box<Checked>,
) -> Result<(Outcome, String), Failed> {
    let Checked {
        manifest,
        provider,
        files,
        batch_hash,
    } = *opened;
    let pid = manifest.provider_id.clone();
    let (notice_start, extracted_on) = notice_dates(&provider, &manifest, &pid)?;

    // Read every file with the format readers.
    progress(Stage::Reading {
        done: 0,
        total: files.len(),
    });
    let Parsed {
        records,
        mut quarantine,
        mut originals,
        warnings,
        mut counts,
        images,
    } = parse_files(files, &pid, progress);
    let read = records.len();
    let screened = screen(
        home,
        catalog,
        key,
        &pid,
        records,
        (notice_start, extracted_on),
    )?;
    let tied = crate::images::tie(images, &screened.kept, &screened.refused_patients);
    for (q, bytes) in tied.quarantine {
        if let Some(c) = counts.iter_mut().find(|c| c.path == q.file) {
            (c.read, c.quarantined) = (0, 1);
        }
        originals.push((q.file.clone(), bytes));
        quarantine.push(q);
    }
    let mismatched = mismatched_counts(&manifest, &counts);
    progress(Stage::Landing);
    let landed = store::land(
        home,
        key,
        store::Landing {
            package_id: &manifest.package_id,
            records: screened.kept,
            quarantine: &quarantine,
            quarantine_originals: &originals,
            images: &tied.images,
            original: &store::Original {
                path: package.to_path_buf(),
                sha256: batch_hash.clone(),
            },
        },
    )
    .map_err(|e| (e, Some(pid.clone())))?;
    crate::fault::point("receive.landed");
    let kept = store::PackagePaths::of(home, &manifest.package_id).original;
    for f in &screened.fingerprints {
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
            confirmed: confirmed_items(&provider, &manifest, notice_start),
        })
        .map_err(|e| (e, Some(pid.clone())))?;
    crate::fault::point("receive.committed");
    Ok((
        Outcome::Received {
            manifest: Box::new(manifest),
            kept,
            report: ReceiveReport {
                read,
                stored: landed.records,
                quarantined: landed.quarantined,
                refusals: screened.refusals,
                events: landed.events,
                warnings,
                files: counts,
                mismatched,
                images: landed.images,
                images_refused: tied.refused,
            },
        },
        pid,
    ))
}

/// The start of the notice period (the provider's registration or the manifest states it) and the
/// extraction date; a refusal when either is unknown.
fn notice_dates(
    provider: &crate::catalog::Provider,
    manifest: &Manifest,
    pid: &str,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate), Failed> {
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
                pid
            ),
            Some(pid),
        ));
    };
    let extracted_on = chrono::NaiveDate::parse_from_str(&manifest.extracted_on, "%Y-%m-%d")
        .map_err(|_| {
            refuse(
                "the manifest's extraction date is not YYYY-MM-DD",
                Some(pid),
            )
        })?;
    Ok((notice_start, extracted_on))
}

/// The files whose units (records read + quarantined) differ from the count their manifest states.
fn mismatched_counts(manifest: &Manifest, counts: &[FileCount]) -> Vec<String> {
    counts
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
        .collect()
}

/// The records that may land, and what the opt-out registry and the notice period refused.
struct Screened {
    kept: Vec<SourceRecord>,
    refusals: Refusals,
    /// Fingerprints of the persons who asked to stop, for their records from other providers.
    fingerprints: std::collections::BTreeSet<String>,
    /// The provider's patient ids of refused records (their images are refused with them).
    refused_patients: std::collections::BTreeSet<String>,
}

/// Checks every record against the opt-out registry and the notice period (`dates`: its start and
/// the extraction date).
fn screen(
    home: &Home,
    catalog: &Catalog,
    key: &DataKey,
    pid: &str,
    records: Vec<SourceRecord>,
    dates: (chrono::NaiveDate, chrono::NaiveDate),
) -> Result<Screened, Failed> {
    let (notice_start, extracted_on) = dates;
    let index = IndexKey::derive(key);
    let wait = chrono::Days::new(u64::from(home.config.notice_wait_days));
    let opted_out = catalog
        .optout_indexes()
        .map_err(|e| (e, Some(pid.to_string())))?;
    let mut out = Screened {
        kept: Vec::with_capacity(records.len()),
        refusals: Refusals::default(),
        fingerprints: std::collections::BTreeSet::new(),
        refused_patients: std::collections::BTreeSet::new(),
    };
    for r in records {
        let patient = r.identity.local_patient_id.clone();
        let subjects = crate::optout::subjects_of(pid, &r.identity);
        if subjects
            .iter()
            .any(|sub| opted_out.contains(&index.index(sub)))
        {
            out.refusals.opted_out += 1;
            // The person's fingerprints: their records from other providers are purged when linked.
            out.fingerprints
                .extend(crate::optout::person_fingerprints(&index, &r.identity));
            out.refused_patients.extend(patient);
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
            out.refusals.too_early += 1;
            out.refused_patients.extend(patient);
            continue;
        }
        out.kept.push(r);
    }
    Ok(out)
}

/// The items confirmed at receipt (Art 55): the provider's name, address, representative and how
/// it acquired the data, and the notice filed.
fn confirmed_items(
    provider: &crate::catalog::Provider,
    manifest: &Manifest,
    notice_start: chrono::NaiveDate,
) -> String {
    format!(
        "name={}; address={}; representative={}; acquisition={}; notice_filing={}; notice_start={}",
        provider.name,
        provider.address,
        provider.representative,
        provider.acquisition,
        manifest.notice_filing.clone().unwrap_or_default(),
        notice_start
    )
}

/// What the readers made of a package's files.
struct Parsed {
    records: Vec<SourceRecord>,
    quarantine: Vec<Quarantined>,
    originals: Vec<(String, Vec<u8>)>,
    warnings: usize,
    counts: Vec<FileCount>,
    /// DICOM files read, to be tied to their records.
    images: Vec<crate::images::ImageIn>,
}

/// What one file of a package gave.
enum FileRead {
    Records(Option<tokumei_formats::any::FileRead>),
    Image(Result<crate::images::ImageIn, (String, Vec<u8>)>),
}

/// Reads every file of a package with the format readers, DICOM files with the DICOM reader (files
/// in parallel, results in package order): records read, what could not be read (file, lines,
/// reason), the originals of files with quarantined records, the warnings, each file's counts and
/// the images.
fn parse_files(
    files: Vec<(String, Vec<u8>)>,
    provider_id: &str,
    progress: &(dyn Fn(Stage) + Sync),
) -> Parsed {
    use rayon::prelude::*;
    let total = files.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let reads: Vec<(String, Vec<u8>, FileRead)> = files
        .into_par_iter()
        .map(|(name, bytes)| {
            let (bytes, r) = if crate::images::is_dicom(&name, &bytes) {
                (
                    Vec::new(),
                    FileRead::Image(crate::images::read_image(&name, bytes)),
                )
            } else {
                let r = tokumei_formats::any::read_file(&name, &bytes, provider_id);
                (bytes, FileRead::Records(r))
            };
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(Stage::Reading { done: n, total });
            (name, bytes, r)
        })
        .collect();
    let mut out = Parsed {
        records: Vec::new(),
        quarantine: Vec::new(),
        originals: Vec::new(),
        warnings: 0,
        counts: Vec::with_capacity(total),
        images: Vec::new(),
    };
    for (name, bytes, read) in reads {
        out.add(name, bytes, read);
    }
    out
}

impl Parsed {
    /// Adds what one file gave.
    fn add(&mut self, name: String, bytes: Vec<u8>, read: FileRead) {
        let r = match read {
            FileRead::Image(Ok(image)) => {
                self.counts.push(FileCount {
                    path: name,
                    read: 1,
                    quarantined: 0,
                });
                self.images.push(image);
                return;
            }
            FileRead::Image(Err((reason, bytes))) => return self.whole_file(name, bytes, reason),
            FileRead::Records(None) => {
                return self.whole_file(name, bytes, "not a supported format".into())
            }
            FileRead::Records(Some(r)) => r,
        };
        self.warnings += r.warnings();
        self.counts.push(FileCount {
            path: name.clone(),
            read: r.records.len() as u64,
            quarantined: r.rejected.len() as u64,
        });
        self.quarantine
            .extend(r.rejected.iter().map(|q| Quarantined {
                file: match &q.entry {
                    Some(e) => format!("{name}#{e}"),
                    None => name.clone(),
                },
                first_line: q.rejected.first_line,
                last_line: q.rejected.last_line,
                reason: q.rejected.reason.clone(),
            }));
        if !r.rejected.is_empty() {
            self.originals.push((name, bytes));
        }
        self.records.extend(r.records);
    }

    /// A file quarantined whole (its original kept, encrypted).
    fn whole_file(&mut self, name: String, bytes: Vec<u8>, reason: String) {
        self.quarantine.push(Quarantined {
            file: name.clone(),
            first_line: 0,
            last_line: 0,
            reason,
        });
        self.counts.push(FileCount {
            path: name.clone(),
            read: 0,
            quarantined: 1,
        });
        self.originals.push((name, bytes));
    }
}

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
