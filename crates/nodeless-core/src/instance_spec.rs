//! The instance spec of a Pod: the vCPU, memory and GPUs its instance is given.
//!
//! As on ECI, an instance takes one shape from a fixed table of vCPU and memory pairs
//! ([`round_up`]). [`spec_for_pod`] chooses a Pod's shape from, first match wins, its
//! `nodeless.dev/instance-spec` annotation (or the ASK alias), its containers' limits, their
//! requests, or the 2 vCPU / 4 GiB default, rounded up to the table. The scheduler records
//! the result on the Pod in [`InstanceSpec`]'s display form (`2-4Gi`), so what a Pod is
//! given (and billed for) is visible there, and the instance's cgroups enforce exactly that.

mod annotations;
mod pod;
mod table;

pub use annotations::{
    annotation, ask_alias, ALIASES, GPU_TYPE, INSTANCE_SPEC, SPOT_DURATION, SPOT_FALLBACK,
    SPOT_PRICE_LIMIT, SPOT_STRATEGY,
};
pub use pod::{spec_for_pod, SpecChoice, SpecSource};
pub use table::{is_allowed, round_up};

use crate::validation::quantity::{parse_quantity, QuantityError};
use std::fmt;
use std::str::FromStr;

const MIB: u64 = 1024 * 1024;
const MIB_PER_GIB: u64 = 1024;

/// The resources of one instance. Memory is held in MiB so that every allowed spec, and
/// every spec an annotation can name, is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    pub millicpu: u64,
    pub memory_mib: u64,
    /// Whole GPUs (`nvidia.com/gpu`); not part of the display form, which names the shape.
    pub gpu: u32,
    /// The GPU model asked for by annotation, if any.
    pub gpu_type: Option<String>,
}

impl InstanceSpec {
    /// A CPU and memory shape without GPUs.
    pub fn new(millicpu: u64, memory_mib: u64) -> Self {
        Self {
            millicpu,
            memory_mib,
            gpu: 0,
            gpu_type: None,
        }
    }

    /// Memory in bytes, as cgroups and quantities count it.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(MIB)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("invalid instance spec {value:?}: {reason}")]
    Parse { value: String, reason: String },
    #[error(
        "no instance spec is large enough for {} vCPU and {} of memory: the largest is 64 vCPU with 512Gi",
        thousandths(*.millicpu),
        memory_text(*.memory_bytes)
    )]
    TooLarge { millicpu: u64, memory_bytes: u64 },
    #[error("{field}: invalid quantity {value:?}: {source}")]
    Quantity {
        field: String,
        value: String,
        #[source]
        source: QuantityError,
    },
    #[error("{field}: {value:?} is not a valid GPU count: give a whole number")]
    Gpu { field: String, value: String },
    #[error("annotation {key}: no instance spec in {value:?} can run this pod: {reasons}")]
    NoCandidate {
        key: String,
        value: String,
        reasons: String,
    },
}

impl fmt::Display for InstanceSpec {
    /// `2-4Gi`, `0.25-0.5Gi`; memory that is not a whole thousandth of a GiB prints in `Mi`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", thousandths(self.millicpu))?;
        let scaled = u128::from(self.memory_mib) * 1000;
        if scaled % u128::from(MIB_PER_GIB) == 0 {
            let gib_thousandths =
                u64::try_from(scaled / u128::from(MIB_PER_GIB)).unwrap_or(u64::MAX);
            write!(f, "{}Gi", thousandths(gib_thousandths))
        } else {
            write!(f, "{}Mi", self.memory_mib)
        }
    }
}

impl FromStr for InstanceSpec {
    type Err = SpecError;

    /// Parses `vCPU-memory` as annotations write it: `2-4Gi`, `0.5-1Gi`, `2-4` (GiB), or any
    /// quantity for either part (`500m-512Mi`). The result is not rounded to the table.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let value = s.trim();
        let fail = |reason: &str| SpecError::Parse {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value.starts_with("ecs.") {
            return Err(fail(
                "instance type names are not supported; give vCPU-memory such as 2-4Gi",
            ));
        }
        let Some((cpu, memory)) = value.split_once('-') else {
            return Err(fail("expected vCPU-memory such as 2-4Gi"));
        };
        let millicpu = positive(cpu.trim(), 1_000_000)
            .ok_or_else(|| fail("the vCPU count must be a positive number such as 2 or 0.25"))?;
        let memory = memory.trim();
        let memory = if memory.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            format!("{memory}Gi")
        } else {
            memory.to_string()
        };
        let memory_bytes = positive(&memory, 1_000_000_000)
            .ok_or_else(|| fail("the memory must be a positive size such as 4Gi or 512Mi"))?;
        Ok(Self::new(millicpu, memory_bytes.div_ceil(MIB)))
    }
}

