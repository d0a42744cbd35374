//! A Pod's spot policy, read from its annotations (ours or the ASK aliases):
//!
//! - `nodeless.dev/spot-strategy`: `SpotAsPriceGo` (pay the market price) or
//!   `SpotWithPriceLimit` (be reclaimed when the price passes the limit); absent = on-demand.
//!   Exact and case-sensitive, as on ECI.
//! - `nodeless.dev/spot-price-limit`: the hourly limit, a decimal with up to 3 places, above
//!   0; required with `SpotWithPriceLimit` and ignored with `SpotAsPriceGo` (as ECI does).
//! - `nodeless.dev/spot-duration`: the protection period during which the instance is not
//!   reclaimed: a whole number of hours (`1`, the default; `0` for none) or, so tests can use
//!   seconds, a Go-style duration of whole units (`90s`, `10m`, `2h`, `1h30m`); at most a
//!   year (8760 hours).
//! - `nodeless.dev/spot-fallback`: `true` to run on-demand when there is no spot capacity;
//!   `false` (the default) to wait for spot.
//!
//! Without a strategy the other spot annotations are ignored, as on ECI.

use super::money::{parse_money, MoneyError};
use crate::field::{ErrorList, FieldError, Path};
use crate::instance_spec::{
    ask_alias, SPOT_DURATION, SPOT_FALLBACK, SPOT_PRICE_LIMIT, SPOT_STRATEGY,
};
use serde_json::Value;
use std::time::Duration;

const AS_PRICE_GO: &str = "SpotAsPriceGo";
const WITH_PRICE_LIMIT: &str = "SpotWithPriceLimit";
const LIMIT_DECIMALS: u32 = 3;
const DEFAULT_PROTECTION: Duration = Duration::from_secs(3600);
/// A year: longer protection would make an instance on-demand in all but name, and a bound
/// keeps `started + protection` far from any overflow in callers.
const MAX_PROTECTION: Duration = Duration::from_secs(8760 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotStrategy {
    AsPriceGo,
    /// The limit in nanos per hour.
    WithPriceLimit {
        hourly_limit: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpotPolicy {
    pub strategy: SpotStrategy,
    /// Not reclaimed for this long after starting; zero for no protection.
    pub protection: Duration,
    /// Run on-demand when there is no spot capacity.
    pub fallback: bool,
}

/// What is wrong with a spot annotation; `key` is the annotation that held the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpotError {
    #[error("annotation {key}: unknown spot strategy {value:?}: use {AS_PRICE_GO} or {WITH_PRICE_LIMIT}")]
    Strategy { key: String, value: String },
    #[error("annotation {key} is required with {WITH_PRICE_LIMIT}")]
    LimitRequired { key: String },
    #[error("annotation {key}: invalid price limit: {source}")]
    Limit {
        key: String,
        #[source]
        source: MoneyError,
    },
    #[error("annotation {key}: the price limit must be more than 0")]
    LimitZero { key: String, value: String },
    #[error("annotation {key}: invalid spot duration {value:?}: give whole hours such as 1, or a duration such as 90s, 10m or 2h, of at most 8760h")]
    Duration { key: String, value: String },
    #[error("annotation {key}: invalid spot fallback {value:?}: use true or false")]
    Fallback { key: String, value: String },
}

impl SpotError {
    /// The error as a field error on `metadata.annotations[<key>]`, for a 422 at create.
    pub fn to_field_error(&self) -> FieldError {
        let path = |key: &str| Path::new("metadata").child("annotations").key(key);
        match self {
            SpotError::Strategy { key, value } => {
                FieldError::not_supported(path(key), value.as_str(), &[AS_PRICE_GO, WITH_PRICE_LIMIT])
            }
            SpotError::LimitRequired { key } => {
                FieldError::required(path(key), format!("required with {WITH_PRICE_LIMIT}"))
            }
            SpotError::Limit { key, source } => {
                let (value, detail) = match source {
                    MoneyError::Empty => (String::new(), "required".to_string()),
                    MoneyError::Negative(v) => (v.clone(), "must be more than 0".to_string()),
                    MoneyError::Malformed(v) => {
                        (v.clone(), "must be a decimal number such as 0.025".to_string())
                    }
                    MoneyError::TooManyDecimals { value, max } => {
                        (value.clone(), format!("may have at most {max} decimals"))
                    }
                    MoneyError::TooLarge(v) => (v.clone(), "is too large".to_string()),
                };
                FieldError::invalid(path(key), value, detail)
            }
            SpotError::LimitZero { key, value } => {
                FieldError::invalid(path(key), value.as_str(), "must be more than 0")
            }
            SpotError::Duration { key, value } => FieldError::invalid(
                path(key),
                value.as_str(),
                "give whole hours such as 1, or a duration such as 90s, 10m or 2h, of at most 8760h",
            ),
            SpotError::Fallback { key, value } => {
                FieldError::not_supported(path(key), value.as_str(), &["true", "false"])
            }
        }
    }
}

/// The Pod's spot policy; `None` for an on-demand Pod.
pub fn spot_policy(pod: &Value) -> Result<Option<SpotPolicy>, SpotError> {
    let Some(strategy) = strategy(pod)? else {
        return Ok(None);
    };
    Ok(Some(SpotPolicy {
        strategy,
        protection: protection(pod)?,
        fallback: fallback(pod)?,
    }))
}

/// Every problem with the Pod's spot annotations, for validation at create.
pub fn validate_spot_annotations(pod: &Value) -> ErrorList {
    let strategy = match strategy(pod) {
        Ok(None) => return ErrorList::new(),
        Ok(Some(_)) => None,
        Err(e) => Some(e),
    };
    [strategy, protection(pod).err(), fallback(pod).err()]
        .into_iter()
        .flatten()
        .map(|e| e.to_field_error())
        .collect()
}

/// The value of annotation `ours` or its ASK alias, and the key that held it; blank counts
/// as absent, as in [`crate::instance_spec::annotation`].
fn entry<'a>(pod: &'a Value, ours: &'static str) -> Option<(&'static str, &'a str)> {
    let annotations = pod.get("metadata")?.get("annotations")?;
    let read = |key: &'static str| {
        let value = annotations.get(key)?.as_str()?.trim();
        (!value.is_empty()).then_some((key, value))
    };
    read(ours).or_else(|| ask_alias(ours).and_then(read))
}

