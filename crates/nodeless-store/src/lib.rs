//! Revisioned, durable key-value storage for nodeless, and the watch cache above it.
//!
//! The API server stores every object under a key (`/registry/<group>/<plural>/<ns>/<name>`)
//! in a [`Backend`]: a log of revisions with single-key compare-and-swap transactions,
//! watch from a revision, and compaction — the shape of etcd's API, so an etcd backend can
//! stand beside the embedded one. [`SqliteBackend`] is the embedded store: one writer thread
//! commits requests in groups (one fsync for many writes) to SQLite in WAL mode.
//! [`Cache`] keeps every current object decoded in memory and the recent history of changes,
//! and serves lists, gets and watches from there.

mod backend;
mod cache;
mod journal;
mod sqlite;
mod writer;

pub use backend::{
    Backend, Event, EventKind, KeyValue, Mutation, Precondition, Revision, StoreError, Txn,
    TxnResult,
};
pub use cache::{
    Cache, CacheError, CachedObject, ListOptions, ListPage, WatchEvent, WatchEventType,
    WatchFilter, WatchStart, Watcher,
};
pub use journal::MemoryJournal;
pub use sqlite::SqliteBackend;
pub use writer::JournalBackend;
