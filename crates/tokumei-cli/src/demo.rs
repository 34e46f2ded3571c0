//! `tokumei demo`: the pipeline on the embedded default (`tokumei_demo::run`), rendered as it runs:
//! a header per step, progress bars on standard error, and each step's summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use indicatif::ProgressBar;
use tokumei_demo::{DemoError, Engines, Event, Options, Step};

use crate::synth::{print_summary, progress_bar, progress_bar_of};
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Working folder of the demo (replaced if it holds an earlier demo).
    #[arg(long, default_value = "tokumei-demo")]
    dir: PathBuf,
    /// Number of synthetic people.
    #[arg(long, default_value_t = 20_000)]
    people: u64,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where the linkage's pairs and the battery's register counts run (job files under
    /// DIR/engine unless --engine-work names another folder).
    #[command(flatten)]
    engine: crate::engine::EngineArgs,
}

pub(crate) fn run_demo(a: DemoArgs) -> ExitCode {
    let work = a.dir.join("engine");
    let engines = a.engine.pair_engine(&work).and_then(|pairs| {
        let register = a.engine.register_engine(&work)?;
        Ok(Engines { pairs, register })
    });
    let engines = match engines {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let options = Options {
        dir: a.dir,
        people: a.people,
        seed: a.seed,
    };
    let screen = Screen::default();
    let finished = tokumei_demo::run_on(&options, &engines, &|e| screen.show(e));
    screen.clear();
    match finished {
        Ok(f) => {
            println!(
                "demo finished: the region is in {}, the operator home in {}",
                f.region.display(),
                f.home.display()
            );
            ExitCode::SUCCESS
        }
        Err(DemoError::NotADemo(dir)) => {
            eprintln!(
                "error: {} exists and does not hold an earlier demo; choose another --dir",
                dir.display()
            );
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            })
        }
    }
}

/// The demo's view on the terminal: the progress bar of the step running, if any, and the number
/// of providers (the length of step 3's bar).
#[derive(Default)]
struct Screen {
    state: Mutex<(Option<ProgressBar>, u64)>,
}

impl Screen {
    /// Puts up `bar` (or takes the bar down).
    fn set_bar(&self, bar: Option<ProgressBar>) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(old) = state.0.take() {
                old.finish_and_clear();
            }
            state.0 = bar;
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(state) = self.state.lock() {
            if let Some(bar) = state.0.as_ref() {
                f(bar);
            }
        }
    }

    fn providers(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.1)
    }

    fn clear(&self) {
        self.set_bar(None);
    }

    fn show(&self, e: Event<'_>) {
        match e {
            Event::Begin(step) => self.begin(step),
            Event::People(n) => self.with_bar(|b| b.set_position(n)),
            Event::Region(r) => {
                self.clear();
                print_summary(&r.out, &r.summary, r.seconds);
            }
            Event::Home(h) => println!(
                "  {} (passphrase in {}, owner-only)",
                h.home.display(),
                h.passphrase_file.display()
            ),
            Event::OptOuts(n) => {
                println!("  {n} requests to stop recorded for patients of H01");
                self.set_bar(Some(progress_bar_of(self.providers(), "providers")));
            }
            Event::Provider { done, .. } => self.with_bar(|b| b.set_position(done as u64)),
            Event::Received(r) => {
                self.clear();
                received(r);
            }
            Event::Waiting(holder) => {
                eprintln!("waiting for another command to finish changing the home ({holder})")
            }
            Event::Linked(l) => println!(
                "  {} records of {} persons ({} candidate pairs scored), {} pairs for clerical \
                 review; {:.1} s",
                l.summary.records,
                l.summary.persons,
                l.summary.candidates,
                l.summary.pending,
                l.seconds
            ),
            Event::Decided(d) => println!(
                "  application {}: {} at {} ({} for, {} against)",
                d.application_id,
                d.decision.outcome.code(),
                d.meeting_id,
                d.decision.tally.0,
                d.decision.tally.1
            ),
            Event::WebUsers(w) => println!(
                "  web sign-in for {} demo users: {} (tokumei serve --home … --passphrase-file …)",
                w.users,
                w.file.display()
            ),
            Event::Released(b) => released(b),
            Event::Refused(why) => {
                println!("  release refused by its checks, nothing written: {why}");
            }
            Event::Audited(a) => println!(
                "  {} entries, intact (verify it yourself: tokumei audit verify --home {})",
                a.entries,
                a.home.display()
            ),
        }
    }

    /// A step's header line (and the region's progress bar).
    fn begin(&self, step: Step) {
        let what = match step {
            Step::Region { people, seed } => {
                format!("synthetic region ({people} people, seed {seed})")
            }
            Step::Home => "operator home".to_string(),
            Step::Receipts { providers } => {
                format!("{providers} providers seal their extracts; the operator receives them")
            }
            Step::Linkage => "record linkage (名寄せ) into the master person index".to_string(),
            Step::Review => "a research application and the review committee".to_string(),
            Step::Release => "release build".to_string(),
            Step::Audit => "audit log".to_string(),
        };
        println!(
            "tokumei demo: step {}/{}, {what}",
            step.number(),
            Step::COUNT
        );
        match step {
            Step::Region { people, .. } => self.set_bar(Some(progress_bar(people))),
            Step::Receipts { providers } => {
                if let Ok(mut state) = self.state.lock() {
                    state.1 = providers as u64;
                }
            }
            _ => {}
        }
    }
}

