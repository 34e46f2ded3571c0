//! Research applications on the web: the list a user may see (a researcher their own,
//! `Review::visible_to`), the application file's fields as a form (validated by the library's own
//! checks, every problem shown beside the values typed, escaped), submission, and one application's
//! page with its decision and, for the committee and technicians, its preview.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{html, Markup};
use tokumei_review::application::{Applicant, Certification, Cohort, Feasibility, Items, Problem};
use tokumei_review::application::{ImageRequest, ReleaseKind, CATALOGUE};
use tokumei_review::{Application, Review, ReviewError, Status};
use tokumei_vault::access::{Role, Session};

use crate::forms::Fields;
use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page, read, AppState, LangQuery};
use crate::session::WebSession;
use crate::WebError;

/// Who may read applications.
pub const READERS: &[Role] = &[
    Role::Researcher,
    Role::Technician,
    Role::Committee,
    Role::Auditor,
];
/// Who may submit one.
pub const WRITERS: &[Role] = &[Role::Researcher, Role::Technician];

/// `GET /applications`.
pub async fn list(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let s = ws.session.clone();
    match read(&st.home, move |h| Review::open(h)?.visible_to(&s)).await {
        Ok(apps) => page(StatusCode::OK, list_page(lang, &ws.session, &apps)),
        Err(e) => failed(lang, &e),
    }
}

/// `GET /api/v1/applications`: the same list as JSON.
pub async fn api_list(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
) -> Response {
    let s = ws.session;
    match read(&st.home, move |h| Review::open(h)?.visible_to(&s)).await {
        Ok(apps) => Json(apps).into_response(),
        Err(e) => failed(Lang::En, &e),
    }
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn list_page(lang: Lang, s: &Session, apps: &[Status]) -> Markup {
    let content = html! {
        @if WRITERS.contains(&s.role) {
            p { a href="/applications/new" { (lang.t("application_new")) } }
        }
        @if apps.is_empty() {
            p { (lang.t("applications_none")) }
        } @else {
            table {
                tr {
                    th { (lang.t("application")) } th { (lang.t("title")) } th { (lang.t("kind")) }
                    th { (lang.t("state")) } th { (lang.t("submitted_by")) } th { (lang.t("date")) }
                }
                @for a in apps {
                    tr {
                        td { a href=(format!("/applications/{}", a.id)) { (a.id) } }
                        td { (a.application.title) } td { (a.application.kind.code()) }
                        td { (lang.t(&format!("state_{}", a.state(today()).replace('-', "_")))) }
                        td { (a.submitted_by) } td { (a.submitted_at) }
                    }
                }
            }
        }
    };
    layout(lang, "/applications", &lang.t("page_applications"), content)
}

/// `GET /applications/new`: the empty form.
pub async fn new_form(
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    page(
        StatusCode::OK,
        form_page(lang, &ws.csrf, &Fields::default(), &[]),
    )
}

/// `POST /applications`: the form checked and submitted; refused, the form again with every
/// problem and the values typed.
pub async fn submit(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let mut problems = Vec::new();
    let a = application(&f, &mut problems);
    problems.extend(a.problems());
    if !problems.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            form_page(lang, &ws.csrf, &f, &problems),
        );
    }
    let s = ws.session.clone();
    match read(&st.home, move |h| Review::open(h)?.submit(&s, &a)).await {
        Ok(id) => see_other(&format!("/applications/{id}")),
        Err(WebError::Review(ReviewError::Application(p))) => {
            page(StatusCode::BAD_REQUEST, form_page(lang, &ws.csrf, &f, &p))
        }
        Err(WebError::Review(ReviewError::NotFound(_))) => {
            let p = [Problem::new("revises", "no such application")];
            page(StatusCode::BAD_REQUEST, form_page(lang, &ws.csrf, &f, &p))
        }
        Err(e) => failed(lang, &e),
    }
}

