//! The watch cache: every live object decoded in memory, plus a window of recent changes.
//!
//! Lists, gets and watches are served from here, never from the disk. The cache follows the
//! backend's event stream in revision order; a writer that needs read-your-writes waits for
//! the cache to reach its revision ([`Cache::wait_for`]). Objects are stored once and shared
//! (`Arc`) between the live map, the history window and list snapshots; the live map is a
//! persistent map, so a paginated list keeps a consistent snapshot for the price of a clone.

use crate::backend::{Backend, Event, EventKind, EventStream, KeyValue, Revision, StoreError};
use im::OrdMap;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Changes kept for watches that start in the past.
const DEFAULT_HISTORY: usize = 20_000;
/// Paginated list snapshots kept, and for how long (like etcd's compaction interval).
const MAX_SNAPSHOTS: usize = 256;
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);
/// Events buffered per watcher before a slow watcher is closed (it then re-watches).
const WATCHER_BUFFER: usize = 10_000;

#[derive(Debug, Clone)]
pub struct CachedObject {
    pub key: String,
    /// The object with `metadata.resourceVersion` set to `mod_revision`.
    pub value: Arc<Value>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub kind: WatchEventType,
    pub object: Arc<Value>,
    pub revision: Revision,
}

/// Decides whether an object is seen by a list or watch (label and field selectors).
pub type WatchFilter = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Synthetic ADDED events for what exists now, then changes.
    Now,
    /// Changes after this revision.
    After(Revision),
}

/// A started watch: events to send first, then the live channel.
pub struct Watcher {
    pub initial: Vec<WatchEvent>,
    pub live: mpsc::Receiver<WatchEvent>,
    /// The revision the watch is consistent with once `initial` is sent.
    pub revision: Revision,
}

#[derive(Clone, Default)]
pub struct ListOptions {
    pub prefix: String,
    pub limit: Option<usize>,
    /// Resume after this key, in the snapshot taken at this revision.
    pub continue_from: Option<(String, Revision)>,
    pub filter: Option<WatchFilter>,
}

