//! The release report (RULES §11: direct identifiers, quasi-identifiers, reference population,
//! risk before and after, the re-identification test, utility), in Japanese and English.

use tokumei_report::{bars, html, page, table, Markup};
use tokumei_review::Scope;

use crate::build::Release;

fn percent(v: Option<f64>, digits: usize) -> String {
    v.map(|a| format!("{:.*} %", digits, a * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn or_dash(v: Option<f64>) -> String {
    v.map(|a| format!("{a:.4}")).unwrap_or_else(|| "—".into())
}

fn identifiers(r: &Release) -> Markup {
    let removed = if r.removed_columns.is_empty() {
        "none".to_string()
    } else {
        r.removed_columns.join(", ")
    };
    let level = r
        .transformation
        .iter()
        .map(|(c, g)| format!("{c}: {g}"))
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        h2 { "1. 直接識別子 / Direct identifiers" }
        p { "Names, readings, birth dates, addresses below the municipality, insurance numbers, patient ids and source record ids are not released; each person carries a per-release pseudonym. Removed by the rules although approved: " (removed) "." }
        h2 { "2. 間接識別子 / Quasi-identifiers" }
        p { "Person quasi-identifiers as chosen by the anonymization engine's optimal search (ARX Loss, k over the person quasi-identifiers, within the suppression limit): " (level) ". Event dates: " (r.dates) "." }
        h2 { "3. 参照集団 / Reference population" }
        p { "The cohort of the application in the linked vault: " (r.cohort) " persons; " (r.opted_out) " left out because they asked to stop." }
    }
}

fn risk(r: &Release) -> Markup {
    let items = [
        ("unique before / 一意 (前)".to_string(), r.unique_share.0),
        ("unique after / 一意 (後)".to_string(), r.unique_share.1),
        (
            "max risk before / 最大リスク (前)".to_string(),
            r.max_risk.0,
        ),
        ("max risk after / 最大リスク (後)".to_string(), r.max_risk.1),
        (
            "average risk before / 平均リスク (前)".to_string(),
            r.risk.0.prosecutor_avg,
        ),
        (
            "average risk after / 平均リスク (後)".to_string(),
            r.risk.1.prosecutor_avg,
        ),
    ];
    let (before, after) = &r.risk;
    html! {
        h2 { "4. リスク / Risk (initial, target, residual)" }
        (bars("リスク / Risk", &items, 1.0, &|v| format!("{v:.4}")))
        p { "Smallest equivalence class: " (r.min_class.0) " before, " (r.min_class.1) " after. Target of the preset " (r.preset) ": " (r.target) "." }
        p {
            "Equivalence classes: " (before.classes) " before, " (after.classes) " after. Persons whose prosecutor risk exceeds "
            (format!("{:.4}", after.threshold)) ": " (percent(Some(before.records_at_risk), 2)) " before, " (percent(Some(after.records_at_risk), 2))
            " after (the anonymization engine's risk figures over the person quasi-identifiers)."
        }
    }
}

fn reid_test(r: &Release) -> Markup {
    let t = &r.trajectory;
    let cut = if t.icd10_to_3_characters.is_empty() {
        "no table".to_string()
    } else {
        t.icd10_to_3_characters.join(", ")
    };
    html! {
        h2 { "4b. 再識別試験 / Re-identification test" }
        p {
            "Intruder's register: every person of the linked vault. Linkage attack, share of release persons re-identified correctly: "
            (percent(r.reid.attack_success, 2))
            " (the same persons with sex, birth date and municipality unprocessed: " (percent(r.reid_initial.attack_success, 2)) "); marketer risk "
            (format!("{:.4}", r.reid.marketer)) "; highest journalist risk " (format!("{:.4}", r.reid.journalist_max))
            "; release persons matching nobody " (format!("{:.4}", r.reid.unmatched))
            ". Membership inference, advantage over the base rate (TPR − FPR of the best threshold): " (or_dash(r.reid.membership_advantage))
            ". Persons with a unique event trajectory (date, code), highest over the event tables: " (percent(r.reid.trajectory_unique, 1))
            "; to bound it, ICD-10 cut to its 3-character category in " (cut) ", " (t.truncated) " persons' events truncated to their first, "
            (t.dropped) " persons' events dropped (" (t.rows_removed) " rows)."
        }
    }
}

/// (k, k^m)-anonymity over the persons with their events, beside the previous rule.
fn events(r: &Release) -> Markup {
    let Some(e) = &r.events else {
        return html! {};
    };
    let levels: Vec<Vec<String>> = e
        .tables
        .iter()
        .map(|(t, l)| {
            vec![
                t.clone(),
                l.code_column.clone(),
                l.codes.clone(),
                l.dates.clone(),
            ]
        })
        .collect();
    let share = |n: usize| format!("{:.1} %", 100.0 * n as f64 / e.rows_before.max(1) as f64);
    let previous = r.previous_rule.as_ref().map(|p| {
        let rows = p.event_rows();
        (p.persons, rows)
    });
    html! {
        h3 { "イベント集合の匿名化 / Persons with their events: (k, k^m)-anonymity" }
        p { "Any " (e.m) " events an intruder knows of a person, together with the person's quasi-identifiers, are shared by at least "
            (e.k) " persons. 知られた " (e.m) " 件のイベントと準識別子の組み合わせは、常に " (e.k) " 人以上に共有されます。" }
        (table(&["table / 表", "code column / コード列", "codes / コード", "dates / 日付"], &levels))
        p { "Event rows released: " (e.rows_released) " of " (e.rows_before) " (" (share(e.rows_released)) "); rows of suppressed persons "
            (e.rows_of_suppressed_persons) "; (person, item) pairs removed " (e.items_removed)
            ". Loss: quasi-identifiers " (format!("{:.3}", e.loss.qi)) " (ARX's Loss per attribute, averaged), events NCP "
            (format!("{:.3}", e.loss.events)) " (released rows only " (format!("{:.3}", e.loss.events_released)) "); "
            (e.search.evaluated) " of " (e.search.lattice) " transformations evaluated." }
        @if e.min_rows_released > 0.0 {
            p { "The search ranked every transformation releasing at least " (format!("{:.0} %", 100.0 * e.min_rows_released))
                " of the event rows before those releasing fewer (coarser quasi-identifiers and dates rather than removed events). "
                "探索は、イベント行の " (format!("{:.0} %", 100.0 * e.min_rows_released)) " 以上を提供する変換を優先しました。" }
        }
        @if let Some(err) = e.protected_error {
            p { "The " (e.protected_codes) " codes per event table held by the most persons gave up events last; the largest relative error of their prevalence is "
                (format!("{:.1} %", 100.0 * err))
                @if e.max_protected_error < 1.0 { " (the search's ceiling: " (format!("{:.0} %", 100.0 * e.max_protected_error)) ")" }
                ". 最も多くの人が持つ上位 " (e.protected_codes) " コードは最後に削除され、その有病率の最大相対誤差は "
                (format!("{:.1} %", 100.0 * err)) " です。" }
        }
        @if let Some((persons, rows)) = previous {
            p { "The previous rule (k over the persons, at most 1 % unique trajectories) would have released "
                (persons) " persons and " (rows) " event rows (" (share(rows)) ") of the same cohort. "
                "旧規則では " (rows) " 行（" (share(rows)) "）のみが提供されます。" }
        }
    }
}

fn cross_release(r: &Release) -> Markup {
    let rows: Vec<Vec<String>> = r
        .cross_release
        .iter()
        .map(|c| {
            let l = &c.linkability;
            vec![
                c.release_id.clone(),
                l.linked.to_string(),
                format!("{:.2} %", l.share * 100.0),
                l.correct.map_or_else(|| "—".into(), |n| n.to_string()),
            ]
        })
        .collect();
    html! {
        h3 { "リリース間連結 / Cross-release linkability" }
        p { "This release joined to each earlier release of the same kind on every value but the pseudonym: persons whose values are unique here and match exactly one person there (the attacker's near-certain links), and of those the links that join the same person." }
        @if rows.is_empty() {
            p { "No earlier release of this kind: nothing to join." }
        } @else {
            (table(&["earlier release / 過去のリリース", "linked / 連結", "share / 割合", "same person / 同一人物"], &rows))
        }
    }
}

fn utility(r: &Release) -> Markup {
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|(t, n)| vec![t.clone(), n.to_string()])
        .collect();
    html! {
        h2 { "5. 有用性 / Utility" }
        p { (r.persons) " persons released, " (r.suppressed) " suppressed; " (r.codes_generalized) " code values generalized, " (r.codes_suppressed) " suppressed." }
        (table(&["table", "rows"], &rows))
    }
}

fn images(r: &Release) -> Markup {
    let Some(i) = &r.images else {
        return html! {};
    };
    let withheld: Vec<Vec<String>> = i
        .withheld
        .iter()
        .map(|(why, n)| vec![why.clone(), n.to_string()])
        .collect();
    html! {
        h2 { "画像 / Images (DICOM, PS3.15 Annex E)" }
        p {
            "Asked for: " (i.requested) "; released: " (i.released) " (" (i.studies) " studies of "
            (i.persons) " persons); withheld: " (i.requested - i.released) ". Profile: Basic "
            "Application Level Confidentiality Profile (113100) with options " (i.options.join(", "))
            ". Burned-in text searched by OCR: " (if i.ocr { "yes" } else { "no" }) ". Every "
            "released file was checked for each identifying value the vault holds for its person "
            "and for the attributes of Table E.1-1 left unchanged: "
            (i.findings.len()) " finding(s)."
        }
        @if !withheld.is_empty() {
            (table(&["withheld because / 保留の理由", "images / 画像"], &withheld))
        }
    }
}

/// The report of a release as a self-contained HTML page.
pub fn html(r: &Release, scope: &Scope) -> String {
    let body = html! {
        p { "Application " (r.application_id) " (" (r.kind) "), decision sha256 " code { (scope.decision_sha256) } "." }
        @if !r.warnings.is_empty() {
            h2 { "注意 / Warnings on usefulness" }
            ul { @for w in &r.warnings { li { (w) } } }
        }
        (identifiers(r))
        (risk(r))
        (reid_test(r))
        (events(r))
        (maud::PreEscaped(crate::reid_events::html_section(&r.event_attack, &r.event_attack_initial)))
        (cross_release(r))
        (images(r))
        (utility(r))
    };
    page(
        &format!("匿名加工レポート / Anonymization report — {}", r.release_id),
        body,
    )
}
