//! Streaming Parquet output: one buffered sink per table, flushed in row groups.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::Rng;
use rayon::prelude::*;
use tokumei_formats::uke::Facility;
use tokumei_model::events::{Death, Diagnosis, Encounter, LabResult, Prescription, Procedure};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::truth::{
    NativeLink, RecordLink, TruthAddress, TruthCondition, TruthCoverage, TruthImage,
    TruthNameChange, TruthNoise, TruthPerson,
};
use tokumei_model::Table;

use crate::archives::{ArchiveLimits, Archives};
use crate::emit::{Native, PersonOut};
use crate::rng::{rng_for, Stream, SynthRng};
use crate::{Summary, SynthError};

/// Maximum rows per row group.
pub const ROW_GROUP: usize = 8192;

/// Rows buffered over all tables before the largest buffers are written out.
pub const BUFFER_BUDGET: usize = 262_144;

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build()
}

/// Rows in the open files of all tables together before the largest are finished and go on in a new
/// part: what bounds the Parquet writers' metadata (row-group and page metadata kept until a file
/// closes) whatever the population.
pub const OPEN_ROWS: u64 = 1 << 25;

/// A Parquet table written in row groups as rows arrive, in parts (`<table>.parquet`,
/// `<table>-0002.parquet`, ...) when [`Writer`] finishes a file early to bound memory.
pub struct Sink<T: Table> {
    path: PathBuf,
    rows: Vec<T>,
    writer: Option<ArrowWriter<File>>,
    written: u64,
    /// Part being written (from 1).
    part: u32,
    /// Rows in the open part.
    open_rows: u64,
}

impl<T: Table> Sink<T> {
    /// A sink writing `dir/<table>.parquet`.
    pub fn new(dir: &Path) -> Self {
        Sink {
            path: dir.join(format!("{}.parquet", T::NAME)),
            rows: Vec::new(),
            writer: None,
            written: 0,
            part: 1,
            open_rows: 0,
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: T) -> Result<(), SynthError> {
        self.rows.push(row);
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut ArrowWriter<File>, SynthError> {
        if self.writer.is_none() {
            let path = tokumei_model::table::part_path(&self.path, self.part);
            let file = File::create(&path).map_err(|e| SynthError::io(&path, e))?;
            self.writer = Some(ArrowWriter::try_new(file, T::schema(), Some(props()))?);
        }
        self.writer
            .as_mut()
            .ok_or(SynthError::Internal("writer not open"))
    }

    fn flush(&mut self) -> Result<(), SynthError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = T::to_batch(&self.rows)?;
        self.written += self.rows.len() as u64;
        self.open_rows += self.rows.len() as u64;
        self.rows.clear();
        // The Arrow writer encodes the rows now and closes a row group every ROW_GROUP rows; between
        // those it holds only encoded pages, far smaller than the rows themselves.
        self.writer()?.write(&batch)?;
        Ok(())
    }

    /// Finishes the open part; the next rows go to a new part.
    fn close_part(&mut self) -> Result<(), SynthError> {
        if let Some(w) = self.writer.take() {
            w.close()?;
            self.part += 1;
            self.open_rows = 0;
        }
        Ok(())
    }

    /// Writes what is left and closes the file (an empty table still gets its schema).
    pub fn finish(mut self) -> Result<u64, SynthError> {
        self.flush()?;
        if self.part == 1 {
            self.writer()?;
        }
        if let Some(w) = self.writer.take() {
            w.close()?;
        }
        Ok(self.written)
    }
}

/// A sink seen without its row type, for flushing under the buffer budget.
trait Buffered: Send {
    fn buffered(&self) -> usize;
    fn flush_rows(&mut self) -> Result<(), SynthError>;
    fn open_rows(&self) -> u64;
    fn close_part(&mut self) -> Result<(), SynthError>;
}

impl<T: Table + Send> Buffered for Sink<T> {
    fn buffered(&self) -> usize {
        self.rows.len()
    }
    fn flush_rows(&mut self) -> Result<(), SynthError> {
        self.flush()
    }
    fn open_rows(&self) -> u64 {
        self.open_rows
    }
    fn close_part(&mut self) -> Result<(), SynthError> {
        Sink::close_part(self)
    }
}

/// The tables of one provider.
pub struct ProviderSinks {
    identities: Sink<IdentityRecord>,
    encounters: Sink<Encounter>,
    diagnoses: Sink<Diagnosis>,
    prescriptions: Sink<Prescription>,
    procedures: Sink<Procedure>,
    lab_results: Sink<LabResult>,
    deaths: Sink<Death>,
}

impl ProviderSinks {
    fn new(dir: &Path) -> Self {
        ProviderSinks {
            identities: Sink::new(dir),
            encounters: Sink::new(dir),
            diagnoses: Sink::new(dir),
            prescriptions: Sink::new(dir),
            procedures: Sink::new(dir),
            lab_results: Sink::new(dir),
            deaths: Sink::new(dir),
        }
    }

