//! Step 2: the operator home of the demo, under a random passphrase kept beside it (a demo of
//! synthetic people only; a real home takes the passphrase from its custodian), with the session of
//! its first technician and the data key unlocked for the later steps.

use std::path::{Path, PathBuf};

use tokumei_fs::io;
use tokumei_vault::access::{authenticate, open_user_key, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::{DemoError, Event, Observer, Step};

/// What step 2 made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// The operator home.
    pub home: PathBuf,
    /// The file holding its passphrase (owner-only).
    pub passphrase_file: PathBuf,
}

/// The operator home and what the later steps act with.
pub struct Site {
    /// The home.
    pub home: Home,
    /// Its folder.
    pub home_dir: PathBuf,
    /// Its passphrase (the demo's users' keys are wrapped by it too).
    pub passphrase: String,
    /// The operator's age recipient (providers seal their packages to it).
    pub recipient: String,
    /// The first technician's session.
    pub session: Session,
    /// The data key.
    pub data_key: DataKey,
}

/// Removes what an earlier demo left of the home, the providers' keys and the packages, then makes
/// the home in `DIR/home` with its passphrase in `DIR/passphrase.txt`.
pub fn make(dir: &Path, on: &Observer<'_>) -> Result<Site, DemoError> {
    for sub in ["home", "providers", "packages"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(io(&p))?;
        }
    }
    on(Event::Begin(Step::Home));
    let passphrase = tokumei_audit::key_to_hex(&tokumei_audit::generate_key()?);
    let passphrase_file = dir.join("passphrase.txt");
    let _ = std::fs::remove_file(&passphrase_file);
    tokumei_vault::home::write_secret(&passphrase_file, format!("{passphrase}\n").as_bytes())?;
    let home_dir = dir.join("home");
    let summary = tokumei_vault::home::init(&home_dir, &passphrase, None)?;
    let home = summary.home;
    on(Event::Home(&Made {
        home: home_dir.clone(),
        passphrase_file,
    }));
    let user_key = home.default_user_key().ok_or(DemoError::NoTechnician)?;
    let session = authenticate(&home, &open_user_key(&user_key, &passphrase)?)?;
    let data_key = home.unlock_data_key(&passphrase)?;
    Ok(Site {
        home,
        home_dir,
        passphrase,
        recipient: summary.recipient,
        session,
        data_key,
    })
}
