//! The route table and the router built from it. Every route is in [`ROUTES`] with who may use it;
//! the router is made from the table (a route without a handler is an error), so a test that walks
//! the table walks every route the server answers. One check ([`access`]) stands before every
//! route: public routes are metered; signed-in routes need a live session and one of their roles,
//! and each of their requests is audited as its user with the route's pattern (never the URL);
//! requests without a session are counted as denials in the public interval (a flood cannot
//! force signed entries), a wrong role is audited one by one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use maud::Markup;
use tokumei_vault::access::{Role, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::i18n::{cookie, Lang};
use crate::meter::Meter;
use crate::session::{Sessions, WebSession, COOKIE};
use crate::{pages, public, signin, WebError};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without signing in: rate-limited per address and counted per interval.
    Public,
    /// A signed-in user with one of these roles.
    SignedIn(&'static [Role]),
}

/// Largest request body (forms only; uploads have their own route and limit).
const MAX_BODY: usize = 16 * 1024;

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern (`{name}` for a parameter).
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
    /// What it serves.
    pub what: &'static str,
}

/// Every route the server answers.
pub const ROUTES: &[Route] = &[
    route("/", "the home page"),
    route("/signin", "the sign-in form"),
    Route {
        method: "POST",
        ..route("/signin", "sign-in: password and TOTP code")
    },
    route("/enrol", "the enrolment form (an approved invitation)"),
    Route {
        method: "POST",
        ..route(
            "/enrol",
            "enrolment: a password, and the TOTP secret shown once",
        )
    },
    Route {
        access: Access::SignedIn(&Role::ALL),
        ..route("/me", "who is signed in, and sign-out")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&Role::ALL),
        ..route("/signout", "sign-out")
    },
    Route {
        access: Access::SignedIn(&[Role::Auditor, Role::Technician]),
        ..route("/audit", "the audit log: verified, and searched")
    },
    Route {
        access: Access::SignedIn(&[Role::Auditor, Role::Technician]),
        ..route("/users", "users, their grants, and the reviews due")
    },
    Route {
        access: Access::SignedIn(crate::audit::LEDGER_ROLES),
        ..route("/ledger", "the provision ledger")
    },
    Route {
        access: Access::SignedIn(crate::applications::READERS),
        ..route(
            "/applications",
            "applications: a researcher's own, every one for the others",
        )
    },
    Route {
        access: Access::SignedIn(crate::applications::WRITERS),
        ..route("/applications/new", "the application form")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(crate::applications::WRITERS),
        ..route(
            "/applications",
            "an application submitted (checked as the file is)",
        )
    },
    Route {
        access: Access::SignedIn(crate::applications::READERS),
        ..route(
            "/applications/{id}",
            "one application: its state, decision and preview",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route(
            "/applications/{id}/preview",
            "a preview of the release prepared (a dry run)",
        )
    },
    Route {
        access: Access::SignedIn(crate::applications::READERS),
        ..route(
            "/api/v1/applications",
            "the applications the user may see, as JSON",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route(
            "/applications/{id}/build",
            "the release of an approved application built",
        )
    },
    Route {
        access: Access::SignedIn(crate::releases::DOWNLOADERS),
        ..route(
            "/applications/{id}/package",
            "the newest encrypted package of an application",
        )
    },
    Route {
        access: Access::SignedIn(crate::committee::READERS),
        ..route("/committee", "the committee's meetings and roster")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Committee]),
        ..route("/committee", "a meeting opened with the members present")
    },
    Route {
        access: Access::SignedIn(crate::committee::READERS),
        ..route("/committee/{meeting}", "a meeting's docket")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Committee]),
        ..route(
            "/committee/{meeting}/conflict",
            "a conflict of interest declared",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Committee]),
        ..route("/committee/{meeting}/vote", "a vote cast")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Committee]),
        ..route("/committee/{meeting}/decide", "the decision recorded")
    },
    Route {
        access: Access::SignedIn(crate::provider::UPLOADERS),
        ..route(
            "/uploads",
            "uploads: a provider's own with the upload form; every one for technicians",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::ProviderAdmin]),
        ..route(
            "/api/v1/uploads",
            "an upload declared: its size and SHA-256",
        )
    },
    Route {
        access: Access::SignedIn(&[Role::ProviderAdmin]),
        ..route(
            "/api/v1/uploads/{id}",
            "an upload and its offset (to resume)",
        )
    },
    Route {
        method: "PATCH",
        access: Access::SignedIn(&[Role::ProviderAdmin]),
        ..route(
            "/api/v1/uploads/{id}",
            "the next piece of an upload, at its offset",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route(
            "/uploads/{provider}/{id}/receive",
            "a complete upload received",
        )
    },
    route("/static/upload.js", "the upload page's script"),
    route(
        "/static/passkey.js",
        "the passkey script (adding one, signing in with one)",
    ),
    Route {
        method: "POST",
        ..route(
            "/signin/passkey/begin",
            "sign-in with a passkey begun: the challenge",
        )
    },
    Route {
        method: "POST",
        ..route(
            "/signin/passkey/finish",
            "sign-in with a passkey: the assertion checked",
        )
    },
    Route {
        access: Access::SignedIn(&Role::ALL),
        ..route("/passkeys", "the user's passkeys, to add and remove")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&Role::ALL),
        ..route("/passkeys/begin", "a passkey's registration begun")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&Role::ALL),
        ..route("/passkeys/finish", "a passkey registered")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&Role::ALL),
        ..route("/passkeys/remove", "a passkey removed")
    },
    Route {
        access: Access::SignedIn(crate::stops::RECORDERS),
        ..route(
            "/stop-requests",
            "requests to stop: one by the form, many as CSV",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(crate::stops::RECORDERS),
        ..route(
            "/stop-requests",
            "a request to stop recorded, the records held purged",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(crate::stops::RECORDERS),
        ..route(
            "/stop-requests/csv",
            "the requests of a CSV recorded, the records held purged",
        )
    },
    Route {
        access: Access::SignedIn(crate::feasibility::ASKERS),
        ..route(
            "/feasibility",
            "feasibility counts under an approved application",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(crate::feasibility::ASKERS),
        ..route(
            "/feasibility",
            "a count answered under the disclosure policy and the budget",
        )
    },
    Route {
        access: Access::SignedIn(&[Role::Auditor, Role::Technician]),
        ..route("/audit.csv", "the audit log's entries found, as CSV")
    },
    Route {
        access: Access::SignedIn(crate::operations::RECEIPT_READERS),
        ..route(
            "/audit/export",
            "a provider's audit entries with their inclusion proofs",
        )
    },
    Route {
        access: Access::SignedIn(crate::operations::RECEIPT_READERS),
        ..route(
            "/receipts",
            "the receipts, each with its quarantine counted",
        )
    },
    Route {
        access: Access::SignedIn(&[Role::Technician]),
        ..route(
            "/link",
            "the link run and the clerical review, side by side",
        )
    },
    Route {
        access: Access::SignedIn(&[Role::Technician]),
        ..route("/exports", "exports under the two-person rule")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route("/exports", "an export requested")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route(
            "/exports/{id}/approve",
            "an export approved by a second technician",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route("/exports/{id}/run", "an approved export run, once")
    },
    Route {
        access: Access::SignedIn(&[Role::Technician]),
        ..route("/exports/{id}/file", "a run export's sealed file")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route("/link/run", "a link run started")
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Technician]),
        ..route("/link/review/{pair}", "a decision on a pair")
    },
    Route {
        access: Access::SignedIn(&[Role::Auditor, Role::Technician]),
        ..route(
            "/audit/consistency",
            "the operator's signed tree head, and the form to check an earlier one",
        )
    },
    Route {
        method: "POST",
        access: Access::SignedIn(&[Role::Auditor, Role::Technician]),
        ..route(
            "/audit/consistency",
            "the log's consistency with an earlier signed tree head, proven",
        )
    },
    Route {
        access: Access::SignedIn(crate::audit::LEDGER_ROLES),
        ..route("/ledger.csv", "the provision ledger as CSV")
    },
    route("/notices", "the providers' notices"),
    route(
        "/notices/{provider}",
        "one provider's notice and how to ask for a stop",
    ),
    route(
        "/notices/{provider}/poster",
        "a printable poster with a QR code of the provider's notice page",
    ),
    route("/register", "the register of releases"),
    route("/api/v1/notices", "the notices as JSON"),
    route("/api/v1/register", "the register as JSON"),
    route("/openapi.json", "the API's OpenAPI document"),
    route("/static/site.css", "the stylesheet"),
];

const fn route(path: &'static str, what: &'static str) -> Route {
    Route {
        method: "GET",
        path,
        access: Access::Public,
        what,
    }
}

/// What every handler shares: the home, its data key, the sessions and the public meter.
#[derive(Clone)]
pub struct AppState {
    /// The operator home.
    pub home: Home,
    /// The data key (it opens the web credentials).
    pub key: Arc<DataKey>,
    /// Signed-in sessions.
    pub sessions: Arc<Sessions>,
    /// Public requests of the current interval.
    pub meter: Arc<Meter>,
    /// Previews being prepared.
    pub jobs: Arc<crate::committee::Jobs>,
    /// Uploads a piece is being written to.
    pub uploading: crate::upload::Busy,
    /// The address the public reaches the server at (set when it listens).
    pub public_url: Arc<std::sync::OnceLock<String>>,
    /// The passkeys' relying party: that address, when it has a domain name.
    pub party: crate::passkeys::Party,
    /// Passkey ceremonies under way.
    pub pending: Arc<crate::passkeys::Pending>,
    /// The feasibility code index, held between counts of the same data.
    pub counter: Arc<tokumei_feasibility::counter::Counter>,
}

impl AppState {
    /// The state of a home whose data key is unlocked, letting each address make `public_limit`
    /// public requests per interval.
    pub fn new(home: Home, key: DataKey, public_limit: u32) -> AppState {
        AppState {
            home,
            key: Arc::new(key),
            sessions: Arc::new(Sessions::default()),
            meter: Arc::new(Meter::new(public_limit)),
            jobs: Arc::default(),
            uploading: Default::default(),
            public_url: Arc::default(),
            party: Arc::default(),
            pending: Arc::default(),
            counter: Arc::default(),
        }
    }
}

/// The router of [`ROUTES`]: [`access`] before every route, the security headers on every
/// response, bodies bounded.
pub fn router(state: AppState) -> Result<Router, WebError> {
    let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
    paths.sort_unstable();
    paths.dedup();
    let mut r: Router<AppState> = Router::new();
    for path in paths {
        let mut methods: Option<MethodRouter<AppState>> = None;
        for route in ROUTES.iter().filter(|r| r.path == path) {
            let h = handler(route.method, route.path)?;
            methods = Some(match methods {
                Some(m) => m.merge(h),
                None => h,
            });
        }
        if let Some(m) = methods {
            r = r.route(path, m);
        }
    }
    Ok(
        r.route_layer(middleware::from_fn_with_state(state.clone(), access))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(middleware::from_fn(security_headers))
            .with_state(state),
    )
}

fn handler(method: &str, path: &str) -> Result<MethodRouter<AppState>, WebError> {
    Ok(match (method, path) {
        ("GET", "/") => get(index),
        ("GET", "/notices") => get(notices),
        ("GET", "/notices/{provider}") => get(notice),
        ("GET", "/notices/{provider}/poster") => get(poster),
        ("GET", "/register") => get(register),
        ("GET", "/api/v1/notices") => get(api_notices),
        ("GET", "/api/v1/register") => get(api_register),
        ("GET", "/openapi.json") => get(openapi),
        ("GET", "/static/site.css") => get(css),
        ("GET", "/signin") => get(signin::signin_form),
        ("POST", "/signin") => post(signin::signin),
        ("GET", "/enrol") => get(signin::enrol_form),
        ("POST", "/enrol") => post(signin::enrol),
        ("GET", "/me") => get(signin::me),
        ("POST", "/signout") => post(signin::signout),
        ("GET", "/audit") => get(crate::audit::audit_log),
        ("GET", "/users") => get(crate::audit::users),
        ("GET", "/ledger") => get(crate::audit::ledger),
        ("GET", "/uploads") => get(crate::provider::uploads),
        ("POST", "/api/v1/uploads") => post(crate::provider::create),
        ("GET", "/api/v1/uploads/{id}") => get(crate::provider::status),
        ("PATCH", "/api/v1/uploads/{id}") => axum::routing::patch(crate::provider::append),
        ("POST", "/uploads/{provider}/{id}/receive") => post(crate::provider::receive),
        ("GET", "/static/upload.js") => get(crate::provider::script),
        ("GET", "/static/passkey.js") => get(crate::passkeys::script),
        ("POST", "/signin/passkey/begin") => post(crate::passkeys::signin_begin),
        ("POST", "/signin/passkey/finish") => post(crate::passkeys::signin_finish),
        ("GET", "/passkeys") => get(crate::passkeys::list),
        ("POST", "/passkeys/begin") => post(crate::passkeys::begin),
        ("POST", "/passkeys/finish") => post(crate::passkeys::finish),
        ("POST", "/passkeys/remove") => post(crate::passkeys::remove),
        ("GET", "/stop-requests") => get(crate::stops::form),
        ("POST", "/stop-requests") => post(crate::stops::record_one),
        ("POST", "/stop-requests/csv") => {
            post(crate::stops::record_csv).layer(DefaultBodyLimit::max(crate::stops::MAX_CSV))
        }
        ("GET", "/feasibility") => get(crate::feasibility::form),
        ("POST", "/feasibility") => post(crate::feasibility::count)
            .layer(DefaultBodyLimit::max(crate::feasibility::MAX_FORM)),
        ("GET", "/audit.csv") => get(crate::audit::audit_csv),
        ("GET", "/audit/export") => get(crate::operations::export),
        ("GET", "/receipts") => get(crate::operations::receipts),
        ("GET", "/link") => get(crate::operations::link),
        ("GET", "/exports") => get(crate::exports::list),
        ("POST", "/exports") => post(crate::exports::request),
        ("POST", "/exports/{id}/approve") => post(crate::exports::approve),
        ("POST", "/exports/{id}/run") => post(crate::exports::run),
        ("GET", "/exports/{id}/file") => get(crate::exports::download),
        ("POST", "/link/run") => post(crate::operations::run),
        ("POST", "/link/review/{pair}") => post(crate::operations::decide),
        ("GET", "/audit/consistency") => get(crate::audit::consistency_form),
        ("POST", "/audit/consistency") => post(crate::audit::consistency),
        ("GET", "/ledger.csv") => get(crate::audit::ledger_csv),
        ("GET", "/applications") => get(crate::applications::list),
        ("POST", "/applications") => post(crate::applications::submit),
        ("GET", "/applications/new") => get(crate::applications::new_form),
        ("GET", "/applications/{id}") => get(crate::applications::show),
        ("POST", "/applications/{id}/preview") => post(crate::committee::prepare),
        ("GET", "/api/v1/applications") => get(crate::applications::api_list),
        ("POST", "/applications/{id}/build") => post(crate::releases::build),
        ("GET", "/applications/{id}/package") => get(crate::releases::download),
        ("GET", "/committee") => get(crate::committee::meetings),
        ("POST", "/committee") => post(crate::committee::open_meeting),
        ("GET", "/committee/{meeting}") => get(crate::committee::docket),
        ("POST", "/committee/{meeting}/conflict") => post(crate::committee::conflict),
        ("POST", "/committee/{meeting}/vote") => post(crate::committee::vote),
        ("POST", "/committee/{meeting}/decide") => post(crate::committee::decide),
        _ => return Err(WebError::Route(format!("{method} {path}"))),
    })
}

/// The `lang` query of a page.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct LangQuery {
    pub(crate) lang: Option<String>,
}

