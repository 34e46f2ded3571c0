//! The privacy budget: what each user and each application has spent, in a ledger in the catalog
//! (`catalog/feasibility.sqlite`), charged before an answer is computed and refused when spent.
//!
//! Every row carries an HMAC-SHA-256 (under a key derived from the data key, never stored) over
//! its fields and the previous row's MAC, so a row edited, removed or inserted in the database
//! breaks the chain and every later count is refused. The audit entry of each answer records the
//! ledger row it was charged to (`ledger N`), so cutting rows off the end, or putting back an
//! older copy of the database, is caught against the signed log: the ledger must reach the last
//! row the log names. A charge is committed before the answer is computed, so a command killed
//! between the two has spent budget without showing anything (the safe side).
//!
//! ε is kept in millionths (integers), so sums are exact.

use hmac::{Hmac, Mac};
use rusqlite::{params, Connection, TransactionBehavior};
use sha2::{Digest, Sha256};
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::FeasibilityError;

/// Millionths of ε per unit.
pub const MICRO: f64 = 1_000_000.0;

/// One charge of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Row number (1, 2, …).
    pub seq: i64,
    /// When (UTC).
    pub at: String,
    /// Who asked.
    pub user: String,
    /// Under which application (empty for a technician's count).
    pub application: String,
    /// ε spent, in millionths.
    pub micro_epsilon: i64,
    /// SHA-256 of the normalized definition asked.
    pub definition_hash: String,
}

/// What a user and an application have spent and may still spend, in ε.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Balance {
    /// The user.
    pub user: String,
    /// ε the user has spent.
    pub user_spent: f64,
    /// ε the user may still spend.
    pub user_left: f64,
    /// The application, when asking under one.
    pub application: Option<String>,
    /// ε spent under the application (by anyone).
    pub application_spent: f64,
    /// ε left under the application.
    pub application_left: f64,
    /// ε one answer spends.
    pub per_count: f64,
    /// The user's budget counts the answers of this many days before now (none: every answer).
    #[serde(default)]
    pub user_window_days: Option<u32>,
}

/// What may be spent: the user's budget over the answers since `user_since` (RFC 3339, UTC; none:
/// every answer) and the application's, in millionths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The user's budget.
    pub user: i64,
    /// The start of the window the user's budget counts.
    pub user_since: Option<String>,
    /// The application's budget.
    pub application: i64,
}

impl Limits {
    /// The limits of `policy` at `now` (RFC 3339, UTC), with the application's budget.
    pub fn of(policy: &crate::Policy, now: &str, application: i64) -> Limits {
        let since = policy.user_budget_days.and_then(|d| {
            let now = chrono::DateTime::parse_from_rfc3339(now).ok()?;
            let start = now - chrono::Duration::days(i64::from(d));
            Some(
                start
                    .to_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
        });
        Limits {
            user: micro(policy.epsilon_per_user),
            user_since: since,
            application,
        }
    }
}

/// The budget ledger of a home, opened with the data key.
pub struct Ledger {
    conn: Connection,
    key: [u8; 32],
}

fn db(e: rusqlite::Error) -> FeasibilityError {
    FeasibilityError::Budget(format!("ledger: {e}"))
}

fn tampered(what: &str) -> FeasibilityError {
    FeasibilityError::Budget(format!(
        "the budget ledger was changed outside Tokumei ({what}); counts are refused until it is \
         restored"
    ))
}

/// ε in millionths, rounded up (a charge never spends less than asked).
pub fn micro(epsilon: f64) -> i64 {
    (epsilon * MICRO).ceil() as i64
}

fn epsilon(micro: i64) -> f64 {
    micro as f64 / MICRO
}

impl Ledger {
    /// Opens (and creates) the ledger.
    pub fn open(home: &Home, data_key: &DataKey) -> Result<Ledger, FeasibilityError> {
        let path = home.root.join("catalog/feasibility.sqlite");
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS budget_ledger (
                 seq INTEGER PRIMARY KEY,
                 at TEXT NOT NULL,
                 user TEXT NOT NULL,
                 application TEXT NOT NULL,
                 micro_epsilon INTEGER NOT NULL,
                 definition_hash TEXT NOT NULL,
                 mac TEXT NOT NULL
             );",
        )
        .map_err(db)?;
        let mut h = Sha256::new();
        h.update(b"tokumei-feasibility-ledger-v1");
        h.update(data_key.bytes());
        Ok(Ledger {
            conn,
            key: h.finalize().into(),
        })
    }
}

