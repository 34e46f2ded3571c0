//! `tokumei`: the operator's and provider's command line.

//!
//! One file per command group; each parses its arguments, calls one library function, renders the
//! result and maps errors to exit codes. Shared argument parsers live in `args`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod anonymize;
mod args;
mod audit;
mod backup;
mod demo;
mod dicom;
mod engine;
mod export;
mod feasibility;
mod home;
mod inspect;
mod key;
mod link;
mod linkage;
mod operator;
mod optout;
mod package;
mod provider;
mod quarantine;
mod receive;
mod review;
mod serve;
mod synth;
mod table;
mod user;

#[cfg(test)]
mod help_check;

pub(crate) use args::{at_least_one, out_dir, parse_id, passphrase, share, writer_lock};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for usage errors (bad arguments, unusable output folder).
const EXIT_USAGE: u8 = 2;
/// Exit code for failures while running.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "tokumei",
    version,
    about = "Tokumei (匿名): anonymized and pseudonymized medical information under Japan's Next-Generation Medical Infrastructure Act"
)]
struct Cli {
    /// Log verbosity (error, warn, info, debug, trace); also TOKUMEI_LOG.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Anonymize a table: generalize and suppress quasi-identifiers under privacy models (k-anonymity,
    /// l-diversity, t-closeness, risk thresholds), choosing the transformation with the least information
    /// loss; writes the table, report.json and report.html.
    Anonymize(anonymize::AnonymizeArgs),
    /// Assess the re-identification risk of a table over given quasi-identifiers without changing it.
    Risk(anonymize::RiskArgs),
    /// Generate a synthetic region (modelled on 青森県) with ground truth.
    Synth(synth::SynthArgs),
    /// Run the main job on the embedded default: a synthetic region through the pipeline.
    Demo(demo::DemoArgs),
    /// Read source files (or every file under a folder) and report format, encoding, counts, warnings
    /// and errors with their positions. Exits 1 if any file has an error.
    Inspect(inspect::InspectArgs),
    /// Create an operator home: keys (age receiving key, Ed25519 audit key, a data key wrapped by the
    /// passphrase from TOKUMEI_PASSPHRASE or --passphrase-file), configuration, empty vault and audit log.
    Init(home::InitArgs),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The operator home itself: check keys, the audit log and the stores in one pass; upgrade an
    /// older home in place.
    #[command(subcommand)]
    Home(home::HomeCommand),
    /// Data providers: their signing keys (provider side) and their registration (operator side).
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
    /// Provider side: seal an extract into a package (manifest with hashes and record counts, signed by
    /// the provider, encrypted to the operator).
    Package(package::PackageArgs),
    /// Requests to stop (停止の求め): recorded as keyed hashes of the identifiers only (needs the
    /// passphrase, TOKUMEI_PASSPHRASE).
    #[command(subcommand)]
    Optout(optout::OptoutCommand),
    /// Operator side: receive packages (decrypt, verify signature and hashes, refuse replays and unknown
    /// providers, keep the original, record the receipt); every outcome is audited. Needs a
    /// technician.
    Receive(receive::ReceiveArgs),
    /// Operator users and their roles (technician, committee, researcher, auditor, provider-admin).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Exports from the identified zone: requested by one technician, approved by a second, run
    /// once, encrypted to the named recipient.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Records that could not be read, with file, lines and reason.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCommand),
    /// Link every record of the vault into the master person index (名寄せ; identified zone only);
    /// `link review` for the clerical review of uncertain pairs. Needs a technician.
    Link(link::LinkArgs),
    /// Research applications: template (the file format, documented), submit, list, show,
    /// withdraw.
    #[command(subcommand)]
    Application(review::ApplicationCommand),
    /// The review committee: roster, meetings, conflicts of interest, votes, decisions.
    #[command(subcommand)]
    Committee(review::CommitteeCommand),
    /// Recipient keys: `key new` makes an age key pair for opening releases and exports.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Releases and the provision ledger.
    #[command(subcommand)]
    Release(review::ReleaseCommand),
    /// The re-identification battery on a built release: k and uniqueness, prosecutor / journalist /
    /// marketer risk, a simulated linkage attack with a population register, trajectory uniqueness;
    /// a PASS/FAIL line per threshold and a verdict (`--json` for the figures as JSON). Exits 1
    /// when a threshold is broken.
    ReidTest(review::ReidArgs),
    /// Record linkage (名寄せ): link two CSV tables or deduplicate one under a settings file, and
    /// evaluate the result against ground truth.
    Linkage(linkage::LinkageArgs),
    /// Feasibility counts for clinical trials: how many persons meet a cohort definition, under
    /// disclosure control.
    #[command(subcommand)]
    Feasibility(feasibility::FeasibilityCommand),
    /// Recruitment (被験者募集) for an approved recruitment protocol: each provider's own matching
    /// patients, sealed to its recruitment key, each list a provision ledger entry.
    #[command(subcommand)]
    Recruit(feasibility::RecruitCommand),
    /// DICOM files: `inspect` summarizes them, `deid` de-identifies a folder of them under PS3.15
    /// Annex E (the Basic Profile and its options).
    #[command(subcommand)]
    Dicom(dicom::DicomCommand),
    /// Backups of the whole home in encrypted, deduplicated generations (restic) on a folder or an
    /// SFTP site: init, create, list, verify, prune. Needs a technician and the home passphrase.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Key escrow: split the home's keys among custodians (k of n recover them), or recover them
    /// when the passphrase is lost.
    #[command(subcommand)]
    Escrow(backup::EscrowCommand),
    /// Restore a home at another site from a backup target, with the escrow shares and two
    /// technicians.
    Restore(backup::RestoreArgs),
    /// Serve the public pages (each provider's notice, the register of releases) and their JSON
    /// API over HTTPS, in Japanese and English.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKUMEI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Anonymize(a) => anonymize::run_anonymize(a),
        Command::Risk(a) => anonymize::run_risk(a),
        Command::Synth(a) => synth::run_synth(a),
        Command::Demo(a) => demo::run_demo(a),
        Command::Inspect(a) => inspect::run(&a),
        Command::Init(a) => home::run_init(a),
        Command::Audit(a) => audit::run_audit(a),
        Command::Home(c) => home::run_home(c),
        Command::Provider(a) => provider::run_provider(a),
        Command::Package(a) => package::run_package(a),
        Command::Receive(a) => receive::run_receive(a),
        Command::Optout(a) => optout::run_optout(a),
        Command::User(c) => user::run_user(c),
        Command::Export(c) => export::run_export(c),
        Command::Quarantine(c) => quarantine::run_quarantine(c),
        Command::Link(a) => link::run(a),
        Command::Application(c) => review::run_application(c),
        Command::Committee(c) => review::run_committee(c),
        Command::Key(c) => key::run_key(c),
        Command::Release(c) => review::run_release(c),
        Command::ReidTest(a) => review::run_reid(a),
        Command::Linkage(a) => linkage::run(a),
        Command::Feasibility(c) => feasibility::run(c),
        Command::Recruit(c) => feasibility::run_recruit(c),
        Command::Serve(a) => serve::run(a),
        Command::Dicom(c) => dicom::run(c),
        Command::Backup(c) => backup::run_backup(c),
        Command::Escrow(c) => backup::run_escrow(c),
        Command::Restore(a) => backup::run_restore(a),
    }
}
