//! Choosing a Pod's instance spec from its annotations and its containers' resources.

use super::annotations::{self, GPU_TYPE, INSTANCE_SPEC};
use super::{memory_text, round_up, thousandths, InstanceSpec, SpecError};
use crate::field::Path;
use crate::validation::quantity::parse_quantity;
use serde_json::Value;

const GPU_RESOURCE: &str = "nvidia.com/gpu";
const DEFAULT_MILLICPU: u64 = 2000;
const DEFAULT_MEMORY_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// What decided a Pod's spec.
/// Variants are in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpecSource {
    /// `nodeless.dev/instance-spec` or `k8s.aliyun.com/eci-use-specs`.
    Annotation,
    Limits,
    Requests,
    /// Nothing was asked: 2 vCPU / 4 GiB.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecChoice {
    pub spec: InstanceSpec,
    pub source: SpecSource,
}

/// The instance spec for a Pod, first match wins:
/// 1. the spec annotation (ours or the ASK alias): the first candidate of its comma-separated
///    list that parses and, rounded up, holds what the containers ask for;
/// 2. the containers' limits, summed as Kubernetes sums effective requests (init containers
///    run before the app containers, sidecars alongside them);
/// 3. the same over requests;
/// 4. 2 vCPU / 4 GiB.
///
/// CPU and memory fall through these steps each on its own, so a Pod limiting only memory
/// gets 2 vCPU; the source reported is the first step that decided either. Where limits
/// decide, requests still count as a floor, since a container without a limit in a Pod whose
/// other containers have one still needs its request. GPUs are the `nvidia.com/gpu` limits
/// summed the same way, with the type from `nodeless.dev/gpu-type`.
pub fn spec_for_pod(pod: &Value) -> Result<SpecChoice, SpecError> {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let limits = effective(spec, "limits")?;
    let requests = effective(spec, "requests")?;
    let (mut chosen, source) = match annotations::entry(pod, INSTANCE_SPEC) {
        Some((key, value)) => (
            from_candidates(key, value, &limits.max(&requests))?,
            SpecSource::Annotation,
        ),
        None => from_resources(&limits, &requests)?,
    };
    let gpu = if limits.gpu > 0 {
        limits.gpu
    } else {
        requests.gpu
    };
    chosen.gpu = u32::try_from(gpu).map_err(|_| SpecError::Gpu {
        field: "spec.containers[*].resources.limits[nvidia.com/gpu]".into(),
        value: gpu.to_string(),
    })?;
    chosen.gpu_type = annotations::annotation(pod, GPU_TYPE).map(String::from);
    Ok(SpecChoice {
        spec: chosen,
        source,
    })
}

fn from_candidates(key: &str, value: &str, needs: &Amounts) -> Result<InstanceSpec, SpecError> {
    let mut reasons = Vec::new();
    for candidate in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match fitting(candidate, needs) {
            Ok(spec) => return Ok(spec),
            Err(why) => reasons.push(why),
        }
    }
    if reasons.is_empty() {
        reasons.push("it lists no spec".to_string());
    }
    Err(SpecError::NoCandidate {
        key: key.into(),
        value: value.into(),
        reasons: reasons.join("; "),
    })
}

/// One candidate, rounded up to the table, if it holds what the Pod's containers ask for.
fn fitting(candidate: &str, needs: &Amounts) -> Result<InstanceSpec, String> {
    let asked: InstanceSpec = candidate.parse().map_err(|e: SpecError| e.to_string())?;
    let spec = round_up(asked.millicpu, asked.memory_bytes())
        .map_err(|e| format!("{candidate:?}: {e}"))?;
    if spec.millicpu < needs.millicpu || spec.memory_bytes() < needs.memory_bytes {
        return Err(format!(
            "{candidate:?} is smaller than the containers ask for ({} vCPU, {} of memory)",
            thousandths(needs.millicpu),
            memory_text(needs.memory_bytes)
        ));
    }
    Ok(spec)
}

