//! Feasibility counts for clinical trials (the 治験モデル's Feasibility): how many persons of the
//! region meet a protocol's criteria, under disclosure control.
//!
//! - [`definition`]: cohort definitions (TOML or JSON, a JSON Schema), validated with the path of
//!   every fault.
//! - [`evaluate`]: the persons counted (never records), the index date, the attrition per step and
//!   the breakdowns by sex, age band, 二次医療圏 and provider.
//! - [`disclosure`]: the policy (NDB-like default) applied to the true counts: suppression of 1–9,
//!   complementary suppression, rounding with the range each shown count stands for, per-provider
//!   figures only when enough providers report.
//! - [`vault`]: the population of the linked vault without the persons who asked to stop.
//! - [`report`]: the HTML report of an answer (Japanese and English, the attrition chart).
//! - [`cache`]: answers kept per normalized query until the data change.
//!
//! - [`noise`]: differential privacy (OpenDP's discrete Laplace mechanism) over every figure, with
//!   each figure's 95 % interval.
//! - [`budget`]: the privacy budget per user and per application, an authenticated ledger in the
//!   catalog.
//! - [`index`]: code bitmaps that prune a count to the persons who may have an index event, their
//!   postings built in this process or on a distributed engine (`tokumei_model::postings`).
//! - [`counter`]: the index held between counts, built again when the data change.
//! - [`recruit`]: recruitment lists, each provider's own matching patients sealed to its key.
//!
//! [`count`] is the one operation: a technician's query, within the policy's quotas per minute and
//! per week (counted from the audit log) and the privacy budget (charged before the answer is
//! computed), evaluated on the code index of the vault's population (held by the [`counter::Counter`]
//! between counts of the same data), answered with noise under the policy and audited with the
//! definition's hash (never its text), what was shown, the ε spent and the ledger row.

