//! Passkeys: a signed-in user adds and removes their own at `/passkeys`; anyone signs in with one
//! from the sign-in page. The ceremonies are the vault's ([`tokumei_vault::passkey`]); this
//! module keeps their pending states in memory (bounded, short-lived, used once) and speaks JSON
//! with `/static/passkey.js`. The JSON calls carry their CSRF token in `X-CSRF-Token`: the
//! session's once signed in, the sign-in form's (double submit) before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::html;
use tokumei_vault::passkey::{PendingRegistration, PendingSignIn, RelyingParty, MAX_LABEL};
use tokumei_vault::webauth::WebAuth;
use tokumei_vault::VaultError;

use crate::i18n::Lang;
use crate::pages::layout;
use crate::routes::{failed, html as page_html, read, AppState, LangQuery};
use crate::session::{csrf_header, same_token, WebSession};
use crate::WebError;

/// The passkey page's and the sign-in page's script.
pub const SCRIPT: &str = include_str!("passkey.js");
/// Most ceremonies pending at once (each a few hundred bytes).
const MAX_PENDING: usize = 4096;
/// How long a ceremony may wait for its authenticator.
const PENDING_FOR: Duration = Duration::from_secs(300);

enum Ceremony {
    Register(PendingRegistration),
    SignIn(PendingSignIn),
}

/// Ceremonies begun and not yet finished, by a random id.
#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<String, (Instant, Ceremony)>>,
}

impl Pending {
    /// Keeps a ceremony's state; its id, or `None` when too many wait.
    fn put(&self, state: Ceremony) -> Option<String> {
        let id = crate::session::random_token()?;
        let mut map = self.map.lock().ok()?;
        let now = Instant::now();
        map.retain(|_, (at, _)| now.duration_since(*at) < PENDING_FOR);
        if map.len() >= MAX_PENDING {
            return None;
        }
        map.insert(id.clone(), (now, state));
        Some(id)
    }

    /// Takes a ceremony's state out (once), if it is there and not expired.
    fn take(&self, id: &str) -> Option<Ceremony> {
        let (at, state) = self.map.lock().ok()?.remove(id)?;
        (at.elapsed() < PENDING_FOR).then_some(state)
    }
}

/// The relying party of the server's public address, if passkeys can work there.
pub type Party = Arc<std::sync::OnceLock<RelyingParty>>;

fn json_error(status: StatusCode, lang: Lang, key: &str) -> Response {
    crate::routes::json_refused(status, &lang.t(key))
}

/// What the browser sends to finish a ceremony.
#[derive(serde::Deserialize)]
pub struct Finish {
    id: String,
    credential: serde_json::Value,
    #[serde(default)]
    label: String,
}

