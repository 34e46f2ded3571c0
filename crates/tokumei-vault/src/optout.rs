//! The opt-out registry: requests to stop (停止の求め) from patients, guardians or the bereaved (遺族),
//! by provider + local patient id or by insurance identifiers, with the dates they were received and
//! confirmed (RULES §4 items 36–41).
//!
//! The identifiers of a request are identifying data: the catalog keeps only keyed hashes of them (a
//! blind index, HMAC-SHA-256 under a key derived from the data-encryption key), so that records can be
//! matched at receipt without the identifiers ever being stored in plain text.

use hmac::{Hmac, Mac};
use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::home::{DataKey, VaultError};

/// Who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The patient.
    SelfPatient,
    /// A guardian (patients under 16 or unable to decide).
    Guardian,
    /// The bereaved of a deceased patient.
    Bereaved,
}

impl Requester {
    /// Code stored in the catalog.
    pub fn code(&self) -> &'static str {
        match self {
            Requester::SelfPatient => "self",
            Requester::Guardian => "guardian",
            Requester::Bereaved => "bereaved",
        }
    }

    /// Parses `self`, `guardian` or `bereaved`.
    pub fn parse(s: &str) -> Option<Requester> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "self" | "patient" => Requester::SelfPatient,
            "guardian" => Requester::Guardian,
            "bereaved" => Requester::Bereaved,
            _ => return None,
        })
    }
}

/// Whom a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A provider's local patient id (カルテ番号, resident number).
    Patient {
        /// Provider.
        provider_id: String,
        /// Local patient id.
        local_patient_id: String,
    },
    /// Insurance identifiers (保険者番号, 記号, 番号, 枝番).
    Insured {
        /// 保険者番号.
        insurer_number: String,
        /// 記号.
        symbol: Option<String>,
        /// 番号.
        number: String,
        /// 枝番.
        branch: Option<String>,
    },
}

/// A request to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Whom it names.
    pub subject: Subject,
    /// Who asked.
    pub requester: Requester,
    /// Date received by the provider (YYYY-MM-DD).
    pub received_on: String,
    /// Date its receipt was confirmed to the requester (YYYY-MM-DD), if done.
    pub confirmed_on: Option<String>,
}

