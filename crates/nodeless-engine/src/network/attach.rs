//! [`Network`]: attach and detach instances.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use serde_json::Value;
use tracing::Instrument;

use super::cni::{Chain, CniCommand, CniResult, Invocation, PluginExec};
use super::config::{self, NetworkConfig, INSTANCE_IFNAME};
use super::exec::HostPlugins;
use super::host_rules;
use super::ipam::Leases;
use super::masquerade::HostIptables;
use super::netns::{HostNamespaces, Namespaces};
use super::pool::Pool;
use super::portmap::{self, PortMapping};
use super::record::{Record, Records};
use super::{validate_id, Attachment, NetworkError};

/// The instance network of one host. Cheap to clone; the warm pool's filler stops when the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub struct Network {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) cfg: NetworkConfig,
    pub(super) subnet: Ipv4Net,
    pub(super) plugins: Arc<dyn PluginExec>,
    pub(super) namespaces: Arc<dyn Namespaces>,
    pub(super) records: Records,
    pub(super) leases: Leases,
    pub(super) locks: IdLocks,
    pub(super) pool: Pool,
}

impl Network {
    /// The host's network: checks the plugins are installed, picks the subnet, writes the
    /// conflist and prepares the namespace directory.
    pub fn new(cfg: NetworkConfig) -> Result<Self, NetworkError> {
        cfg.validate().map_err(NetworkError::InvalidConfig)?;
        let plugins = HostPlugins::new(cfg.cni_bin_dirs.clone(), cfg.plugin_timeout);
        for plugin in ["bridge", "static", "host-local", "portmap"] {
            plugins.find(plugin).map_err(NetworkError::MissingPlugin)?;
        }
        let subnet = match cfg.subnet {
            Some(subnet) => subnet,
            None => host_subnet(&cfg)?,
        };
        std::fs::create_dir_all(&cfg.state_dir).map_err(|source| NetworkError::WriteConfig {
            path: cfg.state_dir.clone(),
            source,
        })?;
        host_rules::apply(&HostIptables, &cfg, subnet)?;
        let namespaces =
            HostNamespaces::prepare(&cfg.netns_dir).map_err(NetworkError::PrepareNetns)?;
        Self::with_parts(cfg, subnet, Arc::new(plugins), Arc::new(namespaces))
    }

    /// A network over the given plugin runner and namespaces (fakes in tests).
    pub fn with_parts(
        cfg: NetworkConfig,
        subnet: Ipv4Net,
        plugins: Arc<dyn PluginExec>,
        namespaces: Arc<dyn Namespaces>,
    ) -> Result<Self, NetworkError> {
        cfg.validate().map_err(NetworkError::InvalidConfig)?;
        let records = Records::open(&cfg.state_dir)?;
        let path = cfg.conflist_path();
        let conflist = serde_json::to_vec_pretty(&config::conflist(&cfg, subnet))
            .expect("json values serialize");
        std::fs::write(&path, conflist)
            .map_err(|source| NetworkError::WriteConfig { path, source })?;
        let pool = Pool::new(cfg.warm_pool);
        let leases = Leases::new(cfg.lease_dir(), subnet);
        let inner = Inner {
            cfg,
            subnet,
            plugins,
            namespaces,
            records,
            leases,
            locks: IdLocks::default(),
            pool,
        };
        let net = Network {
            inner: Arc::new(inner),
        };
        Ok(net)
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.inner.cfg
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.inner.subnet
    }

