//! Key escrow: the home's data key, receiving identity and audit signing key, split k-of-n among
//! named custodians with Shamir's scheme (over GF(256), the `blahaj` crate), so that k of them
//! recover the home without the operator's passphrase and fewer than k learn nothing.
//!
//! Each custodian's share is a file (`<escrow>-<custodian>.share`, JSON) whose secret part is
//! encrypted with age under the custodian's own passphrase (scrypt). Its clear header (escrow id,
//! custodian, k, n, the home's audit public key) is repeated inside the encrypted part and must
//! match it, so an edited header is found. A recovery checks that every share is of the same split,
//! that k distinct shares are given, and that the result hashes to the split's check value; the
//! home then checks the key opens it ([`tokumei_vault::Home::unlock_with_key`]).
//!
//! The data key also derives the backup repositories' password ([`crate::target::password`]), so
//! the same shares open the backups at the relocation site.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokumei_vault::access::Session;
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::{audit, io, BackupError};

/// Format of a share file.
const FORMAT: &str = "tokumei-escrow-share/1";
/// Largest share file read.
const SHARE_LIMIT: u64 = 64 * 1024;

/// What the custodians hold together.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The data key (hex).
    data_key: String,
    /// The receiving identity (`AGE-SECRET-KEY-1…`).
    identity: String,
    /// The audit signing key (hex of its seed).
    audit_key: String,
    /// The audit public key (hex): which home.
    pub audit_public_key: String,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for s in [&mut self.data_key, &mut self.identity, &mut self.audit_key] {
            let mut b = std::mem::take(s).into_bytes();
            b.fill(0);
        }
    }
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("audit_public_key", &self.audit_public_key)
            .finish()
    }
}

impl Bundle {
    /// The data key.
    pub fn data_key(&self) -> Result<DataKey, BackupError> {
        let bytes: [u8; 32] = hex::decode(&self.data_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| BackupError::Escrow("the recovered data key is malformed".into()))?;
        Ok(DataKey::from_bytes(bytes))
    }

    /// Checks the recovered keys agree with each other: the signing key's public half is the one
    /// named, and the identity parses.
    fn check(&self) -> Result<(), BackupError> {
        let signing = tokumei_audit::key_from_hex(&self.audit_key)
            .map_err(|_| BackupError::Escrow("the recovered signing key is malformed".into()))?;
        let public = hex::encode(signing.verifying_key().to_bytes());
        let identity: Result<age::x25519::Identity, _> = self.identity.parse();
        if public != self.audit_public_key || identity.is_err() {
            return Err(BackupError::Escrow(
                "the recovered keys do not belong together".into(),
            ));
        }
        Ok(())
    }
}

/// The clear part of a share file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// `tokumei-escrow-share/1`.
    pub format: String,
    /// The split's id (hex).
    pub escrow: String,
    /// Who holds this share.
    pub custodian: String,
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub shares: u8,
    /// The home's audit public key (hex).
    pub audit_public_key: String,
    /// SHA-256 of the split's secret with the escrow id: the check value of a recovery.
    pub check: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareFile {
    #[serde(flatten)]
    header: Header,
    /// The age-encrypted [`Inner`], hex.
    sealed: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    header: Header,
    /// The Shamir share (x, then y), hex.
    share: String,
}

/// A custodian and the passphrase that wraps (or opens) the custodian's share.
pub struct Custodian {
    /// User name.
    pub name: String,
    /// Passphrase.
    pub passphrase: String,
}

/// What `escrow split` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    /// The split's id.
    pub escrow: String,
    /// Shares needed.
    pub threshold: u8,
    /// Share files, one per custodian, in the order given.
    pub files: Vec<PathBuf>,
    /// Custodians.
    pub custodians: Vec<String>,
}

fn check_value(escrow: &str, secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"tokumei escrow check v1\n");
    h.update(escrow.as_bytes());
    h.update(b"\n");
    h.update(secret);
    hex::encode(h.finalize())
}