    fn all(&mut self) -> [&mut dyn Buffered; 7] {
        [
            &mut self.identities,
            &mut self.encounters,
            &mut self.diagnoses,
            &mut self.prescriptions,
            &mut self.procedures,
            &mut self.lab_results,
            &mut self.deaths,
        ]
    }

    fn finish(self, counts: &mut BTreeMap<String, u64>) -> Result<(), SynthError> {
        *counts.entry("identities".into()).or_default() += self.identities.finish()?;
        *counts.entry("encounters".into()).or_default() += self.encounters.finish()?;
        *counts.entry("diagnoses".into()).or_default() += self.diagnoses.finish()?;
        *counts.entry("prescriptions".into()).or_default() += self.prescriptions.finish()?;
        *counts.entry("procedures".into()).or_default() += self.procedures.finish()?;
        *counts.entry("lab_results".into()).or_default() += self.lab_results.finish()?;
        *counts.entry("deaths".into()).or_default() += self.deaths.finish()?;
        Ok(())
    }
}

/// Writes persons as they arrive, assigning ids in arrival order.
pub struct Writer {
    providers: Vec<ProviderSinks>,
    persons: Sink<TruthPerson>,
    links: Sink<RecordLink>,
    addresses: Sink<TruthAddress>,
    name_changes: Sink<TruthNameChange>,
    coverages: Sink<TruthCoverage>,
    conditions: Sink<TruthCondition>,
    native_links: Sink<NativeLink>,
    noise: Sink<TruthNoise>,
    images: Sink<TruthImage>,
    native: NativeFiles,
    event_counter: u64,
    id_rng: SynthRng,
    pushed_since_check: u32,
    /// Rows the open files of all tables may hold together ([`OPEN_ROWS`]).
    open_rows: u64,
    /// Running summary.
    pub summary: Summary,
}

impl Writer {
    /// Creates the folder layout under `root` for `provider_ids`.
    pub fn new(
        root: &Path,
        provider_ids: &[String],
        facilities: Vec<Option<Facility>>,
        municipalities: Vec<String>,
        seed: u64,
        limits: ArchiveLimits,
        open_rows: u64,
    ) -> Result<Self, SynthError> {
        let truth = root.join("truth");
        std::fs::create_dir_all(&truth).map_err(|e| SynthError::io(&truth, e))?;
        let mut providers = Vec::new();
        for id in provider_ids {
            let dir = root.join("sources").join(id);
            std::fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
            providers.push(ProviderSinks::new(&dir));
        }
        Ok(Writer {
            native_links: Sink::new(&truth),
            noise: Sink::new(&truth),
            images: Sink::new(&truth),
            native: NativeFiles::new(root, provider_ids, facilities, municipalities, limits),
            providers,
            persons: Sink::new(&truth),
            links: Sink::new(&truth),
            addresses: Sink::new(&truth),
            name_changes: Sink::new(&truth),
            coverages: Sink::new(&truth),
            conditions: Sink::new(&truth),
            event_counter: 0,
            id_rng: rng_for(seed, Stream::RecordIds, 0),
            pushed_since_check: 0,
            open_rows: open_rows.max(1),
            summary: Summary::default(),
        })
    }

    /// Number of persons written so far.
    pub fn persons_written(&self) -> u64 {
        self.summary.people
    }

    fn event_id(&mut self) -> String {
        self.event_counter += 1;
        format!("E{:012}", self.event_counter)
    }

