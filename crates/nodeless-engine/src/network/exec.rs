//! Runs the host's CNI plugin binaries (Debian's containernetworking-plugins in /usr/lib/cni).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::cni::{parse_plugin_error, CniError, Invocation, PluginExec};
use crate::sandbox::start_gate::process_slots;

#[derive(Debug, Clone)]
pub struct HostPlugins {
    bin_dirs: Vec<PathBuf>,
    /// `CNI_PATH`: where chained plugins (bridge → host-local) look for their delegates.
    cni_path: String,
    timeout: Duration,
    /// Plugin processes running at once: a burst of attaches otherwise starts dozens of Go
    /// processes that contend for the cores (see `sandbox::start_gate`).
    slots: Arc<Semaphore>,
}

impl HostPlugins {
    pub fn new(bin_dirs: Vec<PathBuf>, timeout: Duration) -> Self {
        let cni_path = std::env::join_paths(&bin_dirs)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        HostPlugins {
            bin_dirs,
            cni_path,
            timeout,
            slots: Arc::new(Semaphore::new(process_slots())),
        }
    }

    /// The first directory holding `plugin`, as libcni's `FindInPath`.
    pub fn find(&self, plugin: &str) -> Result<PathBuf, CniError> {
        self.bin_dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| is_executable(p))
            .ok_or_else(|| CniError::PluginNotFound {
                plugin: plugin.to_string(),
                dirs: self.cni_path.replace(':', ", "),
            })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[async_trait]
impl PluginExec for HostPlugins {
    async fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        config: &[u8],
    ) -> Result<Vec<u8>, CniError> {
        let path = self.find(plugin)?;
        // Closed never: the semaphore lives as long as self.
        let _slot = self.slots.acquire().await.ok();
        let netns = inv
            .netns
            .map(|p| p.as_os_str().to_owned())
            .unwrap_or_default();
        // The rest of the environment is kept: plugins find iptables and friends through PATH.
        let mut child = tokio::process::Command::new(&path)
            .env("CNI_COMMAND", inv.command.as_str())
            .env("CNI_CONTAINERID", inv.container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", inv.ifname)
            .env("CNI_PATH", &self.cni_path)
            .env_remove("CNI_ARGS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| CniError::Spawn {
                plugin: plugin.to_string(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A config is a few hundred bytes: it fits the pipe even before the plugin reads.
            stdin
                .write_all(config)
                .await
                .map_err(|source| CniError::Spawn {
                    plugin: plugin.to_string(),
                    source,
                })?;
        }
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| CniError::Timeout {
                plugin: plugin.to_string(),
                command: inv.command,
                seconds: self.timeout.as_secs(),
            })?
            .map_err(|source| CniError::Spawn {
                plugin: plugin.to_string(),
                source,
            })?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let (code, msg) = parse_plugin_error(&output.stdout, &output.stderr);
        Err(CniError::PluginFailed {
            plugin: plugin.to_string(),
            command: inv.command,
            code,
            msg,
        })
    }
}
