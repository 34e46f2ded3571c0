//! Backup targets, named in the home's `config/backup.toml`:
//!
//! ```toml
//! [[target]]
//! name = "offline"                     # a mounted volume or write-once media
//! repo = "/mnt/tokumei-offline"
//!
//! [[target]]
//! name = "site2"                       # the relocation site, over OpenSSH
//! repo = "sftp:tokumei@site2.example.jp:/srv/tokumei"
//! ssh_port = 22
//! ssh_identity = "/etc/tokumei/backup_ed25519"
//! known_hosts = "/etc/tokumei/site2.known_hosts"   # the site's host key, pinned
//! ```
//!
//! The repository password is derived from the home's data key ([`password`]), so a target is
//! opened by whoever holds the data key: the home with its passphrase, or the relocation site with
//! the escrow shares.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::restic::Restic;
use crate::{io, BackupError};

/// Where the targets are listed, in the home.
pub const CONFIG: &str = "config/backup.toml";

/// One backup target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name (the one grammar of identifiers).
    pub name: String,
    /// A folder (absolute) or `sftp:user@host:/path`.
    pub repo: String,
    /// SSH port of an SFTP target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_port: Option<u16>,
    /// Private key that signs in to the SFTP target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_identity: Option<PathBuf>,
    /// The target's host key, pinned (no other host key is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    target: Vec<Target>,
}

impl Target {
    /// Checks the name and the repository's form: an absolute folder, or SFTP with a pinned host
    /// key and an identity.
    pub fn check(&self) -> Result<(), BackupError> {
        let bad = |why: &str| Err(BackupError::Config(format!("target {}: {why}", self.name)));
        if !tokumei_model::ids::is_valid(&self.name) {
            return Err(BackupError::Config(
                "a target's name is 1–64 letters, digits, '-' or '_'".into(),
            ));
        }
        if self.repo.chars().any(|c| c.is_control()) {
            return bad("control characters in the repository");
        }
        match self.repo.strip_prefix("sftp:") {
            Some(rest) => {
                let Some((login, path)) = rest.split_once(':') else {
                    return bad("an SFTP repository is sftp:user@host:/path");
                };
                let safe = |s: &str| {
                    !s.is_empty()
                        && !s.starts_with('-')
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c))
                };
                if !safe(login) || !login.contains('@') || !path.starts_with('/') {
                    return bad("an SFTP repository is sftp:user@host:/path");
                }
                if self.known_hosts.is_none() || self.ssh_identity.is_none() {
                    return bad("an SFTP target needs --known-hosts (the site's host key) and --ssh-identity");
                }
            }
            None if !Path::new(&self.repo).is_absolute() => {
                return bad("a folder target is an absolute path")
            }
            None => {}
        }
        Ok(())
    }

    /// The restic command for SFTP: the pinned host key, the identity, no prompt.
    fn sftp_command(&self) -> Option<String> {
        let rest = self.repo.strip_prefix("sftp:")?;
        let (login, _) = rest.split_once(':')?;
        let mut c = String::from("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes");
        c.push_str(" -o IdentitiesOnly=yes -o PasswordAuthentication=no");
        if let Some(port) = self.ssh_port {
            c.push_str(&format!(" -p {port}"));
        }
        if let Some(id) = &self.ssh_identity {
            c.push_str(&format!(" -i {}", quote(id)));
        }
        if let Some(k) = &self.known_hosts {
            c.push_str(&format!(" -o UserKnownHostsFile={}", quote(k)));
        }
        c.push_str(&format!(" {login} -s sftp"));
        Some(c)
    }

    /// The repository, opened with `password`; `cache` keeps its (encrypted) metadata.
    pub fn open(&self, password: String, cache: Option<PathBuf>) -> Result<Restic, BackupError> {
        self.check()?;
        let mut r = Restic::new(&self.repo, password);
        r.sftp_command = self.sftp_command();
        r.cache = cache;
        Ok(r)
    }
}

/// restic splits its SFTP command on spaces: a path with a space or a quote is refused.
fn quote(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The repository password of the home whose data key is `key`: an HMAC of the data key, hex. The
/// same on every target; never stored.
pub fn password(key: &DataKey) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.bytes()) else {
        return String::new();
    };
    mac.update(b"tokumei backup repository password v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Every target of the home.
pub fn targets(home: &Home) -> Result<Vec<Target>, BackupError> {
    let path = home.root.join(CONFIG);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let config: Config = toml::from_str(&text).map_err(|e| BackupError::Config(e.to_string()))?;
    Ok(config.target)
}

/// The target named `name`.
pub fn target(home: &Home, name: &str) -> Result<Target, BackupError> {
    targets(home)?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| BackupError::Config(format!("no target named {name}")))
}

/// Adds `t` to the home's targets (a name already used is refused).
pub fn add(home: &Home, t: &Target) -> Result<(), BackupError> {
    t.check()?;
    for p in [&t.ssh_identity, &t.known_hosts].into_iter().flatten() {
        let s = p.to_string_lossy();
        if s.contains(' ') || s.contains('"') || s.contains('\'') || !p.is_absolute() {
            return Err(BackupError::Config(format!(
                "target {}: key files are absolute paths without spaces or quotes",
                t.name
            )));
        }
    }
    let mut all = targets(home)?;
    if all.iter().any(|x| x.name == t.name) {
        return Err(BackupError::Config(format!(
            "a target named {} exists",
            t.name
        )));
    }
    all.push(t.clone());
    let text =
        toml::to_string(&Config { target: all }).map_err(|e| BackupError::Config(e.to_string()))?;
    tokumei_fs::write_atomic(&home.root.join(CONFIG), text.as_bytes())?;
    Ok(())
}
