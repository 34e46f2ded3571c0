//! Recruitment (被験者募集): for an approved recruitment protocol, each provider that registered a
//! recruitment key receives the list of its own local patient ids who meet the definition, sealed
//! to that key with age, so that only the provider opens it and invites its own patients.
//!
//! The criteria are evaluated on the provider's own records (its events, observation and
//! demographics) unless the committee's decision records a basis for using linked records (a
//! condition beginning `linked records:`); then the linked person is evaluated and the provider
//! receives its own ids of those who match. Persons who asked to stop are never in the population,
//! so never on a list. Each list is a provision ledger entry (kind `recruitment`, the provider as
//! recipient, the sealed file's SHA-256) and an audit entry; the sponsor sees per-site counts only,
//! through [`crate::count`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokumei_review::{Provision, Review, Scope};
use tokumei_vault::access::{Role, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::{Definition, FeasibilityError};

/// The condition of a decision that records a basis for evaluating linked records.
pub const LINKED_BASIS: &str = "linked records:";

/// A list as the provider opens it (JSON inside the age envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    /// The recruitment protocol (application id).
    pub application: String,
    /// The provider.
    pub provider: String,
    /// SHA-256 of the normalized definition.
    pub definition_hash: String,
    /// Evaluated on the provider's own records (`own-records`) or linked records (`linked`).
    pub basis: String,
    /// When it was made (UTC).
    pub made_at: String,
    /// The provider's local patient ids who match, sorted.
    pub patients: Vec<String>,
}

/// One list as built: where it was written and what the ledger records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Built {
    /// The provider.
    pub provider: String,
    /// The sealed file.
    pub file: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Patients on it (shown to the operator's technician, never to the sponsor).
    pub patients: usize,
    /// The provision ledger's id for it.
    pub provision_id: String,
}

/// Builds the lists of an approved recruitment protocol into `out` (one `<application>-<provider>
/// .json.age` per provider with a recruitment key), each recorded in the provision ledger. Needs a
/// technician.
pub fn build(
    home: &Home,
    s: &Session,
    key: &DataKey,
    def: &Definition,
    application: &str,
    out: &Path,
) -> Result<Vec<Built>, FeasibilityError> {
    s.require(home, "recruit.build", &[Role::Technician])?;
    let review = Review::open(home)?;
    let scope = review.approved_feasibility(s, application, chrono::Utc::now().date_naive())?;
    let result = build_lists(home, s, key, def, &scope, &review, out);
    if let Err(e) = &result {
        s.audit(
            home,
            "recruit.build",
            &format!("application {application}"),
            &format!("refused: {e}"),
            None,
        )?;
    }
    result
}

fn linked_basis(scope: &Scope) -> bool {
    scope.decision.conditions.iter().any(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with(LINKED_BASIS)
    })
}

fn build_lists(
    home: &Home,
    s: &Session,
    key: &DataKey,
    def: &Definition,
    scope: &Scope,
    review: &Review,
    out: &Path,
) -> Result<Vec<Built>, FeasibilityError> {
    let asks = scope
        .application
        .feasibility
        .as_ref()
        .is_some_and(|f| f.recruitment);
    if !asks {
        return Err(FeasibilityError::Denied(
            "the application is not a recruitment protocol ([feasibility] recruitment = true)"
                .into(),
        ));
    }
    crate::within_period(def, &scope.application)?;
    let catalog = home.catalog()?;
    let linked_vault = tokumei_link::linked::LinkedVault::read(home, key, &catalog)?;
    let linked = linked_basis(scope);
    let people = linked_vault.persons(&catalog, key)?;
    let everyone = linked.then(|| crate::vault::population_where(&linked_vault, &people, None));
    std::fs::create_dir_all(out).map_err(|e| FeasibilityError::Io(out.to_path_buf(), e))?;
    let mut built = Vec::new();
    for provider in catalog.providers()? {
        let Some(recipient) = catalog.recruit_recipient(&provider.id)? else {
            continue;
        };
        let own;
        let (population, ids, _) = match &everyone {
            Some(e) => e,
            None => {
                own = crate::vault::population_where(&linked_vault, &people, Some(&provider.id));
                &own
            }
        };
        let mut patients: Vec<String> = crate::evaluate::members(def, population)
            .into_iter()
            .flat_map(|i| ids[i].iter())
            .filter(|(p, _)| *p == provider.id)
            .map(|(_, local)| local.clone())
            .collect();
        patients.sort();
        patients.dedup();
        let list = List {
            application: scope.application_id.clone(),
            provider: provider.id.clone(),
            definition_hash: def.hash(),
            basis: if linked { "linked" } else { "own-records" }.into(),
            made_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            patients,
        };
        built.push(deliver(home, s, review, scope, &list, &recipient, out)?);
    }
    Ok(built)
}

/// Seals one list to the provider's key, writes it whole or not at all, and records it in the
/// provision ledger and the audit log.
fn deliver(
    home: &Home,
    s: &Session,
    review: &Review,
    scope: &Scope,
    list: &List,
    recipient: &str,
    out: &Path,
) -> Result<Built, FeasibilityError> {
    let sealed = seal(list, recipient)?;
    let sha256 = hex::encode(Sha256::digest(&sealed));
    let file = out.join(format!("{}-{}.json.age", list.application, list.provider));
    tokumei_fs::write_atomic(&file, &sealed)?;
    let provision_id = format!(
        "{}-recruit-{}-{}",
        list.application,
        list.provider,
        &sha256[..8]
    );
    review.record_provision(
        s,
        &Provision {
            release_id: provision_id.clone(),
            application_id: list.application.clone(),
            decision_sha256: scope.decision_sha256.clone(),
            recipient: list.provider.clone(),
            kind: "recruitment".into(),
            package_sha256: sha256.clone(),
            provided_at: list.made_at.clone(),
            contract_expiry: scope.application.contract_expiry.clone(),
            destroyed_at: None,
            destruction_certificate_sha256: None,
        },
    )?;
    s.audit(
        home,
        "recruit.build",
        &format!(
            "application {} provider {}",
            list.application, list.provider
        ),
        &format!("sealed list sha256 {sha256} ({} basis)", list.basis),
        Some(&list.provider),
    )?;
    Ok(Built {
        provider: list.provider.clone(),
        file,
        sha256,
        patients: list.patients.len(),
        provision_id,
    })
}

fn seal(list: &List, recipient: &str) -> Result<Vec<u8>, FeasibilityError> {
    let fail = |what: &str| FeasibilityError::Denied(format!("recruitment list: {what}"));
    let to: age::x25519::Recipient = recipient
        .parse()
        .map_err(|_| fail("the provider's recruitment key is not an age key"))?;
    let json = serde_json::to_vec(list).map_err(|_| fail("not serializable"))?;
    tokumei_vault::sealed::seal_bytes(&to, &json).map_err(|_| fail("cannot encrypt"))
}

/// The recruitment lists in the provision ledger (technicians and auditors).
pub fn list(home: &Home, s: &Session) -> Result<Vec<Provision>, FeasibilityError> {
    s.require(home, "recruit.list", &[Role::Technician, Role::Auditor])?;
    let all = Review::open(home)?.provisions()?;
    let out: Vec<Provision> = all
        .into_iter()
        .filter(|p| p.kind == "recruitment")
        .collect();
    s.audit(
        home,
        "recruit.list",
        &format!("{} list(s)", out.len()),
        "ok",
        None,
    )?;
    Ok(out)
}
