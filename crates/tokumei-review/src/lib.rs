//! Research applications, the review committee and the provision ledger (RULES §1, §6).
//!
//! An application (what a recipient asks for, checked against the catalogue of releasable items)
//! goes to the committee. The committee has a roster (members with their committee role,
//! affiliation, field and whether they are external), holds meetings with the members present,
//! takes declarations of conflicts of interest (a conflicted member neither votes nor counts for
//! the quorum), takes votes, and records one decision per application — approve, approve with
//! conditions, revise, or reject — with reasons, conditions and the approved items (a subset of
//! those requested). Votes and decisions are immutable once recorded (the database refuses updates
//! and deletes), and the decision's SHA-256 goes into the audit log.
//!
//! [`Review::approved_scope`] is the only way to a release: it returns the approved items of an
//! approved, unexpired, not withdrawn application whose recipient may receive that kind of release.
//! The provision ledger records what was provided to whom, when, under which decision and with
//! which package hash, and the destruction certificate at the contract's end.
//!
//! Everything lives in the operator home (`catalog/review.sqlite`); every step is audited with the
//! user's name and role.

pub mod application;
pub mod docket;

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokumei_vault::access::{Role, Session};
use tokumei_vault::{Home, VaultError};

pub use application::{Application, ImageRequest, ReleaseKind};
pub use docket::{Conflict, DocketItem, Figure, Meeting, Preview};

/// Errors of the review workflow.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// An application, member, vote or decision is not acceptable (the message names the field).
    #[error("invalid: {0}")]
    Invalid(String),
    /// An application file or application is not acceptable: every problem found, each naming its
    /// field.
    #[error("the application has {} problem(s): {}", .0.len(), problem_list(.0))]
    Application(Vec<application::Problem>),
    /// A meeting opened with nobody named present.
    #[error("a meeting names the members present; none were named")]
    NobodyPresent,
    /// Something named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The rules do not allow it (quorum, conflict of interest, state of the application).
    #[error("refused: {0}")]
    Refused(String),
    /// The operator home failed (sessions, audit).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] tokumei_audit::AuditError),
    /// The database failed.
    #[error("review database: {0}")]
    Db(String),
}

fn problem_list(p: &[application::Problem]) -> String {
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn db(e: rusqlite::Error) -> ReviewError {
    ReviewError::Db(e.to_string())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A committee member's field (the committee needs more than one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    /// Medicine and medical research.
    Medical,
    /// Law and ethics.
    LawEthics,
    /// Information security.
    Security,
    /// Citizens and patients.
    Citizen,
}

impl Field {
    /// Code.
    pub fn code(&self) -> &'static str {
        match self {
            Field::Medical => "medical",
            Field::LawEthics => "law-ethics",
            Field::Security => "security",
            Field::Citizen => "citizen",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<Field> {
        [
            Field::Medical,
            Field::LawEthics,
            Field::Security,
            Field::Citizen,
        ]
        .into_iter()
        .find(|f| f.code() == s.trim())
    }
}

/// A member of the committee (a registered user with the committee role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// User name.
    pub user: String,
    /// Name as listed on the roster.
    pub display_name: String,
    /// Chair or member.
    pub chair: bool,
    /// Affiliation.
    pub affiliation: String,
    /// Field.
    pub field: Field,
    /// From outside the operator.
    pub external: bool,
    /// Joined (UTC).
    pub joined_at: String,
    /// Left, if they left.
    pub left_at: Option<String>,
}

/// A vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vote {
    /// For approval.
    Approve,
    /// Against.
    Reject,
    /// Abstains.
    Abstain,
}

impl Vote {
    /// Parses a code.
    pub fn parse(s: &str) -> Option<Vote> {
        match s.trim() {
            "approve" => Some(Vote::Approve),
            "reject" => Some(Vote::Reject),
            "abstain" => Some(Vote::Abstain),
            _ => None,
        }
    }

    /// Code.
    pub fn code(&self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Reject => "reject",
            Vote::Abstain => "abstain",
        }
    }
}

/// The committee's decision on an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Approved as applied for (with the approved items).
    Approve,
    /// Approved under conditions.
    ApproveWithConditions,
    /// To be revised and submitted again.
    Revise,
    /// Rejected.
    Reject,
}

impl Outcome {
    /// Parses a code.
    pub fn parse(s: &str) -> Option<Outcome> {
        match s.trim() {
            "approve" => Some(Outcome::Approve),
            "approve-with-conditions" => Some(Outcome::ApproveWithConditions),
            "revise" => Some(Outcome::Revise),
            "reject" => Some(Outcome::Reject),
            _ => None,
        }
    }

