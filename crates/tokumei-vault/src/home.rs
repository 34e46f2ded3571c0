//! The operator home: the folder that holds an operator's keys, configuration, catalog, vault, received
//! packages, quarantine and audit log.
//!
//! ```text
//! H/config.toml                 version, notice wait (days), creation time
//! H/operator.recipient          age X25519 recipient providers encrypt packages to (public)
//! H/audit.pub                   Ed25519 public key of the audit log (public, hex)
//! H/keys/operator.identity.enc  age X25519 identity, sealed under the data key (owner-only)
//! H/keys/audit.key.enc          Ed25519 signing key of the audit log (and of users, providers and
//!                               release manifests), sealed under the data key (owner-only)
//! H/keys/data.key.age           the data-encryption key, age-encrypted with the operator's passphrase
//!                               (scrypt) (owner-only)
//! H/keys/users/<name>.key       the first technician's key, wrapped by the passphrase (owner-only)
//! H/catalog/catalog.sqlite      providers, receipts, users, opt-out registry, export requests
//! H/vault/identity/             identifying fields, encrypted at rest under the data key
//! H/vault/clinical/             clinical events (Parquet, keyed by opaque record ids), the images' index
//! H/vault/images/               DICOM files as received, each sealed under the data key
//! H/packages/                   original packages as received (immutable)
//! H/quarantine/                 records that could not be read, with file, line and reason
//! H/audit/entries.jsonl         the audit log (see tokumei-audit)
//! ```
//!
//! `init` builds the home in a staging folder and renames it into place, so a failed `init` leaves
//! nothing behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokumei_audit::{AuditError, AuditLog, Entry};

/// Shortest passphrase accepted (a random passphrase of 13 or more characters needs no periodic
/// change under the MHLW guideline).
pub const MIN_PASSPHRASE: usize = 13;
/// Version of the home layout: 1, the first; 2, the receiving identity wrapped under the data key
/// (`keys/operator.identity.enc` instead of the plain `keys/operator.identity`); 3, users and
/// providers signed by the operator under a signed head bound to the audit log ([`crate::authz`]);
/// 4, the operator's signing key sealed under the data key (`keys/audit.key.enc`). [`migrate`]
/// upgrades an older home in place; a newer one is refused.
pub const LAYOUT_VERSION: u32 = 4;
/// The receiving identity, sealed under the data key (layout 2).
const IDENTITY: &str = "keys/operator.identity.enc";
/// The receiving identity in plain text (layout 1 only).
const PLAIN_IDENTITY_V1: &str = "keys/operator.identity";

/// Errors of the operator home.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `init` on a folder that is not empty.
    #[error("{0} exists and is not empty; an operator home is created in a new folder")]
    Exists(PathBuf),
    /// Not an operator home.
    #[error("{0} is not an operator home (no config.toml); create one with `tokumei init --home`")]
    NotAHome(PathBuf),
    /// The passphrase is missing or too short.
    #[error("passphrase: {0}")]
    Passphrase(String),
    /// A key could not be made or used (wrong passphrase, damaged key file).
    #[error("key: {0}")]
    Key(String),
    /// The configuration is malformed.
    #[error("config.toml: {0}")]
    Config(String),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The catalog database failed.
    #[error("catalog: {0}")]
    Catalog(String),
    /// Writing or reading the vault's tables failed.
    #[error("store: {0}")]
    Store(String),
    /// A package or request was refused (the reason names no identifying value).
    #[error("refused: {0}")]
    Refused(String),
    /// The user may not do this (no registered key, revoked grant, wrong role, two-person rule).
    #[error("denied: {0}")]
    Denied(String),
    /// Stored state was changed outside Tokumei (an edited catalog row, a rolled-back catalog).
    #[error("tampered: {0}")]
    Tampered(String),
    /// Another command is changing the home and did not finish in time.
    #[error("busy: {0}")]
    Busy(String),
}

/// An io error naming its file.
pub(crate) fn io(path: &Path, source: std::io::Error) -> VaultError {
    tokumei_fs::io(path)(source).into()
}

