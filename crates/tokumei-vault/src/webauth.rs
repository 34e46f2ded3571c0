//! Sign-in for the web: a password together with a TOTP code (RFC 6238; never SMS), enrolled by a
//! one-time invitation that one technician issues and a second approves (as grants are).
//!
//! The store is `H/catalog/web.sqlite`. A credential (the password's Argon2id hash and the TOTP
//! secret, with the user's name) is sealed under the data key: someone who can write the home but
//! not open it cannot plant or swap one. An invitation keeps only the SHA-256 of its token; the
//! token is shown once, to be handed over out of band, and typed into the enrolment form (never in
//! a URL). Failed sign-ins lock the user out for a while after [`MAX_FAILURES`]; a TOTP code is
//! accepted once (its time step must be later than the last one used). Every issue, approval,
//! enrolment and sign-in, refused or not, is audited.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use tokumei_audit::Entry;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::access::{Role, Session};
use crate::home::{DataKey, Home, VaultError};
use crate::store::{open_sealed, seal};

/// Failed sign-ins in a row before a lock-out.
pub const MAX_FAILURES: u32 = 5;
/// Length of a lock-out, in seconds.
pub const LOCKOUT_SECONDS: i64 = 15 * 60;
/// Shortest password.
pub const MIN_PASSWORD: usize = 12;
/// Longest password (bytes): bounds the hashing work an attacker can ask for.
pub const MAX_PASSWORD: usize = 256;
/// A TOTP time step, in seconds.
const STEP: u64 = 30;

pub(crate) fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

/// An invitation as issued: its id (for the approval) and the token (shown once).
#[derive(Debug, Clone)]
pub struct Invitation {
    /// Id (`I-…`), safe to log and to name in the approval.
    pub id: String,
    /// The one-time token the invited person types into the enrolment form.
    pub token: String,
    /// The user it enrols.
    pub user: String,
    /// When it expires (UTC, RFC 3339).
    pub expires_at: String,
}

/// What enrolment gives the new user once: the TOTP secret for their authenticator app.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The user enrolled.
    pub user: String,
    /// The TOTP secret, base32 (RFC 4648, no padding).
    pub secret_base32: String,
    /// The same as an `otpauth://` URI (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
}

/// An invitation as stored.
struct Invited {
    id: String,
    user: String,
    expires_at: String,
    approved: bool,
    used: bool,
}

