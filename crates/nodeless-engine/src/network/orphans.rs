//! Cleaning up after instances that no longer exist: after an engine crash or restart, the
//! namespaces, records and host-local leases of instances the engine does not know are
//! detached like any other.

use std::collections::{BTreeSet, HashSet};

use super::attach::Network;
use super::netns::list_named;
use super::record::lease_owners;
use super::{validate_id, NetworkError};

impl Network {
    /// Detaches every instance not in `live` that this network still holds something for.
    /// Returns the ids cleaned; on failures, the rest is still cleaned and the first error
    /// returned.
    pub async fn cleanup_orphans(
        &self,
        live: &HashSet<String>,
    ) -> Result<Vec<String>, NetworkError> {
        let mut first_error = None;
        let mut cleaned = Vec::new();
        for id in self
            .known_ids()?
            .into_iter()
            .filter(|id| !live.contains(id))
        {
            match self.detach(&id).await {
                Ok(()) => cleaned.push(id),
                Err(e) => {
                    tracing::warn!(instance.id = %id, error = %e, "cleaning up orphaned network");
                    first_error.get_or_insert(e);
                }
            }
        }
        if !cleaned.is_empty() {
            tracing::info!(
                count = cleaned.len(),
                "cleaned up orphaned instance networks"
            );
        }
        first_error.map_or(Ok(cleaned), Err)
    }

    /// Every id with a record, a namespace under our prefix, or a lease in our network.
    fn known_ids(&self) -> Result<BTreeSet<String>, NetworkError> {
        let cfg = self.config();
        let mut ids: BTreeSet<String> = self.inner.records.ids()?.into_iter().collect();
        let netns =
            list_named(&cfg.netns_dir, &cfg.netns_prefix).map_err(|source| NetworkError::List {
                path: cfg.netns_dir.clone(),
                source,
            })?;
        ids.extend(netns);
        let lease_dir = cfg.lease_dir();
        ids.extend(
            lease_owners(&lease_dir).map_err(|source| NetworkError::List {
                path: lease_dir,
                source,
            })?,
        );
        // Leases of other runtimes sharing the directory may carry ids we would never make.
        ids.retain(|id| validate_id(id).is_ok());
        Ok(ids)
    }
}