impl From<tokumei_fs::IoError> for VaultError {
    fn from(e: tokumei_fs::IoError) -> Self {
        VaultError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// The home's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Layout version.
    pub version: u32,
    /// Days after a provider's notice start (or a patient's first visit after it) before the
    /// patient's records may be received (RULES §4 item 37; 30 by default).
    pub notice_wait_days: u32,
    /// When the home was created (UTC, RFC 3339).
    pub created: String,
    /// The first technician, registered by `init`; its key file is `keys/users/<name>.key`, wrapped
    /// by the home passphrase.
    #[serde(default)]
    pub default_user: Option<String>,
    /// Largest sum of the files of one package, in bytes (8 GiB when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_package_bytes: Option<u64>,
    /// Largest file of a package, in bytes (4 GiB when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
}

/// An opened operator home.
#[derive(Debug, Clone)]
pub struct Home {
    /// Its folder.
    pub root: PathBuf,
    /// Its configuration.
    pub config: Config,
    /// The key this process signs audit entries with, once unlocked.
    signer: SignerSlot,
    /// The data key once unlocked, with a keyed digest of the passphrase that unlocked it: the
    /// passphrase's scrypt work (about a second) is done once per process.
    unlocked: UnlockedSlot,
}

/// The data key of this process, kept after the first unlock.
#[derive(Clone, Default)]
struct UnlockedSlot(std::sync::Arc<std::sync::Mutex<Option<Unlocked>>>);

struct Unlocked {
    /// SHA-256 of a salt drawn for this process and the passphrase.
    digest: [u8; 32],
    salt: [u8; 32],
    key: [u8; 32],
}

impl Drop for Unlocked {
    fn drop(&mut self) {
        self.key = [0; 32];
    }
}

fn passphrase_digest(salt: &[u8; 32], passphrase: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(salt);
    h.update(passphrase.as_bytes());
    h.finalize().into()
}

impl std::fmt::Debug for UnlockedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockedSlot(..)")
    }
}

impl UnlockedSlot {
    fn get(&self, passphrase: &str) -> Option<DataKey> {
        let slot = self.0.lock().ok()?;
        let u = slot.as_ref()?;
        let d = passphrase_digest(&u.salt, passphrase);
        (d == u.digest).then(|| DataKey(u.key))
    }

    fn set(&self, passphrase: &str, key: &DataKey) {
        let mut salt = [0u8; 32];
        if getrandom::fill(&mut salt).is_err() {
            return;
        }
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(Unlocked {
                digest: passphrase_digest(&salt, passphrase),
                salt,
                key: key.0,
            });
        }
    }
}

/// Who signs this process's audit entries: the operator's key (unlocked with the home passphrase)
/// or, without it, the session user's own key.
#[derive(Clone, Default)]
struct SignerSlot(std::sync::Arc<std::sync::Mutex<Option<Signer>>>);

#[derive(Clone)]
enum Signer {
    Operator(ed25519_dalek::SigningKey),
    User(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for SignerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignerSlot(..)")
    }
}

impl SignerSlot {
    fn get(&self) -> Option<Signer> {
        self.0.lock().ok().and_then(|s| s.clone())
    }

    fn set(&self, signer: Signer, replace: bool) {
        if let Ok(mut s) = self.0.lock() {
            if replace || s.is_none() {
                *s = Some(signer);
            }
        }
    }
}

/// The operator's signing key, sealed under the data key (layout 4).
const AUDIT_KEY: &str = "keys/audit.key.enc";
/// The operator's signing key in plain text (layouts 1–3 only).
const PLAIN_AUDIT_KEY: &str = "keys/audit.key";

/// Folders of a home.
const DIRS: [&str; 8] = [
    "keys",
    "vault/identity",
    "vault/clinical",
    "vault/images",
    "packages",
    "quarantine",
    "audit",
    "catalog",
];

