//! `tokumei demo`: the pipeline on the embedded default, as far as it has landed: a synthetic region,
//! an operator home, every provider's native extract sealed into a package and received (with a few
//! requests to stop recorded first), the records linked into the master person index, a research
//! application approved by the committee, its release built and encrypted to the recipient, and the
//! audit log verified.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::synth::{generate, print_summary, report};
use crate::{EXIT_FAILURE, EXIT_USAGE};
use std::path::Path;
use std::time::Instant;
use tokumei_synth::Config;

use tokumei_vault::receive::{receive, Outcome};

/// Totals of the receipts.
#[derive(Debug, Default)]
struct Totals {
    packages: usize,
    files: usize,
    records: u64,
    stored: usize,
    quarantined: usize,
    opted_out: usize,
    too_early: usize,
    events: usize,
}

/// A synthetic committee member or researcher of the demo, with a key under the demo's passphrase.
fn demo_user(
    home: &tokumei_vault::Home,
    name: &str,
    role: tokumei_vault::access::Role,
    pass: &str,
) -> Result<tokumei_vault::access::Session, tokumei_vault::VaultError> {
    let (wrapped, public) = tokumei_vault::access::new_user_key(pass, None)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    home.catalog()?.add_user(&tokumei_vault::access::User {
        name: name.into(),
        role,
        provider_id: None,
        public_key: public,
        requested_by: "demo".into(),
        approved_by: "demo".into(),
        granted_at: now.clone(),
        reviewed_at: now,
        revoked_at: None,
    })?;
    let path = home.root.join(format!("keys/users/{name}.key"));
    tokumei_vault::home::write_secret(&path, &wrapped)?;
    tokumei_vault::access::authenticate(home, &tokumei_vault::access::open_user_key(&path, pass)?)
}

