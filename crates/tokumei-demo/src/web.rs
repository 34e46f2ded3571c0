//! Part of step 5: web sign-in for the demo's users, so that `tokumei serve` can be tried on the
//! demo's home. A second technician and an auditor are registered beside the committee and the
//! researcher; each user is invited by one technician and approved by the other (never by the
//! person invited), then enrolled with a random password. The passwords and TOTP secrets go to
//! `DIR/web-users.txt` (owner-only): synthetic users of a synthetic home.

use std::path::{Path, PathBuf};

use tokumei_vault::access::{Role, Session};
use tokumei_vault::webauth::WebAuth;

use crate::committee::demo_user;
use crate::site::Site;
use crate::DemoError;

/// What was enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUsers {
    /// The file with each user's password and TOTP secret.
    pub file: PathBuf,
    /// Users enrolled.
    pub users: usize,
}

/// The users the demo enrols besides the first technician (already registered ones first).
const USERS: [(&str, Role, bool); 7] = [
    ("chair", Role::Committee, false),
    ("external", Role::Committee, false),
    ("member", Role::Committee, false),
    ("researcher", Role::Researcher, false),
    ("tech2", Role::Technician, true),
    ("auditor", Role::Auditor, true),
    ("h01-staff", Role::ProviderAdmin, true),
];

/// The provider the demo's provider user belongs to.
const PROVIDER: &str = "H01";

/// 12 random bytes, hex.
fn random_password() -> Result<String, DemoError> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| tokumei_vault::VaultError::Key(e.to_string()))?;
    Ok(hex::encode(b))
}

/// Registers the second technician, the auditor and a user of the provider H01, and enrols every
/// demo user.
pub fn enrol_all(site: &Site, dir: &Path) -> Result<WebUsers, DemoError> {
    let web = WebAuth::open(&site.home)?;
    let mut tech2: Option<Session> = None;
    for (name, role, new) in USERS {
        if new {
            let provider = (role == Role::ProviderAdmin).then_some(PROVIDER);
            let s = demo_user(&site.home, (name, role, provider), &site.passphrase)?;
            if role == Role::Technician {
                tech2 = Some(s);
            }
        }
    }
    let tech2 = tech2.ok_or(DemoError::NoTechnician)?;
    let first = &site.session;
    let mut lines = vec![
        "# Web sign-in of the demo's synthetic users (tokumei serve --home home --passphrase-file \
         passphrase.txt)."
            .to_string(),
        "# Sign in at https://localhost:8443/signin with the user, the password and the 6-digit \
         code an authenticator app shows for the TOTP secret (or: oathtool --totp -b SECRET)."
            .to_string(),
        "user\trole\tpassword\ttotp_secret".to_string(),
    ];
    let everyone = std::iter::once((first.user.as_str(), first.role))
        .chain(USERS.iter().map(|&(n, r, _)| (n, r)));
    for (name, role) in everyone {
        // The second technician's invitation is issued by them and approved by the first; every
        // other one the other way round.
        let (issuer, approver) = if name == tech2.user {
            (&tech2, first)
        } else {
            (first, &tech2)
        };
        let inv = web.invite(issuer, name, 24)?;
        web.approve(approver, &inv.id)?;
        let password = random_password()?;
        let e = web.enrol(&site.data_key, &inv.token, &password)?;
        lines.push(format!(
            "{name}\t{}\t{password}\t{}",
            role.code(),
            e.secret_base32
        ));
    }
    let file = dir.join("web-users.txt");
    let _ = std::fs::remove_file(&file);
    tokumei_vault::home::write_secret(&file, format!("{}\n", lines.join("\n")).as_bytes())?;
    Ok(WebUsers {
        file,
        users: lines.len() - 3,
    })
}