    /// Writes one person: truth rows, then each record with fresh ids.
    pub fn write_person(
        &mut self,
        mut out: PersonOut,
        age_at_start: i32,
    ) -> Result<(), SynthError> {
        self.summary.people += 1;
        let person_id = format!("P{:09}", self.summary.people);
        self.summary.add_person(&out, age_at_start);
        for mut rec in std::mem::take(&mut out.records) {
            let record_id = format!("{:032x}", self.id_rng.random::<u128>());
            let pi = rec.provider;
            rec.identity.record_id = record_id.clone();
            for n in std::mem::take(&mut rec.noise) {
                self.noise.push(TruthNoise {
                    record_id: record_id.clone(),
                    provider_id: rec.identity.provider_id.clone(),
                    source_kind: rec.identity.source_kind,
                    kind: n.kind.to_string(),
                    field: n.field.to_string(),
                })?;
            }
            if let Some(native) = rec.native.take() {
                let (path, first_line, last_line) = self.native.append(pi, native)?;
                self.native_links.push(NativeLink {
                    provider_id: rec.identity.provider_id.clone(),
                    source_kind: rec.identity.source_kind,
                    path,
                    first_line: first_line as i64,
                    last_line: last_line as i64,
                    record_id: record_id.clone(),
                })?;
            }
            self.summary.add_record(rec.identity.source_kind);
            self.links.push(RecordLink {
                provider_id: rec.identity.provider_id.clone(),
                source_kind: rec.identity.source_kind,
                record_id: record_id.clone(),
                person_id: person_id.clone(),
            })?;
            let ev = rec.events;
            let mut enc_ids = Vec::with_capacity(ev.encounters.len());
            for _ in 0..ev.encounters.len() {
                enc_ids.push(self.event_id());
            }
            let enc_ref = |e: Option<String>| -> Option<String> {
                e.and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| enc_ids.get(i).cloned())
            };
            let sinks = &mut self.providers[pi];
            sinks.identities.push(rec.identity)?;
            for (mut e, id) in ev.encounters.into_iter().zip(enc_ids.iter()) {
                e.event_id = id.clone();
                e.record_id = record_id.clone();
                sinks.encounters.push(e)?;
            }
            let mut counter = self.event_counter;
            let mut next_id = || {
                counter += 1;
                format!("E{counter:012}")
            };
            for mut e in ev.diagnoses {
                e.event_id = next_id();
                e.record_id = record_id.clone();
                e.encounter_id = enc_ref(e.encounter_id.take());
                sinks.diagnoses.push(e)?;
            }
            for mut e in ev.prescriptions {
                e.event_id = next_id();
                e.record_id = record_id.clone();
                e.encounter_id = enc_ref(e.encounter_id.take());
                sinks.prescriptions.push(e)?;
            }
            for mut e in ev.procedures {
                e.event_id = next_id();
                e.record_id = record_id.clone();
                e.encounter_id = enc_ref(e.encounter_id.take());
                sinks.procedures.push(e)?;
            }
            for mut e in ev.lab_results {
                e.event_id = next_id();
                e.record_id = record_id.clone();
                e.encounter_id = enc_ref(e.encounter_id.take());
                sinks.lab_results.push(e)?;
            }
            for mut e in ev.deaths {
                e.event_id = next_id();
                e.record_id = record_id.clone();
                sinks.deaths.push(e)?;
            }
            self.event_counter = counter;
        }
        for study in std::mem::take(&mut out.images) {
            let paths = self.native.study(study.provider, &study.instances)?;
            self.summary.imaging_studies += 1;
            self.summary.images += paths.len() as u64;
            let provider_id = self.native.ids.get(study.provider).cloned();
            for (path, image) in paths.into_iter().zip(study.instances) {
                self.images.push(TruthImage {
                    person_id: person_id.clone(),
                    provider_id: provider_id.clone().unwrap_or_default(),
                    path,
                    study_date: study.date,
                    modality: study.modality.to_string(),
                    body_part: study.body_part.to_string(),
                    burned_in: image.burned_in,
                    burned_in_flag: image.flag.map(str::to_string),
                })?;
            }
        }
        out.person.person_id = person_id.clone();
        self.persons.push(out.person)?;
        for mut r in out.addresses {
            r.person_id = person_id.clone();
            self.addresses.push(r)?;
        }
        for mut r in out.name_changes {
            r.person_id = person_id.clone();
            self.name_changes.push(r)?;
        }
        for mut r in out.coverages {
            r.person_id = person_id.clone();
            self.coverages.push(r)?;
        }
        for mut r in out.conditions {
            r.person_id = person_id.clone();
            self.conditions.push(r)?;
        }
        self.pushed_since_check += 1;
        if self.pushed_since_check >= 64 {
            self.pushed_since_check = 0;
            self.enforce_budget()?;
        }
        Ok(())
    }

