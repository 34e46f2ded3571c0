//! What the committee reads before it decides: the meetings, each meeting's docket (the applications
//! open for a decision, or decided at it, with the conflicts declared and the votes cast), and each
//! application's preview — the figures its release would have (cohort, suppression, risk, the
//! re-identification battery, the utility goals), computed by a dry run of the build that a
//! technician prepares and recorded here (counts and shares only, never a record).
//!
//! A researcher sees the applications they submitted or are named in; the other roles see all
//! ([`Review::visible_to`]).

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokumei_vault::access::{Role, Session};

use crate::{db, now, Decision, Outcome, ReleaseKind, Review, ReviewError, Scope, Status, Vote};

/// The previews' table (created with the store).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS previews (
    application_id TEXT NOT NULL,
    prepared_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (application_id, prepared_at)
);
";

/// A meeting of the committee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meeting {
    /// Id (`M-0001`).
    pub id: String,
    /// Date (YYYY-MM-DD).
    pub date: String,
    /// Members recorded present.
    pub present: Vec<String>,
    /// Active members when it was opened.
    pub members: Vec<String>,
    /// Who opened it.
    pub opened_by: String,
}

/// A declared conflict of interest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The member.
    pub member: String,
    /// The reason they gave.
    pub reason: String,
}

/// One application on a meeting's docket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocketItem {
    /// The application and its state.
    pub status: Status,
    /// Conflicts declared at this meeting.
    pub conflicts: Vec<Conflict>,
    /// Votes cast at this meeting, by member.
    pub votes: Vec<(String, Vote)>,
    /// The latest preview of its release, if one was prepared.
    pub preview: Option<Preview>,
}

/// A figure of a preview, with its target where the preset sets one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What it measures (a stable code, e.g. `reid.journalist_max`, `utility.rows_kept`).
    pub name: String,
    /// The figure.
    pub value: f64,
    /// The target, if any.
    pub target: Option<f64>,
    /// Whether the figure meets it (`None` without a target).
    pub met: Option<bool>,
}

/// What a release of an undecided application would look like: a dry run's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// The application.
    pub application_id: String,
    /// The technician who prepared it.
    pub prepared_by: String,
    /// When (UTC).
    pub prepared_at: String,
    /// The preset applied.
    pub preset: String,
    /// Persons in the cohort.
    pub cohort: usize,
    /// Persons left out because they asked to stop.
    pub opted_out: usize,
    /// Persons suppressed to reach k.
    pub suppressed: usize,
    /// Persons that would be released.
    pub persons: usize,
    /// Rows per table.
    pub rows: BTreeMap<String, usize>,
    /// The granularity chosen per quasi-identifier.
    pub transformation: BTreeMap<String, String>,
    /// Risk, re-identification battery and utility figures.
    pub figures: Vec<Figure>,
    /// What would refuse the release.
    pub refusals: Vec<String>,
    /// Warnings on its usefulness.
    pub warnings: Vec<String>,
}