    /// Code.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Approve => "approve",
            Outcome::ApproveWithConditions => "approve-with-conditions",
            Outcome::Revise => "revise",
            Outcome::Reject => "reject",
        }
    }

    /// Whether a release may follow.
    pub fn approves(&self) -> bool {
        matches!(self, Outcome::Approve | Outcome::ApproveWithConditions)
    }
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Application.
    pub application_id: String,
    /// Meeting that decided.
    pub meeting_id: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Reasons.
    pub reasons: String,
    /// Conditions.
    pub conditions: Vec<String>,
    /// Approved items (`table.column`), a subset of those requested; empty unless approved.
    pub approved_items: Vec<String>,
    /// Active members of the committee at the meeting.
    pub members: usize,
    /// Members present and not conflicted.
    pub eligible: Vec<String>,
    /// Members who declared a conflict.
    pub recused: Vec<String>,
    /// Votes for, against and abstaining.
    pub tally: (usize, usize, usize),
    /// Who recorded it.
    pub recorded_by: String,
    /// When (UTC).
    pub recorded_at: String,
}

impl Decision {
    /// SHA-256 of the decision's canonical JSON (recorded in the audit log and the ledger).
    pub fn sha256(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }
}

/// The state of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Id (`A-0001`).
    pub id: String,
    /// The application.
    pub application: Application,
    /// Who submitted it.
    pub submitted_by: String,
    /// When.
    pub submitted_at: String,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<String>,
    /// The decision, if one was recorded.
    pub decision: Option<Decision>,
}

impl Status {
    /// A short name of the state on `day`.
    pub fn state(&self, day: chrono::NaiveDate) -> &'static str {
        if self.withdrawn_at.is_some() {
            return "withdrawn";
        }
        match &self.decision {
            None => "submitted",
            Some(d) if d.outcome.approves() && expired(&self.application, day) => "expired",
            Some(d) => d.outcome.code(),
        }
    }
}

/// Why an application does not stand on `day`: withdrawn, undecided, not approved, or its contract
/// expired (`None` when it stands).
fn decided_refusal(st: &Status, day: chrono::NaiveDate) -> Option<String> {
    match (&st.withdrawn_at, &st.decision) {
        (Some(_), _) => Some("the application was withdrawn".to_string()),
        (None, None) => Some("the committee has not decided on the application".to_string()),
        (None, Some(d)) if !d.outcome.approves() => {
            Some(format!("the committee's decision was {}", d.outcome.code()))
        }
        _ if expired(&st.application, day) => Some(format!(
            "the contract expired on {}",
            st.application.contract_expiry
        )),
        _ => None,
    }
}

fn expired(a: &Application, day: chrono::NaiveDate) -> bool {
    chrono::NaiveDate::parse_from_str(&a.contract_expiry, "%Y-%m-%d").map_or(true, |e| day > e)
}

/// What an approved application allows: the input of a release build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Application id.
    pub application_id: String,
    /// The application.
    pub application: Application,
    /// The decision.
    pub decision: Decision,
    /// SHA-256 of the decision.
    pub decision_sha256: String,
    /// A preview's scope ([`Review::proposed_scope`]): every requested item, before any decision;
    /// only a dry run may use it.
    pub proposed: bool,
}

impl Scope {
    /// Whether `table.column` was approved.
    pub fn allows(&self, item: &str) -> bool {
        self.decision.approved_items.iter().any(|i| i == item)
    }
}

/// A provision recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provision {
    /// Release id.
    pub release_id: String,
    /// Application.
    pub application_id: String,
    /// SHA-256 of the decision it was made under.
    pub decision_sha256: String,
    /// Recipient organisation.
    pub recipient: String,
    /// Release kind.
    pub kind: String,
    /// SHA-256 of the encrypted package delivered.
    pub package_sha256: String,
    /// When (UTC).
    pub provided_at: String,
    /// Contract expiry.
    pub contract_expiry: String,
    /// When the recipient certified destruction, if they did.
    pub destroyed_at: Option<String>,
    /// SHA-256 of the destruction certificate document.
    pub destruction_certificate_sha256: Option<String>,
}