#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<CachedObject>,
    pub revision: Revision,
    /// Where the next page starts (last key returned, snapshot revision).
    pub next: Option<(String, Revision)>,
    pub remaining: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld {
        requested: Revision,
        oldest: Revision,
    },
    #[error("the provided continue parameter is too old to display a consistent list result")]
    ContinueExpired,
    #[error("too large resource version: {requested}, current: {current}")]
    TooNew {
        requested: Revision,
        current: Revision,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct HistoryEntry {
    revision: Revision,
    key: String,
    prev: Option<Arc<Value>>,
    cur: Option<Arc<Value>>,
}

struct WatcherSlot {
    prefix: String,
    filter: Option<WatchFilter>,
    tx: mpsc::Sender<WatchEvent>,
}

struct State {
    revision: Revision,
    objects: OrdMap<String, CachedObject>,
    history: VecDeque<HistoryEntry>,
    /// Watches from any revision at or after this one can be served.
    oldest: Revision,
    watchers: Vec<WatcherSlot>,
}

pub struct Cache {
    state: RwLock<State>,
    snapshots: Mutex<VecDeque<(Revision, OrdMap<String, CachedObject>, Instant)>>,
    applied: watch::Sender<Revision>,
    history_limit: usize,
}

impl Cache {
    /// Loads every live key from the backend and follows its changes in a background task
    /// that ends when the backend's stream does.
    pub async fn start(backend: Arc<dyn Backend>) -> Result<Arc<Cache>, StoreError> {
        Self::start_with_history(backend, DEFAULT_HISTORY).await
    }

    pub async fn start_with_history(
        backend: Arc<dyn Backend>,
        history_limit: usize,
    ) -> Result<Arc<Cache>, StoreError> {
        let (kvs, revision, events) = backend.load_and_watch().await?;
        let mut objects = OrdMap::new();
        for kv in kvs {
            if let Some(obj) = decode(&kv) {
                objects.insert(kv.key.clone(), obj);
            }
        }
        let (applied, _) = watch::channel(revision);
        let cache = Arc::new(Cache {
            state: RwLock::new(State {
                revision,
                objects,
                history: VecDeque::new(),
                oldest: revision,
                watchers: Vec::new(),
            }),
            snapshots: Mutex::new(VecDeque::new()),
            applied,
            history_limit,
        });
        tokio::spawn(follow(Arc::downgrade(&cache), events));
        Ok(cache)
    }

    pub fn revision(&self) -> Revision {
        self.state.read().revision
    }

    /// Waits until the cache has applied `revision` (read-your-writes after a commit).
    pub async fn wait_for(&self, revision: Revision) -> Result<(), CacheError> {
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(Duration::from_secs(3), async {
            rx.wait_for(|r| *r >= revision).await.is_ok()
        })
        .await
        .unwrap_or(false);
        if reached {
            Ok(())
        } else {
            Err(CacheError::TooNew {
                requested: revision,
                current: self.revision(),
            })
        }
    }

    pub fn get(&self, key: &str) -> Option<CachedObject> {
        self.state.read().objects.get(key).cloned()
    }

    /// Number of live objects under a prefix.
    pub fn count(&self, prefix: &str) -> usize {
        let state = self.state.read();
        range_from(&state.objects, prefix, None).count()
    }

    pub fn list(&self, opts: &ListOptions) -> Result<ListPage, CacheError> {
        let (objects, revision) = match &opts.continue_from {
            Some((_, rev)) => (self.snapshot(*rev)?, *rev),
            None => {
                let s = self.state.read();
                (s.objects.clone(), s.revision)
            }
        };
        let after = opts.continue_from.as_ref().map(|(k, _)| k.as_str());
        let mut items = Vec::new();
        let mut next = None;
        let limit = opts.limit.unwrap_or(usize::MAX);
        for obj in range_from(&objects, &opts.prefix, after)
            .filter(|o| opts.filter.as_ref().is_none_or(|f| f(&o.value)))
        {
            if items.len() == limit {
                next = items
                    .last()
                    .map(|o: &CachedObject| (o.key.clone(), revision));
                break;
            }
            items.push(obj.clone());
        }
        let mut remaining = None;
        if let Some((last, _)) = &next {
            // The object we peeked at is the first of the next page; count it and the rest.
            if opts.filter.is_none() {
                remaining = Some(range_from(&objects, &opts.prefix, Some(last)).count());
            }
            self.keep_snapshot(revision, objects);
        }
        Ok(ListPage {
            items,
            revision,
            next,
            remaining,
        })
    }

    fn keep_snapshot(&self, revision: Revision, objects: OrdMap<String, CachedObject>) {
        let mut snaps = self.snapshots.lock();
        snaps.retain(|(_, _, at)| at.elapsed() < SNAPSHOT_TTL);
        if snaps.iter().any(|(r, _, _)| *r == revision) {
            return;
        }
        if snaps.len() >= MAX_SNAPSHOTS {
            snaps.pop_front();
        }
        snaps.push_back((revision, objects, Instant::now()));
    }

    /// A kept snapshot; using it makes it the most recently used (evicted last).
    fn snapshot(&self, revision: Revision) -> Result<OrdMap<String, CachedObject>, CacheError> {
        let mut snaps = self.snapshots.lock();
        let i = snaps
            .iter()
            .position(|(r, _, at)| *r == revision && at.elapsed() < SNAPSHOT_TTL)
            .ok_or(CacheError::ContinueExpired)?;
        let (rev, objects, at) = snaps.remove(i).expect("index from position");
        snaps.push_back((rev, objects.clone(), at));
        Ok(objects)
    }

    /// Starts a watch on every key under `prefix`.
    pub fn watch(
        &self,
        prefix: &str,
        start: WatchStart,
        filter: Option<WatchFilter>,
    ) -> Result<Watcher, CacheError> {
        let mut state = self.state.write();
        let matches = |v: &Value| filter.as_ref().is_none_or(|f| f(v));
        let initial = match start {
            WatchStart::Now => range_from(&state.objects, prefix, None)
                .filter(|o| matches(&o.value))
                .map(|o| WatchEvent {
                    kind: WatchEventType::Added,
                    object: o.value.clone(),
                    revision: o.mod_revision,
                })
                .collect(),
            WatchStart::After(rev) => {
                if rev < state.oldest {
                    return Err(CacheError::TooOld {
                        requested: rev,
                        oldest: state.oldest,
                    });
                }
                if rev > state.revision {
                    return Err(CacheError::TooNew {
                        requested: rev,
                        current: state.revision,
                    });
                }
                state
                    .history
                    .iter()
                    .filter(|h| h.revision > rev && h.key.starts_with(prefix))
                    .filter_map(|h| translate(h, &matches))
                    .collect()
            }
        };
        let (tx, live) = mpsc::channel(WATCHER_BUFFER);
        state.watchers.push(WatcherSlot {
            prefix: prefix.to_string(),
            filter,
            tx,
        });
        Ok(Watcher {
            initial,
            live,
            revision: state.revision,
        })
    }

    /// The cache's revision if every event up to it has already been queued to this watcher
    /// (its channel is empty): the revision a bookmark may safely carry.
    pub fn quiescent_revision(&self, live: &mpsc::Receiver<WatchEvent>) -> Option<Revision> {
        let state = self.state.read();
        live.is_empty().then_some(state.revision)
    }

    fn apply(&self, event: Event) {
        let mut state = self.state.write();
        if event.revision <= state.revision {
            return; // already applied (a restarted stream may repeat)
        }
        let prev = state.objects.get(&event.key).map(|o| o.value.clone());
        let cur = match &event.kind {
            EventKind::Put(kv) => decode(kv).map(|obj| {
                let v = obj.value.clone();
                state.objects.insert(event.key.clone(), obj);
                v
            }),
            EventKind::Delete => {
                state.objects.remove(&event.key);
                // A deleted object is reported with the deletion's revision, as upstream does.
                prev.as_ref().map(|p| with_revision(p, event.revision))
            }
        };
        let entry = HistoryEntry {
            revision: event.revision,
            key: event.key,
            prev,
            cur: if matches!(event.kind, EventKind::Delete) {
                None
            } else {
                cur.clone()
            },
        };
        let deleted_view = if entry.cur.is_none() { cur } else { None };
        state
            .watchers
            .retain(|w| dispatch(w, &entry, deleted_view.as_ref()));
        state.revision = entry.revision;
        state.history.push_back(entry);
        while state.history.len() > self.history_limit {
            if let Some(old) = state.history.pop_front() {
                state.oldest = old.revision;
            }
        }
        let rev = state.revision;
        drop(state);
        self.applied.send_replace(rev);
    }
}

async fn follow(cache: std::sync::Weak<Cache>, mut events: EventStream) {
    while let Some(event) = events.recv().await {
        let Some(cache) = cache.upgrade() else { return };
        cache.apply(event);
    }
}

/// Sends one change to one watcher; false when the watcher is gone or too slow.
fn dispatch(w: &WatcherSlot, h: &HistoryEntry, deleted_view: Option<&Arc<Value>>) -> bool {
    if w.tx.is_closed() {
        return false;
    }
    if !h.key.starts_with(&w.prefix) {
        return true;
    }
    let matches = |v: &Value| w.filter.as_ref().is_none_or(|f| f(v));
    let event = match deleted_view {
        Some(last) => (h.prev.as_ref().is_some_and(|p| matches(p))).then(|| WatchEvent {
            kind: WatchEventType::Deleted,
            object: last.clone(),
            revision: h.revision,
        }),
        None => translate(h, &matches),
    };
    match event {
        Some(e) => w.tx.try_send(e).is_ok(),
        None => true,
    }
}

/// Turns a change into the event a filtered watcher sees: an object leaving the filter is
/// DELETED for it, one entering is ADDED, as upstream's cacher does.
fn translate(h: &HistoryEntry, matches: &dyn Fn(&Value) -> bool) -> Option<WatchEvent> {
    let was = h.prev.as_ref().is_some_and(|p| matches(p));
    match &h.cur {
        Some(cur) => {
            let is = matches(cur);
            let (kind, object) = match (was, is) {
                (false, true) => (WatchEventType::Added, cur.clone()),
                (true, true) => (WatchEventType::Modified, cur.clone()),
                // The watcher last saw the object as it matched; report that state, as upstream.
                (true, false) => (
                    WatchEventType::Deleted,
                    h.prev
                        .as_ref()
                        .map(|p| with_revision(p, h.revision))
                        .unwrap_or_default(),
                ),
                (false, false) => return None,
            };
            Some(WatchEvent {
                kind,
                object,
                revision: h.revision,
            })
        }
        None => was.then(|| WatchEvent {
            kind: WatchEventType::Deleted,
            object: h
                .prev
                .as_ref()
                .map(|p| with_revision(p, h.revision))
                .unwrap_or_default(),
            revision: h.revision,
        }),
    }
}

fn range_from<'a>(
    objects: &'a OrdMap<String, CachedObject>,
    prefix: &'a str,
    after: Option<&str>,
) -> impl Iterator<Item = &'a CachedObject> + 'a {
    let lower = match after {
        Some(k) if k >= prefix => Bound::Excluded(k.to_string()),
        _ => Bound::Included(prefix.to_string()),
    };
    objects
        .range((lower, Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
}

fn decode(kv: &KeyValue) -> Option<CachedObject> {
    match serde_json::from_slice::<Value>(&kv.value) {
        Ok(mut v) => {
            set_revision(&mut v, kv.mod_revision);
            Some(CachedObject {
                key: kv.key.clone(),
                value: Arc::new(v),
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
            })
        }
        Err(e) => {
            tracing::error!(key = %kv.key, error = %e, "stored object is not valid JSON; skipped");
            None
        }
    }
}

fn set_revision(v: &mut Value, revision: Revision) {
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

fn with_revision(v: &Arc<Value>, revision: Revision) -> Arc<Value> {
    let mut copy = (**v).clone();
    set_revision(&mut copy, revision);
    Arc::new(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JournalBackend, Mutation, Precondition, Txn};
    use bytes::Bytes;
    use serde_json::json;

    async fn put(b: &JournalBackend, key: &str, v: Value) -> Revision {
        let t = Txn {
            key: key.into(),
            precondition: Precondition::None,
            mutation: Mutation::Put(Bytes::from(v.to_string())),
        };
        match b.txn(t).await.expect("txn") {
            crate::TxnResult::Committed { revision, .. } => revision,
            other => panic!("{other:?}"),
        }
    }

    fn obj(name: &str, app: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": app}}})
    }

    async fn setup() -> (Arc<JournalBackend>, Arc<Cache>) {
        let b = Arc::new(JournalBackend::in_memory());
        let c = Cache::start_with_history(b.clone(), 4)
            .await
            .expect("cache");
        (b, c)
    }

    #[tokio::test]
    async fn writes_are_visible_after_wait_for() {
        let (b, c) = setup().await;
        let rev = put(&b, "/p/a", obj("a", "x")).await;
        c.wait_for(rev).await.expect("caught up");
        let got = c.get("/p/a").expect("present");
        assert_eq!(got.value["metadata"]["resourceVersion"], rev.to_string());
    }

    #[tokio::test]
    async fn paginated_list_is_a_consistent_snapshot() {
        let (b, c) = setup().await;
        for n in ["a", "b", "c"] {
            put(&b, &format!("/p/{n}"), obj(n, "x")).await;
        }
        let rev = put(&b, "/q/z", obj("z", "x")).await;
        c.wait_for(rev).await.expect("caught up");
        let page = c
            .list(&ListOptions {
                prefix: "/p/".into(),
                limit: Some(2),
                ..Default::default()
            })
            .expect("list");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.remaining, Some(1));
        let rev = put(&b, "/p/d", obj("d", "x")).await;
        c.wait_for(rev).await.expect("caught up");
        let page2 = c
            .list(&ListOptions {
                prefix: "/p/".into(),
                limit: Some(2),
                continue_from: page.next,
                ..Default::default()
            })
            .expect("list");
        let names: Vec<_> = page2.items.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            names,
            vec!["/p/c"],
            "the write after the first page is not in the snapshot"
        );
        assert!(page2.next.is_none());
    }

    #[tokio::test]
    async fn filtered_watch_sees_objects_leave_and_enter() {
        let (b, c) = setup().await;
        let filter: WatchFilter = Arc::new(|v: &Value| v["metadata"]["labels"]["app"] == "x");
        let mut w = c
            .watch("/p/", WatchStart::Now, Some(filter))
            .expect("watch");
        put(&b, "/p/a", obj("a", "x")).await;
        put(&b, "/p/a", obj("a", "y")).await;
        put(&b, "/p/a", obj("a", "x")).await;
        let kinds: Vec<_> = [
            w.live.recv().await,
            w.live.recv().await,
            w.live.recv().await,
        ]
        .into_iter()
        .map(|e| e.expect("event").kind)
        .collect();
        assert_eq!(
            kinds,
            vec![
                WatchEventType::Added,
                WatchEventType::Deleted,
                WatchEventType::Added
            ]
        );
    }

    #[tokio::test]
    async fn watch_from_before_the_history_window_is_too_old() {
        let (b, c) = setup().await;
        let mut last = 0;
        for i in 0..8 {
            last = put(&b, "/p/a", obj("a", &i.to_string())).await;
        }
        c.wait_for(last).await.expect("caught up");
        assert!(matches!(
            c.watch("/p/", WatchStart::After(1), None),
            Err(CacheError::TooOld { .. })
        ));
        let w = c
            .watch("/p/", WatchStart::After(last - 2), None)
            .expect("recent watch");
        assert_eq!(w.initial.len(), 2);
    }

    #[tokio::test]
    async fn deletion_is_reported_with_the_deleting_revision() {
        let (b, c) = setup().await;
        let rev = put(&b, "/p/a", obj("a", "x")).await;
        c.wait_for(rev).await.expect("caught up");
        let mut w = c.watch("/p/", WatchStart::Now, None).expect("watch");
        let t = Txn {
            key: "/p/a".into(),
            precondition: Precondition::None,
            mutation: Mutation::Delete,
        };
        b.txn(t).await.expect("delete");
        let added = w.initial.pop().expect("initial");
        assert_eq!(added.kind, WatchEventType::Added);
        let del = w.live.recv().await.expect("event");
        assert_eq!(del.kind, WatchEventType::Deleted);
        assert_eq!(
            del.object["metadata"]["resourceVersion"],
            del.revision.to_string()
        );
    }
}