/// Splits the home's keys among `custodians` (registered, unrevoked users, each with a passphrase
/// of at least 13 characters), `threshold` of whom recover them; writes one share file per
/// custodian into `out` (which must not hold them already). A technician with the home passphrase
/// (which unlocked `key`) does it; the custodians are named in the audit entry. `scrypt_log_n`
/// overrides the work factor of the shares' wrapping (about a second by default).
pub fn split(
    home: &Home,
    s: &Session,
    key: &DataKey,
    threshold: u8,
    custodians: &[Custodian],
    out: &Path,
    scrypt_log_n: Option<u8>,
) -> Result<Split, BackupError> {
    check_custodians(home, threshold, custodians)?;
    let secret = bundle(home, key)?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| BackupError::Escrow(e.to_string()))?;
    let escrow = hex::encode(id);
    let check = check_value(&escrow, &secret);
    let n = custodians.len() as u8;
    let shares: Vec<blahaj::Share> = blahaj::Sharks(threshold)
        .dealer(&secret)
        .take(n as usize)
        .collect();
    tokumei_vault::home::make_private_dir(out)?;
    let mut files = Vec::new();
    for (c, share) in custodians.iter().zip(&shares) {
        let header = Header {
            format: FORMAT.into(),
            escrow: escrow.clone(),
            custodian: c.name.clone(),
            threshold,
            shares: n,
            audit_public_key: hex::encode(home.audit_public_key()?.to_bytes()),
            check: check.clone(),
        };
        let path = out.join(format!("{escrow}-{}.share", c.name));
        write_share(&path, header, share, &c.passphrase, scrypt_log_n)?;
        files.push(path);
    }
    let names: Vec<String> = custodians.iter().map(|c| c.name.clone()).collect();
    audit(
        home,
        &s.user,
        s.role.code(),
        "escrow.split",
        &format!(
            "escrow={escrow} threshold={threshold} shares={n} custodians={}",
            names.join(",")
        ),
        "ok",
    )?;
    Ok(Split {
        escrow,
        threshold,
        files,
        custodians: names,
    })
}

fn check_custodians(
    home: &Home,
    threshold: u8,
    custodians: &[Custodian],
) -> Result<(), BackupError> {
    let n = custodians.len();
    if threshold < 2 || n < threshold as usize || n > 255 {
        return Err(BackupError::Escrow(
            "a split needs 2 ≤ threshold ≤ custodians ≤ 255".into(),
        ));
    }
    let catalog = home.catalog()?;
    let mut seen = BTreeSet::new();
    for c in custodians {
        if !seen.insert(c.name.as_str()) {
            return Err(BackupError::Escrow(format!("{} is named twice", c.name)));
        }
        if catalog
            .user(&c.name)?
            .is_none_or(|u| u.revoked_at.is_some())
        {
            return Err(BackupError::Escrow(format!(
                "{} is not a registered user of this home",
                c.name
            )));
        }
        tokumei_vault::home::check_passphrase(&c.passphrase)?;
    }
    Ok(())
}

/// The secret split: the bundle as JSON.
fn bundle(home: &Home, key: &DataKey) -> Result<Vec<u8>, BackupError> {
    let b = Bundle {
        data_key: hex::encode(key.bytes()),
        identity: home
            .operator_identity(key)?
            .to_string()
            .expose_secret()
            .to_string(),
        audit_key: tokumei_audit::key_to_hex(&home.audit_signing_key()?),
        audit_public_key: hex::encode(home.audit_public_key()?.to_bytes()),
    };
    b.check()?;
    serde_json::to_vec(&b).map_err(|e| BackupError::Escrow(e.to_string()))
}

