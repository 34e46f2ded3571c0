//! Authorization state authenticated under the operator's key.
//!
//! Every row of `users` and `providers` (who may do what; whose packages are whose) carries the
//! operator's Ed25519 signature over its content (`sig`), checked each time the row is read: a row
//! edited in the database (a revocation undone, a role changed, a provider key swapped) is refused.
//! A head row (`authz_head`: a counter and the digest of every row's signature) is signed and
//! updated in the same transaction as each change, so removing, adding or restoring rows is caught
//! too; and each new head is recorded in the audit log (`authz.state`), so that a rollback of the
//! whole database to an older, validly signed state is caught against the log: a head older than
//! the log's last is refused. A head newer than the log's last (a command stopped between its
//! commit and its log entry) can only have been signed by the operator, and is recorded at the next
//! open.

use std::path::PathBuf;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::home::VaultError;

/// The keys that authenticate a home's authorization state.
#[derive(Clone)]
pub struct AuthzKeys {
    /// The operator's public key (`audit.pub`): checks every row.
    pub verify: VerifyingKey,
    /// The operator's signing key, when this process holds it: signs changed rows.
    pub sign: Option<SigningKey>,
    /// The audit log's folder (new heads are recorded there).
    pub audit_dir: PathBuf,
}

const CONTEXT: &[u8] = b"tokumei-authz-v1\n";

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

fn tampered(what: impl Into<String>) -> VaultError {
    VaultError::Tampered(what.into())
}

/// The signed message of a row: its table and its fields, as canonical JSON.
pub fn message(table: &str, fields: &[Option<&str>]) -> Vec<u8> {
    let mut m = CONTEXT.to_vec();
    m.extend(serde_json::to_vec(&(table, fields)).unwrap_or_default());
    m
}

impl AuthzKeys {
    fn signer(&self) -> Result<&SigningKey, VaultError> {
        self.sign.as_ref().ok_or_else(|| {
            VaultError::Denied("changing users or providers needs the operator's key".into())
        })
    }

    /// The signature (hex) of a row.
    pub fn sign_row(&self, table: &str, fields: &[Option<&str>]) -> Result<String, VaultError> {
        Ok(hex::encode(
            self.signer()?.sign(&message(table, fields)).to_bytes(),
        ))
    }

    /// Checks a row's signature.
    pub fn check_row(
        &self,
        table: &str,
        fields: &[Option<&str>],
        sig: Option<&str>,
    ) -> Result<(), VaultError> {
        let ok = sig
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|s| {
                self.verify
                    .verify_strict(&message(table, fields), &s)
                    .is_ok()
            });
        if ok {
            Ok(())
        } else {
            Err(tampered(format!(
                "a row of {table} is not signed by the operator (the catalog was edited)"
            )))
        }
    }
}

/// Creates the head table.
pub(crate) fn ensure(conn: &Connection) -> Result<(), VaultError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS authz_head (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             counter INTEGER NOT NULL,
             digest TEXT NOT NULL,
             sig TEXT NOT NULL
         );",
    )
    .map_err(db)
}

/// The digest of the authorization state: every row's signature, in a fixed order.
fn digest(conn: &Connection) -> Result<String, VaultError> {
    let mut h = Sha256::new();
    for table in ["users", "providers", "provider_recruit_keys"] {
        let exists: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![table],
                |r| r.get::<_, i64>(0),
            )
            .map_err(db)?
            > 0;
        if !exists {
            continue;
        }
        let key = match table {
            "users" => "name",
            "providers" => "id",
            _ => "provider_id",
        };
        let mut stmt = conn
            .prepare(&format!("SELECT {key}, sig FROM {table} ORDER BY {key}"))
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(db)?;
        for row in rows {
            let (k, sig) = row.map_err(db)?;
            h.update(table.as_bytes());
            h.update([0]);
            h.update(k.as_bytes());
            h.update([0]);
            h.update(sig.unwrap_or_default().as_bytes());
            h.update([0]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn head_message(counter: i64, digest: &str) -> Vec<Option<String>> {
    vec![Some(counter.to_string()), Some(digest.to_string())]
}

fn as_refs(v: &[Option<String>]) -> Vec<Option<&str>> {
    v.iter().map(|x| x.as_deref()).collect()
}

/// The head: (counter, digest), checked against its signature and the rows.
pub(crate) fn check_head(conn: &Connection, keys: &AuthzKeys) -> Result<i64, VaultError> {
    ensure(conn)?;
    let head: Option<(i64, String, String)> = conn
        .query_row(
            "SELECT counter, digest, sig FROM authz_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db)?;
    let Some((counter, recorded, sig)) = head else {
        // A catalog that never held a user or a provider has nothing to authenticate yet.
        let empty = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM providers)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
            == 0;
        if empty {
            return Ok(0);
        }
        return Err(tampered(
            "the catalog has no signed authorization head (it was replaced, or the home needs \
             `tokumei home migrate`)",
        ));
    };
    keys.check_row(
        "authz_head",
        &as_refs(&head_message(counter, &recorded)),
        Some(&sig),
    )?;
    if digest(conn)? != recorded {
        return Err(tampered(
            "users or providers were added, removed or restored outside Tokumei (the catalog's \
             rows do not match its signed head)",
        ));
    }
    Ok(counter)
}

/// Signs a new head over the rows as they now are (inside the caller's transaction); returns its
/// counter.
pub(crate) fn new_head(conn: &Connection, keys: &AuthzKeys) -> Result<i64, VaultError> {
    ensure(conn)?;
    let counter: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(counter), 0) FROM authz_head",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db)?
        + 1;
    let d = digest(conn)?;
    let sig = keys.sign_row("authz_head", &as_refs(&head_message(counter, &d)))?;
    conn.execute(
        "INSERT OR REPLACE INTO authz_head (id, counter, digest, sig) VALUES (1, ?1, ?2, ?3)",
        params![counter, d, sig],
    )
    .map_err(db)?;
    Ok(counter)
}

/// The counter of the last head recorded in the audit log.
fn logged_counter(keys: &AuthzKeys) -> Result<Option<i64>, VaultError> {
    let Some(e) = tokumei_audit::last_of(&keys.audit_dir, "authz.state")? else {
        return Ok(None);
    };
    Ok(e.object
        .strip_prefix("head ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok()))
}

/// Binds the catalog's head to the audit log: a head older than the log's last is a rollback
/// (refused); a newer one is recorded (needs the signing key; without it the check passes, and the
/// next command that holds it records it).
pub(crate) fn bind(conn: &Connection, keys: &AuthzKeys) -> Result<(), VaultError> {
    let counter = check_head(conn, keys)?;
    let logged = logged_counter(keys)?;
    if logged.is_some_and(|l| l > counter) {
        return Err(tampered(format!(
            "the catalog's authorization state (head {counter}) is older than the audit log's \
             (head {}): the catalog was rolled back",
            logged.unwrap_or_default()
        )));
    }
    if counter > 0 && logged != Some(counter) {
        if let Some(sign) = &keys.sign {
            let digest: String = conn
                .query_row("SELECT digest FROM authz_head WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .map_err(db)?;
            tokumei_audit::AuditLog::open(&keys.audit_dir, sign.clone())?.append(
                tokumei_audit::Entry::now(
                    "system",
                    "system",
                    "authz.state",
                    &format!("head {counter} digest {digest}"),
                    "ok",
                    None,
                ),
            )?;
        }
    }
    Ok(())
}
