//! Choosing a host of the instance pool for one instance: pure, so the policy and its
//! messages are tested without a cluster.
//!
//! The policy spreads: among hosts with the runtime and room for the instance, the one left
//! with the most free capacity wins (the mean of free CPU and free memory, as fractions of
//! capacity, after placing), ties going to the smallest name so every run places alike.
//! Spreading keeps one host's failure from taking most instances with it and leaves each
//! host headroom for bursts; packing would only pay off if hosts were billed by the hour.

use std::collections::BTreeMap;
use std::fmt;

use nodeless_core::instance_spec::InstanceSpec;

/// One live host as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapacity {
    pub name: String,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    /// OCI runtimes the host has (`runc`, `runsc`).
    pub runtimes: Vec<String>,
}

/// What instances already placed on a host take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

impl Usage {
    pub fn add(&mut self, spec: &InstanceSpec) {
        self.cpu_millis = self.cpu_millis.saturating_add(spec.millicpu);
        self.memory_bytes = self.memory_bytes.saturating_add(spec.memory_bytes());
    }
}

/// The live hosts and what each already holds; placing an instance also counts it, so one
/// pass can place many instances without oversubscribing.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    hosts: Vec<HostCapacity>,
    used: BTreeMap<String, Usage>,
}

/// What a new instance needs.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub spec: &'a InstanceSpec,
    /// `runc`, or `runsc` for gVisor.
    pub runtime: &'a str,
}

/// Why no host can take an instance; the message names what is short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unschedulable {
    #[error(
        "0/0 hosts of the instance pool are available: no host agent has sent a heartbeat recently"
    )]
    NoLiveHosts,
    #[error("0/{hosts} hosts of the instance pool have room: {}", join(.reasons))]
    NoFit {
        hosts: usize,
        reasons: Vec<Shortage>,
    },
}

/// One kind of shortage and how many hosts had it; for CPU and memory, the figures of the
/// host with the most free, which is the nearest miss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortage {
    Runtime {
        runtime: String,
        hosts: usize,
    },
    Gpu {
        requested: u32,
        hosts: usize,
    },
    Cpu {
        requested: u64,
        free: u64,
        capacity: u64,
        hosts: usize,
    },
    Memory {
        requested: u64,
        free: u64,
        capacity: u64,
        hosts: usize,
    },
}

impl Pool {
    pub fn new(mut hosts: Vec<HostCapacity>) -> Self {
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        Pool {
            hosts,
            used: BTreeMap::new(),
        }
    }

    pub fn hosts(&self) -> &[HostCapacity] {
        &self.hosts
    }

    /// Counts an instance already on `host` (hosts not in the pool are ignored: a dead
    /// host's instances take nothing from live ones).
    pub fn count(&mut self, host: &str, spec: &InstanceSpec) {
        self.used.entry(host.to_string()).or_default().add(spec);
    }

    pub fn usage(&self, host: &str) -> Usage {
        self.used.get(host).copied().unwrap_or_default()
    }

    /// Chooses a host for `request` and counts the instance on it.
    pub fn place(&mut self, request: Request<'_>) -> Result<String, Unschedulable> {
        let chosen = self.choose(request)?;
        self.count(&chosen, request.spec);
        Ok(chosen)
    }

    /// Chooses a host for `request` without counting it.
    pub fn choose(&self, request: Request<'_>) -> Result<String, Unschedulable> {
        if self.hosts.is_empty() {
            return Err(Unschedulable::NoLiveHosts);
        }
        let mut shortages = Shortages::default();
        let mut best: Option<(u64, &str)> = None;
        for host in &self.hosts {
            let used = self.usage(&host.name);
            if let Err(short) = fits(host, used, request) {
                short.into_iter().for_each(|s| shortages.add(s));
                continue;
            }
            let score = free_score(host, used, request.spec);
            // Strictly greater: an equal score keeps the earlier (smaller) name.
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, &host.name));
            }
        }
        match best {
            Some((_, name)) => Ok(name.to_string()),
            None => Err(Unschedulable::NoFit {
                hosts: self.hosts.len(),
                reasons: shortages.0,
            }),
        }
    }
}

