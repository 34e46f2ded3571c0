//! The review workflow on a real operator home: applications, roster, meetings, conflicts, votes,
//! decisions, the gate to a release and the provision ledger.

use tokumei_review::application::Application;
use tokumei_review::{Field, Member, Outcome, Provision, Review, ReviewError, Vote};
use tokumei_vault::access::{self, Role, Session, User};
use tokumei_vault::Home;

const PASS: &str = "correct horse battery staple";

const APPLICATION: &str = r#"
title = "2型糖尿病の処方実態 / Prescribing in type 2 diabetes"
kind = "anonymized"
purpose = "Describe first-line prescribing for type 2 diabetes"
period_from = "2021-04-01"
period_to = "2024-03-31"
contract_expiry = "2099-03-31"
recipient_key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
security_plan = "Analysis on an isolated workstation; destruction at contract end"

[applicant]
organisation = "架空大学 医学部"
certification = "none"
responsible_researcher = "研究 責任者"

[cohort]
icd10 = ["E11"]

[[items]]
table = "persons"
columns = ["sex", "birth_year_month", "municipality"]

[[items]]
table = "prescriptions"
columns = ["code", "date"]
"#;

struct Setup {
    _dir: tempfile::TempDir,
    home: Home,
    tech: Session,
    researcher: Session,
    members: Vec<Session>,
}