/// A 303 to a path the server made.
pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// `GET /applications/{id}`: one application, if the user may see it.
pub async fn show(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    if !crate::public::valid_id(&id) {
        return crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found");
    }
    let s = ws.session.clone();
    let found = read(&st.home, move |h| {
        let r = Review::open(h)?;
        let st = r.status_for(&s, &id)?;
        let preview = match (&st, s.role) {
            (Some(st), Role::Committee | Role::Technician | Role::Auditor) => r.preview(&st.id)?,
            _ => None,
        };
        let built = st
            .as_ref()
            .map(|st| crate::releases::packages(h, &st.id))
            .unwrap_or_default();
        Ok::<_, ReviewError>(st.map(|st| (st, preview, built)))
    });
    match found.await {
        Ok(Some((status, preview, built))) => page(
            StatusCode::OK,
            show_page(lang, &ws, (&status, preview.as_ref(), &built), &st),
        ),
        Ok(None) => crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found"),
        Err(e) => failed(lang, &e),
    }
}

fn show_page(
    lang: Lang,
    ws: &WebSession,
    (st, preview, built): (
        &Status,
        Option<&tokumei_review::Preview>,
        &[crate::releases::Package],
    ),
    app: &AppState,
) -> Markup {
    let a = &st.application;
    let preparing = app.jobs.running(&st.id);
    let open = st.decision.is_none() && st.withdrawn_at.is_none();
    let content = html! {
        table {
            tr { th { (lang.t("state")) } td { (lang.t(&format!("state_{}", st.state(today()).replace('-', "_")))) } }
            tr { th { (lang.t("kind")) } td { (a.kind.code()) } }
            tr { th { (lang.t("purpose")) } td { (a.purpose) } }
            tr { th { (lang.t("period")) } td { (a.period_from) " – " (a.period_to) } }
            tr { th { (lang.t("contract_expiry")) } td { (a.contract_expiry) } }
            tr { th { (lang.t("organisation")) } td { (a.applicant.organisation) } }
            tr { th { (lang.t("responsible_researcher")) } td { (a.applicant.responsible_researcher) } }
            tr { th { (lang.t("items")) } td { (a.item_names().join(", ")) } }
            tr { th { (lang.t("cohort")) } td { (cohort_text(&a.cohort)) } }
            tr { th { (lang.t("submitted_by")) } td { (st.submitted_by) " " (st.submitted_at) } }
        }
        @if let Some(d) = &st.decision {
            h2 { (lang.t("decision")) }
            (crate::committee::decision_markup(lang, d))
        }
        (release_markup(lang, ws, st, built, app))
        @if matches!(ws.session.role, Role::Committee | Role::Technician | Role::Auditor) {
            h2 { (lang.t("preview")) }
            @match preview {
                Some(p) => (crate::committee::preview_markup(lang, p)),
                None => p { (lang.t("preview_none")) },
            }
            @if let Some(why) = app.jobs.failure(&st.id) {
                p.note { (lang.t("preview_failed")) ": " (why) }
            }
            @if preparing {
                p.note { (lang.t("preview_running")) }
            } @else if open && ws.session.role == Role::Technician && a.kind != ReleaseKind::Feasibility {
                form method="post" action=(format!("/applications/{}/preview", st.id)) {
                    input type="hidden" name="csrf" value=(ws.csrf);
                    button type="submit" { (lang.t("preview_prepare")) }
                }
            }
        }
    };
    layout(
        lang,
        &format!("/applications/{}", st.id),
        &format!("{} {}", st.id, a.title),
        content,
    )
}

/// The release part of an application's page: its packages (a download for researchers and
/// technicians), and for a technician the build of an approved application.
fn release_markup(
    lang: Lang,
    ws: &WebSession,
    st: &Status,
    built: &[crate::releases::Package],
    app: &AppState,
) -> Markup {
    let approved = matches!(st.state(today()), "approve" | "approve-with-conditions");
    let (building, failure) = crate::releases::state(app, &st.id);
    let downloads = crate::releases::DOWNLOADERS.contains(&ws.session.role);
    html! {
        @if approved || !built.is_empty() {
            h2 { (lang.t("release")) }
            @for (i, p) in built.iter().enumerate() {
                p { code { (p.release_id) } " (" (p.size) " bytes) "
                    @if i == 0 && downloads {
                        a href=(format!("/applications/{}/package", st.id)) download { (lang.t("download")) }
                    }
                }
            }
            @if let Some(why) = failure { p.note { (lang.t("build_failed")) ": " (why) } }
            @if building {
                p.note { (lang.t("build_running")) }
            } @else if approved && ws.session.role == Role::Technician {
                form method="post" action=(format!("/applications/{}/build", st.id)) {
                    input type="hidden" name="csrf" value=(ws.csrf);
                    button type="submit" { (lang.t("build")) }
                }
            }
        }
    }
}

