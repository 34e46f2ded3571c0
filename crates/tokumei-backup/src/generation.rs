//! `backup init | create | list | verify | prune`: generations of the home on a target.
//!
//! A generation is a restic snapshot of a [`crate::stage`] tagged `tokumei`, `seq-N` (the audit
//! entries its operator-signed head covers) and `root-R` (that head's root, first 16 hex digits),
//! recorded by a `backup.create` entry of the home's audit log naming the snapshot. Only recorded
//! generations count: a snapshot that the log does not name (written by someone else holding the
//! repository password, or by a run killed before it recorded it) is listed as unrecorded, and a
//! run of `create` records its own after checking that its manifest's head is the home's and that
//! the live log extends it. Retention keeps the last generations by audit sequence; snapshot times
//! written by a client's clock are never read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use tokumei_audit::SignedHead;
use tokumei_vault::access::Session;
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::restic::{Restic, Snapshot, Summary, TAG};
use crate::stage::{Manifest, MANIFEST};
use crate::target::{self, Target};
use crate::{audit, BackupError};

/// Largest manifest read back from a generation.
const MANIFEST_LIMIT: u64 = 1 << 20;

/// One generation on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    /// Snapshot id (hex).
    pub snapshot: String,
    /// Audit entries covered by its operator-signed head.
    pub seq: u64,
    /// The head's root (first 16 hex digits, from the tag).
    pub root: String,
    /// Whether the home's audit log records it (`backup.create`).
    pub recorded: bool,
}

/// What `backup create` did.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// Target.
    pub target: String,
    /// The generation.
    pub generation: Generation,
    /// The head it covers.
    pub head: SignedHead,
    /// restic's figures (files, bytes, bytes added after deduplication).
    pub summary: Summary,
    /// Snapshots left by an interrupted run and recorded now.
    pub adopted: Vec<String>,
}

/// Opens `t` with the password derived from `key`, caching metadata in the home's scratch.
pub fn open(home: &Home, t: &Target, key: &DataKey) -> Result<Restic, BackupError> {
    let cache = home.root.join("work/backup-cache").join(&t.name);
    // restic runs in the stage's folder: the cache's path must not be relative.
    let cache = std::path::absolute(&cache).map_err(crate::io(&cache))?;
    t.open(target::password(key), Some(cache))
}

/// Adds a target to the home and creates its repository (or checks that the one there opens with
/// this home's password). With `site_recipient`, also returns the repository password sealed with
/// age to the relocation site (to keep at that site, apart from the escrow shares).
pub fn init(
    home: &Home,
    s: &Session,
    key: &DataKey,
    t: &Target,
    site_recipient: Option<&str>,
) -> Result<Option<Vec<u8>>, BackupError> {
    t.check()?;
    let sealed = match site_recipient {
        Some(r) => Some(seal_to(r, target::password(key).as_bytes())?),
        None => None,
    };
    let r = open(home, t, key)?;
    if !r.exists() {
        r.init()?;
    }
    target::add(home, t)?;
    audit(
        home,
        &s.user,
        s.role.code(),
        "backup.init",
        &format!("target={} repo={}", t.name, redact(&t.repo)),
        "ok",
    )?;
    Ok(sealed)
}

/// The repository as the log names it: a folder's last component, an SFTP host and path.
fn redact(repo: &str) -> String {
    repo.rsplit('/').next().unwrap_or_default().to_string()
}

fn seal_to(recipient: &str, secret: &[u8]) -> Result<Vec<u8>, BackupError> {
    let r: age::x25519::Recipient = recipient
        .trim()
        .parse()
        .map_err(|_| BackupError::Refused("the site's recipient is not an age1… key".into()))?;
    tokumei_vault::sealed::seal_bytes(&r, secret).map_err(|e| BackupError::Engine(e.to_string()))
}

/// The `backup.create` entries of the home's log: snapshot id → (target, seq).
fn recorded(home: &Home) -> Result<BTreeMap<String, (String, u64)>, BackupError> {
    let entries = tokumei_audit::entries_of(&home.audit_dir(), &["backup.create"], false)?;
    Ok(entries
        .iter()
        .filter(|e| e.outcome.starts_with("ok"))
        .filter_map(|e| {
            let f = fields(&e.object);
            Some((
                f.get("snapshot")?.to_string(),
                (f.get("target")?.to_string(), f.get("seq")?.parse().ok()?),
            ))
        })
        .collect())
}

/// `key=value` words of an audit object.
fn fields(object: &str) -> BTreeMap<&str, &str> {
    object
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

fn tag<'a>(s: &'a Snapshot, prefix: &str) -> Option<&'a str> {
    s.tags.iter().find_map(|t| t.strip_prefix(prefix))
}

