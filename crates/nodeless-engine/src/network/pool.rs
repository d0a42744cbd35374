//! The warm pool: a few namespaces attached ahead of demand (`spare-<uuid>`), so that attach
//! hands one over (a bind mount under the instance's name and a record) instead of running
//! the plugins on the start path. A spare keeps its CNI container id for life; the instance's
//! record says so (`cni_id`), and DEL uses it. A filler task tops the pool up after each claim,
//! one spare at a time; it stops when the last `Network` clone goes. Spares survive engine
//! restarts: complete ones are adopted again, the rest are orphans.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::attach::Network;
use super::cni::{Chain, CniCommand, Invocation};
use super::config::INSTANCE_IFNAME;
use super::portmap::{self, PortMapping};
use super::record::Record;
use super::{Attachment, NetworkError};

pub const SPARE_PREFIX: &str = "spare-";

#[derive(Debug)]
pub(super) struct Pool {
    target: usize,
    state: Mutex<PoolState>,
    filler: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Woken whenever a spare becomes ready or is given up.
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Attached and ready to claim, oldest first.
    ready: VecDeque<String>,
    /// Every spare id this process owns: ready, being made, or being claimed. Orphan cleanup
    /// leaves these alone.
    owned: HashSet<String>,
}

impl Pool {
    pub(super) fn new(target: usize) -> Self {
        Pool {
            target,
            state: Mutex::default(),
            filler: Mutex::default(),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new spare id to make, while the pool is short.
    fn reserve(&self) -> Option<String> {
        let mut state = self.state();
        if state.owned.len() >= self.target {
            return None;
        }
        let id = format!("{SPARE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        state.owned.insert(id.clone());
        Some(id)
    }

    fn ready(&self, id: String) {
        {
            let mut state = self.state();
            state.owned.insert(id.clone());
            state.ready.push_back(id);
        }
        self.changed.notify_waiters();
    }

    fn take(&self) -> Option<String> {
        self.state().ready.pop_front()
    }

    fn forget(&self, id: &str) {
        self.state().owned.remove(id);
        self.changed.notify_waiters();
    }

    /// Spares being made or claimed right now.
    fn in_flight(&self) -> usize {
        let state = self.state();
        state.owned.len() - state.ready.len()
    }

    pub(super) fn owned(&self) -> HashSet<String> {
        self.state().owned.clone()
    }

    pub(super) fn ready_count(&self) -> usize {
        self.state().ready.len()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let filler = self
            .filler
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(task) = filler.take() {
            task.abort();
        }
    }
}

/// Why a claim failed: before the instance was touched (attach afresh) or after (give up).
enum ClaimError {
    Spare(NetworkError),
    Instance(NetworkError),
}

impl Network {
    /// Takes over complete spares an earlier engine left, up to the pool's size.
    pub(super) fn adopt_spares(&self) -> Result<(), NetworkError> {
        let pool = &self.inner.pool;
        let want = self.chain_for(&[]);
        for id in self
            .inner
            .records
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(SPARE_PREFIX))
        {
            if pool.state().owned.len() >= pool.target {
                break;
            }
            let Ok(Some(rec)) = self.inner.records.load(&id) else {
                continue;
            };
            let usable = rec.result.is_some()
                && rec.chain == want
                && rec.cni_id.is_none()
                && self.inner.namespaces.exists(&rec.netns);
            if usable {
                pool.ready(id);
            }
        }
        Ok(())
    }

    /// Fills the warm pool now and waits until every spare is ready, including those the
    /// background filler is making (engine start-up, benchmarks, tests).
    pub async fn warm_up(&self) -> Result<(), NetworkError> {
        let pool = &self.inner.pool;
        loop {
            let changed = pool.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable(); // registered before looking, so no wake-up is missed
            if self.add_spare().await? {
                continue;
            }
            if pool.in_flight() == 0 {
                return Ok(());
            }
            changed.await;
        }
    }

    /// Stops the filler and detaches every spare (uninstall, tests). Attaching afterwards
    /// starts filling again.
    pub async fn drain_warm_pool(&self) -> Result<(), NetworkError> {
        let filler = self
            .inner
            .pool
            .filler
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = filler {
            task.abort();
            let _ = task.await; // cancelled or done; a half-made spare is detached below
        }
        let mut first_error = None;
        for id in self.inner.pool.owned() {
            self.inner.pool.state().ready.retain(|r| *r != id);
            match self.detach_any(&id).await {
                Ok(()) => self.inner.pool.forget(&id),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Spares ready to be claimed.
    pub fn warm_spares(&self) -> usize {
        self.inner.pool.ready_count()
    }

    /// Starts the filler unless it runs or there is no runtime to run it on.
    pub(super) fn fill_pool_in_background(&self) {
        if self.inner.pool.target == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut filler = self
            .inner
            .pool
            .filler
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if filler.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        // Weak: the filler must not keep the network alive.
        let inner = Arc::downgrade(&self.inner);
        *filler = Some(runtime.spawn(async move {
            while let Some(inner) = inner.upgrade() {
                match (Network { inner }).add_spare().await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "warm pool: making a spare failed");
                        return;
                    }
                }
            }
        }));
    }

    /// Makes one spare if the pool is short; false when it is full.
    async fn add_spare(&self) -> Result<bool, NetworkError> {
        let Some(id) = self.inner.pool.reserve() else {
            return Ok(false);
        };
        let _guard = self.inner.locks.lock(&id).await;
        match self.attach_fresh(&id, &[]).await {
            Ok(_) => {
                self.inner.pool.ready(id);
                Ok(true)
            }
            Err(e) => {
                self.inner.pool.forget(&id);
                Err(e)
            }
        }
    }

    /// Hands a ready spare to instance `id` (whose lock the caller holds and which has no
    /// record). `Ok(None)`: no usable spare, attach afresh.
    pub(super) async fn claim_spare(
        &self,
        id: &str,
        ports: &[PortMapping],
    ) -> Result<Option<Attachment>, NetworkError> {
        let Some(spare_id) = self.inner.pool.take() else {
            return Ok(None);
        };
        let _guard = self.inner.locks.lock(&spare_id).await;
        let claimed = self.move_spare(id, &spare_id, ports).await;
        self.inner.pool.forget(&spare_id);
        match claimed {
            Ok(attachment) => {
                tracing::debug!(spare = %spare_id, ip = %attachment.ip, "attached from the warm pool");
                Ok(Some(attachment))
            }
            Err(ClaimError::Spare(e)) => {
                tracing::warn!(spare = %spare_id, error = %e, "warm pool: spare unusable; attaching afresh");
                Ok(None)
            }
            Err(ClaimError::Instance(e)) => Err(e),
        }
    }

    async fn move_spare(
        &self,
        id: &str,
        spare_id: &str,
        ports: &[PortMapping],
    ) -> Result<Attachment, ClaimError> {
        let spare = self
            .inner
            .records
            .load(spare_id)
            .map_err(|e| ClaimError::Spare(e.into()))?;
        let spare = match spare {
            Some(rec) if rec.result.is_some() && self.inner.namespaces.exists(&rec.netns) => rec,
            other => {
                if let Some(rec) = other {
                    self.undo(spare_id, rec).await;
                }
                return Err(ClaimError::Spare(NetworkError::NoAddress {
                    id: spare_id.into(),
                    ifname: INSTANCE_IFNAME.into(),
                }));
            }
        };
        let netns = self.netns_path(id);
        let netns_error = |source| NetworkError::Netns {
            id: id.to_string(),
            source,
        };
        self.inner
            .namespaces
            .bind(&spare.netns, &netns)
            .await
            .map_err(|e| ClaimError::Spare(netns_error(e)))?;
        let mut rec = Record {
            id: id.to_string(),
            cni_id: Some(spare.cni_id().to_string()),
            netns,
            chain: self.chain_for(ports),
            port_mappings: ports.to_vec(),
            result: spare.result.clone(),
        };
        if let Err(e) = self.inner.records.save(&rec) {
            let _ = self.inner.namespaces.remove(&rec.netns).await;
            return Err(ClaimError::Spare(e.into()));
        }
        // The attachment is the instance's now; the spare's name and record go.
        let handed_over = async {
            self.inner
                .namespaces
                .remove(&spare.netns)
                .await
                .map_err(netns_error)?;
            self.inner.records.remove(spare_id)?;
            if !ports.is_empty() {
                rec.result = Some(self.add_port_mappings(&rec).await?);
                self.inner.records.save(&rec)?;
            }
            self.attachment(&rec)
        };
        match handed_over.await {
            Ok(attachment) => Ok(attachment),
            Err(e) => {
                self.undo(id, rec).await;
                Err(ClaimError::Instance(e))
            }
        }
    }

    /// ADD of the plugins after the bridge (portmap), continuing from the spare's result.
    async fn add_port_mappings(&self, rec: &Record) -> Result<serde_json::Value, NetworkError> {
        let tail = Chain {
            plugins: rec.chain.plugins[1..].to_vec(),
            ..rec.chain.clone()
        };
        let inv = Invocation {
            command: CniCommand::Add,
            container_id: rec.cni_id(),
            netns: Some(&rec.netns),
            ifname: INSTANCE_IFNAME,
        };
        let runtime = portmap::runtime_config(&rec.port_mappings);
        tail.add_after(&*self.inner.plugins, &inv, &runtime, rec.result.clone())
            .await
            .map_err(|e| self.cni_error(&rec.id, e))
    }
}
