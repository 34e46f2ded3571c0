//! The providers' pages: uploads of sealed packages (`upload`: a page with a small script that
//! sends a file in resumable pieces, and the JSON API it uses, which any client may use), and for
//! technicians the uploads waiting to be received, each received with the library's receipt and
//! its per-file counts shown (quarantined records counted, never shown).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http_body_util::BodyExt;
use maud::{html, Markup};
use tokio::io::AsyncWriteExt;
use tokumei_vault::access::Role;
use tokumei_vault::receive::Outcome;

use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::json_refused as refused;
use crate::routes::{failed, html as page, read, AppState, LangQuery};
use crate::session::{same_token, WebSession};
use crate::upload::{self, Upload};
use crate::WebError;

/// Who sees the uploads page.
pub const UPLOADERS: &[Role] = &[Role::ProviderAdmin, Role::Technician];

/// The upload page's script (`/static/upload.js`): declares the upload, sends the file in pieces
/// of 64 MiB from where the server says it stands, shows progress, and resumes an upload of the
/// same size.
pub const SCRIPT: &str = include_str!("upload.js");

/// `GET /uploads`: a provider's uploads and the upload form; every upload, for a technician, with
/// the complete ones to receive.
pub async fn uploads(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let provider = ws.session.provider_id.clone();
    match read(&st.home, move |h| upload::list(h, provider.as_deref())).await {
        Ok(list) => page(StatusCode::OK, uploads_page(lang, &ws, &list, None)),
        Err(e) => failed(lang, &e),
    }
}

fn uploads_page(lang: Lang, ws: &WebSession, list: &[Upload], note: Option<Markup>) -> Markup {
    let technician = ws.session.role == Role::Technician;
    let content = html! {
        @if let Some(n) = note { div.note { (n) } }
        @if !technician {
            form #upload data-csrf=(ws.csrf) {
                p { label { (lang.t("upload_file")) br; input #file type="file" required; } }
                p { button type="submit" { (lang.t("upload_send")) } }
                p { progress #progress max="1" value="0" {} " " span #status {} }
            }
            script src="/static/upload.js" {}
        }
        table {
            tr {
                th { (lang.t("provider")) } th { (lang.t("upload")) } th { (lang.t("user_name")) }
                th { (lang.t("upload_received")) } th { (lang.t("date")) } th {}
            }
            @for u in list {
                tr.upload data-id=(u.id) data-size=(u.size) data-offset=(u.offset) {
                    td { (u.provider) } td { code { (u.id) } } td { (u.user) }
                    td { (u.offset) " / " (u.size) } td { (u.created_at) }
                    td { @if technician && u.complete() {
                        form method="post" action=(format!("/uploads/{}/{}/receive", u.provider, u.id)) {
                            input type="hidden" name="csrf" value=(ws.csrf);
                            button type="submit" { (lang.t("receive")) }
                        }
                    } }
                }
            }
        }
    };
    layout(lang, "/uploads", &lang.t("page_uploads"), content)
}

/// What a client declares.
#[derive(serde::Deserialize)]
pub struct Declared {
    size: u64,
    #[serde(default)]
    sha256: Option<String>,
}

fn csrf_header_ok(ws: &WebSession, headers: &HeaderMap) -> bool {
    same_token(&ws.csrf, crate::session::csrf_header(headers))
}

/// `POST /api/v1/uploads`: declares an upload (JSON `{size, sha256?}`, the CSRF token in
/// `X-CSRF-Token`).
pub async fn create(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    Json(d): Json<Declared>,
) -> Response {
    if !csrf_header_ok(&ws, &headers) {
        return refused(StatusCode::FORBIDDEN, "CSRF token");
    }
    let s = ws.session;
    match read(&st.home, move |h| upload::create(h, &s, d.size, d.sha256)).await {
        Ok(up) => (StatusCode::CREATED, Json(up)).into_response(),
        Err(WebError::Upload(why)) => refused(StatusCode::BAD_REQUEST, &why),
        Err(WebError::NoRoom(why)) => refused(StatusCode::INSUFFICIENT_STORAGE, &why),
        Err(e) => failed(Lang::En, &e),
    }
}

/// `GET /api/v1/uploads/{id}`: an upload of the session's provider, with its offset.
pub async fn status(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(id): Path<String>,
) -> Response {
    let Some(provider) = ws.session.provider_id.clone() else {
        return refused(StatusCode::NOT_FOUND, "no such upload");
    };
    match read(&st.home, move |h| upload::get(h, &provider, &id)).await {
        Ok(Some(up)) => Json(up).into_response(),
        Ok(None) => refused(StatusCode::NOT_FOUND, "no such upload"),
        Err(e) => failed(Lang::En, &e),
    }
}

fn with_offset(status: StatusCode, offset: u64) -> Response {
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&offset.to_string()) {
        resp.headers_mut().insert("upload-offset", v);
    }
    resp
}

/// `PATCH /api/v1/uploads/{id}`: the next piece, appended at `Upload-Offset` (which must be where
/// the upload stands: 409 with the offset otherwise), streamed to disk and synced; 204 with the new
/// offset. One piece at a time per upload; bytes beyond the declared size are refused (413) and
/// cut off.
pub async fn append(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !csrf_header_ok(&ws, &headers) {
        return refused(StatusCode::FORBIDDEN, "CSRF token");
    }
    let Some(offset) = headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return refused(StatusCode::BAD_REQUEST, "Upload-Offset");
    };
    let Some(provider) = ws.session.provider_id.clone() else {
        return refused(StatusCode::NOT_FOUND, "no such upload");
    };
    let Some(_claim) = st.uploading.claim(&id) else {
        return refused(
            StatusCode::CONFLICT,
            "another piece of this upload is being sent",
        );
    };
    let (p, i) = (provider.clone(), id.clone());
    let up = match read(&st.home, move |h| upload::get(h, &p, &i)).await {
        Ok(Some(up)) => up,
        Ok(None) => return refused(StatusCode::NOT_FOUND, "no such upload"),
        Err(e) => return failed(Lang::En, &e),
    };
    if offset != up.offset {
        return with_offset(StatusCode::CONFLICT, up.offset);
    }
    let path = upload::part(&st.home, &provider, &id);
    match write_piece(&path, &up, body).await {
        Ok((written, false)) => with_offset(StatusCode::NO_CONTENT, written),
        Ok((written, true)) => with_offset(StatusCode::PAYLOAD_TOO_LARGE, written),
        Err(e) => failed(Lang::En, &e),
    }
}