fn strategy(pod: &Value) -> Result<Option<SpotStrategy>, SpotError> {
    let Some((key, value)) = entry(pod, SPOT_STRATEGY) else {
        return Ok(None);
    };
    match value {
        AS_PRICE_GO => Ok(Some(SpotStrategy::AsPriceGo)),
        WITH_PRICE_LIMIT => Ok(Some(SpotStrategy::WithPriceLimit {
            hourly_limit: price_limit(pod)?,
        })),
        other => Err(SpotError::Strategy {
            key: key.to_string(),
            value: other.to_string(),
        }),
    }
}

fn price_limit(pod: &Value) -> Result<u64, SpotError> {
    let Some((key, value)) = entry(pod, SPOT_PRICE_LIMIT) else {
        return Err(SpotError::LimitRequired {
            key: SPOT_PRICE_LIMIT.to_string(),
        });
    };
    let limit = parse_money(value, LIMIT_DECIMALS).map_err(|source| SpotError::Limit {
        key: key.to_string(),
        source,
    })?;
    if limit == 0 {
        return Err(SpotError::LimitZero {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(limit)
}

fn protection(pod: &Value) -> Result<Duration, SpotError> {
    let Some((key, value)) = entry(pod, SPOT_DURATION) else {
        return Ok(DEFAULT_PROTECTION);
    };
    parse_duration(value)
        .filter(|d| *d <= MAX_PROTECTION)
        .ok_or_else(|| SpotError::Duration {
            key: key.to_string(),
            value: value.to_string(),
        })
}

/// Whole hours (`1`), or whole amounts of `h`, `m` and `s` in that order (`1h30m`, `90s`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .ok()?
            .checked_mul(3600)
            .map(Duration::from_secs);
    }
    let mut rest = text;
    let mut seconds = 0u64;
    let mut last_unit = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let unit_seconds = match tail.chars().next()? {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        if number.is_empty() || unit_seconds >= last_unit {
            return None;
        }
        let amount = number.parse::<u64>().ok()?.checked_mul(unit_seconds)?;
        seconds = seconds.checked_add(amount)?;
        last_unit = unit_seconds;
        rest = &tail[1..];
    }
    Some(Duration::from_secs(seconds))
}

fn fallback(pod: &Value) -> Result<bool, SpotError> {
    match entry(pod, SPOT_FALLBACK) {
        None => Ok(false),
        Some((_, "true")) => Ok(true),
        Some((_, "false")) => Ok(false),
        Some((key, value)) => Err(SpotError::Fallback {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
#[path = "spot_tests.rs"]
mod tests;
