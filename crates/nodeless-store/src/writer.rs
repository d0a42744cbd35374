//! The single writer: evaluates compare-and-swaps against an in-memory index of live keys,
//! commits them to the journal in groups, then answers callers and feeds watchers.
//!
//! Group commit is what makes durable writes cheap: while one group is being fsynced, the
//! next requests queue up, and the following commit takes all of them at once.

use crate::backend::{
    Backend, Event, EventStream, KeyValue, Mutation, Precondition, Revision, StoreError, Txn,
    TxnResult, MAX_VALUE_BYTES,
};
use crate::journal::{Journal, LogRow};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use tokio::sync::{mpsc, oneshot};

/// Requests taken per commit at most; bounds the latency of the first one in a group.
const MAX_GROUP: usize = 1024;

enum Request {
    Txn(Txn, oneshot::Sender<Result<TxnResult, StoreError>>),
    LoadAndWatch(oneshot::Sender<Result<(Vec<KeyValue>, Revision, EventStream), StoreError>>),
    Watch(Revision, oneshot::Sender<Result<EventStream, StoreError>>),
    Revision(oneshot::Sender<Revision>),
    Compact(Revision, oneshot::Sender<Result<(), StoreError>>),
}

/// A [`Backend`] made of a [`Journal`] and one writer thread.
pub struct JournalBackend {
    requests: std_mpsc::Sender<Request>,
}

struct Writer {
    journal: Box<dyn Journal>,
    live: HashMap<String, KeyValue>,
    revision: Revision,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
}

impl JournalBackend {
    /// Loads the journal and starts the writer thread; it stops when the backend is dropped.
    pub fn start(mut journal: Box<dyn Journal>) -> Result<Self, StoreError> {
        let (kvs, revision) = journal.load()?;
        let live = kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
        let (tx, rx) = std_mpsc::channel();
        let writer = Writer {
            journal,
            live,
            revision,
            subscribers: Vec::new(),
        };
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Self { requests: tx })
    }

    /// A backend over a [`crate::MemoryJournal`], for tests.
    pub fn in_memory() -> Self {
        Self::start(Box::<crate::journal::MemoryJournal>::default())
            .expect("a memory journal cannot fail to load")
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }
}

#[async_trait]
impl Backend for JournalBackend {
    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        if let Mutation::Put(v) = &txn.mutation {
            if v.len() > MAX_VALUE_BYTES {
                return Err(StoreError::TooLarge {
                    size: v.len(),
                    limit: MAX_VALUE_BYTES,
                });
            }
        }
        self.ask(|tx| Request::Txn(txn, tx)).await?
    }

    async fn load_and_watch(&self) -> Result<(Vec<KeyValue>, Revision, EventStream), StoreError> {
        self.ask(Request::LoadAndWatch).await?
    }

    async fn watch(&self, after: Revision) -> Result<EventStream, StoreError> {
        self.ask(|tx| Request::Watch(after, tx)).await?
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.ask(Request::Revision).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.ask(|tx| Request::Compact(revision, tx)).await?
    }
}

/// What one transaction of a group will do once the group is durable.
struct Staged {
    reply: oneshot::Sender<Result<TxnResult, StoreError>>,
    result: TxnResult,
}

impl Writer {
    fn run(mut self, rx: std_mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.handle_group(group);
        }
    }

    fn handle_group(&mut self, group: Vec<Request>) {
        let mut rows = Vec::new();
        let mut staged = Vec::new();
        let mut others = Vec::new();
        // Evaluate against a scratch view so later txns in the group see earlier ones.
        let mut overlay: HashMap<String, Option<KeyValue>> = HashMap::new();
        let mut next = self.revision;
        for req in group {
            match req {
                Request::Txn(txn, reply) => {
                    let current = match overlay.get(&txn.key) {
                        Some(v) => v.clone(),
                        None => self.live.get(&txn.key).cloned(),
                    };
                    let result = match evaluate(&txn, current, next + 1) {
                        Ok((row, result)) => {
                            next = row.revision;
                            overlay.insert(row.key.clone(), row_kv(&row));
                            rows.push(row);
                            result
                        }
                        Err(failed) => failed,
                    };
                    staged.push(Staged { reply, result });
                }
                other => others.push(other),
            }
        }
        if !rows.is_empty() {
            if let Err(e) = self.journal.append(&rows, next) {
                tracing::error!(error = %e, "store commit failed");
                let msg = e.to_string();
                for s in staged {
                    let err = match &e {
                        StoreError::DiskFull(_) => StoreError::DiskFull(msg.clone()),
                        _ => StoreError::Io(msg.clone()),
                    };
                    let _ = s.reply.send(Err(err));
                }
                self.handle_others(others);
                return;
            }
            self.revision = next;
            for row in &rows {
                match row_kv(row) {
                    Some(kv) => self.live.insert(row.key.clone(), kv),
                    None => self.live.remove(&row.key),
                };
            }
        }
        for s in staged {
            let _ = s.reply.send(Ok(s.result));
        }
        if !rows.is_empty() {
            let events: Vec<Event> = rows.iter().map(LogRow::to_event).collect();
            self.subscribers
                .retain(|sub| events.iter().all(|e| sub.send(e.clone()).is_ok()));
        }
        self.handle_others(others);
    }

    fn handle_others(&mut self, others: Vec<Request>) {
        for req in others {
            match req {
                Request::LoadAndWatch(reply) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.subscribers.push(tx);
                    let mut kvs: Vec<KeyValue> = self.live.values().cloned().collect();
                    kvs.sort_by(|a, b| a.key.cmp(&b.key));
                    let _ = reply.send(Ok((kvs, self.revision, rx)));
                }
                Request::Watch(after, reply) => {
                    let _ = reply.send(self.watch_from(after));
                }
                Request::Revision(reply) => {
                    let _ = reply.send(self.revision);
                }
                Request::Compact(rev, reply) => {
                    let _ = reply.send(self.journal.compact(rev.min(self.revision)));
                }
                Request::Txn(..) => unreachable!("txns are staged, not deferred"),
            }
        }
    }

    fn watch_from(&mut self, after: Revision) -> Result<EventStream, StoreError> {
        let backlog = self.journal.read_since(after)?;
        let (tx, rx) = mpsc::unbounded_channel();
        for e in backlog {
            if tx.send(e).is_err() {
                return Ok(rx);
            }
        }
        self.subscribers.push(tx);
        Ok(rx)
    }
}

