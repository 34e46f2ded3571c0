//! Exports from the identified zone under the two-person rule, on the web
//! (`tokumei_vault::export`): a technician requests one (what, of which package, to whom, why), a
//! second technician approves it, and the requester or the approver runs it once; the sealed file
//! (encrypted to the recipient the approver saw) is kept under `web/exports/` for them to download.

use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use tokumei_vault::export::{self, ExportKind, ExportRequest};
use tokumei_vault::{Home, VaultError};

use crate::applications::see_other;
use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page, read, AppState, LangQuery};
use crate::session::WebSession;
use crate::WebError;

fn file(home: &Home, id: i64) -> PathBuf {
    home.root
        .join("web/exports")
        .join(format!("export-{id}.tar.age"))
}

/// `GET /exports`.
pub async fn list(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    match read(&st.home, requests).await {
        Ok((list, packages)) => page(
            StatusCode::OK,
            list_page(lang, &ws, &st.home, &list, &packages, None),
        ),
        Err(e) => failed(lang, &e),
    }
}

fn requests(h: &Home) -> Result<(Vec<ExportRequest>, Vec<String>), WebError> {
    let c = h.catalog()?;
    Ok((c.export_requests()?, c.receipt_ids()?))
}

fn list_page(
    lang: Lang,
    ws: &WebSession,
    home: &Home,
    list: &[ExportRequest],
    packages: &[String],
    note: Option<String>,
) -> Markup {
    let me = &ws.session.user;
    let content = html! {
        @if let Some(n) = note { p.note { (n) } }
        p { (lang.t("exports_intro")) }
        table {
            tr {
                th { "#" } th { (lang.t("kind")) } th { (lang.t("package")) } th { (lang.t("purpose")) }
                th { (lang.t("requested_by")) } th { (lang.t("approved_by")) } th { (lang.t("state")) } th {}
            }
            @for r in list {
                tr {
                    td { (r.id) } td { (r.kind.code()) } td { code { (r.package_id) } } td { (r.purpose) }
                    td { (r.requested_by) } td { (r.approved_by.as_deref().unwrap_or("—")) }
                    td { (r.executed_at.as_deref().unwrap_or("")) }
                    td { (actions(lang, ws, home, r, me)) }
                }
            }
        }
        h2 { (lang.t("export_request")) }
        form method="post" action="/exports" {
            input type="hidden" name="csrf" value=(ws.csrf);
            p { label { (lang.t("kind")) br; select name="kind" {
                option value="quarantine" { "quarantine" } option value="identities" { "identities" } } } }
            p { label { (lang.t("package")) br; select name="package" {
                @for p in packages { option value=(p) { (p) } } } } }
            p { label { (lang.t("export_recipient")) br; input type="text" name="recipient" required; } }
            p { label { (lang.t("purpose")) br; input type="text" name="purpose" required; } }
            p { button type="submit" { (lang.t("export_request")) } }
        }
    };
    layout(lang, "/exports", &lang.t("page_exports"), content)
}

/// What the user may do with a request: approve it (not their own), run it (approved, theirs or
/// approved by them), download its file (run).
fn actions(lang: Lang, ws: &WebSession, home: &Home, r: &ExportRequest, me: &str) -> Markup {
    let mine = r.requested_by == me || r.approved_by.as_deref() == Some(me);
    let button = |what: &str, label: &str| {
        html! {
            form method="post" action=(format!("/exports/{}/{what}", r.id)) {
                input type="hidden" name="csrf" value=(ws.csrf);
                button type="submit" { (lang.t(label)) }
            }
        }
    };
    html! {
        @if r.approved_by.is_none() && r.requested_by != me { (button("approve", "export_approve")) }
        @if r.approved_by.is_some() && r.executed_at.is_none() && mine { (button("run", "export_run")) }
        @if r.executed_at.is_some() && mine && file(home, r.id).exists() {
            a href=(format!("/exports/{}/file", r.id)) download { (lang.t("download")) }
        }
    }
}

/// `POST /exports`: a request.
pub async fn request(
    st: State<AppState>,
    ws: Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(st, ws, headers, body, None).await
}

/// `POST /exports/{id}/approve`.
pub async fn approve(
    st: State<AppState>,
    ws: Extension<WebSession>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(st, ws, headers, body, Some((id, false))).await
}

/// `POST /exports/{id}/run`.
pub async fn run(
    st: State<AppState>,
    ws: Extension<WebSession>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(st, ws, headers, body, Some((id, true))).await
}

/// A request (no id), an approval or a run; the list again, with the refusal if there is one.
async fn act(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
    on: Option<(i64, bool)>,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let (s, key) = (ws.session.clone(), st.key.clone());
    let done = read(&st.home, move |h| -> Result<_, WebError> {
        let outcome = match on {
            None => {
                let kind = ExportKind::parse(&f.one("kind"))
                    .ok_or_else(|| VaultError::Refused("no such kind of export".into()));
                kind.and_then(|k| {
                    export::request(
                        h,
                        &s,
                        k,
                        &f.one("package"),
                        &f.one("recipient"),
                        &f.one("purpose"),
                    )
                })
                .map(|_| ())
            }
            Some((id, false)) => export::approve(h, &s, id).map(|_| ()),
            Some((id, true)) => {
                let out = file(h, id);
                let dir = out.parent().map(PathBuf::from).unwrap_or_default();
                std::fs::create_dir_all(&dir).map_err(|e| crate::error::io(&dir, e))?;
                export::run(h, &s, &key, id, &out).map(|_| ())
            }
        };
        Ok((outcome, requests(h)?))
    });
    let (outcome, (list, packages)) = match done.await {
        Ok(v) => v,
        Err(e) => return failed(lang, &e),
    };
    match outcome {
        Ok(()) => see_other("/exports"),
        Err(VaultError::Denied(why)) | Err(VaultError::Refused(why)) => page(
            StatusCode::FORBIDDEN,
            list_page(lang, &ws, &st.home, &list, &packages, Some(why)),
        ),
        Err(e) => failed(lang, &WebError::Vault(e)),
    }
}

/// `GET /exports/{id}/file`: the sealed file of a run export, for its requester or approver.
pub async fn download(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    let me = ws.session.user.clone();
    let found = read(&st.home, move |h| -> Result<Option<Vec<u8>>, WebError> {
        let Some(r) = h.catalog()?.export_request(id)? else {
            return Ok(None);
        };
        if r.requested_by != me && r.approved_by.as_deref() != Some(me.as_str()) {
            return Ok(None);
        }
        let path = file(h, id);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::error::io(&path, e)),
        }
    });
    match found.await {
        Ok(Some(bytes)) => {
            let name = format!("attachment; filename=\"export-{id}.tar.age\"");
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&name) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Ok(None) => crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found"),
        Err(e) => failed(lang, &e),
    }
}
