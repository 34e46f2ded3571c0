//! `tokumei home check`: keys, the audit log and the stores of a home, in one pass.
//!
//! Each check yields a [`Finding`]; the home is sound when none is a problem. The checks: the layout
//! version is current; the data key unlocks; the receiving identity opens and matches the published
//! recipient; the audit signing key matches the published audit key; key files are owner-only; the
//! audit log verifies (against a checkpoint held elsewhere, if given); every receipt has its files,
//! and its kept original hashes to the batch hash recorded at receipt; nothing under the stores is
//! unknown to the layout or left by an unrecorded package; no operation awaits recovery.

use std::path::Path;

use crate::home::{DataKey, Home, VaultError, LAYOUT_VERSION};

/// One result of the check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Whether it is a problem.
    pub problem: bool,
    /// What was checked and found (names no identifying value: ids, paths of the home, counts).
    pub what: String,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Every finding, in the order checked.
    pub findings: Vec<Finding>,
    /// How many of them are problems.
    pub problems: usize,
}

impl Report {
    /// The problems found.
    pub fn problems(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.problem)
    }

    fn ok(&mut self, what: impl Into<String>) {
        self.findings.push(Finding {
            problem: false,
            what: what.into(),
        });
    }

    fn problem(&mut self, what: impl Into<String>) {
        self.problems += 1;
        self.findings.push(Finding {
            problem: true,
            what: what.into(),
        });
    }
}

/// `tokumei home check` as one call: [`check`] for a technician's session, audited with the
/// number of problems found.
pub fn check_home(
    home: &Home,
    s: &crate::access::Session,
    key: &DataKey,
    checkpoint: Option<&tokumei_audit::SignedHead>,
) -> Result<Report, VaultError> {
    s.require(home, "home.check", &[crate::access::Role::Technician])?;
    let report = check(home, key, checkpoint)?;
    s.audit(
        home,
        "home.check",
        "operator home",
        &format!("{} problem(s)", report.problems),
        None,
    )?;
    Ok(report)
}

/// Checks the home (the caller unlocked the data key with the passphrase, which checks that).
pub fn check(
    home: &Home,
    key: &DataKey,
    checkpoint: Option<&tokumei_audit::SignedHead>,
) -> Result<Report, VaultError> {
    let mut r = Report::default();
    if home.config.version == LAYOUT_VERSION {
        r.ok(format!("layout version {LAYOUT_VERSION}"));
    } else {
        r.problem(format!(
            "layout version {} (current {LAYOUT_VERSION}): run `tokumei home migrate`",
            home.config.version
        ));
    }
    r.ok("the data key unlocks with the passphrase");
    check_keys(home, key, &mut r)?;
    match home.verify_audit(checkpoint) {
        Ok(v) => r.ok(format!(
            "audit log intact: {} entries{}",
            v.entries,
            if checkpoint.is_some() {
                ", extending the checkpoint"
            } else {
                ""
            }
        )),
        Err(e) => r.problem(format!("audit log: {e}")),
    }
    check_stores(home, &mut r)?;
    let pending = ["receive", "release.build"]
        .iter()
        .map(|k| crate::intent::pending(home, k).map(|p| p.len()))
        .sum::<Result<usize, _>>()?;
    if pending > 0 {
        r.problem(format!(
            "{pending} interrupted operation(s) await recovery (the next receipt or release build \
             completes or rolls them back)"
        ));
    }
    Ok(r)
}

fn check_keys(home: &Home, key: &DataKey, r: &mut Report) -> Result<(), VaultError> {
    match home.operator_identity(key) {
        Ok(identity) if identity.to_public().to_string() == home.recipient()? => {
            r.ok("the receiving identity opens and matches operator.recipient")
        }
        Ok(_) => r.problem("the receiving identity does not match operator.recipient"),
        Err(e) => r.problem(format!("the receiving identity: {e}")),
    }
    let matches = home
        .audit_signing_key()
        .ok()
        .zip(home.audit_public_key().ok())
        .is_some_and(|(k, p)| k.verifying_key() == p);
    if matches {
        r.ok("the audit signing key matches audit.pub");
    } else {
        r.problem("the audit signing key does not match audit.pub");
    }
    let mut loose = Vec::new();
    owner_only(&home.root.join("keys"), &mut loose)?;
    if loose.is_empty() {
        r.ok("key files are owner-only");
    } else {
        r.problem(format!(
            "key files readable by others: {}",
            loose.join(", ")
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn owner_only(dir: &Path, loose: &mut Vec<String>) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            owner_only(&p, loose)?;
        } else if meta.permissions().mode() & 0o077 != 0 {
            loose.push(p.display().to_string());
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_: &Path, _: &mut Vec<String>) -> Result<(), VaultError> {
    Ok(())
}

fn check_stores(home: &Home, r: &mut Report) -> Result<(), VaultError> {
    let catalog = home.catalog()?;
    let ids = catalog.receipt_ids()?;
    let mut broken = 0usize;
    for id in &ids {
        let paths = crate::store::PackagePaths::of(home, id);
        let mut missing: Vec<&str> = Vec::new();
        if !paths.identity.is_file() {
            missing.push("identity table");
        }
        if !paths.clinical.is_dir() {
            missing.push("clinical tables");
        }
        if !paths.quarantine.is_file() {
            missing.push("quarantine report");
        }
        let receipt = catalog.receipt(id)?;
        let hash = crate::package::sha256_file(&paths.original)
            .ok()
            .map(|(h, _)| h);
        if hash.is_none() {
            missing.push("kept original");
        } else if receipt.map(|x| x.batch_hash) != hash {
            missing.push("kept original as received (its hash differs)");
        }
        if !missing.is_empty() {
            broken += 1;
            r.problem(format!("package {id}: {}", missing.join(", ")));
        }
    }
    if broken == 0 {
        r.ok(format!(
            "{} package(s) received, each with its tables and its original as received",
            ids.len()
        ));
    }
    let received: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut strays = Vec::new();
    for (dir, _) in crate::store::LAYOUT {
        let Ok(rd) = std::fs::read_dir(home.root.join(dir)) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().to_string();
            let known = crate::store::package_of(dir, &name)
                .is_some_and(|(id, staged)| !staged && received.contains(id.as_str()));
            if !known {
                strays.push(format!("{dir}/{}", name.escape_debug()));
            }
        }
    }
    if strays.is_empty() {
        r.ok("nothing under the stores but received packages");
    } else {
        r.problem(format!(
            "{} file(s) under the stores belong to no received package: {}",
            strays.len(),
            strays.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{open_session, Role};

    const PASS: &str = "correct horse battery staple";

    #[test]
    fn a_new_home_checks_sound_the_problems_are_counted_and_the_check_audited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = crate::home::init(&dir.path().join("home"), PASS, Some(4))
            .expect("init")
            .home;
        let key_file = home.default_user_key().expect("first technician");
        let s = open_session(&home, &key_file, PASS, "home.check", &[Role::Technician])
            .expect("session");
        let key = home.unlock_data_key(PASS).expect("unlock");
        let report = check_home(&home, &s, &key, None).expect("checked");
        assert_eq!(report.problems, 0, "{report:?}");
        assert!(!report.findings.is_empty());
        std::fs::write(home.root.join("vault/identity/stray.txt"), "x").expect("write");
        let report = check_home(&home, &s, &key, None).expect("checked");
        assert_eq!(report.problems, report.problems().count());
        assert!(report.problems >= 1, "{report:?}");
        let log = std::fs::read_to_string(home.audit_dir().join("entries.jsonl")).expect("log");
        assert!(log.contains("\"home.check\""), "{log}");
    }
}
