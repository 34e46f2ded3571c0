//! The committee on the web: meetings (opened with the members present), each meeting's docket
//! (`Review::docket`: every application open for a decision with its preview, the conflicts
//! declared and the votes cast), and the forms a member uses — declare a conflict, vote, record
//! the decision. A technician prepares an application's preview (a dry run of its release,
//! `tokumei_release::preview::prepare`) in the background; the page says while it runs. Every
//! rule (roster, presence, conflicts, quorum, immutability) is the review store's; a refusal is
//! shown on the docket with the store's reason.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use tokumei_review::{Decision, DocketItem, Meeting, Member, Outcome, Preview, Review};
use tokumei_review::{ReviewError, Vote};
use tokumei_vault::access::{Role, Session};

use crate::applications::see_other;
use crate::forms::Fields;
use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page, read, AppState, LangQuery};
use crate::session::WebSession;
use crate::WebError;

/// Who may read the committee's pages.
pub const READERS: &[Role] = &[Role::Committee, Role::Technician, Role::Auditor];

/// Previews and builds being made, by key, and why the last one of each failed.
#[derive(Default)]
pub struct Jobs {
    running: Mutex<HashSet<String>>,
    failed: Mutex<HashMap<String, String>>,
}

impl Jobs {
    /// Marks a preview started; false when one already runs.
    fn start(&self, id: &str) -> bool {
        if let Ok(mut f) = self.failed.lock() {
            f.remove(id);
        }
        self.running
            .lock()
            .is_ok_and(|mut j| j.insert(id.to_string()))
    }

    fn finish(&self, id: &str, failure: Option<String>) {
        if let (Some(why), Ok(mut f)) = (failure, self.failed.lock()) {
            f.insert(id.to_string(), why);
        }
        if let Ok(mut j) = self.running.lock() {
            j.remove(id);
        }
    }

    /// Runs `work` off the async workers under `key`, unless a job of that key runs already; its
    /// failure is kept for the page to show.
    pub(crate) fn run<E: std::fmt::Display>(
        self: &std::sync::Arc<Self>,
        key: String,
        work: impl FnOnce() -> Result<(), E> + Send + 'static,
    ) {
        if !self.start(&key) {
            return;
        }
        let jobs = self.clone();
        tokio::task::spawn_blocking(move || {
            let failure = work().err().map(|e| e.to_string());
            jobs.finish(&key, failure);
        });
    }

    /// Whether a preview of `id` is being prepared.
    pub fn running(&self, id: &str) -> bool {
        self.running.lock().is_ok_and(|j| j.contains(id))
    }

    /// Why the last preview of `id` failed, if it did.
    pub fn failure(&self, id: &str) -> Option<String> {
        self.failed.lock().ok()?.get(id).cloned()
    }
}

/// `GET /committee`: the meetings, the roster, and (for a member) the form to open a meeting.
pub async fn meetings(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let found = read(&st.home, |h| {
        let r = Review::open(h)?;
        Ok::<_, ReviewError>((r.meetings()?, r.members()?))
    });
    match found.await {
        Ok((m, roster)) => page(StatusCode::OK, meetings_page(lang, &ws, &m, &roster, None)),
        Err(e) => failed(lang, &e),
    }
}

