//! Keeping the table in step with the API: a `Syncer` turns Service ports into the ruleset and
//! applies only what changed; `drive` decides when, from the watch streams' signals.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::conntrack::Conntrack;
use crate::model::ServicePort;
use crate::nft::{NftApplier, NftError};
use crate::rules::{self, RulesConfig, Ruleset};

/// First retry after a failed apply; doubles up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The ruleset is what was applied last: nothing ran.
    Unchanged,
    /// The table was replaced as a whole (first sync, or after a failure).
    Replaced,
    /// The table was updated in place.
    Updated,
}

/// Applies rulesets, remembering the last one applied so the next is a diff.
#[derive(Debug)]
pub struct Syncer {
    applier: Arc<dyn NftApplier>,
    config: RulesConfig,
    applied: Option<Ruleset>,
    /// Where stale UDP flows are forgotten, and the ports of the last applied ruleset.
    conntrack: Option<Arc<dyn Conntrack>>,
    ports: Vec<ServicePort>,
}

impl Syncer {
    pub fn new(applier: Arc<dyn NftApplier>, config: RulesConfig) -> Syncer {
        Syncer {
            applier,
            config,
            applied: None,
            conntrack: None,
            ports: Vec::new(),
        }
    }

    /// Forgets the UDP flows each applied ruleset leaves stale (`conntrack`).
    pub fn with_conntrack(mut self, conntrack: Arc<dyn Conntrack>) -> Syncer {
        self.conntrack = Some(conntrack);
        self
    }

    pub async fn sync(&mut self, ports: &[ServicePort]) -> Result<SyncOutcome, NftError> {
        let next = rules::build(&self.config, ports);
        let (script, outcome) = match &self.applied {
            Some(prev) if *prev == next => return Ok(SyncOutcome::Unchanged),
            Some(prev) => (rules::render_update(prev, &next), SyncOutcome::Updated),
            None => (rules::render_full(&next), SyncOutcome::Replaced),
        };
        match self.applier.apply(&script).await {
            Ok(()) => {
                self.applied = Some(next);
                self.forget_stale_flows(ports).await;
                Ok(outcome)
            }
            Err(e) => {
                // The table may not be what we think (deleted by hand, say): replace it next.
                self.applied = None;
                Err(e)
            }
        }
    }
}

impl Syncer {
    /// A flow that cannot be forgotten is logged, not retried: it idles out by itself, and
    /// the rules are right either way.
    async fn forget_stale_flows(&mut self, ports: &[ServicePort]) {
        let prev = std::mem::replace(&mut self.ports, ports.to_vec());
        let Some(conntrack) = &self.conntrack else {
            return;
        };
        for flows in crate::conntrack::stale_udp_flows(&prev, ports) {
            match conntrack.forget(&flows).await {
                Ok(()) => tracing::debug!(%flows, "forgot stale conntrack entries"),
                Err(e) => tracing::warn!(error = %e, "cannot forget stale conntrack entries"),
            }
        }
    }
}

/// What the watches report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// One of the two caches finished its (re)list.
    Listed(Kind),
    /// An object was added, changed or deleted.
    Changed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Services,
    EndpointSlices,
}

/// Syncs whenever something changed, once both caches are listed: right away after a quiet
/// spell, else at most once per `min_interval` (a rollout's burst of slice updates becomes
/// one apply). Failed applies are retried with backoff. Returns when `signals` ends or on
/// shutdown.
pub async fn drive(
    mut signals: impl Stream<Item = Signal> + Unpin,
    snapshot: impl Fn() -> Vec<ServicePort>,
    syncer: &mut Syncer,
    min_interval: Duration,
    shutdown: CancellationToken,
) {
    let (mut services_listed, mut slices_listed) = (false, false);
    let mut due: Option<Instant> = None;
    let mut last_sync: Option<Instant> = None;
    let mut retry = FIRST_RETRY;
    loop {
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            signal = signals.next() => {
                match signal {
                    None => return,
                    Some(Signal::Listed(Kind::Services)) => services_listed = true,
                    Some(Signal::Listed(Kind::EndpointSlices)) => slices_listed = true,
                    Some(Signal::Changed) => {}
                }
                if services_listed && slices_listed && due.is_none() {
                    let earliest = last_sync.map_or_else(Instant::now, |t| t + min_interval);
                    due = Some(earliest.max(Instant::now()));
                }
            }
            () = wait => {
                last_sync = Some(Instant::now());
                due = None;
                let ports = snapshot();
                match syncer.sync(&ports).await {
                    Ok(outcome) => {
                        retry = FIRST_RETRY;
                        tracing::debug!(?outcome, service_ports = ports.len(), "synced service rules");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?retry, "applying service rules failed");
                        due = Some(Instant::now() + retry);
                        retry = (retry * 2).min(MAX_RETRY);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
