//! Server-side sessions of signed-in users: a random token in a `__Host-` cookie (HttpOnly,
//! Secure, SameSite=Strict), only its SHA-256 kept, in this process's memory (a restart signs
//! everyone out; nothing on disk can be planted as a session). A session ends after 15 minutes
//! without a request or 8 hours after sign-in, whichever comes first. Each carries its CSRF token,
//! which every form of a signed-in page sends back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokumei_vault::access::Session;

/// Idle expiry.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// Absolute expiry.
pub const ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions held at once; beyond it the oldest is ended.
const MAX_SESSIONS: usize = 10_000;
/// The session cookie's name (`__Host-`: Secure, no Domain, Path=/).
pub const COOKIE: &str = "__Host-session";

/// A signed-in user's session.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// Who, with their role.
    pub session: Session,
    /// The token forms send back.
    pub csrf: String,
    created: Instant,
    seen: Instant,
}

/// The sessions of this process.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], WebSession>>,
}

impl Sessions {
    /// A new session for a signed-in user: its cookie token.
    pub fn create(&self, session: Session, now: Instant) -> Option<String> {
        let token = random_token()?;
        let csrf = random_token()?;
        let mut map = self.map.lock().ok()?;
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            digest(&token),
            WebSession {
                session,
                csrf,
                created: now,
                seen: now,
            },
        );
        Some(token)
    }

    /// The live session of a token, its last request moved to `now`; an expired one is ended.
    pub fn get(&self, token: &str, now: Instant) -> Option<WebSession> {
        let mut map = self.map.lock().ok()?;
        let key = digest(token);
        let s = map.get_mut(&key)?;
        if !alive(s, now) {
            map.remove(&key);
            return None;
        }
        s.seen = now;
        Some(s.clone())
    }

    /// Ends a session.
    pub fn end(&self, token: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&digest(token));
        }
    }
}

fn alive(s: &WebSession, now: Instant) -> bool {
    now.saturating_duration_since(s.seen) < IDLE
        && now.saturating_duration_since(s.created) < ABSOLUTE
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The CSRF token a script sends in `X-CSRF-Token` (empty when absent).
pub(crate) fn csrf_header(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// 32 random bytes, hex.
pub fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    tokumei_vault::webauth::constant_time_eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokumei_vault::access::Role;

    fn who() -> Session {
        Session {
            user: "chair".into(),
            role: Role::Committee,
            provider_id: None,
        }
    }

    #[test]
    fn a_session_ends_after_its_idle_time_or_its_absolute_time() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let token = s.create(who(), t0).expect("token");
        assert!(s.get(&token, t0 + IDLE - Duration::from_secs(1)).is_some());
        assert!(
            s.get(&token, t0 + IDLE + IDLE - Duration::from_secs(2))
                .is_some(),
            "each request renews the idle time"
        );
        assert!(s.get(&token, t0 + IDLE * 3).is_none(), "idle too long");
        assert!(s.get(&token, t0).is_none(), "an ended session stays ended");
        let token = s.create(who(), t0).expect("token");
        let mut t = t0;
        while t < t0 + ABSOLUTE - IDLE {
            t += IDLE / 2;
            assert!(s.get(&token, t).is_some());
        }
        assert!(s.get(&token, t0 + ABSOLUTE).is_none(), "8 hours at most");
        let token = s.create(who(), t0).expect("token");
        s.end(&token);
        assert!(s.get(&token, t0).is_none());
        assert!(s.get("not a token", t0).is_none());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd") && !same_token("abc", "ab"));
    }
}
