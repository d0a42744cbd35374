//! The live hosts of the instance pool, read from `Host` objects.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nodeless_core::validation::quantity::parse_quantity;
use nodeless_kube::Host;

use crate::placement::HostCapacity;

/// A live host: its capacity as placement needs it, and its address for the virtual node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveHost {
    pub capacity: HostCapacity,
    pub address: String,
}

/// Hosts whose agent sent a heartbeat within the timeout, sorted by name. A capacity that
/// does not parse counts as zero, so nothing lands there until its agent reports a sane one.
pub fn live_hosts(hosts: &[Arc<Host>], now: DateTime<Utc>) -> Vec<LiveHost> {
    let mut live: Vec<LiveHost> = hosts
        .iter()
        .filter(|h| h.metadata.deletion_timestamp.is_none() && h.is_alive(now))
        .map(|h| LiveHost {
            capacity: capacity_of(h),
            address: h.spec.address.clone(),
        })
        .collect();
    live.sort_by(|a, b| a.capacity.name.cmp(&b.capacity.name));
    live
}

fn capacity_of(host: &Host) -> HostCapacity {
    let name = host.metadata.name.clone().unwrap_or_default();
    let amount = |key: &str, milli: bool| -> u64 {
        let Some(q) = host.spec.capacity.get(key) else {
            return 0;
        };
        match parse_quantity(&q.0) {
            Ok(q) => {
                let v = if milli { q.milli_value() } else { q.value() };
                u64::try_from(v).unwrap_or(0)
            }
            Err(e) => {
                tracing::warn!(host = %name, resource = key, value = %q.0, error = %e, "host capacity does not parse; counting none");
                0
            }
        }
    };
    HostCapacity {
        cpu_millis: amount("cpu", true),
        memory_bytes: amount("memory", false),
        runtimes: host.spec.runtimes.clone(),
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use nodeless_kube::{HostSpec, HostStatus};

    fn host(name: &str, cpu: &str, beat_secs_ago: i64) -> Arc<Host> {
        let mut h = Host::new(
            name,
            HostSpec {
                address: format!("10.0.0.{}", name.len()),
                endpoint: String::new(),
                token_secret: String::new(),
                capacity: [
                    ("cpu".to_string(), Quantity(cpu.into())),
                    ("memory".to_string(), Quantity("16Gi".into())),
                ]
                .into(),
                runtimes: vec!["runc".into()],
            },
        );
        h.status = Some(HostStatus {
            heartbeat_time: Some(Time(Utc::now() - chrono::Duration::seconds(beat_secs_ago))),
        });
        Arc::new(h)
    }

    #[test]
    fn only_hosts_with_a_fresh_heartbeat_are_live_and_they_come_sorted() {
        let hosts = [
            host("zz", "8", 1),
            host("aa", "7500m", 2),
            host("old", "8", 300),
        ];
        let live = live_hosts(&hosts, Utc::now());
        let names: Vec<&str> = live.iter().map(|h| h.capacity.name.as_str()).collect();
        assert_eq!(names, ["aa", "zz"]);
        assert_eq!(live[0].capacity.cpu_millis, 7500);
        assert_eq!(live[0].capacity.memory_bytes, 16 << 30);
    }

    #[test]
    fn a_capacity_that_does_not_parse_counts_as_none() {
        let live = live_hosts(&[host("h", "lots", 1)], Utc::now());
        assert_eq!(live[0].capacity.cpu_millis, 0);
    }
}