/// A positive quantity in units of `nanos_per_unit` nano-units, rounded up.
fn positive(s: &str, nanos_per_unit: i128) -> Option<u64> {
    let q = parse_quantity(s).ok().filter(|q| q.nanos() > 0)?;
    let units = q.nanos().div_euclid(nanos_per_unit)
        + i128::from(q.nanos().rem_euclid(nanos_per_unit) != 0);
    u64::try_from(units).ok()
}

/// `2000` → `2`, `250` → `0.25`, `1500` → `1.5`.
fn thousandths(n: u64) -> String {
    let (whole, frac) = (n / 1000, n % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Memory for messages: `13Gi`, `512Mi`, or bytes when neither is whole.
fn memory_text(bytes: u64) -> String {
    if bytes >= MIB * MIB_PER_GIB && bytes.is_multiple_of(MIB * MIB_PER_GIB) {
        format!("{}Gi", bytes / (MIB * MIB_PER_GIB))
    } else if bytes.is_multiple_of(MIB) {
        format!("{}Mi", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> InstanceSpec {
        s.parse().expect("valid spec")
    }

    #[test]
    fn specs_display_as_vcpu_dash_gib() {
        assert_eq!(InstanceSpec::new(2000, 4096).to_string(), "2-4Gi");
        assert_eq!(InstanceSpec::new(250, 512).to_string(), "0.25-0.5Gi");
        assert_eq!(InstanceSpec::new(1500, 1536).to_string(), "1.5-1.5Gi");
        assert_eq!(InstanceSpec::new(64000, 512 * 1024).to_string(), "64-512Gi");
        assert_eq!(InstanceSpec::new(1000, 100).to_string(), "1-100Mi");
    }

    #[test]
    fn annotation_values_parse_with_or_without_a_unit() {
        assert_eq!(spec("2-4Gi"), InstanceSpec::new(2000, 4096));
        assert_eq!(spec("2-4"), InstanceSpec::new(2000, 4096));
        assert_eq!(spec(" 0.25-0.5Gi "), InstanceSpec::new(250, 512));
        assert_eq!(spec("500m-512Mi"), InstanceSpec::new(500, 512));
        assert_eq!(spec("1-1.5"), InstanceSpec::new(1000, 1536));
    }

    #[test]
    fn display_and_parse_round_trip() {
        for s in ["0.25-0.5Gi", "2-4Gi", "52-96Gi", "1-100Mi", "0.5-1.5Gi"] {
            assert_eq!(spec(s).to_string(), s);
        }
    }

    #[test]
    fn malformed_values_say_what_was_expected() {
        let cases = [
            ("", "expected vCPU-memory"),
            ("2", "expected vCPU-memory"),
            ("two-4Gi", "vCPU count must be a positive number"),
            ("0-4Gi", "vCPU count must be a positive number"),
            ("-4Gi", "vCPU count must be a positive number"),
            ("2-", "memory must be a positive size"),
            ("2-4Gb", "memory must be a positive size"),
            ("2-0", "memory must be a positive size"),
            ("2--4", "memory must be a positive size"),
            ("ecs.c6.large", "instance type names are not supported"),
        ];
        for (value, want) in cases {
            let err = value.parse::<InstanceSpec>().expect_err(value).to_string();
            assert!(err.contains(want), "{value:?}: {err}");
            assert!(err.starts_with("invalid instance spec"), "{err}");
        }
    }

    #[test]
    fn too_large_names_what_was_asked_and_the_largest_spec() {
        let e = SpecError::TooLarge {
            millicpu: 65000,
            memory_bytes: 4 * 1024 * MIB,
        };
        assert_eq!(
            e.to_string(),
            "no instance spec is large enough for 65 vCPU and 4Gi of memory: the largest is 64 vCPU with 512Gi"
        );
    }
}
