//! `tokumei dicom`: DICOM files summarized (`inspect`) and de-identified under PS3.15 Annex E
//! (`deid`), for anyone's files as `tokumei anonymize` is for tables.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_dicom::batch::{self, Batch};
use tokumei_dicom::profile::{Profile, ProfileFile};
use tokumei_dicom::{parse, Limits};

use crate::EXIT_FAILURE;

/// Prints an error; the failure exit code.
fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_FAILURE)
}

#[derive(Subcommand)]
pub(crate) enum DicomCommand {
    /// Summarize DICOM files (or every file under a folder): transfer syntax, SOP class, modality,
    /// character set and whether all its text decodes, counts of elements, private elements and
    /// sequences, nesting depth, Table E.1-1 attributes present, pixel data, burned-in flag. No
    /// identifying value is shown. Exits 1 if a file does not read.
    Inspect {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// JSON, one object per file.
        #[arg(long)]
        json: bool,
    },
    /// De-identify every DICOM file under a folder into a new one, under PS3.15 Annex E: the
    /// Basic Profile and the options a profile names, at every depth of sequences; private
    /// elements removed unless listed safe; UIDs, pseudonyms and date offsets derived from the
    /// key (the same key keeps a person's studies together; another key relates nothing); the
    /// conformance attributes written. Files that do not read are reported, images flagged with
    /// burned-in annotation withheld, and any file that would keep a listed attribute unchanged
    /// refused. The report is OUT/deid-report.json. Exits 1 if a file was not written.
    Deid {
        /// Input folder.
        #[arg(long = "in")]
        input: PathBuf,
        /// Output folder (new or empty; not inside the input).
        #[arg(long)]
        out: PathBuf,
        /// A preset (`basic`, `research`) or a profile file (TOML: `options = ["113107"]`, and
        /// `[[safe_private]]` with `creator` and `element`).
        #[arg(long, default_value = "basic")]
        profile: String,
        /// The key file (64 hexadecimal digits); without it a random key, not kept.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Pixel cleaning rules by device signature (RSNA CTP's DicomPixelAnonymizer script
        /// format), applied when the profile names Clean Pixel Data (113101).
        #[arg(long)]
        pixel_rules: Option<PathBuf>,
        /// Modalities whose images are searched for burned-in text with Tesseract (`US,SC,XA`);
        /// an image with text no rule cleans is withheld.
        #[arg(long, value_delimiter = ',')]
        ocr: Vec<String>,
    },
    /// Compare originals with another tool's (or this one's) de-identified copies, matched by
    /// path: how many Table E.1-1 attributes the profile would change were present, and how many
    /// the copies left unchanged.
    Compare {
        /// The originals.
        #[arg(long)]
        original: PathBuf,
        /// The de-identified copies.
        #[arg(long)]
        output: PathBuf,
        /// A preset or profile file, as for `deid`.
        #[arg(long, default_value = "basic")]
        profile: String,
    },
}

pub(crate) fn run(c: DicomCommand) -> ExitCode {
    match c {
        DicomCommand::Inspect { paths, json } => inspect(&paths, json),
        DicomCommand::Deid {
            input,
            out,
            profile,
            key,
            pixel_rules,
            ocr,
        } => deid(&input, &out, &profile, key, (pixel_rules, ocr)),
        DicomCommand::Compare {
            original,
            output,
            profile,
        } => compare(&original, &output, &profile),
    }
}