    /// Writes out the largest buffers while more than [`BUFFER_BUDGET`] rows are buffered, then
    /// finishes the largest open files while they hold more than the open-rows budget.
    fn enforce_budget(&mut self) -> Result<(), SynthError> {
        let open_budget = self.open_rows;
        let mut sinks: Vec<&mut dyn Buffered> = Vec::new();
        for p in &mut self.providers {
            sinks.extend(p.all());
        }
        sinks.push(&mut self.persons);
        sinks.push(&mut self.links);
        sinks.push(&mut self.addresses);
        sinks.push(&mut self.name_changes);
        sinks.push(&mut self.coverages);
        sinks.push(&mut self.conditions);
        sinks.push(&mut self.native_links);
        sinks.push(&mut self.noise);
        sinks.push(&mut self.images);
        let sizes: Vec<u64> = sinks.iter().map(|s| s.buffered() as u64).collect();
        let chosen = largest_over(&sizes, BUFFER_BUDGET as u64);
        // Each sink writes its own file: encode them in parallel.
        sinks
            .par_iter_mut()
            .zip(chosen)
            .filter(|(_, c)| *c)
            .try_for_each(|(s, _)| s.flush_rows())?;
        let open: Vec<u64> = sinks.iter().map(|s| s.open_rows()).collect();
        let chosen = largest_over(&open, open_budget);
        sinks
            .par_iter_mut()
            .zip(chosen)
            .filter(|(_, c)| *c)
            .try_for_each(|(s, _)| s.close_part())
    }

    /// Closes every file and returns the summary.
    pub fn finish(self) -> Result<Summary, SynthError> {
        let mut summary = self.summary;
        summary.native_files = self.native.finish()?;
        for p in self.providers {
            p.finish(&mut summary.rows)?;
        }
        for (name, n) in [
            ("truth.persons", self.persons.finish()?),
            ("truth.record_links", self.links.finish()?),
            ("truth.addresses", self.addresses.finish()?),
            ("truth.name_changes", self.name_changes.finish()?),
            ("truth.coverages", self.coverages.finish()?),
            ("truth.conditions", self.conditions.finish()?),
            ("truth.native_links", self.native_links.finish()?),
            ("truth.noise", self.noise.finish()?),
            ("truth.images", self.images.finish()?),
        ] {
            summary.rows.insert(name.into(), n);
        }
        Ok(summary)
    }
}

/// When the sizes sum to more than `budget`: the largest (ties by position, so the choice is
/// deterministic) until what is left is at most half the budget.
fn largest_over(sizes: &[u64], budget: u64) -> Vec<bool> {
    let mut chosen = vec![false; sizes.len()];
    let mut left: u64 = sizes.iter().sum();
    if left <= budget {
        return chosen;
    }
    let mut order: Vec<(u64, usize)> = sizes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (n, i) in order {
        if left <= budget / 2 || n == 0 {
            break;
        }
        chosen[i] = true;
        left -= n;
    }
    chosen
}

/// Reads every row of a table written by a [`Sink`]: the file at `path` and the parts that follow it
/// ([`tokumei_model::table::part_paths`]).
pub fn read_table<T: Table>(path: &Path) -> Result<Vec<T>, SynthError> {
    let mut out = Vec::new();
    for part in tokumei_model::table::part_paths(path) {
        let file = File::open(&part).map_err(|e| SynthError::io(&part, e))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
            .with_batch_size(ROW_GROUP)
            .build()?;
        for batch in reader {
            let batch = batch.map_err(|e| SynthError::Model(e.into()))?;
            out.extend(T::from_batch(&batch)?);
        }
    }
    Ok(out)
}

/// Reads one table of every provider under `root/sources`, in provider order.
pub fn read_sources<T: Table>(root: &Path) -> Result<Vec<T>, SynthError> {
    let sources = root.join("sources");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&sources)
        .map_err(|e| SynthError::io(&sources, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        out.extend(read_table::<T>(&d.join(format!("{}.parquet", T::NAME)))?);
    }
    Ok(out)
}

/// Bytes of a native file kept in memory before they are appended to its part file.
const NATIVE_BUFFER: usize = 32 * 1024;

/// A native file being written: its body is streamed to a part file, its header and trailer are
/// added when it closes (a claims file's trailer holds totals known only at the end).
struct NativeFile {
    rel: String,
    facility: Option<Facility>,
    month: Option<chrono::NaiveDate>,
    records: usize,
    points: i64,
    lines: usize,
    buf: Vec<u8>,
    part_written: bool,
    /// Written in Shift_JIS (a legacy municipal system).
    legacy: bool,
}

