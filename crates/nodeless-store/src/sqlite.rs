//! The embedded store: a revision log in SQLite (WAL, synchronous=FULL).
//!
//! One table holds every write as a row keyed by its revision, like kine does on SQL
//! databases; the live value of a key is its newest row. Compaction deletes rows that a
//! newer row of the same key has superseded.

use crate::backend::{Event, KeyValue, Revision, StoreError};
use crate::journal::{Journal, LogRow};
use crate::writer::JournalBackend;
use bytes::Bytes;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    value BLOB
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

pub struct SqliteJournal {
    conn: Connection,
}

impl SqliteJournal {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(io)?;
        // WAL with FULL sync: a commit is on disk when it returns, readers never block the writer.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
        )
        .map_err(io)?;
        conn.execute_batch(SCHEMA).map_err(io)?;
        Ok(Self { conn })
    }

    fn meta(&self, name: &str) -> Result<Revision, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(io)
    }
}

fn io(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull(e.to_string()),
        _ => StoreError::Io(e.to_string()),
    }
}

impl Journal for SqliteJournal {
    fn load(&mut self) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let revision = self.meta("revision")?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT l.key, l.value, l.create_revision, l.revision FROM log l \
                 JOIN (SELECT key, MAX(revision) AS rev FROM log GROUP BY key) m \
                 ON l.key = m.key AND l.revision = m.rev WHERE l.value IS NOT NULL ORDER BY l.key",
            )
            .map_err(io)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(KeyValue {
                    key: r.get(0)?,
                    value: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                    create_revision: r.get(2)?,
                    mod_revision: r.get(3)?,
                })
            })
            .map_err(io)?;
        let kvs = rows.collect::<Result<Vec<_>, _>>().map_err(io)?;
        Ok((kvs, revision))
    }

    fn append(&mut self, rows: &[LogRow], revision: Revision) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(io)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO log (revision, key, create_revision, value) VALUES (?1, ?2, ?3, ?4)")
                .map_err(io)?;
            for row in rows {
                insert
                    .execute(params![
                        row.revision,
                        row.key,
                        row.create_revision,
                        row.value.as_deref()
                    ])
                    .map_err(io)?;
            }
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('revision', ?1) \
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [revision],
            )
            .map_err(io)?;
        }
        tx.commit().map_err(io)
    }

    fn read_since(&mut self, after: Revision) -> Result<Vec<Event>, StoreError> {
        let compacted = self.meta("compacted")?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: compacted,
            });
        }
        let mut stmt = self
            .conn
            .prepare("SELECT key, revision, create_revision, value FROM log WHERE revision > ?1 ORDER BY revision")
            .map_err(io)?;
        let rows = stmt
            .query_map([after], |r| {
                Ok(LogRow {
                    key: r.get(0)?,
                    revision: r.get(1)?,
                    create_revision: r.get(2)?,
                    value: r.get::<_, Option<Vec<u8>>>(3)?.map(Bytes::from),
                })
            })
            .map_err(io)?;
        let rows = rows.collect::<Result<Vec<_>, _>>().map_err(io)?;
        Ok(rows.iter().map(LogRow::to_event).collect())
    }

    fn compact(&mut self, revision: Revision) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(io)?;
        tx.execute(
            "DELETE FROM log WHERE revision <= ?1 AND (value IS NULL OR revision NOT IN \
             (SELECT MAX(revision) FROM log GROUP BY key))",
            [revision],
        )
        .map_err(io)?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('compacted', ?1) \
             ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
            [revision],
        )
        .map_err(io)?;
        tx.commit().map_err(io)
    }
}

/// The embedded backend: a [`JournalBackend`] over SQLite.
pub type SqliteBackend = JournalBackend;

impl JournalBackend {
    /// Opens (or creates) the store at `path`.
    pub fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let journal = SqliteJournal::open(path)?;
        JournalBackend::start(Box::new(journal))
    }
}
