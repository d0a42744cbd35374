//! The OCI runtime driver: runc (default) and runsc (gVisor), both driven through their CLIs.
//!
//! Creating and starting a container happens in the per-container shim (it must own the
//! container's stdio), so it uses the synchronous command builders here; the engine uses the
//! async [`Runtime`] trait for everything that inspects or signals an existing container.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Which OCI runtime runs an instance's containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// runc: namespaces and cgroups on the host kernel.
    #[default]
    Runc,
    /// runsc: gVisor's user-space kernel, the strongly isolated runtime.
    Runsc,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Runsc => "runsc",
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "runc" => Ok(RuntimeKind::Runc),
            "runsc" | "gvisor" => Ok(RuntimeKind::Runsc),
            other => Err(RuntimeError::UnknownRuntime(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("unknown runtime {0:?} (expected runc or runsc)")]
    UnknownRuntime(String),
    #[error("{kind} is not installed on this host (looked for it in {searched}); {hint}")]
    NotInstalled {
        kind: RuntimeKind,
        searched: String,
        hint: &'static str,
    },
    #[error("could not run {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{binary} {verb} {id} failed: {stderr}")]
    Failed {
        binary: String,
        verb: &'static str,
        id: String,
        stderr: String,
    },
    #[error("could not parse the output of {binary} {verb}: {source}")]
    Parse {
        binary: String,
        verb: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A located runtime binary plus the state directory it keeps its containers in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuntimeBinary {
    pub kind: RuntimeKind,
    pub path: PathBuf,
    /// The runtime's `--root`: nodeless keeps its containers apart from any other user of runc.
    pub state_root: PathBuf,
    /// runsc's network mode; runsc wants it on create and start alike.
    #[serde(default)]
    pub network_flags: Vec<String>,
}

const SEARCH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

impl RuntimeBinary {
    /// Finds the runtime on `$PATH` or in the usual system directories.
    pub fn locate(kind: RuntimeKind, state_root: &Path) -> Result<Self, RuntimeError> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.extend(SEARCH_DIRS.iter().map(PathBuf::from));
        let found = dirs
            .iter()
            .map(|d| d.join(kind.as_str()))
            .find(|p| is_executable(p));
        match found {
            Some(path) => Ok(RuntimeBinary {
                kind,
                path,
                state_root: state_root.to_path_buf(),
                network_flags: Vec::new(),
            }),
            None => Err(RuntimeError::NotInstalled {
                kind,
                searched: "$PATH and /usr/local/sbin, /usr/sbin, /usr/bin".into(),
                hint: match kind {
                    RuntimeKind::Runc => "install Debian's runc package",
                    RuntimeKind::Runsc => {
                        "install Debian's runsc package (gVisor) or choose --runtime runc"
                    }
                },
            }),
        }
    }

    /// The runtime command with its global flags.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root")
            .arg(&self.state_root)
            .args(&self.network_flags);
        // runsc: the default platform (systrap/ptrace) works everywhere; kvm hangs on this
        // host class, so it is never selected.
        cmd.stdin(Stdio::null());
        cmd
    }

    /// For runsc, the network mode. With the instance's namespace the sandbox starts inside
    /// it and uses its interfaces through the host kernel (`host`); without, there is none.
    ///
    /// Why not gVisor's own netstack (`sandbox`): Debian's runsc (2022) decides it is in the
    /// root namespace when /proc/sys/net/core/rmem_default exists, which current kernels show
    /// in every namespace, and then refuses to start. The sandbox still sits in the instance's
    /// own namespace; only socket calls reach the host kernel.
    pub fn with_network(mut self, netns: bool) -> Self {
        if self.kind == RuntimeKind::Runsc {
            let mode = if netns {
                "--network=host"
            } else {
                "--network=none"
            };
            self.network_flags = vec![mode.to_string()];
        }
        self
    }

    pub fn create(&self, id: &str, bundle: &Path, pid_file: &Path) -> Command {
        let mut cmd = self.command();
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id);
        cmd
    }

    /// `run --detach`: create and start in one runtime invocation; the container's stdio are
    /// the command's, and its init outlives the command. A container with a terminal needs a
    /// `console` socket, where the runtime sends the terminal's master side.
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console: Option<&Path>,
    ) -> Command {
        let mut cmd = self.command();
        cmd.arg("run").arg("--detach");
        if let Some(socket) = console {
            cmd.arg("--console-socket").arg(socket);
        }
        cmd.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id);
        cmd
    }

    pub fn start(&self, id: &str) -> Command {
        let mut cmd = self.command();
        cmd.arg("start").arg(id);
        cmd
    }

    pub fn delete(&self, id: &str, force: bool) -> Command {
        let mut cmd = self.command();
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        cmd
    }

    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Command {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal);
        cmd
    }

    pub fn wait(&self, id: &str) -> Command {
        let mut cmd = self.command();
        cmd.arg("wait").arg(id);
        cmd
    }

    pub fn binary_name(&self) -> String {
        self.path.display().to_string()
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// What `runc state` says about a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeState {
    pub id: String,
    /// created, running, paused or stopped.
    pub status: String,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub bundle: String,
}

