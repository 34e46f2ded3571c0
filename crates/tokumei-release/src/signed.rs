//! The operator's signature on a release: `manifest.sig` beside `manifest.json` (in the folder and
//! in the package) is an Ed25519 signature, by the key whose public half the operator publishes as
//! `audit.pub`, over a context string and the manifest's bytes; the manifest lists every other
//! file with its SHA-256. [`verify`] checks a release folder (or an unpacked package) with nothing
//! but that public key.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::ReleaseError;

/// Domain separation of release signatures.
const CONTEXT: &[u8] = b"tokumei-release-manifest-v1\n";

fn message(manifest: &[u8]) -> Vec<u8> {
    [CONTEXT, manifest].concat()
}

/// The signature (hex) of a manifest.
pub fn sign_manifest(key: &SigningKey, manifest: &[u8]) -> String {
    hex::encode(key.sign(&message(manifest)).to_bytes())
}

/// Verifies a release folder: the manifest's signature is the operator's, and every file it lists
/// is there with its SHA-256. Returns the number of files checked.
pub fn verify(dir: &Path, operator: &VerifyingKey) -> Result<usize, ReleaseError> {
    let bad = |why: String| ReleaseError::Check(format!("the release does not verify: {why}"));
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| bad(format!("{name}: {e}")));
    let manifest = read("manifest.json")?;
    let sig = read("manifest.sig")?;
    let sig = std::str::from_utf8(&sig)
        .ok()
        .and_then(|t| hex::decode(t.trim()).ok())
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| bad("manifest.sig is not a signature".into()))?;
    operator
        .verify_strict(&message(&manifest), &sig)
        .map_err(|_| bad("the manifest is not signed by this operator's key".into()))?;
    let m: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let files = m["files"]
        .as_array()
        .ok_or_else(|| bad("the manifest lists no files".into()))?;
    for f in files {
        let path = f["path"].as_str().unwrap_or("");
        if !tokumei_vault::unpack::valid_file_path(path) {
            return Err(bad("the manifest names a file by an unsafe path".into()));
        }
        let bytes = read(path)?;
        if Some(hex::encode(Sha256::digest(&bytes)).as_str()) != f["sha256"].as_str() {
            return Err(bad(format!("{path} does not match its SHA-256")));
        }
    }
    Ok(files.len())
}

/// Recipient side: opens a release package with the recipient's age identity into `out` (absent or
/// empty; extracted as hostile input, whole or not at all) and checks it against the operator's
/// key ([`verify`]); a package that does not verify is removed again. Returns the files verified.
pub fn open(
    package: &Path,
    identity: &Path,
    out: &Path,
    operator: &VerifyingKey,
) -> Result<usize, ReleaseError> {
    let limits = tokumei_vault::unpack::Limits::default();
    tokumei_vault::sealed::open_archive(package, identity, out, &limits)?;
    verify(out, operator).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(out);
    })
}
