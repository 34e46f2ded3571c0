//! `tokumei anonymize` (generalization and suppression under privacy models, with ARX-comparable metrics)
//! and `tokumei risk` (re-identification risk of a table, unchanged).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use tokumei_anonymize::{
    assess_risk, Aggregate, AnonError, Anonymizer, Attribute, Config, ConfigSpec, Format,
    Hierarchy, Metric, PrivacyModel, RiskSummary, Role, Table,
};

/// Arguments of `tokumei anonymize`.
#[derive(Args)]
pub struct AnonymizeArgs {
    /// Input table: CSV (delimiter detected from the header) or Parquet.
    #[arg(long)]
    input: PathBuf,
    /// Configuration (TOML): roles, hierarchies, models, suppression limit, metric.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output folder (absent or empty; written whole or not at all): the transformed table (same
    /// name and format as the input), report.json and report.html.
    #[arg(long, value_parser = crate::out_dir)]
    out: PathBuf,
    /// Replace a non-empty output folder.
    #[arg(long)]
    force: bool,
    /// Quasi-identifier with its hierarchy in ARX's CSV format: COLUMN=HIERARCHY.csv (repeatable).
    #[arg(long = "qi", value_name = "COLUMN=HIERARCHY.csv")]
    qi: Vec<String>,
    /// Sensitive attribute (repeatable); protected by --l / --t.
    #[arg(long)]
    sensitive: Vec<String>,
    /// Direct identifier to remove (repeatable).
    #[arg(long)]
    identifier: Vec<String>,
    /// k-anonymity.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    k: Option<u64>,
    /// Distinct l-diversity of every sensitive attribute.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    l: Option<u64>,
    /// Equal-distance t-closeness of every sensitive attribute.
    #[arg(long)]
    t: Option<f64>,
    /// Largest share of records that may be suppressed (0–1).
    #[arg(long)]
    suppression_limit: Option<f64>,
    /// Utility metric to minimize.
    #[arg(long, value_parser = ["loss", "entropy", "discernibility"])]
    metric: Option<String>,
    /// Apply this transformation instead of searching: COLUMN=LEVEL,... (unnamed quasi-identifiers stay at
    /// level 0).
    #[arg(long, value_delimiter = ',', value_name = "COLUMN=N")]
    levels: Vec<String>,
    /// Prosecutor-risk threshold for counting records at risk in the report.
    #[arg(long)]
    risk_threshold: Option<f64>,
}

/// Arguments of `tokumei risk`.
#[derive(Args)]
pub struct RiskArgs {
    /// Input table: CSV or Parquet.
    #[arg(long)]
    input: PathBuf,
    /// Quasi-identifiers, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    qi: Vec<String>,
    /// Size of the population the table was drawn from (enables the Zayatz population-uniqueness estimate).
    #[arg(long)]
    population_size: Option<u64>,
    /// Prosecutor-risk threshold for counting records at risk.
    #[arg(long, default_value_t = 0.2)]
    threshold: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn fail(e: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(code)
}

/// Runs `tokumei anonymize`.
pub fn run_anonymize(a: AnonymizeArgs) -> ExitCode {
    let started = Instant::now();
    let (table, format) = match Table::read(&a.input) {
        Ok(t) => t,
        Err(e) => return fail(e, 2),
    };
    let config = match build_config(&a, &table) {
        Ok(c) => c,
        Err(e) => return fail(e, 2),
    };
    let anonymizer = match Anonymizer::new(&table, &config) {
        Ok(x) => x,
        Err(e) => return fail(e, 2),
    };
    let outcome = if a.levels.is_empty() {
        anonymizer.run()
    } else {
        let mut named = Vec::new();
        for item in &a.levels {
            let Some((c, l)) = item.split_once('=') else {
                return fail(format!("--levels: `{item}` is not COLUMN=N"), 2);
            };
            let Ok(l) = l.trim().parse::<u32>() else {
                return fail(format!("--levels: `{l}` is not a level"), 2);
            };
            named.push((c.trim().to_string(), l));
        }
        anonymizer.apply_named(&named)
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e @ AnonError::NoSolution(_)) => return fail(e, 1),
        Err(e) => return fail(e, 2),
    };
    let name = a
        .input
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "output.csv".into());
    if inside(&a.input, &a.out) {
        return fail("the output folder must differ from the input's folder", 2);
    }
    if let Err(e) = outcome.write_dir(&a.out, &name, format, a.force) {
        return fail(e, 2);
    }
    let r = &outcome.report;
    println!(
        "transformation {} | loss {:.6} ({}) | suppressed {} of {} | {} classes, smallest {} | highest risk {:.4} → {:.4} | {}{:.2} s",
        r.quasi_identifiers
            .iter()
            .zip(&r.transformation_vector)
            .map(|(q, l)| format!("{q}={l}"))
            .collect::<Vec<_>>()
            .join(","),
        r.information_loss,
        r.metric,
        r.suppressed_records,
        r.rows,
        r.classes,
        r.min_class_size,
        r.risk_before.prosecutor_max,
        r.risk_after.prosecutor_max,
        if matches!(format, Format::Parquet) { "parquet | " } else { "" },
        started.elapsed().as_secs_f64()
    );
    if !r.valid {
        eprintln!("warning: the given transformation does not satisfy the privacy models within the suppression limit");
    }
    ExitCode::SUCCESS
}