impl RuntimeState {
    pub fn is_running(&self) -> bool {
        self.status == "running" || self.status == "created" || self.status == "paused"
    }
}

/// The operations the engine performs on existing containers; faked in unit tests.
#[async_trait]
pub trait Runtime: Send + Sync {
    fn kind(&self) -> RuntimeKind;
    /// The located binary, for the shim that creates and starts containers.
    fn binary(&self) -> &RuntimeBinary;
    /// `None` when the runtime does not know the container.
    async fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError>;
    async fn list(&self) -> Result<Vec<RuntimeState>, RuntimeError>;
    /// Signals the container's init process (or all its processes with `all`).
    async fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError>;
    /// Removes the container; idempotent.
    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
}

/// The real runtime: runc or runsc through its command line.
#[derive(Debug, Clone)]
pub struct CliRuntime {
    bin: RuntimeBinary,
}

impl CliRuntime {
    pub fn new(bin: RuntimeBinary) -> Self {
        CliRuntime { bin }
    }

    async fn output(
        &self,
        cmd: Command,
        verb: &'static str,
        id: &str,
    ) -> Result<std::process::Output, RuntimeError> {
        let out = tokio::process::Command::from(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|source| RuntimeError::Spawn {
                binary: self.bin.binary_name(),
                source,
            })?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(RuntimeError::Failed {
                binary: self.bin.binary_name(),
                verb,
                id: id.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// runc and runsc word "no such container" differently; both mean the same to us.
fn is_not_found(err: &RuntimeError) -> bool {
    match err {
        RuntimeError::Failed { stderr, .. } => {
            let s = stderr.to_ascii_lowercase();
            s.contains("does not exist") || s.contains("not found") || s.contains("no such")
        }
        _ => false,
    }
}

#[async_trait]
impl Runtime for CliRuntime {
    fn kind(&self) -> RuntimeKind {
        self.bin.kind
    }

    fn binary(&self) -> &RuntimeBinary {
        &self.bin
    }

    async fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError> {
        let mut cmd = self.bin.command();
        cmd.arg("state").arg(id);
        match self.output(cmd, "state", id).await {
            Ok(out) => serde_json::from_slice(&out.stdout)
                .map(Some)
                .map_err(|source| RuntimeError::Parse {
                    binary: self.bin.binary_name(),
                    verb: "state",
                    source,
                }),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(&self) -> Result<Vec<RuntimeState>, RuntimeError> {
        if !self.bin.state_root.exists() {
            return Ok(Vec::new());
        }
        let mut cmd = self.bin.command();
        cmd.arg("list").arg("--format").arg("json");
        let out = self.output(cmd, "list", "").await?;
        let text = String::from_utf8_lossy(&out.stdout);
        // runc prints "null" for no containers, runsc an empty list.
        if text.trim().is_empty() || text.trim() == "null" {
            return Ok(Vec::new());
        }
        serde_json::from_str(&text).map_err(|source| RuntimeError::Parse {
            binary: self.bin.binary_name(),
            verb: "list",
            source,
        })
    }

    async fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError> {
        match self
            .output(self.bin.kill(id, signal, all), "kill", id)
            .await
        {
            Ok(_) => Ok(()),
            // Already gone, or already stopped: the signal has nothing left to do.
            Err(RuntimeError::Failed { stderr, .. })
                if stderr.contains("not running")
                    || stderr.contains("does not exist")
                    || stderr.contains("not found") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        match self.output(self.bin.delete(id, force), "delete", id).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_kind_parses_gvisor_as_runsc() {
        assert_eq!(
            "gvisor".parse::<RuntimeKind>().expect("parses"),
            RuntimeKind::Runsc
        );
        assert!("kata".parse::<RuntimeKind>().is_err());
    }

    #[test]
    fn missing_runtime_says_which_package_to_install() {
        let err = RuntimeError::NotInstalled {
            kind: RuntimeKind::Runsc,
            searched: "x".into(),
            hint: "install Debian's runsc package",
        };
        assert!(err.to_string().contains("runsc is not installed"));
    }

    #[test]
    fn runsc_commands_never_select_the_kvm_platform() {
        let bin = RuntimeBinary {
            kind: RuntimeKind::Runsc,
            path: "/usr/bin/runsc".into(),
            state_root: "/run/x".into(),
            network_flags: vec![],
        }
        .with_network(true);
        let cmd = bin.create("c1", Path::new("/b"), Path::new("/p"));
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--root",
                "/run/x",
                "--network=host",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "c1"
            ]
        );
        assert!(!args.iter().any(|a| a.contains("kvm")));
    }
}