fn row_kv(row: &LogRow) -> Option<KeyValue> {
    row.value.as_ref().map(|v| KeyValue {
        key: row.key.clone(),
        value: v.clone(),
        create_revision: row.create_revision,
        mod_revision: row.revision,
    })
}

/// Checks the precondition; on success returns the row to write and the caller's answer.
fn evaluate(
    txn: &Txn,
    current: Option<KeyValue>,
    revision: Revision,
) -> Result<(LogRow, TxnResult), TxnResult> {
    let holds = match (txn.precondition, &current) {
        (Precondition::None, _) => true,
        (Precondition::MustNotExist, cur) => cur.is_none(),
        (Precondition::ModRevision(r), Some(cur)) => cur.mod_revision == r,
        (Precondition::ModRevision(_), None) => false,
    };
    if !holds {
        return Err(TxnResult::Failed { current });
    }
    let row = match &txn.mutation {
        Mutation::Put(v) => LogRow {
            key: txn.key.clone(),
            revision,
            create_revision: current
                .as_ref()
                .map(|c| c.create_revision)
                .unwrap_or(revision),
            value: Some(v.clone()),
        },
        Mutation::Delete => {
            if current.is_none() {
                return Err(TxnResult::Failed { current: None });
            }
            LogRow {
                key: txn.key.clone(),
                revision,
                create_revision: 0,
                value: None,
            }
        }
    };
    let result = TxnResult::Committed {
        revision,
        kv: row_kv(&row),
        prev: current,
    };
    Ok((row, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn put(key: &str, pre: Precondition, v: &str) -> Txn {
        Txn {
            key: key.into(),
            precondition: pre,
            mutation: Mutation::Put(Bytes::from(v.to_string())),
        }
    }

    #[tokio::test]
    async fn create_twice_fails_the_second_time() {
        let b = JournalBackend::in_memory();
        let r1 = b
            .txn(put("/a", Precondition::MustNotExist, "1"))
            .await
            .expect("txn");
        assert!(matches!(r1, TxnResult::Committed { revision: 1, .. }));
        let r2 = b
            .txn(put("/a", Precondition::MustNotExist, "2"))
            .await
            .expect("txn");
        assert!(matches!(r2, TxnResult::Failed { current: Some(_) }));
    }

    #[tokio::test]
    async fn stale_mod_revision_is_rejected() {
        let b = JournalBackend::in_memory();
        b.txn(put("/a", Precondition::None, "1"))
            .await
            .expect("txn");
        b.txn(put("/a", Precondition::ModRevision(1), "2"))
            .await
            .expect("txn");
        let r = b
            .txn(put("/a", Precondition::ModRevision(1), "3"))
            .await
            .expect("txn");
        match r {
            TxnResult::Failed { current: Some(kv) } => assert_eq!(kv.mod_revision, 2),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn watch_replays_history_then_follows() {
        let b = JournalBackend::in_memory();
        b.txn(put("/a", Precondition::None, "1"))
            .await
            .expect("txn");
        b.txn(put("/b", Precondition::None, "1"))
            .await
            .expect("txn");
        let mut w = b.watch(1).await.expect("watch");
        b.txn(Txn {
            key: "/a".into(),
            precondition: Precondition::None,
            mutation: Mutation::Delete,
        })
        .await
        .expect("txn");
        let e1 = w.recv().await.expect("event");
        let e2 = w.recv().await.expect("event");
        assert_eq!((e1.key.as_str(), e1.revision), ("/b", 2));
        assert_eq!((e2.key.as_str(), e2.revision), ("/a", 3));
        assert_eq!(e2.kind, crate::EventKind::Delete);
    }

    #[tokio::test]
    async fn watch_from_a_compacted_revision_is_refused() {
        let b = JournalBackend::in_memory();
        for i in 0..5 {
            b.txn(put("/a", Precondition::None, &i.to_string()))
                .await
                .expect("txn");
        }
        b.compact(4).await.expect("compact");
        assert!(matches!(
            b.watch(2).await,
            Err(StoreError::Compacted { .. })
        ));
        let (kvs, rev, _) = b.load_and_watch().await.expect("load");
        assert_eq!((kvs.len(), rev), (1, 5));
    }
}
