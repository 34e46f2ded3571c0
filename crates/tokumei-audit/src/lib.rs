//! The tamper-evident audit log of a Tokumei operator.
//!
//! Every access and operation is an [`Entry`] (time, actor, role, action, object, outcome; never an
//! identifying value). Entries are the leaves of a Merkle tree in the style of RFC 9162 ([`merkle`]);
//! each appended entry is written as one line of `entries.jsonl` together with the signed tree head
//! after it (tree size, root, Ed25519 signature), so that [`verify`] can name the first entry that was
//! modified, removed, reordered or inserted. [`export_provider`] gives a data provider its own entries
//! with inclusion proofs against the latest signed head, which [`verify_export`] checks with nothing
//! but the export and the operator's public key; [`consistency`] proves that a later log extends an
//! earlier head.
//!
//! Writes are append-only: one `write` of a whole line, then `fsync`, under an exclusive lock of the
//! log file, so that concurrent writers never interleave. A last line cut short (by a crash or by
//! hand) fails [`verify`]; the next append keeps it aside as evidence and records that it did.

pub mod merkle;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use merkle::{Frontier, Hash};
use sha2::Digest;

/// File of the log inside its folder.
pub const ENTRIES: &str = "entries.jsonl";
/// Domain separation of signed tree heads.
const HEAD_CONTEXT: &str = "tokumei-audit-v1";

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing the log failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A key is malformed.
    #[error("invalid key: {0}")]
    Key(String),
    /// The log or an export does not verify.
    #[error("audit entry {seq}: {reason}")]
    Tampered {
        /// Sequence number (0-based line) of the first bad entry.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// An export is malformed or does not verify.
    #[error("export does not verify: {0}")]
    Export(String),
}

fn io(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One audited operation. Fields must never hold an identifying value (name, birth date, address,
/// insurer number, patient id): objects are named by opaque ids, package ids, counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// UTC time, RFC 3339.
    pub time: String,
    /// Who (operator user id, provider id, `system`).
    pub actor: String,
    /// The actor's role (technician, committee, researcher, auditor, provider-admin, system).
    pub role: String,
    /// What was done (`receive`, `vault.read`, `optout.purge` ...).
    pub action: String,
    /// On what (package id, record count, application id ...).
    pub object: String,
    /// Outcome (`ok`, `refused: ...`, `failed: ...`).
    pub outcome: String,
    /// The data provider the operation concerns, if any (selects the entries of its export).
    pub provider: Option<String>,
}

impl Entry {
    /// An entry stamped with the current UTC time.
    pub fn now(
        actor: &str,
        role: &str,
        action: &str,
        object: &str,
        outcome: &str,
        provider: Option<&str>,
    ) -> Entry {
        Entry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: actor.into(),
            role: role.into(),
            action: action.into(),
            object: object.into(),
            outcome: outcome.into(),
            provider: provider.map(str::to_string),
        }
    }

    /// The bytes hashed as the entry's leaf (canonical JSON: fixed field order, no spaces).
    pub fn leaf_bytes(&self, seq: u64) -> Vec<u8> {
        let numbered = Numbered { seq, entry: self };
        serde_json::to_vec(&numbered).unwrap_or_default()
    }

    /// The entry's leaf hash at position `seq`.
    pub fn leaf_hash(&self, seq: u64) -> Hash {
        merkle::leaf_hash(&self.leaf_bytes(seq))
    }
}

#[derive(Serialize)]
struct Numbered<'a> {
    seq: u64,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// A signed tree head: the log's size and root, signed by the operator's audit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    /// Number of entries.
    pub size: u64,
    /// Merkle root, hex.
    pub root: String,
    /// Ed25519 signature of the head, hex.
    pub signature: String,
}

/// Hex as the log writes it (lowercase); any other spelling is none, so that a hash or a
/// signature has one form in the file and a changed letter case is a change found.
fn lower_hex(text: &str) -> Option<Vec<u8>> {
    let lower = text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    lower.then(|| hex::decode(text).ok()).flatten()
}

