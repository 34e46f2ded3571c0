//! Step 4: record linkage (名寄せ) of everything received into the master person index
//! (`tokumei_link::run` with the shipped Japanese settings), under the home's writer lock.

use std::time::Instant;

use tokumei_link::RunSummary;

use crate::site::Site;
use crate::{seconds, DemoError, Event, Observer, Step};

/// What step 4 did.
#[derive(Debug, Clone)]
pub struct Linked {
    /// The run's summary.
    pub summary: RunSummary,
    /// Seconds it took.
    pub seconds: f64,
}

/// Links the vault (the candidate pairs on `engine`, in this process when none), waiting for the
/// writer lock if another command holds it.
pub fn link(
    site: &Site,
    engine: Option<&dyn tokumei_linkage::PairEngine>,
    on: &Observer<'_>,
) -> Result<Linked, DemoError> {
    on(Event::Begin(Step::Linkage));
    let started = Instant::now();
    let settings = tokumei_link::default_settings()?;
    let lock = tokumei_vault::lock::writer(
        &site.home,
        "demo",
        tokumei_vault::lock::wait_from_env(),
        &|holder| on(Event::Waiting(holder)),
    )?;
    let summary = tokumei_link::run_on(
        engine,
        &site.home,
        &site.session,
        &site.data_key,
        &settings,
        &lock,
    )?;
    drop(lock);
    let linked = Linked {
        summary,
        seconds: seconds(started),
    };
    on(Event::Linked(&linked));
    Ok(linked)
}