fn user(home: &Home, name: &str, role: Role) -> Session {
    let (wrapped, public) = access::new_user_key(PASS, Some(2)).expect("key");
    home.catalog()
        .expect("catalog")
        .add_user(&User {
            name: name.into(),
            role,
            provider_id: None,
            public_key: public,
            requested_by: "総務部".into(),
            approved_by: "部長".into(),
            granted_at: "2026-01-01T00:00:00Z".into(),
            reviewed_at: "2026-01-01T00:00:00Z".into(),
            revoked_at: None,
        })
        .expect("user");
    let path = home.root.join(format!("{name}.key"));
    std::fs::write(&path, wrapped).expect("write");
    access::authenticate(home, &access::open_user_key(&path, PASS).expect("open")).expect("session")
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tokumei_vault::home::init(&dir.path().join("home"), PASS, Some(2))
        .expect("init")
        .home;
    let tech = access::authenticate(
        &home,
        &access::open_user_key(&home.default_user_key().expect("default"), PASS).expect("key"),
    )
    .expect("session");
    let researcher = user(&home, "researcher", Role::Researcher);
    let members: Vec<Session> = ["chair", "m2", "m3", "m4"]
        .iter()
        .map(|n| user(&home, n, Role::Committee))
        .collect();
    let review = Review::open(&home).expect("review");
    for (i, m) in members.iter().enumerate() {
        review
            .add_member(
                &tech,
                &Member {
                    user: m.user.clone(),
                    display_name: format!("委員 {i}"),
                    chair: i == 0,
                    affiliation: "架空大学".into(),
                    field: [
                        Field::Medical,
                        Field::LawEthics,
                        Field::Citizen,
                        Field::Security,
                    ][i],
                    external: i == 1 || i == 2,
                    joined_at: String::new(),
                    left_at: None,
                },
            )
            .expect("member");
    }
    Setup {
        _dir: dir,
        home,
        tech,
        researcher,
        members,
    }
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn all(s: &Setup) -> Vec<String> {
    s.members.iter().map(|m| m.user.clone()).collect()
}

#[test]
fn an_application_goes_through_conflict_quorum_votes_and_decision_to_a_scope() {
    let s = setup();
    let r = Review::open(&s.home).expect("review");
    let app = Application::from_toml(APPLICATION).expect("application");
    let id = r.submit(&s.researcher, &app).expect("submit");
    assert_eq!(id, "A-0001");
    // Nothing is released before a decision.
    assert!(matches!(
        r.approved_scope(&s.tech, &id, today()),
        Err(ReviewError::Refused(_))
    ));
    // A member who is not a committee user cannot act; a researcher cannot vote.
    assert!(r
        .open_meeting(&s.researcher, "2026-05-01", &all(&s))
        .is_err());

    a_meeting_without_quorum_decides_nothing(&s, &r, &id);
    a_meeting_with_quorum_decides_once(&s, &r, &id);
    let scope = r.approved_scope(&s.tech, &id, today()).expect("scope");
    assert!(scope.allows("persons.sex"));
    assert!(scope.allows("prescriptions.code"));
    assert!(
        !scope.allows("persons.municipality"),
        "left out by the committee"
    );
    assert!(!scope.allows("diagnoses.icd10"), "never requested");
    // After the contract's expiry, no scope.
    let late = chrono::NaiveDate::from_ymd_opt(2099, 4, 1).expect("date");
    assert!(r.approved_scope(&s.tech, &id, late).is_err());

    the_ledger_records_provision_and_destruction(&s, &r, &app, &id, &scope.decision_sha256);
    everything_was_audited(&s);
}

/// Meeting 1: three present, m2 (external) conflicted: two eligible of four, no quorum.
fn a_meeting_without_quorum_decides_nothing(s: &Setup, r: &Review, id: &str) {
    let (chair, m2, m3, m4) = (&s.members[0], &s.members[1], &s.members[2], &s.members[3]);
    let present: Vec<String> = vec![chair.user.clone(), m2.user.clone(), m4.user.clone()];
    let m1 = r
        .open_meeting(chair, "2026-05-01", &present)
        .expect("meeting");
    r.declare_conflict(m2, &m1, id, "共同研究者 / co-investigator")
        .expect("conflict");
    let e = r.vote(m2, &m1, id, Vote::Approve).expect_err("conflicted");
    assert!(e.to_string().contains("conflict"), "{e}");
    let e = r.vote(m3, &m1, id, Vote::Approve).expect_err("absent");
    assert!(e.to_string().contains("present"), "{e}");
    r.vote(chair, &m1, id, Vote::Approve).expect("vote");
    r.vote(m4, &m1, id, Vote::Approve).expect("vote");
    assert!(r.vote(m4, &m1, id, Vote::Reject).is_err(), "votes once");
    let e = r
        .decide(chair, &m1, id, Outcome::Approve, "useful", &[], &[])
        .expect_err("no quorum");
    assert!(e.to_string().contains("quorum"), "{e}");
}

/// Meeting 2: everybody present, m2 conflicted again: three eligible of four, m3 external. The
/// decision needs a majority and its conditions, then is recorded for good.
fn a_meeting_with_quorum_decides_once(s: &Setup, r: &Review, id: &str) {
    let (chair, m2, m3, m4) = (&s.members[0], &s.members[1], &s.members[2], &s.members[3]);
    let m2_meeting = r
        .open_meeting(chair, "2026-06-01", &all(s))
        .expect("meeting");
    r.declare_conflict(m2, &m2_meeting, id, "共同研究者 / co-investigator")
        .expect("conflict");
    r.vote(chair, &m2_meeting, id, Vote::Approve).expect("vote");
    r.vote(m3, &m2_meeting, id, Vote::Reject).expect("vote");
    // One of three for: no approval.
    let e = r
        .decide(chair, &m2_meeting, id, Outcome::Approve, "useful", &[], &[])
        .expect_err("no majority");
    assert!(e.to_string().contains("more than half"), "{e}");
    r.vote(m4, &m2_meeting, id, Vote::Approve).expect("vote");
    let e = r
        .decide(
            chair,
            &m2_meeting,
            id,
            Outcome::ApproveWithConditions,
            "ok",
            &[],
            &[],
        )
        .expect_err("conditions");
    assert!(e.to_string().contains("conditions"), "{e}");
    let d = r
        .decide(
            chair,
            &m2_meeting,
            id,
            Outcome::ApproveWithConditions,
            "医学研究に資する / serves medical research",
            &["市区町村は二次医療圏に一般化 / municipality generalized to medical area".into()],
            &["persons.municipality".into()],
        )
        .expect("decision");
    assert_eq!(d.tally, (2, 1, 0));
    assert_eq!(d.recused, vec![m2.user.clone()]);
    assert!(!d
        .approved_items
        .contains(&"persons.municipality".to_string()));
    // Decisions are immutable.
    assert!(r
        .decide(chair, &m2_meeting, id, Outcome::Reject, "again", &[], &[])
        .is_err());
    let conn = rusqlite::Connection::open(s.home.root.join("catalog/review.sqlite")).expect("db");
    assert!(conn.execute("UPDATE decisions SET body = 'x'", []).is_err());
    assert!(conn.execute("DELETE FROM votes", []).is_err());
}

/// The ledger: a provision under the decision, then its destruction, recorded once.
fn the_ledger_records_provision_and_destruction(
    s: &Setup,
    r: &Review,
    app: &Application,
    id: &str,
    decision_sha256: &str,
) {
    r.record_provision(
        &s.tech,
        &Provision {
            release_id: "R-0001".into(),
            application_id: id.to_string(),
            decision_sha256: decision_sha256.to_string(),
            recipient: app.applicant.organisation.clone(),
            kind: "anonymized".into(),
            package_sha256: "00".repeat(32),
            provided_at: "2026-07-01T00:00:00Z".into(),
            contract_expiry: app.contract_expiry.clone(),
            destroyed_at: None,
            destruction_certificate_sha256: None,
        },
    )
    .expect("provision");
    r.record_destruction(&s.tech, "R-0001", b"certificate of destruction")
        .expect("destroyed");
    assert!(r.record_destruction(&s.tech, "R-0001", b"again").is_err());
    let ledger = r.provisions().expect("ledger");
    assert_eq!(ledger.len(), 1);
    assert!(ledger[0].destroyed_at.is_some());
}

/// Everything was audited, and the log verifies.
fn everything_was_audited(s: &Setup) {
    let v = tokumei_audit::verify(
        &s.home.audit_dir(),
        &s.home.audit_public_key().expect("pub"),
    )
    .expect("verify");
    assert!(v.entries > 15);
    let log = std::fs::read_to_string(s.home.audit_dir().join("entries.jsonl")).expect("log");
    for action in [
        "application.submit",
        "committee.member.add",
        "committee.meeting",
        "committee.conflict",
        "committee.vote",
        "committee.decide",
        "release.provide",
        "release.destroyed",
    ] {
        assert!(log.contains(action), "{action}");
    }
}

#[test]
fn rejected_withdrawn_and_revised_applications_yield_no_scope() {
    let s = setup();
    let r = Review::open(&s.home).expect("review");
    let app = Application::from_toml(APPLICATION).expect("application");
    let chair = &s.members[0];
    let rejected = r.submit(&s.researcher, &app).expect("submit");
    let revised = r.submit(&s.researcher, &app).expect("submit");
    let withdrawn = r.submit(&s.researcher, &app).expect("submit");
    let approved_then_withdrawn = r.submit(&s.researcher, &app).expect("submit");
    let meeting = r
        .open_meeting(chair, "2026-05-01", &all(&s))
        .expect("meeting");
    r.decide(
        chair,
        &meeting,
        &rejected,
        Outcome::Reject,
        "目的が不明確",
        &[],
        &[],
    )
    .expect("reject");
    r.decide(
        chair,
        &meeting,
        &revised,
        Outcome::Revise,
        "項目を減らすこと",
        &[],
        &[],
    )
    .expect("revise");
    r.withdraw(&s.researcher, &withdrawn, "no longer needed")
        .expect("withdraw");
    assert!(r.vote(chair, &meeting, &withdrawn, Vote::Approve).is_err());
    for m in &s.members {
        r.vote(m, &meeting, &approved_then_withdrawn, Vote::Approve)
            .expect("vote");
    }
    r.decide(
        chair,
        &meeting,
        &approved_then_withdrawn,
        Outcome::Approve,
        "ok",
        &[],
        &[],
    )
    .expect("approve");
    r.withdraw(&s.researcher, &approved_then_withdrawn, "study stopped")
        .expect("withdraw");
    for id in [&rejected, &revised, &withdrawn, &approved_then_withdrawn] {
        let e = r
            .approved_scope(&s.tech, id, today())
            .expect_err("no scope");
        assert!(matches!(e, ReviewError::Refused(_)), "{id}: {e}");
    }
    let states: Vec<&str> = r
        .applications()
        .expect("list")
        .iter()
        .map(|a| a.state(today()))
        .collect();
    assert_eq!(states, vec!["reject", "revise", "withdrawn", "withdrawn"]);
}

#[test]
fn a_pseudonymized_release_needs_a_currently_certified_recipient() {
    let s = setup();
    let r = Review::open(&s.home).expect("review");
    let text = APPLICATION
        .replace("kind = \"anonymized\"", "kind = \"pseudonymized\"")
        .replace(
            "certification = \"none\"",
            "certification = \"pseudo-user\"\ncertification_id = \"PU-0001\"\ncertification_valid_until = \"2020-03-31\"",
        );
    let app = Application::from_toml(&text).expect("application");
    let id = r.submit(&s.researcher, &app).expect("submit");
    let chair = &s.members[0];
    let meeting = r
        .open_meeting(chair, "2026-05-01", &all(&s))
        .expect("meeting");
    for m in &s.members {
        r.vote(m, &meeting, &id, Vote::Approve).expect("vote");
    }
    let e = r
        .decide(chair, &meeting, &id, Outcome::Approve, "ok", &[], &[])
        .expect_err("lapsed certification");
    assert!(e.to_string().contains("certified user"), "{e}");
}

#[test]
fn the_roster_accepts_committee_users_only_and_one_chair() {
    let s = setup();
    let r = Review::open(&s.home).expect("review");
    let m = |user: &str, chair: bool| Member {
        user: user.into(),
        display_name: "x".into(),
        chair,
        affiliation: "y".into(),
        field: Field::Medical,
        external: false,
        joined_at: String::new(),
        left_at: None,
    };
    assert!(r.add_member(&s.tech, &m("researcher", false)).is_err());
    let extra = user(&s.home, "m5", Role::Committee);
    assert!(
        r.add_member(&s.tech, &m(&extra.user, true)).is_err(),
        "one chair"
    );
    r.add_member(&s.tech, &m(&extra.user, false))
        .expect("member");
    assert!(
        r.add_member(&s.members[0], &m("m6", false)).is_err(),
        "a technician administers the roster"
    );
    r.retire_member(&s.tech, &extra.user).expect("retire");
    assert_eq!(r.members().expect("roster").len(), 5);
}

#[test]
fn a_meeting_with_nobody_present_is_refused_and_quorum_is_unchanged() {
    let s = setup();
    let r = Review::open(&s.home).expect("review");
    let chair = &s.members[0];
    let e = r
        .open_meeting(chair, "2026-05-01", &[])
        .expect_err("nobody present");
    assert!(matches!(e, ReviewError::NobodyPresent), "{e}");
    // Nothing was recorded: the next meeting is still the first.
    let id = r
        .submit(
            &s.researcher,
            &Application::from_toml(APPLICATION).expect("application"),
        )
        .expect("submit");
    let m = r
        .open_meeting(chair, "2026-05-01", std::slice::from_ref(&chair.user))
        .expect("meeting");
    assert_eq!(m, "M-0001");
    // One of four present is no quorum, as before.
    r.vote(chair, &m, &id, Vote::Approve).expect("vote");
    let e = r
        .decide(chair, &m, &id, Outcome::Approve, "useful", &[], &[])
        .expect_err("no quorum");
    assert!(e.to_string().contains("quorum"), "{e}");
}
