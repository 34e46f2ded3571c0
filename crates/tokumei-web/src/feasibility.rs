//! Feasibility counts on the web: a researcher (or a technician) asks how many persons meet a
//! cohort definition (the TOML of `tokumei feasibility count`) under one of their approved
//! feasibility applications, and sees the answer as the library gives it — every figure under the
//! disclosure policy, the attrition as a chart, the breakdowns, and the privacy budget left.
//! Quotas, the budget charge and the audit entry are the library's (`tokumei_feasibility::count`).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use tokumei_feasibility::disclosure::{Shown, ShownBreakdown};
use tokumei_feasibility::{shown_text, CountAnswer, Definition, FeasibilityError, Policy};
use tokumei_review::{ReleaseKind, Review, Status};
use tokumei_vault::access::Role;

use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page, read, AppState, LangQuery};
use crate::session::WebSession;

/// Who asks counts.
pub const ASKERS: &[Role] = &[Role::Researcher, Role::Technician];
/// The largest definition posted.
pub const MAX_FORM: usize = 128 * 1024;

/// The feasibility applications the user may ask under (approved, visible to them).
fn applications(st: &[Status]) -> Vec<&Status> {
    let today = chrono::Utc::now().date_naive();
    st.iter()
        .filter(|s| s.application.kind == ReleaseKind::Feasibility)
        .filter(|s| matches!(s.state(today), "approve" | "approve-with-conditions"))
        .collect()
}

/// `GET /feasibility`.
pub async fn form(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let s = ws.session.clone();
    match read(&st.home, move |h| Review::open(h)?.visible_to(&s)).await {
        Ok(apps) => page(StatusCode::OK, form_page(lang, &ws, &apps, "", None)),
        Err(e) => failed(lang, &e),
    }
}

fn form_page(
    lang: Lang,
    ws: &WebSession,
    apps: &[Status],
    definition: &str,
    answer: Option<Markup>,
) -> Markup {
    let content = html! {
        @if let Some(a) = answer { (a) }
        form method="post" action="/feasibility" {
            input type="hidden" name="csrf" value=(ws.csrf);
            p { label { (lang.t("application")) br;
                select name="application" {
                    @if ws.session.role == Role::Technician { option value="" { "—" } }
                    @for a in applications(apps) { option value=(a.id) { (a.id) " " (a.application.title) } }
                }
            } }
            p { label { (lang.t("feasibility_definition")) br;
                textarea name="definition" rows="14" cols="90" required { (definition) } } }
            p { button type="submit" { (lang.t("feasibility_count")) } }
        }
    };
    layout(lang, "/feasibility", &lang.t("page_feasibility"), content)
}

/// `POST /feasibility`: the count, answered under the policy.
pub async fn count(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let definition = f.one("definition");
    let (s, key, text, app, counter) = (
        ws.session.clone(),
        st.key.clone(),
        definition.clone(),
        f.optional("application"),
        st.counter.clone(),
    );
    let done = read(&st.home, move |h| -> Result<_, crate::WebError> {
        let apps = Review::open(h)?.visible_to(&s)?;
        let answer = Definition::parse(&text, false).and_then(|def| {
            let policy = Policy::ndb();
            tokumei_feasibility::count(h, &s, &key, &def, &policy, app.as_deref(), &counter)
        });
        Ok((apps, answer))
    });
    let (apps, answer) = match done.await {
        Ok(v) => v,
        Err(e) => return failed(lang, &e),
    };
    let (status, shown) = match answer {
        Ok(a) => (StatusCode::OK, answer_markup(lang, &a)),
        Err(e) => (
            refusal(&e),
            html! { p.note { (lang.t("feasibility_refused")) ": " (e) } },
        ),
    };
    page(
        status,
        form_page(lang, &ws, &apps, &definition, Some(shown)),
    )
}

fn refusal(e: &FeasibilityError) -> StatusCode {
    match e {
        FeasibilityError::Definition(_) | FeasibilityError::Policy(_) => StatusCode::BAD_REQUEST,
        FeasibilityError::Quota(_) | FeasibilityError::Budget(_) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::FORBIDDEN,
    }
}

fn value(s: &Shown) -> f64 {
    match s {
        Shown::Count { value, .. } => *value as f64,
        Shown::Suppressed => 0.0,
    }
}

fn shown(lang: Lang, s: &Shown) -> String {
    match s {
        Shown::Suppressed => lang.t("suppressed"),
        other => shown_text(other),
    }
}

fn breakdown(lang: Lang, title: &str, b: &ShownBreakdown) -> Markup {
    html! {
        h3 { (lang.t(title)) }
        @match &b.withheld {
            Some(why) => p { (lang.t("withheld")) ": " (why) },
            None => table { @for (k, v) in &b.cells { tr { td { (k) } td { (shown(lang, v)) } } } },
        }
    }
}

/// An answer: the total, the attrition chart, the breakdowns and the budget left.
fn answer_markup(lang: Lang, a: &CountAnswer) -> Markup {
    let steps: Vec<(String, f64)> = a
        .answer
        .steps
        .iter()
        .map(|s| (s.name.clone(), value(&s.persons)))
        .collect();
    let max = steps.iter().map(|s| s.1).fold(1.0, f64::max);
    let attrition = lang.t("feasibility_attrition");
    html! {
        h2 { (a.name) ": " (shown(lang, &a.answer.total)) }
        p { (lang.t("feasibility_policy")) " " (a.answer.policy) " · ε " (format!("{:.3}", a.answer.epsilon))
            @if a.cached { " · " (lang.t("feasibility_cached")) } }
        (tokumei_report::bars(&attrition, &steps, max, &|v| format!("{v:.0}")))
        (breakdown(lang, "f_sex", &a.answer.sex))
        (breakdown(lang, "feasibility_age_band", &a.answer.age_band))
        (breakdown(lang, "feasibility_area", &a.answer.area))
        (breakdown(lang, "provider", &a.answer.provider))
        @if let Some(b) = &a.balance {
            p.note { (lang.t("feasibility_budget_left")) ": ε " (format!("{:.3}", b.user_left))
                @if b.application.is_some() { " · " (lang.t("application")) " ε " (format!("{:.3}", b.application_left)) } }
        }
    }
}
