//! What the public pages show, read from the home: each provider's notice (公表) and the register of
//! releases. Only what the law has the operator publish: providers' names, addresses and
//! representatives, notice dates; releases' recipients, purposes, kinds and dates.

use serde::Serialize;
use tokumei_review::Review;
use tokumei_vault::Home;

use crate::WebError;

/// A provider's notice.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Notice {
    /// Provider id (the notice page's address: `/notices/{id}`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Address (the contact for requests to stop).
    pub address: String,
    /// Representative.
    pub representative: String,
    /// When the notice to patients began (YYYY-MM-DD), if known.
    pub notice_start: Option<String>,
    /// The filing with the minister, if filed.
    pub notice_filing: Option<String>,
    /// Days after the notice before records are received.
    pub wait_days: u32,
}

/// One release in the register.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Registered {
    /// Release id.
    pub release_id: String,
    /// Recipient organisation.
    pub recipient: String,
    /// Purpose of use, as the application states it.
    pub purpose: String,
    /// `anonymized` or `pseudonymized`.
    pub kind: String,
    /// Date provided (YYYY-MM-DD).
    pub date: String,
}

/// Every registered provider's notice, by id.
pub fn notices(home: &Home) -> Result<Vec<Notice>, WebError> {
    let wait_days = home.config.notice_wait_days;
    let mut out: Vec<Notice> = home
        .catalog()?
        .providers()?
        .into_iter()
        .map(|p| Notice {
            id: p.id,
            name: p.name,
            address: p.address,
            representative: p.representative,
            notice_start: p.notice_start,
            notice_filing: p.notice_filing,
            wait_days,
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// One provider's notice; `None` for an id no provider has.
pub fn notice(home: &Home, id: &str) -> Result<Option<Notice>, WebError> {
    Ok(notices(home)?.into_iter().find(|n| n.id == id))
}

/// The register: every release provided, oldest first.
pub fn register(home: &Home) -> Result<Vec<Registered>, WebError> {
    let review = Review::open(home)?;
    let mut out = Vec::new();
    for p in review.provisions()? {
        let purpose = review
            .status(&p.application_id)?
            .map(|s| s.application.purpose)
            .unwrap_or_default();
        out.push(Registered {
            release_id: p.release_id,
            recipient: p.recipient,
            purpose,
            kind: p.kind,
            date: p.provided_at.chars().take(10).collect(),
        });
    }
    Ok(out)
}

/// Whether an id from a URL can name a provider: 1–64 ASCII letters, digits, `-` or `_` (anything
/// else is answered as not found, never looked up or echoed).
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