/// A page in the request's language; an explicit choice is kept in a cookie.
fn page(q: &LangQuery, status: StatusCode, markup: Markup) -> Response {
    let mut resp = html(status, markup);
    if let Some(lang) = q.lang.as_deref().and_then(Lang::parse) {
        let cookie = format!(
            "lang={}; Path=/; Max-Age=31536000; Secure; HttpOnly; SameSite=Strict",
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A rendered page as an HTML response.
pub(crate) fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn lang(q: &LangQuery, headers: &HeaderMap) -> Lang {
    Lang::of_request(q.lang.as_deref(), headers)
}

/// Runs a library call on the home off the async workers (every call of the server that reads
/// or writes the home goes through here).
pub(crate) async fn read<T: Send + 'static, E: Into<WebError> + Send + 'static>(
    home: &Home,
    f: impl FnOnce(&Home) -> Result<T, E> + Send + 'static,
) -> Result<T, WebError> {
    let home = home.clone();
    tokio::task::spawn_blocking(move || f(&home).map_err(Into::into))
        .await
        .map_err(|e| WebError::Task(e.to_string()))?
}

/// A JSON refusal: `{"error": why}` (for the API and the pages' scripts).
pub(crate) fn json_refused(status: StatusCode, why: &str) -> Response {
    (status, Json(serde_json::json!({ "error": why }))).into_response()
}

/// A page's script, served as JavaScript.
pub(crate) fn script(body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A short page for a refusal (a message key; never the request's values).
pub(crate) fn refused(lang: Lang, status: StatusCode, key: &str) -> Response {
    html(status, pages::message(lang, key))
}

/// A failure: logged by kind, answered with a page that says nothing of it.
pub(crate) fn failed(lang: Lang, e: &WebError) -> Response {
    tracing::error!(error = %e, "a page could not be served");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message(lang, "failed"),
    )
}

async fn index(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    page(&q, StatusCode::OK, pages::index(lang(&q, &headers)))
}

async fn notices(
    State(st): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let l = lang(&q, &headers);
    match read(&st.home, public::notices).await {
        Ok(n) => page(&q, StatusCode::OK, pages::notices(l, &n)),
        Err(e) => failed(l, &e),
    }
}

async fn notice(
    State(st): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let l = lang(&q, &headers);
    if !public::valid_id(&provider) {
        return page(&q, StatusCode::NOT_FOUND, pages::message(l, "not_found"));
    }
    match read(&st.home, move |h| public::notice(h, &provider)).await {
        Ok(Some(n)) => page(&q, StatusCode::OK, pages::notice(l, &n)),
        Ok(None) => page(&q, StatusCode::NOT_FOUND, pages::message(l, "not_found")),
        Err(e) => failed(l, &e),
    }
}

/// A printable poster for the provider's waiting room: the notice in short, and a QR code of its
/// page at the server's public address.
async fn poster(
    State(st): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let l = lang(&q, &headers);
    if !public::valid_id(&provider) {
        return page(&q, StatusCode::NOT_FOUND, pages::message(l, "not_found"));
    }
    let base = st
        .public_url
        .get()
        .cloned()
        .unwrap_or_else(|| "https://localhost".into());
    match read(&st.home, move |h| public::notice(h, &provider)).await {
        Ok(Some(n)) => {
            let url = format!("{base}/notices/{}", n.id);
            page(&q, StatusCode::OK, pages::poster(l, &n, &url))
        }
        Ok(None) => page(&q, StatusCode::NOT_FOUND, pages::message(l, "not_found")),
        Err(e) => failed(l, &e),
    }
}

async fn register(
    State(st): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let l = lang(&q, &headers);
    match read(&st.home, public::register).await {
        Ok(r) => page(&q, StatusCode::OK, pages::register(l, &r)),
        Err(e) => failed(l, &e),
    }
}

async fn api_notices(State(st): State<AppState>) -> Response {
    match read(&st.home, public::notices).await {
        Ok(n) => Json(n).into_response(),
        Err(e) => failed(Lang::En, &e),
    }
}

async fn api_register(State(st): State<AppState>) -> Response {
    match read(&st.home, public::register).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => failed(Lang::En, &e),
    }
}

async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response()
}

async fn not_found(State(st): State<AppState>, req: Request) -> Response {
    let l = Lang::of_request(None, req.headers());
    if let Some(refused) = metered(&st, &req) {
        return refused;
    }
    html(StatusCode::NOT_FOUND, pages::message(l, "not_found"))
}

/// Counts a public request; the 429 answer when it is beyond the address's limit.
fn metered(st: &AppState, req: &Request) -> Option<Response> {
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    if st.meter.admit(address) {
        return None;
    }
    let l = Lang::of_request(None, req.headers());
    let mut resp = html(StatusCode::TOO_MANY_REQUESTS, pages::message(l, "too_many"));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    Some(resp)
}

/// The check before every route (see the module's documentation).
async fn access(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let route = ROUTES
        .iter()
        .find(|r| r.method == method && Some(r.path) == pattern.as_deref());
    let roles = match route.map(|r| r.access) {
        Some(Access::SignedIn(roles)) => roles,
        // Public, or a method the route does not have (answered 405 by the router).
        _ => {
            return match metered(&st, &req) {
                Some(refused) => refused,
                None => next.run(req).await,
            };
        }
    };
    let lang = Lang::of_request(None, req.headers());
    let live = cookie(req.headers(), COOKIE).and_then(|t| st.sessions.get(t, Instant::now()));
    let Some(ws) = live else {
        st.meter.deny();
        return if method == "GET" {
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/signin")]).into_response()
        } else {
            html(
                StatusCode::UNAUTHORIZED,
                pages::message(lang, "sign_in_required"),
            )
        };
    };
    let object = format!("{method} {}", pattern.unwrap_or_default());
    if !roles.contains(&ws.session.role) {
        return match audit_as(
            &st.home,
            &ws.session,
            "web.denied",
            object,
            "refused: role".into(),
        )
        .await
        {
            Ok(()) => html(StatusCode::FORBIDDEN, pages::message(lang, "forbidden")),
            Err(e) => failed(lang, &e),
        };
    }
    let session = ws.session.clone();
    req.extensions_mut().insert::<WebSession>(ws);
    let resp = next.run(req).await;
    let outcome = resp.status().as_u16().to_string();
    match audit_as(&st.home, &session, "web.request", object, outcome).await {
        Ok(()) => resp,
        Err(e) => failed(lang, &e),
    }
}

/// Appends an entry as a signed-in user (server-derived fields only).
async fn audit_as(
    home: &Home,
    s: &Session,
    action: &'static str,
    object: String,
    outcome: String,
) -> Result<(), WebError> {
    let s = s.clone();
    read(home, move |h| s.audit(h, action, &object, &outcome, None)).await
}

/// The headers every response carries: HTTPS only, no framing, no sniffing, no referrer, and a
/// content security policy that allows the site's own stylesheet and script and nothing inline.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        h.insert(*name, HeaderValue::from_static(value));
    }
    resp
}

/// The security headers and their values.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cache-control", "no-store"),
];