fn cohort_text(c: &Cohort) -> String {
    let mut parts = Vec::new();
    if !c.icd10.is_empty() {
        parts.push(format!("ICD-10 {}", c.icd10.join(", ")));
    }
    match (c.age_min, c.age_max) {
        (None, None) => {}
        (a, b) => parts.push(format!(
            "age {}–{}",
            a.map(|v| v.to_string()).unwrap_or_default(),
            b.map(|v| v.to_string()).unwrap_or_default()
        )),
    }
    if let Some(s) = &c.sex {
        parts.push(format!("sex {s}"));
    }
    if !c.municipalities.is_empty() {
        parts.push(format!("municipalities {}", c.municipalities.join(", ")));
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("; ")
    }
}

/// Which images the form asks for: when an `images` item is checked or a criterion is given.
fn images(f: &Fields) -> Option<ImageRequest> {
    let optional = |name: &str| Some(f.one(name)).filter(|v| !v.is_empty());
    let request = ImageRequest {
        modalities: f.list("image_modalities"),
        body_parts: f.list("image_body_parts"),
        from: optional("image_from"),
        to: optional("image_to"),
    };
    let asked = f.all("item").iter().any(|i| i.starts_with("images."));
    (asked || request != ImageRequest::default()).then_some(request)
}

/// The application the form's fields describe; fields that are not numbers or codes add problems.
fn application(f: &Fields, p: &mut Vec<Problem>) -> Application {
    let kind = match f.one("kind").as_str() {
        "pseudonymized" => ReleaseKind::Pseudonymized,
        "feasibility" => ReleaseKind::Feasibility,
        "anonymized" => ReleaseKind::Anonymized,
        _ => {
            p.push(Problem::new(
                "kind",
                "anonymized, pseudonymized or feasibility",
            ));
            ReleaseKind::Anonymized
        }
    };
    let certification = match f.one("certification").as_str() {
        "pseudo-user" => Certification::PseudoUser,
        "creator" => Certification::Creator,
        _ => Certification::None,
    };
    let feasibility = (kind == ReleaseKind::Feasibility).then(|| Feasibility {
        users: f.list("feasibility_users"),
        epsilon: f.number(p, "feasibility_epsilon"),
        recruitment: !f.one("recruitment").is_empty(),
    });
    Application {
        title: f.one("title"),
        kind,
        purpose: f.one("purpose"),
        period_from: f.one("period_from"),
        period_to: f.one("period_to"),
        contract_expiry: f.one("contract_expiry"),
        recipient_key: f.one("recipient_key"),
        security_plan: f.one("security_plan"),
        aggregate_dimensions: f.number(p, "aggregate_dimensions").unwrap_or(0),
        revises: f.optional("revises"),
        applicant: Applicant {
            organisation: f.one("organisation"),
            certification,
            certification_id: f.optional("certification_id"),
            certification_valid_until: f.optional("certification_valid_until"),
            responsible_researcher: f.one("responsible_researcher"),
            contact: f.optional("contact"),
        },
        cohort: Cohort {
            icd10: f.list("icd10"),
            age_min: f.number(p, "age_min"),
            age_max: f.number(p, "age_max"),
            sex: f.optional("sex"),
            municipalities: f.list("municipalities"),
        },
        items: if kind == ReleaseKind::Feasibility {
            Vec::new()
        } else {
            items(&f.all("item"))
        },
        feasibility,
        images: images(f),
    }
}

