//! What this controller last wrote to each Service's slices, so a reconcile never plans
//! against a watch cache that has not caught up with its own writes (which would, for one,
//! create a second slice for endpoints that a just-created slice already holds). Upstream's
//! endpointslice controller keeps the same kind of tracker.

use std::collections::HashMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// nodeless's resource versions are store revisions, so they order writes.
fn revision(slice: &EndpointSlice) -> Option<u64> {
    slice.metadata.resource_version.as_deref()?.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Written at this revision (or later).
    AtLeast(u64),
    Deleted,
}

/// Per Service (`namespace/name`): slice name -> what the cache should show.
#[derive(Debug, Default)]
pub struct Tracker {
    services: HashMap<String, HashMap<String, Expect>>,
}

impl Tracker {
    pub fn wrote(&mut self, service: &str, slice: &EndpointSlice) {
        let (Some(name), Some(rev)) = (slice.metadata.name.clone(), revision(slice)) else {
            return;
        };
        let entry = self.services.entry(service.to_string()).or_default();
        entry.insert(name, Expect::AtLeast(rev));
    }

    pub fn deleted(&mut self, service: &str, name: &str) {
        let entry = self.services.entry(service.to_string()).or_default();
        entry.insert(name.to_string(), Expect::Deleted);
    }

    pub fn forget(&mut self, service: &str) {
        self.services.remove(service);
    }

    /// Whether `cached` (the cache's slices of `service`) shows every write made; entries
    /// the cache has caught up with are dropped.
    pub fn is_current(&mut self, service: &str, cached: &[&EndpointSlice]) -> bool {
        let Some(expected) = self.services.get_mut(service) else {
            return true;
        };
        expected.retain(|name, expect| {
            let seen = cached
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            match (expect, seen) {
                (Expect::Deleted, None) => false,
                (Expect::Deleted, Some(_)) => true,
                (Expect::AtLeast(_), None) => true,
                (Expect::AtLeast(rev), Some(s)) => revision(s).is_none_or(|r| r < *rev),
            }
        });
        let current = expected.is_empty();
        if current {
            self.services.remove(service);
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(name: &str, rv: &str) -> EndpointSlice {
        let mut s = EndpointSlice::default();
        s.metadata.name = Some(name.into());
        s.metadata.resource_version = Some(rv.into());
        s
    }

    #[test]
    fn a_cache_missing_a_created_slice_is_not_current_until_it_shows_it() {
        let mut t = Tracker::default();
        t.wrote("ns/web", &slice("web-abc", "10"));
        assert!(!t.is_current("ns/web", &[]));
        assert!(!t.is_current("ns/web", &[&slice("web-abc", "9")]));
        assert!(t.is_current("ns/web", &[&slice("web-abc", "10")]));
        // Once caught up, the entry is gone: later changes by others are trusted.
        assert!(t.is_current("ns/web", &[]));
    }

    #[test]
    fn a_deleted_slice_still_cached_makes_the_cache_stale() {
        let mut t = Tracker::default();
        t.deleted("ns/web", "web-abc");
        assert!(!t.is_current("ns/web", &[&slice("web-abc", "3")]));
        assert!(t.is_current("ns/web", &[]));
        assert!(t.is_current("ns/other", &[&slice("other-x", "1")]));
    }
}