fn meetings_page(
    lang: Lang,
    ws: &WebSession,
    meetings: &[Meeting],
    roster: &[Member],
    note: Option<String>,
) -> Markup {
    let active: Vec<&Member> = roster.iter().filter(|m| m.left_at.is_none()).collect();
    let content = html! {
        @if let Some(n) = note { p.note { (n) } }
        table {
            tr { th { (lang.t("meeting")) } th { (lang.t("date")) } th { (lang.t("present")) } }
            @for m in meetings {
                tr {
                    td { a href=(format!("/committee/{}", m.id)) { (m.id) } }
                    td { (m.date) } td { (m.present.len()) " / " (m.members.len()) }
                }
            }
        }
        h2 { (lang.t("roster")) }
        table {
            tr { th { (lang.t("user_name")) } th { (lang.t("member_name")) } th { (lang.t("organisation")) } th { (lang.t("role")) } }
            @for m in &active {
                tr {
                    td { (m.user) } td { (m.display_name) } td { (m.affiliation) }
                    td { (if m.chair { lang.t("chair") } else { lang.t("member") }) (if m.external { lang.t("external") } else { String::new() }) }
                }
            }
        }
        @if ws.session.role == Role::Committee {
            h2 { (lang.t("meeting_open")) }
            form method="post" action="/committee" {
                input type="hidden" name="csrf" value=(ws.csrf);
                p { label { (lang.t("date")) br; input type="date" name="date" required; } }
                p { (lang.t("present")) br;
                    @for m in &active {
                        label { input type="checkbox" name="present" value=(m.user); " " (m.display_name) } " "
                    }
                }
                p { button type="submit" { (lang.t("meeting_open")) } }
            }
        }
    };
    layout(lang, "/committee", &lang.t("page_committee"), content)
}

/// `POST /committee`: a member opens a meeting with the members present.
pub async fn open_meeting(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let s = ws.session.clone();
    let opened = read(&st.home, move |h| {
        let r = Review::open(h)?;
        let id = r.open_meeting(&s, &f.one("date"), &f.all("present"));
        Ok::<_, ReviewError>((id, r.meetings()?, r.members()?))
    });
    match opened.await {
        Ok((Ok(id), _, _)) => see_other(&format!("/committee/{id}")),
        Ok((Err(e), m, roster)) => match refusal(&e) {
            Some(status) => page(
                status,
                meetings_page(lang, &ws, &m, &roster, Some(e.to_string())),
            ),
            None => failed(lang, &WebError::Review(e)),
        },
        Err(e) => failed(lang, &e),
    }
}

/// The status a refusal of the review store is answered with (`None`: a failure, not a refusal).
fn refusal(e: &ReviewError) -> Option<StatusCode> {
    match e {
        ReviewError::Invalid(_) | ReviewError::NobodyPresent | ReviewError::Application(_) => {
            Some(StatusCode::BAD_REQUEST)
        }
        ReviewError::Refused(_) | ReviewError::Vault(tokumei_vault::VaultError::Denied(_)) => {
            Some(StatusCode::FORBIDDEN)
        }
        ReviewError::NotFound(_) => Some(StatusCode::NOT_FOUND),
        _ => None,
    }
}

/// `GET /committee/{meeting}`: the docket.
pub async fn docket(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(meeting): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    act(&st, &ws, lang, meeting, None).await
}

/// What a member does on the docket.
type Action = fn(&Review, &Session, &str, &Fields) -> Result<(), ReviewError>;

/// Runs `action` (if any) at `meeting`, then shows the docket: after an action done, a 303 to it;
/// after a refusal, the docket with the store's reason.
async fn act(
    st: &AppState,
    ws: &WebSession,
    lang: Lang,
    meeting: String,
    action: Option<(Action, Fields)>,
) -> Response {
    if !crate::public::valid_id(&meeting) {
        return crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found");
    }
    let (s, m) = (ws.session.clone(), meeting.clone());
    let done = read(&st.home, move |h| {
        let r = Review::open(h)?;
        let outcome = action.map(|(act, f)| act(&r, &s, &m, &f));
        Ok::<_, ReviewError>((outcome, r.docket(&m)))
    });
    let (outcome, docket) = match done.await {
        Ok(v) => v,
        Err(e) => return failed(lang, &e),
    };
    let items = match docket {
        Ok(items) => items,
        Err(ReviewError::NotFound(_)) => {
            return crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found")
        }
        Err(e) => return failed(lang, &WebError::Review(e)),
    };
    let (status, note) = match outcome {
        Some(Ok(())) => return see_other(&format!("/committee/{meeting}")),
        Some(Err(e)) => match refusal(&e) {
            Some(status) => (status, Some(e.to_string())),
            None => return failed(lang, &WebError::Review(e)),
        },
        None => (StatusCode::OK, None),
    };
    page(status, docket_page(lang, ws, st, &meeting, &items, note))
}

