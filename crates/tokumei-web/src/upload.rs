//! Providers' uploads of sealed packages: resumable, streamed to disk with bounded memory, tens of
//! gigabytes each. A provider declares an upload (its size, and its SHA-256 when the client can
//! compute it), then sends its bytes in pieces (`PATCH` with `Upload-Offset`, each piece appended
//! where the last ended, synced before it is acknowledged); an interrupted upload resumes from the
//! offset the server reports. A complete upload waits for a technician, who receives it with the
//! same library call as `tokumei receive` — refused unless the package names the provider that
//! uploaded it ([`tokumei_vault::receive::receive_uploaded`]). The upload is removed once received.
//!
//! On disk: `uploads/<provider>/<id>.part` and `<id>.json`; ids are 32 random hex digits made by
//! the server, the provider comes from the session; nothing from a request names a path.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokumei_vault::access::{Role, Session};
use tokumei_vault::Home;

use crate::error::io;
use crate::WebError;

/// The largest upload.
pub const MAX_SIZE: u64 = 64 << 30;
/// Uploads a provider may have open at once.
pub const MAX_OPEN: usize = 4;

/// An upload, as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Id (32 hex digits).
    pub id: String,
    /// The provider that uploads it.
    pub provider: String,
    /// The user who declared it.
    pub user: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, when the client gave one (checked when complete).
    pub sha256: Option<String>,
    /// When it was declared (UTC).
    pub created_at: String,
    /// Bytes received so far (from the file, not the declaration).
    #[serde(skip_deserializing)]
    pub offset: u64,
}

impl Upload {
    /// Whether every byte has arrived.
    pub fn complete(&self) -> bool {
        self.offset == self.size
    }
}

fn root(home: &Home) -> PathBuf {
    home.root.join("uploads")
}

/// Whether `id` is an upload id the server could have made.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn provider_of(s: &Session) -> Result<&str, WebError> {
    match (s.role, s.provider_id.as_deref()) {
        (Role::ProviderAdmin, Some(p)) if crate::public::valid_id(p) => Ok(p),
        _ => Err(WebError::Upload("only a provider's user uploads".into())),
    }
}

/// The data file of an upload.
pub fn part(home: &Home, provider: &str, id: &str) -> PathBuf {
    root(home).join(provider).join(format!("{id}.part"))
}

fn meta(home: &Home, provider: &str, id: &str) -> PathBuf {
    root(home).join(provider).join(format!("{id}.json"))
}

/// Free bytes kept on the home's file system whatever uploads are declared.
pub const MARGIN: u64 = 512 << 20;

/// Whether an upload of `size` bytes fits in `free` bytes beside `reserved` bytes still to come
/// for the open uploads, leaving [`MARGIN`].
pub fn fits(free: u64, reserved: u64, size: u64) -> bool {
    free.saturating_sub(MARGIN) >= reserved.saturating_add(size)
}

/// Free bytes for an unprivileged writer on the file system of `dir`.
fn free_space(dir: &Path) -> Result<u64, WebError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let s = rustix::fs::statvfs(dir).map_err(|e| io(dir, e.into()))?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Declares an upload for the session's provider: refused when it does not fit on the disk
/// beside the open uploads (each provider may have [`MAX_OPEN`] open).
pub fn create(
    home: &Home,
    s: &Session,
    size: u64,
    sha256: Option<String>,
) -> Result<Upload, WebError> {
    let provider = provider_of(s)?;
    if size == 0 || size > MAX_SIZE {
        return Err(WebError::Upload(format!(
            "an upload is 1 byte to {MAX_SIZE} bytes"
        )));
    }
    if let Some(h) = &sha256 {
        if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(WebError::Upload("sha256 is 64 lowercase hex digits".into()));
        }
    }
    let open = list(home, None)?;
    let reserved: u64 = open.iter().map(|u| u.size.saturating_sub(u.offset)).sum();
    let free = free_space(&root(home))?;
    if !fits(free, reserved, size) {
        return Err(WebError::NoRoom(format!(
            "{size} bytes do not fit: {free} bytes free, {reserved} promised to open uploads, \
             {MARGIN} kept for the home"
        )));
    }
    if open.iter().filter(|u| u.provider == provider).count() >= MAX_OPEN {
        return Err(WebError::Upload(format!(
            "at most {MAX_OPEN} uploads may be open at once"
        )));
    }
    let id = crate::session::random_token()
        .map(|t| t[..32].to_string())
        .ok_or_else(|| WebError::Task("no random id".into()))?;
    let dir = root(home).join(provider);
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let up = Upload {
        id: id.clone(),
        provider: provider.to_string(),
        user: s.user.clone(),
        size,
        sha256,
        created_at: crate::now(),
        offset: 0,
    };
    let p = part(home, provider, &id);
    std::fs::File::create(&p).map_err(|e| io(&p, e))?;
    let body = serde_json::to_vec(&up).map_err(|e| WebError::Task(e.to_string()))?;
    tokumei_fs::write_atomic(&meta(home, provider, &id), &body)
        .map_err(|e| WebError::Task(e.to_string()))?;
    audit(
        home,
        s,
        "upload.create",
        &format!("upload {id} of {size} bytes"),
    )?;
    Ok(up)
}