fn head_message(size: u64, root: &Hash) -> Vec<u8> {
    format!("{HEAD_CONTEXT}\n{size}\n{}\n", hex::encode(root)).into_bytes()
}

impl SignedHead {
    fn sign(key: &SigningKey, size: u64, root: &Hash) -> SignedHead {
        SignedHead {
            size,
            root: hex::encode(root),
            signature: hex::encode(key.sign(&head_message(size, root)).to_bytes()),
        }
    }

    /// The root as bytes.
    pub fn root_hash(&self) -> Option<Hash> {
        lower_hex(&self.root)?.try_into().ok()
    }

    /// Whether the signature is the operator's over this size and root.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let (Some(root), Some(sig)) = (self.root_hash(), lower_hex(&self.signature)) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&sig) else {
            return false;
        };
        key.verify(&head_message(self.size, &root), &sig).is_ok()
    }
}

/// One line of the log file: the entry with its number and the signed head after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    #[serde(flatten)]
    entry: Entry,
    head: SignedHead,
    /// The user whose key signed the head (hex public key), when it is not the operator's: entries
    /// of users who do not hold the home passphrase are signed with their own registered key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
}

/// Generates an Ed25519 key from the operating system's random source.
pub fn generate_key() -> Result<SigningKey, AuditError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| AuditError::Key(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The signing key as stored in a key file (hex of the 32-byte seed).
pub fn key_to_hex(key: &SigningKey) -> String {
    hex::encode(key.to_bytes())
}

/// Reads a signing key written by [`key_to_hex`].
pub fn key_from_hex(text: &str) -> Result<SigningKey, AuditError> {
    let bytes: [u8; 32] = hex::decode(text.trim())
        .map_err(|e| AuditError::Key(e.to_string()))?
        .try_into()
        .map_err(|_| AuditError::Key("expected 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Reads a public key (hex of 32 bytes).
pub fn public_key_from_hex(text: &str) -> Result<VerifyingKey, AuditError> {
    let bytes: [u8; 32] = hex::decode(text.trim())
        .map_err(|e| AuditError::Key(e.to_string()))?
        .try_into()
        .map_err(|_| AuditError::Key("expected 32 bytes".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| AuditError::Key(e.to_string()))
}

/// An open audit log, ready to append.
pub struct AuditLog {
    path: PathBuf,
    key: SigningKey,
    /// Whether `key` is a user's (not the operator's).
    by_user: bool,
    frontier: Frontier,
    /// Bytes of the log read into `frontier`.
    offset: u64,
}

impl AuditLog {
    /// Opens (or creates) the log in `dir`. Entries already there are re-hashed to continue the tree.
    /// Use [`verify`] to check the log.
    pub fn open(dir: &Path, key: SigningKey) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut log = AuditLog {
            path: dir.join(ENTRIES),
            key,
            by_user: false,
            frontier: Frontier::default(),
            offset: 0,
        };
        if log.path.exists() {
            let mut f = File::open(&log.path).map_err(|e| io(&log.path, e))?;
            log.catch_up(&mut f)?;
        }
        Ok(log)
    }

    /// Opens the log to append entries signed with a user's own key (a user who does not hold the
    /// operator's key); each line names its signer, and verification accepts it only for a key the
    /// caller registers.
    pub fn open_as_user(dir: &Path, key: SigningKey) -> Result<AuditLog, AuditError> {
        let mut log = AuditLog::open(dir, key)?;
        log.by_user = true;
        Ok(log)
    }

    /// Reads the complete lines written after `offset` (by this or another process) into the tree.
    /// Returns the bytes of a last line with no newline, if any.
    fn catch_up(&mut self, f: &mut File) -> Result<Vec<u8>, AuditError> {
        use std::io::{Read, Seek, SeekFrom};
        let len = f.metadata().map_err(|e| io(&self.path, e))?.len();
        if len < self.offset {
            return Err(AuditError::Tampered {
                seq: self.frontier.size(),
                reason: "the log became shorter while it was open (entries were removed)".into(),
            });
        }
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| io(&self.path, e))?;
        let mut reader = std::io::BufReader::new(f.take(len - self.offset));
        loop {
            let mut buf = Vec::new();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| io(&self.path, e))?;
            if n == 0 {
                return Ok(Vec::new());
            }
            if buf.last() != Some(&b'\n') {
                return Ok(buf);
            }
            let seq = self.frontier.size();
            let l: Line =
                serde_json::from_slice(&buf[..n - 1]).map_err(|e| AuditError::Tampered {
                    seq,
                    reason: format!("unreadable line: {e}"),
                })?;
            if l.seq != seq {
                return Err(AuditError::Tampered {
                    seq,
                    reason: format!("numbered {} where {seq} was expected", l.seq),
                });
            }
            self.frontier.push(l.entry.leaf_hash(seq));
            self.offset += n as u64;
        }
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The operator's public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Appends an entry durably and returns the signed head after it.
    ///
    /// The append holds an exclusive lock on the log file from reading its end to syncing the new
    /// line, so that concurrent writers (other processes, other handles) never interleave or reuse a
    /// sequence number: entries another writer appended since this handle last looked are read into
    /// the tree first. A last line left without its newline (a write cut short by a crash, or a cut
    /// made by hand) is never dropped silently: it is moved to `cut-<seq>.line` beside the log and
    /// an `audit.cut` entry recording its size and SHA-256 is appended before this one.
    pub fn append(&mut self, entry: Entry) -> Result<SignedHead, AuditError> {
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, e))?;
        f.lock().map_err(|e| io(&self.path, e))?;
        let cut = self.catch_up(&mut f)?;
        if !cut.is_empty() {
            self.set_aside(&f, &cut)?;
        }
        self.write_line(&f, entry)
    }

    /// Keeps a cut last line as evidence and removes it from the log, with an entry saying so.
    fn set_aside(&mut self, f: &File, cut: &[u8]) -> Result<(), AuditError> {
        let seq = self.frontier.size();
        let aside = self.path.with_file_name(format!("cut-{seq}.line"));
        let mut keep = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&aside)
            .map_err(|e| io(&aside, e))?;
        keep.write_all(cut).map_err(|e| io(&aside, e))?;
        keep.sync_all().map_err(|e| io(&aside, e))?;
        f.set_len(self.offset).map_err(|e| io(&self.path, e))?;
        f.sync_all().map_err(|e| io(&self.path, e))?;
        let digest = hex::encode(sha2::Sha256::digest(cut));
        let entry = Entry::now(
            "system",
            "system",
            "audit.cut",
            &format!(
                "a last line of {} bytes without its end, kept as cut-{seq}.line",
                cut.len()
            ),
            &format!("set aside: sha256 {digest}"),
            None,
        );
        self.write_line(f, entry).map(|_| ())
    }

    fn write_line(&mut self, f: &File, entry: Entry) -> Result<SignedHead, AuditError> {
        let seq = self.frontier.size();
        let mut next = self.frontier.clone();
        next.push(entry.leaf_hash(seq));
        let head = SignedHead::sign(&self.key, next.size(), &next.root());
        let line = Line {
            seq,
            entry,
            head: head.clone(),
            signer: self
                .by_user
                .then(|| hex::encode(self.key.verifying_key().to_bytes())),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| AuditError::Tampered {
            seq,
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        let mut w = f;
        w.write_all(&bytes).map_err(|e| io(&self.path, e))?;
        w.sync_data().map_err(|e| io(&self.path, e))?;
        self.frontier = next;
        self.offset += bytes.len() as u64;
        Ok(head)
    }

    /// The signed head of the log as it stands.
    pub fn head(&self) -> SignedHead {
        SignedHead::sign(&self.key, self.frontier.size(), &self.frontier.root())
    }
}

/// What [`verify`] found on an intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries verified.
    pub entries: u64,
    /// The last signed head.
    pub head: Option<SignedHead>,
    /// The last head signed by the operator (what exports and checkpoints rest on).
    pub operator_head: Option<SignedHead>,
    /// The action of the first entry (a home's log begins with `home.init`).
    pub first_action: Option<String>,
}

fn read_lines(dir: &Path) -> Result<(Vec<Vec<u8>>, bool), AuditError> {
    let path = dir.join(ENTRIES);
    if !path.exists() {
        return Ok((Vec::new(), false));
    }
    let f = File::open(&path).map_err(|e| io(&path, e))?;
    let mut reader = std::io::BufReader::new(f);
    let mut lines = Vec::new();
    let mut incomplete = false;
    loop {
        let mut buf = Vec::new();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io(&path, e))?;
        if n == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            lines.push(buf);
        } else {
            incomplete = true;
        }
    }
    Ok((lines, incomplete))
}

