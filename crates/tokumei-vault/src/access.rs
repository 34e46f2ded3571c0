//! Operator users, their roles and how a command learns who runs it (RULES §7 items 49–51).
//!
//! Every person who handles data is registered by name with one role, who asked for the grant and
//! who approved it, and when it was last reviewed. A user holds an Ed25519 key pair; the private key
//! file is encrypted with the user's own passphrase (age, scrypt), so a session needs something the
//! user has (the key file) and something the user knows (its passphrase). A command authenticates by
//! signing a fresh challenge with the key; the catalog decides what the role may do. Every denial is
//! audited.
//!
//! `init` registers the home's first technician, whose key file lives in the home
//! (`keys/users/<name>.key`) and is wrapped by the home passphrase, so the scripted pipeline works with
//! nothing but `TOKUMEI_PASSPHRASE`. Further users get their key files outside the home.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rusqlite::{params, OptionalExtension};
use tokumei_audit::Entry;

use crate::catalog::Catalog;
use crate::home::{Home, VaultError};

/// What a user does (serialized as its code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Handles identified data: receipt, opt-out, linkage, exports (with a second technician).
    Technician,
    /// Member of the review committee.
    Committee,
    /// Researcher of an approved application.
    Researcher,
    /// Internal or external auditor: reads the audit log.
    Auditor,
    /// Administrator on a data provider's side: its own audit entries and receipts.
    ProviderAdmin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Technician,
        Role::Committee,
        Role::Researcher,
        Role::Auditor,
        Role::ProviderAdmin,
    ];

    /// Code (catalog, audit entries, command line).
    pub fn code(&self) -> &'static str {
        match self {
            Role::Technician => "technician",
            Role::Committee => "committee",
            Role::Researcher => "researcher",
            Role::Auditor => "auditor",
            Role::ProviderAdmin => "provider-admin",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s.trim())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Name (staff are identified by name).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The provider a provider-admin acts for.
    pub provider_id: Option<String>,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Who asked for the grant (the user's department).
    pub requested_by: String,
    /// Who approved it (the department's manager).
    pub approved_by: String,
    /// When it was granted (UTC, RFC 3339).
    pub granted_at: String,
    /// When it was last reviewed (UTC, RFC 3339).
    pub reviewed_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// Days after which a grant is due for review (RULES §7 item 51: at most six months apart).
pub const REVIEW_DAYS: i64 = 183;

impl User {
    /// Whether the grant's last review is older than [`REVIEW_DAYS`] on `now`.
    pub fn review_due(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        chrono::DateTime::parse_from_rfc3339(&self.reviewed_at)
            .map(|t| (now - t.with_timezone(&chrono::Utc)).num_days() > REVIEW_DAYS)
            .unwrap_or(true)
    }
}

/// Opens the session of the user holding the key file `key_file` (opened with `passphrase`) and
/// checks that its role is one of `roles` for `action` (a denial is audited): what every command
/// run as a user begins with.
pub fn open_session(
    home: &Home,
    key_file: &Path,
    passphrase: &str,
    action: &str,
    roles: &[Role],
) -> Result<Session, VaultError> {
    let key = open_user_key(key_file, passphrase)?;
    let s = authenticate(home, &key)?;
    s.require(home, action, roles)?;
    Ok(s)
}

/// Who runs a command, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
    /// Provider of a provider-admin.
    pub provider_id: Option<String>,
}

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A user name: the one grammar of outside identifiers ([`tokumei_model::ids`]).
pub fn valid_name(name: &str) -> bool {
    tokumei_model::ids::is_valid(name)
}

fn user_fields(u: &User) -> [Option<&str>; 9] {
    [
        Some(u.name.as_str()),
        Some(u.role.code()),
        u.provider_id.as_deref(),
        Some(u.public_key.as_str()),
        Some(u.requested_by.as_str()),
        Some(u.approved_by.as_str()),
        Some(u.granted_at.as_str()),
        Some(u.reviewed_at.as_str()),
        u.revoked_at.as_deref(),
    ]
}

