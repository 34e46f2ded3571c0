//! Public pages are open to anyone, so they are rate-limited per address and audited as counts per
//! interval: a flood costs at most one signed audit entry per interval, never one per request. No
//! address is kept beyond its interval, and none is written anywhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses tracked in one interval; beyond it, requests from new addresses are refused until the
/// interval closes (a flood from many addresses cannot grow the map without bound).
const MAX_ADDRESSES: usize = 100_000;

/// The counts of one closed interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// When the interval began (UTC, RFC 3339).
    pub since: String,
    /// Requests answered or refused.
    pub requests: u64,
    /// Requests refused over the rate limit.
    pub refused: u64,
    /// Requests for signed-in pages without a live session (refused).
    pub denied: u64,
    /// Distinct addresses.
    pub addresses: usize,
}

impl Counts {
    /// The audit entry's object: counts only.
    pub fn describe(&self) -> String {
        format!(
            "{} public requests ({} refused over the rate limit) from {} addresses, and {} \
             requests without a session refused, since {}",
            self.requests, self.refused, self.addresses, self.denied, self.since
        )
    }
}

struct Window {
    since: String,
    requests: u64,
    refused: u64,
    denied: u64,
    per_address: HashMap<IpAddr, u32>,
}

impl Window {
    fn new() -> Window {
        Window {
            since: crate::now(),
            requests: 0,
            refused: 0,
            denied: 0,
            per_address: HashMap::new(),
        }
    }
}

/// Per-address request counts of the current interval.
pub struct Meter {
    limit: u32,
    window: Mutex<Window>,
}

impl Meter {
    /// A meter letting each address make `limit` requests per interval.
    pub fn new(limit: u32) -> Meter {
        Meter {
            limit,
            window: Mutex::new(Window::new()),
        }
    }

    /// Counts a request; whether it is within the address's limit.
    pub fn admit(&self, address: IpAddr) -> bool {
        let Ok(mut w) = self.window.lock() else {
            return false;
        };
        w.requests += 1;
        let known = w.per_address.contains_key(&address);
        if !known && w.per_address.len() >= MAX_ADDRESSES {
            w.refused += 1;
            return false;
        }
        let n = w.per_address.entry(address).or_default();
        *n = n.saturating_add(1);
        let ok = *n <= self.limit;
        if !ok {
            w.refused += 1;
        }
        ok
    }

    /// Counts a request for a signed-in page without a live session.
    pub fn deny(&self) {
        if let Ok(mut w) = self.window.lock() {
            w.denied += 1;
        }
    }

    /// Closes the interval: its counts when it had requests, and a new interval begins.
    pub fn close(&self) -> Option<Counts> {
        let mut w = self.window.lock().ok()?;
        let old = std::mem::replace(&mut *w, Window::new());
        (old.requests + old.denied > 0).then_some(Counts {
            since: old.since,
            requests: old.requests,
            refused: old.refused,
            denied: old.denied,
            addresses: old.per_address.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_limit_and_an_interval_closes_with_counts_only() {
        let m = Meter::new(2);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!(
            [m.admit(a), m.admit(a), m.admit(a), m.admit(b)],
            [true, true, false, true]
        );
        m.deny();
        let c = m.close().expect("counts");
        assert_eq!((c.requests, c.refused, c.denied, c.addresses), (4, 1, 1, 2));
        assert!(!c.describe().contains("192.0.2"));
        assert!(m.admit(a), "a new interval starts afresh");
        assert!(m.close().is_some());
        assert_eq!(m.close(), None, "an idle interval writes nothing");
        m.deny();
        assert_eq!(
            m.close().map(|c| c.denied),
            Some(1),
            "denials alone are counted too"
        );
    }
}
