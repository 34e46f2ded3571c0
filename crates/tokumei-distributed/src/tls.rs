//! Mutual TLS between the driver, the scheduler and the executors.
//!
//! A cluster has its own certificate authority. [`issue`] creates it, signs one certificate per node
//! (scheduler, each executor, each driver) and forgets the authority's private key: nothing can sign
//! another node afterwards, and adding a node means issuing a new set. Every certificate names the
//! same host, [`CLUSTER_NAME`], and is good for both ends of a connection, so a node is checked
//! against the cluster's authority whatever address it is reached by, and a server accepts only
//! clients holding a certificate of the same authority.
//!
//! A node's folder holds `ca.crt`, `node.crt` and `node.key`; the key must be readable by its owner
//! only ([`ClusterTls::load`] refuses it otherwise).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ballista_core::extension::EndpointOverrideFn;
use ballista_core::utils::{create_grpc_client_endpoint, GrpcClientConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::DistributedError;

/// The host name every node's certificate carries, and that every connection checks.
pub const CLUSTER_NAME: &str = "tokumei-cluster";

/// Days a node certificate is valid.
pub const VALID_DAYS: i64 = 397;

/// Largest certificate or key file read.
const MAX_PEM: u64 = 64 * 1024;

/// A node's TLS material: the cluster's authority, its certificate and its key.
#[derive(Clone)]
pub struct ClusterTls {
    ca: Certificate,
    identity: Identity,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls(..)")
    }
}

fn tls_err(what: impl std::fmt::Display) -> DistributedError {
    DistributedError::Tls(what.to_string())
}

fn io_err(path: &Path, source: std::io::Error) -> DistributedError {
    DistributedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a PEM file of at most [`MAX_PEM`] bytes; a key (`secret`) must not be readable by the
/// group or others.
fn read_pem(path: &Path, secret: bool) -> Result<String, DistributedError> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    if meta.len() > MAX_PEM {
        return Err(tls_err(format!("{}: larger than 64 KiB", path.display())));
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(tls_err(format!(
                "{}: the key is readable by others than its owner (chmod 600)",
                path.display()
            )));
        }
    }
    let mut text = String::new();
    file.take(MAX_PEM)
        .read_to_string(&mut text)
        .map_err(|e| io_err(path, e))?;
    if !text.contains("-----BEGIN ") {
        return Err(tls_err(format!("{}: not a PEM file", path.display())));
    }
    Ok(text)
}

impl ClusterTls {
    /// Loads a node's folder (`ca.crt`, `node.crt`, `node.key`).
    pub fn load(dir: &Path) -> Result<Self, DistributedError> {
        let ca = read_pem(&dir.join("ca.crt"), false)?;
        let cert = read_pem(&dir.join("node.crt"), false)?;
        let key = read_pem(&dir.join("node.key"), true)?;
        Ok(ClusterTls {
            ca: Certificate::from_pem(ca),
            identity: Identity::from_pem(cert, key),
        })
    }

    /// A server's side: its certificate, and client certificates required from the cluster's
    /// authority.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
    }

    /// A client's side: the server checked against the cluster's authority and name, and this
    /// node's certificate presented.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .domain_name(CLUSTER_NAME)
    }

    /// Ballista's hook on every gRPC and Flight connection it opens: this node's client side. An
    /// address Ballista writes as `http://` (an executor's to its scheduler) is made `https://`,
    /// since tonic speaks TLS only to those; nothing goes out in clear.
    pub fn endpoint_override(&self) -> EndpointOverrideFn {
        let client = self.client();
        Arc::new(move |endpoint: Endpoint| {
            let endpoint = if endpoint.uri().scheme_str() == Some("https") {
                endpoint
            } else {
                let authority = endpoint.uri().authority().map(|a| a.as_str()).unwrap_or("");
                create_grpc_client_endpoint(
                    format!("https://{authority}"),
                    Some(&GrpcClientConfig::default()),
                )?
            };
            Ok(endpoint.tls_config(client.clone())?)
        })
    }
}

/// Whether `name` may name a node (and its folder): 1 to 63 of `a-z`, `0-9` and `-`, not starting
/// with `-`.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn validity(params: &mut CertificateParams) {
    let day = |offset: i64| {
        let d = (chrono::Utc::now() + chrono::Duration::days(offset)).date_naive();
        use chrono::Datelike;
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    params.not_before = day(-1);
    params.not_after = day(VALID_DAYS);
}

/// Creates the cluster's authority and a folder `out/<node>` per node with `ca.crt`, `node.crt` and
/// `node.key` (mode 600); the authority's key is not kept. Returns the folders. Refuses an invalid
/// or repeated node name, and an `out` that already exists (no material is overwritten).
pub fn issue(out: &Path, nodes: &[String]) -> Result<Vec<PathBuf>, DistributedError> {
    let mut seen = std::collections::BTreeSet::new();
    for n in nodes {
        if !valid_node_name(n) || !seen.insert(n.as_str()) {
            return Err(tls_err(format!(
                "node name `{}`: 1 to 63 of a-z, 0-9 and -, each once",
                n.chars().take(63).collect::<String>()
            )));
        }
    }
    if nodes.is_empty() {
        return Err(tls_err("no node named"));
    }
    create_private_dir(out)?;
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "Tokumei cluster authority");
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key).map_err(tls_err)?;
    let mut dirs = Vec::new();
    for node in nodes {
        let key = KeyPair::generate().map_err(tls_err)?;
        let mut p = CertificateParams::new(vec![CLUSTER_NAME.to_string()]).map_err(tls_err)?;
        p.distinguished_name.push(DnType::CommonName, node.as_str());
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        validity(&mut p);
        let cert = p.signed_by(&key, &ca_cert, &ca_key).map_err(tls_err)?;
        let dir = out.join(node);
        create_private_dir(&dir)?;
        write_file(&dir.join("ca.crt"), ca_cert.pem().as_bytes(), 0o644)?;
        write_file(&dir.join("node.crt"), cert.pem().as_bytes(), 0o644)?;
        write_file(&dir.join("node.key"), key.serialize_pem().as_bytes(), 0o600)?;
        dirs.push(dir);
    }
    Ok(dirs)
}

fn create_private_dir(dir: &Path) -> Result<(), DistributedError> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| io_err(dir, e))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DistributedError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = o.open(path).map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for ok in ["scheduler", "executor-1", "driver", "a"] {
            assert!(valid_node_name(ok), "{ok}");
        }
        for bad in ["", "-x", "Exec", "a/b", "..", "a b", &"x".repeat(64)] {
            assert!(!valid_node_name(bad), "{bad}");
        }
    }

    #[test]
    fn issues_loads_and_refuses() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("tls");
        let nodes = vec!["scheduler".to_string(), "executor-1".to_string()];
        let dirs = issue(&out, &nodes).unwrap();
        assert_eq!(dirs.len(), 2);
        for d in &dirs {
            ClusterTls::load(d).unwrap();
        }
        // No authority key anywhere.
        for d in &dirs {
            for e in std::fs::read_dir(d).unwrap() {
                let name = e.unwrap().file_name();
                assert!(["ca.crt", "node.crt", "node.key"].contains(&name.to_str().unwrap()));
            }
        }
        // Existing material is not overwritten; bad and repeated names are refused.
        assert!(issue(&out, &nodes).is_err());
        assert!(issue(&tmp.path().join("b"), &["x".into(), "x".into()]).is_err());
        assert!(issue(&tmp.path().join("c"), &["../x".into()]).is_err());
        assert!(!tmp.path().join("c").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dirs[0].join("node.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = ClusterTls::load(&dirs[0]).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
