//! Requests to stop (停止の求め) applied to whole persons: every record the master person index
//! links to a record of the registry is purged, and the person's fingerprints are kept so that the
//! person's records arriving later from other providers are purged as soon as a run links them.

use std::collections::HashSet;

use tokumei_model::identity::IdentityRecord;
use tokumei_vault::access::{Role, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::lock::WriterLock;
use tokumei_vault::optout::{person_fingerprints, IndexKey, Request, Subject};
use tokumei_vault::purge::PurgeReport;
use tokumei_vault::Home;

use crate::mpi::Mpi;
use crate::LinkError;

/// Records matching the opt-out registry (`indexes`: the whole registry or new requests).
pub fn matching_records(
    key: &DataKey,
    identities: &[IdentityRecord],
    indexes: &HashSet<String>,
) -> HashSet<String> {
    let index = IndexKey::derive(key);
    identities
        .iter()
        .filter(|r| {
            tokumei_vault::optout::subjects_of(&r.provider_id, r)
                .iter()
                .any(|s| indexes.contains(&index.index(s)))
        })
        .map(|r| r.record_id.clone())
        .collect()
}

/// Purges every record of the persons of `direct` (records matching the registry), keeps their
/// fingerprints, drops them from the index and its review queue, and audits the purge.
pub fn purge_persons(
    home: &Home,
    s: &Session,
    key: &DataKey,
    identities: &[IdentityRecord],
    direct: &HashSet<String>,
) -> Result<PurgeReport, LinkError> {
    if direct.is_empty() {
        return Ok(Default::default());
    }
    let mut mpi = Mpi::read(home, key)?;
    let mut doomed: HashSet<String> = direct.clone();
    for r in direct {
        if let Some(p) = mpi.person_of.get(r).cloned() {
            doomed.extend(mpi.records_of(&p));
        }
    }
    let index = IndexKey::derive(key);
    let catalog = home.catalog()?;
    for r in identities.iter().filter(|r| doomed.contains(&r.record_id)) {
        for f in person_fingerprints(&index, r) {
            catalog.add_optout_fingerprint(&f)?;
        }
    }
    let report = tokumei_vault::purge::purge_records(home, key, &doomed)?;
    mpi.person_of.retain(|r, _| !doomed.contains(r));
    mpi.review
        .retain(|p| !doomed.contains(&p.left) && !doomed.contains(&p.right));
    mpi.write(home, key)?;
    let object = format!(
        "{} record(s) of persons who asked to stop, in {} package(s)",
        report.records,
        report.touched.len()
    );
    let result = format!("ok: {} event(s) removed", report.events);
    s.audit(home, "optout.purge", &object, &result, None)?;
    Ok(report)
}

/// Purges the records held that match `indexes` (blind indexes of the registry), with every
/// record linked to them.
pub fn purge_registry(
    home: &Home,
    s: &Session,
    key: &DataKey,
    indexes: &HashSet<String>,
    _lock: &WriterLock,
) -> Result<PurgeReport, LinkError> {
    let identities = tokumei_vault::store::read_all_identities(home, key)?;
    let direct = matching_records(key, &identities, indexes);
    purge_persons(home, s, key, &identities, &direct)
}

/// What recording requests to stop did.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Requests recorded.
    pub requests: usize,
    /// Records of the persons named that were already held, purged now.
    pub purged: PurgeReport,
}

/// Records requests to stop (each audited, as a keyed hash of its identifiers only) and purges the
/// records already held of the persons they name, with every record linked to them.
pub fn record_requests(
    home: &Home,
    s: &Session,
    key: &DataKey,
    requests: &[Request],
    lock: &WriterLock,
) -> Result<Recorded, LinkError> {
    s.require(home, "optout.add", &[Role::Technician, Role::ProviderAdmin])?;
    if let Some(why) = not_own(s, requests) {
        s.audit(
            home,
            "optout.add",
            "requests to stop",
            &format!("refused: {why}"),
            s.provider_id.as_deref(),
        )?;
        return Err(LinkError::Vault(tokumei_vault::VaultError::Refused(why)));
    }
    let index = IndexKey::derive(key);
    let catalog = home.catalog()?;
    for r in requests {
        let id = catalog.add_optout(&index, r)?;
        let provider = match &r.subject {
            Subject::Patient { provider_id, .. } => Some(provider_id.as_str()),
            Subject::Insured { .. } => None,
        };
        let object = format!("request {id} ({})", r.requester.code());
        s.audit(home, "optout.add", &object, "ok", provider)?;
    }
    let indexes: HashSet<String> = requests.iter().map(|r| index.index(&r.subject)).collect();
    let purged = purge_registry(home, s, key, &indexes, lock)?;
    Ok(Recorded {
        requests: requests.len(),
        purged,
    })
}

/// Why a provider's user may not record these requests: a provider records those of its own
/// patients (by its patient id) only; a technician records any.
fn not_own(s: &Session, requests: &[Request]) -> Option<String> {
    if s.role != Role::ProviderAdmin {
        return None;
    }
    let own = s.provider_id.as_deref()?;
    let i = requests.iter().position(
        |r| !matches!(&r.subject, Subject::Patient { provider_id, .. } if provider_id == own),
    )?;
    Some(format!(
        "request {} names another provider's patient or insurance identifiers; a provider records \
         requests of its own patients only",
        i + 1
    ))
}

/// Purges every record held that matches any request in the registry, with the persons linked to
/// them (`tokumei optout purge`: after a link run joined new records to such persons).
pub fn purge_all(
    home: &Home,
    s: &Session,
    key: &DataKey,
    lock: &WriterLock,
) -> Result<PurgeReport, LinkError> {
    let indexes = home.catalog()?.optout_indexes()?;
    purge_registry(home, s, key, &indexes, lock)
}
