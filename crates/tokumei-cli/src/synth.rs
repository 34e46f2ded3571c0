//! `tokumei synth`: the synthetic region, with progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokumei_synth::{Config, Summary, SynthError};

use crate::args::*;
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(clap::Args)]
pub(crate) struct SynthArgs {
    /// Number of people.
    #[arg(long)]
    people: u64,
    /// Seed of every random choice; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (must be absent or empty unless --force).
    #[arg(long, value_parser = out_dir)]
    out: PathBuf,
    /// First month of the period, YYYY-MM.
    #[arg(long, default_value = "2021-04")]
    start: String,
    /// Length of the period in months.
    #[arg(long, default_value_t = 36)]
    months: u32,
    /// Replace a non-empty output folder.
    #[arg(long)]
    force: bool,
    /// Scale of the injected data-entry noise: 0 for none, 1 for the default rates.
    #[arg(long, default_value_t = 1.0)]
    noise: f64,
    /// Most entries in one part of a ZIP archive (SS-MIX2 storage, checkup submissions); a fuller
    /// archive goes on in `<stem>-0002.zip`, `<stem>-0003.zip`, ... next to it.
    #[arg(long, default_value_t = tokumei_synth::archives::PART_ENTRIES,
          value_parser = clap::value_parser!(u64).range(1..))]
    archive_entries: u64,
    /// Print the region's counts as JSON (docs/json.md) instead of the summary.
    #[arg(long)]
    json: bool,
}

pub(crate) fn report(e: &SynthError) -> ExitCode {
    eprintln!("error: {e}");
    if e.is_usage() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// A progress bar over `total` items named `what`.
pub(crate) fn progress_bar_of(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{elapsed_precise}} [{{bar:40}}] {{human_pos}}/{{human_len}} {what} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub(crate) fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {human_pos}/{human_len} people ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub(crate) fn generate(config: &Config) -> Result<(Summary, f64), SynthError> {
    let bar = progress_bar(config.people);
    let started = Instant::now();
    let summary = tokumei_synth::generate(config, &|n| bar.set_position(n));
    bar.finish_and_clear();
    Ok((summary?, started.elapsed().as_secs_f64()))
}

pub(crate) fn print_summary(out: &std::path::Path, s: &Summary, secs: f64) {
    println!("synthetic region written to {}", out.display());
    println!(
        "  people {} in {} households; aged 65+ {:.1} %, 75+ {:.1} %",
        s.people,
        s.households,
        100.0 * s.share_65_plus(),
        100.0 * s.aged_75_plus as f64 / s.people.max(1) as f64
    );
    println!(
        "  deaths {}, movers {}, surname changes {}",
        s.deaths, s.movers, s.name_changes
    );
    let records: Vec<String> = s.records.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("  records by source: {}", records.join(", "));
    let rows: Vec<String> = s
        .rows
        .iter()
        .filter(|(k, _)| !k.starts_with("truth."))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("  event rows: {}", rows.join(", "));
    println!("  providers {}", s.providers);
    println!(
        "  {:.1} s, {:.0} people/s",
        secs,
        s.people as f64 / secs.max(1e-9)
    );
}

pub(crate) fn run_synth(a: SynthArgs) -> ExitCode {
    let config = Config {
        people: a.people,
        seed: a.seed,
        start: a.start,
        months: a.months,
        out: a.out,
        force: a.force,
        noise: a.noise,
        archives: tokumei_synth::archives::ArchiveLimits {
            part_entries: a.archive_entries,
            ..Default::default()
        },
        open_table_rows: tokumei_synth::writer::OPEN_ROWS,
    };
    match generate(&config) {
        Ok((s, secs)) => {
            crate::operator::render(a.json, &s, |s| print_summary(&config.out, s, secs));
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}
