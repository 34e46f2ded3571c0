//! `tokumei`: the operator's and provider's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokumei_synth::{Config, Summary, SynthError};

mod anonymize;
mod demo;
mod inspect;
mod link;
mod linkage;
mod operator;
mod review;
mod table;

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
    Synth(SynthArgs),
    /// Run the main job on the embedded default: a synthetic region through the pipeline.
    Demo(DemoArgs),
    /// Read source files (or every file under a folder) and report format, encoding, counts, warnings
    /// and errors with their positions. Exits 1 if any file has an error.
    Inspect(InspectArgs),
    /// Create an operator home: keys (age receiving key, Ed25519 audit key, a data key wrapped by the
    /// passphrase from TOKUMEI_PASSPHRASE or --passphrase-file), configuration, empty vault and audit log.
    Init(InitArgs),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The operator home itself: check keys, the audit log and the stores in one pass; upgrade an
    /// older home in place.
    #[command(subcommand)]
    Home(HomeCommand),
    /// Data providers: their signing keys (provider side) and their registration (operator side).
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Provider side: seal an extract into a package (manifest with hashes and record counts, signed by
    /// the provider, encrypted to the operator).
    Package(PackageArgs),
    /// Requests to stop (停止の求め): recorded as keyed hashes of the identifiers only (needs the
    /// passphrase, TOKUMEI_PASSPHRASE).
    #[command(subcommand)]
    Optout(OptoutCommand),
    /// Operator side: receive packages (decrypt, verify signature and hashes, refuse replays and unknown
    /// providers, keep the original, record the receipt); every outcome is audited. Needs a
    /// technician.
    Receive(ReceiveArgs),
    /// Operator users and their roles (technician, committee, researcher, auditor, provider-admin).
    #[command(subcommand)]
    User(operator::UserCommand),
    /// Exports from the identified zone: requested by one technician, approved by a second, run
    /// once, encrypted to the named recipient.
    #[command(subcommand)]
    Export(operator::ExportCommand),
    /// Records that could not be read, with file, lines and reason.
    #[command(subcommand)]
    Quarantine(operator::QuarantineCommand),
    /// Link every record of the vault into the master person index (名寄せ; identified zone only);
    /// `link review` for the clerical review of uncertain pairs. Needs a technician.
    Link(link::LinkArgs),
    /// Research applications: submit, list, show, withdraw.
    #[command(subcommand)]
    Application(review::ApplicationCommand),
    /// The review committee: roster, meetings, conflicts of interest, votes, decisions.
    #[command(subcommand)]
    Committee(review::CommitteeCommand),
    /// Releases and the provision ledger.
    #[command(subcommand)]
    Release(review::ReleaseCommand),
    /// The re-identification battery on a built release: k and uniqueness, prosecutor / journalist /
    /// marketer risk, a simulated linkage attack with a population register, trajectory uniqueness.
    /// Exits 1 when a threshold is broken.
    ReidTest(review::ReidArgs),
    /// Record linkage (名寄せ): link two CSV tables or deduplicate one under a settings file, and
    /// evaluate the result against ground truth.
    Linkage(linkage::LinkageArgs),
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// Create a provider's signing key pair: DIR/<id>.key (owner-only) and DIR/<id>.pub.
    Init {
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        /// Folder for the key files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a new provider at the operator with its public key and the legally required
    /// details (a technician; an id already registered is refused).
    Add(ProviderAddArgs),
    /// Request that a registered provider's key be replaced (a technician; a second technician
    /// approves with `approve-rotation`).
    RotateKey {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        /// The provider's new public key file.
        #[arg(long)]
        public_key: PathBuf,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Approve a pending key rotation (a technician other than the requester).
    ApproveRotation {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        #[command(flatten)]
        auth: HomeAuth,
    },
}

#[derive(clap::Subcommand)]
enum HomeCommand {
    /// Check the layout version, the keys (the data key unlocks, the receiving identity and the
    /// audit key match what is published, key files owner-only), the audit log (against a
    /// checkpoint, if given), every receipt's files and kept original, stray files and interrupted
    /// operations; exit 1 on any problem.
    Check {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// A signed tree head kept outside the home (`audit checkpoint`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Upgrade a home made by an older Tokumei to the current layout, in place (the home
    /// passphrase authorises it); a home made by a newer one is refused by every command.
    Migrate {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        auth: HomeAuth,
    },
}

fn run_home(c: HomeCommand) -> ExitCode {
    use tokumei_vault::access::Role;
    match c {
        HomeCommand::Check {
            home,
            checkpoint,
            auth,
        } => {
            let result = (|| {
                let home = tokumei_vault::open(&home).map_err(operator::fail)?;
                let s = auth.session(&home, "home.check", &[Role::Technician])?;
                let pass =
                    passphrase(auth.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
                let key = home.unlock_data_key(&pass).map_err(operator::fail)?;
                let checkpoint = match &checkpoint {
                    Some(f) => Some(
                        std::fs::read(f)
                            .map_err(|e| (EXIT_USAGE, format!("{}: {e}", f.display())))
                            .and_then(|b| {
                                tokumei_audit::read_checkpoint(&b)
                                    .map_err(|e| (EXIT_USAGE, e.to_string()))
                            })?,
                    ),
                    None => None,
                };
                let report = tokumei_vault::check::check(&home, &key, checkpoint.as_ref())
                    .map_err(operator::fail)?;
                let problems = report.problems().count();
                s.audit(
                    &home,
                    "home.check",
                    "operator home",
                    &format!("{problems} problem(s)"),
                    None,
                )
                .map_err(operator::fail)?;
                Ok(report)
            })();
            match result {
                Ok(report) => {
                    for f in &report.findings {
                        println!(
                            "{} {}",
                            if f.problem { "PROBLEM" } else { "ok     " },
                            f.what
                        );
                    }
                    let n = report.problems().count();
                    println!("{n} problem(s)");
                    if n == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(EXIT_FAILURE)
                    }
                }
                Err((code, e)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(code)
                }
            }
        }
        HomeCommand::Migrate { home, auth } => operator::report(
            (|| {
                // The passphrase authorises a migration: no session opens on a home whose users
                // are not yet signed.
                let home = tokumei_vault::open(&home).map_err(operator::fail)?;
                let pass =
                    passphrase(auth.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
                let key = home.unlock_data_key(&pass).map_err(operator::fail)?;
                tokumei_vault::home::migrate(&home, &key)
                    .map(|(_, steps)| steps)
                    .map_err(operator::fail)
            })(),
            |steps| {
                if steps.is_empty() {
                    println!("the home is at the current layout; nothing to do");
                }
                for step in steps {
                    println!("migrated: layout {step}");
                }
            },
        ),
    }
}

/// How a command that changes the home is authorised: the home passphrase and a user's key.
#[derive(clap::Args)]
struct HomeAuth {
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: operator::UserKeyArgs,
}

impl HomeAuth {
    /// Opens a session with one of `roles` on the home.
    fn session(
        &self,
        home: &tokumei_vault::Home,
        action: &str,
        roles: &[tokumei_vault::access::Role],
    ) -> Result<tokumei_vault::access::Session, operator::Failure> {
        let pass = passphrase(self.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
        let session = operator::session(home, &self.user, Some(&pass), action, roles)?;
        // The passphrase also unlocks the operator's key (it signs users, providers and the log).
        home.unlock_data_key(&pass).map_err(operator::fail)?;
        Ok(session)
    }
}

/// Takes the home's writer lock for a command of the binary, saying so when it has to wait.
pub(crate) fn writer_lock(
    home: &tokumei_vault::Home,
    command: &str,
) -> Result<tokumei_vault::lock::WriterLock, operator::Failure> {
    tokumei_vault::lock::writer(
        home,
        command,
        tokumei_vault::lock::wait_from_env(),
        &|holder| eprintln!("waiting for another command to finish changing the home ({holder})"),
    )
    .map_err(operator::fail)
}

/// An output folder from the command line: absent, or a folder (an existing file exits 2 before
/// any work is done).
pub(crate) fn out_dir(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.exists() && !p.is_dir() {
        return Err("exists and is not a folder".into());
    }
    Ok(p)
}

/// A count of at least 1 (k, l) from the command line.
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}

/// A share between 0 and 1 from the command line.
pub(crate) fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err("expected a number from 0 to 1".into()),
    }
}

/// An id from the command line, checked against the one grammar (a bad one exits 2).
pub(crate) fn parse_id(s: &str) -> Result<String, String> {
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Provider, s)
        .map(str::to_string)
        .map_err(|e| e.to_string().replacen("provider id", "id", 1))
}

#[derive(clap::Args)]
struct ProviderAddArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Provider id.
    #[arg(long, value_parser = parse_id)]
    id: String,
    /// The provider's public key file (<id>.pub).
    #[arg(long)]
    public_key: PathBuf,
    /// A TOML file with the details below (keys name, address, representative, acquisition,
    /// notice_filing, notice_start); a flag given too overrides the file.
    #[arg(long)]
    details: Option<PathBuf>,
    /// Name (名称).
    #[arg(long)]
    name: Option<String>,
    /// Address (住所).
    #[arg(long)]
    address: Option<String>,
    /// Representative (代表者).
    #[arg(long)]
    representative: Option<String>,
    /// How the provider acquired the data (取得の経緯).
    #[arg(long)]
    acquisition: Option<String>,
    /// Reference of the notice filing with the minister.
    #[arg(long)]
    notice_filing: Option<String>,
    /// Date the notice to patients began (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    notice_start: Option<String>,
    #[command(flatten)]
    auth: HomeAuth,
}

