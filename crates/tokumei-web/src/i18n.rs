//! Japanese and English from one message catalogue (`messages.toml`): the language of a request
//! (its `lang` query, then its `lang` cookie, then the browser's Accept-Language; Japanese by
//! default) and the text of a key in it.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::HeaderMap;

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// Its code (`ja`, `en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    /// The other language (the switch on every page).
    pub fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    /// A language from its code; anything else is none.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of a request: an explicit choice (`lang` query), then the `lang` cookie, then
    /// the first of Japanese and English the browser lists; Japanese otherwise.
    pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| cookie(headers, "lang").and_then(Lang::parse))
            .or_else(|| accepted(headers))
            .unwrap_or(Lang::Ja)
    }

    /// The text of `key`; an unknown key shows as `⟦key⟧` (a test renders every page in both
    /// languages and finds none).
    pub fn t(self, key: &str) -> String {
        match catalogue().get(key) {
            Some((ja, en)) => match self {
                Lang::Ja => ja.clone(),
                Lang::En => en.clone(),
            },
            None => format!("⟦{key}⟧"),
        }
    }
}

/// A cookie's value from the request's Cookie headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The first of `ja` and `en` in the Accept-Language header, in the browser's order.
fn accepted(headers: &HeaderMap) -> Option<Lang> {
    let value = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?;
    value
        .split(',')
        .filter_map(|part| part.split(';').next())
        .map(|tag| tag.trim().to_ascii_lowercase())
        .find_map(|tag| Lang::parse(tag.split('-').next().unwrap_or("")))
}

/// The catalogue: key → (Japanese, English).
pub fn catalogue() -> &'static HashMap<String, (String, String)> {
    static CATALOGUE: OnceLock<HashMap<String, (String, String)>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct Message {
            ja: String,
            en: String,
        }
        // The catalogue is part of the binary; a test parses it, so a broken one never ships.
        let parsed: HashMap<String, Message> =
            toml::from_str(include_str!("messages.toml")).unwrap_or_default();
        parsed.into_iter().map(|(k, m)| (k, (m.ja, m.en))).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        let parsed: HashMap<String, HashMap<String, String>> =
            toml::from_str(include_str!("messages.toml")).expect("the catalogue parses");
        assert!(parsed.len() > 20);
        for (key, m) in &parsed {
            let mut langs: Vec<&String> = m.keys().collect();
            langs.sort();
            assert_eq!(langs, ["en", "ja"], "{key}");
            assert!(m.values().all(|v| !v.trim().is_empty()), "{key}");
        }
        assert_eq!(catalogue().len(), parsed.len());
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_cookie_then_the_browser() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of_request(None, &h), Lang::Ja);
        h.insert(
            "accept-language",
            "fr-FR, en-GB;q=0.8, ja;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::of_request(None, &h), Lang::En);
        h.insert("cookie", "a=b; lang=ja".parse().unwrap());
        assert_eq!(Lang::of_request(None, &h), Lang::Ja);
        assert_eq!(Lang::of_request(Some("en"), &h), Lang::En);
        assert_eq!(Lang::of_request(Some("xx"), &h), Lang::Ja);
        assert_eq!(Lang::En.t("nav_home"), "Home");
        assert_eq!(Lang::Ja.t("no_such_key"), "⟦no_such_key⟧");
    }
}
