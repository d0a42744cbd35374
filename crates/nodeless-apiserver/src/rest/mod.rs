//! The object layer between HTTP and storage: upstream's generic registry store.
//!
//! Every write, whether it comes from a client or from an in-process controller (garbage
//! collector, namespace lifecycle, CRD establishment), goes through here, so the object
//! semantics (uid, generation, resourceVersion preconditions, status separation,
//! finalizers, graceful deletion) hold for all of them.

mod decode;
mod delete;
mod read;
mod write;

pub use delete::{
    finished_deleting, DeleteOptions, DeleteOutcome, Propagation, FOREGROUND, ORPHAN,
};
pub use read::{ListQuery, ListResult};
pub use write::{FieldValidation, Outcome, WriteOptions};

use crate::registry::Registry;
use nodeless_core::resource::ResourceType;
use nodeless_core::{meta, StatusError};
use nodeless_store::{
    Backend, Cache, CacheError, CachedObject, KeyValue, Mutation, Precondition, Revision,
    StoreError, Txn, TxnResult,
};
use serde_json::Value;
use std::sync::Arc;

/// The API's view of storage; cheap to clone.
#[derive(Clone)]
pub struct Api {
    pub registry: Registry,
    backend: Arc<dyn Backend>,
    pub cache: Arc<Cache>,
}

/// What a read-modify-write step decided.
pub enum Change {
    Put(Value),
    /// Remove the key. `Some` is the state to report (an update that removed the last
    /// finalizer returns the updated object); `None` reports the last stored state.
    Delete(Option<Value>),
    Unchanged,
}

impl Api {
    pub fn new(registry: Registry, backend: Arc<dyn Backend>, cache: Arc<Cache>) -> Self {
        Self {
            registry,
            backend,
            cache,
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The current object, from the cache.
    pub fn get(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, StatusError> {
        self.cache
            .get(&rt.key(ns, name))
            .map(|o| o.value)
            .ok_or_else(|| StatusError::not_found(&rt.group, &rt.plural, name))
    }

    /// Stores a new object; fails with AlreadyExists if the key is taken.
    pub(crate) async fn insert(
        &self,
        rt: &ResourceType,
        key: &str,
        name: &str,
        obj: &Value,
    ) -> Result<Arc<Value>, StatusError> {
        let txn = Txn {
            key: key.into(),
            precondition: Precondition::MustNotExist,
            mutation: Mutation::Put(encode(obj)?),
        };
        match self.backend.txn(txn).await.map_err(store_error)? {
            TxnResult::Committed { revision, kv, .. } => self.settle(revision, kv, key).await,
            TxnResult::Failed { .. } => {
                Err(StatusError::already_exists(&rt.group, &rt.plural, name))
            }
        }
    }

    /// Read-modify-write with compare-and-swap, retried on races (upstream's GuaranteedUpdate).
    /// `f` sees the latest object each time and decides; its errors end the loop.
    pub(crate) async fn modify(
        &self,
        rt: &ResourceType,
        key: &str,
        name: &str,
        mut f: impl FnMut(&Arc<Value>) -> Result<Change, StatusError>,
    ) -> Result<(Arc<Value>, bool), StatusError> {
        let mut current = self.cache.get(key).map(|o| (o.value, o.mod_revision));
        for _ in 0..32 {
            let Some((cur, rev)) = current.take() else {
                return Err(StatusError::not_found(&rt.group, &rt.plural, name));
            };
            let mut last_state = None;
            let mutation = match f(&cur)? {
                Change::Unchanged => return Ok((cur, false)),
                Change::Put(v) => Mutation::Put(encode(&v)?),
                Change::Delete(state) => {
                    last_state = state;
                    Mutation::Delete
                }
            };
            let deleting = mutation == Mutation::Delete;
            let txn = Txn {
                key: key.into(),
                precondition: Precondition::ModRevision(rev),
                mutation,
            };
            match self.backend.txn(txn).await.map_err(store_error)? {
                TxnResult::Committed { revision, kv, prev } => {
                    if deleting {
                        self.wait(revision).await?;
                        let last = match last_state {
                            Some(mut v) => {
                                meta::set_str(&mut v, "resourceVersion", revision.to_string());
                                Arc::new(v)
                            }
                            None => prev.map(|p| decode_kv(&p, revision)).unwrap_or(cur),
                        };
                        return Ok((last, true));
                    }
                    return self.settle(revision, kv, key).await.map(|v| (v, true));
                }
                TxnResult::Failed { current: now } => {
                    current = now.map(|kv| (decode_kv(&kv, kv.mod_revision), kv.mod_revision));
                }
            }
        }
        Err(StatusError::conflict_modified(&rt.group, &rt.plural, name))
    }

    async fn settle(
        &self,
        revision: Revision,
        kv: Option<KeyValue>,
        key: &str,
    ) -> Result<Arc<Value>, StatusError> {
        self.wait(revision).await?;
        match kv {
            Some(kv) => Ok(decode_kv(&kv, revision)),
            None => self
                .cache
                .get(key)
                .map(|o: CachedObject| o.value)
                .ok_or_else(|| StatusError::internal("object vanished after write")),
        }
    }

    async fn wait(&self, revision: Revision) -> Result<(), StatusError> {
        self.cache.wait_for(revision).await.map_err(cache_error)
    }
}

/// Stored form: the object without its resourceVersion (the revision is the version).
fn encode(obj: &Value) -> Result<bytes::Bytes, StatusError> {
    let mut v = obj.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
    }
    serde_json::to_vec(&v)
        .map(bytes::Bytes::from)
        .map_err(|e| StatusError::internal(e.to_string()))
}

fn decode_kv(kv: &KeyValue, revision: Revision) -> Arc<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
    Arc::new(v)
}

pub fn store_error(e: StoreError) -> StatusError {
    match e {
        StoreError::TooLarge { size, limit } => StatusError::request_entity_too_large(format!(
            "the object is too large to store: {size} bytes, the limit is {limit} bytes"
        )),
        StoreError::Compacted { .. } => StatusError::gone(e.to_string()),
        StoreError::DiskFull(m) => {
            tracing::error!(error = %m, "storage is full");
            StatusError::new(
                507,
                "InsufficientStorage",
                format!("the server's storage is full; the write was not made: {m}"),
            )
        }
        StoreError::Io(m) => {
            tracing::error!(error = %m, "storage failure");
            StatusError::internal(format!("storage failure: {m}"))
        }
        StoreError::Closed => StatusError::service_unavailable("the server is shutting down"),
    }
}

pub fn cache_error(e: CacheError) -> StatusError {
    match e {
        CacheError::TooOld { requested, oldest } => {
            StatusError::gone(format!("too old resource version: {requested} ({oldest})"))
        }
        CacheError::ContinueExpired => StatusError::gone(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ),
        CacheError::TooNew { requested, current } => {
            let message = format!("Too large resource version: {requested}, current: {current}");
            let mut e = StatusError::new(504, "Timeout", message.clone());
            // client-go recognises this case by the cause, not the message.
            let cause = nodeless_core::status::Cause { reason: "ResourceVersionTooLarge".into(), message, field: String::new() };
            e.details = Some(nodeless_core::status::Details { retry_after_seconds: Some(1), causes: vec![cause], ..Default::default() });
            e
        }
        CacheError::Store(s) => store_error(s),
    }
}