fn docket_page(
    lang: Lang,
    ws: &WebSession,
    st: &AppState,
    meeting: &str,
    items: &[DocketItem],
    note: Option<String>,
) -> Markup {
    let content = html! {
        @if let Some(n) = note { p.note { (n) } }
        @if items.is_empty() { p { (lang.t("docket_empty")) } }
        @for i in items {
            section {
                h2 { a href=(format!("/applications/{}", i.status.id)) { (i.status.id) } " " (i.status.application.title) }
                p { (i.status.application.kind.code()) " · " (i.status.application.applicant.organisation) " · " (i.status.application.purpose) }
                p { (lang.t("items")) ": " (i.status.application.item_names().join(", ")) }
                @match &i.preview {
                    Some(p) => (preview_markup(lang, p)),
                    None => p { (lang.t("preview_none")) },
                }
                @if st.jobs.running(&i.status.id) { p.note { (lang.t("preview_running")) } }
                (votes_markup(lang, i))
                @match &i.status.decision {
                    Some(d) => (decision_markup(lang, d)),
                    None => @if ws.session.role == Role::Committee { (member_forms(lang, ws, meeting, i)) },
                }
            }
        }
    };
    layout(
        lang,
        &format!("/committee/{meeting}"),
        &format!("{} {meeting}", lang.t("docket")),
        content,
    )
}

fn votes_markup(lang: Lang, i: &DocketItem) -> Markup {
    html! {
        @if !i.conflicts.is_empty() {
            p { (lang.t("conflicts")) ": "
                @for c in &i.conflicts { (c.member) " (" (c.reason) ") " }
            }
        }
        p { (lang.t("votes")) ": "
            @if i.votes.is_empty() { "—" }
            @for (m, v) in &i.votes { (m) " " (lang.t(&format!("vote_{}", v.code()))) "; " }
        }
    }
}

fn member_forms(lang: Lang, ws: &WebSession, meeting: &str, i: &DocketItem) -> Markup {
    let id = &i.status.id;
    html! {
        form method="post" action=(format!("/committee/{meeting}/vote")) {
            input type="hidden" name="csrf" value=(ws.csrf);
            input type="hidden" name="application" value=(id);
            @for v in ["approve", "reject", "abstain"] {
                label { input type="radio" name="vote" value=(v) required; " " (lang.t(&format!("vote_{v}"))) } " "
            }
            button type="submit" { (lang.t("vote")) }
        }
        form method="post" action=(format!("/committee/{meeting}/conflict")) {
            input type="hidden" name="csrf" value=(ws.csrf);
            input type="hidden" name="application" value=(id);
            label { (lang.t("conflict_reason")) " " input type="text" name="reason" required; } " "
            button type="submit" { (lang.t("conflict_declare")) }
        }
        details {
            summary { (lang.t("decide")) }
            form method="post" action=(format!("/committee/{meeting}/decide")) {
                input type="hidden" name="csrf" value=(ws.csrf);
                input type="hidden" name="application" value=(id);
                p { select name="outcome" {
                    @for o in ["approve", "approve-with-conditions", "revise", "reject"] {
                        option value=(o) { (lang.t(&format!("outcome_{}", o.replace('-', "_")))) }
                    }
                } }
                p { label { (lang.t("reasons")) br; textarea name="reasons" rows="3" cols="70" required {} } }
                p { label { (lang.t("conditions")) br; textarea name="conditions" rows="3" cols="70" {} } }
                p { (lang.t("drop_items")) br;
                    @for item in i.status.application.item_names() {
                        label { input type="checkbox" name="drop_item" value=(item); " " (item) } " "
                    }
                }
                button type="submit" { (lang.t("decide")) }
            }
        }
    }
}

