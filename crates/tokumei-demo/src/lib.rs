//! The demo on the embedded default, as a library: a synthetic region (`tokumei-synth`), an operator
//! home, every provider's native extract sealed into a package and received (with a few requests to
//! stop recorded first), the records linked into the master person index (`tokumei-link`), a
//! research application approved by the committee (`tokumei-review`), its release built and
//! encrypted to the recipient (`tokumei-release`), and the audit log verified.
//!
//! [`run`] runs the seven [`Step`]s in order and prints nothing: it tells its caller what happens
//! through [`Event`]s (a step begins, progress, each step's result), and the caller renders them.
//! The steps are named functions of their modules: [`region`] (step 1), [`site`] (the operator home,
//! step 2), [`receipts`] (step 3), [`linkage`] (step 4), [`committee`] (step 5), [`release`] (steps 6
//! and 7). Only the `tokumei` command line imports this crate.

use std::path::{Path, PathBuf};

pub mod committee;
pub mod linkage;
pub mod receipts;
pub mod region;
pub mod release;
pub mod site;
pub mod web;

pub use receipts::Totals;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Working folder (replaced only if it is empty or holds an earlier demo).
    pub dir: PathBuf,
    /// Synthetic people.
    pub people: u64,
    /// Seed of the region.
    pub seed: u64,
}

/// The demo's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// 1: the synthetic region.
    Region {
        /// People generated.
        people: u64,
        /// Seed.
        seed: u64,
    },
    /// 2: the operator home.
    Home,
    /// 3: the providers seal their extracts and the operator receives them.
    Receipts {
        /// Providers of the region.
        providers: usize,
    },
    /// 4: record linkage into the master person index.
    Linkage,
    /// 5: a research application and the review committee.
    Review,
    /// 6: the release build.
    Release,
    /// 7: the audit log.
    Audit,
}

impl Step {
    /// Steps of the demo.
    pub const COUNT: usize = 7;

    /// The step's number, from 1.
    pub fn number(&self) -> usize {
        match self {
            Step::Region { .. } => 1,
            Step::Home => 2,
            Step::Receipts { .. } => 3,
            Step::Linkage => 4,
            Step::Review => 5,
            Step::Release => 6,
            Step::Audit => 7,
        }
    }
}

