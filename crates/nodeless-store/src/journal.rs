//! The durable log under the writer: SQLite in production, memory in tests.

use crate::backend::{Event, EventKind, KeyValue, Revision, StoreError};
use bytes::Bytes;

/// One committed write as the log records it; `value: None` is a deletion.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub key: String,
    pub revision: Revision,
    pub create_revision: Revision,
    pub value: Option<Bytes>,
}

impl LogRow {
    pub fn to_event(&self) -> Event {
        let kind = match &self.value {
            Some(v) => EventKind::Put(KeyValue {
                key: self.key.clone(),
                value: v.clone(),
                create_revision: self.create_revision,
                mod_revision: self.revision,
            }),
            None => EventKind::Delete,
        };
        Event {
            key: self.key.clone(),
            revision: self.revision,
            kind,
        }
    }
}

/// Persistence for the single writer thread. Implementations need no locking: only the
/// writer calls them.
pub trait Journal: Send + 'static {
    /// Live keys and the store's current revision.
    fn load(&mut self) -> Result<(Vec<KeyValue>, Revision), StoreError>;
    /// Appends a group of rows atomically and durably; `revision` is the last one's.
    fn append(&mut self, rows: &[LogRow], revision: Revision) -> Result<(), StoreError>;
    /// Rows after `after`, in order; `Compacted` if history there is gone.
    fn read_since(&mut self, after: Revision) -> Result<Vec<Event>, StoreError>;
    fn compact(&mut self, revision: Revision) -> Result<(), StoreError>;
}

/// A journal in memory: the fake for unit tests of everything above the store.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    rows: Vec<LogRow>,
    revision: Revision,
    compacted: Revision,
}

impl Journal for MemoryJournal {
    fn load(&mut self) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let mut live = std::collections::BTreeMap::new();
        for row in &self.rows {
            match &row.value {
                Some(_) => {
                    live.insert(row.key.clone(), row.clone());
                }
                None => {
                    live.remove(&row.key);
                }
            }
        }
        let kvs = live
            .into_values()
            .filter_map(|r| match r.to_event().kind {
                EventKind::Put(kv) => Some(kv),
                EventKind::Delete => None,
            })
            .collect();
        Ok((kvs, self.revision))
    }

    fn append(&mut self, rows: &[LogRow], revision: Revision) -> Result<(), StoreError> {
        self.rows.extend_from_slice(rows);
        self.revision = revision;
        Ok(())
    }

    fn read_since(&mut self, after: Revision) -> Result<Vec<Event>, StoreError> {
        if after < self.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: self.compacted,
            });
        }
        Ok(self
            .rows
            .iter()
            .filter(|r| r.revision > after)
            .map(LogRow::to_event)
            .collect())
    }

    fn compact(&mut self, revision: Revision) -> Result<(), StoreError> {
        let (live, _) = self.load()?;
        let keep: std::collections::HashSet<(String, Revision)> = live
            .into_iter()
            .map(|kv| (kv.key, kv.mod_revision))
            .collect();
        self.rows
            .retain(|r| r.revision > revision || keep.contains(&(r.key.clone(), r.revision)));
        self.compacted = self.compacted.max(revision);
        Ok(())
    }
}