impl Catalog {
    pub(crate) fn ensure_users(&self) -> Result<(), VaultError> {
        self.connection()
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS users (
                     name TEXT PRIMARY KEY,
                     role TEXT NOT NULL,
                     provider_id TEXT,
                     public_key TEXT NOT NULL UNIQUE,
                     requested_by TEXT NOT NULL,
                     approved_by TEXT NOT NULL,
                     granted_at TEXT NOT NULL,
                     reviewed_at TEXT NOT NULL,
                     revoked_at TEXT,
                     sig TEXT
                 );",
            )
            .map_err(db)
    }

    /// Registers a user; a name or key already registered is refused.
    pub fn add_user(&self, u: &User) -> Result<(), VaultError> {
        self.ensure_users()?;
        if !valid_name(&u.name) {
            return Err(VaultError::Refused(
                "a user name is 1–64 letters, digits, '-' or '_', starting with a letter or digit"
                    .into(),
            ));
        }
        if u.requested_by.trim().is_empty() || u.approved_by.trim().is_empty() {
            return Err(VaultError::Refused(
                "a grant names who requested it and who approved it".into(),
            ));
        }
        if (u.role == Role::ProviderAdmin) != u.provider_id.is_some() {
            return Err(VaultError::Refused(
                "a provider-admin names its provider (--provider), no other role does".into(),
            ));
        }
        if self.user(&u.name)?.is_some() {
            return Err(VaultError::Refused(format!(
                "user {} is already registered",
                u.name
            )));
        }
        self.change_authz(|conn, keys| {
            let sig = keys.sign_row("users", &user_fields(u))?;
            conn.execute(
                "INSERT INTO users (name, role, provider_id, public_key, requested_by, approved_by,
                     granted_at, reviewed_at, revoked_at, sig)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    u.name,
                    u.role.code(),
                    u.provider_id,
                    u.public_key,
                    u.requested_by,
                    u.approved_by,
                    u.granted_at,
                    u.reviewed_at,
                    u.revoked_at,
                    sig
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("UNIQUE") => {
                    VaultError::Refused("this key is already registered to another user".into())
                }
                e => db(e),
            })?;
            Ok(())
        })
    }

    /// Rewrites a user's row (re-signed) after `edit`.
    fn update_user(&self, name: &str, edit: impl FnOnce(&mut User)) -> Result<(), VaultError> {
        let Some(mut u) = self.user(name)? else {
            return Err(VaultError::Refused(format!(
                "user {name} is not registered"
            )));
        };
        edit(&mut u);
        self.change_authz(|conn, keys| {
            let sig = keys.sign_row("users", &user_fields(&u))?;
            conn.execute(
                "UPDATE users SET reviewed_at = ?2, revoked_at = ?3, sig = ?4 WHERE name = ?1",
                params![u.name, u.reviewed_at, u.revoked_at, sig],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    fn user_where(&self, clause: &str, value: &str) -> Result<Option<User>, VaultError> {
        let keys = self.keys()?;
        let found = self
            .connection()
            .query_row(
                &format!(
                    "SELECT name, role, provider_id, public_key, requested_by, approved_by,
                         granted_at, reviewed_at, revoked_at, sig FROM users WHERE {clause} = ?1"
                ),
                params![value],
                row_user,
            )
            .optional()
            .map_err(db)?;
        found.map(|(u, sig)| checked(keys, u, sig)).transpose()
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Result<Option<User>, VaultError> {
        self.user_where("name", name)
    }

    /// The user holding a public key (hex).
    pub fn user_by_key(&self, public_key: &str) -> Result<Option<User>, VaultError> {
        self.user_where("public_key", public_key)
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, VaultError> {
        let keys = self.keys()?;
        let mut stmt = self
            .connection()
            .prepare(
                "SELECT name, role, provider_id, public_key, requested_by, approved_by, granted_at,
                     reviewed_at, revoked_at, sig FROM users ORDER BY name",
            )
            .map_err(db)?;
        let rows = stmt.query_map([], row_user).map_err(db)?;
        rows.map(|r| {
            let (u, sig) = r.map_err(db)?;
            checked(keys, u, sig)
        })
        .collect()
    }

    /// Revokes a user's grant (the key no longer opens a session).
    pub fn revoke_user(&self, name: &str) -> Result<(), VaultError> {
        if self.user(name)?.is_none_or(|u| u.revoked_at.is_some()) {
            return Err(VaultError::Refused(format!(
                "user {name} is not registered or already revoked"
            )));
        }
        self.update_user(name, |u| u.revoked_at = Some(now()))
    }

    /// Records that a user's grant was reviewed now.
    pub fn review_user(&self, name: &str) -> Result<(), VaultError> {
        if self.user(name)?.is_none_or(|u| u.revoked_at.is_some()) {
            return Err(VaultError::Refused(format!(
                "user {name} is not registered or revoked"
            )));
        }
        self.update_user(name, |u| u.reviewed_at = now())
    }
}

/// Every user row, unchecked (the migration that signs them).
pub(crate) fn unsigned_users(conn: &rusqlite::Connection) -> Result<Vec<User>, VaultError> {
    let mut stmt = conn
        .prepare(
            "SELECT name, role, provider_id, public_key, requested_by, approved_by, granted_at,
                 reviewed_at, revoked_at, sig FROM users ORDER BY name",
        )
        .map_err(db)?;
    let rows = stmt.query_map([], row_user).map_err(db)?;
    rows.map(|r| r.map(|(u, _)| u).map_err(db)).collect()
}

/// Signs a user's row as it stands.
pub(crate) fn sign_user(
    conn: &rusqlite::Connection,
    keys: &crate::authz::AuthzKeys,
    u: &User,
) -> Result<(), VaultError> {
    let sig = keys.sign_row("users", &user_fields(u))?;
    conn.execute(
        "UPDATE users SET sig = ?2 WHERE name = ?1",
        params![u.name, sig],
    )
    .map_err(db)?;
    Ok(())
}

/// A user row whose signature is the operator's; a row edited in the database is refused.
fn checked(
    keys: &crate::authz::AuthzKeys,
    u: User,
    sig: Option<String>,
) -> Result<User, VaultError> {
    keys.check_row("users", &user_fields(&u), sig.as_deref())?;
    Ok(u)
}

fn row_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<(User, Option<String>)> {
    let role: String = r.get(1)?;
    let sig: Option<String> = r.get(9)?;
    Ok((
        User {
            name: r.get(0)?,
            role: Role::parse(&role).unwrap_or(Role::Auditor),
            provider_id: r.get(2)?,
            public_key: r.get(3)?,
            requested_by: r.get(4)?,
            approved_by: r.get(5)?,
            granted_at: r.get(6)?,
            reviewed_at: r.get(7)?,
            revoked_at: r.get(8)?,
        },
        sig,
    ))
}

/// A new key pair for a user: the private key encrypted with `passphrase` (age scrypt; `log_n`
/// overrides the work factor), and the public key (hex).
pub fn new_user_key(passphrase: &str, log_n: Option<u8>) -> Result<(Vec<u8>, String), VaultError> {
    crate::home::check_passphrase(passphrase)?;
    let key = tokumei_audit::generate_key()?;
    let public = hex::encode(key.verifying_key().to_bytes());
    let wrapped = crate::home::wrap_with_passphrase(
        tokumei_audit::key_to_hex(&key).as_bytes(),
        passphrase,
        log_n,
    )?;
    Ok((wrapped, public))
}

/// Opens a user's key file with its passphrase.
pub fn open_user_key(path: &Path, passphrase: &str) -> Result<SigningKey, VaultError> {
    let wrapped = std::fs::read(path).map_err(|e| VaultError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    use crate::home::Unwrap;
    let text = crate::home::unwrap_with_passphrase(&wrapped, passphrase).map_err(|e| {
        VaultError::Key(match e {
            Unwrap::NotWrapped => format!("{} is not a user key file", path.display()),
            Unwrap::WrongPassphrase => format!(
                "the passphrase does not open the user key {}",
                path.display()
            ),
            Unwrap::Damaged => format!("{} is damaged", path.display()),
        })
    })?;
    let text = String::from_utf8(text)
        .map_err(|_| VaultError::Key(format!("{} is damaged", path.display())))?;
    Ok(tokumei_audit::key_from_hex(&text)?)
}

/// Audits a refused session. Before any session, a process without the home passphrase holds no
/// key that may sign the log; the refusal then goes to `audit/refusals.jsonl`, a plain record of
/// attempts (unauthenticated, as anyone could have made them), kept beside the signed log.
fn audit_refusal(home: &Home, entry: Entry) -> Result<(), VaultError> {
    match home.audit() {
        Ok(mut log) => log.append(entry).map(|_| ()).map_err(VaultError::from),
        Err(VaultError::Key(_)) => {
            use std::io::Write;
            let path = home.audit_dir().join("refusals.jsonl");
            let mut line =
                serde_json::to_vec(&entry).map_err(|e| VaultError::Store(e.to_string()))?;
            line.push(b'\n');
            let io = |e| VaultError::Io {
                path: path.clone(),
                source: e,
            };
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io)?;
            f.write_all(&line).map_err(io)?;
            f.sync_data().map_err(io)
        }
        Err(e) => Err(e),
    }
}

/// Opens a session: the key must belong to a registered user whose grant is not revoked, and must
/// sign a fresh challenge. A refusal is audited.
pub fn authenticate(home: &Home, key: &SigningKey) -> Result<Session, VaultError> {
    let public = hex::encode(key.verifying_key().to_bytes());
    // An edited or rolled-back catalog opens no session, and the refusal is audited.
    let user = match home.catalog().and_then(|c| c.user_by_key(&public)) {
        Err(e @ VaultError::Tampered(_)) => {
            audit_refusal(
                home,
                Entry::now(
                    "unknown",
                    "unknown",
                    "session.open",
                    "operator home",
                    &format!("refused: {e}"),
                    None,
                ),
            )?;
            return Err(e);
        }
        other => other?,
    };
    let refuse = |why: &str, actor: &str| -> Result<Session, VaultError> {
        audit_refusal(
            home,
            Entry::now(
                actor,
                "unknown",
                "session.open",
                "operator home",
                &format!("refused: {why}"),
                None,
            ),
        )?;
        Err(VaultError::Denied(why.to_string()))
    };
    let Some(user) = user else {
        return refuse("the key is not registered to any user", "unknown");
    };
    if user.revoked_at.is_some() {
        // The refusal is signed with the revoked user's own (still registered) key when nothing
        // else in this process may sign the log.
        home.sign_as_user(key);
        return refuse("the user's grant was revoked", &user.name);
    }
    // Proof of possession: sign a random challenge, verify with the registered key.
    let mut challenge = [0u8; 32];
    getrandom::fill(&mut challenge).map_err(|e| VaultError::Key(e.to_string()))?;
    let message = [b"tokumei-session-v1".as_slice(), &challenge].concat();
    let signature = key.sign(&message);
    let registered = hex::decode(&user.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    if registered.is_none_or(|k| k.verify(&message, &signature).is_err()) {
        return refuse("the key does not match its registration", &user.name);
    }
    // Without the operator's key, this session's entries are signed with the user's own key.
    home.sign_as_user(key);
    Ok(Session {
        user: user.name,
        role: user.role,
        provider_id: user.provider_id,
    })
}

impl Session {
    /// Appends an audit entry as this session's user and role.
    pub fn audit(
        &self,
        home: &Home,
        action: &str,
        object: &str,
        result: &str,
        provider: Option<&str>,
    ) -> Result<(), VaultError> {
        home.audit()?.append(Entry::now(
            &self.user,
            self.role.code(),
            action,
            object,
            result,
            provider,
        ))?;
        Ok(())
    }

    /// Checks the session's role may perform `action`; a denial is audited.
    pub fn require(&self, home: &Home, action: &str, roles: &[Role]) -> Result<(), VaultError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let wanted: Vec<&str> = roles.iter().map(Role::code).collect();
        self.audit(
            home,
            action,
            "operator home",
            &format!("denied: needs the role {}", wanted.join(" or ")),
            None,
        )?;
        Err(VaultError::Denied(format!(
            "{action} needs the role {}; user {} is {}",
            wanted.join(" or "),
            self.user,
            self.role
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.code()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn roles_serialize_as_their_codes() {
        for r in Role::ALL {
            let json = serde_json::to_value(r).expect("json");
            assert_eq!(json, serde_json::Value::from(r.code()));
        }
    }

    #[test]
    fn names_are_restricted() {
        assert!(valid_name("sato_k"));
        // One grammar for every outside id: no dots (no `..`, no extension, no staging name).
        assert!(!valid_name("sato.k"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("../x"));
    }

    #[test]
    fn user_key_opens_only_with_its_passphrase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wrapped, public) = new_user_key("correct horse battery", Some(2)).expect("key");
        let path = dir.path().join("u.key");
        std::fs::write(&path, wrapped).expect("write");
        let key = open_user_key(&path, "correct horse battery").expect("opens");
        assert_eq!(hex::encode(key.verifying_key().to_bytes()), public);
        assert!(matches!(
            open_user_key(&path, "wrong passphrase!!"),
            Err(VaultError::Key(_))
        ));
    }
}
