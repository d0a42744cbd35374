//! Cleaning up after instances that no longer exist: after an engine crash or restart, the
//! namespaces, records and host-local leases of instances the engine does not know are
//! detached like any other. The warm pool's spares are kept unless dead.

use std::collections::{BTreeSet, HashSet};

use super::attach::Network;
use super::netns::list_named;
use super::pool::SPARE_PREFIX;
use super::record::lease_owners;
use super::{is_valid_id, NetworkError};

impl Network {
    /// Detaches every instance not in `live` (which must include instances being created)
    /// that this network still holds something for. Returns the ids cleaned; on failures, the
    /// rest is still cleaned and the first error returned.
    pub async fn cleanup_orphans(
        &self,
        live: &HashSet<String>,
    ) -> Result<Vec<String>, NetworkError> {
        let orphans: Vec<String> = {
            // No claim may move a spare while we look.
            let _pool = self.lock_pool().await?;
            let spares = self.live_spares()?;
            self.known_ids()?
                .into_iter()
                .filter(|id| !live.contains(id) && !spares.contains(id))
                .collect()
        };
        let mut first_error = None;
        let mut cleaned = Vec::new();
        for id in orphans {
            let detached = if id.starts_with(SPARE_PREFIX) {
                self.remove_spare(&id).await
            } else {
                self.detach_any(&id).await
            };
            match detached {
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
        self.fill_pool_in_background();
        first_error.map_or(Ok(cleaned), Err)
    }

    /// Every id with a record; with `reclaim_unrecorded`, also every id with a namespace under
    /// our prefix or a lease in our network that no record accounts for (an instance that took
    /// a spare holds the spare's lease).
    fn known_ids(&self) -> Result<BTreeSet<String>, NetworkError> {
        let cfg = self.config();
        let records = &self.inner.records;
        let mut ids: BTreeSet<String> = records.ids()?.into_iter().collect();
        let mut leased_by_record: HashSet<String> = ids.iter().cloned().collect();
        for id in &ids {
            if let Ok(Some(rec)) = records.load(id) {
                leased_by_record.insert(rec.cni_id().to_string());
            }
        }
        if !cfg.reclaim_unrecorded {
            return Ok(ids);
        }
        let list_error = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| NetworkError::List { path, source }
        };
        ids.extend(
            list_named(&cfg.netns_dir, &cfg.netns_prefix).map_err(list_error(&cfg.netns_dir))?,
        );
        let lease_dir = cfg.lease_dir();
        let leases = lease_owners(&lease_dir).map_err(list_error(&lease_dir))?;
        ids.extend(
            leases
                .into_iter()
                .filter(|owner| !leased_by_record.contains(owner)),
        );
        // Leases of other runtimes sharing the directory may carry ids we would never make.
        ids.retain(|id| is_valid_id(id));
        Ok(ids)
    }
}