fn mac(key: &[u8; 32], c: &Charge, previous: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    let seq = c.seq.to_string();
    let micro = c.micro_epsilon.to_string();
    for part in [
        seq.as_str(),
        &c.at,
        &c.user,
        &c.application,
        &micro,
        &c.definition_hash,
        previous,
    ] {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Every charge, its chain checked; and the last MAC.
fn read(conn: &Connection, key: &[u8; 32]) -> Result<(Vec<Charge>, String), FeasibilityError> {
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, user, application, micro_epsilon, definition_hash, mac
                 FROM budget_ledger ORDER BY seq",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                Charge {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    user: r.get(2)?,
                    application: r.get(3)?,
                    micro_epsilon: r.get(4)?,
                    definition_hash: r.get(5)?,
                },
                r.get::<_, String>(6)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    let mut previous = String::new();
    for (i, row) in rows.enumerate() {
        let (c, mac) = row.map_err(db)?;
        if c.seq != i as i64 + 1 {
            return Err(tampered("a row is missing"));
        }
        if c.micro_epsilon < 0 || self::mac(key, &c, &previous) != mac {
            return Err(tampered(&format!("row {} does not match its MAC", c.seq)));
        }
        previous = mac;
        out.push(c);
    }
    Ok((out, previous))
}

impl Ledger {
    /// Every charge, the chain checked and reaching `last_logged` (the highest ledger row the
    /// audit log names).
    pub fn charges(&self, last_logged: i64) -> Result<Vec<Charge>, FeasibilityError> {
        let (rows, _) = read(&self.conn, &self.key)?;
        reaches(&rows, last_logged)?;
        Ok(rows)
    }

    /// Charges `micro_epsilon` to `user` (and `application`) unless that would exceed a budget
    /// (`limits`); checked and written in one
    /// transaction, so two counts at once cannot both spend the last of a budget. Returns every
    /// charge of the ledger, this one last.
    pub fn charge(
        &mut self,
        c: &Charge,
        last_logged: i64,
        limits: &Limits,
    ) -> Result<Vec<Charge>, FeasibilityError> {
        let key = self.key;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let (mut rows, previous) = read(&tx, &key)?;
        reaches(&rows, last_logged)?;
        let b = spent(&rows, &c.user, &c.application, limits.user_since.as_deref());
        let (user_budget, application_budget) = (limits.user, limits.application);
        if b.0 + c.micro_epsilon > user_budget {
            return Err(FeasibilityError::Budget(format!(
                "the user's privacy budget is spent (ε {} of {}; an answer spends {})",
                epsilon(b.0),
                epsilon(user_budget),
                epsilon(c.micro_epsilon)
            )));
        }
        if !c.application.is_empty() && b.1 + c.micro_epsilon > application_budget {
            return Err(FeasibilityError::Budget(format!(
                "the application's privacy budget is spent (ε {} of {}; an answer spends {})",
                epsilon(b.1),
                epsilon(application_budget),
                epsilon(c.micro_epsilon)
            )));
        }
        let row = Charge {
            seq: rows.len() as i64 + 1,
            ..c.clone()
        };
        let mac = mac(&key, &row, &previous);
        tx.execute(
            "INSERT INTO budget_ledger
                 (seq, at, user, application, micro_epsilon, definition_hash, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.seq,
                row.at,
                row.user,
                row.application,
                row.micro_epsilon,
                row.definition_hash,
                mac
            ],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        rows.push(row);
        Ok(rows)
    }
}

fn reaches(rows: &[Charge], last_logged: i64) -> Result<(), FeasibilityError> {
    if (rows.len() as i64) < last_logged {
        return Err(tampered(&format!(
            "the audit log records ledger row {last_logged}, the ledger ends at {}",
            rows.len()
        )));
    }
    Ok(())
}

/// (ε the user spent since `since` (RFC 3339, UTC; none: ever), ε spent under the application),
/// in millionths.
pub fn spent(rows: &[Charge], user: &str, application: &str, since: Option<&str>) -> (i64, i64) {
    let user_spent = rows
        .iter()
        .filter(|r| r.user == user && since.is_none_or(|s| r.at.as_str() >= s))
        .map(|r| r.micro_epsilon)
        .sum();
    let app_spent = if application.is_empty() {
        0
    } else {
        rows.iter()
            .filter(|r| r.application == application)
            .map(|r| r.micro_epsilon)
            .sum()
    };
    (user_spent, app_spent)
}

/// The highest ledger row named by the answers in the audit log (`ledger N` in their outcome).
pub fn last_logged(log: &[tokumei_audit::Entry]) -> i64 {
    log.iter()
        .filter(|e| e.action == "feasibility.count" && e.outcome.starts_with("answered"))
        .filter_map(|e| e.outcome.rsplit_once(", ledger ").map(|(_, n)| n))
        .filter_map(|n| n.trim().parse::<i64>().ok())
        .max()
        .unwrap_or(0)
}

/// A user's (and an application's) balance under `policy` and `limits`.
pub fn balance(
    rows: &[Charge],
    user: &str,
    application: Option<&str>,
    policy: &crate::Policy,
    limits: &Limits,
) -> Balance {
    let since = limits.user_since.as_deref();
    let (u, a) = spent(rows, user, application.unwrap_or(""), since);
    Balance {
        user: user.to_string(),
        user_spent: epsilon(u),
        user_left: epsilon((limits.user - u).max(0)),
        application: application.map(String::from),
        application_spent: epsilon(a),
        application_left: epsilon((limits.application - a).max(0)),
        per_count: policy.epsilon_per_count,
        user_window_days: policy.user_budget_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, at: &str, user: &str, application: &str) -> Charge {
        Charge {
            seq,
            at: at.into(),
            user: user.into(),
            application: application.into(),
            micro_epsilon: micro(1.0),
            definition_hash: String::new(),
        }
    }

    #[test]
    fn a_users_budget_counts_the_answers_of_its_window_and_an_applications_every_answer() {
        let mut policy = crate::Policy::ndb();
        policy.user_budget_days = Some(365);
        let limits = Limits::of(&policy, "2026-12-06T10:00:00Z", micro(20.0));
        assert_eq!(limits.user_since.as_deref(), Some("2025-12-06T10:00:00Z"));
        let rows = [
            row(1, "2025-12-06T09:59:59Z", "r1", "F-1"),
            row(2, "2025-12-06T10:00:00Z", "r1", "F-1"),
            row(3, "2026-06-01T00:00:00Z", "r1", "F-2"),
            row(4, "2026-06-01T00:00:00Z", "r2", "F-1"),
        ];
        let b = balance(&rows, "r1", Some("F-1"), &policy, &limits);
        assert_eq!((b.user_spent, b.user_left), (2.0, 48.0));
        assert_eq!((b.application_spent, b.application_left), (3.0, 17.0));
        assert_eq!(b.user_window_days, Some(365));
        policy.user_budget_days = None;
        let ever = Limits::of(&policy, "2026-12-06T10:00:00Z", micro(20.0));
        assert_eq!(ever.user_since, None);
        assert_eq!(balance(&rows, "r1", None, &policy, &ever).user_spent, 3.0);
    }

    #[test]
    fn a_policy_with_a_window_of_no_days_is_refused() {
        let text = include_str!("../policies/ndb.toml")
            .replace("user_budget_days = 365", "user_budget_days = 0");
        assert!(crate::Policy::parse(&text).is_err());
        assert_eq!(crate::Policy::ndb().user_budget_days, Some(365));
    }
}
