//! The HTML report of a count (Japanese and English): the query's hash and policy, the attrition
//! as a chart and a table, and each breakdown, every figure as shown under the policy.

use tokumei_report::{bars, facts, html, page, table, Markup};

use crate::disclosure::{Shown, ShownBreakdown};
use crate::{shown_text, CountAnswer};

fn value(s: &Shown) -> f64 {
    match s {
        Shown::Count { value, .. } => *value as f64,
        Shown::Suppressed => 0.0,
    }
}

fn label(s: &Shown) -> String {
    match s {
        Shown::Suppressed => "秘匿 / suppressed".into(),
        other => shown_text(other),
    }
}

fn breakdown(title: &str, b: &ShownBreakdown) -> Markup {
    html! {
        h3 { (title) }
        @match &b.withheld {
            Some(why) => p { "非表示 / withheld: " (why) },
            None => {
                @let rows: Vec<Vec<String>> = b
                    .cells
                    .iter()
                    .map(|(k, v)| vec![k.clone(), label(v)])
                    .collect();
                (table(&["区分 / value", "人数 / persons"], &rows))
            }
        }
    }
}

/// The report of an answer, as one self-contained page.
pub fn html(a: &CountAnswer) -> String {
    let steps: Vec<(String, f64)> = a
        .answer
        .steps
        .iter()
        .map(|s| (s.name.clone(), value(&s.persons)))
        .collect();
    let max = steps.iter().map(|s| s.1).fold(0.0, f64::max);
    let show = |v: f64| format!("{v:.0}");
    let rows: Vec<Vec<String>> = a
        .answer
        .steps
        .iter()
        .map(|s| vec![s.name.clone(), label(&s.persons)])
        .collect();
    let body = html! {
        (facts(&[
            ("定義 / definition", a.name.clone()),
            ("定義のハッシュ / definition SHA-256", a.definition_hash.clone()),
            ("開示制御 / disclosure policy", a.answer.policy.clone()),
            ("消費した ε / ε spent", format!("{} (ledger {})", a.answer.epsilon, a.ledger_row)),
            ("対象者数 / persons", label(&a.answer.total)),
        ]))
        p {
            "人数は人単位 (一人は各数に一度だけ)。停止の求めのあった方は数えない。 / Counts are of persons (each at most once per figure), never of those who asked to stop. "
            @if a.answer.min_cell > 1 {
                "1–" (a.answer.min_cell - 1) " 人の区分は表示せず、他の数から導くこともできない。 / No count of 1–" (a.answer.min_cell - 1) " is shown or derivable. "
            }
            @if a.answer.rounding > 1 {
                "表示値は " (a.answer.rounding) " 単位に丸めた値。 / Shown counts are rounded to " (a.answer.rounding) ". "
            }
            "各数には差分プライバシーの雑音 (ε = " (a.answer.epsilon) ") が加えられている。括弧内は真の値の 95 % 区間。 / Each figure carries differential-privacy noise (ε = " (a.answer.epsilon) "); brackets give the 95 % interval of the true count."
        }
        h2 { "適用の経過 / Attrition" }
        (bars("各条件の後に残る人数 / persons left after each step", &steps, max, &show))
        (table(&["条件 / step", "人数 / persons"], &rows))
        h2 { "内訳 / Breakdowns" }
        (breakdown("性別 / sex", &a.answer.sex))
        (breakdown("年齢階級 (指標日) / age band at the index date", &a.answer.age_band))
        (breakdown("二次医療圏 / secondary medical area", &a.answer.area))
        (breakdown("医療機関等 / provider", &a.answer.provider))
    };
    page("実施可能性の集計 / Feasibility count", body)
}
