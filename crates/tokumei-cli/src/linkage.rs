//! `tokumei linkage`: record linkage (名寄せ) of CSV tables and its evaluation against ground truth.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use tokumei_linkage::eval::{self, Truth};
use tokumei_linkage::{
    link_with_engine, report, Dataset, LinkType, LinkageError, PairEngine, Settings,
};

/// Arguments of `tokumei linkage`.
#[derive(Args)]
pub struct LinkageArgs {
    #[command(subcommand)]
    command: LinkageCommand,
}

#[derive(Subcommand)]
enum LinkageCommand {
    /// Link two CSV tables (or deduplicate one) under a settings file; writes DIR/pairs.csv,
    /// DIR/clusters.csv and DIR/report.html.
    Run(RunArgs),
    /// Compare pairs.csv (and clusters.csv) with ground truth: precision, recall, F1, cluster metrics.
    Evaluate(EvaluateArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Settings (TOML).
    #[arg(long)]
    settings: PathBuf,
    /// Left table (the only table for dedupe).
    #[arg(long)]
    left: PathBuf,
    /// Right table (link mode).
    #[arg(long)]
    right: Option<PathBuf>,
    /// Output folder (created if absent; an existing file is refused before the run).
    #[arg(long, value_parser = crate::out_dir)]
    out: PathBuf,
    /// Seed of the random pair sample (overrides the settings).
    #[arg(long)]
    seed: Option<u64>,
    /// Ground truth for the report: pairs of ids, or (record_id, entity_id).
    #[arg(long)]
    truth: Option<PathBuf>,
    #[command(flatten)]
    engine: crate::engine::EngineArgs,
}

#[derive(Args)]
struct EvaluateArgs {
    /// pairs.csv written by `linkage run`.
    #[arg(long)]
    pairs: PathBuf,
    /// Ground truth: two id columns (true pairs), or (record_id, entity_id|person_id).
    #[arg(long)]
    truth: PathBuf,
    /// Probability threshold.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// clusters.csv written by `linkage run`, for cluster-level metrics.
    #[arg(long)]
    clusters: Option<PathBuf>,
}

/// Runs `tokumei linkage`.
pub fn run(args: LinkageArgs) -> ExitCode {
    let result = match args.command {
        LinkageCommand::Run(a) => match a.engine.pair_engine(&a.out.join(".engine")) {
            Ok(engine) => run_link(&a, engine.as_deref()),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(crate::EXIT_USAGE);
            }
        },
        LinkageCommand::Evaluate(a) => run_evaluate(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn create(path: &Path) -> Result<BufWriter<std::fs::File>, LinkageError> {
    std::fs::File::create(path)
        .map(BufWriter::new)
        .map_err(|source| LinkageError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> LinkageError + '_ {
    move |source| LinkageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn run_link(a: &RunArgs, engine: Option<&dyn PairEngine>) -> Result<(), LinkageError> {
    let start = Instant::now();
    let settings = Settings::load(&a.settings)?;
    let encoding = settings.encoding.clone().unwrap_or_else(|| "utf-8".into());
    let left = Dataset::read_csv(&a.left, &encoding)?;
    let right = match &a.right {
        Some(p) => Some(Dataset::read_csv(p, &encoding)?),
        None => None,
    };
    let read = start.elapsed();
    let out = link_with_engine(engine, &settings, &left, right.as_ref(), a.seed, &[])?;
    let linked = start.elapsed();
    drop((left, right));
    std::fs::create_dir_all(&a.out).map_err(io_err(&a.out))?;
    let pairs_path = a.out.join("pairs.csv");
    out.write_pairs(create(&pairs_path)?)
        .map_err(io_err(&pairs_path))?;
    let clusters_path = a.out.join("clusters.csv");
    out.write_clusters(create(&clusters_path)?)
        .map_err(io_err(&clusters_path))?;
    let (evaluation, clusters) = match &a.truth {
        Some(t) => {
            let truth = Truth::load(t)?;
            let ev = eval::evaluate_pairs(
                &out.scored_ids(),
                &truth,
                settings.thresholds.match_probability,
            );
            let cm = eval::evaluate_clusters(
                &out.cluster_keys(),
                &truth,
                settings.link_type == LinkType::Link,
            );
            (Some(ev), Some(cm))
        }
        None => (None, None),
    };
    let title = format!(
        "settings: {}",
        a.settings
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let html = report::html(&out, &title, evaluation.as_ref(), clusters.as_ref());
    let report_path = a.out.join("report.html");
    std::fs::write(&report_path, html).map_err(io_err(&report_path))?;
    for r in &out.blocking {
        if r.skipped_blocks > 0 {
            eprintln!(
                "WARNING: blocking rule `{}` skipped {} block(s) over max_block_pairs ({} pairs, largest block {} records); candidate pairs may be missing",
                r.name, r.skipped_blocks, r.skipped_pairs, r.largest_skipped_block
            );
        }
    }
    eprintln!(
        "linked: {} candidate pairs, {} matches, {} in review, {} clusters (read {:.2} s, link {:.2} s, total {:.2} s)",
        out.candidates,
        out.matches,
        out.review,
        out.cluster_count,
        read.as_secs_f64(),
        (linked - read).as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    if let Some(ev) = &evaluation {
        print_pairs(ev);
    }
    if let Some(c) = &clusters {
        print_clusters(c);
    }
    Ok(())
}

fn print_pairs(ev: &eval::PairEvaluation) {
    let a = &ev.at_threshold;
    println!(
        "threshold {:.4}: precision {:.4} recall {:.4} F1 {:.4} (TP {} FP {} FN {}; {} true pairs)",
        a.threshold, a.precision, a.recall, a.f1, a.tp, a.fp, a.fn_, ev.true_pairs
    );
    let b = &ev.best;
    println!(
        "best F1 {:.4} at threshold {:.6} (precision {:.4} recall {:.4})",
        b.f1, b.threshold, b.precision, b.recall
    );
}

fn print_clusters(c: &eval::ClusterMetrics) {
    println!(
        "clusters {}: {} join two or more true entities ({:.4} % of clusters, {:.4} % of multi-record clusters); {} of {} true entities split ({:.4} %)",
        c.clusters,
        c.joining,
        100.0 * c.joining as f64 / c.clusters.max(1) as f64,
        100.0 * c.joining as f64 / c.multi_record_clusters.max(1) as f64,
        c.split,
        c.true_entities_multi,
        100.0 * c.split as f64 / c.true_entities_multi.max(1) as f64
    );
    println!(
        "cluster pairs: precision {:.4} recall {:.4} F1 {:.4}",
        c.precision, c.recall, c.f1
    );
}

fn run_evaluate(a: &EvaluateArgs) -> Result<(), LinkageError> {
    let pairs = eval::read_pairs(&a.pairs)?;
    let truth = Truth::load(&a.truth)?;
    let ev = eval::evaluate_pairs(&pairs, &truth, a.threshold);
    print_pairs(&ev);
    if let Some(c) = &a.clusters {
        let (rows, link) = eval::read_clusters(c)?;
        print_clusters(&eval::evaluate_clusters(&rows, &truth, link));
    }
    Ok(())
}
