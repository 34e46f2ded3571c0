//! The platform served over HTTPS: the public pages (each provider's notice (公表) with how to ask
//! for a stop (停止の求め), and the register of releases), a JSON API documented as OpenAPI, in
//! Japanese and English from one message catalogue; sign-in with a password and a TOTP code
//! (`tokumei_vault::webauth`) into server-side sessions ([`session`]).
//!
//! The server adds no domain logic: every page reads the home through the same library calls as
//! the CLI ([`public`]). Every response carries the security headers ([`routes::SECURITY_HEADERS`]);
//! public requests are rate-limited per address and audited as one count per interval
//! ([`meter`]); no address, path or query is logged or written.

mod applications;
mod audit;
mod committee;
pub mod csv;
mod error;
mod exports;
mod feasibility;
mod forms;
pub mod i18n;
pub mod meter;
mod openapi;
mod operations;
pub mod pages;
mod passkeys;
mod provider;
pub mod public;
mod releases;
pub mod routes;
pub mod session;
mod signin;
mod stops;
pub mod tls;
pub mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;
use tower::ServiceExt;

pub use error::WebError;
pub use routes::{router, AppState, ROUTES};
pub use tls::Certificate;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// Time for a TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Time for a request's headers.
const HEADER_READ: Duration = Duration::from_secs(10);

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The certificate.
    pub certificate: Certificate,
    /// Public requests per address per interval.
    pub public_limit: u32,
    /// The interval public requests are counted (and audited) over.
    pub public_interval: Duration,
    /// The address the public reaches the server at (`https://…`), printed on the notices'
    /// posters; by default `https://localhost:PORT`.
    pub public_url: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            certificate: Certificate::Generated,
            public_limit: 600,
            public_interval: Duration::from_secs(600),
            public_url: None,
        }
    }
}

/// Where the server listens, and the generated certificate's file if it made one.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The bound address.
    pub address: SocketAddr,
    /// The generated certificate (PEM), to be trusted by clients.
    pub certificate: Option<PathBuf>,
}

/// Serves until interrupted (Ctrl-C). `key` is the home's data key, unlocked with its passphrase
/// (it also unlocks the operator's key, which signs the server's audit entries). `ready` is
/// called once the socket is bound.
pub fn serve(
    home: Home,
    key: DataKey,
    opts: ServeOptions,
    ready: impl FnOnce(&Ready),
) -> Result<(), WebError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| error::io("tokio runtime", e))?;
    rt.block_on(async move {
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|e| error::io(opts.listen.to_string(), e))?;
        let shutdown = async {
            // Without a signal handler the server runs until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let state = AppState::new(home, key, opts.public_limit);
        run(listener, state, &opts, ready, shutdown).await
    })
}

/// Serves on a bound listener until `shutdown` completes; then closes the public interval.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    opts: &ServeOptions,
    ready: impl FnOnce(&Ready),
    shutdown: impl Future<Output = ()>,
) -> Result<(), WebError> {
    let (tls, certificate) = tls::server_config(&opts.certificate, &state.home.root)?;
    let address = listener
        .local_addr()
        .map_err(|e| error::io("listener", e))?;
    let url = match &opts.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("https://localhost:{}", address.port()),
    };
    match tokumei_vault::passkey::RelyingParty::for_origin(&url) {
        Ok(rp) => {
            let _ = state.party.set(rp);
        }
        Err(e) => tracing::warn!(error = %e, "passkeys are off"),
    }
    let _ = state.public_url.set(url);
    let app = router(state.clone())?;
    audit(&state.home, "web.serve", format!("listening on {address}")).await?;
    ready(&Ready {
        address,
        certificate,
    });
    let counter = tokio::spawn(count_public(state.clone(), opts.public_interval));
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    connection(acceptor, app, tcp, peer).await;
                });
            }
        }
    }
    counter.abort();
    close_interval(&state).await?;
    audit(
        &state.home,
        "web.stop",
        format!("stopped listening on {address}"),
    )
    .await
}

/// One connection: the TLS handshake within its time, then HTTP/1.1 with the peer's address known
/// to the handlers (for the public meter only).
async fn connection(
    acceptor: TlsAcceptor,
    app: axum::Router,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await else {
        return;
    };
    let service = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Closes the public interval every `every` and audits its counts.
async fn count_public(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = close_interval(&state).await {
            tracing::error!(error = %e, "public request counts could not be audited");
        }
    }
}

/// Audits the interval's counts (nothing when it had no request).
pub async fn close_interval(state: &AppState) -> Result<(), WebError> {
    let Some(counts) = state.meter.close() else {
        return Ok(());
    };
    audit(&state.home, "web.public", counts.describe()).await
}

/// Appends a system entry to the audit log (off the async workers).
async fn audit(home: &Home, action: &'static str, object: String) -> Result<(), WebError> {
    routes::read(home, move |h| -> Result<(), WebError> {
        let entry = tokumei_audit::Entry::now("system", "system", action, &object, "ok", None);
        h.audit()?.append(entry)?;
        Ok(())
    })
    .await
}

/// Now, UTC, RFC 3339.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
