//! `tokumei backup`, `tokumei escrow` and `tokumei restore`: generations of the home on a target,
//! key escrow among custodians, and the restore at another site (`tokumei_backup`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokumei_backup::escrow::{self, Custodian};
use tokumei_backup::restore::{self, Technician};
use tokumei_backup::target::Target;
use tokumei_backup::{generation, BackupError};
use tokumei_vault::access::Role;

use crate::operator::{open_home, read_secret, render, report, AuthArgs, Failure};
use crate::{EXIT_FAILURE, EXIT_USAGE};

fn fail(e: BackupError) -> Failure {
    match e {
        BackupError::Vault(v) => crate::operator::fail(v),
        BackupError::Config(_) => (EXIT_USAGE, e.to_string()),
        _ => (EXIT_FAILURE, e.to_string()),
    }
}

/// Where a target's repository is, and how to reach it over SFTP.
#[derive(Args, Clone)]
pub struct Where {
    /// A folder (absolute: a mounted volume, write-once media) or sftp:user@host:/path.
    #[arg(long)]
    repo: String,
    /// SSH port of an SFTP target.
    #[arg(long)]
    ssh_port: Option<u16>,
    /// Private key that signs in to the SFTP target.
    #[arg(long)]
    ssh_identity: Option<PathBuf>,
    /// known_hosts file holding the SFTP target's host key (no other key is accepted).
    #[arg(long)]
    known_hosts: Option<PathBuf>,
}