/// Verifies the whole log in `dir` against the operator's public key: every line parses, numbers
/// follow on, and the signed head of every line is the operator's over the tree recomputed up to it.
/// Returns the first bad entry otherwise. A line signed by a user's key fails here; see
/// [`verify_with`].
pub fn verify(dir: &Path, key: &VerifyingKey) -> Result<Verified, AuditError> {
    verify_with(dir, key, &|_, _| false)
}

/// [`verify`], accepting heads signed by a user's key where `user(key, entry)` allows it (a
/// registered user, for an entry that user may have written).
pub fn verify_with(
    dir: &Path,
    key: &VerifyingKey,
    user: &dyn Fn(&VerifyingKey, &Entry) -> bool,
) -> Result<Verified, AuditError> {
    verify_lines(dir, key, user, &[]).map(|(v, _)| v)
}

/// [`verify_with`], also giving the tree's root after the first `n` entries for each `n` of
/// `roots_at` (those the log holds, above 0).
fn verify_lines(
    dir: &Path,
    key: &VerifyingKey,
    user: &dyn Fn(&VerifyingKey, &Entry) -> bool,
    roots_at: &[u64],
) -> Result<(Verified, BTreeMap<u64, Hash>), AuditError> {
    let (lines, incomplete_tail) = read_lines(dir)?;
    let mut roots_there = BTreeMap::new();
    let mut frontier = Frontier::default();
    let mut head = None;
    let mut operator_head = None;
    let mut first_action = None;
    for (i, raw) in lines.iter().enumerate() {
        let seq = i as u64;
        let bad = |reason: String| AuditError::Tampered { seq, reason };
        let line: Line =
            serde_json::from_slice(raw).map_err(|e| bad(format!("not a readable entry ({e})")))?;
        // Only the canonical spelling is accepted (hex case, escapes, spacing are not free).
        if serde_json::to_vec(&line).ok().as_deref() != Some(raw.as_slice()) {
            return Err(bad("the line is not in its written form".into()));
        }
        if line.seq != seq {
            return Err(bad(format!(
                "numbered {} where {seq} was expected (an entry was removed, inserted or moved)",
                line.seq
            )));
        }
        frontier.push(line.entry.leaf_hash(seq));
        if roots_at.contains(&(seq + 1)) {
            roots_there.insert(seq + 1, frontier.root());
        }
        if line.head.size != seq + 1 {
            return Err(bad("its tree head has the wrong size".into()));
        }
        if line.head.root_hash() != Some(frontier.root()) {
            return Err(bad(
                "its content or an earlier entry's does not match the signed tree".into(),
            ));
        }
        match &line.signer {
            None if line.head.verify(key) => operator_head = Some(line.head.clone()),
            None => {
                return Err(bad(
                    "the tree head is not signed by the operator's key".into()
                ))
            }
            Some(signer) => {
                let signer = lower_hex(signer)
                    .and_then(|_| public_key_from_hex(signer).ok())
                    .filter(|k| user(k, &line.entry) && line.head.verify(k));
                if signer.is_none() {
                    return Err(bad(
                        "the tree head is not signed by the operator or a registered user".into(),
                    ));
                }
            }
        }
        head = Some(line.head);
        if seq == 0 {
            first_action = Some(line.entry.action);
        }
    }
    if incomplete_tail {
        return Err(AuditError::Tampered {
            seq: lines.len() as u64,
            reason: "the last line is cut short (an interrupted write or a cut made by hand; the \
                     next write keeps it aside as evidence)"
                .into(),
        });
    }
    let verified = Verified {
        entries: lines.len() as u64,
        head,
        operator_head,
        first_action,
    };
    Ok((verified, roots_there))
}

