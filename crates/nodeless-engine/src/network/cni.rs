//! The CNI protocol (spec 1.0): a chain of plugins run one after another for ADD, in reverse
//! for DEL, each given its network config on stdin and the `CNI_*` environment. Running a plugin
//! is behind [`PluginExec`], so the chain logic is tested with a fake.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error(
        "cni plugin {plugin} not found in {dirs} (apt-get install containernetworking-plugins)"
    )]
    PluginNotFound { plugin: String, dirs: String },
    #[error("cannot run cni plugin {plugin}: {source}")]
    Spawn {
        plugin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cni plugin {plugin} {command} timed out after {seconds}s")]
    Timeout {
        plugin: String,
        command: CniCommand,
        seconds: u64,
    },
    #[error("cni plugin {plugin} {command} failed (code {code}): {msg}")]
    PluginFailed {
        plugin: String,
        command: CniCommand,
        code: u64,
        msg: String,
    },
    #[error("cni plugin {plugin} {command} returned an unreadable result: {reason}")]
    BadResult {
        plugin: String,
        command: CniCommand,
        reason: String,
    },
    #[error("cni network {network}: {reason}")]
    BadConfig { network: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CniCommand {
    Add,
    Del,
    Check,
}

impl CniCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
            CniCommand::Check => "CHECK",
        }
    }
}

impl fmt::Display for CniCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `CNI_*` environment of one plugin run.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub command: CniCommand,
    pub container_id: &'a str,
    /// `None` becomes an empty `CNI_NETNS`: on DEL it tells plugins the namespace is gone.
    pub netns: Option<&'a Path>,
    pub ifname: &'a str,
}

/// Runs one plugin binary: `plugin` is its `type`, `config` its stdin. Returns its stdout.
#[async_trait]
pub trait PluginExec: Send + Sync + fmt::Debug {
    async fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        config: &[u8],
    ) -> Result<Vec<u8>, CniError>;
}

/// A network configuration list: `plugins` are the plugin objects as in a `.conflist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub name: String,
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub plugins: Vec<Value>,
}

impl Chain {
    /// ADD through the whole chain, each plugin getting the previous one's result; returns the
    /// last result. `runtime` holds capability arguments (e.g. `portMappings`).
    pub async fn add(
        &self,
        exec: &dyn PluginExec,
        inv: &Invocation<'_>,
        runtime: &Value,
    ) -> Result<Value, CniError> {
        self.add_after(exec, inv, runtime, None).await
    }

    /// ADD through the chain as if it continued a chain that returned `prev`.
    pub async fn add_after(
        &self,
        exec: &dyn PluginExec,
        inv: &Invocation<'_>,
        runtime: &Value,
        mut prev: Option<Value>,
    ) -> Result<Value, CniError> {
        if self.plugins.is_empty() {
            return Err(self.bad_config("has no plugins"));
        }
        for plugin in &self.plugins {
            let kind = self.plugin_type(plugin)?;
            let stdin = self.stdin_for(plugin, prev.as_ref(), runtime);
            let out = exec.exec(kind, inv, &stdin).await?;
            let result: Value = serde_json::from_slice(&out).map_err(|e| CniError::BadResult {
                plugin: kind.to_string(),
                command: inv.command,
                reason: e.to_string(),
            })?;
            prev = Some(result);
        }
        prev.ok_or_else(|| self.bad_config("has no plugins"))
    }