/// The native files of every provider, keyed by (provider, month, payer) for claims and by provider
/// for death records.
pub struct NativeFiles {
    root: PathBuf,
    ids: Vec<String>,
    /// Municipality code of each provider.
    municipalities: Vec<String>,
    facilities: Vec<Option<Facility>>,
    files: BTreeMap<(usize, Option<chrono::NaiveDate>, u8), NativeFile>,
    /// ZIP archives being written (SS-MIX2 storage, checkup submissions), in parts.
    archives: Archives,
    /// Imaging studies written per provider.
    studies: Vec<u64>,
}

impl NativeFiles {
    fn new(
        root: &Path,
        ids: &[String],
        facilities: Vec<Option<Facility>>,
        municipalities: Vec<String>,
        limits: ArchiveLimits,
    ) -> Self {
        NativeFiles {
            root: root.to_path_buf(),
            ids: ids.to_vec(),
            municipalities,
            facilities,
            files: BTreeMap::new(),
            archives: Archives::new(root, limits),
            studies: vec![0; ids.len()],
        }
    }

    /// Writes the files of a provider's next imaging study under
    /// `sources/<provider>/dicom/<study, 6 digits>/<instance>.dcm`; returns their paths relative to
    /// the provider's folder.
    fn study(
        &mut self,
        provider: usize,
        instances: &[crate::imaging::Instance],
    ) -> Result<Vec<String>, SynthError> {
        let (Some(id), Some(n)) = (self.ids.get(provider), self.studies.get_mut(provider)) else {
            return Err(SynthError::Internal("imaging study of an unknown provider"));
        };
        *n += 1;
        let folder = format!("dicom/{:06}", *n);
        let dir = self.root.join("sources").join(id).join(&folder);
        std::fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
        let mut paths = Vec::with_capacity(instances.len());
        for (i, image) in instances.iter().enumerate() {
            let name = format!("{}.dcm", i + 1);
            let path = dir.join(&name);
            std::fs::write(&path, &image.bytes).map_err(|e| SynthError::io(&path, e))?;
            paths.push(format!("{folder}/{name}"));
        }
        Ok(paths)
    }

    /// Appends one record; returns the file (relative path) and the record's first and last line.
    fn append(
        &mut self,
        provider: usize,
        native: Native,
    ) -> Result<(String, usize, usize), SynthError> {
        let id = self.ids.get(provider).cloned().unwrap_or_default();
        let key = match &native {
            Native::Claims { month, payer, .. } => (provider, Some(*month), *payer),
            Native::Death(_) => (provider, None, 0),
            Native::Fhir(_) => (provider, None, 3),
            Native::Files {
                archive,
                link,
                files,
                ..
            } => {
                // Archive entries: appended now, linked as `PART#ENTRY` (lines 0).
                let base = format!("sources/{id}/{archive}");
                let linked = self.archives.add(&base, link, files)?;
                return Ok((linked, 0, 0));
            }
        };
        let facility = self.facilities.get(provider).cloned().flatten();
        let municipality = self
            .municipalities
            .get(provider)
            .cloned()
            .unwrap_or_default();
        let file = self.files.entry(key).or_insert_with(|| {
            let rel = match &native {
                Native::Claims { month, payer, .. } => format!(
                    "sources/{id}/uke/{}/{}/RECEIPTC.UKE",
                    month.format("%Y%m"),
                    if *payer == 2 { "kokuho" } else { "shaho" }
                ),
                Native::Fhir(_) => format!("sources/{id}/fhir/bundles.ndjson"),
                _ => format!("sources/{id}/death/deaths.csv"),
            };
            NativeFile {
                rel,
                facility: facility.map(|mut f| {
                    f.payer = key.2;
                    f
                }),
                month: key.1,
                records: 0,
                points: 0,
                // Claims and death files start with a header line; NDJSON has none.
                lines: usize::from(!matches!(native, Native::Fhir(_))),
                buf: Vec::new(),
                part_written: false,
                legacy: matches!(native, Native::Death(_))
                    && crate::emit::legacy_municipality(Some(&municipality)),
            }
        });
        let first = file.lines + 1;
        match native {
            Native::Claims {
                receipt, encoded, ..
            } => {
                let encoded = encoded.unwrap_or_else(|| receipt.encode());
                file.records += 1;
                file.points += encoded.points;
                encoded.write_numbered(file.records, &mut file.buf);
                file.lines += encoded.lines;
            }
            Native::Death(row) => {
                file.records += 1;
                file.buf.extend(row);
                file.lines += 1;
            }
            Native::Fhir(line) => {
                file.records += 1;
                file.buf.extend(line);
                file.lines += 1;
            }
            Native::Files { .. } => {}
        }
        let out = (file.rel.clone(), first, file.lines);
        if file.buf.len() >= NATIVE_BUFFER {
            let rel = file.rel.clone();
            let path = body_path(&self.root, &rel);
            if let Some(file) = self.files.get_mut(&key) {
                append_file(&path, &file.buf)?;
                file.buf.clear();
                file.part_written = true;
            }
        }
        Ok(out)
    }

