//! `tokumei link`: links every record of the vault into the master person index (名寄せ), in the
//! identified zone only; `tokumei link review` is the clerical review of uncertain pairs.
//!
//! Each run links all records held (the engine's Japanese settings by default), keeps earlier person
//! ids where the links hold (so the index grows as packages arrive and a person keeps their id),
//! applies the technicians' review decisions, counts merges and splits, and audits them. A request to
//! stop applies to the person: every record linked to an opted-out record is purged, and the person's
//! fingerprint (a keyed hash of the normalized reading and birth date) is kept so that records of the
//! person arriving later from other providers are purged when they are linked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokumei_linkage::{Dataset, Settings};
use tokumei_model::identity::IdentityRecord;
use tokumei_vault::access::{Role, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::mpi::{assign, Mpi, ReviewPair};
use tokumei_vault::optout::{person_fingerprints, IndexKey};
use tokumei_vault::Home;

use crate::operator::{fail, report, session, Failure, UserKeyArgs};
use crate::{passphrase, EXIT_FAILURE, EXIT_USAGE};

/// The Japanese identity settings shipped with the engine.
pub const JAPANESE: &str = include_str!("../../../settings/linkage/japanese.toml");

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LinkArgs {
    #[command(subcommand)]
    sub: Option<LinkSub>,
    /// Operator home.
    #[arg(long)]
    home: Option<PathBuf>,
    /// Linkage settings (default: the Japanese identity settings shipped with Tokumei).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: UserKeyArgs,
}

#[derive(Subcommand)]
enum LinkSub {
    /// The clerical review queue: list pending pairs side by side, or accept / reject one. Accepted
    /// pairs are joined at the next run.
    Review {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Accept pair N (the same person).
        #[arg(long, conflicts_with = "reject")]
        accept: Option<u64>,
        /// Reject pair N (different persons).
        #[arg(long)]
        reject: Option<u64>,
        /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: UserKeyArgs,
    },
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Records linked.
    pub records: usize,
    /// Persons in the index.
    pub persons: usize,
    /// Changes against the earlier index.
    pub changes: tokumei_vault::mpi::Changes,
    /// Pairs waiting for review.
    pub pending: usize,
    /// Records purged because their person asked to stop.
    pub purged: usize,
    /// Candidate pairs scored.
    pub candidates: u64,
}

/// Every identity record held, in package order.
pub fn all_identities(home: &Home, key: &DataKey) -> Result<Vec<IdentityRecord>, Failure> {
    tokumei_vault::store::read_all_identities(home, key).map_err(fail)
}

fn audit(
    home: &Home,
    s: &Session,
    action: &str,
    object: &str,
    result: &str,
) -> Result<(), Failure> {
    crate::operator::audit(home, s, action, object, result, None)
}

/// Purges every record of the persons of `direct` (records matching the registry) and keeps their
/// fingerprints.
pub fn purge_persons(
    home: &Home,
    s: &Session,
    key: &DataKey,
    identities: &[IdentityRecord],
    direct: &HashSet<String>,
) -> Result<tokumei_vault::purge::PurgeReport, Failure> {
    if direct.is_empty() {
        return Ok(Default::default());
    }
    let mut mpi = Mpi::read(home, key).map_err(fail)?;
    let mut doomed: HashSet<String> = direct.clone();
    for r in direct {
        if let Some(p) = mpi.person_of.get(r).cloned() {
            doomed.extend(mpi.records_of(&p));
        }
    }
    let index = IndexKey::derive(key);
    let catalog = home.catalog().map_err(fail)?;
    for r in identities.iter().filter(|r| doomed.contains(&r.record_id)) {
        for f in person_fingerprints(&index, r) {
            catalog.add_optout_fingerprint(&f).map_err(fail)?;
        }
    }
    let report = tokumei_vault::purge::purge_records(home, key, &doomed).map_err(fail)?;
    mpi.person_of.retain(|r, _| !doomed.contains(r));
    mpi.review
        .retain(|p| !doomed.contains(&p.left) && !doomed.contains(&p.right));
    mpi.write(home, key).map_err(fail)?;
    audit(
        home,
        s,
        "optout.purge",
        &format!(
            "{} record(s) of persons who asked to stop, in {} package(s)",
            report.records,
            report.touched.len()
        ),
        &format!("ok: {} event(s) removed", report.events),
    )?;
    Ok(report)
}

/// Records matching the opt-out registry (`indexes`: the whole registry or new requests).
pub fn matching_records(
    key: &DataKey,
    identities: &[IdentityRecord],
    indexes: &HashSet<String>,
) -> HashSet<String> {
    let index = IndexKey::derive(key);
    identities
        .iter()
        .filter(|r| {
            tokumei_vault::optout::subjects_of(&r.provider_id, r)
                .iter()
                .any(|s| indexes.contains(&index.index(s)))
        })
        .map(|r| r.record_id.clone())
        .collect()
}

/// Links every record held into the master person index.
pub fn run_link(
    home: &Home,
    s: &Session,
    key: &DataKey,
    settings: &Settings,
) -> Result<RunSummary, Failure> {
    let mut identities = all_identities(home, key)?;
    // Records in an order fixed by their content (vault record ids are random and packages arrive
    // in any order): the same records link the same way on every run and every machine.
    identities.sort_by_cached_key(|r| {
        let content: Vec<Option<String>> = IdentityRecord::COLUMNS
            .iter()
            .filter(|c| **c != "record_id")
            .map(|c| r.column_text(c))
            .collect();
        (content, r.record_id.clone())
    });
    let mut summary = RunSummary::default();
    if identities.is_empty() {
        audit(home, s, "link.run", "0 records", "ok: nothing to link")?;
        return Ok(summary);
    }
    let columns = settings.used_columns();
    let mut names: Vec<&str> = vec![settings.id_column.as_str()];
    names.extend(
        columns
            .iter()
            .map(String::as_str)
            .filter(|c| *c != settings.id_column),
    );
    let mut data = Dataset::new("vault", &names);
    for r in &identities {
        let row: Vec<Option<String>> = names.iter().map(|c| r.column_text(c)).collect();
        let refs: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
        data.push_row(&refs)
            .map_err(|e| (EXIT_FAILURE, e.to_string()))?;
    }
    let mut mpi = Mpi::read(home, key).map_err(fail)?;
    // Pairs a technician rejected are never linked again, directly or through other records.
    let row_of_id: HashMap<&str, u32> = identities
        .iter()
        .enumerate()
        .map(|(i, r)| (r.record_id.as_str(), i as u32))
        .collect();
    let rejected: Vec<(u32, u32)> = mpi
        .review
        .iter()
        .filter(|p| p.status == "rejected")
        .filter_map(|p| {
            Some((
                *row_of_id.get(p.left.as_str())?,
                *row_of_id.get(p.right.as_str())?,
            ))
        })
        .collect();
    let out = tokumei_linkage::link_constrained(settings, &data, None, None, &rejected)
        .map_err(|e| (EXIT_FAILURE, format!("linkage: {e}")))?;
    summary.candidates = out.candidates;
    // Clusters, joined where a technician accepted a pair.
    let n = out.left_ids.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut first_of_cluster: HashMap<u32, usize> = HashMap::new();
    for (row, c) in out.left_clusters.iter().enumerate() {
        let f = *first_of_cluster.entry(*c).or_insert(row);
        let (a, b) = (find(&mut parent, f), find(&mut parent, row));
        parent[b] = a;
    }
    let row_of: HashMap<&str, usize> = out
        .left_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    // An accepted pair joins its two clusters unless that would join a rejected pair.
    let rejected_rows: Vec<(usize, usize)> = rejected
        .iter()
        .map(|&(a, b)| (a as usize, b as usize))
        .collect();
    for p in mpi.review.iter().filter(|p| p.status == "accepted") {
        if let (Some(&a), Some(&b)) = (row_of.get(p.left.as_str()), row_of.get(p.right.as_str())) {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            let joins_rejected = rejected_rows.iter().any(|&(x, y)| {
                let (rx, ry) = (find(&mut parent, x), find(&mut parent, y));
                (rx == ra && ry == rb) || (rx == rb && ry == ra)
            });
            if !joins_rejected {
                parent[rb] = ra;
            }
        }
    }
    let mut clusters: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (row, id) in out.left_ids.iter().enumerate() {
        let root = find(&mut parent, row);
        clusters.entry(root).or_default().push(id.clone());
    }
    // Requests to stop apply to the whole person: a cluster with a record in the registry, or with
    // the fingerprint of a person who asked to stop, is purged.
    let index = IndexKey::derive(key);
    let catalog = home.catalog().map_err(fail)?;
    let registry = catalog.optout_indexes().map_err(fail)?;
    let stopped = catalog.optout_fingerprints().map_err(fail)?;
    let by_id: HashMap<&str, &IdentityRecord> = identities
        .iter()
        .map(|r| (r.record_id.as_str(), r))
        .collect();
    let mut direct = HashSet::new();
    for members in clusters.values() {
        let hit = members.iter().any(|m| {
            by_id.get(m.as_str()).is_some_and(|r| {
                tokumei_vault::optout::subjects_of(&r.provider_id, r)
                    .iter()
                    .any(|s| registry.contains(&index.index(s)))
                    || person_fingerprints(&index, r)
                        .iter()
                        .any(|f| stopped.contains(f))
            })
        });
        if hit {
            direct.extend(members.iter().cloned());
        }
    }
    let clusters: Vec<Vec<String>> = clusters
        .into_values()
        .filter(|c| !c.iter().any(|m| direct.contains(m)))
        .collect();
    summary.changes = assign(&mut mpi, &clusters).map_err(fail)?;
    // The review band: new pairs join the queue; decided ones stay decided.
    let lower = settings.thresholds.review_lower;
    let upper = settings.thresholds.review_upper;
    let mut known: HashSet<(String, String)> = mpi
        .review
        .iter()
        .map(|p| (p.left.clone(), p.right.clone()))
        .collect();
    let mut next_id = mpi.review.iter().map(|p| p.id).max().unwrap_or(0) + 1;
    for p in &out.pairs {
        if p.deterministic || p.probability < lower || p.probability >= upper {
            continue;
        }
        let (a, b) = (
            out.left_ids[p.left_row as usize].clone(),
            out.left_ids[p.right_row as usize].clone(),
        );
        if direct.contains(&a) || direct.contains(&b) {
            continue;
        }
        let key_pair = if a < b { (a, b) } else { (b, a) };
        if known.insert(key_pair.clone()) {
            mpi.review.push(ReviewPair {
                id: next_id,
                left: key_pair.0,
                right: key_pair.1,
                probability: p.probability,
                levels: p.levels.clone(),
                status: "pending".into(),
                decided_by: None,
            });
            next_id += 1;
        }
    }
    mpi.review
        .retain(|p| mpi.person_of.contains_key(&p.left) && mpi.person_of.contains_key(&p.right));
    summary.pending = mpi.review.iter().filter(|p| p.status == "pending").count();
    mpi.write(home, key).map_err(fail)?;
    summary.records = mpi.person_of.len();
    summary.persons = mpi.persons();
    // The linkage report (weights, histogram, review band; no identifying value).
    let reports = home.root.join("reports");
    std::fs::create_dir_all(&reports).map_err(|e| (EXIT_FAILURE, e.to_string()))?;
    let html =
        tokumei_linkage::report::html(&out, "Tokumei vault: master person index", None, None);
    std::fs::write(reports.join(format!("link-{:04}.html", mpi.runs)), html)
        .map_err(|e| (EXIT_FAILURE, e.to_string()))?;
    audit(
        home,
        s,
        "link.run",
        &format!(
            "run {}: {} records, {} candidate pairs",
            mpi.runs,
            identities.len(),
            out.candidates
        ),
        &format!(
            "ok: {} persons; {} created, {} merges, {} splits, {} records moved; {} pairs pending review",
            summary.persons,
            summary.changes.created,
            summary.changes.merges,
            summary.changes.splits,
            summary.changes.moved,
            summary.pending
        ),
    )?;
    summary.purged = purge_persons(home, s, key, &identities, &direct)?.records;
    Ok(summary)
}

pub fn run(a: LinkArgs) -> ExitCode {
    match a.sub {
        Some(LinkSub::Review {
            home,
            accept,
            reject,
            passphrase_file,
            user,
        }) => review(home, accept, reject, passphrase_file, user),
        None => report(
            (|| {
                let home_path = a
                    .home
                    .clone()
                    .ok_or((EXIT_USAGE, "--home is required".to_string()))?;
                let settings = match &a.settings {
                    Some(p) => Settings::load(p).map_err(|e| (EXIT_USAGE, e.to_string()))?,
                    None => Settings::parse(JAPANESE, "japanese.toml")
                        .map_err(|e| (EXIT_FAILURE, e.to_string()))?,
                };
                let pass = passphrase(a.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
                let home = tokumei_vault::open(&home_path).map_err(fail)?;
                let s = session(&home, &a.user, Some(&pass), "link.run", &[Role::Technician])?;
                let _lock = crate::writer_lock(&home, "link")?;
                let key = home.unlock_data_key(&pass).map_err(fail)?;
                run_link(&home, &s, &key, &settings)
            })(),
            |x| {
                println!(
                    "master person index: {} records of {} persons ({} candidate pairs scored); {} \
                     persons created, {} merges, {} splits; {} pairs wait for review (tokumei link \
                     review); {} records purged for requests to stop",
                    x.records,
                    x.persons,
                    x.candidates,
                    x.changes.created,
                    x.changes.merges,
                    x.changes.splits,
                    x.pending,
                    x.purged
                )
            },
        ),
    }
}

fn review(
    home: PathBuf,
    accept: Option<u64>,
    reject: Option<u64>,
    passphrase_file: Option<PathBuf>,
    user: UserKeyArgs,
) -> ExitCode {
    report(
        (|| {
            let pass = passphrase(passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
            let home = tokumei_vault::open(&home).map_err(fail)?;
            let s = session(
                &home,
                &user,
                Some(&pass),
                "link.review",
                &[Role::Technician],
            )?;
            let _lock = crate::writer_lock(&home, "link review")?;
            let key = home.unlock_data_key(&pass).map_err(fail)?;
            let mut mpi = Mpi::read(&home, &key).map_err(fail)?;
            if let Some((id, status)) = accept
                .map(|i| (i, "accepted"))
                .or(reject.map(|i| (i, "rejected")))
            {
                let p = mpi
                    .review
                    .iter_mut()
                    .find(|p| p.id == id)
                    .ok_or((EXIT_FAILURE, format!("no review pair {id}")))?;
                if p.status != "pending" {
                    return Err((EXIT_FAILURE, format!("pair {id} was already {}", p.status)));
                }
                p.status = status.into();
                p.decided_by = Some(s.user.clone());
                mpi.write(&home, &key).map_err(fail)?;
                audit(&home, &s, "link.review", &format!("pair {id}"), status)?;
                return Ok(format!(
                    "pair {id} {status}; it takes effect at the next `tokumei link`"
                ));
            }
            // List pending pairs side by side: a technician's read of identified data, audited.
            let identities = all_identities(&home, &key)?;
            let by_id: HashMap<&str, &IdentityRecord> = identities
                .iter()
                .map(|r| (r.record_id.as_str(), r))
                .collect();
            let mut text = String::new();
            let pending: Vec<&ReviewPair> = mpi
                .review
                .iter()
                .filter(|p| p.status == "pending")
                .collect();
            for p in &pending {
                let (Some(a), Some(b)) = (by_id.get(p.left.as_str()), by_id.get(p.right.as_str()))
                else {
                    continue;
                };
                text.push_str(&format!(
                    "pair {} (probability {:.3})\n",
                    p.id, p.probability
                ));
                for (label, col) in [
                    ("provider", "provider_id"),
                    ("kanji", "surname_kanji"),
                    ("", "given_kanji"),
                    ("kana", "surname_kana"),
                    ("", "given_kana"),
                    ("birth", "birth_date"),
                    ("sex", "sex"),
                    ("town", "town"),
                    ("insurer", "insurer_number"),
                    ("number", "insured_number"),
                ] {
                    text.push_str(&format!(
                        "  {:<9} {:<24} {}\n",
                        if label.is_empty() { col } else { label },
                        a.column_text(col).unwrap_or_default(),
                        b.column_text(col).unwrap_or_default()
                    ));
                }
            }
            text.push_str(&format!(
                "{} pair(s) pending; decide with --accept N or --reject N\n",
                pending.len()
            ));
            audit(
                &home,
                &s,
                "link.review",
                &format!("{} pending pair(s) shown", pending.len()),
                "ok",
            )?;
            Ok(text)
        })(),
        |t| print!("{t}"),
    )
}