fn build_config(a: &AnonymizeArgs, table: &Table) -> Result<Config, AnonError> {
    let mut config = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| AnonError::Io {
                path: path.display().to_string(),
                source: e,
            })?;
            let spec = ConfigSpec::from_toml(&text)
                .map_err(|e| AnonError::Config(format!("{}: {e}", path.display())))?;
            let base = path.parent().unwrap_or(Path::new("."));
            spec.resolve(base, table)?
        }
        None => Config::default(),
    };
    for q in &a.qi {
        let (col, file) = q
            .split_once('=')
            .ok_or_else(|| AnonError::Config(format!("--qi `{q}` is not COLUMN=HIERARCHY.csv")))?;
        let h = Hierarchy::read_arx_csv(Path::new(file))?;
        config.attributes.retain(|x| x.name != col);
        config.attributes.push(Attribute {
            name: col.to_string(),
            role: Role::QuasiIdentifying,
            hierarchy: Some(h),
        });
    }
    for (names, role) in [
        (&a.sensitive, Role::Sensitive),
        (&a.identifier, Role::Identifying),
    ] {
        for s in names {
            config.attributes.retain(|x| &x.name != s);
            config.attributes.push(Attribute {
                name: s.clone(),
                role,
                hierarchy: None,
            });
        }
    }
    if let Some(k) = a.k {
        config
            .models
            .retain(|m| !matches!(m, PrivacyModel::KAnonymity { .. }));
        config.models.push(PrivacyModel::KAnonymity { k });
    }
    let sensitive: Vec<String> = config
        .attributes
        .iter()
        .filter(|x| x.role == Role::Sensitive)
        .map(|x| x.name.clone())
        .collect();
    if (a.l.is_some() || a.t.is_some()) && sensitive.is_empty() {
        return Err(AnonError::Config(
            "--l and --t need at least one --sensitive column".into(),
        ));
    }
    if let Some(l) = a.l {
        for s in &sensitive {
            config.models.push(PrivacyModel::DistinctLDiversity {
                attribute: s.clone(),
                l,
            });
        }
    }
    if let Some(t) = a.t {
        for s in &sensitive {
            config.models.push(PrivacyModel::EqualDistanceTCloseness {
                attribute: s.clone(),
                t,
            });
        }
    }
    if let Some(f) = a.suppression_limit {
        config.suppression_limit = f;
    }
    if let Some(m) = &a.metric {
        config.metric = match m.as_str() {
            "entropy" => Metric::Entropy {
                monotonic: false,
                gs_factor: 0.5,
            },
            "discernibility" => Metric::Discernibility { monotonic: false },
            _ => Metric::Loss {
                gs_factor: 0.5,
                aggregate: Aggregate::GeometricMean,
            },
        };
    }
    if let Some(t) = a.risk_threshold {
        config.risk_threshold = t;
    }
    Ok(config)
}

/// Runs `tokumei risk`.
pub fn run_risk(a: RiskArgs) -> ExitCode {
    let (table, _) = match Table::read(&a.input) {
        Ok(t) => t,
        Err(e) => return fail(e, 2),
    };
    let qis: Vec<&str> =
        a.qi.iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
    match assess_risk(&table, &qis, a.population_size, a.threshold) {
        Ok(r) => {
            if a.json {
                match serde_json::to_string_pretty(&r) {
                    Ok(j) => println!("{j}"),
                    Err(e) => return fail(e, 2),
                }
            } else {
                print!("{}", risk_text(&r));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e, 2),
    }
}

fn risk_text(r: &RiskSummary) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "records                        {}", r.records);
    let _ = writeln!(s, "equivalence classes            {}", r.classes);
    let _ = writeln!(
        s,
        "sample uniques                 {:.2} %",
        r.sample_uniques * 100.0
    );
    let _ = writeln!(s, "prosecutor risk, highest       {:.4}", r.prosecutor_max);
    let _ = writeln!(s, "prosecutor risk, average       {:.4}", r.prosecutor_avg);
    let _ = writeln!(
        s,
        "records above risk {:<12} {:.2} %",
        r.threshold,
        r.records_at_risk * 100.0
    );
    let _ = writeln!(s, "journalist risk, highest       {:.4}", r.journalist_max);
    let _ = writeln!(s, "marketer risk                  {:.4}", r.marketer);
    if let Some(z) = r.population_uniqueness_zayatz {
        let _ = writeln!(s, "population uniques (Zayatz)    {:.2} %", z * 100.0);
    }
    s
}

/// Whether `path` lies in `folder` (compared after resolving both where they exist).
fn inside(path: &Path, folder: &Path) -> bool {
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (p, f) = (resolve(path), resolve(folder));
    p.parent().is_some_and(|parent| parent.starts_with(&f))
}
