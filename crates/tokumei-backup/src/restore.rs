//! `restore --site`: the home re-installed at another site from a target, with the keys recovered
//! from escrow (no operator passphrase), under the two-person rule.
//!
//! In order, nothing switched before the last step:
//! 1. the escrow shares give the data key, which derives the repository's password;
//! 2. every chunk of the repository is read and authenticated (`restic check --read-data`): a
//!    missing or damaged one is named and the restore refused before anything is written;
//! 3. the generation is chosen: the newest recorded by audit sequence, or the one asked for, which
//!    if older than the newest needs `allow_older` (both technicians' approval, recorded);
//! 4. it is restored into a staging folder beside the destination (`.NAME.restoring`, emptied by a
//!    rerun), its manifest checked against the recovered keys;
//! 5. the staged home's audit log is verified whole and must extend the head the generation
//!    recorded (the first `head.size` entries hash to its root, a consistency check of the two
//!    trees); a checkpoint held elsewhere is checked too, or its later entries are reported lost;
//! 6. two distinct technicians registered in the staged home open their sessions with their own
//!    keys and passphrases;
//! 7. the data key is wrapped under the new site's passphrase, a `backup.restore` entry continues
//!    the log, and only then is the staging folder renamed into place.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokumei_audit::SignedHead;
use tokumei_vault::access::{open_session, Role};

use crate::escrow::Recovered;
use crate::generation::{self, Generation};
use crate::stage::MANIFEST;
use crate::target::{self, Target};
use crate::{audit, io, BackupError};

/// A technician at the new site: the user's key file and its passphrase.
pub struct Technician {
    /// Key file.
    pub key_file: PathBuf,
    /// Its passphrase.
    pub passphrase: String,
}

/// What to restore, where, and on whose word.
pub struct Request<'a> {
    /// Where the generations are (described at the site: it has no home yet).
    pub target: Target,
    /// A snapshot id (or its first 8 hex digits); the newest generation when absent.
    pub snapshot: Option<String>,
    /// The new home's folder (absent or empty).
    pub into: PathBuf,
    /// The keys, recovered from escrow.
    pub keys: &'a Recovered,
    /// Two technicians.
    pub technicians: [Technician; 2],
    /// Both technicians approve restoring a generation older than the newest.
    pub allow_older: bool,
    /// The passphrase the data key is wrapped under at the new site.
    pub new_passphrase: String,
    /// scrypt work factor of that wrapping (log2 N).
    pub scrypt_log_n: Option<u8>,
    /// A signed tree head held outside the home (an auditor's or a provider's checkpoint).
    pub checkpoint: Option<SignedHead>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The new home.
    pub home: PathBuf,
    /// The generation restored.
    pub generation: Generation,
    /// Generations on the target (recorded or not: the site has no log to say).
    pub available: usize,
    /// Entries of the restored log (before the restore's own).
    pub entries: u64,
    /// Entries a checkpoint held elsewhere has beyond the generation (lost with the first site).
    pub lost_entries: u64,
    /// The technicians.
    pub approved_by: [String; 2],
    /// The first technician whose key, wrapped by the first site's passphrase, is no longer the
    /// default of commands (register a new key for that user).
    pub default_user_dropped: Option<String>,
}

fn staging(into: &Path) -> Result<PathBuf, BackupError> {
    let name = into
        .file_name()
        .ok_or_else(|| BackupError::Refused("the destination has no folder name".into()))?;
    Ok(into.with_file_name(format!(".{}.restoring", name.to_string_lossy())))
}

