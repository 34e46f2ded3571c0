//! Exports from the identified zone under the two-person rule (RULES §7 item 49).
//!
//! Nothing identified leaves the home on one person's word: a technician requests an export (what,
//! of which package, to whom, why), a *second* technician approves it, and only then may either of
//! them run it, once. The output is encrypted to the age recipient named in the request, so what the
//! approver approved is exactly where the data go. Every step, and every refusal, is audited.
//!
//! What can be exported: the original files holding a package's quarantined records with the
//! quarantine report (to return them to the provider for correction), and a package's identity table
//! (for a provider's correction query).

use std::path::Path;

use rusqlite::{params, OptionalExtension};

use crate::access::{Role, Session};
use crate::catalog::Catalog;
use crate::home::{io, DataKey, Home, VaultError};
use crate::store;

/// What is exported (serialized as its code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    /// A package's quarantine report and the original files holding the quarantined records.
    Quarantine,
    /// A package's identity records (CSV).
    Identities,
}

impl ExportKind {
    /// Code.
    pub fn code(&self) -> &'static str {
        match self {
            ExportKind::Quarantine => "quarantine",
            ExportKind::Identities => "identities",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<ExportKind> {
        match s.trim() {
            "quarantine" => Some(ExportKind::Quarantine),
            "identities" => Some(ExportKind::Identities),
            _ => None,
        }
    }
}

/// A request to export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportRequest {
    /// Id.
    pub id: i64,
    /// What.
    pub kind: ExportKind,
    /// Of which package.
    pub package_id: String,
    /// To whom: an age recipient.
    pub recipient: String,
    /// Why.
    pub purpose: String,
    /// Requesting technician.
    pub requested_by: String,
    /// When.
    pub requested_at: String,
    /// Approving technician (never the requester).
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<String>,
    /// When it was run (an export runs once).
    pub executed_at: Option<String>,
}

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Catalog {
    fn ensure_exports(&self) -> Result<(), VaultError> {
        self.connection()
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS exports (
                     id INTEGER PRIMARY KEY,
                     kind TEXT NOT NULL,
                     package_id TEXT NOT NULL,
                     recipient TEXT NOT NULL,
                     purpose TEXT NOT NULL,
                     requested_by TEXT NOT NULL,
                     requested_at TEXT NOT NULL,
                     approved_by TEXT,
                     approved_at TEXT,
                     executed_at TEXT
                 );",
            )
            .map_err(db)
    }

    /// Every export request, newest first.
    pub fn export_requests(&self) -> Result<Vec<ExportRequest>, VaultError> {
        self.ensure_exports()?;
        let mut stmt = self
            .connection()
            .prepare("SELECT id FROM exports ORDER BY id DESC")
            .map_err(db)?;
        let ids: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.export_request(id)?);
        }
        Ok(out)
    }

    /// An export request by id.
    pub fn export_request(&self, id: i64) -> Result<Option<ExportRequest>, VaultError> {
        self.ensure_exports()?;
        self.connection()
            .query_row(
                "SELECT id, kind, package_id, recipient, purpose, requested_by, requested_at,
                     approved_by, approved_at, executed_at FROM exports WHERE id = ?1",
                params![id],
                |r| {
                    let kind: String = r.get(1)?;
                    Ok(ExportRequest {
                        id: r.get(0)?,
                        kind: ExportKind::parse(&kind).unwrap_or(ExportKind::Quarantine),
                        package_id: r.get(2)?,
                        recipient: r.get(3)?,
                        purpose: r.get(4)?,
                        requested_by: r.get(5)?,
                        requested_at: r.get(6)?,
                        approved_by: r.get(7)?,
                        approved_at: r.get(8)?,
                        executed_at: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(db)
    }
}

/// Audits a denial and returns the error to give the user.
fn denied(home: &Home, s: &Session, action: &str, object: &str, why: &str) -> VaultError {
    match s.audit(home, action, object, &format!("denied: {why}"), None) {
        Ok(()) => VaultError::Denied(why.to_string()),
        Err(e) => e,
    }
}

/// Records a request to export; returns its id. Needs a technician.
pub fn request(
    home: &Home,
    s: &Session,
    kind: ExportKind,
    package_id: &str,
    recipient: &str,
    purpose: &str,
) -> Result<i64, VaultError> {
    s.require(home, "export.request", &[Role::Technician])?;
    let catalog = home.catalog()?;
    let Some(receipt) = catalog.receipt(package_id)? else {
        return Err(VaultError::Refused(format!(
            "no package {package_id} was received"
        )));
    };
    recipient
        .trim()
        .parse::<age::x25519::Recipient>()
        .map_err(|_| VaultError::Refused("the recipient is not an age recipient (age1…)".into()))?;
    if purpose.trim().is_empty() {
        return Err(VaultError::Refused("an export states its purpose".into()));
    }
    catalog.ensure_exports()?;
    catalog
        .connection()
        .execute(
            "INSERT INTO exports (kind, package_id, recipient, purpose, requested_by, requested_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                kind.code(),
                package_id,
                recipient.trim(),
                purpose.trim(),
                s.user,
                now()
            ],
        )
        .map_err(db)?;
    let id = catalog.connection().last_insert_rowid();
    s.audit(
        home,
        "export.request",
        &format!("export {id}: {} of package {package_id}", kind.code()),
        "ok: awaiting a second technician's approval",
        Some(&receipt.provider_id),
    )?;
    Ok(id)
}

/// Approves a request: a technician other than the requester.
pub fn approve(home: &Home, s: &Session, id: i64) -> Result<ExportRequest, VaultError> {
    s.require(home, "export.approve", &[Role::Technician])?;
    let catalog = home.catalog()?;
    let object = format!("export {id}");
    let Some(r) = catalog.export_request(id)? else {
        return Err(VaultError::Refused(format!("no export request {id}")));
    };
    if r.requested_by == s.user {
        return Err(denied(
            home,
            s,
            "export.approve",
            &object,
            "the two-person rule: the requester cannot approve their own export",
        ));
    }
    if r.approved_by.is_some() {
        return Err(VaultError::Refused(format!(
            "export {id} is already approved"
        )));
    }
    catalog
        .connection()
        .execute(
            "UPDATE exports SET approved_by = ?2, approved_at = ?3 WHERE id = ?1",
            params![id, s.user, now()],
        )
        .map_err(db)?;
    s.audit(home, "export.approve", &object, "ok", None)?;
    catalog
        .export_request(id)?
        .ok_or_else(|| VaultError::Catalog("the request vanished".into()))
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    /// The request.
    pub request: ExportRequest,
    /// Files in the encrypted archive.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Runs an approved export once, by its requester or approver: an age-encrypted tar to `out`.
pub fn run(
    home: &Home,
    s: &Session,
    key: &DataKey,
    id: i64,
    out: &Path,
) -> Result<ExportSummary, VaultError> {
    s.require(home, "export.run", &[Role::Technician])?;
    let catalog = home.catalog()?;
    let object = format!("export {id}");
    let Some(r) = catalog.export_request(id)? else {
        return Err(VaultError::Refused(format!("no export request {id}")));
    };
    let Some(approver) = r.approved_by.clone() else {
        return Err(denied(
            home,
            s,
            "export.run",
            &object,
            "the two-person rule: a second technician has not approved this export",
        ));
    };
    if s.user != r.requested_by && s.user != approver {
        return Err(denied(
            home,
            s,
            "export.run",
            &object,
            "only the requester or the approver runs an export",
        ));
    }
    if r.executed_at.is_some() {
        return Err(denied(
            home,
            s,
            "export.run",
            &object,
            "the export was already run (each approval is for one run)",
        ));
    }
    let files: Vec<(String, Vec<u8>)> = match r.kind {
        ExportKind::Quarantine => {
            let report = store::read_quarantine(home, key, &r.package_id)?;
            let mut files = vec![(
                "quarantine.json".to_string(),
                serde_json::to_vec_pretty(&report).map_err(|e| VaultError::Store(e.to_string()))?,
            )];
            files.extend(
                store::read_quarantine_files(home, key, &r.package_id)?
                    .into_iter()
                    .map(|(n, b)| (format!("files/{n}"), b)),
            );
            files
        }
        ExportKind::Identities => {
            let rows = store::read_identities(home, key, &r.package_id)?;
            vec![("identities.csv".to_string(), identities_csv(&rows)?)]
        }
    };
    let recipient: age::x25519::Recipient = r
        .recipient
        .parse()
        .map_err(|_| VaultError::Refused("the recipient is not an age recipient".into()))?;
    let staged = tokumei_fs::StagedFile::new(out)?;
    let tmp = staged.path();
    let mut sealed =
        crate::sealed::SealedTar::create(tmp, &recipient, 0o600).map_err(|e| io(tmp, e))?;
    for (name, bytes) in &files {
        sealed.append_bytes(name, bytes).map_err(|e| io(tmp, e))?;
    }
    let bytes = sealed.finish().map_err(|e| io(tmp, e))?;
    staged.commit()?;
    catalog
        .connection()
        .execute(
            "UPDATE exports SET executed_at = ?2 WHERE id = ?1",
            params![id, now()],
        )
        .map_err(db)?;
    let provider = catalog.receipt(&r.package_id)?.map(|x| x.provider_id);
    s.audit(
        home,
        "export.run",
        &format!(
            "export {id}: {} of package {} (approved by {approver})",
            r.kind.code(),
            r.package_id
        ),
        &format!(
            "ok: {} file(s), {bytes} bytes, encrypted to the named recipient",
            files.len()
        ),
        provider.as_deref(),
    )?;
    Ok(ExportSummary {
        request: catalog
            .export_request(id)?
            .ok_or_else(|| VaultError::Catalog("the request vanished".into()))?,
        files: files.len(),
        bytes,
    })
}

fn identities_csv(rows: &[tokumei_model::identity::IdentityRecord]) -> Result<Vec<u8>, VaultError> {
    use tokumei_model::identity::IdentityRecord;
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| VaultError::Store(e.to_string());
    w.write_record(IdentityRecord::COLUMNS).map_err(e)?;
    for r in rows {
        w.write_record(
            IdentityRecord::COLUMNS
                .iter()
                .map(|c| r.column_text(c).unwrap_or_default()),
        )
        .map_err(e)?;
    }
    w.into_inner().map_err(|e| VaultError::Store(e.to_string()))
}