/// Makes a folder (and its parents) readable and writable by its owner only.
pub fn make_private_dir(path: &Path) -> Result<(), VaultError> {
    make_dir(path)
}

fn make_dir(path: &Path) -> Result<(), VaultError> {
    std::fs::create_dir_all(path).map_err(|e| io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(path, e))?;
    }
    Ok(())
}

/// Writes a new file readable and writable by its owner only.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    std::fs::write(path, bytes).map_err(|e| io(path, e))
}

/// Checks a passphrase is long enough.
pub fn check_passphrase(p: &str) -> Result<(), VaultError> {
    if p.chars().count() < MIN_PASSPHRASE {
        return Err(VaultError::Passphrase(format!(
            "at least {MIN_PASSPHRASE} characters are required"
        )));
    }
    Ok(())
}

/// Encrypts a secret to a passphrase (age scrypt; `log_n` overrides the work factor): the data key
/// and every user key are kept this way (and the key escrow's shares, under their custodians').
pub fn wrap_with_passphrase(
    secret: &[u8],
    passphrase: &str,
    log_n: Option<u8>,
) -> Result<Vec<u8>, VaultError> {
    let key = |e: &dyn std::fmt::Display| VaultError::Key(e.to_string());
    let mut scrypt = age::scrypt::Recipient::new(SecretString::from(passphrase.to_string()));
    if let Some(n) = log_n {
        scrypt.set_work_factor(n);
    }
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&scrypt as &dyn age::Recipient))
            .map_err(|e| key(&e))?;
    let mut wrapped = Vec::new();
    let mut w = encryptor.wrap_output(&mut wrapped).map_err(|e| key(&e))?;
    w.write_all(secret).map_err(|e| key(&e))?;
    w.finish().map_err(|e| key(&e))?;
    Ok(wrapped)
}

/// Why a passphrase-wrapped secret did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwrap {
    /// Not an age file.
    NotWrapped,
    /// The passphrase does not open it.
    WrongPassphrase,
    /// It opened but could not be read to the end.
    Damaged,
}

/// Decrypts what [`wrap_with_passphrase`] wrote.
pub fn unwrap_with_passphrase(wrapped: &[u8], passphrase: &str) -> Result<Vec<u8>, Unwrap> {
    let decryptor = age::Decryptor::new_buffered(wrapped).map_err(|_| Unwrap::NotWrapped)?;
    let identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_string()));
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|_| Unwrap::WrongPassphrase)?;
    let mut secret = Vec::new();
    reader
        .read_to_end(&mut secret)
        .map_err(|_| Unwrap::Damaged)?;
    Ok(secret)
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitSummary {
    /// The home.
    pub home: Home,
    /// The operator's age recipient (give it to providers).
    pub recipient: String,
    /// The audit public key, hex (publish it to providers and auditors).
    pub audit_public_key: String,
}

/// Creates an operator home at `root` (absent or empty). `scrypt_log_n` overrides the passphrase
/// work factor (tests use a low one; `None` lets age target about one second).
pub fn init(
    root: &Path,
    passphrase: &str,
    scrypt_log_n: Option<u8>,
) -> Result<InitSummary, VaultError> {
    init_with_user(root, passphrase, scrypt_log_n, "operator")
}

/// [`init`], naming the first technician `user` (registered with its key in the home).
pub fn init_with_user(
    root: &Path,
    passphrase: &str,
    scrypt_log_n: Option<u8>,
    user: &str,
) -> Result<InitSummary, VaultError> {
    check_passphrase(passphrase)?;
    if !crate::access::valid_name(user) {
        return Err(VaultError::Refused(
            "a user name is 1–64 letters, digits, '-' or '_', starting with a letter or digit"
                .into(),
        ));
    }
    if root.exists() && !root.is_dir() {
        return Err(VaultError::Exists(root.to_path_buf()));
    }
    if root.exists() {
        let empty = std::fs::read_dir(root)
            .map_err(|e| io(root, e))?
            .next()
            .is_none();
        if !empty {
            return Err(VaultError::Exists(root.to_path_buf()));
        }
    }
    let staging = tokumei_fs::StagedDir::new(root, false)?;
    let (recipient, audit_public_key) = build(staging.path(), passphrase, scrypt_log_n, user)?;
    staging.commit()?;
    let home = open(root)?;
    home.unlock_data_key(passphrase)?;
    Ok(InitSummary {
        home,
        recipient,
        audit_public_key,
    })
}

