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
//! Writes are append-only: one `write` of a whole line, then `fsync`. A line cut short by a crash is
//! the only thing [`AuditLog::open`] removes (it was never acknowledged).

pub mod merkle;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use merkle::{Frontier, Hash};

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
        hex::decode(&self.root).ok()?.try_into().ok()
    }

    /// Whether the signature is the operator's over this size and root.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let (Some(root), Ok(sig)) = (self.root_hash(), hex::decode(&self.signature)) else {
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
    frontier: Frontier,
}

impl AuditLog {
    /// Opens (or creates) the log in `dir`. Entries already there are re-hashed to continue the tree;
    /// a last line cut short by a crash is removed. Use [`verify`] to check the log.
    pub fn open(dir: &Path, key: SigningKey) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(ENTRIES);
        let mut frontier = Frontier::default();
        if path.exists() {
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if complete < bytes.len() {
                // An append interrupted before its newline was never acknowledged.
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io(&path, e))?;
                f.set_len(complete as u64).map_err(|e| io(&path, e))?;
                f.sync_all().map_err(|e| io(&path, e))?;
            }
            for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
                if line.is_empty() {
                    continue;
                }
                let l: Line = serde_json::from_slice(line).map_err(|e| AuditError::Tampered {
                    seq: i as u64,
                    reason: format!("unreadable line: {e}"),
                })?;
                frontier.push(l.entry.leaf_hash(l.seq));
            }
        }
        Ok(AuditLog {
            path,
            key,
            frontier,
        })
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
    pub fn append(&mut self, entry: Entry) -> Result<SignedHead, AuditError> {
        let seq = self.frontier.size();
        let mut next = self.frontier.clone();
        next.push(entry.leaf_hash(seq));
        let head = SignedHead::sign(&self.key, next.size(), &next.root());
        let line = Line {
            seq,
            entry,
            head: head.clone(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| AuditError::Tampered {
            seq,
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, e))?;
        f.write_all(&bytes).map_err(|e| io(&self.path, e))?;
        f.sync_data().map_err(|e| io(&self.path, e))?;
        self.frontier = next;
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
    /// Whether a last line cut short by a crash was ignored.
    pub incomplete_tail: bool,
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
/// Returns the first bad entry otherwise.
pub fn verify(dir: &Path, key: &VerifyingKey) -> Result<Verified, AuditError> {
    let (lines, incomplete_tail) = read_lines(dir)?;
    let mut frontier = Frontier::default();
    let mut head = None;
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
        if line.head.size != seq + 1 {
            return Err(bad("its tree head has the wrong size".into()));
        }
        if line.head.root_hash() != Some(frontier.root()) {
            return Err(bad(
                "its content or an earlier entry's does not match the signed tree".into(),
            ));
        }
        if !line.head.verify(key) {
            return Err(bad(
                "the tree head is not signed by the operator's key".into()
            ));
        }
        head = Some(line.head);
    }
    Ok(Verified {
        entries: lines.len() as u64,
        head,
        incomplete_tail,
    })
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
    let verified = verify(dir, key)?;
    let (lines, _) = read_lines(dir)?;
    let mut leaves = Vec::with_capacity(lines.len());
    let mut mine = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line: Line = serde_json::from_slice(raw).map_err(|e| AuditError::Tampered {
            seq: i as u64,
            reason: e.to_string(),
        })?;
        leaves.push(line.entry.leaf_hash(line.seq));
        if line.entry.provider.as_deref() == Some(provider) {
            mine.push((line.seq, line.entry));
        }
    }
    let head = verified
        .head
        .ok_or(AuditError::Export("the log is empty".into()))?;
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

/// A consistency proof that the log's current tree extends the tree of its first `old_size`
/// entries (hex hashes), with the current signed head.
pub fn consistency(
    dir: &Path,
    key: &VerifyingKey,
    old_size: u64,
) -> Result<(SignedHead, Vec<String>), AuditError> {
    let verified = verify(dir, key)?;
    let head = verified
        .head
        .ok_or(AuditError::Export("the log is empty".into()))?;
    let (lines, _) = read_lines(dir)?;
    let mut leaves = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
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
