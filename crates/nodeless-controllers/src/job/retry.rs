//! Per-object error back-off for reconcilers (kube's Controller leaves it to the error
//! policy): 1 s doubling to 5 minutes, forgotten on the next success. Shared by the Job,
//! StatefulSet and CronJob controllers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

#[derive(Default)]
pub(crate) struct ErrorBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    /// The delay before retrying `key` after one more failure.
    pub(crate) fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        let delay = FIRST.saturating_mul(1 << (*n).min(16)).min(MAX);
        *n = n.saturating_add(1);
        delay
    }

    pub(crate) fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_and_reset_on_success() {
        let b = ErrorBackoff::default();
        assert_eq!(b.failed("a"), Duration::from_secs(1));
        assert_eq!(b.failed("a"), Duration::from_secs(2));
        assert_eq!(b.failed("b"), Duration::from_secs(1));
        b.succeeded("a");
        assert_eq!(b.failed("a"), Duration::from_secs(1));
        for _ in 0..20 {
            b.failed("c");
        }
        assert_eq!(b.failed("c"), MAX);
    }
}