/// The checked `table.column` boxes as the application's tables, in the catalogue's order (a value
/// outside the catalogue is kept, for the library's check to name).
fn items(checked: &[String]) -> Vec<Items> {
    let mut out: Vec<Items> = Vec::new();
    for item in checked {
        let Some((table, column)) = item.split_once('.') else {
            continue;
        };
        match out.iter_mut().find(|i| i.table == table) {
            Some(i) => i.columns.push(column.to_string()),
            None => out.push(Items {
                table: table.to_string(),
                columns: vec![column.to_string()],
            }),
        }
    }
    let rank = |t: &str| {
        CATALOGUE
            .iter()
            .position(|(n, _)| *n == t)
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(|i| rank(&i.table));
    out
}

fn text(lang: Lang, f: &Fields, name: &str, kind: &str) -> Markup {
    html! {
        p { label { (lang.t(&format!("f_{name}"))) br; input type=(kind) name=(name) value=(f.one(name)); } }
    }
}

fn area(lang: Lang, f: &Fields, name: &str) -> Markup {
    html! {
        p { label { (lang.t(&format!("f_{name}"))) br; textarea name=(name) rows="3" cols="70" { (f.one(name)) } } }
    }
}

fn select(lang: Lang, f: &Fields, name: &str, options: &[&str]) -> Markup {
    let chosen = f.one(name);
    html! {
        p { label { (lang.t(&format!("f_{name}"))) br;
            select name=(name) {
                @for o in options {
                    option value=(o) selected[chosen == *o] { (if o.is_empty() { "—" } else { o }) }
                }
            }
        } }
    }
}

fn form_page(lang: Lang, csrf: &str, f: &Fields, problems: &[Problem]) -> Markup {
    let checked = f.all("item");
    let content = html! {
        @if !problems.is_empty() {
            div.note {
                p { (lang.t("application_problems")) }
                ul { @for pr in problems { li { code { (pr.field) } ": " (pr.message) } } }
            }
        }
        form method="post" action="/applications" {
            input type="hidden" name="csrf" value=(csrf);
            (text(lang, f, "title", "text"))
            (select(lang, f, "kind", &["anonymized", "pseudonymized", "feasibility"]))
            (area(lang, f, "purpose"))
            (text(lang, f, "period_from", "date")) (text(lang, f, "period_to", "date"))
            (text(lang, f, "contract_expiry", "date"))
            (text(lang, f, "recipient_key", "text"))
            (area(lang, f, "security_plan"))
            (text(lang, f, "aggregate_dimensions", "number"))
            (text(lang, f, "revises", "text"))
            h2 { (lang.t("applicant")) }
            (text(lang, f, "organisation", "text"))
            (select(lang, f, "certification", &["none", "pseudo-user", "creator"]))
            (text(lang, f, "certification_id", "text"))
            (text(lang, f, "certification_valid_until", "date"))
            (text(lang, f, "responsible_researcher", "text"))
            (text(lang, f, "contact", "text"))
            h2 { (lang.t("cohort")) }
            (text(lang, f, "icd10", "text"))
            (text(lang, f, "age_min", "number")) (text(lang, f, "age_max", "number"))
            (select(lang, f, "sex", &["", "M", "F"]))
            (text(lang, f, "municipalities", "text"))
            h2 { (lang.t("items")) }
            @for (table, columns) in CATALOGUE {
                fieldset { legend { (table) }
                    @for c in *columns {
                        @let v = format!("{table}.{c}");
                        label { input type="checkbox" name="item" value=(v) checked[checked.contains(&v)]; " " (c) } " "
                    }
                }
            }
            h2 { (lang.t("images")) }
            (text(lang, f, "image_modalities", "text")) (text(lang, f, "image_body_parts", "text"))
            (text(lang, f, "image_from", "date")) (text(lang, f, "image_to", "date"))
            h2 { (lang.t("feasibility")) }
            (text(lang, f, "feasibility_users", "text"))
            (text(lang, f, "feasibility_epsilon", "text"))
            p { label { input type="checkbox" name="recruitment" value="1" checked[!f.one("recruitment").is_empty()]; " " (lang.t("f_recruitment")) } }
            p { button type="submit" { (lang.t("submit")) } }
        }
    };
    layout(
        lang,
        "/applications/new",
        &lang.t("application_new"),
        content,
    )
}