impl Review {
    /// Every meeting, newest first.
    pub fn meetings(&self) -> Result<Vec<Meeting>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, date, present, members, opened_by FROM meetings ORDER BY id DESC")
            .map_err(db)?;
        let list = |t: String| serde_json::from_str::<Vec<String>>(&t).unwrap_or_default();
        let rows = stmt
            .query_map([], |r| {
                Ok(Meeting {
                    id: r.get(0)?,
                    date: r.get(1)?,
                    present: list(r.get(2)?),
                    members: list(r.get(3)?),
                    opened_by: r.get(4)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// A meeting's docket: the applications open for a decision (neither decided nor withdrawn)
    /// and those decided at this meeting, by id.
    pub fn docket(&self, meeting: &str) -> Result<Vec<DocketItem>, ReviewError> {
        self.meeting(meeting)?;
        let mut out = Vec::new();
        for status in self.applications()? {
            let open = status.decision.is_none() && status.withdrawn_at.is_none();
            let here = status
                .decision
                .as_ref()
                .is_some_and(|d| d.meeting_id == meeting);
            if !(open || here) {
                continue;
            }
            out.push(DocketItem {
                conflicts: self.conflicts(meeting, &status.id)?,
                votes: self.votes(meeting, &status.id)?,
                preview: self.preview(&status.id)?,
                status,
            });
        }
        Ok(out)
    }

    fn conflicts(&self, meeting: &str, application: &str) -> Result<Vec<Conflict>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT member, reason FROM conflicts WHERE meeting_id = ?1 AND application_id = ?2
                 ORDER BY member",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![meeting, application], |r| {
                Ok(Conflict {
                    member: r.get(0)?,
                    reason: r.get(1)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn votes(&self, meeting: &str, application: &str) -> Result<Vec<(String, Vote)>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT member, vote FROM votes WHERE meeting_id = ?1 AND application_id = ?2
                 ORDER BY member",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![meeting, application], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (member, vote) = row.map_err(db)?;
            if let Some(v) = Vote::parse(&vote) {
                out.push((member, v));
            }
        }
        Ok(out)
    }

    /// The applications `s` may see: a researcher those they submitted or are named in, the other
    /// roles every one.
    pub fn visible_to(&self, s: &Session) -> Result<Vec<Status>, ReviewError> {
        let all = self.applications()?;
        if s.role != Role::Researcher {
            return Ok(all);
        }
        Ok(all.into_iter().filter(|st| sees(s, st)).collect())
    }

    /// One application, if `s` may see it ([`Review::visible_to`]).
    pub fn status_for(&self, s: &Session, id: &str) -> Result<Option<Status>, ReviewError> {
        Ok(self
            .status(id)?
            .filter(|st| s.role != Role::Researcher || sees(s, st)))
    }

    /// The scope a release of an undecided application would have if every requested item were
    /// approved: the input of a preview (a dry run), never of a release (`proposed` is set and a
    /// build that writes refuses it). Needs a technician; refused (audited) for an application
    /// decided, withdrawn or of kind feasibility.
    pub fn proposed_scope(&self, s: &Session, application: &str) -> Result<Scope, ReviewError> {
        s.require(&self.home, "committee.preview", &[Role::Technician])?;
        let object = format!("application {application}");
        let st = self
            .status(application)?
            .ok_or_else(|| ReviewError::NotFound(object.clone()))?;
        let why = if st.withdrawn_at.is_some() {
            Some("the application was withdrawn")
        } else if st.decision.is_some() {
            Some("the committee has decided on the application")
        } else if st.application.kind == ReleaseKind::Feasibility {
            Some("a feasibility application is answered with counts, never a release")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(self.refuse(s, "committee.preview", &object, why.into()));
        }
        let decision = Decision {
            application_id: application.to_string(),
            meeting_id: String::new(),
            outcome: Outcome::Approve,
            reasons: "preview: every requested item, before the committee's decision".into(),
            conditions: Vec::new(),
            approved_items: st.application.item_names(),
            members: 0,
            eligible: Vec::new(),
            recused: Vec::new(),
            tally: (0, 0, 0),
            recorded_by: s.user.clone(),
            recorded_at: now(),
        };
        Ok(Scope {
            application_id: application.to_string(),
            decision_sha256: decision.sha256(),
            application: st.application,
            decision,
            proposed: true,
        })
    }

    /// Records a preview prepared by a technician (audited with its counts).
    pub fn record_preview(&self, s: &Session, p: &Preview) -> Result<(), ReviewError> {
        s.require(&self.home, "committee.preview", &[Role::Technician])?;
        let body = serde_json::to_string(p).map_err(|e| ReviewError::Db(e.to_string()))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO previews (application_id, prepared_at, body) VALUES (?1, ?2, ?3)",
                params![p.application_id, p.prepared_at, body],
            )
            .map_err(db)?;
        self.audit(
            s,
            "committee.preview",
            &format!(
                "application {}: {} of {} persons, {} refusal(s)",
                p.application_id,
                p.persons,
                p.cohort,
                p.refusals.len()
            ),
            "ok",
        )
    }

    /// The latest preview of an application.
    pub fn preview(&self, application: &str) -> Result<Option<Preview>, ReviewError> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM previews WHERE application_id = ?1
                 ORDER BY prepared_at DESC LIMIT 1",
                params![application],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| ReviewError::Db(e.to_string())))
            .transpose()
    }
}

/// Whether a researcher sees an application: they submitted it or are named to ask counts under it.
fn sees(s: &Session, st: &Status) -> bool {
    st.submitted_by == s.user || st.application.names_user(&s.user)
}