fn build(
    dir: &Path,
    passphrase: &str,
    scrypt_log_n: Option<u8>,
    user: &str,
) -> Result<(String, String), VaultError> {
    make_dir(dir)?;
    for d in DIRS {
        make_dir(&dir.join(d))?;
    }
    // Data-encryption key, wrapped by the passphrase (age scrypt recipient).
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| VaultError::Key(e.to_string()))?;
    let data_key = DataKey(bytes);
    bytes.fill(0);
    write_secret(
        &dir.join("keys/data.key.age"),
        &wrap_with_passphrase(data_key.bytes(), passphrase, scrypt_log_n)?,
    )?;
    // Operator receiving key (age / X25519), sealed under the data key: reading the home does not
    // open the packages kept in it.
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    write_secret(
        &dir.join(IDENTITY),
        &crate::store::seal(&data_key, identity.to_string().expose_secret().as_bytes())?,
    )?;
    write_public(
        &dir.join("operator.recipient"),
        format!("{recipient}\n").as_bytes(),
    )?;
    // Audit signing key (Ed25519).
    let audit_key = tokumei_audit::generate_key()?;
    let audit_public = hex::encode(audit_key.verifying_key().to_bytes());
    write_secret(
        &dir.join(AUDIT_KEY),
        &crate::store::seal(&data_key, &audit_key.to_bytes())?,
    )?;
    write_public(
        &dir.join("audit.pub"),
        format!("{audit_public}\n").as_bytes(),
    )?;
    // The first technician.
    make_dir(&dir.join("keys/users"))?;
    let (wrapped, public) = crate::access::new_user_key(passphrase, scrypt_log_n)?;
    write_secret(&dir.join(format!("keys/users/{user}.key")), &wrapped)?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut log = AuditLog::open(&dir.join("audit"), audit_key.clone())?;
    log.append(Entry::now(
        "system",
        "system",
        "home.init",
        "operator home",
        "ok",
        None,
    ))?;
    let keys = crate::authz::AuthzKeys {
        verify: audit_key.verifying_key(),
        sign: Some(audit_key),
        audit_dir: dir.join("audit"),
    };
    crate::catalog::Catalog::open_authenticated(&dir.join("catalog/catalog.sqlite"), keys)?
        .add_user(&crate::access::User {
            name: user.to_string(),
            role: crate::access::Role::Technician,
            provider_id: None,
            public_key: public,
            requested_by: "init".into(),
            approved_by: "init".into(),
            granted_at: created.clone(),
            reviewed_at: created.clone(),
            revoked_at: None,
        })?;
    let config = Config {
        version: LAYOUT_VERSION,
        notice_wait_days: 30,
        created,
        default_user: Some(user.to_string()),
        max_package_bytes: None,
        max_file_bytes: None,
    };
    let text = toml::to_string(&config).map_err(|e| VaultError::Config(e.to_string()))?;
    write_public(&dir.join("config.toml"), text.as_bytes())?;
    log.append(Entry::now(
        "system",
        "system",
        "user.add",
        &format!("user {user} (technician)"),
        "ok",
        None,
    ))?;
    Ok((recipient, audit_public))
}

