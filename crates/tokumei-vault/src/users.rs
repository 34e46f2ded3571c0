//! Users as operations, one call each: register a user (the catalog row and the key files), list
//! the grants, revoke a grant, record a grant's review. Every change is made by a technician's
//! session and audited; the caller has unlocked the data key (`Home::unlock_data_key`), because
//! users are signed by the operator's key ([`crate::authz`]).

use std::path::{Path, PathBuf};

use crate::access::{self, Role, Session, User};
use crate::home::{io, Home, VaultError};

/// A user to register.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Name (checked with [`access::valid_name`]).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The provider of a provider-admin.
    pub provider_id: Option<String>,
    /// Who requested the grant (the user's department).
    pub requested_by: String,
    /// Who approved it (the department's manager).
    pub approved_by: String,
    /// The new user's passphrase: it wraps their key file.
    pub passphrase: String,
    /// scrypt work factor (log2 N) of the key wrapping; the default when `None`.
    pub scrypt_log_n: Option<u8>,
    /// Folder for the key files (`NAME.key`, `NAME.pub`); created if missing.
    pub out: PathBuf,
}

/// What registering a user wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registered {
    /// The user's name.
    pub name: String,
    /// The key file, wrapped by the user's passphrase (give it to the user).
    pub key_file: PathBuf,
    /// The public key file.
    pub public_file: PathBuf,
    /// The public key (hex).
    pub public_key: String,
}

/// Why a user was not registered.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is taken.
    #[error("user {0} is already registered")]
    AlreadyRegistered(String),
    /// A key file of that name exists in the output folder.
    #[error("{} already exists; keys are never overwritten", .0.display())]
    KeyFileExists(PathBuf),
    /// The home refused or failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A user's grant as listed: the catalog's row and whether its review is due.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// The user as registered.
    #[serde(flatten)]
    pub user: User,
    /// Whether the last review is older than [`access::REVIEW_DAYS`] (and the grant not revoked).
    pub review_due: bool,
}

/// Registers a user with a new key pair: the catalog row (signed), `NAME.key` (owner-only,
/// wrapped by the user's passphrase) and `NAME.pub` under `new.out`, and the audit entry. Needs a
/// technician; existing key files are never overwritten.
pub fn register(home: &Home, s: &Session, new: &NewUser) -> Result<Registered, UserError> {
    s.require(home, "user.add", &[Role::Technician])?;
    let catalog = home.catalog()?;
    if catalog.user(&new.name)?.is_some() {
        return Err(UserError::AlreadyRegistered(new.name.clone()));
    }
    let key_file = new.out.join(format!("{}.key", new.name));
    let public_file = new.out.join(format!("{}.pub", new.name));
    if key_file.exists() || public_file.exists() {
        return Err(UserError::KeyFileExists(key_file));
    }
    let (wrapped, public_key) = access::new_user_key(&new.passphrase, new.scrypt_log_n)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    catalog.add_user(&User {
        name: new.name.clone(),
        role: new.role,
        provider_id: new.provider_id.clone(),
        public_key: public_key.clone(),
        requested_by: new.requested_by.clone(),
        approved_by: new.approved_by.clone(),
        granted_at: now.clone(),
        reviewed_at: now,
        revoked_at: None,
    })?;
    write_key_files(&new.out, &key_file, &wrapped, &public_file, &public_key)?;
    s.audit(
        home,
        "user.add",
        &format!(
            "user {} ({}; requested by {}, approved by {})",
            new.name,
            new.role.code(),
            new.requested_by,
            new.approved_by
        ),
        "ok",
        new.provider_id.as_deref(),
    )?;
    Ok(Registered {
        name: new.name.clone(),
        key_file,
        public_file,
        public_key,
    })
}

fn write_key_files(
    out: &Path,
    key_file: &Path,
    wrapped: &[u8],
    public_file: &Path,
    public_key: &str,
) -> Result<(), VaultError> {
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    crate::home::write_secret(key_file, wrapped)?;
    std::fs::write(public_file, format!("{public_key}\n")).map_err(|e| io(public_file, e))
}

/// Every user with their grant, by name. Needs a technician or an auditor.
pub fn list(home: &Home, s: &Session) -> Result<Vec<Grant>, VaultError> {
    s.require(home, "user.list", &[Role::Technician, Role::Auditor])?;
    let now = chrono::Utc::now();
    Ok(home
        .catalog()?
        .users()?
        .into_iter()
        .map(|user| Grant {
            review_due: user.revoked_at.is_none() && user.review_due(now),
            user,
        })
        .collect())
}

