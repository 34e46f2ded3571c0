//! Releases on the web: a technician builds the release of an approved application in the
//! background (`tokumei_release::build_approved`, the same gate and build as `tokumei release
//! build`) into `web/releases/<application>/<time>/`; the researcher who may see the application
//! downloads its encrypted package (sealed to the recipient's key; streamed, never held whole).

use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tokio::io::AsyncReadExt;
use tokumei_review::Review;
use tokumei_vault::access::Role;
use tokumei_vault::Home;

use crate::applications::see_other;
use crate::i18n::Lang;
use crate::routes::{failed, read, AppState};
use crate::session::WebSession;
use crate::WebError;

/// Who may download a package.
pub const DOWNLOADERS: &[Role] = &[Role::Researcher, Role::Technician];

/// A built package.
#[derive(Debug, Clone)]
pub struct Package {
    /// Its file.
    pub path: PathBuf,
    /// Release id (the file's name without `.tar.age`).
    pub release_id: String,
    /// Size in bytes.
    pub size: u64,
}

fn folder(home: &Home, application: &str) -> PathBuf {
    home.root.join("web/releases").join(application)
}

/// The packages built for an application, newest first (`application` must be a valid id).
pub fn packages(home: &Home, application: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let Ok(builds) = std::fs::read_dir(folder(home, application)) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = builds.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs.iter().rev() {
        let Ok(files) = std::fs::read_dir(dir) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if let (Some(id), Ok(meta)) = (name.strip_suffix(".tar.age"), f.metadata()) {
                out.push(Package {
                    path: f.path(),
                    release_id: id.to_string(),
                    size: meta.len(),
                });
            }
        }
    }
    out
}

/// The job key of a build (beside the previews').
fn job(application: &str) -> String {
    format!("build {application}")
}

/// Whether a build of `application` runs, and why the last one failed.
pub fn state(st: &AppState, application: &str) -> (bool, Option<String>) {
    let key = job(application);
    (st.jobs.running(&key), st.jobs.failure(&key))
}

/// `POST /applications/{id}/build`: a technician starts the build in the background.
pub async fn build(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = match crate::forms::checked(&ws, &headers, &body) {
        Ok((lang, _)) => lang,
        Err(refused) => return refused,
    };
    if !crate::public::valid_id(&id) {
        return crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found");
    }
    let key = job(&id);
    let (home, data_key, s, application) =
        (st.home.clone(), st.key.clone(), ws.session, id.clone());
    st.jobs.run(key, move || {
        let out = folder(&home, &application)
            .join(chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ").to_string());
        let opts = tokumei_release::BuildOptions::default();
        tokumei_release::build_approved(&home, &s, &data_key, &application, &out, &opts).map(|_| ())
    });
    see_other(&format!("/applications/{id}"))
}

/// `GET /applications/{id}/package`: the newest package of an application the user may see.
pub async fn download(
    State(st): State<AppState>,
    Extension(ws): Extension<WebSession>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of_request(None, &headers);
    if !crate::public::valid_id(&id) {
        return crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found");
    }
    let s = ws.session;
    let found = read(&st.home, move |h| -> Result<Option<Package>, WebError> {
        let visible = Review::open(h)?.status_for(&s, &id)?.is_some();
        Ok(visible
            .then(|| packages(h, &id).into_iter().next())
            .flatten())
    });
    match found.await {
        Ok(Some(p)) => stream(&p).await.unwrap_or_else(|e| failed(lang, &e)),
        Ok(None) => crate::routes::refused(lang, StatusCode::NOT_FOUND, "not_found"),
        Err(e) => failed(lang, &e),
    }
}

/// A file streamed in pieces of 1 MiB.
async fn stream(p: &Package) -> Result<Response, WebError> {
    let file = tokio::fs::File::open(&p.path)
        .await
        .map_err(|e| crate::error::io(&p.path, e))?;
    let pieces = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let name = format!("attachment; filename=\"{}.tar.age\"", p.release_id);
    let mut resp = Body::from_stream(pieces).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(p.size));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
