//! Applying `nft -f` scripts: the host's `nft` binary, and a fake that records scripts for
//! unit tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft not found at {path}: install nftables (apt-get install nftables, or scripts/engine-deps.sh)")]
    Missing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("run {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("nft refused the ruleset: {stderr}")]
    Rejected { stderr: String },
}

/// Runs one `nft -f` script as one transaction.
#[async_trait]
pub trait NftApplier: Send + Sync + std::fmt::Debug {
    async fn apply(&self, script: &str) -> Result<(), NftError>;
}

/// The host's nftables through the `nft` binary.
#[derive(Debug, Clone)]
pub struct HostNft {
    path: PathBuf,
}

impl HostNft {
    /// Checks that `path` runs (`nft --version`), so a missing tool is told at start.
    pub async fn new(path: impl Into<PathBuf>) -> Result<HostNft, NftError> {
        let path = path.into();
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .await
            .map_err(|source| NftError::Missing {
                path: path.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(NftError::Rejected {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(HostNft { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl NftApplier for HostNft {
    async fn apply(&self, script: &str) -> Result<(), NftError> {
        let spawn_err = |source| NftError::Spawn {
            path: self.path.clone(),
            source,
        };
        let mut child = Command::new(&self.path)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(spawn_err)?;
            // Dropping stdin closes it: nft reads to the end before applying.
        }
        let out = child.wait_with_output().await.map_err(spawn_err)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NftError::Rejected {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// Records every script; fails the next `fail_next` applies as nft would.
#[derive(Debug, Default)]
pub struct FakeNft {
    scripts: Mutex<Vec<String>>,
    fail_next: Mutex<usize>,
}

impl FakeNft {
    pub fn scripts(&self) -> Vec<String> {
        self.scripts.lock().expect("fake nft lock").clone()
    }

    pub fn fail_next(&self, times: usize) {
        *self.fail_next.lock().expect("fake nft lock") = times;
    }
}

#[async_trait]
impl NftApplier for FakeNft {
    async fn apply(&self, script: &str) -> Result<(), NftError> {
        {
            let mut fail = self.fail_next.lock().expect("fake nft lock");
            if *fail > 0 {
                *fail -= 1;
                return Err(NftError::Rejected {
                    stderr: "Error: No such file or directory".into(),
                });
            }
        }
        self.scripts
            .lock()
            .expect("fake nft lock")
            .push(script.to_string());
        Ok(())
    }
}
