//! The pages, rendered on the server (maud escapes every value), with a stylesheet and no script.

use maud::{html, Markup, DOCTYPE};

use crate::i18n::Lang;
use crate::public::{Notice, Registered};

/// The stylesheet (`/static/site.css`; the content security policy allows no inline style).
pub const CSS: &str = "body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;margin:0;color:#1b1f24;line-height:1.6}\
header{background:#12355b;color:#fff;padding:.8rem 1.5rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}\
header a{color:#fff}header .site{font-weight:bold;margin-right:auto}\
main{max-width:60rem;margin:1.5rem auto;padding:0 1.5rem}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccd;padding:.4rem .6rem;text-align:left;vertical-align:top}\
.note{background:#f3f6fa;border-left:4px solid #12355b;padding:.6rem 1rem}\
tr.differ td{background:#fff4e5}";

/// A page: header with navigation and the language switch (to the same path), the content.
pub fn layout(lang: Lang, path: &str, title: &str, content: Markup) -> Markup {
    let switch = format!("{path}?lang={}", lang.other().code());
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (lang.t("site")) }
                link rel="stylesheet" href="/static/site.css";
            }
            body {
                header {
                    span.site { (lang.t("site")) }
                    a href="/" { (lang.t("nav_home")) }
                    a href="/notices" { (lang.t("nav_notices")) }
                    a href="/register" { (lang.t("nav_register")) }
                    a href="/me" { (lang.t("nav_me")) }
                    a href=(switch) hreflang=(lang.other().code()) { (lang.t("switch_language")) }
                }
                main { h1 { (title) } (content) }
            }
        }
    }
}

/// The home page.
pub fn index(lang: Lang) -> Markup {
    let content = html! {
        p { (lang.t("index_body")) }
        p.note { (lang.t("index_stop")) }
        ul {
            li { a href="/notices" { (lang.t("nav_notices")) } }
            li { a href="/register" { (lang.t("nav_register")) } }
        }
    };
    layout(lang, "/", &lang.t("index_title"), content)
}

/// The providers' notices.
pub fn notices(lang: Lang, notices: &[Notice]) -> Markup {
    let content = html! {
        p { (lang.t("notices_intro")) }
        @if notices.is_empty() {
            p { (lang.t("notices_none")) }
        } @else {
            table {
                tr { th { (lang.t("provider")) } th { (lang.t("notice_start")) } }
                @for n in notices {
                    tr {
                        td { a href=(format!("/notices/{}", n.id)) { (n.name) } }
                        td { (n.notice_start.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
    };
    layout(lang, "/notices", &lang.t("notices_title"), content)
}

/// One provider's notice: what is provided, how to ask for it to stop, the contact.
pub fn notice(lang: Lang, n: &Notice) -> Markup {
    let filing = n
        .notice_filing
        .clone()
        .unwrap_or_else(|| lang.t("notice_not_filed"));
    let content = html! {
        h2 { (lang.t("notice_heading")) }
        p { (lang.t("notice_body")) }
        h2 { (lang.t("notice_stop_heading")) }
        p.note { (lang.t("notice_stop_body")) }
        p { a href=(format!("/notices/{}/poster", n.id)) { (lang.t("poster_link")) } }
        table {
            tr { th { (lang.t("notice_contact")) } td { (n.name) } }
            tr { th { (lang.t("address")) } td { (n.address) } }
            tr { th { (lang.t("representative")) } td { (n.representative) } }
            tr { th { (lang.t("notice_start")) } td { (n.notice_start.as_deref().unwrap_or("—")) } }
            tr { th { (lang.t("notice_wait")) } td { (n.wait_days) } }
            tr { th { (lang.t("notice_filing")) } td { (filing) } }
        }
    };
    layout(lang, &format!("/notices/{}", n.id), &n.name, content)
}

/// A QR code of `text` as inline SVG (black modules on white; nothing but the code).
pub fn qr_svg(text: &str) -> Option<Markup> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    // The renderer's XML declaration does not belong inside HTML.
    let start = svg.find("<svg")?;
    Some(maud::PreEscaped(svg[start..].to_string()))
}

/// The poster: what the provider does with the patient's information, how to ask for a stop, and
/// the QR code of its notice page (the patient reads the rest there).
pub fn poster(lang: Lang, n: &Notice, url: &str) -> Markup {
    let content = html! {
        p { (lang.t("poster_body")) }
        p.note { (lang.t("notice_stop_body")) }
        @if let Some(qr) = qr_svg(url) { p { (qr) } }
        p { code { (url) } }
        p { (n.name) " · " (n.address) }
    };
    layout(
        lang,
        &format!("/notices/{}/poster", n.id),
        &lang.t("poster_title"),
        content,
    )
}

/// The register of releases.
pub fn register(lang: Lang, rows: &[Registered]) -> Markup {
    let kind = |k: &str| match k {
        "anonymized" => lang.t("kind_anonymized"),
        "pseudonymized" => lang.t("kind_pseudonymized"),
        other => other.to_string(),
    };
    let content = html! {
        p { (lang.t("register_intro")) }
        @if rows.is_empty() {
            p { (lang.t("register_none")) }
        } @else {
            table {
                tr {
                    th { (lang.t("release")) } th { (lang.t("recipient")) } th { (lang.t("purpose")) }
                    th { (lang.t("kind")) } th { (lang.t("date")) }
                }
                @for r in rows {
                    tr { td { (r.release_id) } td { (r.recipient) } td { (r.purpose) } td { (kind(&r.kind)) } td { (r.date) } }
                }
            }
        }
    };
    layout(lang, "/register", &lang.t("register_title"), content)
}

/// A short page for an error status (never with the request's values).
pub fn message(lang: Lang, key: &str) -> Markup {
    let text = lang.t(key);
    layout(lang, "/", &text, html! {})
}
