//! The quarantine as an operation: the records that could not be read, of every package received or
//! of one, decrypted for a technician and audited. The file names are the package's own, and
//! SS-MIX2 entry names carry patient ids: that is why the report is kept encrypted
//! ([`crate::store::read_quarantine`]) and why listing it needs a technician.

use crate::access::{Role, Session};
use crate::home::{DataKey, Home, VaultError};
use crate::store::{read_quarantine, Quarantined};

/// One quarantined record and the package it came in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// The package (opaque id).
    pub package_id: String,
    /// The record: file, lines, reason.
    #[serde(flatten)]
    pub record: Quarantined,
}

/// The quarantined records of `package` (or of every package received, in receipt-id order). Needs
/// a technician; the listing is audited (the packages and the count, never a file name).
pub fn list(
    home: &Home,
    s: &Session,
    key: &DataKey,
    package: Option<&str>,
) -> Result<Vec<Listed>, VaultError> {
    s.require(home, "quarantine.list", &[Role::Technician])?;
    let ids = match package {
        Some(p) => {
            // The id names a file of the home: it passes the one grammar of ids first.
            tokumei_model::ids::check(tokumei_model::ids::IdKind::Package, p)
                .map_err(|e| VaultError::Refused(e.to_string()))?;
            vec![p.to_string()]
        }
        None => home.catalog()?.receipt_ids()?,
    };
    let mut rows = Vec::new();
    for id in &ids {
        for record in read_quarantine(home, key, id)? {
            rows.push(Listed {
                package_id: id.clone(),
                record,
            });
        }
    }
    let object = match package {
        Some(p) => format!("package {p}"),
        None => format!("{} package(s)", ids.len()),
    };
    s.audit(
        home,
        "quarantine.list",
        &object,
        &format!("ok: {} record(s) listed", rows.len()),
        None,
    )?;
    Ok(rows)
}

/// A receipt with the number of its records in the quarantine (a count, never a record).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counted {
    /// The receipt (Art 55: date, provider, files and records of its manifest, batch hash).
    #[serde(flatten)]
    pub receipt: crate::catalog::Receipt,
    /// Records (or messages, or whole files) quarantined.
    pub quarantined: usize,
}

/// The receipts `s` may see, oldest first, each with its quarantine counted: a provider's user
/// those of its provider, technicians and auditors every one. Audited (the count only).
pub fn receipts(home: &Home, s: &Session, key: &DataKey) -> Result<Vec<Counted>, VaultError> {
    let roles = [Role::Technician, Role::Auditor, Role::ProviderAdmin];
    s.require(home, "receipt.list", &roles)?;
    let catalog = home.catalog()?;
    let mut out = Vec::new();
    for id in catalog.receipt_ids()? {
        let Some(receipt) = catalog.receipt(&id)? else {
            continue;
        };
        if s.role == Role::ProviderAdmin && s.provider_id.as_deref() != Some(&receipt.provider_id) {
            continue;
        }
        let quarantined = read_quarantine(home, key, &id)?.len();
        out.push(Counted {
            receipt,
            quarantined,
        });
    }
    let object = format!("{} receipt(s)", out.len());
    s.audit(
        home,
        "receipt.list",
        &object,
        "ok",
        s.provider_id.as_deref(),
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "correct horse battery staple";

    #[test]
    fn an_empty_quarantine_is_listed_and_audited_and_a_bad_package_id_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = crate::home::init(&dir.path().join("home"), PASS, Some(4))
            .expect("init")
            .home;
        let key_file = home.default_user_key().expect("first technician");
        let s = crate::access::open_session(&home, &key_file, PASS, "test", &[Role::Technician])
            .expect("session");
        let key = home.unlock_data_key(PASS).expect("unlock");
        assert!(list(&home, &s, &key, None).expect("listed").is_empty());
        let log = std::fs::read_to_string(home.audit_dir().join("entries.jsonl")).expect("log");
        assert!(log.contains("ok: 0 record(s) listed"), "{log}");
        assert!(matches!(
            list(&home, &s, &key, Some("../packages")),
            Err(VaultError::Refused(_))
        ));
    }
}
