//! Leader election over a `coordination.k8s.io/v1` Lease in `kube-system`, as client-go's
//! leaderelection does: the holder renews every third of the lease duration; another copy
//! takes over once it has seen the Lease unchanged for a whole duration by its own clock (so
//! clock skew between copies does not matter); every write carries the resourceVersion it
//! read, so of two copies racing for the Lease exactly one wins. A holder that cannot renew
//! for two thirds of the duration stops acting before anyone else may start.
//!
//! [`Elector`] decides (no I/O, tested with virtual time); [`LeaderElector`] talks to the API.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ControllersConfig;

pub const NAMESPACE: &str = "kube-system";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it over.
    TakeOver,
    /// Someone else holds it; look again after this long at the latest.
    Wait(Duration),
}

/// What identifies one renewal of the Lease; any change restarts the expiry clock.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<String>,
    transitions: Option<i32>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Self {
        Record {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0.to_rfc3339()),
            transitions: spec.lease_transitions,
        }
    }
}

/// The decision side of the election.
#[derive(Debug)]
pub struct Elector {
    identity: String,
    default_duration: Duration,
    observed: Option<(Record, Instant)>,
}

impl Elector {
    pub fn new(identity: &str, lease_duration: Duration) -> Self {
        Elector {
            identity: identity.to_string(),
            default_duration: lease_duration,
            observed: None,
        }
    }

