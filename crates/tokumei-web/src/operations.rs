//! The technicians' and providers' operations pages: the receipts with their quarantine counted
//! (`tokumei_vault::quarantine::receipts`: a provider's user sees its own), the link run and the
//! clerical review side by side (`tokumei_link::run`, `tokumei_link::review`: identified data, for
//! technicians only, each read audited), and a provider's audit export with its inclusion proofs
//! (`tokumei_vault::auditlog::export_provider`), downloaded as JSON.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use tokumei_link::review::{Decision, PendingPair};
use tokumei_vault::access::Role;
use tokumei_vault::quarantine::Counted;

use crate::applications::see_other;
use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page, read, AppState, LangQuery};
use crate::session::WebSession;
use crate::WebError;

/// Who sees receipts.
pub const RECEIPT_READERS: &[Role] = &[Role::Technician, Role::Auditor, Role::ProviderAdmin];
/// Pairs shown at once.
const PAIRS: usize = 50;
/// The job key of a link run.
const LINK_JOB: &str = "link run";

/// `GET /receipts`.
pub async fn receipts(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let (s, key) = (ws.session.clone(), st.key.clone());
    match read(&st.home, move |h| {
        tokumei_vault::quarantine::receipts(h, &s, &key)
    })
    .await
    {
        Ok(list) => page(StatusCode::OK, receipts_page(lang, &ws, &list)),
        Err(e) => failed(lang, &e),
    }
}

fn receipts_page(lang: Lang, ws: &WebSession, list: &[Counted]) -> Markup {
    let export = match &ws.session.provider_id {
        Some(p) => format!("/audit/export?provider={p}"),
        None => String::new(),
    };
    let content = html! {
        @if !export.is_empty() {
            p { a href=(export) download { (lang.t("audit_export")) } }
        }
        table {
            tr {
                th { (lang.t("package")) } th { (lang.t("provider")) } th { (lang.t("date")) }
                th { (lang.t("files")) } th { (lang.t("records")) } th { (lang.t("receive_quarantined")) }
                th { (lang.t("batch_hash")) }
            }
            @for c in list {
                tr {
                    td { code { (c.receipt.package_id) } } td { (c.receipt.provider_id) }
                    td { (c.receipt.received_at) } td { (c.receipt.files) } td { (c.receipt.records) }
                    td { (c.quarantined) } td { code { (c.receipt.batch_hash) } }
                }
            }
        }
    };
    layout(lang, "/receipts", &lang.t("page_receipts"), content)
}

/// `GET /link`: the last run's state, the run button and the pending pairs side by side.
pub async fn link(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let (s, key) = (ws.session.clone(), st.key.clone());
    let pending = read(&st.home, move |h| {
        tokumei_link::review::pending(h, &s, &key)
    });
    match pending.await {
        Ok(pairs) => page(StatusCode::OK, link_page(lang, &ws, &st, &pairs)),
        // Before the first run there is no index: nothing to review.
        Err(WebError::Link(tokumei_link::LinkError::Vault(tokumei_vault::VaultError::Io {
            ..
        })))
        | Err(WebError::Link(tokumei_link::LinkError::Index(_))) => {
            page(StatusCode::OK, link_page(lang, &ws, &st, &[]))
        }
        Err(e) => failed(lang, &e),
    }
}

fn link_page(lang: Lang, ws: &WebSession, st: &AppState, pairs: &[PendingPair]) -> Markup {
    let content = html! {
        @if let Some(why) = st.jobs.failure(LINK_JOB) { p.note { (lang.t("link_failed")) ": " (why) } }
        @if st.jobs.running(LINK_JOB) {
            p.note { (lang.t("link_running")) }
        } @else {
            form method="post" action="/link/run" {
                input type="hidden" name="csrf" value=(ws.csrf);
                button type="submit" { (lang.t("link_run")) }
            }
        }
        h2 { (lang.t("link_review")) ": " (pairs.len()) }
        @for p in pairs.iter().take(PAIRS) {
            section {
                h3 { (lang.t("pair")) " " (p.id) " · p = " (format!("{:.3}", p.probability)) }
                table {
                    @for f in &p.fields {
                        tr.(if f.left == f.right { "same" } else { "differ" }) {
                            th { (lang.t(&format!("field_{}", f.label))) } td { (f.left) } td { (f.right) }
                        }
                    }
                }
                @for (d, label) in [("accepted", "pair_same"), ("rejected", "pair_different")] {
                    form method="post" action=(format!("/link/review/{}", p.id)) {
                        input type="hidden" name="csrf" value=(ws.csrf);
                        input type="hidden" name="decision" value=(d);
                        button type="submit" { (lang.t(label)) }
                    }
                }
            }
        }
    };
    layout(lang, "/link", &lang.t("page_link"), content)
}

