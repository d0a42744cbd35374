//! What a controller expects to see after its own writes, as upstream's
//! ControllerExpectations: after creating N Pods it must not act again until the watch has
//! shown all N (or they failed), or a burst would be doubled by a reconcile that runs on a
//! cache that has not caught up yet. Deletions are checked against the cache itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After this long unmet expectations are given up (a watch event lost to a relist), as
/// upstream's ExpectationsTimeout.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Pending {
    adds: i64,
    /// Pod name -> uid of the Pods whose deletion was asked for.
    deletes: HashMap<String, String>,
    since: Instant,
}

/// Expectations keyed by the owner's uid. Cheap to clone; never locked across an await.
#[derive(Clone, Default)]
pub struct Expectations {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `owner` may act: nothing pending, everything seen, or given up. `gone(name,
    /// uid)` says whether the cache shows a Pod deleted (absent, replaced, or terminating).
    pub fn satisfied(&self, owner: &str, gone: impl Fn(&str, &str) -> bool) -> bool {
        self.satisfied_at(owner, gone, Instant::now())
    }

    fn satisfied_at(&self, owner: &str, gone: impl Fn(&str, &str) -> bool, now: Instant) -> bool {
        let mut pending = self.lock();
        let Some(p) = pending.get_mut(owner) else {
            return true;
        };
        p.deletes.retain(|name, uid| !gone(name, uid));
        (p.adds <= 0 && p.deletes.is_empty()) || now.duration_since(p.since) > EXPECTATIONS_TIMEOUT
    }

    /// `owner` is about to create `count` Pods.
    pub fn expect_creations(&self, owner: &str, count: usize) {
        self.set(
            owner,
            i64::try_from(count).unwrap_or(i64::MAX),
            HashMap::new(),
        );
    }

    /// `owner` is about to delete these Pods (name, uid).
    pub fn expect_deletions(&self, owner: &str, pods: impl IntoIterator<Item = (String, String)>) {
        self.set(owner, 0, pods.into_iter().collect());
    }

    fn set(&self, owner: &str, adds: i64, deletes: HashMap<String, String>) {
        let since = Instant::now();
        self.lock().insert(
            owner.to_string(),
            Pending {
                adds,
                deletes,
                since,
            },
        );
    }

    /// A Pod of `owner` appeared (or a creation failed or was skipped).
    pub fn creation_observed(&self, owner: &str) {
        if let Some(p) = self.lock().get_mut(owner) {
            p.adds -= 1;
        }
    }

    /// A deletion `owner` asked for failed: stop waiting for it.
    pub fn deletion_failed(&self, owner: &str, pod_name: &str) {
        if let Some(p) = self.lock().get_mut(owner) {
            p.deletes.remove(pod_name);
        }
    }

    /// The owner is gone.
    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }
}

/// Tells which watched Pods are new: the uids listed or applied so far, rebuilt on every
/// relist so that Pods deleted while the watch was down are forgotten.
#[derive(Default)]
pub struct NewPods {
    seen: HashSet<String>,
    relisting: Option<HashSet<String>>,
}

impl NewPods {
    /// A watch restarted: a full listing follows.
    pub fn relist_started(&mut self) {
        self.relisting = Some(HashSet::new());
    }

    pub fn relist_done(&mut self) {
        if let Some(listed) = self.relisting.take() {
            self.seen = listed;
        }
    }

    /// Records `uid` as applied or listed; true the first time it is seen.
    pub fn applied(&mut self, uid: &str) -> bool {
        let new = !self.seen.contains(uid);
        if let Some(listed) = &mut self.relisting {
            listed.insert(uid.to_string());
        }
        self.seen.insert(uid.to_string());
        new
    }

    pub fn deleted(&mut self, uid: &str) {
        self.seen.remove(uid);
        if let Some(listed) = &mut self.relisting {
            listed.remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_are_awaited_until_each_is_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("rs", |_, _| false));
        e.expect_creations("rs", 2);
        assert!(!e.satisfied("rs", |_, _| false));
        e.creation_observed("rs");
        assert!(!e.satisfied("rs", |_, _| false));
        e.creation_observed("rs");
        assert!(e.satisfied("rs", |_, _| false));
        assert!(e.satisfied("other", |_, _| false));
    }

    #[test]
    fn deletions_are_awaited_until_the_cache_shows_them_gone() {
        let e = Expectations::default();
        e.expect_deletions(
            "rs",
            [("p1".into(), "u1".into()), ("p2".into(), "u2".into())],
        );
        assert!(!e.satisfied("rs", |name, _| name == "p1"));
        e.deletion_failed("rs", "p2");
        assert!(e.satisfied("rs", |_, _| false));
    }

    #[test]
    fn unmet_expectations_expire() {
        let e = Expectations::default();
        e.expect_creations("rs", 1);
        let later = Instant::now() + EXPECTATIONS_TIMEOUT + Duration::from_secs(1);
        assert!(e.satisfied_at("rs", |_, _| false, later));
    }

    #[test]
    fn a_pod_is_new_once_and_a_relist_forgets_pods_deleted_meanwhile() {
        let mut n = NewPods::default();
        assert!(n.applied("a"));
        assert!(!n.applied("a"));
        assert!(n.applied("b"));
        n.relist_started();
        assert!(!n.applied("a"));
        n.relist_done();
        assert!(n.applied("b"), "b was not listed again, so it was deleted");
        n.deleted("b");
        assert!(n.applied("b"));
    }
}
