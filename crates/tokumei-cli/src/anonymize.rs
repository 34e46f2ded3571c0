//! `tokumei anonymize` (generalization and suppression under privacy models, with ARX-comparable metrics)
//! and `tokumei risk` (re-identification risk of a table, unchanged).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use tokumei_anonymize::{
    assess_risk, Aggregate, AnonError, Anonymizer, Attribute, Config, ConfigSpec, Format,
    Hierarchy, Metric, PrivacyModel, Report, RiskSummary, Role, Table,
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
    /// Output folder (created if absent): the transformed table (same name and format as the input),
    /// report.json and report.html.
    #[arg(long, value_parser = crate::out_dir)]
    out: PathBuf,
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
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        return fail(format!("{}: {e}", a.out.display()), 2);
    }
    let name = a
        .input
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("output.csv"));
    let out_table = a.out.join(name);
    if out_table == a.input {
        return fail("the output folder must differ from the input's folder", 2);
    }
    if let Err(e) = outcome.output.write(&out_table, format) {
        return fail(e, 2);
    }
    let json = match serde_json::to_vec_pretty(&outcome.report) {
        Ok(j) => j,
        Err(e) => return fail(e, 2),
    };
    if let Err(e) = std::fs::write(a.out.join("report.json"), json) {
        return fail(e, 2);
    }
    if let Err(e) = std::fs::write(a.out.join("report.html"), report_html(&outcome.report)) {
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bar chart as inline SVG: (label, value) pairs, values in [0, max].
fn bars(title: &str, items: &[(String, f64)], max: f64, fmt: &dyn Fn(f64) -> String) -> String {
    let w = 640.0;
    let row = 22.0;
    let left = 190.0;
    let h = 30.0 + row * items.len() as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}"><text x="0" y="16" font-size="14" font-weight="bold">{t}</text>"#,
        t = esc(title)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 26.0 + row * i as f64;
        let bw = if max > 0.0 {
            (v / max).clamp(0.0, 1.0) * (w - left - 90.0)
        } else {
            0.0
        };
        let _ = write!(
            s,
            r##"<text x="{lx}" y="{ty}" font-size="12" text-anchor="end">{l}</text><rect x="{left}" y="{y}" width="{bw:.1}" height="16" fill="#3b6ea5"/><text x="{vx:.1}" y="{ty}" font-size="12">{v}</text>"##,
            lx = left - 6.0,
            ty = y + 12.0,
            l = esc(label),
            vx = left + bw + 4.0,
            v = esc(&fmt(*v))
        );
    }
    s.push_str("</svg>");
    s
}

fn report_html(r: &Report) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>匿名加工レポート / Anonymization report</title><style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}th{background:#eef}</style></head><body>");
    h.push_str("<h1>匿名加工レポート / Anonymization report</h1>");
    let _ = write!(
        h,
        "<table><tr><th>行数 / Rows</th><td>{}</td></tr><tr><th>削除した記録 / Suppressed records</th><td>{} (上限 / limit {:.1} %)</td></tr><tr><th>等価クラス / Classes</th><td>{} (最小 / smallest {}, 最大 / largest {})</td></tr><tr><th>情報損失 / Information loss</th><td>{:.6} ({})</td></tr><tr><th>プライバシーモデル / Privacy models</th><td>{}</td></tr><tr><th>削除した列 / Removed identifiers</th><td>{}</td></tr><tr><th>要件を満たす / Valid</th><td>{}</td></tr></table>",
        r.rows,
        r.suppressed_records,
        r.suppression_limit * 100.0,
        r.classes,
        r.min_class_size,
        r.max_class_size,
        r.information_loss,
        esc(&r.metric),
        esc(&r.models.join(" + ")),
        esc(&r.removed_columns.join(", ")),
        if r.valid { "はい / yes" } else { "いいえ / no" }
    );
    h.push_str("<h2>一般化レベル / Generalization levels</h2><table><tr><th>準識別子 / Quasi-identifier</th><th>レベル / Level</th><th>高さ / Height</th></tr>");
    for ((q, l), ht) in r
        .quasi_identifiers
        .iter()
        .zip(&r.transformation_vector)
        .zip(&r.heights)
    {
        let _ = write!(h, "<tr><td>{}</td><td>{l}</td><td>{ht}</td></tr>", esc(q));
    }
    h.push_str("</table>");
    // Class size distribution in buckets.
    let buckets: [(u64, u64, &str); 8] = [
        (1, 1, "1"),
        (2, 4, "2–4"),
        (5, 9, "5–9"),
        (10, 19, "10–19"),
        (20, 49, "20–49"),
        (50, 99, "50–99"),
        (100, 999, "100–999"),
        (1000, u64::MAX, "1000+"),
    ];
    let mut items = Vec::new();
    for (lo, hi, label) in buckets {
        let n: u64 = r
            .risk_after
            .class_sizes
            .iter()
            .filter(|(s, _)| *s >= lo && *s <= hi)
            .map(|(_, c)| *c)
            .sum();
        items.push((label.to_string(), n as f64));
    }
    let max = items.iter().map(|x| x.1).fold(0.0, f64::max);
    h.push_str("<h2>等価クラスの大きさの分布 / Class size distribution</h2>");
    h.push_str(&bars(
        "クラス数 / Number of classes by size (after)",
        &items,
        max,
        &|v| format!("{v:.0}"),
    ));
    let risk_items = |x: &RiskSummary| {
        vec![
            (
                "最大再識別リスク / Highest risk".to_string(),
                x.prosecutor_max,
            ),
            (
                "平均再識別リスク / Average risk".to_string(),
                x.prosecutor_avg,
            ),
            ("一意な記録 / Sample uniques".to_string(), x.sample_uniques),
            (format!("閾値超 / Above {}", x.threshold), x.records_at_risk),
        ]
    };
    h.push_str("<h2>再識別リスク / Re-identification risk (prosecutor)</h2>");
    h.push_str(&bars(
        "加工前 / Before",
        &risk_items(&r.risk_before),
        1.0,
        &|v| format!("{v:.4}"),
    ));
    h.push_str(&bars(
        "加工後 / After",
        &risk_items(&r.risk_after),
        1.0,
        &|v| format!("{v:.4}"),
    ));
    let m = &r.metrics;
    let _ = write!(
        h,
        "<h2>有用性指標 / Utility metrics</h2><table><tr><th>Loss (ARX, gs 0.5)</th><td>{:.10}</td></tr><tr><th>非一様エントロピー / Non-uniform entropy</th><td>{:.4} (non-monotonic {:.4})</td></tr><tr><th>Discernibility (DM / DM*)</th><td>{:.0} / {:.0}</td></tr><tr><th>平均クラスサイズ / AECS</th><td>{:.4}</td></tr><tr><th>Precision</th><td>{:.6}</td></tr></table>",
        m.loss, m.entropy, m.entropy_non_monotonic, m.discernibility, m.discernibility_star, m.aecs, m.precision
    );
    if let Some(s) = &r.search {
        let _ = write!(
            h,
            "<p>探索 / Search: {} / {} transformations evaluated, {:.1} ms, {}</p>",
            s.evaluated,
            s.lattice_nodes,
            s.millis,
            if s.optimal {
                "最適 / optimal"
            } else {
                "ヒューリスティック / heuristic"
            }
        );
    }
    h.push_str("</body></html>\n");
    h
}
