//! The price catalogue: what one vCPU, GiB and GPU cost per hour, and the spot curve.
//!
//! The defaults are AWS Fargate's us-east-1 Linux/x86 list prices. A catalogue file is YAML
//! (or JSON); every key is optional and a missing key keeps its default:
//!
//! ```yaml
//! currency: USD
//! onDemand:
//!   vcpuHour: 0.04048        # per vCPU-hour
//!   memoryGiBHour: 0.004445  # per GiB-hour
//!   gpuHour: {default: 0.526, nvidia-t4: 0.526}  # per GPU-hour, by nodeless.dev/gpu-type
//! spot:
//!   floor: 0.1   # spot price as a fraction of on-demand while the pool is idle
//!   knee: 0.5    # utilisation above which it rises, reaching the on-demand price at 100%
//! ```
//!
//! Prices are decimal numbers or strings with up to 9 decimals, read exactly (never rounded
//! through floating point); `floor` and `knee` take up to 6 decimals, `floor` ≤ 1, `knee` < 1.
//! A `gpuHour` map replaces the default one as a whole, so it lists every GPU type offered;
//! `default` prices GPUs asked for without a type. Unknown keys are errors naming the key.

use super::money::{div_round, format_money_exact, parse_money, MoneyError, PPM};
use crate::instance_spec::InstanceSpec;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// The GPU price key for GPUs asked for without a type.
pub const DEFAULT_GPU: &str = "default";

const MILLICPU_PER_VCPU: u128 = 1000;
const MIB_PER_GIB: u128 = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceCatalog {
    pub currency: String,
    /// Nanos per vCPU-hour.
    pub vcpu_hour: u64,
    /// Nanos per GiB-hour.
    pub memory_gib_hour: u64,
    /// Nanos per GPU-hour by GPU type; [`DEFAULT_GPU`] for untyped GPUs.
    pub gpu_hour: BTreeMap<String, u64>,
    pub spot: SpotParams,
}

/// The spot price curve, as fractions of the on-demand price in parts per million.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpotParams {
    /// The spot ratio while utilisation is at or below the knee.
    pub floor_ppm: u32,
    /// The utilisation above which the ratio rises linearly to 1 at full utilisation.
    pub knee_ppm: u32,
}

impl Default for SpotParams {
    fn default() -> Self {
        Self {
            floor_ppm: 100_000,
            knee_ppm: 500_000,
        }
    }
}

