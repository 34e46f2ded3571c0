//! Sign-in, enrolment, the signed-in user's page and sign-out.
//!
//! The forms before sign-in carry a token that must equal the `__Host-form` cookie set with the
//! form (double submit); the forms after it carry the session's CSRF token. A sign-in always
//! starts a new session with a new token (no fixation). Refusals say nothing of which part was
//! wrong, and nothing typed into a form is echoed back.

use std::time::Instant;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use tokumei_vault::webauth::WebAuth;
use tokumei_vault::VaultError;

use crate::i18n::{cookie, Lang};
use crate::pages::layout;
use crate::routes::{html as page_html, read, AppState, LangQuery};
use crate::session::{random_token, same_token, WebSession, COOKIE};
use crate::WebError;

/// The pre-session form cookie.
const FORM_COOKIE: &str = "__Host-form";

fn cookie_header(name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict"
    ))
    .ok()
}

fn with_cookie(mut resp: Response, value: Option<HeaderValue>) -> Response {
    if let Some(v) = value {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// A response that starts a new session: its cookie set (8 hours at most; the server ends it
/// sooner when idle) and the pre-session form cookie cleared.
pub(crate) fn with_session(resp: Response, token: &str) -> Response {
    let resp = with_cookie(resp, cookie_header(COOKIE, token, 8 * 3600));
    with_cookie(resp, cookie_header(FORM_COOKIE, "", 0))
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// A form page: its fields, with a fresh form token in a hidden field and in its cookie.
fn form_page(
    lang: Lang,
    path: &str,
    title: &str,
    note: Option<Markup>,
    fields: Markup,
    status: StatusCode,
) -> Response {
    let Some(token) = random_token() else {
        return page_html(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::pages::message(lang, "failed"),
        );
    };
    let content = html! {
        @if let Some(n) = note { p.note { (n) } }
        form method="post" action=(path) {
            input type="hidden" name="csrf" value=(token);
            (fields)
        }
    };
    with_cookie(
        page_html(status, layout(lang, path, title, content)),
        cookie_header(FORM_COOKIE, &token, 900),
    )
}

fn field(label: String, name: &str, kind: &str, autocomplete: &str) -> Markup {
    html! {
        p { label { (label) br; input type=(kind) name=(name) autocomplete=(autocomplete) required; } }
    }
}

pub(crate) fn form_token_ok(headers: &HeaderMap, sent: &str) -> bool {
    cookie(headers, FORM_COOKIE).is_some_and(|c| !sent.is_empty() && same_token(c, sent))
}

fn signin_fields(lang: Lang) -> Markup {
    html! {
        (field(lang.t("user_name"), "user", "text", "username"))
        (field(lang.t("password"), "password", "password", "current-password"))
        (field(lang.t("totp_code"), "code", "text", "one-time-code"))
        p { button type="submit" { (lang.t("sign_in")) } }
        p { button #passkey-signin type="button" { (lang.t("sign_in_passkey")) } }
        p #passkey-status role="status" {}
        script src="/static/passkey.js" {}
    }
}

/// The sign-in form, with a note (a message key) when there is one to give.
fn signin_page(lang: Lang, note: Option<&str>, status: StatusCode) -> Response {
    let note = note.map(|k| html! { (lang.t(k)) });
    form_page(
        lang,
        "/signin",
        &lang.t("signin_title"),
        note,
        signin_fields(lang),
        status,
    )
}

/// The enrolment form, with a note (a message key).
fn enrol_page(lang: Lang, note: &str, status: StatusCode) -> Response {
    let note = Some(html! { (lang.t(note)) });
    form_page(
        lang,
        "/enrol",
        &lang.t("enrol_title"),
        note,
        enrol_fields(lang),
        status,
    )
}

/// `GET /signin`.
pub async fn signin_form(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    signin_page(lang, None, StatusCode::OK)
}

/// The sign-in form's fields.
#[derive(serde::Deserialize)]
pub struct SignInForm {
    user: String,
    password: String,
    code: String,
    csrf: String,
}

/// `POST /signin`.
pub async fn signin(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !form_token_ok(&headers, &f.csrf) {
        return signin_page(lang, Some("form_expired"), StatusCode::FORBIDDEN);
    }
    let key = st.key.clone();
    let now = chrono::Utc::now().timestamp();
    let signed = read(&st.home, move |h| {
        WebAuth::open(h)?.sign_in(&key, &f.user, &f.password, &f.code, now)
    });
    match signed.await {
        Ok(session) => match st.sessions.create(session, Instant::now()) {
            Some(token) => with_session(see_other("/me"), &token),
            None => failed(lang, &WebError::Task("no session token".into())),
        },
        Err(WebError::Vault(VaultError::Denied(_))) => {
            signin_page(lang, Some("signin_failed"), StatusCode::UNAUTHORIZED)
        }
        Err(e) => failed(lang, &e),
    }
}

fn enrol_fields(lang: Lang) -> Markup {
    html! {
        (field(lang.t("invitation_token"), "token", "text", "off"))
        (field(lang.t("password"), "password", "password", "new-password"))
        (field(lang.t("password_again"), "again", "password", "new-password"))
        p { button type="submit" { (lang.t("enrol")) } }
    }
}

/// `GET /enrol`.
pub async fn enrol_form(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    enrol_page(lang, "enrol_intro", StatusCode::OK)
}

/// The enrolment form's fields.
#[derive(serde::Deserialize)]
pub struct EnrolForm {
    token: String,
    password: String,
    again: String,
    csrf: String,
}

/// `POST /enrol`: on success, the TOTP secret, shown once.
pub async fn enrol(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<EnrolForm>,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    let refuse = |key: &str, status| enrol_page(lang, key, status);
    if !form_token_ok(&headers, &f.csrf) {
        return refuse("form_expired", StatusCode::FORBIDDEN);
    }
    if !same_token(&f.password, &f.again) {
        return refuse("passwords_differ", StatusCode::BAD_REQUEST);
    }
    let key = st.key.clone();
    let done = read(&st.home, move |h| {
        WebAuth::open(h)?.enrol(&key, &f.token, &f.password)
    });
    match done.await {
        Ok(e) => {
            let content = html! {
                p { (lang.t("enrol_done")) }
                table {
                    tr { th { (lang.t("user_name")) } td { (e.user) } }
                    tr { th { (lang.t("enrol_secret")) } td { code { (e.secret_base32) } } }
                    tr { th { "otpauth" } td { code { (e.otpauth_uri) } } }
                }
                p { a href="/signin" { (lang.t("sign_in")) } }
            };
            with_cookie(
                page_html(
                    StatusCode::OK,
                    layout(lang, "/enrol", &lang.t("enrol_title"), content),
                ),
                cookie_header(FORM_COOKIE, "", 0),
            )
        }
        Err(WebError::Vault(VaultError::Denied(_))) => {
            refuse("enrol_refused", StatusCode::FORBIDDEN)
        }
        Err(WebError::Vault(VaultError::Refused(_))) => {
            refuse("password_rule", StatusCode::BAD_REQUEST)
        }
        Err(e) => failed(lang, &e),
    }
}

/// `GET /me`: who is signed in, with the sign-out form.
pub async fn me(
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let content = html! {
        table {
            tr { th { (lang.t("user_name")) } td { (ws.session.user) } }
            tr { th { (lang.t("role")) } td { (ws.session.role.code()) } }
        }
        @let mine: Vec<&crate::routes::Route> = crate::routes::ROUTES
            .iter()
            .filter(|r| r.method == "GET" && r.path != "/me" && !r.path.contains('{') && !r.path.starts_with("/api/"))
            .filter(|r| matches!(r.access, crate::routes::Access::SignedIn(roles) if roles.contains(&ws.session.role)))
            .collect();
        @if !mine.is_empty() {
            h2 { (lang.t("your_pages")) }
            // Each page's title is the message `page` + its path with `_` for `/` (`page_audit`).
            ul { @for r in mine { li { a href=(r.path) { (lang.t(&format!("page{}", r.path.replace('/', "_")))) } } } }
        }
        form method="post" action="/signout" {
            input type="hidden" name="csrf" value=(ws.csrf);
            button type="submit" { (lang.t("sign_out")) }
        }
    };
    page_html(
        StatusCode::OK,
        layout(lang, "/me", &lang.t("me_title"), content),
    )
}

/// A signed-in form's CSRF field.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /signout`.
pub async fn signout(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !same_token(&ws.csrf, &f.csrf) {
        return page_html(
            StatusCode::FORBIDDEN,
            crate::pages::message(lang, "form_expired"),
        );
    }
    if let Some(token) = cookie(&headers, COOKIE) {
        st.sessions.end(token);
    }
    with_cookie(see_other("/"), cookie_header(COOKIE, "", 0))
}

fn failed(lang: Lang, e: &WebError) -> Response {
    crate::routes::failed(lang, e)
}