    /// Writes every file (header, body, trailer) and returns how many were written (archive parts
    /// included).
    fn finish(self) -> Result<u64, SynthError> {
        let mut n = self.archives.finish()?;
        for file in self.files.values() {
            write_native(&self.root, file)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Where the body of the native file `rel` is appended until the file is written whole.
fn body_path(root: &Path, rel: &str) -> PathBuf {
    root.join(format!("{rel}.part"))
}

/// Writes one native file: its header, its body streamed from the part file and the buffer, its
/// trailer. Nothing larger than a read buffer is held, however large the file.
fn write_native(root: &Path, file: &NativeFile) -> Result<(), SynthError> {
    use std::io::{Read, Write};
    let path = root.join(&file.rel);
    let part = body_path(root, &file.rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))?;
    }
    let out = File::create(&path).map_err(|e| SynthError::io(&path, e))?;
    let mut out = LineEncoder {
        out: std::io::BufWriter::with_capacity(1 << 20, out),
        // A legacy municipal system's death records are in Shift_JIS, header included.
        legacy: file.rel.ends_with("deaths.csv") && file.legacy,
        pending: Vec::new(),
    };
    let io = |e| SynthError::io(&path, e);
    match (&file.facility, file.month) {
        (Some(f), Some(month)) => {
            let mut header =
                tokumei_formats::uke::to_sjis(&tokumei_formats::uke::header_line(f, month));
            header.extend_from_slice(b"\r\n");
            out.write(&header).map_err(io)?;
        }
        _ if file.rel.ends_with(".ndjson") => {}
        _ => {
            let header = tokumei_formats::death::header_line()
                .map_err(|_| SynthError::Internal("death header"))?;
            out.write(&header).map_err(io)?;
        }
    }
    if file.part_written {
        let mut f = File::open(&part).map_err(|e| SynthError::io(&part, e))?;
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let k = f.read(&mut chunk).map_err(|e| SynthError::io(&part, e))?;
            if k == 0 {
                break;
            }
            out.write(&chunk[..k]).map_err(io)?;
        }
        std::fs::remove_file(&part).map_err(|e| SynthError::io(&part, e))?;
    }
    out.write(&file.buf).map_err(io)?;
    if file.month.is_some() {
        let mut trailer = tokumei_formats::uke::to_sjis(&tokumei_formats::uke::trailer_line(
            file.records,
            file.points,
        ));
        trailer.extend_from_slice(b"\r\n\x1A");
        out.write(&trailer).map_err(io)?;
    }
    let mut inner = out.finish().map_err(io)?;
    inner.flush().map_err(io)
}

/// Writes bytes through, or for a legacy file re-encodes them to Shift_JIS a run of whole CR LF
/// lines at a time ([`tokumei_formats::death::encode`] works line by line, so the result is that of
/// encoding the whole file at once).
struct LineEncoder {
    out: std::io::BufWriter<File>,
    legacy: bool,
    /// Bytes after the last CR LF seen (legacy files).
    pending: Vec<u8>,
}

impl LineEncoder {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        if !self.legacy {
            return self.out.write_all(bytes);
        }
        self.pending.extend_from_slice(bytes);
        let Some(end) = self.pending.windows(2).rposition(|w| w == b"\r\n") else {
            return Ok(());
        };
        let rest = self.pending.split_off(end + 2);
        let lines = std::mem::replace(&mut self.pending, rest);
        let encoded =
            tokumei_formats::death::encode(lines, tokumei_formats::death::Encoding::ShiftJis);
        self.out.write_all(&encoded)
    }

    fn finish(mut self) -> std::io::Result<std::io::BufWriter<File>> {
        use std::io::Write;
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let encoded =
                tokumei_formats::death::encode(rest, tokumei_formats::death::Encoding::ShiftJis);
            self.out.write_all(&encoded)?;
        }
        Ok(self.out)
    }
}

fn append_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| SynthError::io(path, e))?;
    f.write_all(bytes).map_err(|e| SynthError::io(path, e))
}