/// A YYYY-MM-DD date from the command line (a bad one exits 2).
fn parse_date(s: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| "expected a date as YYYY-MM-DD".to_string())
}

/// A provider's details in a TOML file (`provider add --details`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderDetails {
    name: Option<String>,
    address: Option<String>,
    representative: Option<String>,
    acquisition: Option<String>,
    notice_filing: Option<String>,
    notice_start: Option<String>,
}

#[derive(clap::Args)]
struct PackageArgs {
    /// The provider's signing key (<id>.key); the provider id is its file stem unless --provider.
    #[arg(long)]
    provider_key: PathBuf,
    /// Provider id (default: the key file's stem).
    #[arg(long, value_parser = parse_id)]
    provider: Option<String>,
    /// The operator's age recipient (age1...), or a file holding it (the home's operator.recipient).
    #[arg(long)]
    to: String,
    /// Folder of the extract.
    #[arg(long = "in")]
    input: PathBuf,
    /// Package file to write.
    #[arg(long)]
    out: PathBuf,
    /// Extraction date (YYYY-MM-DD; default today).
    #[arg(long, value_parser = parse_date)]
    extracted_on: Option<String>,
    /// First day covered (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    period_from: Option<String>,
    /// Last day covered (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    period_to: Option<String>,
    /// The provider's notice filing reference.
    #[arg(long)]
    notice_filing: Option<String>,
    /// Date the provider's notice to patients began (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    notice_start: Option<String>,
}

