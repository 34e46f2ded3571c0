//! Registering data providers and changing their keys.
//!
//! A provider's registered key decides whose packages are received as that provider's, so it is
//! set once, by a technician, and changes only by a rotation two technicians take part in: one
//! requests the new key, a second approves it (the two-person rule of exports). Registering an id
//! that is already registered is refused. Every step, refusals included, is audited.

use rusqlite::{params, OptionalExtension};

use crate::access::{Role, Session};
use crate::catalog::Provider;
use crate::home::{Home, VaultError};

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

fn check(p: &Provider) -> Result<(), VaultError> {
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Provider, &p.id)
        .map_err(|e| VaultError::Refused(e.to_string()))?;
    tokumei_audit::public_key_from_hex(&p.public_key).map_err(|_| {
        VaultError::Refused("the provider's public key is not an Ed25519 key".into())
    })?;
    for (what, v) in [
        ("name", &p.name),
        ("address", &p.address),
        ("representative", &p.representative),
        ("acquisition", &p.acquisition),
    ] {
        if v.trim().is_empty() || v.chars().any(char::is_control) || v.len() > 1000 {
            return Err(VaultError::Refused(format!(
                "the provider's {what} is required (at most 1000 bytes, no control characters)"
            )));
        }
    }
    if let Some(d) = &p.notice_start {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| VaultError::Refused("the notice start is not a YYYY-MM-DD date".into()))?;
    }
    Ok(())
}

/// Every registered provider, with its details and receipts so far (a technician, auditor or
/// provider administrator may look; the listing is audited).
pub fn list(home: &Home, session: &Session) -> Result<Vec<Listed>, VaultError> {
    session.require(
        home,
        "provider.list",
        &[Role::Technician, Role::Auditor, Role::ProviderAdmin],
    )?;
    let catalog = home.catalog()?;
    let mut out = Vec::new();
    for p in catalog.providers()? {
        let receipts = catalog.receipts_of(&p.id)?;
        out.push(Listed {
            provider: p,
            receipts,
        });
    }
    let object = format!("{} provider(s)", out.len());
    session.audit(home, "provider.list", &object, "ok", None)?;
    Ok(out)
}

/// A provider as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// Its registration.
    #[serde(flatten)]
    pub provider: Provider,
    /// Packages received from it.
    pub receipts: i64,
}

/// Registers a new provider (a technician's act). An id already registered is refused: its key
/// changes only through [`request_rotation`] and [`approve_rotation`].
pub fn register(home: &Home, session: &Session, p: &Provider) -> Result<(), VaultError> {
    session.require(home, "provider.add", &[Role::Technician])?;
    check(p)?;
    let catalog = home.catalog()?;
    if catalog.provider(&p.id)?.is_some() {
        session.audit(
            home,
            "provider.add",
            &format!("provider {}", p.id),
            "refused: already registered",
            Some(&p.id),
        )?;
        return Err(VaultError::Refused(format!(
            "provider {} is already registered; its key changes only by a rotation two technicians \
             approve (`tokumei provider rotate-key`, then `tokumei provider approve-rotation`)",
            p.id
        )));
    }
    catalog.add_provider(p)?;
    session.audit(
        home,
        "provider.add",
        &format!("provider {}", p.id),
        "ok",
        Some(&p.id),
    )
}

/// Registers the age public key (`age1…`) that provider `id`'s recruitment lists are sealed to (a
/// technician's act, audited). When the provider already has one, this requests its replacement,
/// which a second technician approves with [`approve_recruit_key`], naming the same key.
pub fn set_recruit_key(
    home: &Home,
    session: &Session,
    id: &str,
    recipient: &str,
) -> Result<RecruitKey, VaultError> {
    session.require(home, "provider.recruit-key", &[Role::Technician])?;
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Provider, id)
        .map_err(|e| VaultError::Refused(e.to_string()))?;
    let object = format!("provider {id}");
    let result = set_recruit(home, session, id, recipient);
    let outcome = match &result {
        Ok(RecruitKey::Registered) => "ok".to_string(),
        Ok(RecruitKey::Requested) => "ok: replacement awaiting a second technician".to_string(),
        Err(e) => format!("refused: {e}"),
    };
    let provider = result.is_ok().then_some(id);
    session.audit(home, "provider.recruit-key", &object, &outcome, provider)?;
    result
}

/// What [`set_recruit_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecruitKey {
    /// The provider's first recruitment key is registered.
    Registered,
    /// A replacement is requested; a second technician approves it.
    Requested,
}

fn recruit_recipient(recipient: &str) -> Result<String, VaultError> {
    recipient
        .trim()
        .parse::<age::x25519::Recipient>()
        .map(|r| r.to_string())
        .map_err(|_| VaultError::Refused("not an age public key (age1…)".into()))
}

fn set_recruit(
    home: &Home,
    session: &Session,
    id: &str,
    recipient: &str,
) -> Result<RecruitKey, VaultError> {
    let recipient = recruit_recipient(recipient)?;
    let catalog = ensure_table(home)?;
    if catalog.provider(id)?.is_none() {
        return Err(VaultError::Refused(format!(
            "provider {id} is not registered"
        )));
    }
    if catalog.recruit_recipient(id)?.is_none() {
        catalog.put_recruit_recipient(id, &recipient, &session.user, false)?;
        return Ok(RecruitKey::Registered);
    }
    catalog
        .connection()
        .execute(
            "INSERT OR REPLACE INTO provider_recruit_requests (provider_id, recipient,
                 requested_by, requested_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                recipient,
                session.user,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ],
        )
        .map_err(db)?;
    Ok(RecruitKey::Requested)
}