/// Every shortage of `host` for `request`, or nothing when it fits.
fn fits(host: &HostCapacity, used: Usage, request: Request<'_>) -> Result<(), Vec<Shortage>> {
    let mut short = Vec::new();
    if !host.runtimes.iter().any(|r| r == request.runtime) {
        short.push(Shortage::Runtime {
            runtime: request.runtime.to_string(),
            hosts: 1,
        });
    }
    // Hosts do not offer GPUs yet; saying so beats a silent CPU-only instance.
    if request.spec.gpu > 0 {
        short.push(Shortage::Gpu {
            requested: request.spec.gpu,
            hosts: 1,
        });
    }
    let free_cpu = host.cpu_millis.saturating_sub(used.cpu_millis);
    if request.spec.millicpu > free_cpu {
        short.push(Shortage::Cpu {
            requested: request.spec.millicpu,
            free: free_cpu,
            capacity: host.cpu_millis,
            hosts: 1,
        });
    }
    let free_memory = host.memory_bytes.saturating_sub(used.memory_bytes);
    if request.spec.memory_bytes() > free_memory {
        short.push(Shortage::Memory {
            requested: request.spec.memory_bytes(),
            free: free_memory,
            capacity: host.memory_bytes,
            hosts: 1,
        });
    }
    if short.is_empty() {
        Ok(())
    } else {
        Err(short)
    }
}

/// Mean free fraction of CPU and memory after placing, in millionths (integers keep the
/// order exact and deterministic).
fn free_score(host: &HostCapacity, used: Usage, spec: &InstanceSpec) -> u64 {
    let fraction = |capacity: u64, used: u64, asked: u64| -> u64 {
        if capacity == 0 {
            return 0;
        }
        let free = capacity.saturating_sub(used).saturating_sub(asked);
        let scaled = u128::from(free) * 1_000_000 / u128::from(capacity);
        u64::try_from(scaled).unwrap_or(u64::MAX)
    };
    let cpu = fraction(host.cpu_millis, used.cpu_millis, spec.millicpu);
    let memory = fraction(host.memory_bytes, used.memory_bytes, spec.memory_bytes());
    (cpu + memory) / 2
}

/// Shortages merged by kind, keeping the nearest miss (most free) for CPU and memory.
#[derive(Default)]
struct Shortages(Vec<Shortage>);

impl Shortages {
    fn add(&mut self, new: Shortage) {
        for old in &mut self.0 {
            match (old, &new) {
                (Shortage::Runtime { hosts, .. }, Shortage::Runtime { .. })
                | (Shortage::Gpu { hosts, .. }, Shortage::Gpu { .. }) => {
                    *hosts += 1;
                    return;
                }
                (
                    Shortage::Cpu {
                        free,
                        capacity,
                        hosts,
                        ..
                    },
                    Shortage::Cpu {
                        free: f,
                        capacity: c,
                        ..
                    },
                )
                | (
                    Shortage::Memory {
                        free,
                        capacity,
                        hosts,
                        ..
                    },
                    Shortage::Memory {
                        free: f,
                        capacity: c,
                        ..
                    },
                ) => {
                    *hosts += 1;
                    if *f > *free {
                        (*free, *capacity) = (*f, *c);
                    }
                    return;
                }
                _ => {}
            }
        }
        self.0.push(new);
    }
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |hosts: usize| {
            if hosts == 1 {
                String::new()
            } else {
                format!(" on {hosts} hosts")
            }
        };
        let free_word = |hosts: usize| if hosts == 1 { "free" } else { "most free" };
        match self {
            Shortage::Runtime { runtime, hosts } => {
                write!(f, "runtime {runtime} not installed{}", on(*hosts))
            }
            Shortage::Gpu { requested, hosts } => write!(
                f,
                "no GPUs{} (requested {requested} nvidia.com/gpu)",
                on(*hosts)
            ),
            Shortage::Cpu {
                requested,
                free,
                capacity,
                hosts,
            } => write!(
                f,
                "insufficient cpu{} (requested {}, {} {} of {})",
                on(*hosts),
                cpu_text(*requested),
                free_word(*hosts),
                cpu_text(*free),
                cpu_text(*capacity)
            ),
            Shortage::Memory {
                requested,
                free,
                capacity,
                hosts,
            } => write!(
                f,
                "insufficient memory{} (requested {}, {} {} of {})",
                on(*hosts),
                memory_text(*requested),
                free_word(*hosts),
                memory_text(*free),
                memory_text(*capacity)
            ),
        }
    }
}

fn join(reasons: &[Shortage]) -> String {
    let parts: Vec<String> = reasons.iter().map(Shortage::to_string).collect();
    parts.join(", ")
}

/// `2000` → `2`, `1500` → `1.5`, `250` → `0.25` (vCPU, as instance specs read).
pub fn cpu_text(millis: u64) -> String {
    let (whole, frac) = (millis / 1000, millis % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Bytes as a person reads memory: `16Gi`, `1.5Gi`, `512Mi`.
pub fn memory_text(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if bytes == 0 {
        return "0".into();
    }
    if bytes >= GIB {
        let hundredths = u128::from(bytes) * 100 / u128::from(GIB);
        let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        return format!("{}Gi", text.trim_end_matches('0').trim_end_matches('.'));
    }
    if bytes.is_multiple_of(MIB) {
        return format!("{}Mi", bytes / MIB);
    }
    format!("{bytes}")
}

#[cfg(test)]
mod tests;
