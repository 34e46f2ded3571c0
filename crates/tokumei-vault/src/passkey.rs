//! Passkeys (WebAuthn, always with user verification) as the second way to sign in to the web,
//! beside a password with a TOTP code. A user signed in the other way adds a passkey (a
//! discoverable credential, so signing in with it needs no user name); each is sealed under the
//! data key with its user's name and handle, so that a row moved to another user, or planted by
//! someone who can write the home but not open it, is caught. Sign-in with a passkey shares the
//! password's lock-out: failures in a row lock the user out, and a locked user's passkey is
//! refused too. Every addition, removal and sign-in, refused or not, is audited.
//!
//! The ceremonies' pending states ([`PendingRegistration`], [`PendingSignIn`]) stay on the
//! server, in the caller's memory, and are used once.

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::access::Session;
use crate::home::{DataKey, VaultError};
use crate::store::{open_sealed, seal};
use crate::webauth::{db, random, rfc3339, WebAuth};

/// Most passkeys one user may hold.
pub const MAX_PER_USER: usize = 10;
/// Largest response from the browser (JSON bytes) a ceremony reads.
pub const MAX_RESPONSE: usize = 12 * 1024;
/// Longest label of a passkey (characters).
pub const MAX_LABEL: usize = 40;
/// Longest credential id accepted (bytes; the standard allows 1023, authenticators use far less).
const MAX_CREDENTIAL_ID: usize = 256;
/// What the audit log calls this way of signing in.
const METHOD: &str = "passkey";

/// The relying party: the origin the server is reached at, which every ceremony is bound to.
pub struct RelyingParty {
    webauthn: Webauthn,
}

impl RelyingParty {
    /// The relying party of an `https://` origin whose host is a domain name (WebAuthn refuses IP
    /// addresses; `localhost` is a domain).
    pub fn for_origin(origin: &str) -> Result<RelyingParty, VaultError> {
        let refused = |why: &str| VaultError::Refused(format!("passkeys: {why}"));
        let url = Url::parse(origin).map_err(|_| refused("the public address is not a URL"))?;
        let Some(url::Host::Domain(host)) = url.host() else {
            return Err(refused(
                "the public address is an IP address; passkeys need a domain name (--public-url)",
            ));
        };
        if url.scheme() != "https" {
            return Err(refused("the public address is not https"));
        }
        let webauthn = WebauthnBuilder::new(host, &url)
            .and_then(|b| b.rp_name("Tokumei").build())
            .map_err(|e| refused(&e.to_string()))?;
        Ok(RelyingParty { webauthn })
    }
}

/// A registration under way: the user it is for, their handle, and the challenge's state.
pub struct PendingRegistration {
    user: String,
    handle: Uuid,
    state: PasskeyRegistration,
}

impl PendingRegistration {
    /// The user the registration was begun for.
    pub fn user(&self) -> &str {
        &self.user
    }
}

/// A sign-in with a passkey under way.
pub struct PendingSignIn(DiscoverableAuthentication);

/// A passkey as listed to its user (no key material).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyInfo {
    /// Its id: the credential id's SHA-256, shortened (safe to log and to put in a form).
    pub id: String,
    /// The label its user gave it.
    pub label: String,
    /// When it was added (UTC, RFC 3339).
    pub created_at: String,
    /// When it last signed its user in.
    pub last_used_at: Option<String>,
}

/// A passkey as sealed.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    user: String,
    handle: Uuid,
    passkey: Passkey,
}