/// One entry of a provider export with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEntry {
    /// Position in the log.
    pub seq: u64,
    /// The entry.
    pub entry: Entry,
    /// Audit path to the head's root, hex hashes.
    pub proof: Vec<String>,
}

/// A provider's own audit entries, provable against the operator's signed head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderExport {
    /// The provider.
    pub provider: String,
    /// The operator's audit public key, hex (check it against the one the operator published).
    pub operator_key: String,
    /// The signed head the proofs lead to.
    pub head: SignedHead,
    /// The provider's entries.
    pub entries: Vec<ExportedEntry>,
}

/// Exports the entries concerning `provider`, with inclusion proofs against the log's latest signed
/// head. The log is verified first.
pub fn export_provider(
    dir: &Path,
    key: &VerifyingKey,
    provider: &str,
) -> Result<ProviderExport, AuditError> {
    // Every line's root chains to the operator's heads, so the export needs no user key: it rests on
    // the last head the operator signed, and holds the entries up to it.
    let verified = verify_with(dir, key, &|_, _| true)?;
    let head = verified.operator_head.ok_or(AuditError::Export(
        "no tree head of the operator yet".into(),
    ))?;
    let (lines, _) = read_lines(dir)?;
    let mut leaves = Vec::with_capacity(lines.len());
    let mut mine = Vec::new();
    for (i, raw) in lines.iter().take(head.size as usize).enumerate() {
        let line: Line = serde_json::from_slice(raw).map_err(|e| AuditError::Tampered {
            seq: i as u64,
            reason: e.to_string(),
        })?;
        leaves.push(line.entry.leaf_hash(line.seq));
        if line.entry.provider.as_deref() == Some(provider) {
            mine.push((line.seq, line.entry));
        }
    }
    let entries = mine
        .into_iter()
        .map(|(seq, entry)| ExportedEntry {
            seq,
            proof: merkle::inclusion_proof(&leaves, seq as usize)
                .unwrap_or_default()
                .iter()
                .map(hex::encode)
                .collect(),
            entry,
        })
        .collect();
    Ok(ProviderExport {
        provider: provider.into(),
        operator_key: hex::encode(key.to_bytes()),
        head,
        entries,
    })
}