/// Runs steps 2–7 of the demo on the region at `region`, in the folder `dir`.
pub fn pipeline(dir: &Path, region: &Path) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    for sub in ["home", "providers", "packages"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|x| format!("{}: {x}", p.display()))?;
        }
    }
    // Step 2: the operator home, under a random passphrase kept beside it (a demo of synthetic
    // people only; a real home takes the passphrase from its custodian).
    println!("tokumei demo: step 2/7, operator home");
    let pass = tokumei_audit::key_to_hex(&tokumei_audit::generate_key().map_err(|x| e(&x))?);
    let pass_file = dir.join("passphrase.txt");
    let _ = std::fs::remove_file(&pass_file);
    tokumei_vault::home::write_secret(&pass_file, format!("{pass}\n").as_bytes())
        .map_err(|x| e(&x))?;
    let home_dir = dir.join("home");
    let summary = tokumei_vault::home::init(&home_dir, &pass, None).map_err(|x| e(&x))?;
    let home = summary.home;
    println!(
        "  {} (passphrase in {}, owner-only)",
        home_dir.display(),
        pass_file.display()
    );

    // Step 3: every provider seals its native files and the operator receives them.
    let mut providers: Vec<String> = std::fs::read_dir(region.join("sources"))
        .map_err(|x| format!("{}: {x}", region.display()))?
        .filter_map(Result::ok)
        .filter(|d| d.path().is_dir())
        .map(|d| d.file_name().to_string_lossy().to_string())
        .collect();
    providers.sort();
    println!(
        "tokumei demo: step 3/7, {} providers seal their extracts; the operator receives them",
        providers.len()
    );
    let started = Instant::now();
    let catalog = home.catalog().map_err(|x| e(&x))?;
    let key_dir = dir.join("providers");
    let pkg_dir = dir.join("packages");
    std::fs::create_dir_all(&pkg_dir).map_err(|x| format!("{}: {x}", pkg_dir.display()))?;
    let user_key = home
        .default_user_key()
        .ok_or("the home has no first technician")?;
    let session = tokumei_vault::access::authenticate(
        &home,
        &tokumei_vault::access::open_user_key(&user_key, &pass).map_err(|x| e(&x))?,
    )
    .map_err(|x| e(&x))?;
    let data_key = home.unlock_data_key(&pass).map_err(|x| e(&x))?;
    // A few requests to stop, recorded before any receipt: the first patients of the first
    // hospital.
    let index = tokumei_vault::optout::IndexKey::derive(&data_key);
    let mut opted = 0;
    if let Ok(ids) = tokumei_synth::writer::read_table::<tokumei_model::identity::IdentityRecord>(
        &region.join("sources/H01/identities.parquet"),
    ) {
        let mut seen = std::collections::BTreeSet::new();
        for r in ids {
            let Some(l) = r.local_patient_id else {
                continue;
            };
            if seen.len() >= 5 || !seen.insert(l.clone()) {
                continue;
            }
            catalog
                .add_optout(
                    &index,
                    &tokumei_vault::optout::Request {
                        subject: tokumei_vault::optout::Subject::Patient {
                            provider_id: "H01".into(),
                            local_patient_id: l,
                        },
                        requester: tokumei_vault::optout::Requester::SelfPatient,
                        received_on: "2021-01-15".into(),
                        confirmed_on: Some("2021-01-20".into()),
                    },
                )
                .map_err(|x| e(&x))?;
            opted += 1;
        }
    }
    println!("  {opted} requests to stop recorded for patients of H01");
    let bar = crate::synth::progress_bar_of(providers.len() as u64, "providers");
    let mut t = Totals::default();
    for p in &providers {
        let (key_path, pub_path) =
            tokumei_vault::package::provider_init(p, &key_dir).map_err(|x| e(&x))?;
        let public = std::fs::read_to_string(&pub_path)
            .map_err(|x| format!("{}: {x}", pub_path.display()))?;
        catalog
            .add_provider(&tokumei_vault::catalog::Provider {
                id: p.clone(),
                public_key: public.trim().to_string(),
                name: format!("架空の提供者 {p} (synthetic)"),
                address: "青森県 (synthetic)".into(),
                representative: "代表者 (synthetic)".into(),
                acquisition: "診療・健診・届出の業務の過程で取得 (synthetic)".into(),
                notice_filing: Some(format!("demo-{p}")),
                notice_start: Some("2021-01-04".into()),
            })
            .map_err(|x| e(&x))?;
        let key_text = std::fs::read_to_string(&key_path)
            .map_err(|x| format!("{}: {x}", key_path.display()))?;
        let key = tokumei_audit::key_from_hex(&key_text).map_err(|x| e(&x))?;
        let pkg = pkg_dir.join(format!("{p}.tkm"));
        tokumei_vault::package::package(
            &key,
            p,
            &summary.recipient,
            &region.join("sources").join(p),
            &pkg,
            &tokumei_vault::package::PackageOptions {
                exclude_extensions: vec!["parquet".into()],
                ..Default::default()
            },
        )
        .map_err(|x| e(&x))?;
        match receive(&home, &pkg, &session.user, &data_key).map_err(|x| e(&x))? {
            Outcome::Received {
                manifest, report, ..
            } => {
                t.packages += 1;
                t.files += manifest.files.len();
                t.records += manifest.records();
                t.stored += report.stored;
                t.quarantined += report.quarantined;
                t.opted_out += report.refusals.opted_out;
                t.too_early += report.refusals.too_early;
                t.events += report.events;
            }
            Outcome::AlreadyReceived { .. } => {}
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "  {} packages, {} files, {} records in the manifests: {} stored ({} clinical events), {} \
         quarantined (malformed on purpose, see truth/noise), {} refused by opt-out, {} refused by \
         the notice period; {:.1} s",
        t.packages,
        t.files,
        t.records,
        t.stored,
        t.events,
        t.quarantined,
        t.opted_out,
        t.too_early,
        started.elapsed().as_secs_f64()
    );

    // Step 4: linkage into the master person index.
    println!("tokumei demo: step 4/7, record linkage (名寄せ) into the master person index");
    let started = Instant::now();
    let settings = tokumei_link::default_settings().map_err(|x| e(&x))?;
    let lock = crate::writer_lock(&home, "demo").map_err(|(_, m)| m)?;
    let linked =
        tokumei_link::run(&home, &session, &data_key, &settings, &lock).map_err(|x| e(&x))?;
    drop(lock);
    println!(
        "  {} records of {} persons ({} candidate pairs scored), {} pairs for clerical review; {:.1} s",
        linked.records,
        linked.persons,
        linked.candidates,
        linked.pending,
        started.elapsed().as_secs_f64()
    );

    // Step 5: a research application and the committee's decision.
    println!("tokumei demo: step 5/7, a research application and the review committee");
    let review = tokumei_review::Review::open(&home).map_err(|x| e(&x))?;
    let mut sessions = Vec::new();
    for (name, role) in [
        ("chair", tokumei_vault::access::Role::Committee),
        ("external", tokumei_vault::access::Role::Committee),
        ("member", tokumei_vault::access::Role::Committee),
        ("researcher", tokumei_vault::access::Role::Researcher),
    ] {
        sessions.push(demo_user(&home, name, role, &pass).map_err(|x| e(&x))?);
    }
    for (i, m) in sessions.iter().take(3).enumerate() {
        review
            .add_member(
                &session,
                &tokumei_review::Member {
                    user: m.user.clone(),
                    display_name: format!("委員 {} (synthetic)", m.user),
                    chair: i == 0,
                    affiliation: "架空大学 (synthetic)".into(),
                    field: [
                        tokumei_review::Field::Medical,
                        tokumei_review::Field::LawEthics,
                        tokumei_review::Field::Citizen,
                    ][i],
                    external: i == 1,
                    joined_at: String::new(),
                    left_at: None,
                },
            )
            .map_err(|x| e(&x))?;
    }
    // The recipient: a research institution's age key (made here; its identity is kept beside the
    // demo so the package can be opened).
    let recipient_identity = age::x25519::Identity::generate();
    let recipient_path = dir.join("recipient.identity");
    let _ = std::fs::remove_file(&recipient_path);
    {
        use age::secrecy::ExposeSecret;
        tokumei_vault::home::write_secret(
            &recipient_path,
            format!("{}\n", recipient_identity.to_string().expose_secret()).as_bytes(),
        )
        .map_err(|x| e(&x))?;
    }
    let application = tokumei_review::Application::from_toml(&format!(
        r#"title = "糖尿病・高血圧の処方実態 / Prescribing in diabetes and hypertension (synthetic demo)"
kind = "anonymized"
purpose = "Describe first-line prescribing for diabetes and hypertension"
period_from = "2021-04-01"
period_to = "2024-03-31"
contract_expiry = "2099-03-31"
recipient_key = "{}"
security_plan = "Isolated analysis workstation; destruction at the contract's end"

[applicant]
organisation = "架空大学 医学部 (synthetic)"
certification = "none"
responsible_researcher = "研究 責任者 (synthetic)"

[cohort]
icd10 = ["E11", "E14", "I10"]
age_min = 40

[[items]]
table = "persons"
columns = ["sex", "birth_year_month", "municipality"]

[[items]]
table = "diagnoses"
columns = ["icd10", "date"]

[[items]]
table = "prescriptions"
columns = ["code", "date", "days"]
"#,
        recipient_identity.to_public()
    ))
    .map_err(|x| e(&x))?;
    let researcher = &sessions[3];
    let app_id = review.submit(researcher, &application).map_err(|x| e(&x))?;
    let present: Vec<String> = sessions.iter().take(3).map(|m| m.user.clone()).collect();
    let meeting = review
        .open_meeting(
            &sessions[0],
            &chrono::Utc::now().date_naive().to_string(),
            &present,
        )
        .map_err(|x| e(&x))?;
    for m in sessions.iter().take(3) {
        review
            .vote(m, &meeting, &app_id, tokumei_review::Vote::Approve)
            .map_err(|x| e(&x))?;
    }
    let decision = review
        .decide(
            &sessions[0],
            &meeting,
            &app_id,
            tokumei_review::Outcome::ApproveWithConditions,
            "医学研究に資する / serves medical research",
            &["公表前に事務局の確認を受ける / results are checked before publication".into()],
            &[],
        )
        .map_err(|x| e(&x))?;
    println!(
        "  application {app_id}: {} at {meeting} ({} for, {} against)",
        decision.outcome.code(),
        decision.tally.0,
        decision.tally.1
    );

    // Step 6: the release.
    println!("tokumei demo: step 6/7, release build");
    let started = Instant::now();
    let opts = tokumei_release::BuildOptions::default();
    let scope = review
        .approved_scope(&session, &app_id, opts.today)
        .map_err(|x| e(&x))?;
    let release_dir = dir.join("release");
    if release_dir.exists() {
        std::fs::remove_dir_all(&release_dir)
            .map_err(|x| format!("{}: {x}", release_dir.display()))?;
    }
    match tokumei_release::build(&home, &session, &data_key, &scope, &release_dir, &opts) {
        Ok(r) => {
            println!(
                "  {}: {} persons of {} in the cohort ({} suppressed for k = {}, {} opted out); \
                 smallest class {} → {}; linkage attack re-identifies {:.2} % (unprocessed: {:.2} %); \
                 membership-inference advantage {:.4}; unique trajectories {:.2} %; {:.1} s",
                r.release_id,
                r.persons,
                r.cohort,
                r.suppressed,
                r.k,
                r.opted_out,
                r.min_class.0,
                r.min_class.1,
                r.reid.attack_success.unwrap_or(r.reid.marketer) * 100.0,
                r.reid_initial.attack_success.unwrap_or(r.reid_initial.marketer) * 100.0,
                r.reid.membership_advantage.unwrap_or(0.0),
                r.reid.trajectory_unique.unwrap_or(0.0) * 100.0,
                started.elapsed().as_secs_f64()
            );
            println!(
                "  report: {}; package for the recipient: {}",
                release_dir.join("report.html").display(),
                r.package.display()
            );
            for w in &r.warnings {
                println!("  warning: {w}");
            }
        }
        // A cohort too small for the rules is refused, and nothing is written: that is the rule
        // working (small demo regions meet it).
        Err(tokumei_release::ReleaseError::Check(why)) => {
            println!("  release refused by its checks, nothing written: {why}");
        }
        Err(x) => return Err(e(&x)),
    }

    // Step 7: the audit log.
    println!("tokumei demo: step 7/7, audit log");
    let v = tokumei_audit::verify(
        &home.audit_dir(),
        &home.audit_public_key().map_err(|x| e(&x))?,
    )
    .map_err(|x| e(&x))?;
    println!(
        "  {} entries, intact (verify it yourself: tokumei audit verify --home {})",
        v.entries,
        home_dir.display()
    );
    Ok(())
}
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
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

pub(crate) fn run_demo(a: DemoArgs) -> ExitCode {
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
            if let Err(e) = pipeline(&a.dir, &config.out) {
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
