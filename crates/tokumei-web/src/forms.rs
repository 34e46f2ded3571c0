//! A submitted form's fields (`application/x-www-form-urlencoded`, repeated names kept), read
//! with the library's own types: text trimmed, lists split at commas, numbers parsed with a
//! problem named for the field when they are not numbers.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokumei_review::application::Problem;

use crate::i18n::Lang;
use crate::session::{same_token, WebSession};

/// A signed-in form's fields with the request's language, if the form carries the session's CSRF
/// token; the refusal (403) otherwise.
pub(crate) fn checked(
    ws: &WebSession,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Lang, Fields), Response> {
    let lang = Lang::of_request(None, headers);
    let f = Fields::parse(body);
    if same_token(&ws.csrf, &f.one("csrf")) {
        Ok((lang, f))
    } else {
        Err(crate::routes::refused(
            lang,
            StatusCode::FORBIDDEN,
            "form_expired",
        ))
    }
}

/// The fields of a form, in order.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses a form body (the server bounds its size).
    pub fn parse(body: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed (empty when absent).
    pub fn one(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    /// The value of `name`, `None` when absent or empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        Some(self.one(name)).filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checkboxes), trimmed.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// The value of `name` split at commas (either width) and line ends, empty parts dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.one(name)
            .split([',', '、', '，', '\n'])
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// The value of `name` as a number, `None` when empty; a problem when it is not one.
    pub fn number<T: std::str::FromStr>(&self, p: &mut Vec<Problem>, name: &str) -> Option<T> {
        let v = self.optional(name)?;
        match v.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                p.push(Problem::new(name, "not a number"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_lists_and_numbers() {
        let f = Fields::parse(
            "item=a.b&item=c.d&icd10=E11%E3%80%81+I10,&age_min=x&age_max=74&title=+t+".as_bytes(),
        );
        assert_eq!(f.all("item"), ["a.b", "c.d"]);
        assert_eq!(f.list("icd10"), ["E11", "I10"]);
        assert_eq!(f.one("title"), "t");
        assert_eq!(f.optional("absent"), None);
        let mut p = Vec::new();
        assert_eq!(f.number::<u32>(&mut p, "age_max"), Some(74));
        assert_eq!(f.number::<u32>(&mut p, "age_min"), None);
        assert_eq!(f.number::<u32>(&mut p, "absent"), None);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "age_min");
    }
}