/// `GET /passkeys`: the user's passkeys, the form to add one and a button to remove each.
pub async fn list(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(q.lang.as_deref(), &headers);
    let user = ws.session.user.clone();
    let held = match read(&st.home, move |h| WebAuth::open(h)?.passkeys(&user)).await {
        Ok(p) => p,
        Err(e) => return failed(lang, &e),
    };
    let usable = st.party.get().is_some();
    let content = html! {
        p { (lang.t("passkeys_intro")) }
        @if held.is_empty() { p { (lang.t("passkeys_none")) } } @else {
            table {
                tr { th { (lang.t("passkey_label")) } th { (lang.t("passkey_added")) } th { (lang.t("passkey_used")) } th {} }
                @for p in &held {
                    tr.passkey {
                        td { (p.label) } td { (p.created_at) } td { (p.last_used_at.clone().unwrap_or_default()) }
                        td { form method="post" action="/passkeys/remove" {
                            input type="hidden" name="csrf" value=(ws.csrf);
                            input type="hidden" name="id" value=(p.id);
                            button type="submit" { (lang.t("passkey_remove")) }
                        } }
                    }
                }
            }
        }
        @if usable {
            form #passkey-add data-csrf=(ws.csrf) {
                p { label { (lang.t("passkey_label")) br;
                    input #passkey-label type="text" name="label" maxlength=(MAX_LABEL) required; } }
                p { button type="submit" { (lang.t("passkey_add")) } }
                p #passkey-status role="status" {}
            }
            script src="/static/passkey.js" {}
        } @else {
            p.note { (lang.t("passkeys_unavailable")) }
        }
    };
    page_html(
        StatusCode::OK,
        layout(lang, "/passkeys", &lang.t("page_passkeys"), content),
    )
}

/// `POST /passkeys/begin`: the options for `navigator.credentials.create`, and the ceremony's id.
pub async fn begin(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !same_token(&ws.csrf, csrf_header(&headers)) {
        return json_error(StatusCode::FORBIDDEN, lang, "form_expired");
    }
    let (party, key, s) = (st.party.clone(), st.key.clone(), ws.session);
    let begun = read(&st.home, move |h| {
        let rp = party.get().ok_or(VaultError::Refused("passkeys".into()))?;
        WebAuth::open(h)?.passkey_begin(&key, &s, rp)
    });
    match begun.await {
        Ok((options, pending)) => match st.pending.put(Ceremony::Register(pending)) {
            Some(id) => Json(serde_json::json!({ "id": id, "options": options })).into_response(),
            None => json_error(StatusCode::SERVICE_UNAVAILABLE, lang, "failed"),
        },
        Err(WebError::Vault(VaultError::Refused(_))) => {
            json_error(StatusCode::BAD_REQUEST, lang, "passkey_refused")
        }
        Err(e) => json_failed(lang, &e),
    }
}

/// `POST /passkeys/finish`: the authenticator's new credential, with its label, kept.
pub async fn finish(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    Json(f): Json<Finish>,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !same_token(&ws.csrf, csrf_header(&headers)) {
        return json_error(StatusCode::FORBIDDEN, lang, "form_expired");
    }
    let Some(Ceremony::Register(pending)) = st.pending.take(&f.id) else {
        return json_error(StatusCode::BAD_REQUEST, lang, "form_expired");
    };
    let (party, key, s) = (st.party.clone(), st.key.clone(), ws.session);
    let response = f.credential.to_string().into_bytes();
    let done = read(&st.home, move |h| {
        let rp = party.get().ok_or(VaultError::Refused("passkeys".into()))?;
        WebAuth::open(h)?.passkey_finish(&key, &s, rp, pending, &response, &f.label)
    });
    match done.await {
        Ok(_) => Json(serde_json::json!({ "to": "/passkeys" })).into_response(),
        Err(WebError::Vault(VaultError::Refused(_) | VaultError::Denied(_))) => {
            json_error(StatusCode::BAD_REQUEST, lang, "passkey_refused")
        }
        Err(e) => json_failed(lang, &e),
    }
}

/// `POST /passkeys/remove`: one of the user's passkeys removed.
pub async fn remove(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (lang, f) = match crate::forms::checked(&ws, &headers, &body) {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    let (s, id) = (ws.session, f.one("id"));
    match read(&st.home, move |h| WebAuth::open(h)?.passkey_remove(&s, &id)).await {
        Ok(()) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/passkeys")]).into_response(),
        Err(WebError::Vault(VaultError::Refused(_))) => {
            crate::routes::refused(lang, StatusCode::NOT_FOUND, "passkey_refused")
        }
        Err(e) => failed(lang, &e),
    }
}

/// `POST /signin/passkey/begin`: the options for `navigator.credentials.get` (no user name), and
/// the ceremony's id. The sign-in form's token is the CSRF token.
pub async fn signin_begin(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !crate::signin::form_token_ok(&headers, csrf_header(&headers)) {
        return json_error(StatusCode::FORBIDDEN, lang, "form_expired");
    }
    let Some(rp) = st.party.get() else {
        return json_error(StatusCode::NOT_FOUND, lang, "passkeys_unavailable");
    };
    match WebAuth::passkey_sign_in_begin(rp) {
        Ok((options, pending)) => match st.pending.put(Ceremony::SignIn(pending)) {
            Some(id) => Json(serde_json::json!({ "id": id, "options": options })).into_response(),
            None => json_error(StatusCode::SERVICE_UNAVAILABLE, lang, "failed"),
        },
        Err(e) => json_failed(lang, &e.into()),
    }
}

/// `POST /signin/passkey/finish`: the authenticator's assertion checked; a new session (as the
/// password's sign-in makes) on success.
pub async fn signin_finish(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(f): Json<Finish>,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !crate::signin::form_token_ok(&headers, csrf_header(&headers)) {
        return json_error(StatusCode::FORBIDDEN, lang, "form_expired");
    }
    let Some(Ceremony::SignIn(pending)) = st.pending.take(&f.id) else {
        return json_error(StatusCode::BAD_REQUEST, lang, "form_expired");
    };
    let (party, key) = (st.party.clone(), st.key.clone());
    let response = f.credential.to_string().into_bytes();
    let now = chrono::Utc::now().timestamp();
    let signed = read(&st.home, move |h| {
        let rp = party.get().ok_or(VaultError::Refused("passkeys".into()))?;
        WebAuth::open(h)?.passkey_sign_in(&key, rp, pending, &response, now)
    });
    match signed.await {
        Ok(session) => match st.sessions.create(session, Instant::now()) {
            Some(token) => crate::signin::with_session(
                Json(serde_json::json!({ "to": "/me" })).into_response(),
                &token,
            ),
            None => json_failed(lang, &WebError::Task("no session token".into())),
        },
        Err(WebError::Vault(VaultError::Denied(_) | VaultError::Refused(_))) => {
            json_error(StatusCode::UNAUTHORIZED, lang, "signin_failed")
        }
        Err(e) => json_failed(lang, &e),
    }
}

fn json_failed(lang: Lang, e: &WebError) -> Response {
    tracing::error!(error = %e, "a passkey ceremony failed");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, lang, "failed")
}

/// `GET /static/passkey.js`.
pub async fn script() -> Response {
    crate::routes::script(SCRIPT)
}
