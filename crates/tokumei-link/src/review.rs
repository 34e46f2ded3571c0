//! The clerical review queue: pairs the linkage could not decide on, shown side by side to a
//! technician, accepted (one person: joined at the next run unless that joins a rejected pair) or
//! rejected (a cannot-link constraint of every later run).

use std::collections::HashMap;

use serde::Serialize;
use tokumei_model::identity::IdentityRecord;
use tokumei_vault::access::{Role, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::lock::WriterLock;
use tokumei_vault::Home;

use crate::mpi::Mpi;
use crate::LinkError;

/// A technician's decision on a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The same person.
    Accepted,
    /// Different persons.
    Rejected,
}

impl Decision {
    /// `accepted` or `rejected`, as the queue stores it.
    pub fn code(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
        }
    }
}

/// One field of a pending pair, both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// What the field is (`kanji`, `birth`).
    pub label: &'static str,
    /// The left record's value.
    pub left: String,
    /// The right record's value.
    pub right: String,
}

/// A pending pair, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct PendingPair {
    /// Number in the queue.
    pub id: u64,
    /// Match probability.
    pub probability: f64,
    /// The fields compared.
    pub fields: Vec<Field>,
}

/// The fields shown, with their labels.
const FIELDS: [(&str, &str); 10] = [
    ("provider", "provider_id"),
    ("kanji", "surname_kanji"),
    ("given_kanji", "given_kanji"),
    ("kana", "surname_kana"),
    ("given_kana", "given_kana"),
    ("birth", "birth_date"),
    ("sex", "sex"),
    ("town", "town"),
    ("insurer", "insurer_number"),
    ("number", "insured_number"),
];

/// The pending pairs side by side: a technician's read of identified data, audited.
pub fn pending(home: &Home, s: &Session, key: &DataKey) -> Result<Vec<PendingPair>, LinkError> {
    s.require(home, "link.review", &[Role::Technician])?;
    let mpi = Mpi::read(home, key)?;
    let identities = tokumei_vault::store::read_all_identities(home, key)?;
    let by_id: HashMap<&str, &IdentityRecord> = identities
        .iter()
        .map(|r| (r.record_id.as_str(), r))
        .collect();
    let mut out = Vec::new();
    for p in mpi.review.iter().filter(|p| p.status == "pending") {
        let (Some(a), Some(b)) = (by_id.get(p.left.as_str()), by_id.get(p.right.as_str())) else {
            continue;
        };
        let fields = FIELDS
            .iter()
            .map(|(label, col)| Field {
                label,
                left: a.column_text(col).unwrap_or_default(),
                right: b.column_text(col).unwrap_or_default(),
            })
            .collect();
        out.push(PendingPair {
            id: p.id,
            probability: p.probability,
            fields,
        });
    }
    let object = format!("{} pending pair(s) shown", out.len());
    s.audit(home, "link.review", &object, "ok", None)?;
    Ok(out)
}

/// Records a decision on a pending pair; it takes effect at the next run (whose summary says how
/// many accepted pairs were joined and how many refused).
pub fn decide(
    home: &Home,
    s: &Session,
    key: &DataKey,
    id: u64,
    decision: Decision,
    _lock: &WriterLock,
) -> Result<(), LinkError> {
    s.require(home, "link.review", &[Role::Technician])?;
    let mut mpi = Mpi::read(home, key)?;
    let p = mpi
        .review
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or(LinkError::NoPair(id))?;
    if p.status != "pending" {
        return Err(LinkError::AlreadyDecided {
            id,
            status: p.status.clone(),
        });
    }
    p.status = decision.code().into();
    p.decided_by = Some(s.user.clone());
    mpi.write(home, key)?;
    s.audit(
        home,
        "link.review",
        &format!("pair {id}"),
        decision.code(),
        None,
    )?;
    Ok(())
}