/// Restores a home at another site ([module docs](self)).
pub fn site(req: &Request<'_>) -> Result<Restored, BackupError> {
    if req.into.exists()
        && std::fs::read_dir(&req.into)
            .map_err(io(&req.into))?
            .next()
            .is_some()
    {
        return Err(BackupError::Refused(format!(
            "{} exists and is not empty",
            req.into.display()
        )));
    }
    tokumei_vault::home::check_passphrase(&req.new_passphrase)?;
    let key = req.keys.bundle.data_key()?;
    let r = req.target.open(target::password(&key), None)?;
    r.unlock()?;
    r.check(true)?;
    let (g, available) = choose(&r, req)?;
    let m = generation::manifest(&r, &g.snapshot)?;
    if m.audit_public_key != req.keys.bundle.audit_public_key || m.head.size != g.seq {
        return Err(BackupError::Refused(format!(
            "snapshot {} is not a generation of the home whose keys were recovered",
            g.snapshot
        )));
    }
    let stage = staging(&req.into)?;
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(io(&stage))?;
    }
    r.restore(&g.snapshot, &stage)?;
    std::fs::remove_file(stage.join(MANIFEST)).map_err(io(&stage))?;
    let home = tokumei_vault::open(&stage)?;
    home.unlock_with_key(&key)?;
    let verified = home.verify_audit(Some(&m.head))?;
    let lost_entries = against_checkpoint(&home, req.checkpoint.as_ref(), verified.entries)?;
    let approved_by = two_technicians(&home, req)?;
    let dropped = home.rewrap_data_key(&key, &req.new_passphrase, req.scrypt_log_n)?;
    audit(
        &home,
        &approved_by[0],
        Role::Technician.code(),
        "backup.restore",
        &format!(
            "target={} snapshot={} seq={} escrow={} custodians={} approved_by={} older={}",
            req.target.name,
            g.snapshot,
            g.seq,
            req.keys.escrow,
            req.keys.custodians.join(","),
            approved_by.join(","),
            req.allow_older
        ),
        &format!(
            "ok: restored at a new site; {lost_entries} later entries lost{}",
            crate::escrow::dropped_note(dropped.as_deref())
        ),
    )?;
    tokumei_vault::fault::point("restore.before-switch");
    tokumei_fs::publish_dir(&stage, &req.into)?;
    Ok(Restored {
        home: req.into.clone(),
        generation: g,
        available,
        entries: verified.entries,
        lost_entries,
        approved_by,
        default_user_dropped: dropped,
    })
}

/// The generation to restore, and how many the target holds.
fn choose(
    r: &crate::restic::Restic,
    req: &Request<'_>,
) -> Result<(Generation, usize), BackupError> {
    let all = generation::generations(r, &Default::default(), &req.target.name)?;
    let newest = all
        .last()
        .cloned()
        .ok_or_else(|| BackupError::Refused("the target holds no generation".into()))?;
    let Some(wanted) = &req.snapshot else {
        return Ok((newest, all.len()));
    };
    let g = all
        .iter()
        .find(|g| wanted.len() >= 8 && g.snapshot.starts_with(wanted.as_str()))
        .cloned()
        .ok_or_else(|| BackupError::Refused(format!("no generation {wanted} on the target")))?;
    if g.seq < newest.seq && !req.allow_older {
        return Err(BackupError::Refused(format!(
            "generation {} covers {} audit entries; a newer one covers {}: restoring the older \
             needs both technicians' approval (--allow-older)",
            &g.snapshot[..8],
            g.seq,
            newest.seq
        )));
    }
    Ok((g, all.len()))
}

/// Checks the restored log against a checkpoint held elsewhere; the entries it has beyond the
/// generation are lost (returned), a checkpoint the log contradicts is refused.
fn against_checkpoint(
    home: &tokumei_vault::Home,
    checkpoint: Option<&SignedHead>,
    entries: u64,
) -> Result<u64, BackupError> {
    let Some(c) = checkpoint else {
        return Ok(0);
    };
    if !c.verify(&home.audit_public_key()?) {
        return Err(BackupError::Refused(
            "the checkpoint is not signed by this home's audit key".into(),
        ));
    }
    if c.size <= entries {
        home.verify_audit(Some(c))?;
        return Ok(0);
    }
    Ok(c.size - entries)
}

/// Opens both technicians' sessions on the staged home: distinct, registered, technicians.
fn two_technicians(
    home: &tokumei_vault::Home,
    req: &Request<'_>,
) -> Result<[String; 2], BackupError> {
    let mut names = Vec::new();
    for t in &req.technicians {
        let s = open_session(
            home,
            &t.key_file,
            &t.passphrase,
            "backup.restore",
            &[Role::Technician],
        )?;
        names.push(s.user);
    }
    if names[0] == names[1] {
        return Err(BackupError::Refused(
            "a restore needs two different technicians".into(),
        ));
    }
    Ok([names[0].clone(), names[1].clone()])
}
