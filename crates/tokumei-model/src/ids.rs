//! The one grammar of identifiers that come from outside (package, provider, user, application and
//! release ids): 1–64 ASCII letters, digits, `-` and `_`, starting with a letter or digit.
//!
//! Every such id is checked here before it names a file, a folder, a database row or an audit
//! object. The grammar leaves out `.` (so no id is `..`, carries a file extension or reads as a
//! staging name), `/` and `\` (so no id is a path), spaces and control characters (so no id breaks a
//! log line or a terminal), and a leading `-` (so no id reads as a command-line flag).

/// Longest id.
pub const MAX_ID: usize = 64;

/// What an id names (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A package (its manifest's `package_id`).
    Package,
    /// A data provider.
    Provider,
    /// An operator user.
    User,
    /// A research application.
    Application,
    /// A release.
    Release,
    /// A meeting of the review committee.
    Meeting,
    /// An export request.
    Export,
}

impl IdKind {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            IdKind::Package => "package id",
            IdKind::Provider => "provider id",
            IdKind::User => "user name",
            IdKind::Application => "application id",
            IdKind::Release => "release id",
            IdKind::Meeting => "meeting id",
            IdKind::Export => "export id",
        }
    }
}

/// An id that breaks the grammar. The message never repeats the id itself (it came from outside
/// and may hold anything, an identifying value or control characters included).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not valid: 1–{MAX_ID} letters, digits, '-' and '_', starting with a letter or digit ({reason})", kind.name())]
pub struct InvalidId {
    /// What the id was to name.
    pub kind: IdKind,
    /// What is wrong.
    pub reason: &'static str,
}

/// Whether `s` is an id.
pub fn is_valid(s: &str) -> bool {
    check(IdKind::Package, s).is_ok()
}

/// Checks `s` against the grammar.
pub fn check(kind: IdKind, s: &str) -> Result<&str, InvalidId> {
    let bad = |reason| Err(InvalidId { kind, reason });
    let Some(first) = s.bytes().next() else {
        return bad("empty");
    };
    if s.len() > MAX_ID {
        return bad("too long");
    }
    if !first.is_ascii_alphanumeric() {
        return bad("it must start with a letter or digit");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("it holds another character");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_of_the_attacks_are_refused() {
        for s in [
            "",
            "../../../../victim",
            "..",
            ".",
            "2026.batch1",
            "a/b",
            "a\\b",
            "../../x y",
            "-rf",
            "_x",
            "x\u{1b}[2J",
            "x\r",
            "ｘ",
            "患者",
            &"a".repeat(65),
        ] {
            assert!(check(IdKind::Package, s).is_err(), "{s:?}");
        }
        for s in ["H01", "a", "R-0123abcd", "tech_b", &"a".repeat(64)] {
            assert!(check(IdKind::Package, s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn the_message_does_not_repeat_the_id() {
        let e = check(IdKind::Provider, "山田太郎").expect_err("refused");
        assert!(!e.to_string().contains("山田"), "{e}");
        assert!(e.to_string().starts_with("provider id"), "{e}");
    }

    proptest! {
        /// Whatever is accepted is one plain path component that cannot climb, hide or carry an
        /// extension.
        #[test]
        fn an_accepted_id_is_one_plain_path_component(s in "\\PC{0,70}") {
            if check(IdKind::Package, &s).is_ok() {
                let p = std::path::Path::new(&s);
                let mut parts = p.components();
                prop_assert!(matches!(parts.next(), Some(std::path::Component::Normal(_))));
                prop_assert!(parts.next().is_none());
                prop_assert!(!s.contains('.'));
                prop_assert!(!s.starts_with('-'));
                prop_assert!(s.len() <= MAX_ID);
            }
        }
    }
}
