//! The auditors' pages: the whole log verified, and a search of its entries by action, actor and
//! days (`tokumei_vault::auditlog::search`, itself audited; filters travel in the query: action
//! names, operator user names and dates, never a person's data); the users' grants with the
//! reviews that are due; the provision ledger.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use maud::html;
use tokumei_review::{Provision, Review};
use tokumei_vault::access::Role;
use tokumei_vault::auditlog::{self, Filter, Found, LogError};
use tokumei_vault::users::{self, Grant};
use tokumei_vault::VaultError;

use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page_html, read, AppState, LangQuery};
use crate::session::WebSession;
use crate::WebError;

/// Entries shown at most.
const LIMIT: usize = 500;
/// Entries downloaded at most.
const CSV_LIMIT: usize = 100_000;

/// The page's query: the filter, and the language.
#[derive(serde::Deserialize)]
pub struct AuditQuery {
    #[serde(flatten)]
    filter: Filter,
    lang: Option<String>,
}

/// `GET /audit`.
pub async fn audit_log(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let filter = q.filter;
    let (session, f) = (ws.session, filter.clone());
    match read(&st.home, move |h| auditlog::search(h, &session, &f, LIMIT)).await {
        Ok(found) => page_html(StatusCode::OK, page(lang, &filter, &found)),
        Err(WebError::Log(LogError::Vault(VaultError::Refused(_)))) => page_html(
            StatusCode::BAD_REQUEST,
            page(
                lang,
                &Filter::default(),
                &Found {
                    verified: Err(lang.t("bad_filter")),
                    entries: Vec::new(),
                    matched: 0,
                },
            ),
        ),
        Err(e) => failed(lang, &e),
    }
}

fn page(lang: Lang, f: &Filter, found: &Found) -> maud::Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let content = html! {
        @match &found.verified {
            Ok(v) => p.note {
                (lang.t("audit_intact")) " " (lang.t("entries")) ": " (v.entries) "; "
                (lang.t("tree_root")) ": " code { (v.root) }
            },
            Err(why) => p.note { (lang.t("audit_broken")) ": " (why) },
        }
        form method="get" action="/audit" {
            label { (lang.t("filter_action")) " " input type="text" name="action" value=(value(&f.action)); } " "
            label { (lang.t("filter_actor")) " " input type="text" name="actor" value=(value(&f.actor)); } " "
            label { (lang.t("filter_from")) " " input type="date" name="from" value=(value(&f.from)); } " "
            label { (lang.t("filter_to")) " " input type="date" name="to" value=(value(&f.to)); } " "
            button type="submit" { (lang.t("search")) }
        }
        p { (lang.t("matched")) ": " (found.matched) }
        table {
            tr {
                th { (lang.t("seq")) } th { (lang.t("time")) } th { (lang.t("filter_actor")) }
                th { (lang.t("role")) } th { (lang.t("action")) } th { (lang.t("object")) }
                th { (lang.t("outcome")) } th { (lang.t("provider")) }
            }
            @for (seq, e) in &found.entries {
                tr {
                    td { (seq) } td { (e.time) } td { (e.actor) } td { (e.role) } td { (e.action) }
                    td { (e.object) } td { (e.outcome) } td { (e.provider.as_deref().unwrap_or("")) }
                }
            }
        }
    };
    layout(lang, "/audit", &lang.t("audit_title"), content)
}

/// `GET /users`: every user's grant, who requested and approved it, and the reviews that are due
/// (`tokumei_vault::users::list`).
pub async fn users(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let session = ws.session;
    match read(&st.home, move |h| users::list(h, &session)).await {
        Ok(grants) => page_html(StatusCode::OK, users_page(lang, &grants)),
        Err(e) => failed(lang, &e),
    }
}

fn users_page(lang: Lang, grants: &[Grant]) -> maud::Markup {
    let due = grants.iter().filter(|g| g.review_due).count();
    let status = |g: &Grant| match (&g.user.revoked_at, g.review_due) {
        (Some(_), _) => lang.t("status_revoked"),
        (None, true) => lang.t("status_review_due"),
        (None, false) => lang.t("status_active"),
    };
    let content = html! {
        p.note { (lang.t("reviews_due")) ": " (due) }
        table {
            tr {
                th { (lang.t("user_name")) } th { (lang.t("role")) } th { (lang.t("provider")) }
                th { (lang.t("requested_by")) } th { (lang.t("approved_by")) } th { (lang.t("granted")) }
                th { (lang.t("reviewed")) } th { (lang.t("status")) }
            }
            @for g in grants {
                tr {
                    td { (g.user.name) } td { (g.user.role.code()) } td { (g.user.provider_id.as_deref().unwrap_or("")) }
                    td { (g.user.requested_by) } td { (g.user.approved_by) } td { (g.user.granted_at) }
                    td { (g.user.reviewed_at) } td { (status(g)) }
                }
            }
        }
    };
    layout(lang, "/users", &lang.t("page_users"), content)
}

/// Who may read the provision ledger (as `tokumei release list`).
pub const LEDGER_ROLES: &[Role] = &[Role::Technician, Role::Auditor, Role::Committee];

/// The provision ledger, for the roles that read it (as `tokumei release list`).
async fn provisions(
    st: &AppState,
    session: tokumei_vault::access::Session,
) -> Result<Vec<Provision>, WebError> {
    read(&st.home, move |h| -> Result<Vec<Provision>, WebError> {
        session.require(h, "release.list", LEDGER_ROLES)?;
        Ok(Review::open(h)?.provisions()?)
    })
    .await
}

/// `GET /ledger`: every release provided, with its package's hash, contract and destruction.
pub async fn ledger(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    match provisions(&st, ws.session).await {
        Ok(ledger) => page_html(StatusCode::OK, ledger_page(lang, &ledger)),
        Err(e) => failed(lang, &e),
    }
}