/// Verifies a provider export with nothing but the operator's public key: the head's signature, and
/// each entry's inclusion in the signed tree. Returns the number of entries proven.
pub fn verify_export(export: &ProviderExport, key: &VerifyingKey) -> Result<usize, AuditError> {
    if hex::encode(key.to_bytes()) != export.operator_key {
        return Err(AuditError::Export(
            "the export names another operator key".into(),
        ));
    }
    if !export.head.verify(key) {
        return Err(AuditError::Export(
            "the tree head is not signed by the operator".into(),
        ));
    }
    let root = export
        .head
        .root_hash()
        .ok_or(AuditError::Export("malformed root".into()))?;
    for e in &export.entries {
        if e.entry.provider.as_deref() != Some(export.provider.as_str()) {
            return Err(AuditError::Tampered {
                seq: e.seq,
                reason: "entry of another provider".into(),
            });
        }
        let proof: Option<Vec<Hash>> = e
            .proof
            .iter()
            .map(|h| hex::decode(h).ok()?.try_into().ok())
            .collect();
        let proof = proof.ok_or(AuditError::Tampered {
            seq: e.seq,
            reason: "malformed proof".into(),
        })?;
        if !merkle::verify_inclusion(
            e.seq,
            export.head.size,
            &e.entry.leaf_hash(e.seq),
            &proof,
            &root,
        ) {
            return Err(AuditError::Tampered {
                seq: e.seq,
                reason: "not included in the signed tree (altered, or not the operator's)".into(),
            });
        }
    }
    Ok(export.entries.len())
}