/// `POST /link/run`: a link run in the background, under the home's writer lock.
pub async fn run(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = crate::forms::checked(&ws, &headers, &body) {
        return refused;
    }
    let (home, key, s) = (st.home.clone(), st.key.clone(), ws.session);
    st.jobs
        .run(LINK_JOB.to_string(), move || -> Result<(), WebError> {
            let lock = writer(&home, "link")?;
            let settings = tokumei_link::default_settings()?;
            tokumei_link::run(&home, &s, &key, &settings, &lock)?;
            Ok(())
        });
    see_other("/link")
}

fn writer(
    home: &tokumei_vault::Home,
    what: &str,
) -> Result<tokumei_vault::lock::WriterLock, WebError> {
    Ok(tokumei_vault::lock::writer(
        home,
        what,
        tokumei_vault::lock::wait_from_env(),
        &|_| {},
    )?)
}

/// `POST /link/review/{id}`: a technician's decision on a pair.
pub async fn decide(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Path(pair): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let decision = match f.one("decision").as_str() {
        "accepted" => Decision::Accepted,
        "rejected" => Decision::Rejected,
        _ => return crate::routes::refused(lang, StatusCode::BAD_REQUEST, "failed"),
    };
    let (s, key) = (ws.session, st.key.clone());
    let done = read(&st.home, move |h| -> Result<(), WebError> {
        let lock = writer(h, "link review")?;
        Ok(tokumei_link::review::decide(
            h, &s, &key, pair, decision, &lock,
        )?)
    });
    match done.await {
        Ok(()) => see_other("/link"),
        Err(WebError::Link(tokumei_link::LinkError::NoPair(_)))
        | Err(WebError::Link(tokumei_link::LinkError::AlreadyDecided { .. })) => {
            crate::routes::refused(lang, StatusCode::CONFLICT, "pair_decided")
        }
        Err(e) => failed(lang, &e),
    }
}

/// The export's query: the provider (a provider's user may name only its own).
#[derive(serde::Deserialize)]
pub struct ExportQuery {
    provider: String,
}

/// `GET /audit/export?provider=ID`: the provider's audit entries with inclusion proofs (JSON).
pub async fn export(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<ExportQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !crate::public::valid_id(&q.provider) {
        return crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found");
    }
    let s = ws.session;
    let done = read(&st.home, move |h| -> Result<Vec<u8>, WebError> {
        let dir = h.root.join("web/tmp");
        std::fs::create_dir_all(&dir).map_err(|e| crate::error::io(&dir, e))?;
        let file = tempfile_in(&dir)?;
        let exported = tokumei_vault::auditlog::export_provider(h, &s, &q.provider, &file);
        let bytes = std::fs::read(&file);
        let _ = std::fs::remove_file(&file);
        exported?;
        bytes.map_err(|e| crate::error::io(&file, e))
    });
    match done.await {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"audit-export.json\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(WebError::Vault(tokumei_vault::VaultError::Denied(_))) => {
            crate::routes::refused(lang, StatusCode::FORBIDDEN, "forbidden")
        }
        Err(e) => failed(lang, &e),
    }
}

/// A fresh file name in `dir` (random).
fn tempfile_in(dir: &std::path::Path) -> Result<std::path::PathBuf, WebError> {
    let name =
        crate::session::random_token().ok_or_else(|| WebError::Task("no random name".into()))?;
    Ok(dir.join(format!("{}.json", &name[..32])))
}
