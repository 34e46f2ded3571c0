//! The catalog (SQLite): registered providers with the legally required details, and the record of
//! every package received (Art 55: date, provider, confirmed items, batch hash).

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::home::VaultError;

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

/// A data provider registered at the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provider {
    /// Provider id (as it names itself in its packages).
    pub id: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Representative.
    pub representative: String,
    /// How the provider acquired the data (confirmed at receipt, Art 55).
    pub acquisition: String,
    /// Reference of the provider's notice filing with the minister, if filed.
    pub notice_filing: Option<String>,
    /// Date the provider's notice to patients began (YYYY-MM-DD), if known.
    pub notice_start: Option<String>,
}

/// A package received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// Package id from its manifest.
    pub package_id: String,
    /// Provider.
    pub provider_id: String,
    /// When it was received (UTC, RFC 3339).
    pub received_at: String,
    /// SHA-256 of the encrypted package as received, hex.
    pub batch_hash: String,
    /// Files in the package.
    pub files: i64,
    /// Records counted in the manifest.
    pub records: i64,
    /// Items confirmed (provider name, address, representative, acquisition) as recorded.
    pub confirmed: String,
}

/// The columns [`row_provider`] reads.
const PROVIDER_COLUMNS: &str = "id, public_key, name, address, representative, acquisition, \
                                notice_filing, notice_start, sig";

/// A provider row and its signature.
fn row_provider(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Provider, Option<String>)> {
    Ok((
        Provider {
            id: r.get(0)?,
            public_key: r.get(1)?,
            name: r.get(2)?,
            address: r.get(3)?,
            representative: r.get(4)?,
            acquisition: r.get(5)?,
            notice_filing: r.get(6)?,
            notice_start: r.get(7)?,
        },
        r.get(8)?,
    ))
}

/// The open catalog.
pub struct Catalog {
    conn: Connection,
    keys: Option<crate::authz::AuthzKeys>,
}

impl Catalog {
    /// Opens the catalog with the home's keys: its users and providers are checked at each read
    /// (see [`crate::authz`]) and signed at each change. `Home::catalog` opens it so.
    pub fn open_authenticated(
        path: &Path,
        keys: crate::authz::AuthzKeys,
    ) -> Result<Catalog, VaultError> {
        let mut c = Catalog::open(path)?;
        crate::authz::bind(&c.conn, &keys)?;
        c.keys = Some(keys);
        Ok(c)
    }

    /// The authenticating keys; reading or changing users and providers needs them.
    pub(crate) fn keys(&self) -> Result<&crate::authz::AuthzKeys, VaultError> {
        self.keys.as_ref().ok_or_else(|| {
            VaultError::Catalog(
                "users and providers are read through the home (Home::catalog), which checks them"
                    .into(),
            )
        })
    }

    /// Runs `change` in one transaction with a new signed head, then records the head in the
    /// audit log.
    pub(crate) fn change_authz(
        &self,
        change: impl FnOnce(&Connection, &crate::authz::AuthzKeys) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let keys = self.keys()?;
        let tx = self.conn.unchecked_transaction().map_err(db)?;
        change(&tx, keys)?;
        crate::authz::new_head(&tx, keys)?;
        tx.commit().map_err(db)?;
        crate::authz::bind(&self.conn, keys)
    }

    fn provider_fields(p: &Provider) -> [Option<&str>; 8] {
        [
            Some(p.id.as_str()),
            Some(p.public_key.as_str()),
            Some(p.name.as_str()),
            Some(p.address.as_str()),
            Some(p.representative.as_str()),
            Some(p.acquisition.as_str()),
            p.notice_filing.as_deref(),
            p.notice_start.as_deref(),
        ]
    }

