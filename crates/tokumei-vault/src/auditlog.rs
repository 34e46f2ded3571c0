//! The home's audit log as operations, one call each: verify it (against a checkpoint kept
//! elsewhere, if given), write a checkpoint to keep outside the home, export one provider's entries
//! with their inclusion proofs, and verify such an export with nothing but the operator's public key.

use std::path::Path;

use crate::access::{Role, Session};
use crate::home::{io, Home, VaultError};

/// Why the audit log, a checkpoint or an export did not verify or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The home, a file or the log's format failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The log does not verify (the first bad entry is named).
    #[error("audit log does not verify: {0}")]
    Broken(VaultError),
    /// No tree head signed by the operator yet: nothing to checkpoint.
    #[error("the audit log has no head signed by the operator yet")]
    NoOperatorHead,
    /// The file is not a provider export.
    #[error("not an export: {0}")]
    NotAnExport(String),
}

/// What [`verify`] found on an intact log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// Entries verified.
    pub entries: u64,
    /// The root of the last signed tree head (hex; empty for an empty log).
    pub root: String,
    /// Whether the log was checked against a checkpoint (and extends it).
    pub extends_checkpoint: bool,
}

/// A checkpoint from its file (`audit checkpoint`, or a provider's export head).
pub fn read_checkpoint(path: &Path) -> Result<tokumei_audit::SignedHead, VaultError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    Ok(tokumei_audit::read_checkpoint(&bytes)?)
}

/// Verifies the whole log of `home`, and that it extends `checkpoint` when one is given.
pub fn verify(
    home: &Home,
    checkpoint: Option<&tokumei_audit::SignedHead>,
) -> Result<Verified, LogError> {
    let v = home.verify_audit(checkpoint).map_err(LogError::Broken)?;
    Ok(Verified {
        entries: v.entries,
        root: v.head.map(|h| h.root).unwrap_or_default(),
        extends_checkpoint: checkpoint.is_some(),
    })
}

/// Writes the last tree head the operator signed (JSON) to `out`, a new file, once the log
/// verifies; returns it.
pub fn write_checkpoint(home: &Home, out: &Path) -> Result<tokumei_audit::SignedHead, LogError> {
    let head = home
        .verify_audit(None)
        .map_err(LogError::Broken)?
        .operator_head
        .ok_or(LogError::NoOperatorHead)?;
    let json = serde_json::to_vec_pretty(&head).map_err(|e| VaultError::Store(e.to_string()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &json))
        .map_err(|e| io(out, e))?;
    Ok(head)
}

/// What [`consistent`] proved: the operator's last signed head extends an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Consistency {
    /// The earlier head (kept outside the home).
    pub old: tokumei_audit::SignedHead,
    /// The operator's last signed head.
    pub new: tokumei_audit::SignedHead,
    /// The consistency proof (hex hashes), checked with the operator's public key alone.
    pub proof: Vec<String>,
}

/// For an auditor or a technician: the whole log verified, then a consistency proof that the
/// operator's last signed tree head extends `old` (an earlier head the operator signed, kept
/// elsewhere), made and checked with nothing but the operator's public key. Audited either way.
pub fn consistent(
    home: &Home,
    s: &Session,
    old: &tokumei_audit::SignedHead,
) -> Result<Consistency, LogError> {
    s.require(
        home,
        "audit.consistency",
        &[Role::Auditor, Role::Technician],
    )?;
    let object = format!("a head of {} entries", old.size);
    let proved = (|| {
        home.verify_audit(Some(old)).map_err(LogError::Broken)?;
        let key = home.audit_public_key()?;
        let (new, proof) = home.audit_consistency(old.size).map_err(LogError::Broken)?;
        if !tokumei_audit::verify_consistency(old, &new, &proof, &key) {
            return Err(LogError::Broken(VaultError::Refused(
                "the consistency proof does not verify".into(),
            )));
        }
        Ok(Consistency {
            old: old.clone(),
            new,
            proof,
        })
    })();
    let outcome = match &proved {
        Ok(c) => format!("extended by the head of {} entries", c.new.size),
        Err(e) => format!("refused: {e}"),
    };
    s.audit(home, "audit.consistency", &object, &outcome, None)?;
    proved
}