/// The generations on `r`, by audit sequence (oldest first), marked recorded or not.
pub fn generations(
    r: &Restic,
    recorded: &BTreeMap<String, (String, u64)>,
    target: &str,
) -> Result<Vec<Generation>, BackupError> {
    let mut out: Vec<Generation> = r
        .snapshots()?
        .iter()
        .filter(|s| s.tags.iter().any(|t| t == TAG))
        .map(|s| Generation {
            snapshot: s.id.clone(),
            seq: tag(s, "seq-").and_then(|n| n.parse().ok()).unwrap_or(0),
            root: tag(s, "root-").unwrap_or_default().to_string(),
            recorded: recorded
                .get(&s.id)
                .is_some_and(|(t, seq)| t == target && tag(s, "seq-") == Some(&seq.to_string())),
        })
        .collect();
    out.sort_by(|a, b| (a.seq, &a.snapshot).cmp(&(b.seq, &b.snapshot)));
    Ok(out)
}

/// The generations of target `name` of the home.
pub fn list(home: &Home, key: &DataKey, name: &str) -> Result<Vec<Generation>, BackupError> {
    let t = target::target(home, name)?;
    let r = open(home, &t, key)?;
    generations(&r, &recorded(home)?, name)
}

/// The manifest of snapshot `id`.
pub fn manifest(r: &Restic, id: &str) -> Result<Manifest, BackupError> {
    let bytes = r.dump(id, &format!("/{MANIFEST}"), MANIFEST_LIMIT)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::Damaged(vec![format!("snapshot {id}: unreadable manifest: {e}")]))
}

/// Creates a generation of the home on target `name`: stage under the writer lock, back up,
/// record. A snapshot an interrupted run left unrecorded is checked and recorded first.
pub fn create(
    home: &Home,
    s: &Session,
    key: &DataKey,
    name: &str,
    lock_wait: std::time::Duration,
) -> Result<Created, BackupError> {
    let t = target::target(home, name)?;
    let r = open(home, &t, key)?;
    r.unlock()?;
    let adopted = adopt(home, s, &r, name)?;
    let stage_dir: PathBuf = home.root.join("work/backup-stage");
    let staged = {
        let _lock = tokumei_vault::lock::writer(home, "backup create", lock_wait, &|_| {})?;
        audit(
            home,
            &s.user,
            s.role.code(),
            "backup.stage",
            &format!("target={name}"),
            "ok",
        )?;
        crate::stage::stage(home, &stage_dir)?
    };
    let head = staged.manifest.head.clone();
    let root = head.root.get(..16).unwrap_or_default().to_string();
    let tags = vec![
        TAG.to_string(),
        format!("seq-{}", head.size),
        format!("root-{root}"),
    ];
    let summary = r.backup(&staged.dir, &tags);
    let _ = std::fs::remove_dir_all(&staged.dir);
    let summary = summary?;
    let snapshot = full_id(&r, &summary.snapshot_id)?;
    tokumei_vault::fault::point("backup.after-snapshot");
    record(home, s, name, &snapshot, &head, &summary, "ok")?;
    Ok(Created {
        target: name.to_string(),
        generation: Generation {
            snapshot,
            seq: head.size,
            root,
            recorded: true,
        },
        head,
        summary,
        adopted,
    })
}

fn full_id(r: &Restic, short: &str) -> Result<String, BackupError> {
    r.snapshots()?
        .into_iter()
        .find(|s| !short.is_empty() && s.id.starts_with(short))
        .map(|s| s.id)
        .ok_or_else(|| BackupError::Engine(format!("snapshot {short} not found after backup")))
}

fn record(
    home: &Home,
    s: &Session,
    name: &str,
    snapshot: &str,
    head: &SignedHead,
    summary: &Summary,
    outcome: &str,
) -> Result<(), BackupError> {
    let object = format!(
        "target={name} snapshot={snapshot} seq={} root={} files={} bytes={} added={}",
        head.size,
        head.root,
        summary.total_files_processed,
        summary.total_bytes_processed,
        summary.data_added
    );
    audit(
        home,
        &s.user,
        s.role.code(),
        "backup.create",
        &object,
        outcome,
    )?;
    Ok(())
}