/// Step 3's totals.
fn received(r: &tokumei_demo::receipts::Received) {
    let t = &r.totals;
    println!(
        "  {} packages, {} files, {} records in the manifests: {} stored ({} clinical events), {} \
         quarantined (malformed on purpose, see truth/noise), {} refused by opt-out, {} refused by \
         the notice period, {} images stored and {} refused with their patient; {:.1} s",
        t.packages,
        t.files,
        t.records,
        t.stored,
        t.events,
        t.quarantined,
        t.opted_out,
        t.too_early,
        t.images,
        t.images_refused,
        r.seconds
    );
}

/// Step 6's release: its figures, report and package, and any warning on its usefulness.
fn released(b: &tokumei_demo::release::Built) {
    let r = &b.release;
    println!(
        "  {}: {} persons of {} in the cohort ({} suppressed for k = {}, {} opted out); \
         smallest class {} → {}; linkage attack re-identifies {:.2} % (unprocessed: {:.2} %); \
         membership-inference advantage {:.4}; unique trajectories {:.2} %; {:.1} s",
        r.release_id,
        r.persons,
        r.cohort,
        r.suppressed,
        r.k,
        r.opted_out,
        r.min_class.0,
        r.min_class.1,
        r.reid.attack_success.unwrap_or(r.reid.marketer) * 100.0,
        r.reid_initial
            .attack_success
            .unwrap_or(r.reid_initial.marketer)
            * 100.0,
        r.reid.membership_advantage.unwrap_or(0.0),
        r.reid.trajectory_unique.unwrap_or(0.0) * 100.0,
        b.seconds
    );
    if let Some(e) = &r.events {
        let kept = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
        let before = r.previous_rule.as_ref().map_or(String::new(), |p| {
            let rows = p.event_rows();
            format!(
                " (the previous 1 % trajectory rule: {rows}, {:.1} %)",
                kept(rows, e.rows_before)
            )
        });
        println!(
            "  (k, k^m) with k = {}, m = {}: {} of {} event rows released, {:.1} %{before}",
            e.k,
            e.m,
            e.rows_released,
            e.rows_before,
            kept(e.rows_released, e.rows_before)
        );
    }
    if let Some(i) = &r.images {
        let withheld: usize = i.withheld.values().sum();
        println!(
            "  images: {} of {} asked for released de-identified ({} studies), {withheld} withheld \
             (burned-in text), {} finding(s) in the check of every file",
            i.released,
            i.requested,
            i.studies,
            i.findings.len()
        );
    }
    println!(
        "  report: {}; package for the recipient: {}",
        b.report.display(),
        r.package.display()
    );
    for w in &r.warnings {
        println!("  warning: {w}");
    }
}
