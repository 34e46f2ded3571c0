//! The server under load, on loopback over HTTPS (a benchmark, not a test):
//!
//! ```text
//! cargo run --release -p tokumei-web --example load -- [SESSIONS] [REQUESTS] [UPLOAD_GIB]
//! ```
//!
//! A fresh home in a temporary folder; SESSIONS signed-in researchers (sessions made directly, so
//! that the figures are of serving pages, not of Argon2id) each send REQUESTS page requests over
//! one keep-alive TLS connection, all at once; every request is audited as the server does. Then a
//! provider's user uploads UPLOAD_GIB GiB in pieces of 64 MiB. Prints the page times (p50, p95,
//! p99), the requests per second, the upload's throughput and the process's peak memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokumei_vault::access::{Role, Session};
use tokumei_web::{AppState, ServeOptions};

const PASS: &str = "load benchmark passphrase";
const PIECE: usize = 64 << 20;

type Conn = TlsStream<TcpStream>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sessions = args.first().copied().unwrap_or(200) as usize;
    let requests = args.get(1).copied().unwrap_or(20) as usize;
    let gib = args.get(2).copied().unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(sessions, requests, gib))
}

async fn run(sessions: usize, requests: usize, gib: u64) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let home = tokumei_vault::home::init(&dir.path().join("home"), PASS, Some(2))?.home;
    register_provider(&home)?;
    let state = AppState::new(home.clone(), home.unlock_data_key(PASS)?, 1_000_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_state = state.clone();
    let server = tokio::spawn(async move {
        let opts = ServeOptions::default();
        tokumei_web::run(
            listener,
            server_state,
            &opts,
            |r| {
                let _ = ready_tx.send(r.clone());
            },
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    let ready = ready_rx.await?;
    let connector = connector(&std::fs::read(
        ready.certificate.as_ref().ok_or("no certificate")?,
    )?)?;
    let addr = ready.address;

    let mut tasks = Vec::new();
    let started = Instant::now();
    for i in 0..sessions {
        let cookie = session(&state, &format!("res-{i:04}"), Role::Researcher, None)?;
        let connector = connector.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&connector, addr).await?;
            let mut times = Vec::with_capacity(requests);
            for r in 0..requests {
                let path = ["/me", "/applications", "/applications/new"][r % 3];
                let t = Instant::now();
                let (status, _) = send(&mut conn, "GET", path, &[("cookie", &cookie)], &[]).await?;
                times.push(t.elapsed());
                if status != 200 {
                    return Err(format!("{path}: {status}").into());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(times)
        }));
    }
    let mut times: Vec<Duration> = Vec::new();
    for t in tasks {
        times.extend(t.await?.map_err(|e| e.to_string())?);
    }
    let wall = started.elapsed();
    times.sort();
    let q = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{sessions} sessions × {requests} pages: {} requests in {:.2} s ({:.0}/s); page time p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        wall.as_secs_f64(),
        times.len() as f64 / wall.as_secs_f64(),
        ms(q(0.50)),
        ms(q(0.95)),
        ms(q(0.99)),
        ms(times[times.len() - 1]),
    );
    if gib > 0 {
        upload(&state, &connector, addr, gib).await?;
    }
    println!(
        "peak memory of the process (server and clients): {} MiB",
        peak_kib()? / 1024
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn register_provider(home: &tokumei_vault::Home) -> Result<(), Box<dyn std::error::Error>> {
    let key = home.default_user_key().ok_or("no technician key")?;
    let tech = tokumei_vault::access::authenticate(
        home,
        &tokumei_vault::access::open_user_key(&key, PASS)?,
    )?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let provider = tokumei_vault::catalog::Provider {
        id: "H01".into(),
        public_key: hex::encode(signing.verifying_key().to_bytes()),
        name: "架空総合病院".into(),
        address: "東京都".into(),
        representative: "院長".into(),
        acquisition: "診療の過程で取得".into(),
        notice_filing: None,
        notice_start: Some("2026-01-05".into()),
    };
    tokumei_vault::provider::register(home, &tech, &provider)?;
    Ok(())
}

/// A session made directly (the sign-in is not what is measured); its cookie and CSRF token.
fn session(
    state: &AppState,
    user: &str,
    role: Role,
    provider: Option<&str>,
) -> Result<String, Box<dyn std::error::Error>> {
    let s = Session {
        user: user.into(),
        role,
        provider_id: provider.map(str::to_string),
    };
    let token = state
        .sessions
        .create(s, Instant::now())
        .ok_or("no session")?;
    Ok(format!("__Host-session={token}"))
}

fn connector(pem: &[u8]) -> Result<tokio_rustls::TlsConnector, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(c?)?;
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn connect(
    c: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> Result<Conn, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(c.connect(name, tcp).await?)
}

/// One request on a keep-alive connection: its status and body.
async fn send(
    conn: &mut Conn,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), Box<dyn std::error::Error + Send + Sync>> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body).await?;
    conn.flush().await?;
    read_response(conn).await
}

async fn read_response(
    conn: &mut Conn,
) -> Result<(u16, Vec<u8>), Box<dyn std::error::Error + Send + Sync>> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((status, body))
}

/// A provider's upload of `gib` GiB in pieces of 64 MiB; its throughput.
async fn upload(
    state: &AppState,
    c: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    gib: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = session(state, "h01-staff", Role::ProviderAdmin, Some("H01"))?;
    let token = csrf(state, &cookie)?;
    let mut conn = connect(c, addr).await.map_err(|e| e.to_string())?;
    let size = gib << 30;
    let declared = format!("{{\"size\":{size}}}");
    let auth = [
        ("cookie", cookie.as_str()),
        ("x-csrf-token", token.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, body) = send(
        &mut conn,
        "POST",
        "/api/v1/uploads",
        &auth,
        declared.as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if status != 201 {
        return Err(format!("declare: {status}").into());
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let id = v["id"].as_str().ok_or("no id")?.to_string();
    let piece: Vec<u8> = (0..PIECE)
        .map(|i| (i as u64).wrapping_mul(2654435761) as u8)
        .collect();
    let started = Instant::now();
    let mut offset = 0u64;
    while offset < size {
        let n = PIECE.min((size - offset) as usize);
        let at = offset.to_string();
        let h = [
            ("cookie", cookie.as_str()),
            ("x-csrf-token", token.as_str()),
            ("upload-offset", at.as_str()),
        ];
        let (status, _) = send(
            &mut conn,
            "PATCH",
            &format!("/api/v1/uploads/{id}"),
            &h,
            &piece[..n],
        )
        .await
        .map_err(|e| e.to_string())?;
        if status != 204 {
            return Err(format!("piece at {offset}: {status}").into());
        }
        offset += n as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "upload of {gib} GiB in pieces of 64 MiB over HTTPS on loopback: {secs:.1} s, {:.0} MiB/s",
        (size >> 20) as f64 / secs
    );
    tokumei_web::upload::remove(&state.home, "H01", &id)?;
    Ok(())
}

/// The CSRF token of a session (from the upload page).
fn csrf(state: &AppState, cookie: &str) -> Result<String, Box<dyn std::error::Error>> {
    let token = cookie.strip_prefix("__Host-session=").ok_or("cookie")?;
    Ok(state
        .sessions
        .get(token, Instant::now())
        .ok_or("session")?
        .csrf)
}

/// The process's peak resident memory (KiB).
fn peak_kib() -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0))
}