/// The review store of an operator home.
pub struct Review {
    home: Home,
    conn: Connection,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    withdrawn_at TEXT,
    withdrawn_reason TEXT
);
CREATE TABLE IF NOT EXISTS members (
    user TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    chair INTEGER NOT NULL,
    affiliation TEXT NOT NULL,
    field TEXT NOT NULL,
    external INTEGER NOT NULL,
    joined_at TEXT NOT NULL,
    left_at TEXT
);
CREATE TABLE IF NOT EXISTS meetings (
    id TEXT PRIMARY KEY,
    date TEXT NOT NULL,
    present TEXT NOT NULL,
    members TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    meeting_id TEXT NOT NULL,
    application_id TEXT NOT NULL,
    member TEXT NOT NULL,
    reason TEXT NOT NULL,
    declared_at TEXT NOT NULL,
    PRIMARY KEY (meeting_id, application_id, member)
);
CREATE TABLE IF NOT EXISTS votes (
    meeting_id TEXT NOT NULL,
    application_id TEXT NOT NULL,
    member TEXT NOT NULL,
    vote TEXT NOT NULL,
    cast_at TEXT NOT NULL,
    PRIMARY KEY (meeting_id, application_id, member)
);
CREATE TABLE IF NOT EXISTS decisions (
    application_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS provisions (
    release_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    body TEXT NOT NULL,
    destroyed_at TEXT,
    destruction_certificate_sha256 TEXT
);
CREATE TRIGGER IF NOT EXISTS votes_immutable_u BEFORE UPDATE ON votes
    BEGIN SELECT RAISE(ABORT, 'votes are immutable'); END;
CREATE TRIGGER IF NOT EXISTS votes_immutable_d BEFORE DELETE ON votes
    BEGIN SELECT RAISE(ABORT, 'votes are immutable'); END;
CREATE TRIGGER IF NOT EXISTS decisions_immutable_u BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS decisions_immutable_d BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS conflicts_immutable_d BEFORE DELETE ON conflicts
    BEGIN SELECT RAISE(ABORT, 'declarations are immutable'); END;
CREATE TRIGGER IF NOT EXISTS provisions_immutable_d BEFORE DELETE ON provisions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
";

impl Review {
    /// Opens (or creates) the review store of a home.
    pub fn open(home: &Home) -> Result<Review, ReviewError> {
        let conn = Connection::open(home.root.join("catalog/review.sqlite")).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        conn.execute_batch(docket::SCHEMA).map_err(db)?;
        Ok(Review {
            home: home.clone(),
            conn,
        })
    }

    fn audit(
        &self,
        s: &Session,
        action: &str,
        object: &str,
        result: &str,
    ) -> Result<(), ReviewError> {
        Ok(s.audit(&self.home, action, object, result, None)?)
    }

    /// Audits a refusal and returns it.
    fn refuse(&self, s: &Session, action: &str, object: &str, why: String) -> ReviewError {
        match self.audit(s, action, object, &format!("refused: {why}")) {
            Ok(()) => ReviewError::Refused(why),
            Err(e) => e,
        }
    }

    fn next_id(&self, table: &str, prefix: &str) -> Result<String, ReviewError> {
        let n: i64 = self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(db)?;
        Ok(format!("{prefix}-{:04}", n + 1))
    }

    // ---- applications -------------------------------------------------------------------

    /// Submits an application (a researcher or a technician entering it for the applicant).
    pub fn submit(&self, s: &Session, a: &Application) -> Result<String, ReviewError> {
        s.require(
            &self.home,
            "application.submit",
            &[Role::Researcher, Role::Technician],
        )?;
        a.check()?;
        if let Some(r) = &a.revises {
            if self.status(r)?.is_none() {
                return Err(ReviewError::NotFound(format!("application {r}")));
            }
        }
        let id = self.next_id("applications", "A")?;
        let body = serde_json::to_string(a).map_err(|e| ReviewError::Db(e.to_string()))?;
        self.conn
            .execute(
                "INSERT INTO applications (id, body, submitted_by, submitted_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, body, s.user, now()],
            )
            .map_err(db)?;
        self.audit(
            s,
            "application.submit",
            &format!(
                "application {id} ({}, {} items)",
                a.kind.code(),
                a.item_names().len()
            ),
            "ok",
        )?;
        Ok(id)
    }

    /// An application and its state.
    pub fn status(&self, id: &str) -> Result<Option<Status>, ReviewError> {
        let row = self
            .conn
            .query_row(
                "SELECT body, submitted_by, submitted_at, withdrawn_at FROM applications WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(db)?;
        let Some((body, submitted_by, submitted_at, withdrawn_at)) = row else {
            return Ok(None);
        };
        let application: Application =
            serde_json::from_str(&body).map_err(|e| ReviewError::Db(e.to_string()))?;
        Ok(Some(Status {
            id: id.to_string(),
            application,
            submitted_by,
            submitted_at,
            withdrawn_at,
            decision: self.decision(id)?,
        }))
    }

    /// Every application, by id.
    pub fn applications(&self) -> Result<Vec<Status>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM applications ORDER BY id")
            .map_err(db)?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.status(&id)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Withdraws an application (before or after its decision; no release follows).
    pub fn withdraw(&self, s: &Session, id: &str, reason: &str) -> Result<(), ReviewError> {
        s.require(
            &self.home,
            "application.withdraw",
            &[Role::Researcher, Role::Technician],
        )?;
        let st = self
            .status(id)?
            .ok_or_else(|| ReviewError::NotFound(format!("application {id}")))?;
        if st.withdrawn_at.is_some() {
            return Err(ReviewError::Refused(format!(
                "application {id} is already withdrawn"
            )));
        }
        self.conn
            .execute(
                "UPDATE applications SET withdrawn_at = ?2, withdrawn_reason = ?3 WHERE id = ?1",
                params![id, now(), reason],
            )
            .map_err(db)?;
        self.audit(
            s,
            "application.withdraw",
            &format!("application {id}"),
            "ok",
        )
    }

    // ---- committee --------------------------------------------------------------------

    /// Adds a member to the roster (a technician administers it; the member must be a registered
    /// user with the committee role).
    pub fn add_member(&self, s: &Session, m: &Member) -> Result<(), ReviewError> {
        s.require(&self.home, "committee.member.add", &[Role::Technician])?;
        let user = self
            .home
            .catalog()?
            .user(&m.user)?
            .ok_or_else(|| ReviewError::NotFound(format!("user {}", m.user)))?;
        if user.role != Role::Committee || user.revoked_at.is_some() {
            return Err(ReviewError::Invalid(format!(
                "user {} is not an active user with the committee role",
                m.user
            )));
        }
        if m.display_name.trim().is_empty() || m.affiliation.trim().is_empty() {
            return Err(ReviewError::Invalid(
                "a member is listed with a name and an affiliation".into(),
            ));
        }
        if m.chair && self.members()?.iter().any(|x| x.chair) {
            return Err(ReviewError::Refused(
                "the committee already has a chair".into(),
            ));
        }
        self.conn
            .execute(
                "INSERT INTO members (user, display_name, chair, affiliation, field, external, joined_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    m.user,
                    m.display_name,
                    m.chair,
                    m.affiliation,
                    m.field.code(),
                    m.external,
                    now()
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(_, Some(ref t)) if t.contains("UNIQUE") => {
                    ReviewError::Refused(format!("{} is already on the roster", m.user))
                }
                e => db(e),
            })?;
        self.audit(
            s,
            "committee.member.add",
            &format!(
                "member {} ({}{}, {})",
                m.user,
                if m.chair { "chair" } else { "member" },
                if m.external { ", external" } else { "" },
                m.field.code()
            ),
            "ok",
        )
    }

    /// Takes a member off the roster.
    pub fn retire_member(&self, s: &Session, user: &str) -> Result<(), ReviewError> {
        s.require(&self.home, "committee.member.retire", &[Role::Technician])?;
        let n = self
            .conn
            .execute(
                "UPDATE members SET left_at = ?2 WHERE user = ?1 AND left_at IS NULL",
                params![user, now()],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(ReviewError::NotFound(format!("active member {user}")));
        }
        self.audit(
            s,
            "committee.member.retire",
            &format!("member {user}"),
            "ok",
        )
    }

    /// The roster (current and former members).
    pub fn members(&self) -> Result<Vec<Member>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT user, display_name, chair, affiliation, field, external, joined_at, left_at
                 FROM members ORDER BY chair DESC, user",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                let field: String = r.get(4)?;
                Ok(Member {
                    user: r.get(0)?,
                    display_name: r.get(1)?,
                    chair: r.get(2)?,
                    affiliation: r.get(3)?,
                    field: Field::parse(&field).unwrap_or(Field::Medical),
                    external: r.get(5)?,
                    joined_at: r.get(6)?,
                    left_at: r.get(7)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn active_members(&self) -> Result<Vec<Member>, ReviewError> {
        Ok(self
            .members()?
            .into_iter()
            .filter(|m| m.left_at.is_none())
            .collect())
    }

    fn member_session(&self, s: &Session, action: &str) -> Result<Member, ReviewError> {
        s.require(&self.home, action, &[Role::Committee])?;
        self.active_members()?
            .into_iter()
            .find(|m| m.user == s.user)
            .ok_or_else(|| {
                self.refuse(
                    s,
                    action,
                    "committee",
                    format!("{} is not on the committee's roster", s.user),
                )
            })
    }

    /// Opens a meeting with the members present (recorded by a member, usually the chair); a
    /// meeting with nobody named present is refused ([`ReviewError::NobodyPresent`]).
    pub fn open_meeting(
        &self,
        s: &Session,
        date: &str,
        present: &[String],
    ) -> Result<String, ReviewError> {
        self.member_session(s, "committee.meeting")?;
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|_| ReviewError::Invalid("the meeting date is not YYYY-MM-DD".into()))?;
        if present.is_empty() {
            return Err(ReviewError::NobodyPresent);
        }
        let active: Vec<String> = self.active_members()?.into_iter().map(|m| m.user).collect();
        let mut seen = BTreeSet::new();
        for p in present {
            if !active.contains(p) {
                return Err(ReviewError::Invalid(format!("{p} is not an active member")));
            }
            if !seen.insert(p.clone()) {
                return Err(ReviewError::Invalid(format!("{p} is listed twice")));
            }
        }
        let id = self.next_id("meetings", "M")?;
        let j = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO meetings (id, date, present, members, opened_by, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, date, j(present), j(&active), s.user, now()],
            )
            .map_err(db)?;
        self.audit(
            s,
            "committee.meeting",
            &format!(
                "meeting {id} on {date}: {} of {} members present",
                present.len(),
                active.len()
            ),
            "ok",
        )?;
        Ok(id)
    }

    fn meeting(&self, id: &str) -> Result<(Vec<String>, Vec<String>), ReviewError> {
        let (present, members): (String, String) = self
            .conn
            .query_row(
                "SELECT present, members FROM meetings WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?
            .ok_or_else(|| ReviewError::NotFound(format!("meeting {id}")))?;
        let p = |t: &str| serde_json::from_str::<Vec<String>>(t).unwrap_or_default();
        Ok((p(&present), p(&members)))
    }

    fn recused(&self, meeting: &str, application: &str) -> Result<Vec<String>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT member FROM conflicts WHERE meeting_id = ?1 AND application_id = ?2 ORDER BY member",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![meeting, application], |r| r.get(0))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// A member declares a conflict of interest with an application: they neither vote on it nor
    /// count for its quorum.
    pub fn declare_conflict(
        &self,
        s: &Session,
        meeting: &str,
        application: &str,
        reason: &str,
    ) -> Result<(), ReviewError> {
        let m = self.member_session(s, "committee.conflict")?;
        self.meeting(meeting)?;
        self.status(application)?
            .ok_or_else(|| ReviewError::NotFound(format!("application {application}")))?;
        if reason.trim().is_empty() {
            return Err(ReviewError::Invalid(
                "a declaration states its reason".into(),
            ));
        }
        if self.vote_of(meeting, application, &m.user)?.is_some() {
            return Err(self.refuse(
                s,
                "committee.conflict",
                &format!("application {application}"),
                "a conflict is declared before voting".into(),
            ));
        }
        self.conn
            .execute(
                "INSERT OR IGNORE INTO conflicts (meeting_id, application_id, member, reason, declared_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![meeting, application, m.user, reason, now()],
            )
            .map_err(db)?;
        self.audit(
            s,
            "committee.conflict",
            &format!(
                "meeting {meeting}, application {application}: {} recused",
                m.user
            ),
            "ok",
        )
    }

    fn vote_of(
        &self,
        meeting: &str,
        application: &str,
        member: &str,
    ) -> Result<Option<Vote>, ReviewError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT vote FROM votes WHERE meeting_id = ?1 AND application_id = ?2 AND member = ?3",
                params![meeting, application, member],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        Ok(v.and_then(|v| Vote::parse(&v)))
    }

    /// A member present and not conflicted votes on an application (once).
    pub fn vote(
        &self,
        s: &Session,
        meeting: &str,
        application: &str,
        vote: Vote,
    ) -> Result<(), ReviewError> {
        let m = self.member_session(s, "committee.vote")?;
        let object = format!("meeting {meeting}, application {application}");
        let (present, _) = self.meeting(meeting)?;
        let st = self
            .status(application)?
            .ok_or_else(|| ReviewError::NotFound(format!("application {application}")))?;
        if !present.contains(&m.user) {
            return Err(self.refuse(
                s,
                "committee.vote",
                &object,
                format!("{} is not recorded as present at {meeting}", m.user),
            ));
        }
        if self.recused(meeting, application)?.contains(&m.user) {
            return Err(self.refuse(
                s,
                "committee.vote",
                &object,
                format!(
                    "{} declared a conflict of interest with {application} and cannot vote on it",
                    m.user
                ),
            ));
        }
        if st.decision.is_some() || st.withdrawn_at.is_some() {
            return Err(ReviewError::Refused(format!(
                "application {application} is no longer open for votes"
            )));
        }
        if self.vote_of(meeting, application, &m.user)?.is_some() {
            return Err(ReviewError::Refused(format!(
                "{} has already voted on {application}; votes are immutable",
                m.user
            )));
        }
        self.conn
            .execute(
                "INSERT INTO votes (meeting_id, application_id, member, vote, cast_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![meeting, application, m.user, vote.code(), now()],
            )
            .map_err(db)?;
        self.audit(
            s,
            "committee.vote",
            &format!("{object}: {} voted {}", m.user, vote.code()),
            "ok",
        )
    }

    /// Records the committee's decision on an application (by an eligible member; the chair by
    /// custom). Quorum: more than half of the active members present and not conflicted, at least one
    /// of them external. An approval needs more than half of the eligible members voting for it;
    /// conditions go with `approve-with-conditions`, reasons with every decision. `approved_items`
    /// (`table.column`) defaults to every requested item and may only narrow it.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        s: &Session,
        meeting: &str,
        application: &str,
        outcome: Outcome,
        reasons: &str,
        conditions: &[String],
        drop_items: &[String],
    ) -> Result<Decision, ReviewError> {
        let m = self.member_session(s, "committee.decide")?;
        let object = format!("meeting {meeting}, application {application}");
        let (present, members) = self.meeting(meeting)?;
        let st = self.undecided(application)?;
        let recused = self.recused(meeting, application)?;
        let eligible: Vec<String> = present
            .iter()
            .filter(|p| !recused.contains(p))
            .cloned()
            .collect();
        self.check_quorum(s, &object, application, &m.user, &eligible, members.len())?;
        let tally = self.tally(meeting, application, &eligible)?;
        if reasons.trim().is_empty() {
            return Err(ReviewError::Invalid("a decision states its reasons".into()));
        }
        if outcome.approves() {
            self.check_approval(
                s,
                &object,
                &st,
                outcome,
                conditions,
                eligible.len(),
                tally.0,
            )?;
        }
        let approved_items = approved_items(&st, outcome, drop_items)?;
        let decision = Decision {
            application_id: application.to_string(),
            meeting_id: meeting.to_string(),
            outcome,
            reasons: reasons.trim().to_string(),
            conditions: conditions
                .iter()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            approved_items,
            members: members.len(),
            eligible,
            recused,
            tally,
            recorded_by: m.user.clone(),
            recorded_at: now(),
        };
        self.record_decision(s, &object, &decision)?;
        Ok(decision)
    }

    /// The status of an application open for a decision: neither withdrawn nor decided.
    fn undecided(&self, application: &str) -> Result<Status, ReviewError> {
        let st = self
            .status(application)?
            .ok_or_else(|| ReviewError::NotFound(format!("application {application}")))?;
        if st.withdrawn_at.is_some() {
            return Err(ReviewError::Refused(format!(
                "application {application} was withdrawn"
            )));
        }
        if st.decision.is_some() {
            return Err(ReviewError::Refused(format!(
                "application {application} already has a decision; decisions are immutable"
            )));
        }
        Ok(st)
    }

    /// Refuses (audited) unless `user` is eligible and the eligible members make a quorum: more than
    /// half of the `members` active, at least one external.
    fn check_quorum(
        &self,
        s: &Session,
        object: &str,
        application: &str,
        user: &str,
        eligible: &[String],
        members: usize,
    ) -> Result<(), ReviewError> {
        if !eligible.iter().any(|e| e == user) {
            return Err(self.refuse(
                s,
                "committee.decide",
                object,
                format!("{user} is not an eligible member present for {application}"),
            ));
        }
        let roster = self.members()?;
        let external = eligible
            .iter()
            .any(|e| roster.iter().any(|r| &r.user == e && r.external));
        if eligible.len() * 2 <= members || !external {
            return Err(self.refuse(
                s,
                "committee.decide",
                object,
                format!(
                    "no quorum: {} eligible members present of {} (more than half needed, at least one external)",
                    eligible.len(),
                    members
                ),
            ));
        }
        Ok(())
    }

    /// The eligible members' votes: for, against, abstaining (or not voting).
    fn tally(
        &self,
        meeting: &str,
        application: &str,
        eligible: &[String],
    ) -> Result<(usize, usize, usize), ReviewError> {
        let mut tally = (0, 0, 0);
        for e in eligible {
            match self.vote_of(meeting, application, e)? {
                Some(Vote::Approve) => tally.0 += 1,
                Some(Vote::Reject) => tally.1 += 1,
                Some(Vote::Abstain) | None => tally.2 += 1,
            }
        }
        Ok(tally)
    }

    /// What an approval needs: more than half of the eligible members voting for it, the conditions
    /// of `approve-with-conditions`, and a recipient certified on this date.
    #[allow(clippy::too_many_arguments)]
    fn check_approval(
        &self,
        s: &Session,
        object: &str,
        st: &Status,
        outcome: Outcome,
        conditions: &[String],
        eligible: usize,
        approving: usize,
    ) -> Result<(), ReviewError> {
        if approving * 2 <= eligible {
            return Err(self.refuse(
                s,
                "committee.decide",
                object,
                format!(
                    "an approval needs more than half of the {eligible} eligible members voting for it ({approving} did)"
                ),
            ));
        }
        if outcome == Outcome::ApproveWithConditions
            && conditions.iter().all(|c| c.trim().is_empty())
        {
            return Err(ReviewError::Invalid(
                "approve-with-conditions states its conditions".into(),
            ));
        }
        if !st
            .application
            .recipient_eligible_on(chrono::Utc::now().date_naive())
        {
            return Err(self.refuse(
                s,
                "committee.decide",
                object,
                "the recipient is not a certified user on this date; a pseudonymized \
                 release cannot be approved"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Stores the decision with its SHA-256 and audits it.
    fn record_decision(
        &self,
        s: &Session,
        object: &str,
        decision: &Decision,
    ) -> Result<(), ReviewError> {
        let sha = decision.sha256();
        let body = serde_json::to_string(decision).map_err(|e| ReviewError::Db(e.to_string()))?;
        self.conn
            .execute(
                "INSERT INTO decisions (application_id, body, sha256) VALUES (?1, ?2, ?3)",
                params![decision.application_id, body, sha],
            )
            .map_err(db)?;
        let tally = decision.tally;
        self.audit(
            s,
            "committee.decide",
            &format!(
                "{object}: {} ({} for, {} against, {} abstaining; {} recused), decision sha256 {sha}",
                decision.outcome.code(),
                tally.0,
                tally.1,
                tally.2,
                decision.recused.len()
            ),
            "ok",
        )
    }

    /// The decision on an application, if recorded.
    pub fn decision(&self, application: &str) -> Result<Option<Decision>, ReviewError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT body, sha256 FROM decisions WHERE application_id = ?1",
                params![application],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((body, sha)) = row else {
            return Ok(None);
        };
        let d: Decision =
            serde_json::from_str(&body).map_err(|e| ReviewError::Db(e.to_string()))?;
        if d.sha256() != sha {
            return Err(ReviewError::Db(format!(
                "the decision on {application} does not match its recorded hash"
            )));
        }
        Ok(Some(d))
    }

    // ---- the gate to a release ---------------------------------------------------------

    /// What an application allows on `day`: refused unless it was approved (with or without
    /// conditions), is not withdrawn, its contract has not expired and its recipient may receive
    /// that kind of release. The refusal is audited.
    pub fn approved_scope(
        &self,
        s: &Session,
        application: &str,
        day: chrono::NaiveDate,
    ) -> Result<Scope, ReviewError> {
        self.gate(s, "release.scope", application, |a| {
            decided_refusal(a, day)
                .or_else(|| {
                    (!a.application.recipient_eligible_on(day)).then(|| {
                        "the recipient's certification is not valid on this date".to_string()
                    })
                })
                .or_else(|| {
                    (a.application.kind == ReleaseKind::Feasibility).then(|| {
                        "a feasibility application is answered with counts, never a release"
                            .to_string()
                    })
                })
        })
    }

    /// What a feasibility application allows `s` on `day`: refused unless it is of kind
    /// `feasibility`, approved, not withdrawn, not expired, and names the session's user (a
    /// technician may ask under any). The refusal is audited.
    pub fn approved_feasibility(
        &self,
        s: &Session,
        application: &str,
        day: chrono::NaiveDate,
    ) -> Result<Scope, ReviewError> {
        self.gate(s, "feasibility.scope", application, |st| {
            let a = &st.application;
            (a.kind != ReleaseKind::Feasibility)
                .then(|| {
                    format!(
                        "the application is for a {} release, not feasibility counts",
                        a.kind.code()
                    )
                })
                .or_else(|| decided_refusal(st, day))
                .or_else(|| {
                    (s.role != Role::Technician && !a.names_user(&s.user))
                        .then(|| format!("the application does not name user {}", s.user))
                })
        })
    }

    /// The scope of `application`, unless `refusal` gives a reason (then audited under `action`).
    fn gate(
        &self,
        s: &Session,
        action: &str,
        application: &str,
        refusal: impl FnOnce(&Status) -> Option<String>,
    ) -> Result<Scope, ReviewError> {
        let object = format!("application {application}");
        let st = self
            .status(application)?
            .ok_or_else(|| ReviewError::NotFound(object.clone()))?;
        if let Some(why) = refusal(&st) {
            return Err(self.refuse(s, action, &object, why));
        }
        let decision = st.decision.clone().ok_or_else(|| {
            ReviewError::Refused("the committee has not decided on the application".into())
        })?;
        Ok(Scope {
            application_id: application.to_string(),
            decision_sha256: decision.sha256(),
            application: st.application,
            decision,
            proposed: false,
        })
    }

    // ---- provision ledger --------------------------------------------------------------

    /// Records a provision (a release delivered).
    pub fn record_provision(&self, s: &Session, p: &Provision) -> Result<(), ReviewError> {
        s.require(&self.home, "release.provide", &[Role::Technician])?;
        let body = serde_json::to_string(p).map_err(|e| ReviewError::Db(e.to_string()))?;
        self.conn
            .execute(
                "INSERT INTO provisions (release_id, application_id, body) VALUES (?1, ?2, ?3)",
                params![p.release_id, p.application_id, body],
            )
            .map_err(db)?;
        self.audit(
            s,
            "release.provide",
            &format!(
                "release {} under application {} (decision sha256 {}), package sha256 {}",
                p.release_id, p.application_id, p.decision_sha256, p.package_sha256
            ),
            "ok",
        )
    }

    /// Records the recipient's destruction certificate for a release.
    pub fn record_destruction(
        &self,
        s: &Session,
        release_id: &str,
        certificate: &[u8],
    ) -> Result<(), ReviewError> {
        s.require(&self.home, "release.destroyed", &[Role::Technician])?;
        let sha = hex::encode(Sha256::digest(certificate));
        let n = self
            .conn
            .execute(
                "UPDATE provisions SET destroyed_at = ?2, destruction_certificate_sha256 = ?3
                 WHERE release_id = ?1 AND destroyed_at IS NULL",
                params![release_id, now(), sha],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(ReviewError::NotFound(format!(
                "release {release_id} without a recorded destruction"
            )));
        }
        self.audit(
            s,
            "release.destroyed",
            &format!("release {release_id}: certificate sha256 {sha}"),
            "ok",
        )
    }

    /// The ledger, oldest first.
    pub fn provisions(&self) -> Result<Vec<Provision>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT body, destroyed_at, destruction_certificate_sha256 FROM provisions ORDER BY rowid",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (body, destroyed_at, cert) = row.map_err(db)?;
            let mut p: Provision =
                serde_json::from_str(&body).map_err(|e| ReviewError::Db(e.to_string()))?;
            p.destroyed_at = destroyed_at;
            p.destruction_certificate_sha256 = cert;
            out.push(p);
        }
        Ok(out)
    }
}

/// The items an outcome approves: every requested item but those the committee leaves out (each of
/// which must have been requested); none unless it approves, and at least one when it does.
fn approved_items(
    st: &Status,
    outcome: Outcome,
    drop_items: &[String],
) -> Result<Vec<String>, ReviewError> {
    if st.application.kind == ReleaseKind::Feasibility {
        // Counts only: an approval approves no items.
        if let Some(d) = drop_items.first() {
            return Err(ReviewError::Invalid(format!(
                "{d} was not requested: a feasibility application names no items"
            )));
        }
        return Ok(Vec::new());
    }
    let requested = st.application.item_names();
    for d in drop_items {
        if !requested.contains(d) {
            return Err(ReviewError::Invalid(format!(
                "{d} was not requested, so it cannot be left out"
            )));
        }
    }
    let approved_items: Vec<String> = if outcome.approves() {
        requested
            .into_iter()
            .filter(|i| !drop_items.contains(i))
            .collect()
    } else {
        Vec::new()
    };
    if outcome.approves() && approved_items.is_empty() {
        return Err(ReviewError::Invalid(
            "an approval approves at least one item".into(),
        ));
    }
    Ok(approved_items)
}