fn inspect(paths: &[PathBuf], json: bool) -> ExitCode {
    let profile = match Profile::new(&[]) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let mut failed = false;
    for p in paths {
        let files = if p.is_dir() {
            match batch::files_under(p) {
                Ok(f) => f,
                Err(e) => return fail(e),
            }
        } else {
            vec![p.clone()]
        };
        for f in files {
            let read = std::fs::read(&f)
                .map_err(|e| e.to_string())
                .and_then(|b| parse(&b, &Limits::default()).map_err(|e| e.to_string()));
            match read {
                Ok(file) => {
                    let s = tokumei_dicom::summary::summarize(&file, &profile);
                    if json {
                        let v =
                            serde_json::json!({ "file": f.display().to_string(), "summary": s });
                        println!("{v}");
                    } else {
                        print_summary(&f, &s);
                    }
                }
                Err(why) => {
                    failed = true;
                    if json {
                        let v =
                            serde_json::json!({ "file": f.display().to_string(), "error": why });
                        println!("{v}");
                    } else {
                        println!("{}: ERROR {why}", f.display());
                    }
                }
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_summary(f: &std::path::Path, s: &tokumei_dicom::summary::Summary) {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("{}", f.display());
    println!("  transfer syntax  {}", s.transfer_syntax);
    println!("  SOP class        {}", or(&s.sop_class));
    println!("  modality         {}", or(&s.modality));
    println!("  character set    {}", or(&s.character_set));
    if let Some(e) = &s.character_error {
        println!("  CHARACTER ERROR  {e}");
    }
    println!(
        "  elements         {} ({} private, {} sequences, depth {})",
        s.elements, s.private, s.sequences, s.depth
    );
    println!("  Table E.1-1      {} attributes present", s.listed);
    println!("  pixel data       {}", or(&s.pixel_data));
    println!("  burned in        {}", or(&s.burned_in));
}

fn profile_of(arg: &str) -> Result<ProfileFile, String> {
    if let Some(p) = ProfileFile::preset(arg) {
        return Ok(p);
    }
    let text = std::fs::read_to_string(arg).map_err(|e| format!("{arg}: {e}"))?;
    ProfileFile::parse(&text).map_err(|e| format!("{arg}: {e}"))
}

fn deid(
    input: &std::path::Path,
    out: &std::path::Path,
    profile: &str,
    key: Option<PathBuf>,
    (pixel_rules, ocr): (Option<PathBuf>, Vec<String>),
) -> ExitCode {
    let made = profile_of(profile).and_then(|p| p.resolve().map_err(|e| e.to_string()));
    let (profile, safe_private) = match made {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let key = match key {
        Some(k) => batch::key_from_file(&k),
        None => batch::random_key(),
    };
    let key = match key {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let rules = match &pixel_rules {
        None => Ok(Vec::new()),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))
            .and_then(|t| {
                tokumei_dicom::pixel::parse_script(&t).map_err(|e| format!("{}: {e}", p.display()))
            }),
    };
    let pixel_rules = match rules {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let total = batch::files_under(input).map(|f| f.len()).unwrap_or(0);
    let bar = crate::synth::progress_bar_of(total as u64, "files");
    let started = std::time::Instant::now();
    let b = Batch {
        profile,
        key,
        safe_private,
        limits: Limits::default(),
        pixel_rules,
        ocr: (!ocr.is_empty()).then(|| {
            let modalities: Vec<&str> = ocr.iter().map(String::as_str).collect();
            tokumei_dicom::ocr::Ocr::new(&modalities, &std::env::temp_dir())
        }),
    };
    let report = batch::run(input, out, &b, &|| bar.inc(1));
    bar.finish_and_clear();
    match report {
        Ok(r) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "written {} · withheld {} · refused {} · not read {} · DICOMDIRs rebuilt {} · {:.0} files/s",
                r.written,
                r.withheld,
                r.refused,
                r.quarantined,
                r.rebuilt,
                r.files.len() as f64 / secs.max(1e-9)
            );
            for f in r
                .files
                .iter()
                .filter(|f| !matches!(f.status, "written" | "rebuilt"))
            {
                println!(
                    "  {} {}: {}",
                    f.status,
                    f.path,
                    f.reason.clone().unwrap_or_default()
                );
            }
            for d in &r.dicomdirs {
                println!(
                    "  DICOMDIR {}: {} files indexed, {} not",
                    d.path,
                    d.indexed,
                    d.not_indexed.len()
                );
                for (path, why) in &d.not_indexed {
                    println!("    not indexed {path}: {why}");
                }
            }
            println!("report: {}", out.join("deid-report.json").display());
            if r.written + r.rebuilt == r.files.len() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(e),
    }
}

fn compare(original: &std::path::Path, output: &std::path::Path, profile: &str) -> ExitCode {
    let made = profile_of(profile).and_then(|p| p.resolve().map_err(|e| e.to_string()));
    let profile = match made {
        Ok((p, _)) => p,
        Err(e) => return fail(e),
    };
    match batch::compare(original, output, &profile) {
        Ok(c) => {
            let share = 100.0 * c.unchanged as f64 / (c.present.max(1)) as f64;
            println!(
                "files {} · Table E.1-1 attributes present {} · left unchanged {} ({share:.1} %) · without output {}",
                c.files, c.present, c.unchanged, c.missing
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
