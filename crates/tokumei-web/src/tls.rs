//! The server's certificate: the operator's (PEM files), or one generated for local use at each
//! start. A generated key lives only in the server's memory; its certificate is written to
//! `H/web/localhost.crt` so that a browser or a test can be told to trust it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

use crate::error::io;
use crate::WebError;

/// A PEM file is at most this large (a certificate chain or a key).
const MAX_PEM: u64 = 1 << 20;

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum Certificate {
    /// The operator's certificate chain and private key (PEM).
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A self-signed certificate for `localhost` and 127.0.0.1, made at each start.
    Generated,
}

/// The TLS configuration (TLS 1.2 and 1.3, HTTP/1.1) and, for a generated certificate, the file its
/// certificate was written to.
pub fn server_config(
    c: &Certificate,
    home_root: &Path,
) -> Result<(Arc<ServerConfig>, Option<PathBuf>), WebError> {
    let (chain, key, written) = match c {
        Certificate::Files { cert, key } => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&read_pem(cert)?)
                    .collect::<Result<_, _>>()
                    .map_err(|e| WebError::Tls(format!("{}: {e}", cert.display())))?;
            if chain.is_empty() {
                return Err(WebError::Tls(format!(
                    "{}: no certificate in it",
                    cert.display()
                )));
            }
            let key = PrivateKeyDer::from_pem_slice(&read_pem(key)?)
                .map_err(|e| WebError::Tls(format!("{}: {e}", key.display())))?;
            (chain, key, None)
        }
        Certificate::Generated => {
            let (cert, key, pem) = generate()?;
            let path = home_root.join("web").join("localhost.crt");
            write_certificate(&path, &pem)?;
            (vec![cert], key, Some(path))
        }
    };
    // ring rather than aws-lc-rs: no C toolchain in the build. ring has no post-quantum key
    // exchange, which is why rustls marks its provider deprecated.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| WebError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), written))
}

fn read_pem(path: &Path) -> Result<Vec<u8>, WebError> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut bytes = Vec::new();
    f.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(WebError::Tls(format!(
            "{}: larger than {MAX_PEM} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// A self-signed certificate for localhost, its key, and the certificate as PEM.
type Generated = (CertificateDer<'static>, PrivateKeyDer<'static>, String);

fn generate() -> Result<Generated, WebError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| WebError::Tls(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    Ok((made.cert.der().clone(), key, made.cert.pem()))
}

/// Writes a certificate as PEM (public: readable by the clients that must trust it).
fn write_certificate(path: &Path, pem: &str) -> Result<(), WebError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let tmp = path.with_extension("crt.tmp");
    std::fs::write(&tmp, pem).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}
