//! The auditors' page: the whole log verified, and a search of its entries by action, actor and
//! days (`tokumei_vault::auditlog::search`, itself audited). Filters travel in the query: action
//! names, operator user names and dates, never a person's data.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use maud::html;
use tokumei_vault::auditlog::{self, Filter, Found, LogError};
use tokumei_vault::VaultError;

use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page_html, AppState};
use crate::session::WebSession;
use crate::WebError;

/// Entries shown at most.
const LIMIT: usize = 500;

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
    let (home, session, f) = (st.home.clone(), ws.session.clone(), filter.clone());
    let found =
        tokio::task::spawn_blocking(move || auditlog::search(&home, &session, &f, LIMIT)).await;
    match found {
        Ok(Ok(found)) => page_html(StatusCode::OK, page(lang, &filter, &found)),
        Ok(Err(LogError::Vault(VaultError::Refused(_)))) => page_html(
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
        Ok(Err(e)) => failed(lang, &WebError::Task(e.to_string())),
        Err(e) => failed(lang, &WebError::Task(e.to_string())),
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