/// Appends the body to the upload's file until it ends or would pass the declared size (then the
/// piece is cut back to where it began); synced. Returns the offset and whether it was too large.
async fn write_piece(
    path: &std::path::Path,
    up: &Upload,
    mut body: Body,
) -> Result<(u64, bool), WebError> {
    let io = |e| crate::error::io(path, e);
    let file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .await
        .map_err(io)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = up.offset;
    let mut too_large = false;
    // A client that goes away ends the piece: what arrived stays, and the offset says so.
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if written + data.len() as u64 > up.size {
            too_large = true;
            break;
        }
        out.write_all(&data).await.map_err(io)?;
        written += data.len() as u64;
    }
    out.flush().await.map_err(io)?;
    let file = out.into_inner();
    if too_large {
        file.set_len(up.offset).await.map_err(io)?;
        written = up.offset;
    }
    file.sync_data().await.map_err(io)?;
    Ok((written, too_large))
}

/// `POST /uploads/{provider}/{id}/receive`: a technician receives a complete upload.
pub async fn receive(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path((provider, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = match crate::forms::checked(&ws, &headers, &body) {
        Ok((lang, _)) => lang,
        Err(refused) => return refused,
    };
    let (s, key) = (ws.session.clone(), st.key.clone());
    let done = read(&st.home, move |h| {
        let outcome = upload::receive(h, &s, &key, &provider, &id);
        Ok::<_, WebError>((outcome, upload::list(h, None)?))
    });
    let (outcome, list) = match done.await {
        Ok(v) => v,
        Err(e) => return failed(lang, &e),
    };
    match outcome {
        Ok(o) => page(
            StatusCode::OK,
            uploads_page(lang, &ws, &list, Some(receipt(lang, &o))),
        ),
        Err(WebError::Upload(why))
        | Err(WebError::Vault(tokumei_vault::VaultError::Refused(why))) => {
            let note = html! { (lang.t("receive_refused")) ": " (why) };
            page(
                StatusCode::BAD_REQUEST,
                uploads_page(lang, &ws, &list, Some(note)),
            )
        }
        Err(e) => failed(lang, &e),
    }
}

/// A receipt: the package, and what each file gave (records read and quarantined, counts only).
fn receipt(lang: Lang, o: &Outcome) -> Markup {
    match o {
        Outcome::AlreadyReceived {
            package_id,
            received_at,
        } => html! {
            p { (lang.t("receive_again")) ": " (package_id) " " (received_at) }
        },
        Outcome::Received {
            manifest, report, ..
        } => html! {
            p { (lang.t("receive_done")) ": " (manifest.package_id) " (" (manifest.provider_id) ") · "
                (lang.t("receive_stored")) " " (report.stored) " · "
                (lang.t("receive_quarantined")) " " (report.quarantined) }
            table {
                tr { th { (lang.t("file")) } th { (lang.t("receive_read")) } th { (lang.t("receive_quarantined")) } }
                @for f in &report.files { tr { td { (f.path) } td { (f.read) } td { (f.quarantined) } } }
            }
        },
    }
}

/// `GET /static/upload.js`.
pub async fn script() -> Response {
    crate::routes::script(SCRIPT)
}
