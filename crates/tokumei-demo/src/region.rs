//! Step 1: the synthetic region (`tokumei_synth::generate`) in `DIR/region`.

use std::path::PathBuf;
use std::time::Instant;

use tokumei_synth::{Config, Summary};

use crate::{seconds, DemoError, Event, Observer, Options, Step};

/// The region written.
#[derive(Debug, Clone)]
pub struct Region {
    /// Its folder.
    pub out: PathBuf,
    /// Its counts.
    pub summary: Summary,
    /// Seconds it took.
    pub seconds: f64,
}

/// Generates the region of `options` into `DIR/region`, replacing an earlier one; reports the
/// people generated as it goes.
pub fn generate(options: &Options, on: &Observer<'_>) -> Result<Region, DemoError> {
    on(Event::Begin(Step::Region {
        people: options.people,
        seed: options.seed,
    }));
    let config = Config {
        people: options.people,
        seed: options.seed,
        out: options.dir.join("region"),
        force: true,
        ..Config::default()
    };
    let started = Instant::now();
    let summary = tokumei_synth::generate(&config, &|n| on(Event::People(n)))?;
    let region = Region {
        out: config.out,
        summary,
        seconds: seconds(started),
    };
    on(Event::Region(&region));
    Ok(region)
}