impl Where {
    fn target(&self, name: &str) -> Target {
        Target {
            name: name.to_string(),
            repo: self.repo.clone(),
            ssh_port: self.ssh_port,
            ssh_identity: self.ssh_identity.clone(),
            known_hosts: self.known_hosts.clone(),
        }
    }
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Add a target to the home and create its repository (a technician, with the home
    /// passphrase).
    Init {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The target's name.
        #[arg(long)]
        target: String,
        #[command(flatten)]
        place: Where,
        /// The relocation site's age recipient: the repository password is sealed to it.
        #[arg(long, requires = "site_key_out")]
        site_recipient: Option<String>,
        /// Where that sealed password is written (to carry to the site).
        #[arg(long)]
        site_key_out: Option<PathBuf>,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Write a generation of the whole home to a target.
    Create(Named),
    /// The generations on a target, by audit sequence.
    List(Named),
    /// Read and authenticate every chunk on a target, and check every generation against the log.
    Verify(Named),
    /// Keep the newest generations by audit sequence; forget the older and remove their data.
    Prune {
        #[command(flatten)]
        named: Named,
        /// Generations kept.
        #[arg(long, value_parser = crate::args::at_least_one)]
        keep: usize,
    },
}

/// A home, one of its targets, who runs the command.
#[derive(Args)]
pub struct Named {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Target name (config/backup.toml).
    #[arg(long)]
    target: String,
    /// Print the result as JSON (docs/json.md).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    auth: AuthArgs,
}

type Opened = (
    tokumei_vault::Home,
    tokumei_vault::access::Session,
    tokumei_vault::home::DataKey,
);

impl Named {
    fn open(&self, action: &str) -> Result<Opened, Failure> {
        technician(&self.home, &self.auth, action)
    }
}

/// Opens the home as a technician and unlocks its data key with the home passphrase.
fn technician(home: &std::path::Path, auth: &AuthArgs, action: &str) -> Result<Opened, Failure> {
    let home = open_home(home)?;
    let pass = auth.passphrase()?;
    let s = crate::operator::session(&home, &auth.user, Some(&pass), action, &[Role::Technician])?;
    let key = home.unlock_data_key(&pass).map_err(crate::operator::fail)?;
    Ok((home, s, key))
}

pub fn run_backup(c: BackupCommand) -> ExitCode {
    match c {
        BackupCommand::Init {
            home,
            target,
            place,
            site_recipient,
            site_key_out,
            auth,
        } => report(
            (|| {
                let (home, s, key) = technician(&home, &auth, "backup.init")?;
                let t = place.target(&target);
                let sealed = generation::init(&home, &s, &key, &t, site_recipient.as_deref())
                    .map_err(fail)?;
                if let (Some(bytes), Some(out)) = (sealed, &site_key_out) {
                    tokumei_fs::write_atomic(out, &bytes)
                        .map_err(|e| (EXIT_FAILURE, e.to_string()))?;
                }
                Ok(t)
            })(),
            |t| {
                println!("target {} ready: {}", t.name, t.repo);
                if let Some(out) = &site_key_out {
                    println!(
                        "  repository password sealed to the site: {}",
                        out.display()
                    );
                }
            },
        ),
        BackupCommand::Create(n) => report(
            (|| {
                let (home, s, key) = n.open("backup.create")?;
                let wait = tokumei_vault::lock::wait_from_env();
                generation::create(&home, &s, &key, &n.target, wait).map_err(fail)
            })(),
            |c| {
                render(n.json, &c, |c| {
                    for a in &c.adopted {
                        println!(
                            "recorded generation {} left by an interrupted run",
                            short(a)
                        );
                    }
                    println!(
                        "generation {} on {}: audit entries 0..{}, {} files, {} bytes, {} bytes added",
                        short(&c.generation.snapshot),
                        c.target,
                        c.head.size,
                        c.summary.total_files_processed,
                        c.summary.total_bytes_processed,
                        c.summary.data_added
                    );
                })
            },
        ),
        BackupCommand::List(n) => report(
            (|| {
                let (home, _, key) = n.open("backup.list")?;
                generation::list(&home, &key, &n.target).map_err(fail)
            })(),
            |gs| {
                render(n.json, &gs, |gs| {
                    for g in gs {
                        let mark = if g.recorded {
                            ""
                        } else {
                            "  (not in the audit log: not a generation)"
                        };
                        println!(
                            "{}  audit entries 0..{}  root {}{mark}",
                            short(&g.snapshot),
                            g.seq,
                            g.root
                        );
                    }
                })
            },
        ),
        BackupCommand::Verify(n) => report(
            (|| {
                let (home, s, key) = n.open("backup.verify")?;
                generation::verify(&home, &s, &key, &n.target).map_err(fail)
            })(),
            |v| {
                render(n.json, &v, |v| {
                    println!(
                        "target {}: every chunk read and authenticated; {} generations match the audit log",
                        v.target,
                        v.generations.len()
                    );
                    for u in &v.unrecorded {
                        println!(
                            "  snapshot {} is not in the audit log: not a generation",
                            short(u)
                        );
                    }
                })
            },
        ),
        BackupCommand::Prune { named: n, keep } => report(
            (|| {
                let (home, s, key) = n.open("backup.prune")?;
                generation::prune(&home, &s, &key, &n.target, keep).map_err(fail)
            })(),
            |p| {
                render(n.json, &p, |p| {
                    println!(
                        "target {}: kept {} generations, forgot {}",
                        p.target,
                        p.kept.len(),
                        p.forgotten.len()
                    );
                })
            },
        ),
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[derive(Subcommand)]
pub enum EscrowCommand {
    /// Split the home's keys among custodians (registered users), k of whom recover them; one
    /// share file per custodian, wrapped by the custodian's own passphrase.
    Split {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Shares needed to recover (k).
        #[arg(long)]
        threshold: u8,
        /// A custodian (repeat; in the order of --custodian-passphrase-file).
        #[arg(long, required = true)]
        custodian: Vec<String>,
        /// The file holding each custodian's passphrase (repeat, same order).
        #[arg(long, required = true)]
        custodian_passphrase_file: Vec<PathBuf>,
        /// Folder the share files are written to.
        #[arg(long)]
        out: PathBuf,
        /// scrypt work factor (log2 N) of each share's wrapping; by default about a second of work.
        #[arg(long)]
        scrypt_log_n: Option<u8>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Recover the home's keys from k shares (the passphrase lost) and wrap the data key under a
    /// new passphrase.
    Recover {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        shares: Shares,
        /// File holding the new home passphrase.
        #[arg(long)]
        new_passphrase_file: PathBuf,
    },
}

/// Share files, each with its custodian's passphrase file.
#[derive(Args)]
pub struct Shares {
    /// A share file (repeat; in the order of --share-passphrase-file).
    #[arg(long, required = true)]
    share: Vec<PathBuf>,
    /// The file holding each share's custodian passphrase (repeat, same order).
    #[arg(long, required = true)]
    share_passphrase_file: Vec<PathBuf>,
}

impl Shares {
    fn recover(&self) -> Result<escrow::Recovered, Failure> {
        if self.share.len() != self.share_passphrase_file.len() {
            return Err((EXIT_USAGE, "one --share-passphrase-file per --share".into()));
        }
        let mut given = Vec::new();
        for (s, p) in self.share.iter().zip(&self.share_passphrase_file) {
            given.push((s.clone(), read_secret(p)?));
        }
        escrow::recover(&given).map_err(fail)
    }
}

pub fn run_escrow(c: EscrowCommand) -> ExitCode {
    match c {
        EscrowCommand::Split {
            home,
            threshold,
            custodian,
            custodian_passphrase_file,
            out,
            scrypt_log_n,
            json,
            auth,
        } => report(
            (|| {
                if custodian.len() != custodian_passphrase_file.len() {
                    return Err((
                        EXIT_USAGE,
                        "one --custodian-passphrase-file per --custodian".into(),
                    ));
                }
                let mut cs = Vec::new();
                for (name, file) in custodian.iter().zip(&custodian_passphrase_file) {
                    cs.push(Custodian {
                        name: name.clone(),
                        passphrase: read_secret(file)?,
                    });
                }
                let (home, s, key) = technician(&home, &auth, "escrow.split")?;
                escrow::split(&home, &s, &key, threshold, &cs, &out, scrypt_log_n).map_err(fail)
            })(),
            |sp| {
                render(json, &sp, |sp| {
                    println!(
                        "escrow {}: {} of {} custodians recover the keys",
                        sp.escrow,
                        sp.threshold,
                        sp.custodians.len()
                    );
                    for (c, f) in sp.custodians.iter().zip(&sp.files) {
                        println!("  {c}: {}", f.display());
                    }
                })
            },
        ),
        EscrowCommand::Recover {
            home,
            shares,
            new_passphrase_file,
        } => report(
            (|| {
                let r = shares.recover()?;
                let pass = read_secret(&new_passphrase_file)?;
                let home = open_home(&home)?;
                let dropped = escrow::rekey(&home, &r, &pass, None).map_err(fail)?;
                Ok((r, dropped))
            })(),
            |(r, dropped)| {
                println!(
                    "escrow {}: keys recovered by {}; the data key is wrapped under the new passphrase",
                    r.escrow,
                    r.custodians.join(", ")
                );
                println!("  split the keys again: the old shares still open the same key");
                if let Some(u) = dropped {
                    println!("  {u}'s key was wrapped by the old passphrase: it is no longer the default user; register a new key for {u}");
                }
            },
        ),
    }
}

/// `tokumei restore --site`.
#[derive(Args)]
pub struct RestoreArgs {
    /// Restore at another site (the only mode: the first site is gone or is not touched).
    #[arg(long, required = true)]
    site: bool,
    /// The new home's folder (absent or empty).
    #[arg(long)]
    into: PathBuf,
    /// The target's name at the first site (recorded in the log).
    #[arg(long, default_value = "site")]
    target: String,
    #[command(flatten)]
    place: Where,
    /// Snapshot id (at least its first 8 hex digits); the newest generation by default.
    #[arg(long)]
    snapshot: Option<String>,
    /// Both technicians approve restoring a generation older than the newest.
    #[arg(long)]
    allow_older: bool,
    #[command(flatten)]
    shares: Shares,
    /// A technician's key file (twice: two different technicians).
    #[arg(long, required = true)]
    technician_key: Vec<PathBuf>,
    /// Each technician's passphrase file (same order).
    #[arg(long, required = true)]
    technician_passphrase_file: Vec<PathBuf>,
    /// File holding the new site's home passphrase.
    #[arg(long)]
    new_passphrase_file: PathBuf,
    /// A signed tree head held outside the home (`tokumei audit checkpoint`).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run_restore(a: RestoreArgs) -> ExitCode {
    report(
        (|| {
            if a.technician_key.len() != 2 || a.technician_passphrase_file.len() != 2 {
                return Err((EXIT_USAGE, "a restore needs two technicians: --technician-key and --technician-passphrase-file twice".into()));
            }
            let keys = a.shares.recover()?;
            let tech = |i: usize| -> Result<Technician, Failure> {
                Ok(Technician {
                    key_file: a.technician_key[i].clone(),
                    passphrase: read_secret(&a.technician_passphrase_file[i])?,
                })
            };
            let checkpoint = match &a.checkpoint {
                Some(p) => Some(
                    tokumei_vault::auditlog::read_checkpoint(p).map_err(crate::operator::fail)?,
                ),
                None => None,
            };
            let req = restore::Request {
                target: a.place.target(&a.target),
                snapshot: a.snapshot.clone(),
                into: a.into.clone(),
                keys: &keys,
                technicians: [tech(0)?, tech(1)?],
                allow_older: a.allow_older,
                new_passphrase: read_secret(&a.new_passphrase_file)?,
                scrypt_log_n: None,
                checkpoint,
            };
            restore::site(&req).map_err(fail)
        })(),
        |r| {
            render(a.json, &r, |r| {
                println!(
                    "restored generation {} (audit entries 0..{}) into {}; approved by {} and {}",
                    short(&r.generation.snapshot),
                    r.generation.seq,
                    r.home.display(),
                    r.approved_by[0],
                    r.approved_by[1]
                );
                println!(
                    "  the audit log verifies and continues at entry {}",
                    r.entries
                );
                if let Some(u) = &r.default_user_dropped {
                    println!("  {u}'s key was wrapped by the first site's passphrase: it is no longer the default user; register a new key for {u}");
                }
                if r.lost_entries > 0 {
                    println!("  {} entries of the checkpoint are later than this generation: lost with the first site", r.lost_entries);
                }
            })
        },
    )
}
