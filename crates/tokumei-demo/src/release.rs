//! Steps 6 and 7: the release of the approved application (`tokumei_release::build` under the
//! kind's preset, into `DIR/release`), and the audit log verified.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokumei_fs::io;
use tokumei_release::{BuildOptions, Release, ReleaseError};
use tokumei_review::Review;

use crate::committee::Decided;
use crate::site::Site;
use crate::{seconds, DemoError, Event, Observer, Step};

/// What step 6 built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The release.
    pub release: Release,
    /// Its report (HTML).
    pub report: PathBuf,
    /// Seconds it took.
    pub seconds: f64,
}

/// What step 7 found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    /// Entries of the log, intact.
    pub entries: u64,
    /// The home whose log it is.
    pub home: PathBuf,
}

/// Builds the release of `decided`'s application into `DIR/release` (an earlier one is removed).
/// A cohort too small for the preset's rules is refused and nothing is written: that is the rule
/// working (small demo regions meet it), reported as [`Event::Refused`] and `None`.
pub fn build(
    site: &Site,
    dir: &Path,
    decided: &Decided,
    register_engine: Option<tokumei_model::register::SharedEngine>,
    on: &Observer<'_>,
) -> Result<Option<Built>, DemoError> {
    on(Event::Begin(Step::Release));
    let started = Instant::now();
    let opts = BuildOptions {
        register_engine,
        ..Default::default()
    };
    let scope = Review::open(&site.home)?.approved_scope(
        &site.session,
        &decided.application_id,
        opts.today,
    )?;
    let release_dir = dir.join("release");
    if release_dir.exists() {
        std::fs::remove_dir_all(&release_dir).map_err(io(&release_dir))?;
    }
    let built = tokumei_release::build(
        &site.home,
        &site.session,
        &site.data_key,
        &scope,
        &release_dir,
        &opts,
    );
    match built {
        Ok(release) => {
            let built = Built {
                release,
                report: release_dir.join("report.html"),
                seconds: seconds(started),
            };
            on(Event::Released(&built));
            Ok(Some(built))
        }
        Err(ReleaseError::Check(why)) => {
            on(Event::Refused(&why));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Verifies the home's audit log against the operator's key.
pub fn verify_log(site: &Site, on: &Observer<'_>) -> Result<Audited, DemoError> {
    on(Event::Begin(Step::Audit));
    let key = site.home.audit_public_key()?;
    let verified = tokumei_audit::verify(&site.home.audit_dir(), &key)?;
    let audited = Audited {
        entries: verified.entries,
        home: site.home_dir.clone(),
    };
    on(Event::Audited(&audited));
    Ok(audited)
}
