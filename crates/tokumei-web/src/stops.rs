//! Requests to stop (停止の求め) on the web: a provider's user records those its patients made —
//! one by the form, or many as the CSV of `tokumei optout import` pasted in — and a technician
//! those of any provider; each is recorded and the records already held are purged by the library
//! (`tokumei_link::purge::record_requests`, which refuses a provider's request for another
//! provider's patient). Nothing typed is shown back: the page says how many were recorded and
//! purged, and a CSV refusal names its line only.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use tokumei_vault::access::Role;
use tokumei_vault::optout::{parse_csv, Request, Requester, Subject};
use tokumei_vault::VaultError;

use crate::forms::Fields;
use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page, read, AppState, LangQuery};
use crate::session::WebSession;
use crate::WebError;

/// Who records requests to stop.
pub const RECORDERS: &[Role] = &[Role::ProviderAdmin, Role::Technician];
/// The largest CSV pasted in.
pub const MAX_CSV: usize = 1 << 20;

/// `GET /stop-requests`.
pub async fn form(
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    page(StatusCode::OK, stops_page(lang, &ws, None))
}

fn stops_page(lang: Lang, ws: &WebSession, note: Option<String>) -> Markup {
    let content = html! {
        @if let Some(n) = note { p.note { (n) } }
        p { (lang.t("stops_intro")) }
        h2 { (lang.t("stops_one")) }
        form method="post" action="/stop-requests" {
            input type="hidden" name="csrf" value=(ws.csrf);
            @if ws.session.role == Role::Technician {
                p { label { (lang.t("provider")) br; input type="text" name="provider" required; } }
            }
            p { label { (lang.t("stops_patient_id")) br; input type="text" name="patient_id" autocomplete="off" required; } }
            p { label { (lang.t("stops_requester")) br;
                select name="requester" {
                    @for r in ["self", "guardian", "bereaved"] { option value=(r) { (lang.t(&format!("requester_{r}"))) } }
                }
            } }
            p { label { (lang.t("stops_received")) br; input type="date" name="received_on" required; } }
            p { label { (lang.t("stops_confirmed")) br; input type="date" name="confirmed_on"; } }
            p { button type="submit" { (lang.t("stops_record")) } }
        }
        h2 { (lang.t("stops_csv")) }
        form method="post" action="/stop-requests/csv" {
            input type="hidden" name="csrf" value=(ws.csrf);
            p { code { "provider_id,local_patient_id,insurer_number,symbol,number,branch,requester,received_on,confirmed_on" } }
            p { textarea name="csv" rows="8" cols="90" autocomplete="off" required {} }
            p { button type="submit" { (lang.t("stops_record")) } }
        }
    };
    layout(
        lang,
        "/stop-requests",
        &lang.t("page_stop-requests"),
        content,
    )
}

/// `POST /stop-requests`: one request.
pub async fn record_one(
    st: State<AppState>,
    ws: Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(st, ws, headers, body, |s, f| {
        let provider = match s.role {
            Role::ProviderAdmin => s.provider_id.clone().unwrap_or_default(),
            _ => f.one("provider"),
        };
        let requester = Requester::parse(&f.one("requester")).ok_or_else(|| {
            VaultError::Refused("the requester is self, guardian or bereaved".into())
        })?;
        if f.one("patient_id").is_empty() || provider.is_empty() {
            return Err(VaultError::Refused(
                "the patient id and its provider are required".into(),
            ));
        }
        for d in [f.one("received_on")]
            .into_iter()
            .chain(f.optional("confirmed_on"))
        {
            chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .map_err(|_| VaultError::Refused("a date is YYYY-MM-DD".into()))?;
        }
        Ok(vec![Request {
            subject: Subject::Patient {
                provider_id: provider,
                local_patient_id: f.one("patient_id"),
            },
            requester,
            received_on: f.one("received_on"),
            confirmed_on: f.optional("confirmed_on"),
        }])
    })
    .await
}

/// `POST /stop-requests/csv`: the requests of a pasted CSV.
pub async fn record_csv(
    st: State<AppState>,
    ws: Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(st, ws, headers, body, |_, f| parse_csv(&f.one("csv"))).await
}

type Requests = fn(&tokumei_vault::access::Session, &Fields) -> Result<Vec<Request>, VaultError>;

async fn record(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: Bytes,
    requests: Requests,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let requests = match requests(&ws.session, &f) {
        Ok(r) => r,
        Err(e) => {
            return page(
                StatusCode::BAD_REQUEST,
                stops_page(lang, &ws, Some(e.to_string())),
            )
        }
    };
    let (s, key) = (ws.session.clone(), st.key.clone());
    let done = read(&st.home, move |h| -> Result<_, WebError> {
        let lock = tokumei_vault::lock::writer(
            h,
            "optout.add",
            tokumei_vault::lock::wait_from_env(),
            &|_| {},
        )?;
        Ok(tokumei_link::purge::record_requests(
            h, &s, &key, &requests, &lock,
        )?)
    });
    match done.await {
        Ok(r) => {
            let note = format!(
                "{}: {} · {}: {} / {}",
                lang.t("stops_recorded"),
                r.requests,
                lang.t("stops_purged"),
                r.purged.records,
                r.purged.events
            );
            page(StatusCode::OK, stops_page(lang, &ws, Some(note)))
        }
        Err(WebError::Link(tokumei_link::LinkError::Vault(VaultError::Refused(why)))) => {
            page(StatusCode::FORBIDDEN, stops_page(lang, &ws, Some(why)))
        }
        Err(e) => failed(lang, &e),
    }
}