/// Opens an existing operator home.
pub fn open(root: &Path) -> Result<Home, VaultError> {
    let path = root.join("config.toml");
    if !path.is_file() {
        return Err(VaultError::NotAHome(root.to_path_buf()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let config: Config = toml::from_str(&text).map_err(|e| VaultError::Config(e.to_string()))?;
    if config.version > LAYOUT_VERSION || config.version == 0 {
        return Err(VaultError::Config(format!(
            "layout version {} was made by a newer Tokumei (this one knows {LAYOUT_VERSION} and \
             older); it is not opened",
            config.version
        )));
    }
    Ok(Home {
        root: root.to_path_buf(),
        config,
        signer: SignerSlot::default(),
        unlocked: UnlockedSlot::default(),
    })
}

impl Home {
    /// The limits a received package must keep (the configuration's, or the defaults).
    pub fn limits(&self) -> crate::unpack::Limits {
        let d = crate::unpack::Limits::default();
        crate::unpack::Limits {
            package: self.config.max_package_bytes.unwrap_or(d.package),
            file: self.config.max_file_bytes.unwrap_or(d.file),
            ..d
        }
    }

    /// The audit log, opened for appending: signed with the operator's key once the passphrase
    /// unlocked it ([`Home::unlock_data_key`]), otherwise with the session user's own key
    /// ([`Home::sign_as_user`]).
    pub fn audit(&self) -> Result<AuditLog, VaultError> {
        let dir = self.root.join("audit");
        if let Ok(key) = self.audit_signing_key() {
            return Ok(AuditLog::open(&dir, key)?);
        }
        match self.signer.get() {
            Some(Signer::User(key)) => Ok(AuditLog::open_as_user(&dir, key)?),
            _ => Err(VaultError::Key(
                "no key to sign the audit log: open a session or give the home passphrase".into(),
            )),
        }
    }

    /// The operator's signing key (audit tree heads, release manifests, users and providers); its
    /// public half is `audit.pub`. Sealed under the data key: available once the passphrase has
    /// unlocked it in this process.
    pub fn audit_signing_key(&self) -> Result<ed25519_dalek::SigningKey, VaultError> {
        if let Some(Signer::Operator(key)) = self.signer.get() {
            return Ok(key);
        }
        let plain = self.root.join(PLAIN_AUDIT_KEY);
        if self.config.version < 4 && plain.exists() {
            let text = std::fs::read_to_string(&plain).map_err(|e| io(&plain, e))?;
            return Ok(tokumei_audit::key_from_hex(&text)?);
        }
        Err(VaultError::Key(
            "the operator's key is locked: this needs the home passphrase".into(),
        ))
    }

    /// Signs this process's audit entries with a session user's key, unless the operator's key is
    /// unlocked (users without the home passphrase sign their own entries).
    pub fn sign_as_user(&self, key: &ed25519_dalek::SigningKey) {
        self.signer.set(Signer::User(key.clone()), false);
    }

    /// Unseals the operator's signing key with the data key (layout 4).
    fn unlock_operator_key(&self, key: &DataKey) -> Result<(), VaultError> {
        let path = self.root.join(AUDIT_KEY);
        if !path.exists() {
            return Ok(());
        }
        let sealed = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let bytes: [u8; 32] = crate::store::open_sealed(key, &sealed)?
            .try_into()
            .map_err(|_| VaultError::Key("the operator's signing key is damaged".into()))?;
        self.signer.set(
            Signer::Operator(ed25519_dalek::SigningKey::from_bytes(&bytes)),
            true,
        );
        Ok(())
    }

    /// Every registered user's public key with the user's name (their own entries in the log are
    /// signed with it).
    fn user_keys(&self) -> Result<Vec<(ed25519_dalek::VerifyingKey, String)>, VaultError> {
        Ok(self
            .catalog()?
            .users()?
            .into_iter()
            .filter_map(|u| {
                tokumei_audit::public_key_from_hex(&u.public_key)
                    .ok()
                    .map(|k| (k, u.name))
            })
            .collect())
    }

    /// Which user-signed heads the log accepts: a user's key vouches for entries in that user's
    /// name, or the system's entries the user's command wrote (recoveries, the authorization head,
    /// a refused session) only.
    fn registered_signers(
        &self,
    ) -> Result<impl Fn(&ed25519_dalek::VerifyingKey, &Entry) -> bool, VaultError> {
        let users = self.user_keys()?;
        Ok(move |k: &ed25519_dalek::VerifyingKey, e: &Entry| {
            users.iter().any(|(key, name)| {
                key == k && (e.actor == *name || e.actor == "system" || e.actor == "unknown")
            })
        })
    }

    /// A consistency proof from the log's first `old_size` entries to the operator's last signed
    /// head, with that head (the log verified as [`Home::verify_audit`] does).
    pub fn audit_consistency(
        &self,
        old_size: u64,
    ) -> Result<(tokumei_audit::SignedHead, Vec<String>), VaultError> {
        let key = self.audit_public_key()?;
        let registered = self.registered_signers()?;
        Ok(tokumei_audit::consistency_with(
            &self.audit_dir(),
            &key,
            old_size,
            &registered,
        )?)
    }

    /// Verifies the home's audit log: intact, begun by the home's creation (an emptied or
    /// replaced log is not), and, given a checkpoint held outside the home, extending it (a log
    /// cut back or rewritten is not).
    pub fn verify_audit(
        &self,
        checkpoint: Option<&tokumei_audit::SignedHead>,
    ) -> Result<tokumei_audit::Verified, VaultError> {
        self.verify_audit_extends(checkpoint.map(std::slice::from_ref).unwrap_or_default())
    }

    /// [`Home::verify_audit`] against several checkpoints (each generation of a backup target), the
    /// log read and verified once.
    pub fn verify_audit_extends(
        &self,
        checkpoints: &[tokumei_audit::SignedHead],
    ) -> Result<tokumei_audit::Verified, VaultError> {
        let key = self.audit_public_key()?;
        let registered = self.registered_signers()?;
        let verified =
            tokumei_audit::verify_extends_all(&self.audit_dir(), &key, checkpoints, &registered)?;
        if verified.first_action.as_deref() != Some("home.init") {
            return Err(VaultError::Audit(AuditError::Tampered {
                seq: 0,
                reason: "the log does not begin with the home's creation (it was emptied, \
                         removed or replaced)"
                    .into(),
            }));
        }
        Ok(verified)
    }

    /// The catalog, its authorization state checked against the operator's key and the audit log
    /// ([`crate::authz`]).
    pub fn catalog(&self) -> Result<crate::catalog::Catalog, VaultError> {
        crate::catalog::Catalog::open_authenticated(
            &self.root.join("catalog/catalog.sqlite"),
            self.authz_keys()?,
        )
    }

    /// The keys that authenticate the catalog's users and providers.
    pub fn authz_keys(&self) -> Result<crate::authz::AuthzKeys, VaultError> {
        Ok(crate::authz::AuthzKeys {
            verify: self.audit_public_key()?,
            sign: self.audit_signing_key().ok(),
            audit_dir: self.audit_dir(),
        })
    }

    /// The key file of the home's first technician, if `init` made one.
    pub fn default_user_key(&self) -> Option<PathBuf> {
        self.config
            .default_user
            .as_ref()
            .map(|u| self.root.join(format!("keys/users/{u}.key")))
    }

    /// Folder of the audit log.
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// The audit public key.
    pub fn audit_public_key(&self) -> Result<ed25519_dalek::VerifyingKey, VaultError> {
        let path = self.root.join("audit.pub");
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        Ok(tokumei_audit::public_key_from_hex(&text)?)
    }

    /// The operator's age recipient.
    pub fn recipient(&self) -> Result<String, VaultError> {
        let path = self.root.join("operator.recipient");
        Ok(std::fs::read_to_string(&path)
            .map_err(|e| io(&path, e))?
            .trim()
            .to_string())
    }

    /// The operator's receiving identity (opens received packages), unsealed with the data key.
    pub fn operator_identity(&self, key: &DataKey) -> Result<age::x25519::Identity, VaultError> {
        if self.config.version < 2 {
            return Err(VaultError::Config(format!(
                "this home is at layout version {}: upgrade it with `tokumei home migrate` first",
                self.config.version
            )));
        }
        let path = self.root.join(IDENTITY);
        let sealed = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let plain = crate::store::open_sealed(key, &sealed)?;
        std::str::from_utf8(&plain)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| VaultError::Key("the operator identity is damaged".into()))
    }

    /// Unlocks the operator's key with a data key obtained without the passphrase (recovered from
    /// key escrow): the key must open the sealed signing key, and that key must be the one whose
    /// public half is `audit.pub`, or the key is refused.
    pub fn unlock_with_key(&self, key: &DataKey) -> Result<(), VaultError> {
        let path = self.root.join(AUDIT_KEY);
        let sealed = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let bytes: [u8; 32] = crate::store::open_sealed(key, &sealed)
            .map_err(|_| VaultError::Key("the key does not open this home".into()))?
            .try_into()
            .map_err(|_| VaultError::Key("the operator's signing key is damaged".into()))?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&bytes);
        if signing.verifying_key() != self.audit_public_key()? {
            return Err(VaultError::Key(
                "the key opens a signing key that is not this home's".into(),
            ));
        }
        self.signer.set(Signer::Operator(signing), true);
        Ok(())
    }

    /// Wraps the data key under a new passphrase (after a recovery from key escrow, or a change
    /// of officers): `keys/data.key.age` is replaced whole, owner-only; the old passphrase no
    /// longer opens it. The key is checked against the home first ([`Home::unlock_with_key`]).
    /// The first technician's key, kept in the home under the home passphrase, stays wrapped by
    /// the old one: unless the new passphrase opens it, that user stops being the default of
    /// commands (`config.toml`), and its name is returned (register a new key for that user).
    pub fn rewrap_data_key(
        &self,
        key: &DataKey,
        passphrase: &str,
        scrypt_log_n: Option<u8>,
    ) -> Result<Option<String>, VaultError> {
        check_passphrase(passphrase)?;
        self.unlock_with_key(key)?;
        let wrapped = wrap_with_passphrase(key.bytes(), passphrase, scrypt_log_n)?;
        let path = self.root.join("keys/data.key.age");
        let staged = tokumei_fs::StagedFile::new(&path)?;
        let _ = std::fs::remove_file(staged.path());
        write_secret(staged.path(), &wrapped)?;
        staged.commit()?;
        self.unlocked.set(passphrase, key);
        let Some(user) = self.config.default_user.clone() else {
            return Ok(None);
        };
        let file = self.root.join(format!("keys/users/{user}.key"));
        if crate::access::open_user_key(&file, passphrase).is_ok() {
            return Ok(None);
        }
        let config = Config {
            default_user: None,
            ..self.config.clone()
        };
        write_config(&self.root, &config)?;
        Ok(Some(user))
    }

    /// Unlocks the data-encryption key with the passphrase (scrypt: about a second at the default
    /// cost; done once per process, later calls with the same passphrase return the key kept).
    pub fn unlock_data_key(&self, passphrase: &str) -> Result<DataKey, VaultError> {
        if let Some(key) = self.unlocked.get(passphrase) {
            return Ok(key);
        }
        let path = self.root.join("keys/data.key.age");
        let wrapped = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let key = unwrap_with_passphrase(&wrapped, passphrase).map_err(|e| match e {
            Unwrap::WrongPassphrase => {
                VaultError::Key("the passphrase does not unlock the data key".into())
            }
            Unwrap::NotWrapped | Unwrap::Damaged => {
                VaultError::Key("the data key file is damaged".into())
            }
        })?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| VaultError::Key("the data key file is damaged".into()))?;
        let key = DataKey(key);
        self.unlock_operator_key(&key)?;
        self.unlocked.set(passphrase, &key);
        Ok(key)
    }
}

