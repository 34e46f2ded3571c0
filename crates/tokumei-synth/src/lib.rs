//! Synthetic Japanese region with ground truth.
//!
//! `generate` simulates a population modelled on 青森県 — real municipalities, towns and postal codes,
//! an older age pyramid, households, frequency-skewed names with readings, public health insurance with
//! valid insurer numbers, life events (moves, marriages, job changes, the switch to 後期高齢者医療 at 75,
//! deaths) and clinical timelines — and writes what each provider would hold under `DIR/sources/` plus
//! the answer key under `DIR/truth/`.
//!
//! Generation streams: households are simulated independently from per-household random streams in
//! parallel chunks and written in order, so memory stays bounded by the chunk size, the tables' row
//! budget ([`writer::BUFFER_BUDGET`]), the rows of open Parquet files ([`writer::OPEN_ROWS`]: past
//! it the largest tables go on in a new part) and the archives' entry budget ([`archives`]),
//! whatever the population, and the output is byte-identical for the same seed whatever the number
//! of threads.
//!
//! # Output layout (a public interface)
//! ```text
//! DIR/region.json                 providers and municipalities
//! DIR/summary.json                counts (deterministic: no timings)
//! DIR/sources/<provider>/<table>.parquet
//!     identities, encounters, diagnoses, prescriptions, procedures, lab_results, deaths; in a
//!     large region a table goes on in <table>-0002.parquet, ... (every table, truth included;
//!     `writer::read_table` reads all parts)
//! DIR/sources/<provider>/...     native files: uke/, ssmix2.zip, fhir/, kenshin/, death/; ZIP
//!                                 archives in parts: ssmix2.zip, ssmix2-0002.zip, ... ([`archives`])
//! DIR/sources/H0n/dicom/<study, 6 digits>/<instance>.dcm
//!                                 imaging studies of some encounters at the SS-MIX2 hospitals
//! DIR/truth/persons.parquet       person_id, sex, birth_date, names, municipality_code, death_date ...
//! DIR/truth/record_links.parquet  provider_id, source_kind, record_id, person_id (every record)
//! DIR/truth/addresses.parquet     address history (moves)
//! DIR/truth/name_changes.parquet  surname changes (marriage)
//! DIR/truth/coverages.parquet     insurance history
//! DIR/truth/conditions.parquet    true conditions with onset
//! DIR/truth/native_links.parquet  where each record is in its native file
//! DIR/truth/noise.parquet         noise injected into records
//! DIR/truth/images.parquet        person, provider and path of every DICOM image, what it shows,
//!                                 burned-in text and what the header says of it
//! ```

pub mod archives;
pub mod care;
pub mod clinical;
pub mod dates;
pub mod emit;
pub mod imaging;
pub mod life;
pub mod names;
pub mod noise;
pub mod region;
pub mod rng;
mod tsv;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use serde::Serialize;
use tokumei_model::SourceKind;

use crate::clinical::ClinicalTables;
use crate::dates::{age_on, Period};
use crate::names::NameTables;
use crate::region::Region;
use crate::rng::{rng_for, Stream, Weighted};

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The output folder exists and is not empty.
    #[error("output folder {0} exists and is not empty (use --force to replace it)")]
    OutputNotEmpty(PathBuf),
    /// The output folder cannot be created or written.
    #[error("cannot write output folder {path}: {source}")]
    OutputNotWritable {
        /// Folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// An embedded reference table is malformed.
    #[error("reference table {table}, line {line}: {reason}")]
    Data {
        /// Table.
        table: &'static str,
        /// Line (1-based; 0 for the whole table).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Parquet error.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Model error.
    #[error(transparent)]
    Model(#[from] tokumei_model::ModelError),
    /// An internal invariant broke.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<tokumei_fs::IoError> for SynthError {
    fn from(e: tokumei_fs::IoError) -> Self {
        SynthError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl SynthError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        tokumei_fs::io(path)(source).into()
    }

    /// Whether the error is the caller's (bad arguments or output folder): exit code 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            SynthError::InvalidArgument(_)
                | SynthError::OutputNotEmpty(_)
                | SynthError::OutputNotWritable { .. }
        )
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of people.
    pub people: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// First month, `YYYY-MM`.
    pub start: String,
    /// Number of months.
    pub months: u32,
    /// Output folder.
    pub out: PathBuf,
    /// Replace a non-empty output folder.
    pub force: bool,
    /// Scale of the data-entry noise (0 for none, 1 for the default rates).
    pub noise: f64,
    /// How large the parts of the ZIP archives may grow ([`archives`]).
    pub archives: archives::ArchiveLimits,
    /// Rows the open Parquet files may hold together before the largest go on in a new part
    /// ([`writer::OPEN_ROWS`]).
    pub open_table_rows: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            people: 10_000,
            seed: 1,
            start: "2021-04".into(),
            months: 36,
            out: PathBuf::from("synth-out"),
            force: false,
            noise: 1.0,
            archives: archives::ArchiveLimits::default(),
            open_table_rows: writer::OPEN_ROWS,
        }
    }
}