/// What a provider export holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    /// The provider.
    pub provider: String,
    /// Its entries in the export.
    pub entries: usize,
    /// The size of the signed tree head the proofs lead to.
    pub tree_size: u64,
}

/// Exports the entries of `provider` with inclusion proofs and the operator's signed tree head
/// (JSON) to `out`. For a technician, an auditor, or that provider's own admin (another provider's
/// admin is denied, and the denial audited).
pub fn export_provider(
    home: &Home,
    s: &Session,
    provider: &str,
    out: &Path,
) -> Result<Exported, VaultError> {
    let roles = [Role::Technician, Role::Auditor, Role::ProviderAdmin];
    s.require(home, "audit.export", &roles)?;
    if s.role == Role::ProviderAdmin && s.provider_id.as_deref() != Some(provider) {
        s.audit(
            home,
            "audit.export",
            "another provider's entries",
            "denied",
            None,
        )?;
        return Err(VaultError::Denied(
            "a provider's admin exports its own provider's entries only".into(),
        ));
    }
    let key = home.audit_public_key()?;
    let export = tokumei_audit::export_provider(&home.audit_dir(), &key, provider)?;
    let json = serde_json::to_vec_pretty(&export).map_err(|e| VaultError::Store(e.to_string()))?;
    std::fs::write(out, json).map_err(|e| io(out, e))?;
    let entries = export.entries.len();
    s.audit(
        home,
        "audit.export",
        &format!("{entries} entries"),
        "ok",
        Some(provider),
    )?;
    Ok(Exported {
        provider: provider.to_string(),
        entries,
        tree_size: export.head.size,
    })
}

/// What [`verify_export`] proved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportVerified {
    /// The provider the export is of.
    pub provider: String,
    /// Entries proven in the operator's signed log.
    pub entries: usize,
    /// The size of the signed tree head they are proven against.
    pub tree_size: u64,
}

