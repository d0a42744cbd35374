//! Restart policy and crash-loop backoff, as the kubelet applies them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// Whether a container that exited with `exit_code` runs again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Always" | "always" => Ok(RestartPolicy::Always),
            "OnFailure" | "on-failure" | "onfailure" => Ok(RestartPolicy::OnFailure),
            "Never" | "never" | "no" => Ok(RestartPolicy::Never),
            other => Err(format!(
                "unknown restart policy {other:?} (Always, OnFailure or Never)"
            )),
        }
    }
}

/// Exponential backoff between restarts, as the kubelet's: the first restart after a failure
/// is immediate, the next waits `initial`, then doubling, capped at `max`; reset after a run
/// that lasted `reset_after` (the kubelet's 10 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    #[serde(with = "millis")]
    pub initial: Duration,
    #[serde(with = "millis")]
    pub max: Duration,
    #[serde(with = "millis")]
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The delay before the next start, given how many restarts in a row came quickly.
    pub fn delay(&self, consecutive_failures: u32) -> Duration {
        if consecutive_failures <= 1 {
            return Duration::ZERO;
        }
        let factor = 2u32.saturating_pow(consecutive_failures.saturating_sub(2).min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The failure count after a run of length `ran`: a long healthy run starts over.
    pub fn next_failures(&self, consecutive_failures: u32, ran: Duration) -> u32 {
        if ran >= self.reset_after {
            1
        } else {
            consecutive_failures.saturating_add(1)
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_restart_is_immediate_then_backoff_doubles_from_ten_seconds_to_five_minutes() {
        let b = Backoff::default();
        let delays: Vec<u64> = (1..=8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.delay(1000), Duration::from_secs(300));
    }

    #[test]
    fn a_long_run_resets_the_backoff() {
        let b = Backoff::default();
        assert_eq!(b.next_failures(5, Duration::from_secs(601)), 1);
        assert_eq!(b.next_failures(5, Duration::from_secs(3)), 6);
    }

    #[test]
    fn policies_decide_by_exit_code() {
        assert!(RestartPolicy::Always.restarts(0));
        assert!(!RestartPolicy::OnFailure.restarts(0));
        assert!(RestartPolicy::OnFailure.restarts(137));
        assert!(!RestartPolicy::Never.restarts(1));
    }
}