/// Shared, read-only state of a generation run.
pub struct Context {
    /// Seed.
    pub seed: u64,
    /// Period.
    pub period: Period,
    /// Region.
    pub region: Region,
    /// Names.
    pub names: NameTables,
    /// Clinical tables.
    pub clinical: ClinicalTables,
    /// Procedure indices of the care model.
    pub procs: care::Procs,
    /// Age pyramid.
    pub pyramid: life::AgePyramid,
    /// Household kinds.
    pub household_kinds: Weighted,
    /// Noise scale.
    pub noise: f64,
}

impl Context {
    /// Loads the reference data for a seed and period.
    pub fn new(seed: u64, period: Period) -> Result<Self, SynthError> {
        let clinical = ClinicalTables::load()?;
        Ok(Context {
            seed,
            period,
            region: Region::load()?,
            names: NameTables::load()?,
            procs: care::Procs::new(&clinical)?,
            clinical,
            pyramid: life::AgePyramid::default(),
            household_kinds: life::kind_weights().ok_or(SynthError::Internal("household kinds"))?,
            noise: 1.0,
        })
    }
}

/// Counts of a run (deterministic; written as `summary.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// People written.
    pub people: u64,
    /// Households with at least one person written.
    pub households: u64,
    /// People aged 65+ at the start.
    pub aged_65_plus: u64,
    /// People aged 75+ at the start.
    pub aged_75_plus: u64,
    /// Deaths within the period.
    pub deaths: u64,
    /// Surname changes.
    pub name_changes: u64,
    /// People who moved at least once.
    pub movers: u64,
    /// Records by source kind.
    pub records: BTreeMap<String, u64>,
    /// Rows by table.
    pub rows: BTreeMap<String, u64>,
    /// Providers.
    pub providers: u64,
    /// Native files written (claims files, FHIR exports, death-record files and every part of
    /// the ZIP archives).
    pub native_files: u64,
    /// Imaging studies written (DICOM, at the SS-MIX2 hospitals).
    pub imaging_studies: u64,
    /// DICOM files written (images of those studies).
    pub images: u64,
    #[serde(skip)]
    last_household: Option<String>,
}

impl Summary {
    fn add_person(&mut self, out: &emit::PersonOut, age: i32) {
        if self.last_household.as_deref() != Some(out.person.household_id.as_str()) {
            self.households += 1;
            self.last_household = Some(out.person.household_id.clone());
        }
        self.aged_65_plus += u64::from(age >= 65);
        self.aged_75_plus += u64::from(age >= 75);
        self.deaths += u64::from(out.person.death_date.is_some());
        self.name_changes += out.name_changes.len() as u64;
        self.movers += u64::from(out.addresses.len() > 1);
    }

    fn add_record(&mut self, kind: SourceKind) {
        *self.records.entry(kind.code().to_string()).or_default() += 1;
    }

    /// Share of people aged 65+ at the start.
    pub fn share_65_plus(&self) -> f64 {
        self.aged_65_plus as f64 / self.people.max(1) as f64
    }
}

/// Everything generated for one household.
struct HouseholdOut {
    persons: Vec<(emit::PersonOut, i32)>,
}

fn household_out(ctx: &Context, index: u64) -> HouseholdOut {
    let hh = life::simulate_household(ctx, index);
    let persons = hh
        .members
        .iter()
        .map(|p| {
            let mut rng = rng_for(ctx.seed, Stream::Care, p.key);
            let visits = care::plan_visits(ctx, p, &mut rng);
            let checkups = care::plan_checkups(ctx, p, &mut rng);
            let out = emit::person_out(ctx, index, p, &visits, &checkups, &mut rng);
            (out, age_on(p.birth, ctx.period.start))
        })
        .collect();
    HouseholdOut { persons }
}

/// Households generated per parallel chunk.
const CHUNK_HOUSEHOLDS: u64 = 128;

/// Validates the configuration and returns the period.
pub fn validate(config: &Config) -> Result<Period, SynthError> {
    if config.people == 0 {
        return Err(SynthError::InvalidArgument(
            "--people must be at least 1".into(),
        ));
    }
    if config.people > 100_000_000 {
        return Err(SynthError::InvalidArgument(
            "--people must be at most 100000000".into(),
        ));
    }
    if !(0.0..=100.0).contains(&config.noise) {
        return Err(SynthError::InvalidArgument(
            "--noise must be between 0 and 100".into(),
        ));
    }
    if config.months == 0 || config.months > 240 {
        return Err(SynthError::InvalidArgument(
            "--months must be between 1 and 240".into(),
        ));
    }
    config.archives.validate()?;
    let (y, m) = dates::parse_year_month(&config.start).ok_or_else(|| {
        SynthError::InvalidArgument(format!("--start `{}` is not YYYY-MM", config.start))
    })?;
    Period::new(y, m, config.months)
        .ok_or_else(|| SynthError::InvalidArgument("period out of range".into()))
}

