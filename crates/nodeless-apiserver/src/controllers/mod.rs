//! Controllers that run inside the API server because they are part of its object model:
//! CRD establishment, namespace lifecycle, and garbage collection of owned objects.
//!
//! Each is level-triggered: a change under its watched prefix (or a periodic tick) makes it
//! look at the current state in the cache and converge it through [`crate::rest::Api`].

pub mod crd;
pub mod gc;
pub mod namespace;

use crate::rest::Api;
use nodeless_store::WatchStart;
use std::time::Duration;
use tokio::sync::watch;

/// Which changes wake a controller.
pub(crate) type Interest = fn(&nodeless_store::WatchEvent) -> bool;

/// Runs `step` whenever a change under `prefix` that `interest` accepts happens (bursts are
/// coalesced), and every `period`.
pub(crate) async fn run_on_changes<F, Fut>(
    api: Api,
    prefix: &str,
    interest: Interest,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut(Api) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut watcher = match api
        .cache
        .watch(prefix, WatchStart::After(api.cache.revision()), None)
    {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, prefix, "controller cannot watch");
            return;
        }
    };
    step(api.clone()).await;
    loop {
        tokio::select! {
            ev = watcher.live.recv() => {
                match ev {
                    Some(e) if !interest(&e) => continue,
                    Some(_) => {}
                    None => {
                        // Too slow and dropped by the cache: start over from now.
                        match api.cache.watch(prefix, WatchStart::After(api.cache.revision()), None) {
                            Ok(w) => watcher = w,
                            Err(_) => return,
                        }
                    }
                }
                // Coalesce a burst of changes into one pass.
                tokio::time::sleep(Duration::from_millis(20)).await;
                while watcher.live.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        step(api.clone()).await;
    }
}
