//! The warm pool: a few namespaces attached ahead of demand (`spare-<uuid>`), so that attach
//! hands one over (a bind mount under the instance's name and a record) instead of running
//! the plugins on the start path. A spare keeps its CNI container id for life; the instance's
//! record says so (`cni_id`), and DEL uses it.
//!
//! The pool lives on disk, so every process over the same state directory (the agent, each
//! `nodeless runtime` command) shares it and spares outlive the process that made them:
//! - a spare is its record in `instances/` plus a `<id>.making` file its maker holds locked
//!   (`flock`) until the spare is complete; an unlocked, incomplete spare is dead;
//! - claims, and orphan cleanup's look at the spares, hold `pool.lock`, so one spare goes to
//!   one instance and no cleanup sees it half moved.
//!
//! A filler task tops the pool up after each attach and orphan cleanup (not on open, so
//! short-lived processes that only look around start nothing), one spare at a time; it stops
//! when the last `Network` clone goes, leaving a half-made spare dead for the next cleanup.
//! Short-lived processes turn it off (`NetworkConfig::fill_in_background`) and call
//! `fill_warm_pool` themselves, waiting for it before they exit.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

use super::attach::Network;
use super::cni::{Chain, CniCommand, Invocation};
use super::config::{self, INSTANCE_IFNAME};
use super::portmap::{self, PortMapping};
use super::record::{Record, RecordError};
use super::{Attachment, NetworkError};

pub const SPARE_PREFIX: &str = "spare-";

#[derive(Debug)]
pub(super) struct Pool {
    target: usize,
    filler: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Pool {
    pub(super) fn new(target: usize) -> Self {
        Pool {
            target,
            filler: Mutex::default(),
        }
    }

    fn take_filler(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.filler
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(task) = self.take_filler() {
            task.abort(); // a half-made spare is dead: its maker's lock goes with the task
        }
    }
}

/// What a spare on disk is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spare {
    Ready,
    /// Its maker (in some process) is still at work.
    Making,
    /// Incomplete with no maker, or no longer usable: an orphan.
    Dead,
}

/// Why a claim failed: before the instance was touched (attach afresh) or after (give up).
enum ClaimError {
    Spare(NetworkError),
    Instance(NetworkError),
}

fn io_error(path: PathBuf) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |source| NetworkError::Record(RecordError::Io { path, source })
}

impl Network {
    fn spare_lock_path(&self, id: &str) -> PathBuf {
        self.inner.records.dir().join(format!("{id}.making"))
    }

    /// Holds `pool.lock` until the returned file is dropped.
    pub(super) async fn lock_pool(&self) -> Result<File, NetworkError> {
        let path = self.inner.cfg.state_dir.join("pool.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(path.clone()))?;
        // Usually free: take it without a trip to the blocking pool.
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            return Ok(file);
        }
        tokio::task::spawn_blocking(move || {
            flock(&file, FlockOperation::LockExclusive).map(|()| file)
        })
        .await
        .map_err(|e| io_error(path.clone())(std::io::Error::other(e)))?
        .map_err(|e| io_error(path)(e.into()))
    }