/// Normalises an identifier for matching: full-width ASCII and hyphen variants folded, spaces
/// removed.
fn norm(s: &str) -> String {
    tokumei_formats::text::to_half_width_ascii(s)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// The blind-index key: derived from the data key, never stored.
pub struct IndexKey([u8; 32]);

impl IndexKey {
    /// Derives the index key from the data-encryption key.
    pub fn derive(data_key: &DataKey) -> IndexKey {
        let mut h = Sha256::new();
        h.update(b"tokumei-optout-index-v1");
        h.update(data_key.bytes());
        IndexKey(h.finalize().into())
    }

    fn mac(&self, parts: &[&str]) -> String {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        for p in parts {
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The blind index of a subject (what the catalog stores and matches on).
    pub fn index(&self, s: &Subject) -> String {
        match s {
            Subject::Patient {
                provider_id,
                local_patient_id,
            } => self.mac(&["patient", provider_id.trim(), &norm(local_patient_id)]),
            // Matched on 保険者番号 + 記号 + 番号 only: the 枝番 is often missing or mistyped, so a
            // request also withholds the records of family members under the same card number (the
            // safe side).
            Subject::Insured {
                insurer_number,
                symbol,
                number,
                ..
            } => self.mac(&[
                "insured",
                &norm(insurer_number),
                &norm(symbol.as_deref().unwrap_or("")),
                &norm(number),
            ]),
        }
    }
}

/// The subjects a held or received record can be matched on: its provider's local patient id, and
/// its insurance identifiers.
pub fn subjects_of(
    provider_id: &str,
    id: &tokumei_model::identity::IdentityRecord,
) -> Vec<Subject> {
    let mut out = Vec::with_capacity(2);
    if let Some(l) = &id.local_patient_id {
        out.push(Subject::Patient {
            provider_id: provider_id.to_string(),
            local_patient_id: l.clone(),
        });
    }
    if let (Some(ins), Some(num)) = (&id.insurer_number, &id.insured_number) {
        out.push(Subject::Insured {
            insurer_number: ins.clone(),
            symbol: id.insured_symbol.clone(),
            number: num.clone(),
            branch: id.insured_branch.clone(),
        });
    }
    out
}

impl IndexKey {
    /// The fingerprint of a person who asked to stop: a keyed hash of a normalized name (of `kind`,
    /// e.g. `kana` or `kanji`) with the birth date. Kept after the person's records are purged, so
    /// records of the person that arrive later from other providers are recognised when linked.
    pub fn fingerprint(&self, kind: &str, normalized_name: &str, birth_date: &str) -> String {
        self.mac(&["person", kind, normalized_name, birth_date])
    }
}

/// A person's fingerprints: keyed hashes of the normalized reading and of the normalized kanji name,
/// each with the birth date (what a request to stop leaves behind once the records are gone).
pub fn person_fingerprints(
    index: &IndexKey,
    r: &tokumei_model::identity::IdentityRecord,
) -> Vec<String> {
    let Some(birth) = r.birth_date.map(|d| d.to_string()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let (Some(s), Some(g)) = (&r.surname_kana, &r.given_kana) {
        let name = tokumei_japan::normalize::kana(&format!("{s}{g}"));
        if !name.is_empty() {
            out.push(index.fingerprint("kana", &name, &birth));
        }
    }
    if let (Some(s), Some(g)) = (&r.surname_kanji, &r.given_kanji) {
        let name = tokumei_japan::normalize::name(&format!("{s}{g}"));
        if !name.is_empty() {
            out.push(index.fingerprint("kanji", &name, &birth));
        }
    }
    out
}

impl Drop for IndexKey {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

/// Checks a `YYYY-MM-DD` date.
fn date(s: &str, what: &str) -> Result<(), VaultError> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| VaultError::Refused(format!("{what} is not a YYYY-MM-DD date")))
}

impl Catalog {
    fn ensure_optouts(&self) -> Result<(), VaultError> {
        self.connection()
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS optouts (
                     id INTEGER PRIMARY KEY,
                     kind TEXT NOT NULL,
                     provider_id TEXT,
                     blind_index TEXT NOT NULL,
                     requester TEXT NOT NULL,
                     received_on TEXT NOT NULL,
                     confirmed_on TEXT,
                     recorded_at TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS optouts_index ON optouts(blind_index);
                 CREATE TABLE IF NOT EXISTS optout_persons (
                     fingerprint TEXT PRIMARY KEY,
                     recorded_at TEXT NOT NULL
                 );",
            )
            .map_err(db)
    }

    /// Records a request to stop; returns its id. Only the blind index of the subject is stored.
    pub fn add_optout(&self, key: &IndexKey, r: &Request) -> Result<i64, VaultError> {
        self.ensure_optouts()?;
        date(&r.received_on, "received date")?;
        if let Some(c) = &r.confirmed_on {
            date(c, "confirmed date")?;
        }
        let (kind, provider) = match &r.subject {
            Subject::Patient {
                provider_id,
                local_patient_id,
            } => {
                if local_patient_id.trim().is_empty() || provider_id.trim().is_empty() {
                    return Err(VaultError::Refused(
                        "a request by patient id names a provider and a patient id".into(),
                    ));
                }
                ("patient", Some(provider_id.clone()))
            }
            Subject::Insured {
                insurer_number,
                number,
                ..
            } => {
                if insurer_number.trim().is_empty() || number.trim().is_empty() {
                    return Err(VaultError::Refused(
                        "a request by insurance names an insurer number and a 番号".into(),
                    ));
                }
                ("insured", None)
            }
        };
        self.connection()
            .execute(
                "INSERT INTO optouts (kind, provider_id, blind_index, requester, received_on,
                     confirmed_on, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    kind,
                    provider,
                    key.index(&r.subject),
                    r.requester.code(),
                    r.received_on.trim(),
                    r.confirmed_on.as_deref().map(str::trim),
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ],
            )
            .map_err(db)?;
        Ok(self.connection().last_insert_rowid())
    }

    /// Whether a subject has asked to stop (on or before `as_of`, YYYY-MM-DD, when given).
    pub fn opted_out(
        &self,
        key: &IndexKey,
        s: &Subject,
        as_of: Option<&str>,
    ) -> Result<bool, VaultError> {
        self.ensure_optouts()?;
        let idx = key.index(s);
        let n: i64 = match as_of {
            Some(d) => self
                .connection()
                .query_row(
                    "SELECT COUNT(*) FROM optouts WHERE blind_index = ?1 AND received_on <= ?2",
                    params![idx, d],
                    |r| r.get(0),
                )
                .map_err(db)?,
            None => self
                .connection()
                .query_row(
                    "SELECT COUNT(*) FROM optouts WHERE blind_index = ?1",
                    params![idx],
                    |r| r.get(0),
                )
                .map_err(db)?,
        };
        Ok(n > 0)
    }

    /// Every blind index in the registry (loaded once per package at receipt).
    pub fn optout_indexes(&self) -> Result<std::collections::HashSet<String>, VaultError> {
        self.ensure_optouts()?;
        let mut stmt = self
            .connection()
            .prepare("SELECT blind_index FROM optouts")
            .map_err(db)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Keeps the fingerprint of a person who asked to stop.
    pub fn add_optout_fingerprint(&self, fingerprint: &str) -> Result<(), VaultError> {
        self.ensure_optouts()?;
        self.connection()
            .execute(
                "INSERT OR IGNORE INTO optout_persons (fingerprint, recorded_at) VALUES (?1, ?2)",
                params![
                    fingerprint,
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Every fingerprint of persons who asked to stop.
    pub fn optout_fingerprints(&self) -> Result<std::collections::HashSet<String>, VaultError> {
        self.ensure_optouts()?;
        let mut stmt = self
            .connection()
            .prepare("SELECT fingerprint FROM optout_persons")
            .map_err(db)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Number of requests recorded.
    pub fn optouts(&self) -> Result<i64, VaultError> {
        self.ensure_optouts()?;
        self.connection()
            .query_row("SELECT COUNT(*) FROM optouts", [], |r| r.get(0))
            .map_err(db)
    }
}

/// Parses an opt-out CSV (header `provider_id,local_patient_id,insurer_number,symbol,number,branch,
/// requester,received_on,confirmed_on`; a row names either a provider + patient id or insurance
/// identifiers). Errors name the line, never the identifiers.
pub fn parse_csv(text: &str) -> Result<Vec<Request>, VaultError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|_| VaultError::Refused("line 1: not a CSV header".into()))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let mut out = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let line = i + 2;
        let bad = |what: &str| VaultError::Refused(format!("line {line}: {what}"));
        let row = row.map_err(|_| bad("not a CSV row"))?;
        let get = |name: &str| -> Option<String> {
            col(name)
                .and_then(|i| row.get(i))
                .map(str::to_string)
                .filter(|s| !s.is_empty())
        };
        let requester = get("requester")
            .and_then(|r| Requester::parse(&r))
            .ok_or_else(|| bad("requester is not self, guardian or bereaved"))?;
        let received_on = get("received_on").ok_or_else(|| bad("no received_on"))?;
        let subject = match (
            get("provider_id"),
            get("local_patient_id"),
            get("insurer_number"),
            get("number"),
        ) {
            (Some(p), Some(l), _, _) => Subject::Patient {
                provider_id: p,
                local_patient_id: l,
            },
            (_, _, Some(ins), Some(num)) => Subject::Insured {
                insurer_number: ins,
                symbol: get("symbol"),
                number: num,
                branch: get("branch"),
            },
            _ => {
                return Err(bad(
                    "names neither a provider + patient id nor insurance identifiers",
                ))
            }
        };
        out.push(Request {
            subject,
            requester,
            received_on,
            confirmed_on: get("confirmed_on"),
        });
    }
    Ok(out)
}