/// Records the generations an interrupted `create` wrote but did not record: each one's manifest
/// must be this home's, signed by its key, and the live log must extend its head.
fn adopt(home: &Home, s: &Session, r: &Restic, name: &str) -> Result<Vec<String>, BackupError> {
    let known = recorded(home)?;
    let mut adopted = Vec::new();
    for g in generations(r, &known, name)? {
        if g.recorded || known.contains_key(&g.snapshot) {
            continue;
        }
        let Ok(m) = manifest(r, &g.snapshot) else {
            continue;
        };
        let ours = m.audit_public_key == hex::encode(home.audit_public_key()?.to_bytes())
            && m.head.size == g.seq
            && home.verify_audit(Some(&m.head)).is_ok();
        if ours {
            let summary = Summary {
                total_files_processed: m.files,
                total_bytes_processed: m.bytes,
                ..Summary::default()
            };
            record(
                home,
                s,
                name,
                &g.snapshot,
                &m.head,
                &summary,
                "ok (recorded after an interrupted run)",
            )?;
            adopted.push(g.snapshot);
        }
    }
    Ok(adopted)
}

/// What `backup verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// Target.
    pub target: String,
    /// Generations whose manifest is this home's and whose head the live log extends.
    pub generations: Vec<Generation>,
    /// Snapshots not recorded in the log (never counted as generations).
    pub unrecorded: Vec<String>,
}

/// Reads and authenticates every chunk of target `name` (restic `check --read-data`), then checks
/// each recorded generation's manifest against the home's key and live log. Audited either way.
pub fn verify(
    home: &Home,
    s: &Session,
    key: &DataKey,
    name: &str,
) -> Result<Verified, BackupError> {
    let t = target::target(home, name)?;
    let r = open(home, &t, key)?;
    let result = verify_repo(home, &r, name);
    let outcome = match &result {
        Ok(v) => format!("ok: {} generations", v.generations.len()),
        Err(e) => format!("failed: {e}"),
    };
    audit(
        home,
        &s.user,
        s.role.code(),
        "backup.verify",
        &format!("target={name}"),
        &outcome,
    )?;
    result
}

fn verify_repo(home: &Home, r: &Restic, name: &str) -> Result<Verified, BackupError> {
    r.unlock()?;
    r.check(true)?;
    let all = generations(r, &recorded(home)?, name)?;
    let mut out = Verified {
        target: name.to_string(),
        generations: Vec::new(),
        unrecorded: Vec::new(),
    };
    let public = hex::encode(home.audit_public_key()?.to_bytes());
    let mut heads = Vec::new();
    for g in all {
        if !g.recorded {
            out.unrecorded.push(g.snapshot);
            continue;
        }
        let m = manifest(r, &g.snapshot)?;
        if m.audit_public_key != public || m.head.size != g.seq {
            return Err(BackupError::Damaged(vec![format!(
                "snapshot {}: its manifest is not this home's generation",
                g.snapshot
            )]));
        }
        heads.push(m.head);
        out.generations.push(g);
    }
    // The live log extends every generation's head: read and verified once for all of them.
    home.verify_audit_extends(&heads)?;
    Ok(out)
}

/// What `backup prune` did.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    /// Target.
    pub target: String,
    /// Generations kept (the newest by audit sequence).
    pub kept: Vec<Generation>,
    /// Generations forgotten and their data removed.
    pub forgotten: Vec<Generation>,
    /// Snapshots not recorded in the log, left alone.
    pub unrecorded: Vec<String>,
}

/// Keeps the `keep` newest recorded generations of target `name` by audit sequence, forgets the
/// older ones and removes their data. Snapshot times are never read.
pub fn prune(
    home: &Home,
    s: &Session,
    key: &DataKey,
    name: &str,
    keep: usize,
) -> Result<Pruned, BackupError> {
    if keep == 0 {
        return Err(BackupError::Refused(
            "at least one generation is kept".into(),
        ));
    }
    let t = target::target(home, name)?;
    let r = open(home, &t, key)?;
    r.unlock()?;
    let all = generations(&r, &recorded(home)?, name)?;
    let (mut recorded, unrecorded): (Vec<_>, Vec<_>) = all.into_iter().partition(|g| g.recorded);
    let cut = recorded.len().saturating_sub(keep);
    let kept = recorded.split_off(cut);
    let forgotten = recorded;
    let ids: Vec<String> = forgotten.iter().map(|g| g.snapshot.clone()).collect();
    r.forget(&ids)?;
    r.prune()?;
    let short = |g: &Generation| g.snapshot.get(..8).unwrap_or_default().to_string();
    audit(
        home,
        &s.user,
        s.role.code(),
        "backup.prune",
        &format!(
            "target={name} keep={keep} kept={} forgot={}",
            kept.iter().map(short).collect::<Vec<_>>().join(","),
            forgotten.iter().map(short).collect::<Vec<_>>().join(",")
        ),
        "ok",
    )?;
    Ok(Pruned {
        target: name.to_string(),
        kept,
        forgotten,
        unrecorded: unrecorded.into_iter().map(|g| g.snapshot).collect(),
    })
}