/// Approves the pending replacement of provider `id`'s recruitment key: a technician other than the
/// requester, naming the same key (so a request slipped into the database is not approved
/// unseen). Audited.
pub fn approve_recruit_key(
    home: &Home,
    session: &Session,
    id: &str,
    recipient: &str,
) -> Result<(), VaultError> {
    session.require(home, "provider.recruit-key", &[Role::Technician])?;
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Provider, id)
        .map_err(|e| VaultError::Refused(e.to_string()))?;
    let result = approve_recruit(home, session, id, recipient);
    let outcome = match &result {
        Ok(by) => format!("ok: key replaced (requested by {by})"),
        Err(e) => format!("refused: {e}"),
    };
    session.audit(
        home,
        "provider.recruit-key.approve",
        &format!("provider {id}"),
        &outcome,
        Some(id),
    )?;
    result.map(|_| ())
}

fn approve_recruit(
    home: &Home,
    session: &Session,
    id: &str,
    recipient: &str,
) -> Result<String, VaultError> {
    let recipient = recruit_recipient(recipient)?;
    let catalog = ensure_table(home)?;
    let pending: Option<(String, String)> = catalog
        .connection()
        .query_row(
            "SELECT recipient, requested_by FROM provider_recruit_requests WHERE provider_id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    let Some((pending, requested_by)) = pending else {
        return Err(VaultError::Refused(format!(
            "no replacement of provider {id}'s recruitment key is pending"
        )));
    };
    if requested_by == session.user {
        return Err(VaultError::Denied(
            "a replacement is approved by a technician other than the one who requested it".into(),
        ));
    }
    if pending != recipient {
        return Err(VaultError::Refused(
            "the key approved is not the key requested".into(),
        ));
    }
    catalog.put_recruit_recipient(id, &recipient, &session.user, true)?;
    catalog
        .connection()
        .execute(
            "DELETE FROM provider_recruit_requests WHERE provider_id = ?1",
            params![id],
        )
        .map_err(db)?;
    Ok(requested_by)
}

fn ensure_table(home: &Home) -> Result<crate::catalog::Catalog, VaultError> {
    let catalog = home.catalog()?;
    catalog
        .connection()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS provider_rotations (
                 provider_id TEXT PRIMARY KEY REFERENCES providers(id),
                 public_key TEXT NOT NULL,
                 requested_by TEXT NOT NULL,
                 requested_at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS provider_recruit_requests (
                 provider_id TEXT PRIMARY KEY REFERENCES providers(id),
                 recipient TEXT NOT NULL,
                 requested_by TEXT NOT NULL,
                 requested_at TEXT NOT NULL
             );",
        )
        .map_err(db)?;
    Ok(catalog)
}

/// Requests that provider `id`'s key become `public_key` (hex); a second technician approves it.
pub fn request_rotation(
    home: &Home,
    session: &Session,
    id: &str,
    public_key: &str,
) -> Result<(), VaultError> {
    session.require(home, "provider.rotate", &[Role::Technician])?;
    tokumei_audit::public_key_from_hex(public_key)
        .map_err(|_| VaultError::Refused("the new key is not an Ed25519 key".into()))?;
    let catalog = ensure_table(home)?;
    if catalog.provider(id)?.is_none() {
        return Err(VaultError::Refused(format!(
            "provider {id} is not registered"
        )));
    }
    catalog
        .connection()
        .execute(
            "INSERT OR REPLACE INTO provider_rotations (provider_id, public_key, requested_by,
                 requested_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                public_key.trim(),
                session.user,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ],
        )
        .map_err(db)?;
    session.audit(
        home,
        "provider.rotate.request",
        &format!("provider {id}"),
        "ok: awaiting a second technician",
        Some(id),
    )
}

/// Approves the pending key rotation of provider `id`: a technician other than the requester.
pub fn approve_rotation(home: &Home, session: &Session, id: &str) -> Result<(), VaultError> {
    session.require(home, "provider.rotate", &[Role::Technician])?;
    let catalog = ensure_table(home)?;
    let pending: Option<(String, String)> = catalog
        .connection()
        .query_row(
            "SELECT public_key, requested_by FROM provider_rotations WHERE provider_id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    let Some((key, requested_by)) = pending else {
        return Err(VaultError::Refused(format!(
            "no key rotation of provider {id} is pending"
        )));
    };
    if requested_by == session.user {
        session.audit(
            home,
            "provider.rotate.approve",
            &format!("provider {id}"),
            "denied: the requester cannot approve",
            Some(id),
        )?;
        return Err(VaultError::Denied(
            "a key rotation is approved by a technician other than the one who requested it".into(),
        ));
    }
    catalog.set_provider_key(id, &key)?;
    catalog
        .connection()
        .execute(
            "DELETE FROM provider_rotations WHERE provider_id = ?1",
            params![id],
        )
        .map_err(db)?;
    session.audit(
        home,
        "provider.rotate.approve",
        &format!("provider {id} (requested by {requested_by})"),
        "ok: key replaced",
        Some(id),
    )
}