fn ledger_page(lang: Lang, ledger: &[Provision]) -> maud::Markup {
    let content = html! {
        table {
            tr {
                th { (lang.t("release")) } th { (lang.t("application")) } th { (lang.t("recipient")) }
                th { (lang.t("kind")) } th { (lang.t("date")) } th { (lang.t("contract_expiry")) }
                th { (lang.t("package")) } th { (lang.t("destroyed")) }
            }
            @for p in ledger {
                tr {
                    td { (p.release_id) } td { (p.application_id) } td { (p.recipient) } td { (p.kind) }
                    td { (p.provided_at) } td { (p.contract_expiry) } td { code { (p.package_sha256) } }
                    td { (p.destroyed_at.as_deref().unwrap_or("—")) }
                }
            }
        }
    };
    layout(lang, "/ledger", &lang.t("page_ledger"), content)
}

/// `GET /audit.csv`: the entries the filter finds, as CSV (the search audited as on the page).
pub async fn audit_csv(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let (session, f) = (ws.session, q.filter);
    match read(&st.home, move |h| {
        auditlog::search(h, &session, &f, CSV_LIMIT)
    })
    .await
    {
        Ok(found) => {
            let rows: Vec<Vec<String>> = found
                .entries
                .iter()
                .map(|(seq, e)| {
                    vec![
                        seq.to_string(),
                        e.time.clone(),
                        e.actor.clone(),
                        e.role.clone(),
                        e.action.clone(),
                        e.object.clone(),
                        e.outcome.clone(),
                        e.provider.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let header = [
                "seq", "time", "actor", "role", "action", "object", "outcome", "provider",
            ];
            crate::csv::download("audit.csv", crate::csv::table(&header, &rows))
        }
        Err(WebError::Log(LogError::Vault(VaultError::Refused(_)))) => page_html(
            StatusCode::BAD_REQUEST,
            crate::pages::message(lang, "bad_filter"),
        ),
        Err(e) => failed(lang, &e),
    }
}

/// `GET /ledger.csv`: the provision ledger as CSV.
pub async fn ledger_csv(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    match provisions(&st, ws.session).await {
        Ok(ledger) => {
            let rows: Vec<Vec<String>> = ledger
                .iter()
                .map(|p| {
                    vec![
                        p.release_id.clone(),
                        p.application_id.clone(),
                        p.recipient.clone(),
                        p.kind.clone(),
                        p.provided_at.clone(),
                        p.contract_expiry.clone(),
                        p.package_sha256.clone(),
                        p.decision_sha256.clone(),
                        p.destroyed_at.clone().unwrap_or_default(),
                        p.destruction_certificate_sha256.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let header = [
                "release_id",
                "application_id",
                "recipient",
                "kind",
                "provided_at",
                "contract_expiry",
                "package_sha256",
                "decision_sha256",
                "destroyed_at",
                "destruction_certificate_sha256",
            ];
            crate::csv::download("ledger.csv", crate::csv::table(&header, &rows))
        }
        Err(e) => failed(lang, &e),
    }
}

/// `GET /audit/consistency`: the operator's last signed tree head (to keep outside the home), and
/// the form to check that the log extends an earlier one.
pub async fn consistency_form(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    match read(&st.home, current_head).await {
        Ok(head) => page_html(StatusCode::OK, consistency_page(lang, &ws, &head, "", None)),
        Err(e) => failed(lang, &e),
    }
}

/// The operator's last signed head as JSON (empty before there is one).
fn current_head(h: &tokumei_vault::Home) -> Result<String, WebError> {
    let v = h.verify_audit(None)?;
    Ok(v.operator_head
        .and_then(|head| serde_json::to_string_pretty(&head).ok())
        .unwrap_or_default())
}

fn consistency_page(
    lang: Lang,
    ws: &WebSession,
    head: &str,
    earlier: &str,
    result: Option<maud::Markup>,
) -> maud::Markup {
    let content = html! {
        @if let Some(r) = result { div.note { (r) } }
        h2 { (lang.t("consistency_current")) }
        p { (lang.t("consistency_keep")) }
        pre { code { (head) } }
        h2 { (lang.t("consistency_check")) }
        form method="post" action="/audit/consistency" {
            input type="hidden" name="csrf" value=(ws.csrf);
            p { label { (lang.t("consistency_earlier")) br;
                textarea name="head" rows="8" cols="90" required { (earlier) } } }
            p { button type="submit" { (lang.t("consistency_verify")) } }
        }
    };
    layout(
        lang,
        "/audit/consistency",
        &lang.t("page_audit_consistency"),
        content,
    )
}

/// `POST /audit/consistency`: the log checked against an earlier signed head.
pub async fn consistency(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let earlier = f.one("head");
    let (s, text) = (ws.session.clone(), earlier.clone());
    let done = read(&st.home, move |h| -> Result<_, WebError> {
        let proved = match tokumei_audit::read_checkpoint(text.as_bytes()) {
            Ok(old) => auditlog::consistent(h, &s, &old).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        Ok((proved, current_head(h)?))
    });
    let (proved, head) = match done.await {
        Ok(v) => v,
        Err(e) => return failed(lang, &e),
    };
    let (status, result) = match proved {
        Ok(c) => (
            StatusCode::OK,
            html! {
                (lang.t("consistency_ok")) ": " (c.old.size) " → " (c.new.size) " · "
                (lang.t("consistency_proof")) " " (c.proof.len())
            },
        ),
        Err(why) => (
            StatusCode::CONFLICT,
            html! { (lang.t("consistency_failed")) ": " (why) },
        ),
    };
    page_html(
        status,
        consistency_page(lang, &ws, &head, &earlier, Some(result)),
    )
}
