//! The storage contract: what the API server needs from a store, shaped like etcd's API.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

/// A store-wide, strictly increasing version; every write gets the next one.
pub type Revision = i64;

/// One key at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created the key (stays across updates).
    pub create_revision: Revision,
    /// Revision of the write that produced this value.
    pub mod_revision: Revision,
}

/// What must hold for a transaction to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    None,
    MustNotExist,
    /// The key exists and was last written at this revision.
    ModRevision(Revision),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    Put(Bytes),
    Delete,
}

/// A single-key compare-and-swap: the only write the API server needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    pub key: String,
    pub precondition: Precondition,
    pub mutation: Mutation,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TxnResult {
    /// Applied at `revision`; `kv` is the new value (None after a delete).
    Committed {
        revision: Revision,
        kv: Option<KeyValue>,
        prev: Option<KeyValue>,
    },
    /// The precondition did not hold; `current` is what the key holds now.
    Failed { current: Option<KeyValue> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Put(KeyValue),
    Delete,
}

/// One committed change, delivered to watchers in revision order.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub key: String,
    pub revision: Revision,
    pub kind: EventKind,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("revision {requested} has been compacted; the oldest available is {oldest}")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    #[error("storage is full: {0}")]
    DiskFull(String),
    #[error("value of {size} bytes is larger than the store's limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("storage failure: {0}")]
    Io(String),
    #[error("the store is shutting down")]
    Closed,
}

/// Ordered events after a revision, then live ones; ends when the store closes.
pub type EventStream = mpsc::UnboundedReceiver<Event>;

/// A durable, revisioned key-value store.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Applies one compare-and-swap. Durable when it returns `Committed`.
    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError>;

    /// Every live key and the revision the snapshot was taken at, plus a stream of every
    /// change after that revision, with nothing missed in between.
    async fn load_and_watch(&self) -> Result<(Vec<KeyValue>, Revision, EventStream), StoreError>;

    /// Changes after `after`, replayed from the log and then followed live.
    async fn watch(&self, after: Revision) -> Result<EventStream, StoreError>;

    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Forgets history at and below `revision` (live keys stay).
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}

/// Largest value the store accepts, as etcd's default request limit.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;