    /// The spares on disk and their state: those with a record, and those whose maker has
    /// not written one yet.
    pub(super) fn spares(&self) -> Result<Vec<(String, Spare)>, NetworkError> {
        // One pass over the directory, which holds every instance's record too: each attach
        // looks at the spares, so this runs once per instance start.
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let dir = self.inner.records.dir();
        for entry in std::fs::read_dir(dir)
            .map_err(io_error(dir.to_path_buf()))?
            .flatten()
        {
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| n.starts_with(SPARE_PREFIX)) else {
                continue;
            };
            if let Some(id) = name
                .strip_suffix(".making")
                .or_else(|| name.strip_suffix(".json"))
            {
                ids.insert(id.to_string());
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| {
                let state = self.spare_state(&id);
                (id, state)
            })
            .collect())
    }

    fn spare_state(&self, id: &str) -> Spare {
        let rec = match self.inner.records.load(id) {
            Ok(Some(rec)) => rec,
            _ if self.maker_alive(id) => return Spare::Making,
            _ => return Spare::Dead,
        };
        // The chain a spare of this network's current config has, with the spare's address.
        let want = self.chain_for(&[], config::static_address(&rec.chain));
        let usable =
            rec.cni_id.is_none() && rec.chain == want && self.inner.namespaces.exists(&rec.netns);
        match (rec.result.is_some(), usable) {
            (true, true) => Spare::Ready,
            (true, false) => Spare::Dead,
            (false, _) if self.maker_alive(id) => Spare::Making,
            (false, _) => Spare::Dead,
        }
    }

    /// Whether someone holds the spare's `.making` lock.
    fn maker_alive(&self, id: &str) -> bool {
        let Ok(file) = File::open(self.spare_lock_path(id)) else {
            return false;
        };
        flock(&file, FlockOperation::NonBlockingLockShared).is_err()
    }

    /// Spares ready to be claimed.
    pub fn warm_spares(&self) -> usize {
        self.spares()
            .map(|s| s.iter().filter(|(_, state)| *state == Spare::Ready).count())
            .unwrap_or(0)
    }

    /// Fills the warm pool now and waits until every spare is ready, including those another
    /// task or process is making (engine start-up, benchmarks, tests).
    pub async fn warm_up(&self) -> Result<(), NetworkError> {
        self.fill_warm_pool().await?;
        let deadline = tokio::time::Instant::now() + self.inner.cfg.plugin_timeout;
        while self
            .spares()?
            .iter()
            .any(|(_, state)| *state == Spare::Making)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Makes spares until the pool is full, counting those others are making, without
    /// waiting for theirs: how a process that does not fill in the background
    /// (`NetworkConfig::fill_in_background`) tops the pool up after taking a spare.
    pub async fn fill_warm_pool(&self) -> Result<(), NetworkError> {
        while self.add_spare().await? {}
        Ok(())
    }

    /// Stops this process's filler and detaches every spare that no other process is making
    /// (uninstall, tests). Attaching afterwards starts filling again.
    pub async fn drain_warm_pool(&self) -> Result<(), NetworkError> {
        if let Some(task) = self.inner.pool.take_filler() {
            task.abort();
            let _ = task.await; // cancelled or done; a half-made spare is dead and goes below
        }
        // Held throughout: a spare must not be claimed between our look and its detach.
        let _pool = self.lock_pool().await?;
        let mut first_error = None;
        for (id, state) in self.spares()? {
            if state == Spare::Making {
                continue;
            }
            if let Err(e) = self.remove_spare(&id).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(super) async fn remove_spare(&self, id: &str) -> Result<(), NetworkError> {
        self.detach_any(id).await?;
        let lock = self.spare_lock_path(id);
        match std::fs::remove_file(&lock) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(lock)(e)),
            _ => Ok(()),
        }
    }

    /// Starts the filler unless it runs or there is no runtime to run it on.
    pub(super) fn fill_pool_in_background(&self) {
        if self.inner.pool.target == 0 || !self.inner.cfg.fill_in_background {
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
        let (id, making) = {
            let _pool = self.lock_pool().await?;
            let alive = self
                .spares()?
                .iter()
                .filter(|(_, state)| *state != Spare::Dead)
                .count();
            if alive >= self.inner.pool.target {
                return Ok(false);
            }
            let id = format!("{SPARE_PREFIX}{}", uuid::Uuid::new_v4().simple());
            let path = self.spare_lock_path(&id);
            let making = File::options()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(io_error(path.clone()))?;
            flock(&making, FlockOperation::NonBlockingLockExclusive)
                .map_err(|e| io_error(path)(e.into()))?;
            (id, making)
        };
        let _guard = self.inner.locks.lock(&id).await;
        let made = self.attach_fresh(&id, &[]).await;
        let lock = self.spare_lock_path(&id);
        let _ = std::fs::remove_file(&lock); // before unlocking: complete, or undone
        drop(making);
        made.map(|_| true)
    }

    /// Hands a ready spare to instance `id` (whose lock the caller holds and which has no
    /// record). `Ok(None)`: no usable spare, attach afresh.
    pub(super) async fn claim_spare(
        &self,
        id: &str,
        ports: &[PortMapping],
    ) -> Result<Option<Attachment>, NetworkError> {
        if self.inner.pool.target == 0 {
            return Ok(None);
        }
        let pool = self.lock_pool().await?;
        let Some(spare_id) = self
            .spares()?
            .into_iter()
            .find(|(_, s)| *s == Spare::Ready)
            .map(|(id, _)| id)
        else {
            return Ok(None);
        };
        let _guard = self.inner.locks.lock(&spare_id).await;
        match self.move_spare(id, &spare_id, ports, pool).await {
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

    /// Renames the spare to the instance; `pool` (the pool lock) is let go once the spare is no
    /// longer a spare, before the slow part (port mappings).
    async fn move_spare(
        &self,
        id: &str,
        spare_id: &str,
        ports: &[PortMapping],
        pool: File,
    ) -> Result<Attachment, ClaimError> {
        let spare = match self.inner.records.load(spare_id) {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                return Err(ClaimError::Spare(NetworkError::NoAddress {
                    id: spare_id.into(),
                    ifname: INSTANCE_IFNAME.into(),
                }))
            }
            Err(e) => return Err(ClaimError::Spare(e.into())),
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
            chain: self.chain_for(ports, config::static_address(&spare.chain)),
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
            drop(pool);
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

    /// Spares orphan cleanup may take: dead ones. Call with the pool lock held.
    pub(super) fn live_spares(&self) -> Result<BTreeSet<String>, NetworkError> {
        Ok(self
            .spares()?
            .into_iter()
            .filter(|(_, s)| *s != Spare::Dead)
            .map(|(id, _)| id)
            .collect())
    }
}