/// Verifies a provider export (`export`, JSON) with nothing but the operator's audit public key
/// (`operator_key`, a file holding it in hex): the head's signature and each entry's inclusion.
pub fn verify_export(export: &Path, operator_key: &Path) -> Result<ExportVerified, LogError> {
    let text = std::fs::read_to_string(operator_key).map_err(|e| io(operator_key, e))?;
    let key = tokumei_audit::public_key_from_hex(&text).map_err(VaultError::from)?;
    let bytes = std::fs::read(export).map_err(|e| io(export, e))?;
    let export: tokumei_audit::ProviderExport =
        serde_json::from_slice(&bytes).map_err(|e| LogError::NotAnExport(e.to_string()))?;
    let entries = tokumei_audit::verify_export(&export, &key).map_err(VaultError::from)?;
    Ok(ExportVerified {
        provider: export.provider,
        entries,
        tree_size: export.head.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "correct horse battery staple";

    fn home() -> (tempfile::TempDir, Home, Session) {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = crate::home::init(&dir.path().join("home"), PASS, Some(4))
            .expect("init")
            .home;
        let key_file = home.default_user_key().expect("first technician");
        let s = crate::access::open_session(&home, &key_file, PASS, "test", &[Role::Technician])
            .expect("session");
        home.unlock_data_key(PASS).expect("unlock");
        (dir, home, s)
    }

    #[test]
    fn the_log_verifies_against_its_checkpoint_and_a_checkpoint_is_never_overwritten() {
        let (dir, home, s) = home();
        let v = verify(&home, None).expect("intact");
        assert!(v.entries > 0 && !v.root.is_empty() && !v.extends_checkpoint);
        let file = dir.path().join("checkpoint.json");
        let head = write_checkpoint(&home, &file).expect("written");
        assert_eq!(head.size, v.entries);
        assert!(write_checkpoint(&home, &file).is_err(), "not overwritten");
        s.audit(&home, "test", "after the checkpoint", "ok", None)
            .expect("audited");
        let checkpoint = read_checkpoint(&file).expect("read back");
        let later = verify(&home, Some(&checkpoint)).expect("extends it");
        assert!(later.extends_checkpoint && later.entries > v.entries);
    }

    #[test]
    fn a_providers_export_verifies_with_the_operators_key_alone() {
        let (dir, home, s) = home();
        s.audit(&home, "receive", "package P-1", "ok", Some("H01"))
            .expect("audited");
        s.audit(&home, "receive", "package P-2", "ok", Some("H02"))
            .expect("audited");
        let out = dir.path().join("export.json");
        let exported = export_provider(&home, &s, "H01", &out).expect("exported");
        assert_eq!(exported.entries, 1);
        let key_file = home.root.join("audit.pub");
        let proven = verify_export(&out, &key_file).expect("verifies");
        assert_eq!(
            (proven.provider.as_str(), proven.entries),
            ("H01", 1),
            "{proven:?}"
        );
        assert_eq!(proven.tree_size, exported.tree_size);
        std::fs::write(&out, b"{}").expect("write");
        assert!(matches!(
            verify_export(&out, &key_file),
            Err(LogError::NotAnExport(_))
        ));
    }
}

/// What an auditor looks for in the log: each part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Filter {
    /// Actions that begin with this (`web.`, `release.build`).
    pub action: Option<String>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// From this day (YYYY-MM-DD, UTC), inclusive.
    pub from: Option<String>,
    /// To this day, inclusive.
    pub to: Option<String>,
}

impl Filter {
    /// Whether the filter's parts are well formed (an action of letters, digits, `.`, `_` or `-`; a
    /// user name; dates as YYYY-MM-DD).
    pub fn valid(&self) -> bool {
        let action = self.action.as_deref().is_none_or(|a| {
            a.len() <= 64
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        let actor = self
            .actor
            .as_deref()
            .is_none_or(|a| a.is_empty() || crate::access::valid_name(a));
        let date = |d: &Option<String>| {
            d.as_deref().is_none_or(|d| {
                d.is_empty() || chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
            })
        };
        action && actor && date(&self.from) && date(&self.to)
    }

    fn keeps(&self, e: &tokumei_audit::Entry) -> bool {
        fn given(o: &Option<String>) -> Option<&str> {
            o.as_deref().filter(|v| !v.is_empty())
        }
        let day = e.time.get(..10).unwrap_or("");
        given(&self.action).is_none_or(|a| e.action.starts_with(a))
            && given(&self.actor).is_none_or(|a| e.actor == a)
            && given(&self.from).is_none_or(|f| day >= f)
            && given(&self.to).is_none_or(|t| day <= t)
    }
}

/// What [`search`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    /// The log verified as a whole (`None`: it does not verify, and why).
    pub verified: Result<Verified, String>,
    /// Entries matching, newest first, at most the limit.
    pub entries: Vec<(u64, tokumei_audit::Entry)>,
    /// Entries matching in all.
    pub matched: usize,
}

/// Entries of the log matching `filter` (newest first, at most `limit`), with the whole log's
/// verification: an auditor's or a technician's read, itself audited.
pub fn search(
    home: &Home,
    session: &crate::access::Session,
    filter: &Filter,
    limit: usize,
) -> Result<Found, LogError> {
    use crate::access::Role;
    session.require(home, "audit.search", &[Role::Auditor, Role::Technician])?;
    if !filter.valid() {
        return Err(LogError::Vault(VaultError::Refused(
            "a filter is an action prefix, a user name and dates as YYYY-MM-DD".into(),
        )));
    }
    let verified = verify(home, None).map_err(|e| e.to_string());
    let all = tokumei_audit::entries(&home.audit_dir()).map_err(VaultError::from)?;
    let mut matched: Vec<(u64, tokumei_audit::Entry)> =
        all.into_iter().filter(|(_, e)| filter.keeps(e)).collect();
    let total = matched.len();
    matched.reverse();
    matched.truncate(limit);
    session.audit(
        home,
        "audit.search",
        &format!("{total} entries matched"),
        "ok",
        None,
    )?;
    Ok(Found {
        verified,
        entries: matched,
        matched: total,
    })
}