impl Invited {
    /// Why it cannot enrol anyone now, if it cannot.
    fn refusal(&self) -> Option<&'static str> {
        if !self.approved {
            Some("the invitation is not approved")
        } else if self.used {
            Some("the invitation was used")
        } else if self.expires_at < rfc3339(chrono::Utc::now()) {
            Some("the invitation expired")
        } else {
            None
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Credential {
    user: String,
    password: String,
    totp: Vec<u8>,
}

/// The web sign-in store of a home.
pub struct WebAuth {
    pub(crate) home: Home,
    pub(crate) conn: Connection,
}

impl WebAuth {
    /// Opens (or creates) the store.
    pub fn open(home: &Home) -> Result<WebAuth, VaultError> {
        let conn = Connection::open(home.root.join("catalog/web.sqlite")).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS invitations (
                 id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, user TEXT NOT NULL,
                 issued_by TEXT NOT NULL, issued_at TEXT NOT NULL, expires_at TEXT NOT NULL,
                 approved_by TEXT, used_at TEXT);
             CREATE TABLE IF NOT EXISTS credentials (
                 user TEXT PRIMARY KEY, sealed BLOB NOT NULL, enrolled_at TEXT NOT NULL,
                 failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0,
                 last_step INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS passkey_handles (
                 user TEXT PRIMARY KEY, handle TEXT NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS passkeys (
                 id TEXT PRIMARY KEY, user TEXT NOT NULL, sealed BLOB NOT NULL,
                 label TEXT NOT NULL, created_at TEXT NOT NULL, last_used_at TEXT);",
        )
        .map_err(db)?;
        Ok(WebAuth {
            home: home.clone(),
            conn,
        })
    }

    /// Issues an invitation for a registered user (a technician's act), valid for `hours`.
    pub fn invite(&self, s: &Session, user: &str, hours: u32) -> Result<Invitation, VaultError> {
        s.require(&self.home, "web.invite", &[Role::Technician])?;
        let known = self
            .home
            .catalog()?
            .users()?
            .into_iter()
            .find(|u| u.name == user);
        if known.is_none_or(|u| u.revoked_at.is_some()) {
            return Err(VaultError::Refused(format!(
                "{user} is not a user with a current grant"
            )));
        }
        let id = format!("I-{}", hex::encode(random::<6>()?));
        let token = hex::encode(random::<20>()?);
        let now = chrono::Utc::now();
        let expires_at = rfc3339(now + chrono::Duration::hours(i64::from(hours.clamp(1, 168))));
        self.conn
            .execute(
                "INSERT INTO invitations (id, token_sha256, user, issued_by, issued_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    sha256_hex(&token),
                    user,
                    s.user,
                    rfc3339(now),
                    expires_at
                ],
            )
            .map_err(db)?;
        s.audit(
            &self.home,
            "web.invite",
            &format!("invitation {id} for {user}, until {expires_at}"),
            "ok",
            None,
        )?;
        Ok(Invitation {
            id,
            token,
            user: user.to_string(),
            expires_at,
        })
    }

    /// Approves an invitation: a technician other than the one who issued it and the one invited.
    pub fn approve(&self, s: &Session, id: &str) -> Result<(), VaultError> {
        s.require(&self.home, "web.invite.approve", &[Role::Technician])?;
        let found: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT issued_by, user FROM invitations WHERE id = ?1 AND approved_by IS NULL",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((issued_by, invited)) = found else {
            return Err(VaultError::Refused(format!(
                "no invitation {id} waits for approval"
            )));
        };
        if issued_by == s.user || invited == s.user {
            s.audit(
                &self.home,
                "web.invite.approve",
                &format!("invitation {id}"),
                "refused: the issuer or the invited user cannot approve it",
                None,
            )?;
            return Err(VaultError::Denied(
                "a second technician, not the one invited, approves an invitation".into(),
            ));
        }
        self.conn
            .execute(
                "UPDATE invitations SET approved_by = ?2 WHERE id = ?1",
                params![id, s.user],
            )
            .map_err(db)?;
        s.audit(
            &self.home,
            "web.invite.approve",
            &format!("invitation {id}"),
            "ok",
            None,
        )
    }

    /// Enrols the invited user with a password and a new TOTP secret; the invitation is used up.
    pub fn enrol(
        &self,
        key: &DataKey,
        token: &str,
        password: &str,
    ) -> Result<Enrolment, VaultError> {
        check_password(password)?;
        let refused = |why: &str| VaultError::Denied(format!("enrolment refused: {why}"));
        let Some(invited) = self.invitation(token)? else {
            self.system("web.enrol", "an unknown invitation", "refused")?;
            return Err(refused("the invitation is unknown"));
        };
        let (id, user) = (invited.id.clone(), invited.user.clone());
        if let Some(why) = invited.refusal() {
            self.system(
                "web.enrol",
                &format!("invitation {id}"),
                &format!("refused: {why}"),
            )?;
            return Err(refused(why));
        }
        let secret = random::<20>()?.to_vec();
        let salt =
            SaltString::encode_b64(&random::<16>()?).map_err(|e| VaultError::Key(e.to_string()))?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| VaultError::Key(e.to_string()))?
            .to_string();
        let cred = Credential {
            user: user.clone(),
            password: hash,
            totp: secret.clone(),
        };
        let sealed = seal(
            key,
            &serde_json::to_vec(&cred).map_err(|e| VaultError::Key(e.to_string()))?,
        )?;
        let tx = self.conn.unchecked_transaction().map_err(db)?;
        tx.execute(
            "INSERT OR REPLACE INTO credentials (user, sealed, enrolled_at) VALUES (?1, ?2, ?3)",
            params![user, sealed, rfc3339(chrono::Utc::now())],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE invitations SET used_at = ?2 WHERE id = ?1",
            params![id, rfc3339(chrono::Utc::now())],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        self.as_user(&user, "web.enrol", &format!("invitation {id}"), "ok")?;
        let secret_base32 = match Secret::Raw(secret).to_encoded() {
            Secret::Encoded(s) => s,
            Secret::Raw(_) => String::new(),
        };
        Ok(Enrolment {
            otpauth_uri: format!(
                "otpauth://totp/Tokumei:{user}?secret={secret_base32}&issuer=Tokumei&algorithm=SHA1&digits=6&period=30"
            ),
            user,
            secret_base32,
        })
    }

    /// Signs a user in with their password and a current TOTP code; the session of their grant.
    /// `now` is seconds since the Unix epoch.
    pub fn sign_in(
        &self,
        key: &DataKey,
        user: &str,
        password: &str,
        code: &str,
        now: i64,
    ) -> Result<Session, VaultError> {
        const METHOD: &str = "password and TOTP";
        let refused = |why: &str| VaultError::Denied(format!("sign-in refused: {why}"));
        if password.len() > MAX_PASSWORD || !crate::access::valid_name(user) {
            return Err(refused("the user name or password is wrong"));
        }
        let row: Option<(Vec<u8>, u32, i64, i64)> = self
            .conn
            .query_row(
                "SELECT sealed, failures, locked_until, last_step FROM credentials WHERE user = ?1",
                params![user],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((sealed, failures, locked_until, last_step)) = row else {
            self.system("web.signin", "an unknown user", "refused")?;
            return Err(refused("the user name or password is wrong"));
        };
        if locked_until > now {
            self.as_user(user, "web.signin", METHOD, "refused: locked out")?;
            return Err(refused("too many failed attempts; try again later"));
        }
        let cred: Credential = serde_json::from_slice(&open_sealed(key, &sealed)?)
            .map_err(|_| VaultError::Tampered("a web credential does not parse".into()))?;
        if cred.user != user {
            return Err(VaultError::Tampered(
                "a web credential was moved to another user".into(),
            ));
        }
        let password_ok = PasswordHash::new(&cred.password)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        let step = totp_step(&cred.totp, code, now).filter(|&s| s > last_step);
        let Some(step) = step.filter(|_| password_ok) else {
            self.count_failure(user, failures, now, METHOD)?;
            return Err(refused("the user name or password is wrong"));
        };
        // The code is spent whatever follows.
        self.conn
            .execute(
                "UPDATE credentials SET last_step = ?2 WHERE user = ?1",
                params![user, step],
            )
            .map_err(db)?;
        self.grant_session(user, METHOD)
    }

    /// Counts a failed sign-in of a known user (`failures` before it); [`MAX_FAILURES`] in a row
    /// lock them out for [`LOCKOUT_SECONDS`]. Audited.
    pub(crate) fn count_failure(
        &self,
        user: &str,
        failures: u32,
        now: i64,
        method: &str,
    ) -> Result<(), VaultError> {
        let failures = failures + 1;
        let lock = if failures >= MAX_FAILURES {
            now + LOCKOUT_SECONDS
        } else {
            0
        };
        self.conn
            .execute(
                "UPDATE credentials SET failures = ?2, locked_until = ?3 WHERE user = ?1",
                params![user, if lock > 0 { 0 } else { failures }, lock],
            )
            .map_err(db)?;
        self.as_user(user, "web.signin", method, "refused: wrong credentials")
    }

    /// The failures in a row and the end of the lock-out (seconds since the epoch) of an
    /// enrolled user; `None` for a user not enrolled.
    pub(crate) fn lock_state(&self, user: &str) -> Result<Option<(u32, i64)>, VaultError> {
        self.conn
            .query_row(
                "SELECT failures, locked_until FROM credentials WHERE user = ?1",
                params![user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)
    }

    /// Once a user's credentials passed: the session of their current grant, the failures
    /// cleared; refused (and audited) if the grant was revoked.
    pub(crate) fn grant_session(&self, user: &str, method: &str) -> Result<Session, VaultError> {
        let grant = self
            .home
            .catalog()?
            .users()?
            .into_iter()
            .find(|u| u.name == user);
        let Some(grant) = grant.filter(|u| u.revoked_at.is_none()) else {
            self.as_user(user, "web.signin", method, "refused: no current grant")?;
            return Err(VaultError::Denied(
                "sign-in refused: the user's grant was revoked".into(),
            ));
        };
        self.conn
            .execute(
                "UPDATE credentials SET failures = 0, locked_until = 0 WHERE user = ?1",
                params![user],
            )
            .map_err(db)?;
        let session = Session {
            user: grant.name,
            role: grant.role,
            provider_id: grant.provider_id,
        };
        session.audit(&self.home, "web.signin", method, "ok", None)?;
        Ok(session)
    }

    /// The invitation of a token, if any.
    fn invitation(&self, token: &str) -> Result<Option<Invited>, VaultError> {
        self.conn
            .query_row(
                "SELECT id, user, expires_at, approved_by IS NOT NULL, used_at IS NOT NULL
                 FROM invitations WHERE token_sha256 = ?1",
                params![sha256_hex(token.trim())],
                |r| {
                    Ok(Invited {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        expires_at: r.get(2)?,
                        approved: r.get(3)?,
                        used: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(db)
    }

    pub(crate) fn system(
        &self,
        action: &str,
        object: &str,
        outcome: &str,
    ) -> Result<(), VaultError> {
        self.home.audit()?.append(Entry::now(
            "system", "system", action, object, outcome, None,
        ))?;
        Ok(())
    }

    pub(crate) fn as_user(
        &self,
        user: &str,
        action: &str,
        object: &str,
        outcome: &str,
    ) -> Result<(), VaultError> {
        self.home
            .audit()?
            .append(Entry::now(user, "unknown", action, object, outcome, None))?;
        Ok(())
    }
}

fn totp(secret: &[u8]) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP, secret.to_vec())
}

/// The code an authenticator app shows at `time` (seconds since the Unix epoch) for a secret as
/// enrolment gives it (base32); `None` for a secret that is not base32. For drills and tests.
pub fn current_code(secret_base32: &str, time: i64) -> Option<String> {
    let secret = Secret::Encoded(secret_base32.to_string()).to_bytes().ok()?;
    Some(totp(&secret).generate(u64::try_from(time).ok()?))
}

/// The time step a code is valid for (now, one before or one after), if any.
fn totp_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = u64::try_from(now).ok()? / STEP;
    let t = totp(secret);
    (current.saturating_sub(1)..=current + 1)
        .find(|&s| constant_time_eq(t.generate(s * STEP).as_bytes(), code.as_bytes()))
        .and_then(|s| i64::try_from(s).ok())
}

/// Whether two byte strings are equal, in time independent of where they differ (codes, tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn check_password(p: &str) -> Result<(), VaultError> {
    let n = p.chars().count();
    if n < MIN_PASSWORD || p.len() > MAX_PASSWORD {
        return Err(VaultError::Refused(format!(
            "a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| VaultError::Key(e.to_string()))?;
    Ok(b)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub(crate) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