/// A consistency proof that the tree of the operator's last signed head extends the tree of the
/// log's first `old_size` entries (hex hashes), with that head. (A head a user's key signed after
/// it is not the operator's and cannot be checked with the operator's key alone.)
pub fn consistency(
    dir: &Path,
    key: &VerifyingKey,
    old_size: u64,
) -> Result<(SignedHead, Vec<String>), AuditError> {
    consistency_with(dir, key, old_size, &|_, _| false)
}

/// [`consistency`] of a log holding entries signed by users' keys, accepted where `user(key,
/// entry)` allows it (as [`verify_with`]).
pub fn consistency_with(
    dir: &Path,
    key: &VerifyingKey,
    old_size: u64,
    user: &dyn Fn(&VerifyingKey, &Entry) -> bool,
) -> Result<(SignedHead, Vec<String>), AuditError> {
    let verified = verify_with(dir, key, user)?;
    let head = verified.operator_head.ok_or(AuditError::Export(
        "no tree head of the operator yet".into(),
    ))?;
    let (lines, _) = read_lines(dir)?;
    let mut leaves = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().take(head.size as usize).enumerate() {
        let line: Line = serde_json::from_slice(raw).map_err(|e| AuditError::Tampered {
            seq: i as u64,
            reason: e.to_string(),
        })?;
        leaves.push(line.entry.leaf_hash(line.seq));
    }
    let proof = merkle::consistency_proof(&leaves, old_size as usize).ok_or(AuditError::Export(
        format!("no tree of size {old_size} in this log"),
    ))?;
    Ok((head, proof.iter().map(hex::encode).collect()))
}

/// Checks that `new` extends `old` with a proof from [`consistency`]; both heads must be signed by
/// the operator.
pub fn verify_consistency(
    old: &SignedHead,
    new: &SignedHead,
    proof: &[String],
    key: &VerifyingKey,
) -> bool {
    let proof: Option<Vec<Hash>> = proof
        .iter()
        .map(|h| hex::decode(h).ok()?.try_into().ok())
        .collect();
    match (proof, old.root_hash(), new.root_hash()) {
        (Some(p), Some(a), Some(b)) => {
            old.verify(key)
                && new.verify(key)
                && merkle::verify_consistency(old.size, new.size, &a, &b, &p)
        }
        _ => false,
    }
}

/// Reads a checkpoint: a signed tree head kept outside the home, as JSON — either the head alone
/// (what [`AuditLog::head`] gives, written by `tokumei audit checkpoint`) or a provider export,
/// whose head its provider keeps.
pub fn read_checkpoint(bytes: &[u8]) -> Result<SignedHead, AuditError> {
    if let Ok(head) = serde_json::from_slice::<SignedHead>(bytes) {
        return Ok(head);
    }
    serde_json::from_slice::<ProviderExport>(bytes)
        .map(|e| e.head)
        .map_err(|_| {
            AuditError::Export("not a checkpoint (a signed tree head or an export)".into())
        })
}