/// The data-encryption key (identity vault at rest). Zeroed when dropped.
pub struct DataKey([u8; 32]);

impl DataKey {
    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key recovered without the passphrase (key escrow); check it with
    /// [`Home::unlock_with_key`] before trusting it.
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(bytes)
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Upgrades an older home in place to [`LAYOUT_VERSION`], one step at a time, each audited; returns
/// the steps taken (none for a current home). The passphrase (which unlocked `key`) authorises it:
/// a session cannot be opened on a home whose users are not yet signed. Each step is safe to run
/// again after a crash: it writes the new form, syncs it, records the version, and only then
/// removes the old form.
pub fn migrate(home: &Home, key: &DataKey) -> Result<(Home, Vec<String>), VaultError> {
    let _lock = crate::lock::writer(home, "home migrate", crate::lock::wait_from_env(), &|_| {})?;
    let mut steps = Vec::new();
    let mut config = home.config.clone();
    let record = |step: &str| -> Result<(), VaultError> {
        home.audit()?.append(Entry::now(
            "operator",
            "technician",
            "home.migrate",
            step,
            "ok",
            None,
        ))?;
        Ok(())
    };
    if config.version < 2 {
        seal_plain_identity(home, key)?;
        config.version = 2;
        write_config(&home.root, &config)?;
        let plain = home.root.join(PLAIN_IDENTITY_V1);
        if plain.exists() {
            std::fs::remove_file(&plain).map_err(|e| io(&plain, e))?;
        }
        steps.push("1 → 2: the receiving identity sealed under the data key".to_string());
        record("layout 1 → 2")?;
    }
    if config.version < 3 {
        sign_authorization_rows(home)?;
        config.version = 3;
        write_config(&home.root, &config)?;
        steps.push("2 → 3: users and providers signed by the operator".to_string());
        record("layout 2 → 3")?;
    }
    if config.version < 4 {
        let plain = home.root.join(PLAIN_AUDIT_KEY);
        let sealed = home.root.join(AUDIT_KEY);
        let operator = home.audit_signing_key()?;
        if !sealed.exists() {
            write_secret(&sealed, &crate::store::seal(key, &operator.to_bytes())?)?;
        }
        home.signer.set(Signer::Operator(operator), true);
        config.version = 4;
        write_config(&home.root, &config)?;
        if plain.exists() {
            std::fs::remove_file(&plain).map_err(|e| io(&plain, e))?;
        }
        steps.push("3 → 4: the operator's signing key sealed under the data key".to_string());
        record("layout 3 → 4")?;
    }
    let new = open(&home.root)?;
    new.unlock_operator_key(key)?;
    Ok((new, steps))
}

fn seal_plain_identity(home: &Home, key: &DataKey) -> Result<(), VaultError> {
    let plain = home.root.join(PLAIN_IDENTITY_V1);
    let sealed = home.root.join(IDENTITY);
    if !plain.exists() || sealed.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&plain).map_err(|e| io(&plain, e))?;
    let identity: age::x25519::Identity = text
        .trim()
        .parse()
        .map_err(|_| VaultError::Key("the operator identity is damaged".into()))?;
    write_secret(
        &sealed,
        &crate::store::seal(key, identity.to_string().expose_secret().as_bytes())?,
    )
}

/// Layout 3: a `sig` column on users and providers, every row signed, a signed head.
fn sign_authorization_rows(home: &Home) -> Result<(), VaultError> {
    let db = |e: rusqlite::Error| VaultError::Catalog(e.to_string());
    let path = home.root.join("catalog/catalog.sqlite");
    let raw = rusqlite::Connection::open(&path).map_err(db)?;
    for table in ["users", "providers"] {
        let has_sig: bool = raw
            .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
            .map_err(db)?
            .column_names()
            .contains(&"sig");
        if !has_sig {
            raw.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN sig TEXT"))
                .map_err(db)?;
        }
    }
    drop(raw);
    let catalog = crate::catalog::Catalog::open(&path)?;
    catalog.sign_all_rows(&home.authz_keys()?)
}

fn write_config(root: &Path, config: &Config) -> Result<(), VaultError> {
    let text = toml::to_string(config).map_err(|e| VaultError::Config(e.to_string()))?;
    Ok(tokumei_fs::write_atomic(
        &root.join("config.toml"),
        text.as_bytes(),
    )?)
}
