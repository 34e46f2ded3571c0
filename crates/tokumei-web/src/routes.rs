//! The route table and the router built from it. Every route is in [`ROUTES`] with who may use it;
//! the router is made from the table (a route without a handler is an error), so a test that walks
//! the table walks every route the server answers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use maud::Markup;
use tokumei_vault::Home;

use crate::i18n::Lang;
use crate::meter::Meter;
use crate::{pages, public, WebError};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without signing in: rate-limited per address and counted per interval.
    Public,
}

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
    route("/notices", "the providers' notices"),
    route(
        "/notices/{provider}",
        "one provider's notice and how to ask for a stop",
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

/// What every handler shares: the home and the public meter.
#[derive(Clone)]
pub struct AppState {
    /// The operator home.
    pub home: Home,
    /// Public requests of the current interval.
    pub meter: Arc<Meter>,
}

/// The router of [`ROUTES`], with the security headers on every response and the meter on public
/// routes.
pub fn router(state: AppState) -> Result<Router, WebError> {
    let mut r: Router<AppState> = Router::new();
    for route in ROUTES {
        r = r.route(route.path, handler(route.path)?);
    }
    Ok(r.fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), public_meter))
        .layer(middleware::from_fn(security_headers))
        .with_state(state))
}

fn handler(path: &str) -> Result<MethodRouter<AppState>, WebError> {
    Ok(match path {
        "/" => get(index),
        "/notices" => get(notices),
        "/notices/{provider}" => get(notice),
        "/register" => get(register),
        "/api/v1/notices" => get(api_notices),
        "/api/v1/register" => get(api_register),
        "/openapi.json" => get(openapi),
        "/static/site.css" => get(css),
        other => return Err(WebError::Route(other.to_string())),
    })
}

/// The `lang` query of a page.
#[derive(Debug, Default, serde::Deserialize)]
struct LangQuery {
    lang: Option<String>,
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
fn html(status: StatusCode, markup: Markup) -> Response {
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

/// Reads from the home off the async workers.
async fn read<T: Send + 'static>(
    home: &Home,
    f: impl FnOnce(&Home) -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    let home = home.clone();
    tokio::task::spawn_blocking(move || f(&home))
        .await
        .map_err(|e| WebError::Task(e.to_string()))?
}

/// A failure: logged by kind, answered with a page that says nothing of it.
fn failed(lang: Lang, e: &WebError) -> Response {
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

async fn not_found(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let l = lang(&q, &headers);
    html(StatusCode::NOT_FOUND, pages::message(l, "not_found"))
}

/// Public requests: counted, and refused with 429 beyond the address's limit for the interval.
async fn public_meter(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    if st.meter.admit(address) {
        return next.run(req).await;
    }
    let l = Lang::of_request(None, req.headers());
    let mut resp = html(StatusCode::TOO_MANY_REQUESTS, pages::message(l, "too_many"));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}

/// The headers every response carries: HTTPS only, no framing, no sniffing, no referrer, and a
/// content security policy that allows the site's own stylesheet and nothing inline.
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
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cache-control", "no-store"),
];