/// One upload of `provider`, with its offset.
pub fn get(home: &Home, provider: &str, id: &str) -> Result<Option<Upload>, WebError> {
    if !valid_id(id) || !crate::public::valid_id(provider) {
        return Ok(None);
    }
    let m = meta(home, provider, id);
    let text = match std::fs::read(&m) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&m, e)),
    };
    let mut up: Upload =
        serde_json::from_slice(&text).map_err(|e| WebError::Task(e.to_string()))?;
    let p = part(home, provider, id);
    up.offset = std::fs::metadata(&p).map_err(|e| io(&p, e))?.len();
    Ok(Some(up))
}

/// The uploads of one provider, or of every provider; oldest first.
pub fn list(home: &Home, provider: Option<&str>) -> Result<Vec<Upload>, WebError> {
    let providers: Vec<String> = match provider {
        Some(p) => vec![p.to_string()],
        None => names(&root(home), "")?,
    };
    let mut out = Vec::new();
    for p in providers.iter().filter(|p| crate::public::valid_id(p)) {
        for id in names(&root(home).join(p), ".json")? {
            if let Some(up) = get(home, p, &id)? {
                out.push(up);
            }
        }
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The names in a folder ending in `suffix` (without it); none when the folder is absent.
fn names(dir: &Path, suffix: &str) -> Result<Vec<String>, WebError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let name = entry.map_err(|e| io(dir, e))?.file_name();
        if let Some(n) = name.to_str().and_then(|n| n.strip_suffix(suffix)) {
            out.push(n.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Checks a complete upload's SHA-256 against its declaration (read as a stream).
fn check_hash(home: &Home, up: &Upload) -> Result<String, WebError> {
    use sha2::{Digest, Sha256};
    let p = part(home, &up.provider, &up.id);
    let mut f = std::fs::File::open(&p).map_err(|e| io(&p, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| io(&p, e))?;
    let got = hex::encode(h.finalize());
    match &up.sha256 {
        Some(want) if *want != got => Err(WebError::Upload(format!(
            "the upload's SHA-256 is {got}, not the {want} declared"
        ))),
        _ => Ok(got),
    }
}

/// A technician receives a complete upload (the library's receipt, the package's provider checked
/// against the uploader); the upload is removed once received or refused.
pub fn receive(
    home: &Home,
    s: &Session,
    key: &tokumei_vault::home::DataKey,
    provider: &str,
    id: &str,
) -> Result<tokumei_vault::receive::Outcome, WebError> {
    s.require(home, "receive", &[Role::Technician])?;
    let up = get(home, provider, id)?.ok_or_else(|| WebError::Upload("no such upload".into()))?;
    if !up.complete() {
        return Err(WebError::Upload(format!(
            "the upload has {} of {} bytes",
            up.offset, up.size
        )));
    }
    check_hash(home, &up)?;
    let p = part(home, provider, id);
    let outcome =
        tokumei_vault::receive::receive_uploaded(home, &p, &s.user, key, provider, &|_| {});
    if !matches!(outcome, Err(tokumei_vault::VaultError::Io { .. })) {
        remove(home, provider, id)?;
    }
    Ok(outcome?)
}

/// Removes an upload's files.
pub fn remove(home: &Home, provider: &str, id: &str) -> Result<(), WebError> {
    for p in [part(home, provider, id), meta(home, provider, id)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&p, e)),
        }
    }
    Ok(())
}

fn audit(home: &Home, s: &Session, action: &str, object: &str) -> Result<(), WebError> {
    Ok(s.audit(home, action, object, "ok", s.provider_id.as_deref())?)
}

/// The uploads a piece is being written to: one piece at a time per upload.
#[derive(Default, Clone)]
pub struct Busy(Arc<Mutex<HashSet<String>>>);

/// A claim on an upload, released when dropped.
pub struct Claim(Busy, String);

impl Busy {
    /// Claims `id`; `None` while another piece of it is being written.
    pub fn claim(&self, id: &str) -> Option<Claim> {
        let mut set = self.0.lock().ok()?;
        set.insert(id.to_string())
            .then(|| Claim(self.clone(), id.to_string()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut set) = (self.0).0.lock() {
            set.remove(&self.1);
        }
    }
}

#[cfg(test)]
mod room_tests {
    use super::*;

    #[test]
    fn an_upload_fits_only_beside_what_open_ones_still_need_and_the_margin() {
        let gib = 1u64 << 30;
        let free = 10 * gib + MARGIN;
        assert!(fits(free, 0, 10 * gib));
        assert!(!fits(free, 0, 10 * gib + 1));
        assert!(!fits(free, 4 * gib, 7 * gib));
        assert!(fits(free, 4 * gib, 6 * gib));
        assert!(!fits(MARGIN, 0, 1));
        assert!(!fits(u64::MAX, u64::MAX, 1));
    }
}