/// Verifies the log in `dir` and that it extends `checkpoint`, a signed tree head held outside the
/// home: the checkpoint is the operator's, the log holds at least as many entries, and its first
/// `checkpoint.size` entries hash to the checkpoint's root. A log cut back (entries removed from the
/// end, or emptied) or rewritten before the checkpoint — even re-signed with the operator's key —
/// fails here.
pub fn verify_extends(
    dir: &Path,
    key: &VerifyingKey,
    checkpoint: &SignedHead,
    user: &dyn Fn(&VerifyingKey, &Entry) -> bool,
) -> Result<Verified, AuditError> {
    verify_extends_all(dir, key, std::slice::from_ref(checkpoint), user)
}

/// [`verify_extends`] for several checkpoints, the log read and verified once.
pub fn verify_extends_all(
    dir: &Path,
    key: &VerifyingKey,
    checkpoints: &[SignedHead],
    user: &dyn Fn(&VerifyingKey, &Entry) -> bool,
) -> Result<Verified, AuditError> {
    if checkpoints.iter().any(|c| !c.verify(key)) {
        return Err(AuditError::Export(
            "the checkpoint is not signed by the operator's audit key".into(),
        ));
    }
    let sizes: Vec<u64> = checkpoints.iter().map(|c| c.size).collect();
    let (verified, roots) = verify_lines(dir, key, user, &sizes)?;
    for checkpoint in checkpoints {
        if verified.entries < checkpoint.size {
            return Err(AuditError::Tampered {
                seq: verified.entries,
                reason: format!(
                    "the log holds {} entries but a checkpoint held elsewhere has {}: entries were \
                     removed",
                    verified.entries, checkpoint.size
                ),
            });
        }
        // A checkpoint of an empty log holds the empty tree's root.
        let root = roots
            .get(&checkpoint.size)
            .copied()
            .unwrap_or_else(|| Frontier::default().root());
        if checkpoint.root_hash() != Some(root) {
            return Err(AuditError::Tampered {
                seq: checkpoint.size.saturating_sub(1),
                reason: format!(
                    "the first {} entries are not those of a checkpoint held elsewhere: the log \
                     was rewritten",
                    checkpoint.size
                ),
            });
        }
    }
    Ok(verified)
}

/// Every entry of the log in `dir` with its sequence number, oldest first (read, not verified).
pub fn entries(dir: &Path) -> Result<Vec<(u64, Entry)>, AuditError> {
    let (lines, _) = read_lines(dir)?;
    lines
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            serde_json::from_slice::<Line>(raw)
                .map(|l| (l.seq, l.entry))
                .map_err(|e| AuditError::Tampered {
                    seq: i as u64,
                    reason: format!("unreadable line: {e}"),
                })
        })
        .collect()
}

/// The last entry of the log in `dir` whose action is `action` (the log is read, not verified).
pub fn last_of(dir: &Path, action: &str) -> Result<Option<Entry>, AuditError> {
    Ok(entries_of(dir, &[action], true)?.pop())
}

/// Every entry of the log in `dir` whose action is one of `actions`, oldest first (`last`: only
/// the last one); the log is read once, not verified.
pub fn entries_of(dir: &Path, actions: &[&str], last: bool) -> Result<Vec<Entry>, AuditError> {
    let (lines, _) = read_lines(dir)?;
    let needles: Vec<String> = actions
        .iter()
        .map(|a| {
            format!(
                "\"action\":{}",
                serde_json::to_string(a).unwrap_or_default()
            )
        })
        .collect();
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate().rev() {
        let named = |n: &String| raw.windows(n.len()).any(|w| w == n.as_bytes());
        if !needles.iter().any(named) {
            continue;
        }
        let line: Line = serde_json::from_slice(raw).map_err(|e| AuditError::Tampered {
            seq: i as u64,
            reason: format!("unreadable line: {e}"),
        })?;
        if actions.contains(&line.entry.action.as_str()) {
            out.push(line.entry);
            if last {
                break;
            }
        }
    }
    out.reverse();
    Ok(out)
}