/// A decision: outcome, tally, reasons, conditions, approved items.
pub fn decision_markup(lang: Lang, d: &Decision) -> Markup {
    let outcome = lang.t(&format!("outcome_{}", d.outcome.code().replace('-', "_")));
    html! {
        table {
            tr { th { (lang.t("decision")) } td { (outcome) " (" (d.meeting_id) ")" } }
            tr { th { (lang.t("votes")) } td { (d.tally.0) " / " (d.tally.1) " / " (d.tally.2) } }
            tr { th { (lang.t("reasons")) } td { (d.reasons) } }
            tr { th { (lang.t("conditions")) } td { (d.conditions.join("; ")) } }
            tr { th { (lang.t("items")) } td { (d.approved_items.join(", ")) } }
        }
    }
}

/// A preview: the persons from cohort to release as a chart, the figures against their targets,
/// and what would refuse the release.
pub fn preview_markup(lang: Lang, p: &Preview) -> Markup {
    let steps = [
        (lang.t("cohort"), p.cohort as f64),
        (lang.t("opted_out"), p.opted_out as f64),
        (lang.t("suppressed"), p.suppressed as f64),
        (lang.t("persons_released"), p.persons as f64),
    ];
    html! {
        p { (lang.t("preview_by")) " " (p.prepared_by) " " (p.prepared_at) " · " (p.preset) }
        (tokumei_report::bars(&lang.t("preview"), &steps, p.cohort.max(1) as f64, &|v| format!("{v:.0}")))
        table {
            tr { th { (lang.t("figure")) } th { (lang.t("value")) } th { (lang.t("target")) } th { (lang.t("met")) } }
            @for f in &p.figures {
                tr {
                    td { code { (f.name) } } td { (format!("{:.4}", f.value)) }
                    td { (f.target.map(|t| format!("{t:.4}")).unwrap_or_default()) }
                    td { @match f.met { Some(true) => "✓", Some(false) => "✗", None => "" } }
                }
            }
        }
        @if !p.refusals.is_empty() {
            div.note { p { (lang.t("preview_refusals")) } ul { @for r in &p.refusals { li { (r) } } } }
        }
    }
}

/// `POST /committee/{meeting}/vote`.
pub async fn vote(
    st: State<AppState>,
    ws: Extension<WebSession>,
    meeting: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    posted(st, ws, meeting, headers, body, |r, s, m, f| {
        let v = Vote::parse(&f.one("vote"))
            .ok_or_else(|| ReviewError::Invalid("a vote is approve, reject or abstain".into()))?;
        r.vote(s, m, &f.one("application"), v)
    })
    .await
}

/// `POST /committee/{meeting}/conflict`.
pub async fn conflict(
    st: State<AppState>,
    ws: Extension<WebSession>,
    meeting: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    posted(st, ws, meeting, headers, body, |r, s, m, f| {
        r.declare_conflict(s, m, &f.one("application"), &f.one("reason"))
    })
    .await
}

/// `POST /committee/{meeting}/decide`.
pub async fn decide(
    st: State<AppState>,
    ws: Extension<WebSession>,
    meeting: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    posted(st, ws, meeting, headers, body, |r, s, m, f| {
        let o = Outcome::parse(&f.one("outcome"))
            .ok_or_else(|| ReviewError::Invalid("no such decision".into()))?;
        let conditions: Vec<String> = f.one("conditions").lines().map(str::to_string).collect();
        r.decide(
            s,
            m,
            &f.one("application"),
            o,
            &f.one("reasons"),
            &conditions,
            &f.all("drop_item"),
        )
        .map(|_| ())
    })
    .await
}

async fn posted(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(meeting): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    action: Action,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    act(&st, &ws, lang, meeting, Some((action, f))).await
}

/// `POST /applications/{id}/preview`: a technician starts the preview's dry run in the background.
pub async fn prepare(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, _) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    if !crate::public::valid_id(&id) {
        return crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found");
    }
    let (home, key, s, job) = (st.home.clone(), st.key.clone(), ws.session, id.clone());
    st.jobs.run(id.clone(), move || {
        let today = chrono::Utc::now().date_naive();
        tokumei_release::preview::prepare(&home, &s, &key, &job, today).map(|_| ())
    });
    see_other(&format!("/applications/{id}"))
}