impl WebAuth {
    /// Begins adding a passkey for the signed-in user: the options for
    /// `navigator.credentials.create` (JSON, a discoverable credential with user verification),
    /// and the state [`WebAuth::passkey_finish`] needs.
    pub fn passkey_begin(
        &self,
        key: &DataKey,
        s: &Session,
        rp: &RelyingParty,
    ) -> Result<(serde_json::Value, PendingRegistration), VaultError> {
        let held = self.held(key, &s.user)?;
        if held.len() >= MAX_PER_USER {
            return Err(VaultError::Refused(format!(
                "a user holds at most {MAX_PER_USER} passkeys"
            )));
        }
        let handle = self.handle(&s.user)?;
        let exclude = held.iter().map(|p| p.cred_id().clone()).collect();
        let (ccr, state) = rp
            .webauthn
            .start_passkey_registration(handle, &s.user, &s.user, Some(exclude))
            .map_err(|e| VaultError::Refused(format!("passkeys: {e}")))?;
        let mut options = serde_json::to_value(&ccr).map_err(|e| VaultError::Key(e.to_string()))?;
        // A passkey is a discoverable credential: signing in with it needs no user name.
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            sel["residentKey"] = "required".into();
            sel["requireResidentKey"] = true.into();
        }
        let pending = PendingRegistration {
            user: s.user.clone(),
            handle,
            state,
        };
        Ok((options, pending))
    }

    /// Finishes adding a passkey with the browser's response (JSON); its listing.
    pub fn passkey_finish(
        &self,
        key: &DataKey,
        s: &Session,
        rp: &RelyingParty,
        pending: PendingRegistration,
        response: &[u8],
        label: &str,
    ) -> Result<PasskeyInfo, VaultError> {
        let label = check_label(label)?;
        if pending.user != s.user {
            return Err(VaultError::Denied(
                "the passkey was begun by another user".into(),
            ));
        }
        let parsed: RegisterPublicKeyCredential = parse(response)?;
        let refused = |why: &str| {
            s.audit(
                &self.home,
                "web.passkey.add",
                "a passkey",
                &format!("refused: {why}"),
                None,
            )
        };
        let passkey = match rp
            .webauthn
            .finish_passkey_registration(&parsed, &pending.state)
        {
            Ok(p) => p,
            Err(e) => {
                refused("the authenticator's response does not verify")?;
                return Err(VaultError::Refused(format!("passkeys: {e}")));
            }
        };
        let cred_id: &[u8] = passkey.cred_id().as_slice();
        if cred_id.len() > MAX_CREDENTIAL_ID {
            refused("the credential id is too long")?;
            return Err(VaultError::Refused(
                "passkeys: credential id too long".into(),
            ));
        }
        let id = short_id(cred_id);
        let sealed = seal_passkey(key, &s.user, pending.handle, &passkey)?;
        let now = rfc3339(chrono::Utc::now());
        let added = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO passkeys (id, user, sealed, label, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hex::encode(cred_id), s.user, sealed, label, now],
            )
            .map_err(db)?;
        if added == 0 {
            refused("the passkey is registered already")?;
            return Err(VaultError::Refused(
                "passkeys: this passkey is registered already".into(),
            ));
        }
        let object = format!("passkey {id}");
        s.audit(&self.home, "web.passkey.add", &object, "ok", None)?;
        Ok(PasskeyInfo {
            id,
            label,
            created_at: now,
            last_used_at: None,
        })
    }

    /// The signed-in user's passkeys.
    pub fn passkeys(&self, user: &str) -> Result<Vec<PasskeyInfo>, VaultError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, label, created_at, last_used_at FROM passkeys WHERE user = ?1
                 ORDER BY created_at, id",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![user], |r| {
                let id: String = r.get(0)?;
                Ok(PasskeyInfo {
                    id: hex::decode(&id).map(|b| short_id(&b)).unwrap_or_default(),
                    label: r.get(1)?,
                    created_at: r.get(2)?,
                    last_used_at: r.get(3)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Removes one of the signed-in user's passkeys (by its listed id).
    pub fn passkey_remove(&self, s: &Session, id: &str) -> Result<(), VaultError> {
        let ids: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM passkeys WHERE user = ?1")
                .map_err(db)?;
            let rows = stmt.query_map(params![s.user], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        let found = ids
            .into_iter()
            .find(|full| hex::decode(full).is_ok_and(|b| short_id(&b) == id));
        let Some(full) = found else {
            return Err(VaultError::Refused("no such passkey of this user".into()));
        };
        self.conn
            .execute(
                "DELETE FROM passkeys WHERE id = ?1 AND user = ?2",
                params![full, s.user],
            )
            .map_err(db)?;
        s.audit(
            &self.home,
            "web.passkey.remove",
            &format!("passkey {id}"),
            "ok",
            None,
        )
    }

    /// Begins a sign-in with a passkey: the options for `navigator.credentials.get` (JSON; no
    /// user name needed), and the state [`WebAuth::passkey_sign_in`] needs.
    pub fn passkey_sign_in_begin(
        rp: &RelyingParty,
    ) -> Result<(serde_json::Value, PendingSignIn), VaultError> {
        let (rcr, state) = rp
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| VaultError::Refused(format!("passkeys: {e}")))?;
        let mut options = serde_json::to_value(&rcr).map_err(|e| VaultError::Key(e.to_string()))?;
        // Asked for by a button, not offered in the form's autofill.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        Ok((options, PendingSignIn(state)))
    }

    /// Signs a user in with the browser's response (JSON) to a pending sign-in; the session of
    /// their grant. `now` is seconds since the Unix epoch.
    pub fn passkey_sign_in(
        &self,
        key: &DataKey,
        rp: &RelyingParty,
        pending: PendingSignIn,
        response: &[u8],
        now: i64,
    ) -> Result<Session, VaultError> {
        let refused = |why: &str| VaultError::Denied(format!("sign-in refused: {why}"));
        let parsed: PublicKeyCredential = parse(response)?;
        let (user, row_id, mut stored) = match self.passkey_of(key, &rp.webauthn, &parsed)? {
            Some(found) => found,
            None => {
                self.system("web.signin", "an unknown passkey", "refused")?;
                return Err(refused("the passkey is not known"));
            }
        };
        let (failures, locked_until) = self.lock_state(&user)?.unwrap_or((0, 0));
        if locked_until > now {
            self.as_user(&user, "web.signin", METHOD, "refused: locked out")?;
            return Err(refused("too many failed attempts; try again later"));
        }
        let verified = rp
            .webauthn
            .finish_discoverable_authentication_v2(&parsed, pending.0, &stored.passkey)
            .ok()
            .filter(|r| r.user_verified());
        let Some(result) = verified else {
            self.count_failure(&user, failures, now, METHOD)?;
            return Err(refused("the passkey's response does not verify"));
        };
        if stored.passkey.update_credential(&result) == Some(true) {
            let sealed = seal_passkey(key, &user, stored.handle, &stored.passkey)?;
            self.conn
                .execute(
                    "UPDATE passkeys SET sealed = ?2 WHERE id = ?1",
                    params![row_id, sealed],
                )
                .map_err(db)?;
        }
        self.conn
            .execute(
                "UPDATE passkeys SET last_used_at = ?2 WHERE id = ?1",
                params![row_id, rfc3339(chrono::Utc::now())],
            )
            .map_err(db)?;
        self.grant_session(&user, METHOD)
    }

    /// The user, row id and sealed passkey a response names (by credential id and user handle),
    /// if it names one; a row whose seal does not match it is tampering.
    fn passkey_of(
        &self,
        key: &DataKey,
        webauthn: &Webauthn,
        parsed: &PublicKeyCredential,
    ) -> Result<Option<(String, String, Sealed)>, VaultError> {
        let Ok((handle, cred_id)) = webauthn.identify_discoverable_authentication(parsed) else {
            return Ok(None);
        };
        if cred_id.len() > MAX_CREDENTIAL_ID {
            return Ok(None);
        }
        let row_id = hex::encode(cred_id);
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT user, sealed FROM passkeys WHERE id = ?1",
                params![row_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((user, sealed)) = row else {
            return Ok(None);
        };
        let stored = open_passkey(key, &sealed)?;
        if stored.user != user || stored.passkey.cred_id().as_slice() != cred_id {
            return Err(VaultError::Tampered(
                "a passkey was moved to another user".into(),
            ));
        }
        if stored.handle != handle {
            return Ok(None);
        }
        Ok(Some((user, row_id, stored)))
    }

    /// The passkeys a user holds, opened.
    fn held(&self, key: &DataKey, user: &str) -> Result<Vec<Passkey>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT sealed FROM passkeys WHERE user = ?1")
            .map_err(db)?;
        let rows: Vec<Vec<u8>> = stmt
            .query_map(params![user], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let mut held = Vec::with_capacity(rows.len());
        for sealed in rows {
            let stored = open_passkey(key, &sealed)?;
            if stored.user != user {
                return Err(VaultError::Tampered(
                    "a passkey was moved to another user".into(),
                ));
            }
            held.push(stored.passkey);
        }
        Ok(held)
    }

    /// The user's WebAuthn user handle (random, made on first use; never their name).
    fn handle(&self, user: &str) -> Result<Uuid, VaultError> {
        let known: Option<String> = self
            .conn
            .query_row(
                "SELECT handle FROM passkey_handles WHERE user = ?1",
                params![user],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if let Some(h) = known {
            return Uuid::parse_str(&h)
                .map_err(|_| VaultError::Tampered("a passkey user handle does not parse".into()));
        }
        let handle = uuid_v4(random::<16>()?);
        self.conn
            .execute(
                "INSERT INTO passkey_handles (user, handle) VALUES (?1, ?2)",
                params![user, handle.to_string()],
            )
            .map_err(db)?;
        Ok(handle)
    }
}

/// A version 4 UUID from 16 random bytes.
fn uuid_v4(mut b: [u8; 16]) -> Uuid {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// A passkey's listed id: the first 16 hex digits of its credential id's SHA-256.
fn short_id(cred_id: &[u8]) -> String {
    hex::encode(&Sha256::digest(cred_id)[..8])
}

fn seal_passkey(
    key: &DataKey,
    user: &str,
    handle: Uuid,
    passkey: &Passkey,
) -> Result<Vec<u8>, VaultError> {
    let sealed = Sealed {
        user: user.to_string(),
        handle,
        passkey: passkey.clone(),
    };
    seal(
        key,
        &serde_json::to_vec(&sealed).map_err(|e| VaultError::Key(e.to_string()))?,
    )
}

fn open_passkey(key: &DataKey, sealed: &[u8]) -> Result<Sealed, VaultError> {
    serde_json::from_slice(&open_sealed(key, sealed)?)
        .map_err(|_| VaultError::Tampered("a passkey does not parse".into()))
}

/// A browser's response, bounded and parsed.
fn parse<T: serde::de::DeserializeOwned>(response: &[u8]) -> Result<T, VaultError> {
    if response.len() > MAX_RESPONSE {
        return Err(VaultError::Refused(
            "passkeys: the response is too large".into(),
        ));
    }
    serde_json::from_slice(response)
        .map_err(|_| VaultError::Refused("passkeys: the response does not parse".into()))
}

/// A label as kept: trimmed, 1 to [`MAX_LABEL`] characters, no control characters.
fn check_label(label: &str) -> Result<String, VaultError> {
    let label = label.trim();
    let n = label.chars().count();
    if n == 0 || n > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(VaultError::Refused(format!(
            "a passkey's label has 1 to {MAX_LABEL} characters, none of them control characters"
        )));
    }
    Ok(label.to_string())
}