#[derive(Subcommand)]
enum OptoutCommand {
    /// Record one request, by provider + local patient id or by insurance identifiers, and purge the
    /// patient's records already held. Needs a technician.
    Add(Box<OptoutAddArgs>),
    /// Record every request of a CSV file (header: provider_id, local_patient_id, insurer_number,
    /// symbol, number, branch, requester, received_on, confirmed_on) and purge the records already
    /// held. Needs a technician.
    Import {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The CSV file.
        file: PathBuf,
        /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: operator::UserKeyArgs,
    },
    /// Purge held records of every patient in the registry (recording a request does this already;
    /// run it to finish an interrupted purge).
    Purge {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: operator::UserKeyArgs,
    },
}

#[derive(clap::Args)]
struct OptoutAddArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Provider of the local patient id.
    #[arg(long, requires = "patient_id")]
    provider: Option<String>,
    /// The provider's local patient id.
    #[arg(long, requires = "provider")]
    patient_id: Option<String>,
    /// 保険者番号.
    #[arg(long, requires = "number", conflicts_with = "patient_id")]
    insurer: Option<String>,
    /// 記号.
    #[arg(long)]
    symbol: Option<String>,
    /// 番号.
    #[arg(long, requires = "insurer")]
    number: Option<String>,
    /// 枝番.
    #[arg(long)]
    branch: Option<String>,
    /// Who asked: self, guardian or bereaved.
    #[arg(long)]
    requester: String,
    /// Date the request was received (YYYY-MM-DD).
    #[arg(long)]
    received: String,
    /// Date its receipt was confirmed to the requester (YYYY-MM-DD).
    #[arg(long)]
    confirmed: Option<String>,
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: operator::UserKeyArgs,
}

#[derive(clap::Args)]
struct ReceiveArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Package files.
    #[arg(required = true)]
    packages: Vec<PathBuf>,
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: operator::UserKeyArgs,
}