    /// The bridge's address, which instances route through.
    pub fn gateway(&self) -> IpAddr {
        IpAddr::V4(config::gateway(self.inner.subnet))
    }

    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.inner
            .cfg
            .netns_dir
            .join(format!("{}{id}", self.inner.cfg.netns_prefix))
    }

    /// Gives the instance a namespace and an address: a spare from the warm pool when there is
    /// one (its port mappings added), else a new namespace and CNI ADD. Attaching an attached
    /// instance with the same ports returns its attachment; with other ports it is attached
    /// anew.
    pub async fn attach(
        &self,
        id: &str,
        ports: &[PortMapping],
    ) -> Result<Attachment, NetworkError> {
        validate_id(id)?;
        portmap::validate(ports).map_err(|reason| NetworkError::InvalidPorts {
            id: id.to_string(),
            reason,
        })?;
        let _guard = self.inner.locks.lock(id).await;
        let span = tracing::info_span!("network.attach", instance.id = id);
        async {
            if let Some(rec) = self.inner.records.load(id)? {
                let live = rec.result.is_some()
                    && rec.port_mappings == ports
                    && self.inner.namespaces.exists(&rec.netns);
                if live {
                    return self.attachment(&rec);
                }
                self.teardown(id, Some(rec)).await?;
            }
            let attached = match self.claim_spare(id, ports).await {
                Ok(Some(attachment)) => Ok(attachment),
                Ok(None) => self.attach_fresh(id, ports).await,
                Err(e) => Err(e),
            };
            self.fill_pool_in_background();
            attached
        }
        .instrument(span)
        .await
    }

    /// A new namespace and CNI ADD; on failure everything is undone. The caller holds the
    /// id's lock and made sure there is no record.
    pub(super) async fn attach_fresh(
        &self,
        id: &str,
        ports: &[PortMapping],
    ) -> Result<Attachment, NetworkError> {
        let mut rec = Record {
            id: id.to_string(),
            cni_id: None,
            netns: self.netns_path(id),
            chain: self.chain_for(ports, None),
            port_mappings: ports.to_vec(),
            result: None,
        };
        // Recorded before anything exists on the host, so a crash leaves a trail: until the
        // address is in the record too, its chain is host-local's, whose DEL releases any
        // lease the id holds.
        self.inner.records.save(&rec)?;
        let reserved = self.inner.leases.reserve(id, INSTANCE_IFNAME);
        let saved = reserved.map_err(NetworkError::from).and_then(|address| {
            rec.chain = self.chain_for(ports, Some(address));
            self.inner.records.save(&rec).map_err(NetworkError::from)
        });
        if let Err(e) = saved {
            self.undo(id, rec).await;
            return Err(e);
        }
        let added = self.setup(&rec).await.and_then(|result| {
            rec.result = Some(result);
            self.attachment(&rec)
        });
        match added {
            Ok(attachment) => {
                self.inner.records.save(&rec)?;
                tracing::debug!(ip = %attachment.ip, "attached");
                Ok(attachment)
            }
            Err(e) => {
                self.undo(id, rec).await;
                Err(e)
            }
        }
    }

    pub(super) async fn undo(&self, id: &str, rec: Record) {
        if let Err(undo) = self.teardown(id, Some(rec)).await {
            tracing::warn!(error = %undo, "undoing a failed attach");
        }
    }

    /// The chain for an instance with `ports` and the address nodeless reserved for it.
    pub(super) fn chain_for(&self, ports: &[PortMapping], address: Option<Ipv4Addr>) -> Chain {
        config::chain(
            &self.inner.cfg,
            self.inner.subnet,
            !ports.is_empty(),
            address,
        )
    }

    /// CNI DEL and removal of the namespace. Detaching an unknown or detached instance
    /// succeeds. When DEL fails the record stays, so a retry (or `cleanup_orphans`) finishes.
    pub async fn detach(&self, id: &str) -> Result<(), NetworkError> {
        validate_id(id)?;
        self.detach_any(id).await
    }

    /// Detach for any id nodeless made, spares included.
    pub(super) async fn detach_any(&self, id: &str) -> Result<(), NetworkError> {
        let _guard = self.inner.locks.lock(id).await;
        let rec = self.inner.records.load(id)?;
        // Records come first and go last: without one, nothing of this state dir's is left,
        // and a namespace or lease by that name would be another engine's.
        if rec.is_none() && !self.inner.cfg.reclaim_unrecorded {
            return Ok(());
        }
        self.teardown(id, rec)
            .instrument(tracing::info_span!("network.detach", instance.id = id))
            .await
    }

    /// CNI CHECK of an attached instance: the plugins verify its interface, address, routes and
    /// port mappings are still in place.
    pub async fn check(&self, id: &str) -> Result<(), NetworkError> {
        validate_id(id)?;
        let _guard = self.inner.locks.lock(id).await;
        let rec = self.inner.records.load(id)?;
        let Some((rec, result)) = rec.and_then(|r| r.result.clone().map(|res| (r, res))) else {
            return Err(NetworkError::NoAddress {
                id: id.to_string(),
                ifname: INSTANCE_IFNAME.into(),
            });
        };
        let inv = Invocation {
            command: CniCommand::Check,
            container_id: rec.cni_id(),
            netns: Some(&rec.netns),
            ifname: INSTANCE_IFNAME,
        };
        let runtime = portmap::runtime_config(&rec.port_mappings);
        rec.chain
            .check(&*self.inner.plugins, &inv, &runtime, &result)
            .await
            .map_err(|e| self.cni_error(id, e))
    }

    async fn setup(&self, rec: &Record) -> Result<Value, NetworkError> {
        let id = rec.id.as_str();
        let started = std::time::Instant::now();
        self.inner
            .namespaces
            .create(&rec.netns)
            .await
            .map_err(|source| NetworkError::Netns {
                id: id.to_string(),
                source,
            })?;
        let netns_ready = started.elapsed();
        let inv = Invocation {
            command: CniCommand::Add,
            container_id: rec.cni_id(),
            netns: Some(&rec.netns),
            ifname: INSTANCE_IFNAME,
        };
        let plugins = &*self.inner.plugins;
        let runtime = portmap::runtime_config(&rec.port_mappings);
        let main = rec.chain.add(plugins, &inv, &runtime).await;
        tracing::debug!(?netns_ready, total = ?started.elapsed(), "namespace and cni add");
        main.map_err(|e| self.cni_error(id, e))
    }

    /// DEL (with the cached result when there is one), then the namespace, then the record.
    /// Without a record the full chain is asked to release whatever it holds for the id.
    /// DEL never gets the namespace: with it, the bridge plugin deletes the veth itself and
    /// waits for the kernel (tens of ms); unmounting the namespace has the kernel do the same
    /// in the background.
    pub(super) async fn teardown(&self, id: &str, rec: Option<Record>) -> Result<(), NetworkError> {
        let (cni_id, netns, chain, ports, result) = match rec {
            Some(r) => (
                r.cni_id().to_string(),
                r.netns,
                r.chain,
                r.port_mappings,
                r.result,
            ),
            None => (
                id.to_string(),
                self.netns_path(id),
                self.full_chain(),
                Vec::new(),
                None,
            ),
        };
        let inv = Invocation {
            command: CniCommand::Del,
            container_id: &cni_id,
            netns: None,
            ifname: INSTANCE_IFNAME,
        };
        let runtime = portmap::runtime_config(&ports);
        chain
            .del(&*self.inner.plugins, &inv, &runtime, result.as_ref())
            .await
            .map_err(|e| self.cni_error(id, e))?;
        // `static` holds nothing to release; the lease is ours to give back.
        if let Some(address) = config::static_address(&chain) {
            self.inner.leases.release(address, &cni_id)?;
        }
        self.inner
            .namespaces
            .remove(&netns)
            .await
            .map_err(|source| NetworkError::Netns {
                id: id.to_string(),
                source,
            })?;
        self.inner.records.remove(id)?;
        Ok(())
    }

    fn full_chain(&self) -> Chain {
        config::chain(&self.inner.cfg, self.inner.subnet, true, None)
    }

    pub(super) fn attachment(&self, rec: &Record) -> Result<Attachment, NetworkError> {
        let no_address = || NetworkError::NoAddress {
            id: rec.id.clone(),
            ifname: INSTANCE_IFNAME.into(),
        };
        let result = rec.result.as_ref().ok_or_else(no_address)?;
        let parsed = CniResult::from_value(result).map_err(|_| no_address())?;
        let assigned = parsed.primary(INSTANCE_IFNAME).ok_or_else(no_address)?;
        Ok(Attachment {
            netns: rec.netns.clone(),
            ip: assigned.ip,
            prefix_len: assigned.prefix_len,
            gateway: assigned.gateway.unwrap_or_else(|| self.gateway()),
            interface: INSTANCE_IFNAME.to_string(),
        })
    }

    pub(super) fn cni_error(&self, id: &str, source: super::CniError) -> NetworkError {
        NetworkError::Cni {
            id: id.to_string(),
            source,
        }
    }
}

/// The subnet from an earlier conflist, else a fresh one that collides with no host route.
fn host_subnet(cfg: &NetworkConfig) -> Result<Ipv4Net, NetworkError> {
    let earlier = std::fs::read(cfg.conflist_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .and_then(|v| config::subnet_of_conflist(&v));
    if let Some(subnet) = earlier {
        return Ok(subnet);
    }
    let routes = std::fs::read_to_string("/proc/net/route").map_err(NetworkError::HostRoutes)?;
    config::choose_subnet(&config::parse_proc_routes(&routes), &cfg.bridge)
        .ok_or(NetworkError::NoFreeSubnet)
}

/// One async mutex per instance id with an operation in flight.
#[derive(Debug, Default)]
pub(super) struct IdLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl IdLocks {
    pub(super) async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Forget locks nobody holds or waits for.
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}