    /// DEL in reverse order with the cached ADD result. Every plugin is asked even when one
    /// fails, so as much as possible is released; the first failure is returned.
    pub async fn del(
        &self,
        exec: &dyn PluginExec,
        inv: &Invocation<'_>,
        runtime: &Value,
        prev: Option<&Value>,
    ) -> Result<(), CniError> {
        let mut first_error = None;
        for plugin in self.plugins.iter().rev() {
            let kind = self.plugin_type(plugin)?;
            let stdin = self.stdin_for(plugin, prev, runtime);
            if let Err(e) = exec.exec(kind, inv, &stdin).await {
                tracing::warn!(plugin = kind, error = %e, "cni DEL failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// CHECK in order, each plugin given the cached ADD result.
    pub async fn check(
        &self,
        exec: &dyn PluginExec,
        inv: &Invocation<'_>,
        runtime: &Value,
        prev: &Value,
    ) -> Result<(), CniError> {
        for plugin in &self.plugins {
            let kind = self.plugin_type(plugin)?;
            exec.exec(kind, inv, &self.stdin_for(plugin, Some(prev), runtime))
                .await?;
        }
        Ok(())
    }

    fn plugin_type<'p>(&self, plugin: &'p Value) -> Result<&'p str, CniError> {
        match plugin["type"].as_str() {
            Some(t) if !t.is_empty() && !t.contains('/') => Ok(t),
            _ => Err(self.bad_config("has a plugin without a valid type")),
        }
    }

    fn bad_config(&self, reason: &str) -> CniError {
        CniError::BadConfig {
            network: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// The plugin's object plus `name`, `cniVersion`, `prevResult`, and `runtimeConfig` holding
    /// just the capabilities the plugin declares, as libcni builds it.
    fn stdin_for(&self, plugin: &Value, prev: Option<&Value>, runtime: &Value) -> Vec<u8> {
        let mut conf = plugin.as_object().cloned().unwrap_or_default();
        conf.insert("name".into(), json!(self.name));
        conf.insert("cniVersion".into(), json!(self.cni_version));
        if let Some(prev) = prev {
            conf.insert("prevResult".into(), prev.clone());
        }
        let runtime_config: Map<String, Value> = plugin["capabilities"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(cap, on)| on.as_bool() == Some(true) && !runtime[cap.as_str()].is_null())
            .map(|(cap, _)| (cap.clone(), runtime[cap.as_str()].clone()))
            .collect();
        if !runtime_config.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime_config));
        }
        serde_json::to_vec(&Value::Object(conf)).expect("json values always serialize")
    }
}

/// The parts of a CNI result nodeless uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CniResult {
    #[serde(default)]
    pub interfaces: Vec<CniInterface>,
    #[serde(default)]
    pub ips: Vec<CniIp>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CniInterface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CniIp {
    /// CIDR notation: `10.88.0.5/16`.
    pub address: String,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub interface: Option<usize>,
}

/// An address assigned inside the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub ip: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
}

impl CniResult {
    pub fn from_value(v: &Value) -> Result<Self, serde_json::Error> {
        CniResult::deserialize(v)
    }

    /// The first IPv4 address on `ifname` inside the sandbox; else the first IPv4 address.
    pub fn primary(&self, ifname: &str) -> Option<Assigned> {
        let on_ifname = |ip: &&CniIp| {
            ip.interface
                .and_then(|i| self.interfaces.get(i))
                .is_some_and(|iface| iface.name == ifname && !iface.sandbox.is_empty())
        };
        let parsed = |ip: &CniIp| parse_assigned(ip).filter(|a| a.ip.is_ipv4());
        self.ips
            .iter()
            .filter(on_ifname)
            .find_map(parsed)
            .or_else(|| self.ips.iter().find_map(parsed))
    }
}

fn parse_assigned(ip: &CniIp) -> Option<Assigned> {
    let (addr, prefix) = ip.address.split_once('/')?;
    Some(Assigned {
        ip: addr.parse().ok()?,
        prefix_len: prefix.parse().ok()?,
        gateway: ip.gateway.as_deref().and_then(|g| g.parse().ok()),
    })
}

/// A plugin's error answer (spec: `{"code": 7, "msg": "...", "details": "..."}` on stdout).
pub fn parse_plugin_error(stdout: &[u8], stderr: &[u8]) -> (u64, String) {
    #[derive(Deserialize)]
    struct ErrorAnswer {
        #[serde(default)]
        code: u64,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<ErrorAnswer>(stdout) {
        Ok(e) if !e.msg.is_empty() => {
            let msg = if e.details.is_empty() {
                e.msg
            } else {
                format!("{}: {}", e.msg, e.details)
            };
            (e.code, msg)
        }
        _ => {
            let text = String::from_utf8_lossy(if stderr.is_empty() { stdout } else { stderr });
            (0, text.trim().to_string())
        }
    }
}