impl Default for PriceCatalog {
    fn default() -> Self {
        let gpu = [
            (DEFAULT_GPU, 526_000_000),
            ("nvidia-t4", 526_000_000),
            ("nvidia-a10", 1_200_000_000),
            ("nvidia-a100", 3_000_000_000),
        ];
        Self {
            currency: "USD".to_string(),
            vcpu_hour: 40_480_000,
            memory_gib_hour: 4_445_000,
            gpu_hour: gpu.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            spot: SpotParams::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid price catalogue: {0}")]
    Parse(#[source] serde_yaml::Error),
    #[error("invalid price catalogue: {key}: {source}")]
    Price {
        key: String,
        #[source]
        source: MoneyError,
    },
    #[error("invalid price catalogue: {key}: expected a number, got {found}")]
    NotANumber { key: String, found: String },
    #[error("invalid price catalogue: {key}: {reason}")]
    OutOfRange { key: String, reason: String },
    #[error("invalid price catalogue: currency must not be empty")]
    EmptyCurrency,
    #[error("no price for GPU type {gpu_type:?}: the catalogue prices {known}")]
    UnknownGpuType { gpu_type: String, known: String },
    #[error("the hourly price of {spec} does not fit in 64 bits")]
    PriceOverflow { spec: String },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogFile {
    currency: Option<String>,
    on_demand: Option<OnDemandFile>,
    spot: Option<SpotFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OnDemandFile {
    vcpu_hour: Option<Value>,
    #[serde(rename = "memoryGiBHour")]
    memory_gib_hour: Option<Value>,
    gpu_hour: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SpotFile {
    floor: Option<Value>,
    knee: Option<Value>,
}

impl PriceCatalog {
    /// Reads a catalogue file (see the module docs); an empty file is the default catalogue.
    pub fn from_yaml(text: &str) -> Result<Self, CatalogError> {
        let file: Option<CatalogFile> = serde_yaml::from_str(text).map_err(CatalogError::Parse)?;
        let file = file.unwrap_or_default();
        let mut catalog = Self::default();
        if let Some(currency) = file.currency {
            if currency.trim().is_empty() {
                return Err(CatalogError::EmptyCurrency);
            }
            catalog.currency = currency.trim().to_string();
        }
        let on_demand = file.on_demand.unwrap_or_default();
        if let Some(v) = &on_demand.vcpu_hour {
            catalog.vcpu_hour = decimal(v, "onDemand.vcpuHour", 9)?;
        }
        if let Some(v) = &on_demand.memory_gib_hour {
            catalog.memory_gib_hour = decimal(v, "onDemand.memoryGiBHour", 9)?;
        }
        if let Some(gpus) = &on_demand.gpu_hour {
            catalog.gpu_hour = gpus
                .iter()
                .map(|(k, v)| Ok((k.clone(), decimal(v, &format!("onDemand.gpuHour.{k}"), 9)?)))
                .collect::<Result<_, CatalogError>>()?;
        }
        let spot = file.spot.unwrap_or_default();
        if let Some(v) = &spot.floor {
            catalog.spot.floor_ppm = fraction(v, "spot.floor", PPM)?;
        }
        if let Some(v) = &spot.knee {
            catalog.spot.knee_ppm = fraction(v, "spot.knee", PPM - 1)?;
        }
        Ok(catalog)
    }

    /// The catalogue as a file [`PriceCatalog::from_yaml`] reads back unchanged.
    pub fn to_yaml(&self) -> String {
        let mut out = format!("currency: {}\n", yaml_string(&self.currency));
        out.push_str("onDemand:\n");
        out.push_str(&format!(
            "  vcpuHour: {}\n",
            format_money_exact(self.vcpu_hour.into())
        ));
        let memory = format_money_exact(self.memory_gib_hour.into());
        out.push_str(&format!("  memoryGiBHour: {memory}\n"));
        if self.gpu_hour.is_empty() {
            out.push_str("  gpuHour: {}\n");
        } else {
            out.push_str("  gpuHour:\n");
        }
        for (gpu, price) in &self.gpu_hour {
            let price = format_money_exact((*price).into());
            out.push_str(&format!("    {}: {price}\n", yaml_string(gpu)));
        }
        out.push_str("spot:\n");
        out.push_str(&format!("  floor: {}\n", ppm_text(self.spot.floor_ppm)));
        out.push_str(&format!("  knee: {}\n", ppm_text(self.spot.knee_ppm)));
        out
    }

    /// The on-demand price per hour of `spec` in nanos: its vCPUs and GiB, plus its GPUs at
    /// the price of `spec.gpu_type` (or [`DEFAULT_GPU`]), rounded half up to the nano.
    pub fn hourly_on_demand(&self, spec: &InstanceSpec) -> Result<u64, CatalogError> {
        // One division over a common denominator, so a spec's price does not depend on how
        // its parts round.
        let cpu = u128::from(self.vcpu_hour) * u128::from(spec.millicpu) * MIB_PER_GIB;
        let memory =
            u128::from(self.memory_gib_hour) * u128::from(spec.memory_mib) * MILLICPU_PER_VCPU;
        let mut hourly = div_round(cpu + memory, MILLICPU_PER_VCPU * MIB_PER_GIB);
        if spec.gpu > 0 {
            hourly += u128::from(self.gpu_price(spec.gpu_type.as_deref())?) * u128::from(spec.gpu);
        }
        u64::try_from(hourly).map_err(|_| CatalogError::PriceOverflow {
            spec: spec.to_string(),
        })
    }

    /// The spot price per hour of `spec` at `ratio_ppm` of its on-demand price.
    pub fn hourly_spot(&self, spec: &InstanceSpec, ratio_ppm: u32) -> Result<u64, CatalogError> {
        Ok(spot_hourly(self.hourly_on_demand(spec)?, ratio_ppm))
    }

    fn gpu_price(&self, gpu_type: Option<&str>) -> Result<u64, CatalogError> {
        let key = gpu_type.unwrap_or(DEFAULT_GPU);
        self.gpu_hour
            .get(key)
            .copied()
            .ok_or_else(|| CatalogError::UnknownGpuType {
                gpu_type: key.to_string(),
                known: if self.gpu_hour.is_empty() {
                    "no GPUs".to_string()
                } else {
                    let names: Vec<&str> = self.gpu_hour.keys().map(String::as_str).collect();
                    names.join(", ")
                },
            })
    }
}

/// `hourly_on_demand` at `ratio_ppm` of it, rounded half up.
pub fn spot_hourly(hourly_on_demand: u64, ratio_ppm: u32) -> u64 {
    let price = div_round(
        u128::from(hourly_on_demand) * u128::from(ratio_ppm),
        u128::from(PPM),
    );
    u64::try_from(price).unwrap_or(u64::MAX)
}

/// A price read exactly: YAML numbers are turned back into their decimal text (Rust prints
/// floats in the shortest form that reads back as the same float, never in exponent form).
fn decimal(v: &Value, key: &str, max_decimals: u32) -> Result<u64, CatalogError> {
    let text = match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.to_string(),
            (None, Some(i), _) => i.to_string(),
            (None, None, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => {
            return Err(CatalogError::NotANumber {
                key: key.to_string(),
                found: serde_yaml::to_string(other)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default(),
            })
        }
    };
    parse_money(&text, max_decimals).map_err(|source| CatalogError::Price {
        key: key.to_string(),
        source,
    })
}

/// A fraction of 1 with up to 6 decimals, in parts per million, at most `max_ppm`.
fn fraction(v: &Value, key: &str, max_ppm: u32) -> Result<u32, CatalogError> {
    let nanos = decimal(v, key, 6)?;
    let ppm = u32::try_from(nanos / 1000).unwrap_or(u32::MAX);
    if ppm > max_ppm {
        let bound = if max_ppm == PPM {
            "at most 1"
        } else {
            "less than 1"
        };
        return Err(CatalogError::OutOfRange {
            key: key.to_string(),
            reason: format!("must be {bound}"),
        });
    }
    Ok(ppm)
}

fn ppm_text(ppm: u32) -> String {
    format_money_exact(u128::from(ppm) * 1000)
}

/// A YAML scalar for `s`: plain when it cannot be read as anything but this string.
fn yaml_string(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
