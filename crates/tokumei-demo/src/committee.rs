//! Step 5: a research application and the committee's decision (`tokumei_review`): three
//! synthetic committee members and a researcher registered, the recipient's age key made beside the
//! demo, the application submitted, a meeting, three votes and an approval with conditions.

use std::path::Path;

use tokumei_review::{Application, Decision, Field, Member, Outcome, Review, Vote};
use tokumei_vault::access::{self, Role, Session, User};
use tokumei_vault::Home;

use crate::site::Site;
use crate::{DemoError, Event, Observer, Step};

/// What step 5 decided.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The application.
    pub application_id: String,
    /// The meeting that decided.
    pub meeting_id: String,
    /// The decision.
    pub decision: Decision,
}

/// The application of the demo, for the recipient `recipient` (age1…).
fn application_toml(recipient: &str) -> String {
    format!(
        r#"title = "糖尿病・高血圧の処方実態 / Prescribing in diabetes and hypertension (synthetic demo)"
kind = "anonymized"
purpose = "Describe first-line prescribing for diabetes and hypertension"
period_from = "2021-04-01"
period_to = "2024-03-31"
contract_expiry = "2099-03-31"
recipient_key = "{recipient}"
security_plan = "Isolated analysis workstation; destruction at the contract's end"

[applicant]
organisation = "架空大学 医学部 (synthetic)"
certification = "none"
responsible_researcher = "研究 責任者 (synthetic)"

[cohort]
icd10 = ["E11", "E14", "I10"]
age_min = 40

[[items]]
table = "persons"
columns = ["sex", "birth_year_month", "municipality"]

[[items]]
table = "diagnoses"
columns = ["icd10", "date"]

[[items]]
table = "prescriptions"
columns = ["code", "date", "days"]

[[items]]
table = "images"
columns = ["modality", "body_part", "study_date", "file"]

# Chest and abdomen radiographs and CT only: no head images, whose pixels may show a face.
[images]
modalities = ["CR", "CT"]
body_parts = ["CHEST", "ABDOMEN"]
"#
    )
}

/// A synthetic committee member or researcher of the demo, with a key under the demo's
/// passphrase in the home's `keys/users/`; returns their session.
pub(crate) fn demo_user(
    home: &Home,
    (name, role, provider): (&str, Role, Option<&str>),
    pass: &str,
) -> Result<Session, DemoError> {
    let (wrapped, public) = access::new_user_key(pass, None)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    home.catalog()?.add_user(&User {
        name: name.into(),
        role,
        provider_id: provider.map(str::to_string),
        public_key: public,
        requested_by: "demo".into(),
        approved_by: "demo".into(),
        granted_at: now.clone(),
        reviewed_at: now,
        revoked_at: None,
    })?;
    let path = home.root.join(format!("keys/users/{name}.key"));
    tokumei_vault::home::write_secret(&path, &wrapped)?;
    Ok(access::authenticate(
        home,
        &access::open_user_key(&path, pass)?,
    )?)
}

/// The committee of the demo and the researcher who applies.
struct People {
    /// The chair, an external member and a member, on the roster in that order.
    members: [Session; 3],
    researcher: Session,
}

/// Registers the committee's members (put on the roster) and a researcher.
fn committee(site: &Site, review: &Review) -> Result<People, DemoError> {
    let user = |name: &str, role: Role| demo_user(&site.home, (name, role, None), &site.passphrase);
    let members = [
        user("chair", Role::Committee)?,
        user("external", Role::Committee)?,
        user("member", Role::Committee)?,
    ];
    let researcher = user("researcher", Role::Researcher)?;
    let fields = [Field::Medical, Field::LawEthics, Field::Citizen];
    for (i, (m, field)) in members.iter().zip(fields).enumerate() {
        let member = Member {
            user: m.user.clone(),
            display_name: format!("委員 {} (synthetic)", m.user),
            chair: i == 0,
            affiliation: "架空大学 (synthetic)".into(),
            field,
            external: i == 1,
            joined_at: String::new(),
            left_at: None,
        };
        review.add_member(&site.session, &member)?;
    }
    Ok(People {
        members,
        researcher,
    })
}

/// The recipient: a research institution's age key, made here; its identity is kept beside the
/// demo (`DIR/recipient.identity`, owner-only) so the package can be opened. Returns the recipient.
fn recipient_key(dir: &Path) -> Result<String, DemoError> {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let path = dir.join("recipient.identity");
    let _ = std::fs::remove_file(&path);
    tokumei_vault::home::write_secret(
        &path,
        format!("{}\n", identity.to_string().expose_secret()).as_bytes(),
    )?;
    Ok(identity.to_public().to_string())
}

/// Step 5 as a whole: the application submitted, then approved with a condition at a meeting of
/// the three members, who all vote for it.
pub fn approve(site: &Site, dir: &Path, on: &Observer<'_>) -> Result<Decided, DemoError> {
    on(Event::Begin(Step::Review));
    let review = Review::open(&site.home)?;
    let People {
        members,
        researcher,
    } = committee(site, &review)?;
    let [chair, ..] = &members;
    let application = Application::from_toml(&application_toml(&recipient_key(dir)?))?;
    let application_id = review.submit(&researcher, &application)?;
    let present: Vec<String> = members.iter().map(|m| m.user.clone()).collect();
    let today = chrono::Utc::now().date_naive().to_string();
    let meeting_id = review.open_meeting(chair, &today, &present)?;
    for m in &members {
        review.vote(m, &meeting_id, &application_id, Vote::Approve)?;
    }
    let decision = review.decide(
        chair,
        &meeting_id,
        &application_id,
        Outcome::ApproveWithConditions,
        "医学研究に資する / serves medical research",
        &["公表前に事務局の確認を受ける / results are checked before publication".into()],
        &[],
    )?;
    let decided = Decided {
        application_id,
        meeting_id,
        decision,
    };
    on(Event::Decided(&decided));
    Ok(decided)
}