/// What the demo tells its caller as it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step begins.
    Begin(Step),
    /// People generated so far (step 1).
    People(u64),
    /// The region is written (step 1).
    Region(&'a region::Region),
    /// The operator home is made (step 2).
    Home(&'a site::Made),
    /// Requests to stop recorded before any receipt, for patients of the first hospital (step 3).
    OptOuts(usize),
    /// Providers whose package was sealed and received so far, of `total` (step 3).
    Provider {
        /// Done.
        done: usize,
        /// Of.
        total: usize,
    },
    /// Every package is received (step 3).
    Received(&'a receipts::Received),
    /// Another command holds the home's writer lock (who, as the lock names it): the demo waits.
    Waiting(&'a str),
    /// The vault is linked (step 4).
    Linked(&'a linkage::Linked),
    /// The committee decided on the application (step 5).
    Decided(&'a committee::Decided),
    /// The demo's users can sign in on the web; their credentials are in a file (step 5).
    WebUsers(&'a web::WebUsers),
    /// The release is built (step 6).
    Released(&'a release::Built),
    /// The release failed its checks and nothing was written: the rule working (step 6).
    Refused(&'a str),
    /// The audit log verifies (step 7).
    Audited(&'a release::Audited),
}

/// Where the demo left its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The synthetic region.
    pub region: PathBuf,
    /// The operator home.
    pub home: PathBuf,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The folder holds something other than an earlier demo: it is not replaced.
    #[error("{} exists and does not hold an earlier demo", .0.display())]
    NotADemo(PathBuf),
    /// The synthetic region could not be generated.
    #[error(transparent)]
    Synth(#[from] tokumei_synth::SynthError),
    /// The operator home refused or failed.
    #[error(transparent)]
    Vault(#[from] tokumei_vault::VaultError),
    /// Linking failed.
    #[error(transparent)]
    Link(#[from] tokumei_link::LinkError),
    /// The review refused or failed.
    #[error(transparent)]
    Review(#[from] tokumei_review::ReviewError),
    /// The release build failed (other than by its checks, which the demo reports).
    #[error(transparent)]
    Release(#[from] tokumei_release::ReleaseError),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] tokumei_audit::AuditError),
    /// A file or folder could not be read or written.
    #[error(transparent)]
    Io(#[from] tokumei_fs::IoError),
    /// The new home has no first technician (it always has one).
    #[error("the home has no first technician")]
    NoTechnician,
}

impl DemoError {
    /// Whether the error is the caller's (the folder, the region's arguments): exit code 2.
    pub fn is_usage(&self) -> bool {
        match self {
            DemoError::NotADemo(_) => true,
            DemoError::Synth(e) => e.is_usage(),
            _ => false,
        }
    }
}

/// Tells the caller what happens; called from the region's worker threads too.
pub type Observer<'o> = dyn Fn(Event<'_>) + Sync + 'o;

/// Where the demo's batch work runs: the linkage's candidate pairs and the re-identification
/// battery's register counts (in this process when none). The results are the same.
#[derive(Default)]
pub struct Engines {
    /// The linkage's pair engine.
    pub pairs: Option<Box<dyn tokumei_linkage::PairEngine>>,
    /// The battery's register engine.
    pub register: Option<tokumei_model::register::SharedEngine>,
}

/// Runs the demo in `options.dir`: the seven steps, each reported to `on`.
pub fn run(options: &Options, on: &Observer<'_>) -> Result<Finished, DemoError> {
    run_on(options, &Engines::default(), on)
}

/// [`run`] with the batch work on `engines`.
pub fn run_on(
    options: &Options,
    engines: &Engines,
    on: &Observer<'_>,
) -> Result<Finished, DemoError> {
    check_folder(&options.dir)?;
    let region = region::generate(options, on)?;
    let site = site::make(&options.dir, on)?;
    receipts::receive_all(&site, &options.dir, &region.out, on)?;
    linkage::link(&site, engines.pairs.as_deref(), on)?;
    let decided = committee::approve(&site, &options.dir, on)?;
    on(Event::WebUsers(&web::enrol_all(&site, &options.dir)?));
    release::build(&site, &options.dir, &decided, engines.register.clone(), on)?;
    release::verify_log(&site, on)?;
    Ok(Finished {
        region: region.out.clone(),
        home: site.home_dir.clone(),
    })
}

/// The folder is replaced only if it is absent, empty or holds an earlier demo.
fn check_folder(dir: &Path) -> Result<(), DemoError> {
    let earlier_demo = dir.join("region").join("summary.json").exists();
    let empty = std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true);
    if earlier_demo || empty {
        Ok(())
    } else {
        Err(DemoError::NotADemo(dir.to_path_buf()))
    }
}

/// Seconds since `started`.
fn seconds(started: std::time::Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_one_to_seven() {
        let steps = [
            Step::Region { people: 1, seed: 1 },
            Step::Home,
            Step::Receipts { providers: 1 },
            Step::Linkage,
            Step::Review,
            Step::Release,
            Step::Audit,
        ];
        let numbers: Vec<usize> = steps.iter().map(Step::number).collect();
        assert_eq!(numbers, (1..=Step::COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn a_folder_holding_something_else_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(check_folder(&dir.path().join("absent")).is_ok());
        assert!(check_folder(dir.path()).is_ok(), "empty");
        std::fs::write(dir.path().join("notes.txt"), "keep").expect("write");
        let e = check_folder(dir.path()).expect_err("refused");
        assert!(e.is_usage(), "{e}");
        std::fs::create_dir_all(dir.path().join("region")).expect("mkdir");
        std::fs::write(dir.path().join("region/summary.json"), "{}").expect("write");
        assert!(check_folder(dir.path()).is_ok(), "an earlier demo");
    }
}
