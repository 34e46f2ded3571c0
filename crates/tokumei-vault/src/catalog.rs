//! The catalog (SQLite): registered providers with the legally required details, and the record of
//! every package received (Art 55: date, provider, confirmed items, batch hash).

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::home::VaultError;

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Catalog(e.to_string())
}

/// A data provider registered at the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The open catalog.
pub struct Catalog {
    conn: Connection,
}

impl Catalog {
    /// Opens (or creates) the catalog database.
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
                 registered_at TEXT NOT NULL
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
        Ok(Catalog { conn })
    }

    /// Registers a new provider; an id already registered is refused (see [`crate::provider`]
    /// for registration by a technician and key rotation by two).
    pub fn add_provider(&self, p: &Provider) -> Result<(), VaultError> {
        self.conn
            .execute(
                "INSERT INTO providers (id, public_key, name, address, representative, acquisition,
                     notice_filing, notice_start, registered_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    /// A registered provider.
    pub fn provider(&self, id: &str) -> Result<Option<Provider>, VaultError> {
        self.conn
            .query_row(
                "SELECT id, public_key, name, address, representative, acquisition, notice_filing,
                     notice_start FROM providers WHERE id = ?1",
                params![id],
                |r| {
                    Ok(Provider {
                        id: r.get(0)?,
                        public_key: r.get(1)?,
                        name: r.get(2)?,
                        address: r.get(3)?,
                        representative: r.get(4)?,
                        acquisition: r.get(5)?,
                        notice_filing: r.get(6)?,
                        notice_start: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(db)
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
}