#[derive(clap::Args)]
struct InitArgs {
    /// Folder of the new home (absent or empty).
    #[arg(long, value_parser = out_dir)]
    home: PathBuf,
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Name of the first technician (its key is kept in the home, wrapped by the passphrase).
    #[arg(long, default_value = "operator")]
    user: String,
    /// scrypt work factor (log2 N) of the passphrase wrapping; by default about one second of work.
    #[arg(long, hide = true)]
    scrypt_log_n: Option<u8>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the whole log; exits 0 only on an intact log, 1 naming the first bad entry otherwise.
    Verify {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// A signed tree head kept outside the home (`audit checkpoint`, or a provider's export):
        /// the log must extend it, so entries removed from its end or rewritten are caught.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Write the last tree head the operator signed (JSON) to keep outside the home, for
    /// `audit verify --checkpoint`; the log is verified first.
    Checkpoint {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Output file (not overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Export one provider's entries with inclusion proofs and the signed tree head (JSON).
    Export {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = crate::parse_id)]
        provider: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Verify a provider export with nothing but the operator's audit public key.
    VerifyExport {
        /// The export (JSON).
        export: PathBuf,
        /// File holding the operator's audit public key (hex), e.g. H/audit.pub.
        #[arg(long)]
        operator_key: PathBuf,
    },
}

#[derive(clap::Args)]
struct InspectArgs {
    /// Files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Issues printed per file (all are counted).
    #[arg(long, default_value_t = 50)]
    max_issues: usize,
}

#[derive(clap::Args)]
struct SynthArgs {
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
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Working folder of the demo (replaced if it holds an earlier demo).
    #[arg(long, default_value = "tokumei-demo")]
    dir: PathBuf,
    /// Number of synthetic people.
    #[arg(long, default_value_t = 20_000)]
    people: u64,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
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
        Command::Synth(a) => run_synth(a),
        Command::Demo(a) => run_demo(a),
        Command::Inspect(a) => inspect::run(&a.paths, a.max_issues),
        Command::Init(a) => run_init(a),
        Command::Audit(a) => run_audit(a),
        Command::Home(c) => run_home(c),
        Command::Provider(a) => run_provider(a),
        Command::Package(a) => run_package(a),
        Command::Receive(a) => run_receive(a),
        Command::Optout(a) => run_optout(a),
        Command::User(c) => operator::run_user(c),
        Command::Export(c) => operator::run_export(c),
        Command::Quarantine(c) => operator::run_quarantine(c),
        Command::Link(a) => link::run(a),
        Command::Application(c) => review::run_application(c),
        Command::Committee(c) => review::run_committee(c),
        Command::Release(c) => review::run_release(c),
        Command::ReidTest(a) => review::run_reid(a),
        Command::Linkage(a) => linkage::run(a),
    }
}

fn run_optout(a: OptoutCommand) -> ExitCode {
    use tokumei_vault::access::Role;
    use tokumei_vault::optout::{parse_csv, IndexKey, Request, Requester, Subject};
    let (home_path, pass_file, user) = match &a {
        OptoutCommand::Add(x) => (x.home.clone(), x.passphrase_file.clone(), x.user.clone()),
        OptoutCommand::Import {
            home,
            passphrase_file,
            user,
            ..
        }
        | OptoutCommand::Purge {
            home,
            passphrase_file,
            user,
        } => (home.clone(), passphrase_file.clone(), user.clone()),
    };
    let result = (|| -> Result<(usize, tokumei_vault::purge::PurgeReport), (u8, String)> {
        let pass = passphrase(pass_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
        let home = tokumei_vault::open(&home_path).map_err(operator::fail)?;
        let action = match &a {
            OptoutCommand::Purge { .. } => "optout.purge",
            _ => "optout.add",
        };
        let session = operator::session(&home, &user, Some(&pass), action, &[Role::Technician])?;
        let lock = writer_lock(&home, action)?;
        let data_key = home.unlock_data_key(&pass).map_err(operator::fail)?;
        let key = IndexKey::derive(&data_key);
        let requests = match &a {
            OptoutCommand::Add(x) => {
                let subject = match (&x.provider, &x.patient_id, &x.insurer, &x.number) {
                    (Some(p), Some(l), _, _) => Subject::Patient {
                        provider_id: p.clone(),
                        local_patient_id: l.clone(),
                    },
                    (_, _, Some(i), Some(n)) => Subject::Insured {
                        insurer_number: i.clone(),
                        symbol: x.symbol.clone(),
                        number: n.clone(),
                        branch: x.branch.clone(),
                    },
                    _ => return Err((
                        EXIT_USAGE,
                        "name the patient: --provider and --patient-id, or --insurer and --number"
                            .into(),
                    )),
                };
                let requester = Requester::parse(&x.requester).ok_or((
                    EXIT_USAGE,
                    "--requester is self, guardian or bereaved".to_string(),
                ))?;
                vec![Request {
                    subject,
                    requester,
                    received_on: x.received.clone(),
                    confirmed_on: x.confirmed.clone(),
                }]
            }
            OptoutCommand::Import { file, .. } => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| (EXIT_FAILURE, format!("{}: {e}", file.display())))?;
                parse_csv(&text).map_err(operator::fail)?
            }
            OptoutCommand::Purge { .. } => Vec::new(),
        };
        let catalog = home.catalog().map_err(operator::fail)?;
        let mut log = home.audit().map_err(operator::fail)?;
        for r in &requests {
            let id = catalog.add_optout(&key, r).map_err(operator::fail)?;
            let provider = match &r.subject {
                Subject::Patient { provider_id, .. } => Some(provider_id.as_str()),
                Subject::Insured { .. } => None,
            };
            log.append(tokumei_audit::Entry::now(
                &session.user,
                session.role.code(),
                "optout.add",
                &format!("request {id} ({})", r.requester.code()),
                "ok",
                provider,
            ))
            .map_err(|e| (EXIT_FAILURE, e.to_string()))?;
        }
        drop(log);
        // Held records of the patients named: purged now (the whole registry for `purge`).
        let indexes: std::collections::HashSet<String> = match &a {
            OptoutCommand::Purge { .. } => catalog.optout_indexes().map_err(operator::fail)?,
            _ => requests.iter().map(|r| key.index(&r.subject)).collect(),
        };
        let purged =
            tokumei_link::purge::purge_registry(&home, &session, &data_key, &indexes, &lock)
                .map_err(link::fail)?;
        Ok((requests.len(), purged))
    })();
    match result {
        Ok((n, purged)) => {
            if !matches!(a, OptoutCommand::Purge { .. }) {
                println!("{n} request(s) to stop recorded");
            }
            println!(
                "{} record(s) and {} event(s) already held were purged from {} package(s)",
                purged.records,
                purged.events,
                purged.touched.len()
            );
            ExitCode::SUCCESS
        }
        Err((code, e)) => {
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}

fn run_provider(a: ProviderCommand) -> ExitCode {
    match a {
        ProviderCommand::Init { id, out } => {
            match tokumei_vault::package::provider_init(&id, &out) {
                Ok((key, public)) => {
                    println!("provider key: {} (keep it secret)", key.display());
                    println!(
                        "public key:   {} (give it to the operator)",
                        public.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        ProviderCommand::Add(a) => operator::report(provider_add(&a), |()| {
            println!("provider {} registered", a.id)
        }),
        ProviderCommand::RotateKey {
            home,
            id,
            public_key,
            auth,
        } => operator::report(
            (|| {
                let home = tokumei_vault::open(&home).map_err(operator::fail)?;
                let session = auth.session(
                    &home,
                    "provider.rotate",
                    &[tokumei_vault::access::Role::Technician],
                )?;
                let key = std::fs::read_to_string(&public_key)
                    .map_err(|e| (EXIT_USAGE, format!("{}: {e}", public_key.display())))?;
                tokumei_vault::provider::request_rotation(&home, &session, &id, key.trim())
                    .map_err(operator::fail)
            })(),
            |()| {
                println!("key rotation of provider {id} requested; a second technician approves it")
            },
        ),
        ProviderCommand::ApproveRotation { home, id, auth } => operator::report(
            (|| {
                let home = tokumei_vault::open(&home).map_err(operator::fail)?;
                let session = auth.session(
                    &home,
                    "provider.rotate",
                    &[tokumei_vault::access::Role::Technician],
                )?;
                tokumei_vault::provider::approve_rotation(&home, &session, &id)
                    .map_err(operator::fail)
            })(),
            |()| println!("provider {id}: new key in force"),
        ),
    }
}

fn provider_add(a: &ProviderAddArgs) -> Result<(), operator::Failure> {
    let usage = |e: String| (EXIT_USAGE, e);
    let home = tokumei_vault::open(&a.home).map_err(operator::fail)?;
    let session = a.auth.session(
        &home,
        "provider.add",
        &[tokumei_vault::access::Role::Technician],
    )?;
    let public = std::fs::read_to_string(&a.public_key)
        .map_err(|e| usage(format!("{}: {e}", a.public_key.display())))?;
    let file = match &a.details {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).map_err(|e| usage(format!("{}: {e}", f.display())))?;
            toml::from_str::<ProviderDetails>(&text)
                .map_err(|e| usage(format!("{}: {e}", f.display())))?
        }
        None => ProviderDetails::default(),
    };
    let need = |flag: &Option<String>, file: Option<String>, what: &str| {
        flag.clone()
            .or(file)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                usage(format!(
                    "the provider's {what} is required (--{what} or `{what}` in --details)"
                ))
            })
    };
    let provider = tokumei_vault::catalog::Provider {
        id: a.id.clone(),
        public_key: public.trim().to_string(),
        name: need(&a.name, file.name, "name")?,
        address: need(&a.address, file.address, "address")?,
        representative: need(&a.representative, file.representative, "representative")?,
        acquisition: need(&a.acquisition, file.acquisition, "acquisition")?,
        notice_filing: a.notice_filing.clone().or(file.notice_filing),
        notice_start: a.notice_start.clone().or(file.notice_start),
    };
    tokumei_vault::provider::register(&home, &session, &provider).map_err(operator::fail)
}

fn run_package(a: PackageArgs) -> ExitCode {
    if a.out.is_dir() {
        eprintln!(
            "error: --out {} is a folder; the package is written to a file",
            a.out.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let result = (|| -> Result<tokumei_vault::package::Manifest, String> {
        let text = std::fs::read_to_string(&a.provider_key)
            .map_err(|e| format!("{}: {e}", a.provider_key.display()))?;
        let key = tokumei_audit::key_from_hex(&text).map_err(|e| e.to_string())?;
        let provider = a.provider.clone().unwrap_or_else(|| {
            a.provider_key
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        });
        let opts = tokumei_vault::package::PackageOptions {
            extracted_on: a.extracted_on.clone(),
            period_from: a.period_from.clone(),
            period_to: a.period_to.clone(),
            notice_filing: a.notice_filing.clone(),
            notice_start: a.notice_start.clone(),
            package_id: None,
            exclude_extensions: Vec::new(),
        };
        // The recipient is the `age1…` text or a file holding it (the home's operator.recipient).
        let to = match std::fs::read_to_string(&a.to) {
            Ok(text) if std::path::Path::new(&a.to).is_file() => text.trim().to_string(),
            _ => a.to.clone(),
        };
        tokumei_vault::package::package(&key, &provider, &to, &a.input, &a.out, &opts)
            .map_err(|e| e.to_string())
    })();
    match result {
        Ok(m) => {
            println!(
                "package {} of {}: {} files, {} records, sealed to {}",
                m.package_id,
                m.provider_id,
                m.files.len(),
                m.records(),
                a.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run_receive(a: ReceiveArgs) -> ExitCode {
    use tokumei_vault::receive::{Outcome, Stage};
    let prepared = (|| -> Result<_, operator::Failure> {
        let pass = passphrase(a.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
        let home = tokumei_vault::open(&a.home).map_err(operator::fail)?;
        let session = operator::session(
            &home,
            &a.user,
            Some(&pass),
            "receive",
            &[tokumei_vault::access::Role::Technician],
        )?;
        let key = home.unlock_data_key(&pass).map_err(operator::fail)?;
        Ok((home, session, key))
    })();
    let (home, session, key) = match prepared {
        Ok(x) => x,
        Err((code, e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(code);
        }
    };
    let mut failed = 0;
    for p in &a.packages {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} {msg} [{bar:30}] {pos}/{len}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let progress = |stage: Stage| match stage {
            Stage::Opening { bytes } => {
                bar.set_message(format!("{name}: decrypting and checking {bytes} bytes"));
                bar.tick();
            }
            Stage::Reading { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(format!("{name}: reading files"));
            }
            Stage::Landing => bar.set_message(format!("{name}: writing into the vault")),
            Stage::Waiting => bar.set_message(format!(
                "{name}: waiting for another command to finish changing the home"
            )),
        };
        let outcome =
            tokumei_vault::receive::receive_with(&home, p, &session.user, &key, &progress);
        bar.finish_and_clear();
        match outcome {
            Ok(Outcome::Received {
                manifest, report, ..
            }) => {
                println!(
                    "{}: received package {} of {} ({} files, {} records in the manifest): {} \
                     records stored, {} quarantined, {} refused by opt-out, {} refused by the notice \
                     period",
                    p.display(),
                    manifest.package_id,
                    manifest.provider_id,
                    manifest.files.len(),
                    manifest.records(),
                    report.stored,
                    report.quarantined,
                    report.refusals.opted_out,
                    report.refusals.too_early
                );
                for f in &report.mismatched {
                    println!(
                        "  warning: {f}: the records read differ from the count in the manifest"
                    );
                }
            }
            Ok(Outcome::AlreadyReceived {
                package_id,
                received_at,
            }) => println!(
                "{}: package {package_id} was already received on {received_at}; nothing to do",
                p.display()
            ),
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The passphrase from a file or TOKUMEI_PASSPHRASE.
fn passphrase(file: Option<&PathBuf>) -> Result<String, String> {
    match file {
        Some(f) => std::fs::read_to_string(f)
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("cannot read the passphrase file {}: {e}", f.display())),
        None => std::env::var("TOKUMEI_PASSPHRASE").map_err(|_| {
            "no passphrase: set TOKUMEI_PASSPHRASE or pass --passphrase-file".to_string()
        }),
    }
}

fn run_init(a: InitArgs) -> ExitCode {
    let pass = match passphrase(a.passphrase_file.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match tokumei_vault::home::init_with_user(&a.home, &pass, a.scrypt_log_n, &a.user) {
        Ok(s) => {
            println!("operator home created at {}", a.home.display());
            println!(
                "  first technician:                        {} (key in keys/users/, opened with the passphrase)",
                a.user
            );
            println!("  receiving recipient (give to providers): {}", s.recipient);
            println!(
                "  audit public key (publish):              {}",
                s.audit_public_key
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                tokumei_vault::VaultError::Exists(_) | tokumei_vault::VaultError::Passphrase(_) => {
                    ExitCode::from(EXIT_USAGE)
                }
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
    }
}

/// A provider's audit entries: for a technician, an auditor, or that provider's own admin.
fn audit_export(
    home: &std::path::Path,
    provider: &str,
    out: &std::path::Path,
    auth: &HomeAuth,
) -> Result<usize, operator::Failure> {
    use tokumei_vault::access::Role;
    let home = tokumei_vault::open(home).map_err(operator::fail)?;
    let session = auth.session(
        &home,
        "audit.export",
        &[Role::Technician, Role::Auditor, Role::ProviderAdmin],
    )?;
    if session.role == Role::ProviderAdmin && session.provider_id.as_deref() != Some(provider) {
        session
            .audit(
                &home,
                "audit.export",
                "another provider's entries",
                "denied",
                None,
            )
            .map_err(operator::fail)?;
        return Err((
            EXIT_FAILURE,
            "denied: a provider's admin exports its own provider's entries only".into(),
        ));
    }
    let key = home.audit_public_key().map_err(operator::fail)?;
    let export = tokumei_audit::export_provider(&home.audit_dir(), &key, provider)
        .map_err(|e| (EXIT_FAILURE, e.to_string()))?;
    let json = serde_json::to_vec_pretty(&export).map_err(|e| (EXIT_FAILURE, e.to_string()))?;
    std::fs::write(out, json).map_err(|e| (EXIT_FAILURE, format!("{}: {e}", out.display())))?;
    session
        .audit(
            &home,
            "audit.export",
            &format!("{} entries", export.entries.len()),
            "ok",
            Some(provider),
        )
        .map_err(operator::fail)?;
    Ok(export.entries.len())
}

fn run_audit(a: AuditCommand) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_FAILURE)
    };
    match a {
        AuditCommand::Verify { home, checkpoint } => {
            let result = (|| -> Result<tokumei_audit::Verified, String> {
                let home = tokumei_vault::open(&home).map_err(|e| e.to_string())?;
                let checkpoint = match &checkpoint {
                    Some(f) => {
                        let bytes =
                            std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
                        Some(tokumei_audit::read_checkpoint(&bytes).map_err(|e| e.to_string())?)
                    }
                    None => None,
                };
                home.verify_audit(checkpoint.as_ref())
                    .map_err(|e| format!("audit log does not verify: {e}"))
            })();
            match result {
                Ok(v) => {
                    println!(
                        "audit log intact: {} entries, tree head {}{}",
                        v.entries,
                        v.head.map(|h| h.root).unwrap_or_default(),
                        if checkpoint.is_some() {
                            " (extends the checkpoint)"
                        } else {
                            ""
                        }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        AuditCommand::Checkpoint { home, out } => {
            let result = (|| -> Result<tokumei_audit::SignedHead, String> {
                let home = tokumei_vault::open(&home).map_err(|e| e.to_string())?;
                let head = home
                    .verify_audit(None)
                    .map_err(|e| format!("audit log does not verify: {e}"))?
                    .operator_head
                    .ok_or("the audit log has no head signed by the operator yet")?;
                let json = serde_json::to_vec_pretty(&head).map_err(|e| e.to_string())?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&out)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &json))
                    .map_err(|e| format!("{}: {e}", out.display()))?;
                Ok(head)
            })();
            match result {
                Ok(h) => {
                    println!(
                        "checkpoint of {} entries written to {} (keep it outside the home)",
                        h.size,
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        AuditCommand::Export {
            home,
            provider,
            out,
            auth,
        } => operator::report(audit_export(&home, &provider, &out, &auth), |n| {
            println!("{n} entries of {provider} exported to {}", out.display())
        }),
        AuditCommand::VerifyExport {
            export,
            operator_key,
        } => {
            let result = (|| -> Result<usize, String> {
                let text = std::fs::read_to_string(&operator_key)
                    .map_err(|e| format!("{}: {e}", operator_key.display()))?;
                let key = tokumei_audit::public_key_from_hex(&text).map_err(|e| e.to_string())?;
                let bytes =
                    std::fs::read(&export).map_err(|e| format!("{}: {e}", export.display()))?;
                let export: tokumei_audit::ProviderExport =
                    serde_json::from_slice(&bytes).map_err(|e| format!("not an export: {e}"))?;
                tokumei_audit::verify_export(&export, &key).map_err(|e| e.to_string())
            })();
            match result {
                Ok(n) => {
                    println!("export verified: {n} entries proven in the operator's signed log");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("export does not verify: {e}")),
            }
        }
    }
}

fn report(e: &SynthError) -> ExitCode {
    eprintln!("error: {e}");
    if e.is_usage() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// A progress bar over `total` items named `what`.
fn progress_bar_of(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{elapsed_precise}} [{{bar:40}}] {{human_pos}}/{{human_len}} {what} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {human_pos}/{human_len} people ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn generate(config: &Config) -> Result<(Summary, f64), SynthError> {
    let bar = progress_bar(config.people);
    let started = Instant::now();
    let summary = tokumei_synth::generate(config, &|n| bar.set_position(n));
    bar.finish_and_clear();
    Ok((summary?, started.elapsed().as_secs_f64()))
}

fn print_summary(out: &std::path::Path, s: &Summary, secs: f64) {
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

fn run_synth(a: SynthArgs) -> ExitCode {
    let config = Config {
        people: a.people,
        seed: a.seed,
        start: a.start,
        months: a.months,
        out: a.out,
        force: a.force,
        noise: a.noise,
    };
    match generate(&config) {
        Ok((s, secs)) => {
            print_summary(&config.out, &s, secs);
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

fn run_demo(a: DemoArgs) -> ExitCode {
    // Replace the folder only if it is empty or holds an earlier demo.
    let earlier_demo = a.dir.join("region").join("summary.json").exists();
    let empty = std::fs::read_dir(&a.dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true);
    if !earlier_demo && !empty {
        eprintln!(
            "error: {} exists and does not hold an earlier demo; choose another --dir",
            a.dir.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    println!(
        "tokumei demo: step 1/7, synthetic region ({} people, seed {})",
        a.people, a.seed
    );
    let config = Config {
        people: a.people,
        seed: a.seed,
        out: a.dir.join("region"),
        force: true,
        ..Config::default()
    };
    match generate(&config) {
        Ok((s, secs)) => {
            print_summary(&config.out, &s, secs);
            if let Err(e) = demo::pipeline(&a.dir, &config.out) {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
            println!(
                "demo finished: the region is in {}, the operator home in {}",
                config.out.display(),
                a.dir.join("home").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}
