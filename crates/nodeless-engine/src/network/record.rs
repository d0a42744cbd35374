//! What nodeless remembers about each attached instance, one JSON file per instance in
//! `<state_dir>/instances/`: the namespace, the exact chain and port mappings used, and the ADD
//! result. DEL needs all of them (the spec hands the cached result back to the plugins), and
//! a record written before anything is created is the trail `cleanup_orphans` follows after a
//! crash.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni::Chain;
use super::portmap::PortMapping;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The CNI container id the plugins know the attachment by, when it is not `id`: an
    /// instance that took a spare from the warm pool keeps the spare's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_id: Option<String>,
    pub netns: PathBuf,
    pub chain: Chain,
    pub port_mappings: Vec<PortMapping>,
    /// `None` while ADD has not finished.
    pub result: Option<Value>,
}

impl Record {
    pub fn cni_id(&self) -> &str {
        self.cni_id.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("network record {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network record {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn open(state_dir: &Path) -> Result<Self, RecordError> {
        let dir = state_dir.join("instances");
        std::fs::create_dir_all(&dir).map_err(|source| RecordError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Records { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn load(&self, id: &str) -> Result<Option<Record>, RecordError> {
        let path = self.path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RecordError::Io { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RecordError::Corrupt { path, source })
    }

    /// Written to a temporary file and renamed, so a crash leaves the old or the new record.
    pub fn save(&self, record: &Record) -> Result<(), RecordError> {
        let path = self.path(&record.id);
        let tmp = self.dir.join(format!(".{}.tmp", record.id));
        let bytes = serde_json::to_vec_pretty(record).map_err(|source| RecordError::Corrupt {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| RecordError::Io { path, source })
    }

    pub fn remove(&self, id: &str) -> Result<(), RecordError> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(RecordError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }

    pub fn ids(&self) -> Result<Vec<String>, RecordError> {
        let err = |source| RecordError::Io {
            path: self.dir.clone(),
            source,
        };
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(err)? {
            let name = entry.map_err(err)?.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) {
                if !id.starts_with('.') {
                    ids.push(id.to_string());
                }
            }
        }
        Ok(ids)
    }
}

/// Owners of host-local leases in `lease_dir`: each lease is a file named after the IP holding
/// `<container id>\r\n<ifname>` (older plugins: just the id).
pub fn lease_owners(lease_dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(lease_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut owners = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_lease = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok());
        if !is_lease {
            continue; // `lock`, `last_reserved_ip.0`
        }
        if let Some(owner) = lease_owner(&std::fs::read_to_string(entry.path())?) {
            owners.push(owner.to_string());
        }
    }
    Ok(owners)
}

pub fn lease_owner(content: &str) -> Option<&str> {
    content
        .lines()
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_files_name_their_owner_on_the_first_line() {
        assert_eq!(lease_owner("abc123\r\neth0"), Some("abc123"));
        assert_eq!(lease_owner("abc123"), Some("abc123"));
        assert_eq!(lease_owner(""), None);
    }

    #[test]
    fn lease_owners_skip_the_lock_and_last_reserved_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("10.88.0.2"), "one\r\neth0").expect("write");
        std::fs::write(dir.path().join("10.88.0.3"), "two\r\neth0").expect("write");
        std::fs::write(dir.path().join("last_reserved_ip.0"), "10.88.0.3").expect("write");
        std::fs::write(dir.path().join("lock"), "").expect("write");
        let mut owners = lease_owners(dir.path()).expect("list");
        owners.sort();
        assert_eq!(owners, vec!["one", "two"]);
        assert!(lease_owners(&dir.path().join("missing"))
            .expect("missing dir is empty")
            .is_empty());
    }

    #[test]
    fn records_round_trip_and_list_by_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = Records::open(dir.path()).expect("open");
        let rec = Record {
            id: "abc".into(),
            cni_id: None,
            netns: "/run/netns/nodeless-abc".into(),
            chain: Chain {
                name: "n".into(),
                cni_version: "1.0.0".into(),
                plugins: vec![],
            },
            port_mappings: vec![PortMapping::tcp(8080, 80)],
            result: None,
        };
        records.save(&rec).expect("save");
        assert_eq!(records.load("abc").expect("load"), Some(rec));
        assert_eq!(records.ids().expect("ids"), vec!["abc"]);
        records.remove("abc").expect("remove");
        records.remove("abc").expect("remove twice");
        assert_eq!(records.load("abc").expect("load"), None);
    }
}