    /// Signs every user and provider row as it stands, and a head over them (the migration to
    /// layout 3; the rows are trusted as they are at that moment).
    pub(crate) fn sign_all_rows(self, keys: &crate::authz::AuthzKeys) -> Result<(), VaultError> {
        let c = Catalog {
            conn: self.conn,
            keys: Some(keys.clone()),
        };
        let providers: Vec<Provider> = {
            let mut stmt = c
                .conn
                .prepare(&format!(
                    "SELECT {PROVIDER_COLUMNS} FROM providers ORDER BY id"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], row_provider).map_err(db)?;
            rows.map(|r| r.map(|(p, _)| p))
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        let users = crate::access::unsigned_users(&c.conn)?;
        c.change_authz(|conn, keys| {
            for p in &providers {
                let sig = keys.sign_row("providers", &Catalog::provider_fields(p))?;
                conn.execute(
                    "UPDATE providers SET sig = ?2 WHERE id = ?1",
                    params![p.id, sig],
                )
                .map_err(db)?;
            }
            for u in &users {
                crate::access::sign_user(conn, keys, u)?;
            }
            Ok(())
        })
    }

    /// Opens (or creates) the catalog database without the home's keys: receipts and the opt-out
    /// registry only (users and providers are refused).
    pub fn open(path: &Path) -> Result<Catalog, VaultError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS providers (
                 id TEXT PRIMARY KEY,
                 public_key TEXT NOT NULL,
                 name TEXT NOT NULL,
                 address TEXT NOT NULL,
                 representative TEXT NOT NULL,
                 acquisition TEXT NOT NULL,
                 notice_filing TEXT,
                 notice_start TEXT,
                 registered_at TEXT NOT NULL,
                 sig TEXT
             );
             CREATE TABLE IF NOT EXISTS receipts (
                 package_id TEXT PRIMARY KEY,
                 provider_id TEXT NOT NULL REFERENCES providers(id),
                 received_at TEXT NOT NULL,
                 batch_hash TEXT NOT NULL,
                 files INTEGER NOT NULL,
                 records INTEGER NOT NULL,
                 confirmed TEXT NOT NULL
             );",
        )
        .map_err(db)?;
        let c = Catalog { conn, keys: None };
        c.ensure_users()?;
        crate::authz::ensure(&c.conn)?;
        Ok(c)
    }

    /// Registers a new provider; an id already registered is refused (see [`crate::provider`]
    /// for registration by a technician and key rotation by two).
    pub fn add_provider(&self, p: &Provider) -> Result<(), VaultError> {
        self.change_authz(|conn, keys| {
            let sig = keys.sign_row("providers", &Catalog::provider_fields(p))?;
            conn.execute(
                "INSERT INTO providers (id, public_key, name, address, representative, acquisition,
                     notice_filing, notice_start, registered_at, sig)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    p.id,
                    p.public_key,
                    p.name,
                    p.address,
                    p.representative,
                    p.acquisition,
                    p.notice_filing,
                    p.notice_start,
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    sig,
                ],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    /// Replaces a provider's key (the rotation two technicians approved), re-signing its row.
    pub(crate) fn set_provider_key(&self, id: &str, public_key: &str) -> Result<(), VaultError> {
        let mut p = self
            .provider(id)?
            .ok_or_else(|| VaultError::Refused(format!("provider {id} is not registered")))?;
        p.public_key = public_key.to_string();
        self.change_authz(|conn, keys| {
            let sig = keys.sign_row("providers", &Catalog::provider_fields(&p))?;
            conn.execute(
                "UPDATE providers SET public_key = ?2, sig = ?3 WHERE id = ?1",
                params![id, public_key, sig],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    /// A registered provider, its row checked against the operator's signature.
    pub fn provider(&self, id: &str) -> Result<Option<Provider>, VaultError> {
        let keys = self.keys()?;
        let found = self
            .conn
            .query_row(
                &format!("SELECT {PROVIDER_COLUMNS} FROM providers WHERE id = ?1"),
                params![id],
                row_provider,
            )
            .optional()
            .map_err(db)?;
        match found {
            Some((p, sig)) => {
                keys.check_row("providers", &Catalog::provider_fields(&p), sig.as_deref())?;
                Ok(Some(p))
            }
            None => Ok(None),
        }
    }

    fn ensure_recruit_keys(conn: &Connection) -> Result<(), VaultError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS provider_recruit_keys (
                 provider_id TEXT PRIMARY KEY REFERENCES providers(id),
                 recipient TEXT NOT NULL,
                 set_by TEXT NOT NULL,
                 set_at TEXT NOT NULL,
                 sig TEXT
             );",
        )
        .map_err(db)
    }

    /// Registers the age recipient that provider `id`'s recruitment lists are sealed to (signed
    /// like the provider's row); one already registered is refused unless `replace` (the second
    /// technician's approval of a replacement, see [`crate::provider`]).
    pub fn put_recruit_recipient(
        &self,
        id: &str,
        recipient: &str,
        set_by: &str,
        replace: bool,
    ) -> Result<(), VaultError> {
        if self.recruit_recipient(id)?.is_some() != replace {
            return Err(VaultError::Refused(if replace {
                format!("provider {id} has no recruitment key to replace")
            } else {
                format!("provider {id} already has a recruitment key")
            }));
        }
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.change_authz(|conn, keys| {
            Catalog::ensure_recruit_keys(conn)?;
            let fields = [Some(id), Some(recipient), Some(set_by), Some(at.as_str())];
            let sig = keys.sign_row("provider_recruit_keys", &fields)?;
            conn.execute(
                "INSERT OR REPLACE INTO provider_recruit_keys
                     (provider_id, recipient, set_by, set_at, sig)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, recipient, set_by, at, sig],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    /// The age recipient registered for provider `id`'s recruitment lists, its row checked
    /// against the operator's signature.
    pub fn recruit_recipient(&self, id: &str) -> Result<Option<String>, VaultError> {
        let keys = self.keys()?;
        Catalog::ensure_recruit_keys(&self.conn)?;
        let row: Option<(String, String, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT recipient, set_by, set_at, sig FROM provider_recruit_keys
                 WHERE provider_id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((recipient, by, at, sig)) = row else {
            return Ok(None);
        };
        let fields = [
            Some(id),
            Some(recipient.as_str()),
            Some(by.as_str()),
            Some(at.as_str()),
        ];
        keys.check_row("provider_recruit_keys", &fields, sig.as_deref())?;
        Ok(Some(recipient))
    }

    /// Every registered provider in id order, each row checked against the operator's signature.
    pub fn providers(&self) -> Result<Vec<Provider>, VaultError> {
        let keys = self.keys()?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {PROVIDER_COLUMNS} FROM providers ORDER BY id"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map([], row_provider)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for (p, sig) in rows {
            keys.check_row("providers", &Catalog::provider_fields(&p), sig.as_deref())?;
            out.push(p);
        }
        Ok(out)
    }

    /// The receipt of a package, if it was received.
    pub fn receipt(&self, package_id: &str) -> Result<Option<Receipt>, VaultError> {
        self.conn
            .query_row(
                "SELECT package_id, provider_id, received_at, batch_hash, files, records, confirmed
                 FROM receipts WHERE package_id = ?1",
                params![package_id],
                |r| {
                    Ok(Receipt {
                        package_id: r.get(0)?,
                        provider_id: r.get(1)?,
                        received_at: r.get(2)?,
                        batch_hash: r.get(3)?,
                        files: r.get(4)?,
                        records: r.get(5)?,
                        confirmed: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(db)
    }

    /// Records a receipt (one transaction).
    pub fn add_receipt(&self, r: &Receipt) -> Result<(), VaultError> {
        self.conn
            .execute(
                "INSERT INTO receipts (package_id, provider_id, received_at, batch_hash, files,
                     records, confirmed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.package_id,
                    r.provider_id,
                    r.received_at,
                    r.batch_hash,
                    r.files,
                    r.records,
                    r.confirmed
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    /// The connection (for the registry modules of this crate).
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Ids of every package received, in order of receipt.
    pub fn receipt_ids(&self) -> Result<Vec<String>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT package_id FROM receipts ORDER BY received_at, package_id")
            .map_err(db)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Number of receipts.
    pub fn receipts(&self) -> Result<i64, VaultError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM receipts", [], |r| r.get(0))
            .map_err(db)
    }

    /// Number of packages received from one provider.
    pub fn receipts_of(&self, provider_id: &str) -> Result<i64, VaultError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM receipts WHERE provider_id = ?1",
                params![provider_id],
                |r| r.get(0),
            )
            .map_err(db)
    }
}