fn write_share(
    path: &Path,
    header: Header,
    share: &blahaj::Share,
    passphrase: &str,
    scrypt_log_n: Option<u8>,
) -> Result<(), BackupError> {
    let inner = Inner {
        header: header.clone(),
        share: hex::encode(Vec::from(share)),
    };
    let plain = serde_json::to_vec(&inner).map_err(|e| BackupError::Escrow(e.to_string()))?;
    let sealed = tokumei_vault::home::wrap_with_passphrase(&plain, passphrase, scrypt_log_n)?;
    let file = ShareFile {
        header,
        sealed: hex::encode(sealed),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(|e| BackupError::Escrow(e.to_string()))?;
    if path.exists() {
        return Err(BackupError::Refused(format!("{} exists", path.display())));
    }
    tokumei_vault::home::write_secret(path, &text)?;
    Ok(())
}

/// Reads a share file's clear header (no passphrase needed).
pub fn header(path: &Path) -> Result<Header, BackupError> {
    Ok(read_share(path)?.header)
}

fn read_share(path: &Path) -> Result<ShareFile, BackupError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut bytes = Vec::new();
    f.take(SHARE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > SHARE_LIMIT {
        return Err(BackupError::Escrow(format!(
            "{}: not a share file",
            path.display()
        )));
    }
    let file: ShareFile = serde_json::from_slice(&bytes)
        .map_err(|_| BackupError::Escrow(format!("{}: not a share file", path.display())))?;
    if file.header.format != FORMAT {
        return Err(BackupError::Escrow(format!(
            "{}: not a share file",
            path.display()
        )));
    }
    Ok(file)
}

/// Opens one share with its custodian's passphrase.
fn open_share(path: &Path, passphrase: &str) -> Result<(Header, blahaj::Share), BackupError> {
    let file = read_share(path)?;
    let who = &file.header.custodian;
    let bad = || {
        BackupError::Escrow(format!(
            "the share of {who} does not open with that passphrase"
        ))
    };
    let sealed = hex::decode(&file.sealed).map_err(|_| bad())?;
    let plain =
        tokumei_vault::home::unwrap_with_passphrase(&sealed, passphrase).map_err(|_| bad())?;
    let inner: Inner = serde_json::from_slice(&plain).map_err(|_| bad())?;
    if inner.header != file.header {
        return Err(BackupError::Escrow(format!(
            "the share of {who} was altered (its header differs from the sealed one)"
        )));
    }
    let raw = hex::decode(&inner.share).map_err(|_| bad())?;
    let share = blahaj::Share::try_from(&raw[..]).map_err(|_| bad())?;
    Ok((inner.header, share))
}

/// What a recovery gives: the keys, and who gave their shares.
#[derive(Debug)]
pub struct Recovered {
    /// The keys.
    pub bundle: Bundle,
    /// The split's id.
    pub escrow: String,
    /// The custodians whose shares were used.
    pub custodians: Vec<String>,
}

/// Recovers the keys from share files, each opened with its custodian's passphrase.
pub fn recover(shares: &[(PathBuf, String)]) -> Result<Recovered, BackupError> {
    let mut opened = Vec::new();
    for (path, pass) in shares {
        opened.push(open_share(path, pass)?);
    }
    let Some((first, _)) = opened.first() else {
        return Err(BackupError::Escrow("no share given".into()));
    };
    let first = first.clone();
    let mut who = BTreeSet::new();
    let mut xs = BTreeSet::new();
    for (h, share) in &opened {
        let same = h.escrow == first.escrow
            && h.threshold == first.threshold
            && h.shares == first.shares
            && h.check == first.check
            && h.audit_public_key == first.audit_public_key;
        if !same {
            return Err(BackupError::Escrow(
                "the shares are of different splits".into(),
            ));
        }
        who.insert(h.custodian.clone());
        xs.insert(Vec::from(share).first().copied());
    }
    if who.len() < first.threshold as usize || xs.len() < first.threshold as usize {
        return Err(BackupError::Escrow(format!(
            "{} distinct shares given, {} needed",
            who.len().min(xs.len()),
            first.threshold
        )));
    }
    let list: Vec<blahaj::Share> = opened.into_iter().map(|(_, s)| s).collect();
    let secret = blahaj::Sharks(first.threshold)
        .recover(&list)
        .map_err(|e| BackupError::Escrow(e.to_string()))?;
    if check_value(&first.escrow, &secret) != first.check {
        return Err(BackupError::Escrow(
            "the shares do not give the split's secret (a share is damaged)".into(),
        ));
    }
    let bundle: Bundle = serde_json::from_slice(&secret)
        .map_err(|_| BackupError::Escrow("the recovered secret is malformed".into()))?;
    bundle.check()?;
    Ok(Recovered {
        bundle,
        escrow: first.escrow,
        custodians: who.into_iter().collect(),
    })
}

/// After a recovery at the home itself (the passphrase lost): checks the keys open this home,
/// wraps the data key under `new_passphrase` and records who recovered it. The old passphrase no
/// longer opens the home; split again so that the shares are fresh. Returns the first technician
/// whose key, wrapped by the old passphrase, stopped being the default
/// ([`Home::rewrap_data_key`]).
pub fn rekey(
    home: &Home,
    r: &Recovered,
    new_passphrase: &str,
    scrypt_log_n: Option<u8>,
) -> Result<Option<String>, BackupError> {
    if r.bundle.audit_public_key != hex::encode(home.audit_public_key()?.to_bytes()) {
        return Err(BackupError::Escrow("the shares are of another home".into()));
    }
    let key = r.bundle.data_key()?;
    let dropped = home.rewrap_data_key(&key, new_passphrase, scrypt_log_n)?;
    audit(
        home,
        &format!("escrow:{}", r.custodians.join("+")),
        "custodian",
        "escrow.recover",
        &format!("escrow={} custodians={}", r.escrow, r.custodians.join(",")),
        &format!(
            "ok: the data key is wrapped under a new passphrase{}",
            dropped_note(dropped.as_deref())
        ),
    )?;
    Ok(dropped)
}

/// The audit outcome's note on a first technician no longer the default.
pub(crate) fn dropped_note(dropped: Option<&str>) -> String {
    dropped
        .map(|u| format!("; {u}'s key, wrapped by the old passphrase, is no longer the default"))
        .unwrap_or_default()
}
