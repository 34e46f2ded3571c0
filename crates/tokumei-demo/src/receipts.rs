//! Step 3: a few requests to stop recorded first (the first patients of the first hospital), then
//! every provider of the region registered, its native files sealed into a package
//! (`tokumei_vault::package`) and the package received (`tokumei_vault::receive`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokumei_fs::io;
use tokumei_model::identity::IdentityRecord;
use tokumei_vault::catalog::{Catalog, Provider};
use tokumei_vault::optout::{IndexKey, Request, Requester, Subject};
use tokumei_vault::package::{package, provider_init, PackageOptions};
use tokumei_vault::receive::{receive, Outcome};

use crate::site::Site;
use crate::{seconds, DemoError, Event, Observer, Step};

/// The hospital whose first patients ask to stop, and how many of them.
const OPTED_PROVIDER: &str = "H01";
const OPTED_PATIENTS: usize = 5;

/// Totals of the receipts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Packages received.
    pub packages: usize,
    /// Files in them.
    pub files: usize,
    /// Records their manifests count.
    pub records: u64,
    /// Records stored.
    pub stored: usize,
    /// Records quarantined (malformed on purpose by the generator).
    pub quarantined: usize,
    /// Records refused because their patient asked to stop.
    pub opted_out: usize,
    /// Records refused because the provider's notice period had not run.
    pub too_early: usize,
    /// Clinical events stored.
    pub events: usize,
    /// Images (DICOM files) stored with their patient's record.
    pub images: usize,
    /// Images refused with their patient (requests to stop, notice period).
    pub images_refused: usize,
}

/// What step 3 did.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Requests to stop recorded before any receipt.
    pub opted_out_requests: usize,
    /// The receipts' totals.
    pub totals: Totals,
    /// Seconds it took.
    pub seconds: f64,
}

/// The region's providers (one folder each under `sources/`), in id order.
pub fn providers(region: &Path) -> Result<Vec<String>, DemoError> {
    let sources = region.join("sources");
    let mut providers: Vec<String> = std::fs::read_dir(&sources)
        .map_err(io(region))?
        .filter_map(Result::ok)
        .filter(|d| d.path().is_dir())
        .map(|d| d.file_name().to_string_lossy().to_string())
        .collect();
    providers.sort();
    Ok(providers)
}

/// Records requests to stop for the first patients of the first hospital, before any receipt;
/// returns how many.
pub fn record_optouts(site: &Site, catalog: &Catalog, region: &Path) -> Result<usize, DemoError> {
    let index = IndexKey::derive(&site.data_key);
    let path = region.join(format!("sources/{OPTED_PROVIDER}/identities.parquet"));
    let Ok(ids) = tokumei_synth::writer::read_table::<IdentityRecord>(&path) else {
        return Ok(0);
    };
    let mut seen = BTreeSet::new();
    for local_patient_id in ids.into_iter().filter_map(|r| r.local_patient_id) {
        if seen.len() >= OPTED_PATIENTS || !seen.insert(local_patient_id.clone()) {
            continue;
        }
        let request = Request {
            subject: Subject::Patient {
                provider_id: OPTED_PROVIDER.into(),
                local_patient_id,
            },
            requester: Requester::SelfPatient,
            received_on: "2021-01-15".into(),
            confirmed_on: Some("2021-01-20".into()),
        };
        catalog.add_optout(&index, &request)?;
    }
    Ok(seen.len())
}

/// Registers provider `p` (its key pair made under `DIR/providers`) with synthetic details.
fn register(catalog: &Catalog, p: &str, key_dir: &Path) -> Result<PathBuf, DemoError> {
    let (key_path, pub_path) = provider_init(p, key_dir)?;
    let public = std::fs::read_to_string(&pub_path).map_err(io(&pub_path))?;
    catalog.add_provider(&Provider {
        id: p.to_string(),
        public_key: public.trim().to_string(),
        name: format!("架空の提供者 {p} (synthetic)"),
        address: "青森県 (synthetic)".into(),
        representative: "代表者 (synthetic)".into(),
        acquisition: "診療・健診・届出の業務の過程で取得 (synthetic)".into(),
        notice_filing: Some(format!("demo-{p}")),
        notice_start: Some("2021-01-04".into()),
    })?;
    Ok(key_path)
}

/// Seals provider `p`'s native files (not the canonical Parquet tables beside them) into
/// `DIR/packages/<p>.tkm`.
fn seal(
    site: &Site,
    p: &str,
    key_path: &Path,
    region: &Path,
    pkg_dir: &Path,
) -> Result<PathBuf, DemoError> {
    let key_text = std::fs::read_to_string(key_path).map_err(io(key_path))?;
    let key = tokumei_audit::key_from_hex(&key_text)?;
    let pkg = pkg_dir.join(format!("{p}.tkm"));
    let options = PackageOptions {
        exclude_extensions: vec!["parquet".into()],
        ..Default::default()
    };
    package(
        &key,
        p,
        &site.recipient,
        &region.join("sources").join(p),
        &pkg,
        &options,
    )?;
    Ok(pkg)
}

/// Receives one package and adds its counts to `t`.
fn receive_one(site: &Site, pkg: &Path, t: &mut Totals) -> Result<(), DemoError> {
    let outcome = receive(&site.home, pkg, &site.session.user, &site.data_key)?;
    if let Outcome::Received {
        manifest, report, ..
    } = outcome
    {
        t.packages += 1;
        t.files += manifest.files.len();
        t.records += manifest.records();
        t.stored += report.stored;
        t.quarantined += report.quarantined;
        t.opted_out += report.refusals.opted_out;
        t.too_early += report.refusals.too_early;
        t.events += report.events;
        t.images += report.images;
        t.images_refused += report.images_refused;
    }
    Ok(())
}

/// Step 3 as a whole: the requests to stop, then every provider registered, sealed and received.
pub fn receive_all(
    site: &Site,
    dir: &Path,
    region: &Path,
    on: &Observer<'_>,
) -> Result<Received, DemoError> {
    let providers = providers(region)?;
    on(Event::Begin(Step::Receipts {
        providers: providers.len(),
    }));
    let started = Instant::now();
    let key_dir = dir.join("providers");
    let pkg_dir = dir.join("packages");
    std::fs::create_dir_all(&pkg_dir).map_err(io(&pkg_dir))?;
    let catalog = site.home.catalog()?;
    let opted_out_requests = record_optouts(site, &catalog, region)?;
    on(Event::OptOuts(opted_out_requests));
    let mut totals = Totals::default();
    for (i, p) in providers.iter().enumerate() {
        let key_path = register(&catalog, p, &key_dir)?;
        let pkg = seal(site, p, &key_path, region, &pkg_dir)?;
        receive_one(site, &pkg, &mut totals)?;
        on(Event::Provider {
            done: i + 1,
            total: providers.len(),
        });
    }
    let received = Received {
        opted_out_requests,
        totals,
        seconds: seconds(started),
    };
    on(Event::Received(&received));
    Ok(received)
}