fn from_resources(
    limits: &Amounts,
    requests: &Amounts,
) -> Result<(InstanceSpec, SpecSource), SpecError> {
    let (millicpu, cpu_source) = pick(limits.millicpu, requests.millicpu, DEFAULT_MILLICPU);
    let (memory, memory_source) = pick(
        limits.memory_bytes,
        requests.memory_bytes,
        DEFAULT_MEMORY_BYTES,
    );
    let spec = round_up(millicpu, memory)?;
    // Limits before requests before the default: report the strongest that decided either.
    Ok((spec, cpu_source.min(memory_source)))
}

/// One resource's amount and source: limits (never below requests), else requests, else the default.
fn pick(limit: u64, request: u64, default: u64) -> (u64, SpecSource) {
    if limit > 0 {
        (limit.max(request), SpecSource::Limits)
    } else if request > 0 {
        (request, SpecSource::Requests)
    } else {
        (default, SpecSource::Default)
    }
}

/// CPU, memory and GPUs of one container, or of a Pod.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Amounts {
    millicpu: u64,
    memory_bytes: u64,
    gpu: u64,
}

impl Amounts {
    fn plus(&self, o: &Amounts) -> Amounts {
        Amounts {
            millicpu: self.millicpu.saturating_add(o.millicpu),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
            gpu: self.gpu.saturating_add(o.gpu),
        }
    }

    fn max(&self, o: &Amounts) -> Amounts {
        Amounts {
            millicpu: self.millicpu.max(o.millicpu),
            memory_bytes: self.memory_bytes.max(o.memory_bytes),
            gpu: self.gpu.max(o.gpu),
        }
    }
}

/// The Pod's `which` (`limits` or `requests`) as Kubernetes computes effective requests: the
/// app containers and sidecars (init containers with `restartPolicy: Always`) together, or,
/// if more, what any init container needs while it runs beside the sidecars started before it.
fn effective(spec: &Value, which: &str) -> Result<Amounts, SpecError> {
    let path = Path::new("spec");
    let mut total = Amounts::default();
    for (i, c) in list(spec, "containers").iter().enumerate() {
        total = total.plus(&amounts(c, which, &path.child("containers").index(i))?);
    }
    let mut sidecars = Amounts::default();
    let mut init_peak = Amounts::default();
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        let own = amounts(c, which, &path.child("initContainers").index(i))?;
        let running = if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            total = total.plus(&own);
            sidecars = sidecars.plus(&own);
            sidecars
        } else {
            sidecars.plus(&own)
        };
        init_peak = init_peak.max(&running);
    }
    Ok(total.max(&init_peak))
}

fn list<'a>(spec: &'a Value, field: &str) -> &'a [Value] {
    spec.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// One container's `resources.<which>`; negative amounts (which validation refuses) count as none.
fn amounts(container: &Value, which: &str, path: &Path) -> Result<Amounts, SpecError> {
    let Some(map) = container
        .get("resources")
        .and_then(|r| r.get(which))
        .and_then(Value::as_object)
    else {
        return Ok(Amounts::default());
    };
    let path = path.child("resources").child(which);
    let read = |name: &str, nanos_per_unit: u128| -> Result<u64, SpecError> {
        let Some(v) = map.get(name) else { return Ok(0) };
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let q = parse_quantity(&text).map_err(|source| SpecError::Quantity {
            field: path.key(name).as_str().to_string(),
            value: text.clone(),
            source,
        })?;
        let nanos = u128::try_from(q.nanos()).unwrap_or(0);
        let units = nanos.div_ceil(nanos_per_unit);
        if name == GPU_RESOURCE && nanos % nanos_per_unit != 0 {
            return Err(SpecError::Gpu {
                field: path.key(name).as_str().to_string(),
                value: text,
            });
        }
        Ok(u64::try_from(units).unwrap_or(u64::MAX))
    };
    Ok(Amounts {
        millicpu: read("cpu", 1_000_000)?,
        memory_bytes: read("memory", 1_000_000_000)?,
        gpu: read(GPU_RESOURCE, 1_000_000_000)?,
    })
}

#[cfg(test)]
mod tests;
