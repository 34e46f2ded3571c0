//! `tokumei committee`: the roster, meetings, conflicts of interest, votes and decisions
//! (`tokumei_review::Review`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_review::{Field, Member, Outcome, Vote};
use tokumei_vault::access::Role;

use super::{open, rfail, ANY};
use crate::operator::{render, report, AuthArgs, Failure};
use crate::table::Table;
use crate::EXIT_USAGE;

#[derive(Subcommand)]
pub enum CommitteeCommand {
    /// Put a committee user on the roster (a technician administers the roster).
    AddMember(AddMemberArgs),
    /// Take a member off the roster (a technician).
    RetireMember {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The member's user name.
        #[arg(long)]
        member: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// The roster: current and former members with their role, field and affiliation.
    Roster {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Open a meeting with the members present (a member records it; at least one present).
    Meeting {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Date (YYYY-MM-DD).
        #[arg(long)]
        date: String,
        /// A member present (user name); repeat for each member (`--present a --present b`), or
        /// separate names with commas.
        #[arg(long, value_delimiter = ',', required = true)]
        present: Vec<String>,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Declare one's conflict of interest with an application (before voting).
    Conflict {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Meeting id.
        #[arg(long, value_parser = crate::parse_id)]
        meeting: String,
        /// Application id.
        #[arg(long, value_parser = crate::parse_id)]
        application: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Vote on an application (once; votes are immutable).
    Vote {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Meeting id.
        #[arg(long, value_parser = crate::parse_id)]
        meeting: String,
        /// Application id.
        #[arg(long, value_parser = crate::parse_id)]
        application: String,
        /// The vote.
        #[arg(long, value_parser = ["approve", "reject", "abstain"])]
        vote: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Record the decision on an application (once; decisions are immutable).
    Decide(Box<DecideArgs>),
    /// Prepare the preview of an undecided application for the committee (a technician): a dry
    /// run of its release with every requested item and the kind's preset, whose figures (cohort,
    /// suppression, risk, the re-identification battery, the utility goals) the docket shows;
    /// nothing of a release is written.
    Preview {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Application id.
        #[arg(long, value_parser = crate::parse_id)]
        application: String,
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// A meeting's docket: the applications open for a decision or decided at it, with the
    /// conflicts declared, the votes cast and each one's preview.
    Docket {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Meeting id.
        #[arg(long, value_parser = crate::parse_id)]
        meeting: String,
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

#[derive(clap::Args)]
pub struct AddMemberArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// The member's user name (a user with the committee role).
    #[arg(long)]
    member: String,
    /// Name as listed on the roster.
    #[arg(long)]
    display_name: String,
    /// Affiliation.
    #[arg(long)]
    affiliation: String,
    /// The member's field.
    #[arg(long, value_parser = ["medical", "law-ethics", "security", "citizen"])]
    field: String,
    /// The chair (the committee has one).
    #[arg(long)]
    chair: bool,
    /// From outside the operator (a quorum needs one external member).
    #[arg(long)]
    external: bool,
    #[command(flatten)]
    auth: AuthArgs,
}

#[derive(clap::Args)]
pub struct DecideArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Meeting id.
    #[arg(long, value_parser = crate::parse_id)]
    meeting: String,
    /// Application id.
    #[arg(long, value_parser = crate::parse_id)]
    application: String,
    /// The decision.
    #[arg(long, value_parser = ["approve", "approve-with-conditions", "revise", "reject"])]
    decision: String,
    /// Reasons.
    #[arg(long)]
    reason: String,
    /// A condition (repeatable; approve-with-conditions needs one).
    #[arg(long)]
    condition: Vec<String>,
    /// A requested item (`table.column`) the committee leaves out (repeatable).
    #[arg(long)]
    drop_item: Vec<String>,
    #[command(flatten)]
    auth: AuthArgs,
}

pub fn run_committee(c: CommitteeCommand) -> ExitCode {
    match c {
        CommitteeCommand::AddMember(a) => report(add_member(&a), |()| {
            println!("{} is on the committee's roster", a.member)
        }),
        CommitteeCommand::RetireMember { home, member, auth } => report(
            (|| {
                let (r, s) = open(&home, &auth, "committee.member.retire", &[Role::Technician])?;
                r.retire_member(&s, &member).map_err(rfail)
            })(),
            |()| println!("{member} left the committee"),
        ),
        CommitteeCommand::Roster { home, json, auth } => report(
            (|| {
                let (r, _) = open(&home, &auth, "committee.roster", ANY)?;
                r.members().map_err(rfail)
            })(),
            |members| render(json, &members, |m| roster_table(m).print()),
        ),
        CommitteeCommand::Meeting {
            home,
            date,
            present,
            auth,
        } => report(open_meeting(&home, &date, &present, &auth), |id| {
            println!("meeting {id} opened")
        }),
        CommitteeCommand::Conflict {
            home,
            meeting,
            application,
            reason,
            auth,
        } => report(
            (|| {
                let (r, s) = open(&home, &auth, "committee.conflict", &[Role::Committee])?;
                r.declare_conflict(&s, &meeting, &application, &reason)
                    .map_err(rfail)
            })(),
            |()| println!("conflict declared: you do not vote on {application}"),
        ),
        CommitteeCommand::Vote {
            home,
            meeting,
            application,
            vote,
            auth,
        } => report(
            (|| {
                let v = Vote::parse(&vote).ok_or((
                    EXIT_USAGE,
                    "--vote is approve, reject or abstain".to_string(),
                ))?;
                let (r, s) = open(&home, &auth, "committee.vote", &[Role::Committee])?;
                r.vote(&s, &meeting, &application, v).map_err(rfail)
            })(),
            |()| println!("vote recorded"),
        ),
        CommitteeCommand::Preview {
            home,
            application,
            json,
            auth,
        } => report(preview(&home, &application, &auth), |p| {
            render(json, &p, |p| preview_table(p).print())
        }),
        CommitteeCommand::Docket {
            home,
            meeting,
            json,
            auth,
        } => report(
            (|| {
                let (r, _) = open(&home, &auth, "committee.docket", ANY)?;
                r.docket(&meeting).map_err(rfail)
            })(),
            |items| render(json, &items, |items| docket_table(items).print()),
        ),
        CommitteeCommand::Decide(a) => report(decide(&a), |d| {
            println!(
                "decision on {}: {} (sha256 {})",
                d.application_id,
                d.outcome.code(),
                d.sha256()
            )
        }),
    }
}

/// Puts a committee user on the roster.
fn add_member(a: &AddMemberArgs) -> Result<(), Failure> {
    let field = Field::parse(&a.field).ok_or((
        EXIT_USAGE,
        "--field is medical, law-ethics, security or citizen".to_string(),
    ))?;
    let (r, s) = open(
        &a.home,
        &a.auth,
        "committee.member.add",
        &[Role::Technician],
    )?;
    let m = Member {
        user: a.member.clone(),
        display_name: a.display_name.clone(),
        chair: a.chair,
        affiliation: a.affiliation.clone(),
        field,
        external: a.external,
        joined_at: String::new(),
        left_at: None,
    };
    r.add_member(&s, &m).map_err(rfail)
}

/// Prepares and records an application's preview (a technician, with the home passphrase).
fn preview(
    home: &std::path::Path,
    application: &str,
    auth: &AuthArgs,
) -> Result<tokumei_review::Preview, Failure> {
    let h = tokumei_vault::open(home).map_err(crate::operator::fail)?;
    let s = auth.session(&h, "committee.preview", &[Role::Technician])?;
    let key = h
        .unlock_data_key(&auth.passphrase()?)
        .map_err(crate::operator::fail)?;
    let today = chrono::Utc::now().date_naive();
    tokumei_release::preview::prepare(&h, &s, &key, application, today).map_err(|e| match e {
        tokumei_release::ReleaseError::Review(x) => rfail(x),
        tokumei_release::ReleaseError::Vault(x) => crate::operator::fail(x),
        e => (crate::EXIT_FAILURE, e.to_string()),
    })
}

fn preview_table(p: &tokumei_review::Preview) -> Table {
    let mut t = Table::new(&["figure", "value", "target", "met"]);
    for (name, value) in [
        ("cohort", p.cohort),
        ("opted_out", p.opted_out),
        ("suppressed", p.suppressed),
        ("persons", p.persons),
    ] {
        t.row(&[name, &value.to_string(), "", ""]);
    }
    for f in &p.figures {
        let target = f.target.map(|v| format!("{v:.4}")).unwrap_or_default();
        let met = f.met.map(|m| if m { "yes" } else { "NO" }).unwrap_or("");
        t.row(&[f.name.as_str(), &format!("{:.4}", f.value), &target, met]);
    }
    for r in &p.refusals {
        t.row(&["refusal", r.as_str(), "", ""]);
    }
    t
}

fn docket_table(items: &[tokumei_review::DocketItem]) -> Table {
    let mut t = Table::new(&[
        "application",
        "title",
        "state",
        "conflicts",
        "votes",
        "preview",
    ]);
    let today = chrono::Utc::now().date_naive();
    for i in items {
        let votes: Vec<String> = i
            .votes
            .iter()
            .map(|(m, v)| format!("{m}: {}", v.code()))
            .collect();
        let preview = i.preview.as_ref().map_or("—".to_string(), |p| {
            format!("{} of {} persons", p.persons, p.cohort)
        });
        t.row(&[
            i.status.id.as_str(),
            &i.status.application.title,
            i.status.state(today),
            &i.conflicts.len().to_string(),
            &votes.join(", "),
            &preview,
        ]);
    }
    t
}

/// Records the committee's decision on an application.
fn decide(a: &DecideArgs) -> Result<tokumei_review::Decision, Failure> {
    let o = Outcome::parse(&a.decision).ok_or((
        EXIT_USAGE,
        "--decision is approve, approve-with-conditions, revise or reject".to_string(),
    ))?;
    let (r, s) = open(&a.home, &a.auth, "committee.decide", &[Role::Committee])?;
    r.decide(
        &s,
        &a.meeting,
        &a.application,
        o,
        &a.reason,
        &a.condition,
        &a.drop_item,
    )
    .map_err(rfail)
}

/// Opens a meeting with the members named present (names trimmed, empty ones dropped; nobody
/// present is a usage error).
fn open_meeting(
    home: &std::path::Path,
    date: &str,
    present: &[String],
    auth: &AuthArgs,
) -> Result<String, Failure> {
    let present: Vec<String> = present
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if present.is_empty() {
        return Err((
            EXIT_USAGE,
            "--present names at least one member present".to_string(),
        ));
    }
    let (r, s) = open(home, auth, "committee.meeting", &[Role::Committee])?;
    r.open_meeting(&s, date, &present).map_err(rfail)
}

fn roster_table(members: &[Member]) -> Table {
    let mut t = Table::new(&[
        "user",
        "name",
        "role",
        "field",
        "from",
        "affiliation",
        "left",
    ]);
    for m in members {
        t.row(&[
            m.user.as_str(),
            &m.display_name,
            if m.chair { "chair" } else { "member" },
            m.field.code(),
            if m.external { "external" } else { "internal" },
            &m.affiliation,
            m.left_at.as_deref().unwrap_or("-"),
        ]);
    }
    t
}
