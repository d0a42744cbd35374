//! How the ReplicaSet and Deployment controllers drive their reconciles: kube-rs's applier
//! over reflector stores, each reconcile on its own task (aborted when the controller stops),
//! failures retried per object with exponential backoff as upstream's workqueue does.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt, TryFutureExt};
use kube::runtime::controller::{Action, Error as ApplierError, ReconcileRequest};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::utils::CancelableJoinHandle;
use kube::runtime::{applier, watcher, Config};
use kube::Resource;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Per-object retry delays: 100 ms doubling up to 60 s, forgotten after a success.
#[derive(Default)]
pub struct RetryBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl RetryBackoff {
    /// Counts a failure of `key` and says how long to wait before the retry.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        let delay = FIRST_RETRY.saturating_mul(1u32 << (*n).min(16));
        *n = n.saturating_add(1);
        delay.min(MAX_RETRY)
    }

    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

/// What a controller's shared state offers the driver.
pub trait Retries {
    fn retries(&self) -> &RetryBackoff;
}

fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// Runs `reconcile` for every object `queue` names (present in `store`) until `shutdown`.
pub async fn drive<K, S, Q, F, Fut, E>(
    controller: &'static str,
    store: Store<K>,
    queue: Q,
    state: Arc<S>,
    reconcile: F,
    shutdown: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
    S: Retries + Send + Sync + 'static,
    Q: Stream<Item = Result<ReconcileRequest<K>, watcher::Error>> + Send + 'static,
    F: Fn(Arc<K>, Arc<S>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    let queue = queue.take_until(shutdown.clone().cancelled_owned());
    let run_one = move |obj: Arc<K>, state: Arc<S>| {
        let key = key_of(obj.as_ref());
        let fut = reconcile(obj, state.clone()).map_ok(move |action| {
            state.retries().succeeded(&key);
            action
        });
        CancelableJoinHandle::spawn(fut, &Handle::current())
    };
    let error_policy = move |obj: Arc<K>, err: &E, state: Arc<S>| {
        let key = key_of(obj.as_ref());
        let delay = state.retries().failed(&key);
        tracing::warn!(controller, object.ref = %key, error = %err, retry_in = ?delay, "reconcile failed");
        Action::requeue(delay)
    };
    applier(
        run_one,
        error_policy,
        state,
        store,
        queue,
        Config::default(),
    )
    .take_until(shutdown.cancelled_owned())
    .for_each(|result| async move {
        match result {
            Ok(_) | Err(ApplierError::ReconcilerFailed(..)) => {}
            // A request for an object that is gone (deleted meanwhile): nothing to do.
            Err(ApplierError::ObjectNotFound(_)) => {}
            Err(e) => tracing::warn!(controller, error = %e, "controller queue"),
        }
    })
    .await;
}

/// The objects a watch event touches (applied, listed or deleted).
pub fn touched<K>(event: watcher::Event<K>) -> Option<K> {
    match event {
        watcher::Event::Apply(k) | watcher::Event::InitApply(k) | watcher::Event::Delete(k) => {
            Some(k)
        }
        watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

/// A request to reconcile `name` in `namespace`.
pub fn request<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> ReconcileRequest<K> {
    ObjectRef::new(name).within(namespace).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_minute_and_reset_after_success() {
        let b = RetryBackoff::default();
        assert_eq!(b.failed("a"), Duration::from_millis(100));
        assert_eq!(b.failed("a"), Duration::from_millis(200));
        assert_eq!(b.failed("a"), Duration::from_millis(400));
        assert_eq!(b.failed("b"), Duration::from_millis(100));
        for _ in 0..20 {
            b.failed("a");
        }
        assert_eq!(b.failed("a"), MAX_RETRY);
        b.succeeded("a");
        assert_eq!(b.failed("a"), Duration::from_millis(100));
    }
}