pub mod budget;
pub mod cache;
pub mod counter;
pub mod definition;
pub mod disclosure;
pub mod evaluate;
pub mod index;
pub mod noise;
pub mod recruit;
pub mod report;
pub mod vault;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokumei_vault::access::{Role, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

pub use definition::Definition;
pub use disclosure::{Answer, Policy, Shown};
pub use evaluate::{Counts, Population};

/// Why a count failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum FeasibilityError {
    /// The definition is malformed or refers to something unknown.
    #[error("cohort definition: {0}")]
    Definition(String),
    /// The policy is malformed.
    #[error("disclosure policy: {0}")]
    Policy(String),
    /// A file could not be read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] tokumei_vault::VaultError),
    /// The linked vault could not be read.
    #[error(transparent)]
    Link(#[from] tokumei_link::LinkError),
    /// The user's quota of counts is spent for now.
    #[error("quota: {0}")]
    Quota(String),
    /// The user may not ask this (role, application, scope).
    #[error("refused: {0}")]
    Denied(String),
    /// The review refused (the application is not approved, expired, or does not name the user).
    #[error(transparent)]
    Review(#[from] tokumei_review::ReviewError),
    /// The privacy budget is spent, or its ledger fails its checks.
    #[error("privacy budget: {0}")]
    Budget(String),
    /// The report could not be written.
    #[error(transparent)]
    Write(#[from] tokumei_fs::IoError),
    /// The code index could not be built.
    #[error(transparent)]
    Postings(#[from] tokumei_model::postings::PostingsError),
}

/// Writes the HTML report of an answer (whole or not at all).
pub fn write_report(path: &std::path::Path, a: &CountAnswer) -> Result<(), FeasibilityError> {
    Ok(tokumei_fs::write_atomic(path, report::html(a).as_bytes())?)
}

/// A count as answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountAnswer {
    /// SHA-256 of the normalized definition (what the audit log records).
    pub definition_hash: String,
    /// The definition's name.
    pub name: String,
    /// Whether the answer is the one given before to the same query on the same data.
    #[serde(default)]
    pub cached: bool,
    /// The budget ledger's row this answer was charged to (that of the first answer, when cached).
    #[serde(default)]
    pub ledger_row: i64,
    /// What the user (and the application) may still spend after this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<budget::Balance>,
    /// The figures under the policy.
    #[serde(flatten)]
    pub answer: Answer,
}

/// Counts the persons of the linked vault meeting `def` (those who asked to stop never counted)
/// and answers under `policy`: the answer given before when the same query meets the same data,
/// else a new one within the quotas. Needs a technician; the query (its hash) and the shown total
/// are audited in one entry, as is a refusal.
pub fn count(
    home: &Home,
    s: &Session,
    key: &DataKey,
    def: &Definition,
    policy: &Policy,
    application: Option<&str>,
    counter: &counter::Counter,
) -> Result<CountAnswer, FeasibilityError> {
    s.require(
        home,
        "feasibility.count",
        &[Role::Technician, Role::Researcher],
    )?;
    let object = match application {
        Some(a) => format!("definition sha256 {} under application {a}", def.hash()),
        None => format!("definition sha256 {}", def.hash()),
    };
    let result = allowed(home, s, def, policy, application)
        .and_then(|grant| respond(home, s, key, def, policy, &grant, counter));
    let outcome = match &result {
        Ok(a) if a.cached => format!("cached: total {}", shown_text(&a.answer.total)),
        Ok(a) => format!(
            "answered: total {}; ε {} spent, ledger {}",
            shown_text(&a.answer.total),
            a.answer.epsilon,
            a.ledger_row
        ),
        Err(e) => format!("refused: {e}"),
    };
    s.audit(home, "feasibility.count", &object, &outcome, None)?;
    result
}

/// Under what a count is asked: the application (empty for a technician's own count) and its
/// budget in millionths of ε.
struct Grant {
    application: String,
    budget: i64,
}

/// Who may ask: a technician, on their own or under a feasibility application; a researcher only
/// under an approved, unexpired feasibility application that names them, with the definition's
/// index window inside the application's period. A refusal by the review is audited there.
fn allowed(
    home: &Home,
    s: &Session,
    def: &Definition,
    policy: &Policy,
    application: Option<&str>,
) -> Result<Grant, FeasibilityError> {
    let (grant, scope) = grant(home, s, policy, application)?;
    if let Some(scope) = scope {
        within_period(def, &scope.application)?;
    }
    Ok(grant)
}

/// Refuses a definition whose index window is not inside the application's period.
pub(crate) fn within_period(
    def: &Definition,
    a: &tokumei_review::Application,
) -> Result<(), FeasibilityError> {
    let date = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let inside = match (
        def.index.from,
        def.index.to,
        date(&a.period_from),
        date(&a.period_to),
    ) {
        (Some(f), Some(t), Some(pf), Some(pt)) => pf <= f && t <= pt,
        _ => false,
    };
    if !inside {
        return Err(FeasibilityError::Denied(format!(
            "the index window (index.from, index.to) lies inside the application's period, {} to {}",
            a.period_from, a.period_to
        )));
    }
    Ok(())
}

/// The grant of a session (and the application's scope, when asking under one).
fn grant(
    home: &Home,
    s: &Session,
    policy: &Policy,
    application: Option<&str>,
) -> Result<(Grant, Option<tokumei_review::Scope>), FeasibilityError> {
    let own = budget::micro(policy.epsilon_per_application);
    let Some(id) = application else {
        if s.role == Role::Technician {
            let g = Grant {
                application: String::new(),
                budget: own,
            };
            return Ok((g, None));
        }
        return Err(FeasibilityError::Denied(
            "a researcher asks under an approved feasibility application (--application)".into(),
        ));
    };
    let review = tokumei_review::Review::open(home)?;
    let scope = review.approved_feasibility(s, id, chrono::Utc::now().date_naive())?;
    let asked = scope
        .application
        .feasibility
        .as_ref()
        .and_then(|f| f.epsilon)
        .map(budget::micro);
    let g = Grant {
        application: id.to_string(),
        budget: asked.map_or(own, |x| x.min(own)),
    };
    Ok((g, Some(scope)))
}

fn respond(
    home: &Home,
    s: &Session,
    key: &DataKey,
    def: &Definition,
    policy: &Policy,
    grant: &Grant,
    counter: &counter::Counter,
) -> Result<CountAnswer, FeasibilityError> {
    let catalog = home.catalog()?;
    // The log read once: the data's version and the quotas both count entries of it.
    let mut actions = cache::DATA_ACTIONS.to_vec();
    actions.push("feasibility.count");
    let log = tokumei_audit::entries_of(&home.root.join("audit"), &actions, false)
        .map_err(|e| FeasibilityError::Quota(format!("the audit log cannot be read: {e}")))?;
    let version = cache::data_version(home, &catalog, &log)?;
    let k = cache::key(&version, def, policy);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let limits = budget::Limits::of(policy, &now, grant.budget);
    if let Some(mut a) = cache::get(home, key, &k) {
        a.cached = true;
        let rows = budget::Ledger::open(home, key)?.charges(budget::last_logged(&log))?;
        a.balance = Some(budget::balance(&rows, &s.user, app(grant), policy, &limits));
        return Ok(a);
    }
    within_quota(&log, s, policy)?;
    let rows = budget::Ledger::open(home, key)?.charge(
        &budget::Charge {
            seq: 0,
            at: now,
            user: s.user.clone(),
            application: grant.application.clone(),
            micro_epsilon: budget::micro(policy.epsilon_per_count),
            definition_hash: def.hash(),
        },
        budget::last_logged(&log),
        &limits,
    )?;
    let index = counter.index(home, key, &catalog, &version)?;
    let mut a = CountAnswer {
        definition_hash: def.hash(),
        name: def.name.clone(),
        cached: false,
        ledger_row: rows.last().map_or(0, |c| c.seq),
        balance: None,
        answer: answer(&index, &catalog, def, policy)?,
    };
    cache::put(home, key, &k, &a)?;
    a.balance = Some(budget::balance(&rows, &s.user, app(grant), policy, &limits));
    Ok(a)
}

fn app(grant: &Grant) -> Option<&str> {
    Some(grant.application.as_str()).filter(|a| !a.is_empty())
}

/// What `user` (by default the session's user; another user's only for a technician) has spent of
/// the privacy budget and has left under `policy`, and, given an application the session may ask
/// under, what is left under it; from the ledger checked against the audit log. Audited.
pub fn budget(
    home: &Home,
    s: &Session,
    key: &DataKey,
    policy: &Policy,
    user: Option<&str>,
    application: Option<&str>,
) -> Result<budget::Balance, FeasibilityError> {
    let user = user.unwrap_or(&s.user);
    if user != s.user {
        s.require(home, "feasibility.budget", &[Role::Technician])?;
    }
    let result = grant(home, s, policy, application).and_then(|(g, _)| {
        let log =
            tokumei_audit::entries_of(&home.root.join("audit"), &["feasibility.count"], false)
                .map_err(|e| {
                    FeasibilityError::Budget(format!("the audit log cannot be read: {e}"))
                })?;
        let rows = budget::Ledger::open(home, key)?.charges(budget::last_logged(&log))?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let limits = budget::Limits::of(policy, &now, g.budget);
        Ok(budget::balance(&rows, user, app(&g), policy, &limits))
    });
    let outcome = match &result {
        Ok(b) => format!("ε {} spent, {} left", b.user_spent, b.user_left),
        Err(e) => format!("refused: {e}"),
    };
    s.audit(
        home,
        "feasibility.budget",
        &format!("user {user}"),
        &outcome,
        None,
    )?;
    result
}

/// Refuses a count beyond the policy's quotas: the user's answered counts in the audit log
/// (`log`) within the last minute and the last 7 days (refusals and cached answers do not count).
fn within_quota(
    log: &[tokumei_audit::Entry],
    s: &Session,
    policy: &Policy,
) -> Result<(), FeasibilityError> {
    let now = chrono::Utc::now();
    let ages: Vec<chrono::TimeDelta> = log
        .iter()
        .filter(|e| e.action == "feasibility.count")
        .filter(|e| e.actor == s.user && e.outcome.starts_with("answered"))
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(&e.time).ok())
        .map(|t| now.signed_duration_since(t))
        .collect();
    let within = |d: chrono::TimeDelta| ages.iter().filter(|a| **a < d).count();
    if within(chrono::TimeDelta::minutes(1)) >= policy.max_per_minute as usize {
        return Err(FeasibilityError::Quota(format!(
            "at most {} counts a minute",
            policy.max_per_minute
        )));
    }
    if within(chrono::TimeDelta::days(7)) >= policy.max_per_week as usize {
        return Err(FeasibilityError::Quota(format!(
            "at most {} counts in 7 days",
            policy.max_per_week
        )));
    }
    Ok(())
}

fn answer(
    index: &index::Index,
    catalog: &tokumei_vault::catalog::Catalog,
    def: &Definition,
    policy: &Policy,
) -> Result<Answer, FeasibilityError> {
    let counts = index.count(def);
    let domains = noise::Domains {
        areas: index.population().areas(),
        providers: catalog.providers()?.into_iter().map(|p| p.id).collect(),
    };
    let (noisy, widths) = noise::perturb(&counts, &domains, policy.epsilon_per_count)?;
    Ok(disclosure::apply(policy, &noisy, &widths))
}

/// A shown count in words (`130 (125–134)`, `suppressed`).
pub fn shown_text(s: &Shown) -> String {
    match s {
        Shown::Count { value, range } if range[0] == range[1] => value.to_string(),
        Shown::Count { value, range } => format!("{value} ({}–{})", range[0], range[1]),
        Shown::Suppressed => "suppressed".into(),
    }
}