/// Revokes a user's grant (their key no longer opens a session). Needs a technician.
pub fn revoke(home: &Home, s: &Session, name: &str) -> Result<(), VaultError> {
    change(home, s, name, "user.revoke", |c, n| c.revoke_user(n))
}

/// Records the periodic review of a user's grant. Needs a technician.
pub fn review(home: &Home, s: &Session, name: &str) -> Result<(), VaultError> {
    change(home, s, name, "user.review", |c, n| c.review_user(n))
}

fn change(
    home: &Home,
    s: &Session,
    name: &str,
    action: &str,
    f: impl Fn(&crate::catalog::Catalog, &str) -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    s.require(home, action, &[Role::Technician])?;
    f(&home.catalog()?, name)?;
    s.audit(home, action, &format!("user {name}"), "ok", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "correct horse battery staple";
    const AUDITOR_PASS: &str = "auditor passphrase 2026";

    /// A new home, its first technician's session, the operator's key unlocked.
    fn home() -> (tempfile::TempDir, Home, Session) {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = crate::home::init(&dir.path().join("home"), PASS, Some(4))
            .expect("init")
            .home;
        let key_file = home.default_user_key().expect("first technician");
        let s = access::open_session(&home, &key_file, PASS, "test", &[Role::Technician])
            .expect("session");
        home.unlock_data_key(PASS).expect("unlock");
        (dir, home, s)
    }

    fn auditor(out: PathBuf) -> NewUser {
        NewUser {
            name: "aud".into(),
            role: Role::Auditor,
            provider_id: None,
            requested_by: "事務局".into(),
            approved_by: "理事長".into(),
            passphrase: AUDITOR_PASS.into(),
            scrypt_log_n: Some(4),
            out,
        }
    }

    #[test]
    fn a_user_is_registered_listed_reviewed_and_revoked_and_every_change_audited() {
        let (dir, home, s) = home();
        let new = auditor(dir.path().join("keys"));
        let r = register(&home, &s, &new).expect("registered");
        assert!(r.key_file.is_file());
        let public = std::fs::read_to_string(&r.public_file).expect("public key file");
        assert_eq!(public.trim(), r.public_key);
        assert!(matches!(
            register(&home, &s, &new),
            Err(UserError::AlreadyRegistered(_))
        ));
        let other = NewUser {
            name: "aud2".into(),
            ..auditor(dir.path().join("keys"))
        };
        std::fs::write(dir.path().join("keys/aud2.pub"), "kept").expect("write");
        assert!(matches!(
            register(&home, &s, &other),
            Err(UserError::KeyFileExists(_))
        ));
        // The auditor's key opens a session that may list users but not register one.
        let aud = access::open_session(&home, &r.key_file, AUDITOR_PASS, "x", &[Role::Auditor])
            .expect("auditor's session");
        let grants = list(&home, &aud).expect("listed");
        let names: Vec<&str> = grants.iter().map(|g| g.user.name.as_str()).collect();
        assert_eq!(names, ["aud", "operator"]);
        assert!(grants.iter().all(|g| !g.review_due));
        assert!(matches!(
            register(&home, &aud, &other),
            Err(UserError::Vault(VaultError::Denied(_)))
        ));
        review(&home, &s, "aud").expect("reviewed");
        revoke(&home, &s, "aud").expect("revoked");
        let grants = list(&home, &s).expect("listed");
        assert!(grants[0].user.revoked_at.is_some() && !grants[0].review_due);
        assert!(revoke(&home, &s, "aud").is_err(), "revoked once");
        let log = std::fs::read_to_string(home.audit_dir().join("entries.jsonl")).expect("log");
        for action in ["user.add", "user.review", "user.revoke"] {
            assert!(log.contains(&format!("\"{action}\"")), "{action}");
        }
    }

    #[test]
    fn a_grant_serializes_flat_with_its_role_code() {
        let (_dir, home, s) = home();
        let grants = list(&home, &s).expect("listed");
        let json = serde_json::to_value(&grants).expect("json");
        assert_eq!(json[0]["name"], "operator");
        assert_eq!(json[0]["role"], "technician");
        assert_eq!(json[0]["review_due"], false);
        assert!(json[0]["revoked_at"].is_null());
    }
}
