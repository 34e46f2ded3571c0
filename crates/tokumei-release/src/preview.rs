//! A preview for the committee: the dry run of an undecided application's release (every requested
//! item, the kind's preset), its figures recorded in the review store for the docket
//! (`tokumei_review::docket`). Nothing of a release is written; the vault access is audited by the
//! dry run, the preview by the review store.

use tokumei_review::{Figure, Preview, Review};
use tokumei_vault::access::Session;
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::{build, BuildOptions, Release, ReleaseError};

/// Computes and records the preview of `application` (a technician; the application undecided).
pub fn prepare(
    home: &Home,
    s: &Session,
    key: &DataKey,
    application: &str,
    today: chrono::NaiveDate,
) -> Result<Preview, ReleaseError> {
    let review = Review::open(home)?;
    let scope = review.proposed_scope(s, application)?;
    let opts = BuildOptions {
        today,
        dry_run: true,
        ..Default::default()
    };
    // A dry run touches no folder; the path only names where a release would have gone.
    let release = build(home, s, key, &scope, std::path::Path::new("."), &opts)?;
    let preview = of_release(&release, &s.user);
    review.record_preview(s, &preview)?;
    Ok(preview)
}

/// The preview of a dry run's figures.
pub fn of_release(r: &Release, prepared_by: &str) -> Preview {
    Preview {
        application_id: r.application_id.clone(),
        prepared_by: prepared_by.to_string(),
        prepared_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        preset: r.preset.clone(),
        cohort: r.cohort,
        opted_out: r.opted_out,
        suppressed: r.suppressed,
        persons: r.persons,
        rows: r.rows.clone(),
        transformation: r.transformation.clone(),
        figures: figures(r),
        refusals: r.refusals.clone(),
        warnings: r.warnings.clone(),
    }
}

fn figure(name: &str, value: f64, target: Option<f64>, met: Option<bool>) -> Figure {
    Figure {
        name: name.to_string(),
        value,
        target,
        met,
    }
}

/// The risk, battery and utility figures of a dry run.
fn figures(r: &Release) -> Vec<Figure> {
    let k = (r.k > 0).then_some(r.k as f64);
    let mut out = vec![
        figure(
            "persons.min_class",
            r.min_class.1 as f64,
            k,
            k.map(|k| r.min_class.1 as f64 >= k),
        ),
        figure("persons.unique_share", r.unique_share.1, None, None),
        figure("reid.prosecutor_max", r.reid.prosecutor_max, None, None),
        figure("reid.journalist_max", r.reid.journalist_max, None, None),
        figure("reid.marketer", r.reid.marketer, None, None),
    ];
    for a in &r.event_attack {
        let name = format!("event_attack.m{}", a.m);
        out.push(figure(&name, a.share_correct, None, None));
    }
    for g in &r.utility {
        let code = serde_json::to_value(g.goal)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if let Some(v) = g.figure {
            out.push(figure(&format!("utility.{code}"), v, Some(g.target), g.met));
        }
    }
    out
}