    pub fn decide(&mut self, lease: Option<&LeaseSpec>, now: Instant) -> Decision {
        let Some(spec) = lease else {
            return Decision::Create;
        };
        match spec.holder_identity.as_deref() {
            Some(holder) if holder == self.identity => return Decision::Renew,
            None | Some("") => return Decision::TakeOver,
            Some(_) => {}
        }
        let record = Record::of(spec);
        let since = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                self.observed = Some((record, now));
                now
            }
        };
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.default_duration);
        let expires = since + duration;
        if now >= expires {
            Decision::TakeOver
        } else {
            Decision::Wait(expires - now)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("reading lease {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing lease {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// How holding the Lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    Lost,
    Shutdown,
}

/// Acquires, holds and releases the Lease named in the config.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    elector: Elector,
    held: Option<Lease>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: &ControllersConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, NAMESPACE),
            name: config.lease_name.clone(),
            identity: config.identity.clone(),
            duration: config.lease_duration,
            elector: Elector::new(&config.identity, config.lease_duration),
            held: None,
        }
    }

    fn retry_period(&self) -> Duration {
        self.duration / 3
    }

    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// Waits until this copy holds the Lease; false if `shutdown` came first.
    pub async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            let wait = match self.try_acquire().await {
                Ok(None) => return true,
                Ok(Some(wait)) => wait.min(self.retry_period()),
                Err(e) => {
                    tracing::debug!(lease = %self.name, error = %e, "lease not acquired");
                    self.retry_period()
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One attempt: Ok(None) when the Lease is now ours, Ok(Some(wait)) when held by another.
    async fn try_acquire(&mut self) -> Result<Option<Duration>, LeaderError> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| LeaderError::Read {
                name: self.name.clone(),
                source,
            })?;
        let decision = self.elector.decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            Instant::now(),
        );
        let now = MicroTime(Utc::now());
        let written = match (decision, current) {
            (Decision::Wait(d), _) => return Ok(Some(d)),
            (Decision::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(NAMESPACE.into()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(now.clone(), 0)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Decision::Renew, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(self.duration_seconds());
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            (Decision::TakeOver, Some(mut lease)) => {
                let old = lease.spec.take().unwrap_or_default();
                let transitions = old.lease_transitions.unwrap_or(0) + 1;
                lease.spec = Some(self.spec(now, transitions));
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        let lease = written.map_err(|source| LeaderError::Write {
            name: self.name.clone(),
            source,
        })?;
        tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
        self.held = Some(lease);
        Ok(None)
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    fn spec(&self, now: MicroTime, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Renews the held Lease until it is lost or `shutdown`.
    pub async fn hold(&mut self, shutdown: &CancellationToken) -> HoldEnd {
        let mut renewed = Instant::now();
        let mut wait = self.retry_period();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return HoldEnd::Shutdown,
                _ = tokio::time::sleep(wait) => {}
            }
            // After a failed renewal, retry sooner: the deadline is near.
            wait = self.retry_period() / 4;
            match self.renew().await {
                Ok(true) => {
                    renewed = Instant::now();
                    wait = self.retry_period();
                }
                Ok(false) => {
                    tracing::warn!(lease = %self.name, "leadership taken by another copy");
                    return HoldEnd::Lost;
                }
                Err(e) if renewed.elapsed() >= self.renew_deadline() => {
                    tracing::warn!(lease = %self.name, error = %e, "could not renew in time; stepping down");
                    self.held = None;
                    return HoldEnd::Lost;
                }
                Err(e) => {
                    tracing::debug!(lease = %self.name, error = %e, "renewal failed; retrying")
                }
            }
        }
    }

    /// Ok(false) when the Lease is someone else's now.
    async fn renew(&mut self) -> Result<bool, LeaderError> {
        let mut lease = match self.held.clone() {
            Some(l) => l,
            None => return Ok(false),
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.renew_time = Some(MicroTime(Utc::now()));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                self.held = Some(l);
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
                // Our copy is stale: it is still ours only if the holder is still us.
                let current =
                    self.api
                        .get_opt(&self.name)
                        .await
                        .map_err(|source| LeaderError::Read {
                            name: self.name.clone(),
                            source,
                        })?;
                let ours = current
                    .as_ref()
                    .and_then(|l| l.spec.as_ref())
                    .and_then(|s| s.holder_identity.as_deref())
                    == Some(self.identity.as_str());
                self.held = current.filter(|_| ours);
                Ok(ours)
            }
            Err(source) => Err(LeaderError::Write {
                name: self.name.clone(),
                source,
            }),
        }
    }

    /// Gives the Lease up so another copy can take over at once (call after the controllers
    /// stopped).
    pub async fn release(&mut self) {
        let Some(mut lease) = self.held.take() else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Utc::now()));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "released leadership"),
            Err(e) => tracing::debug!(lease = %self.name, error = %e, "lease not released"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renew_secs: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(
                chrono::DateTime::from_timestamp(renew_secs, 0).expect("time"),
            )),
            lease_transitions: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_held_by_another_is_taken_over_only_after_a_whole_duration_unrenewed() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut e = Elector::new("b", Duration::from_secs(15));
        let lease = held_by("a", 100);
        assert_eq!(
            e.decide(Some(&lease), at(0)),
            Decision::Wait(Duration::from_secs(15))
        );
        assert_eq!(
            e.decide(Some(&lease), at(10)),
            Decision::Wait(Duration::from_secs(5))
        );
        assert_eq!(e.decide(Some(&lease), at(15)), Decision::TakeOver);
    }

    #[test]
    fn a_renewal_restarts_the_expiry_clock_whatever_the_holders_clock_says() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut e = Elector::new("b", Duration::from_secs(15));
        e.decide(Some(&held_by("a", 100)), at(0));
        // The holder's clock is far behind ours: only the change counts.
        let renewed = held_by("a", 5);
        assert_eq!(
            e.decide(Some(&renewed), at(14)),
            Decision::Wait(Duration::from_secs(15))
        );
        assert!(matches!(
            e.decide(Some(&renewed), at(28)),
            Decision::Wait(_)
        ));
        assert_eq!(e.decide(Some(&renewed), at(29)), Decision::TakeOver);
    }

    #[test]
    fn a_missing_free_or_own_lease_needs_no_wait() {
        let mut e = Elector::new("b", Duration::from_secs(15));
        assert_eq!(e.decide(None, Instant::now()), Decision::Create);
        let mut free = held_by("a", 1);
        free.holder_identity = None;
        assert_eq!(e.decide(Some(&free), Instant::now()), Decision::TakeOver);
        assert_eq!(
            e.decide(Some(&held_by("b", 1)), Instant::now()),
            Decision::Renew
        );
    }
}