/// The output folder of a run, staged beside `out` ([`tokumei_fs::StagedDir`]): it becomes `out` on
/// success and disappears on failure. A non-empty `out` is replaced only with `force`.
fn staging(out: &Path, force: bool) -> Result<tokumei_fs::StagedDir, SynthError> {
    if out.exists() {
        if !out.is_dir() {
            return Err(SynthError::OutputNotWritable {
                path: out.to_path_buf(),
                source: std::io::Error::other("exists and is not a folder"),
            });
        }
        let non_empty = std::fs::read_dir(out)
            .map_err(|e| SynthError::OutputNotWritable {
                path: out.to_path_buf(),
                source: e,
            })?
            .next()
            .is_some();
        if non_empty && !force {
            return Err(SynthError::OutputNotEmpty(out.to_path_buf()));
        }
    }
    if out.file_name().is_none() {
        return Err(SynthError::InvalidArgument(format!(
            "--out {} has no folder name",
            out.display()
        )));
    }
    tokumei_fs::StagedDir::new(out, force).map_err(|e| SynthError::OutputNotWritable {
        path: out.to_path_buf(),
        source: e.source,
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SynthError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|_| SynthError::Internal("json serialisation"))?;
    std::fs::write(path, text + "\n").map_err(|e| SynthError::io(path, e))
}

#[derive(Serialize)]
struct RegionJson<'a> {
    prefecture: &'static str,
    period_start: String,
    period_end_exclusive: String,
    seed: u64,
    municipalities: Vec<MuniJson<'a>>,
    providers: &'a [region::Provider],
}

#[derive(Serialize)]
struct MuniJson<'a> {
    code: &'a str,
    name: &'a str,
    kana: &'a str,
    medical_area: &'a str,
    kokuho_insurer: String,
    koki_insurer: String,
}

/// Generates a region into `config.out`; `progress` is called with the number of people written.
pub fn generate(config: &Config, progress: &(dyn Fn(u64) + Sync)) -> Result<Summary, SynthError> {
    let period = validate(config)?;
    let staging = staging(&config.out, config.force)?;
    let mut ctx = Context::new(config.seed, period)?;
    ctx.noise = config.noise;
    let ids: Vec<String> = ctx.region.providers.iter().map(|p| p.id.clone()).collect();
    let facilities = ctx
        .region
        .providers
        .iter()
        .map(|p| {
            let code = p.facility_code.as_deref()?;
            Some(tokumei_formats::uke::Facility {
                payer: 1,
                prefecture: code.get(0..2)?.to_string(),
                table: code.get(2..3)?.to_string(),
                code7: code.get(3..10)?.to_string(),
                name: p.name.clone(),
            })
        })
        .collect();
    let municipalities: Vec<String> = ctx
        .region
        .providers
        .iter()
        .map(|p| p.municipality_code.clone())
        .collect();
    let mut writer = writer::Writer::new(
        staging.path(),
        &ids,
        facilities,
        municipalities,
        config.seed,
        config.archives,
        config.open_table_rows,
    )?;
    let target = config.people;

    let (tx, rx) = sync_channel::<Vec<HouseholdOut>>(1);
    let ctx_ref = &ctx;
    let result: Result<(), SynthError> = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut next = 0u64;
            let mut produced = 0u64;
            while produced < target {
                let chunk: Vec<HouseholdOut> = (next..next + CHUNK_HOUSEHOLDS)
                    .into_par_iter()
                    .map(|i| household_out(ctx_ref, i))
                    .collect();
                next += CHUNK_HOUSEHOLDS;
                produced += chunk.iter().map(|h| h.persons.len() as u64).sum::<u64>();
                if tx.send(chunk).is_err() {
                    break;
                }
            }
        });
        let mut res = Ok(());
        'outer: for chunk in rx.iter() {
            for hh in chunk {
                for (person, age) in hh.persons {
                    if writer.persons_written() >= target {
                        break 'outer;
                    }
                    if let Err(e) = writer.write_person(person, age) {
                        res = Err(e);
                        break 'outer;
                    }
                }
            }
            progress(writer.persons_written());
        }
        drop(rx);
        if producer.join().is_err() {
            return Err(SynthError::Internal("generator thread panicked"));
        }
        res
    });
    result?;
    progress(writer.persons_written());
    let mut summary = writer.finish()?;
    summary.providers = ctx.region.providers.len() as u64;
    let munis = ctx
        .region
        .municipalities
        .iter()
        .enumerate()
        .map(|(i, m)| MuniJson {
            code: &m.code6,
            name: &m.name,
            kana: &m.kana,
            medical_area: &m.medical_area,
            kokuho_insurer: ctx.region.kokuho_insurer(i),
            koki_insurer: ctx.region.koki_insurer(i),
        })
        .collect();
    write_json(
        &staging.path().join("region.json"),
        &RegionJson {
            prefecture: region::PREFECTURE,
            period_start: period.start.to_string(),
            period_end_exclusive: period.end.to_string(),
            seed: config.seed,
            municipalities: munis,
            providers: &ctx.region.providers,
        },
    )?;
    write_json(&staging.path().join("summary.json"), &summary)?;
    staging.commit()?;
    Ok(summary)
}
