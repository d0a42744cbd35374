//! Fakes of the plugin runner and the namespaces for unit tests: the bridge fake hands out
//! addresses and writes host-local style lease files, so orphan cleanup is tested end to end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::cni::{CniCommand, CniError, Invocation, PluginExec};
use super::netns::{Namespaces, NetnsError};

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub plugin: String,
    pub command: CniCommand,
    pub container_id: String,
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub config: Value,
}

#[derive(Debug, Default)]
pub struct FakePlugins {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<Call>,
    allocated: u32,
    failures: HashMap<(String, CniCommand), String>,
}

impl FakePlugins {
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// `plugin` fails `command` from now on (until [`FakePlugins::heal`]).
    pub fn fail(&self, plugin: &str, command: CniCommand, msg: &str) {
        self.lock()
            .failures
            .insert((plugin.to_string(), command), msg.to_string());
    }

    pub fn heal(&self) {
        self.lock().failures.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake plugins lock")
    }

    fn bridge_add(&self, inv: &Invocation<'_>, config: &Value) -> Value {
        let n = {
            let mut state = self.lock();
            state.allocated += 1;
            state.allocated
        };
        let ipam = &config["ipam"];
        let (ip, subnet, gateway) = if ipam["type"] == "static" {
            // The caller reserved the address; `static` only hands it over.
            let cidr: ipnet::Ipv4Net = ipam["addresses"][0]["address"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("fake: static address");
            (
                cidr.addr(),
                cidr.trunc(),
                ipam["addresses"][0]["gateway"].clone(),
            )
        } else {
            let range = &ipam["ranges"][0][0];
            let subnet: ipnet::Ipv4Net = range["subnet"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("fake: subnet");
            let ip = std::net::Ipv4Addr::from(u32::from(subnet.network()) + 1 + n);
            let leases = lease_dir(config);
            std::fs::create_dir_all(&leases).expect("fake: lease dir");
            std::fs::write(
                leases.join(ip.to_string()),
                format!("{}\r\n{}", inv.container_id, inv.ifname),
            )
            .expect("fake: lease");
            (ip, subnet, range["gateway"].clone())
        };
        json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                { "name": config["bridge"], "mac": "02:00:00:00:00:01" },
                { "name": format!("veth{n:04}"), "mac": "02:00:00:00:00:02" },
                { "name": inv.ifname, "mac": "02:00:00:00:00:03", "sandbox": inv.netns.map(|p| p.display().to_string()) },
            ],
            "ips": [{ "address": format!("{ip}/{}", subnet.prefix_len()), "gateway": gateway, "interface": 2 }],
            "routes": [{ "dst": "0.0.0.0/0" }],
        })
    }

    /// host-local releases every lease the container id holds; `static` holds none.
    fn bridge_del(&self, inv: &Invocation<'_>, config: &Value) {
        if config["ipam"]["type"] != "host-local" {
            return;
        }
        let Ok(entries) = std::fs::read_dir(lease_dir(config)) else {
            return;
        };
        for entry in entries.flatten() {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if content.lines().next() == Some(inv.container_id) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn lease_dir(config: &Value) -> PathBuf {
    let data_dir = config["ipam"]["dataDir"].as_str().expect("fake: dataDir");
    Path::new(data_dir).join(config["name"].as_str().expect("fake: name"))
}

#[async_trait]
impl PluginExec for FakePlugins {
    async fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, CniError> {
        let config: Value = serde_json::from_slice(stdin).expect("fake: stdin is json");
        self.lock().calls.push(Call {
            plugin: plugin.to_string(),
            command: inv.command,
            container_id: inv.container_id.to_string(),
            netns: inv.netns.map(Path::to_path_buf),
            ifname: inv.ifname.to_string(),
            config: config.clone(),
        });
        if let Some(msg) = self
            .lock()
            .failures
            .get(&(plugin.to_string(), inv.command))
            .cloned()
        {
            return Err(CniError::PluginFailed {
                plugin: plugin.to_string(),
                command: inv.command,
                code: 999,
                msg,
            });
        }
        let result = match (plugin, inv.command) {
            ("bridge", CniCommand::Add) => self.bridge_add(inv, &config),
            ("bridge", CniCommand::Del) => {
                self.bridge_del(inv, &config);
                return Ok(Vec::new());
            }
            (_, CniCommand::Add) => config["prevResult"].clone(),
            _ => return Ok(Vec::new()),
        };
        Ok(serde_json::to_vec(&result).expect("json"))
    }
}

/// Namespaces as plain files.
#[derive(Debug, Default)]
pub struct FakeNamespaces;

#[async_trait]
impl Namespaces for FakeNamespaces {
    async fn create(&self, path: &Path) -> Result<(), NetnsError> {
        if path.exists() {
            return Err(NetnsError::Exists {
                path: path.to_path_buf(),
            });
        }
        std::fs::write(path, b"").map_err(|source| NetnsError::Create {
            path: path.to_path_buf(),
            source,
        })
    }

    async fn bind(&self, from: &Path, to: &Path) -> Result<(), NetnsError> {
        if !from.exists() {
            let source = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(NetnsError::Create {
                path: to.to_path_buf(),
                source,
            });
        }
        self.create(to).await
    }

    async fn remove(&self, path: &Path) -> Result<(), NetnsError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NetnsError::Remove {
                path: path.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}
