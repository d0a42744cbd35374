//! The cost of one instance over a window of time, as a pure function of what was recorded
//! about it (start, end, last heartbeat, price locked at creation) and the spot history.
//!
//! Rules:
//! 1. Seconds are counted from `start`: second k covers `[start + k s, start + k+1 s)`.
//! 2. The instance's life ends at `end`; while running, at the last confirmed heartbeat if
//!    its host stopped reporting (`min(now, confirmed_until)`), else at `now`.
//! 3. An ended instance pays for every second it began (Fargate rounds up to the second); a
//!    running one only for whole seconds elapsed, so a report never charges a second that a
//!    later report might show never ran. Nothing is charged if the life ends before it starts.
//! 4. A window takes the seconds whose start lies in `[since, until)`, so every second falls
//!    in exactly one of a set of adjacent windows.
//! 5. On-demand, a second costs hourly / 3600; on spot, hourly × ratio / 1e6 / 3600 with the
//!    ratio in force at the second's start. Numerators are summed exactly in `u128` and
//!    divided once. The rounding is anchored at the instance's start: a window costs
//!    `round(C(last)) - round(C(first))`, where C is the exact cost of every second from the
//!    start, so the costs of adjacent windows add up to the cost of their union to the nano.
//!
//! Because nothing here reads the clock or keeps state, a crash and restart of whatever
//! calls it cannot bill a second twice: the same records always give the same charge.

use super::market::PriceHistory;
use super::money::{div_round, PPM};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

const SECONDS_PER_HOUR: u128 = 3600;

/// How an instance is bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CapacityType {
    OnDemand,
    Spot,
}

impl fmt::Display for CapacityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapacityType::OnDemand => "on-demand",
            CapacityType::Spot => "spot",
        })
    }
}

/// What was recorded about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub start: DateTime<Utc>,
    /// None while running.
    pub end: Option<DateTime<Utc>>,
    /// For a running instance whose host stopped reporting: its last heartbeat.
    pub confirmed_until: Option<DateTime<Utc>>,
    /// The on-demand price per hour in nanos, locked at creation.
    pub hourly_on_demand: u64,
    pub capacity: CapacityType,
}

/// The part of time a charge covers; either side may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// What one instance costs in one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    pub seconds: u64,
    /// Nanos.
    #[serde(with = "super::money::nanos_text")]
    pub cost: u128,
    /// The start of the first second charged (of where it would be, when none is).
    pub billed_from: DateTime<Utc>,
    /// The end of the last second charged; equal to `billed_from` when none is.
    pub billed_until: DateTime<Utc>,
}

/// The charge for `usage` in `window` at `now` (see the module docs for the rules).
pub fn charge(usage: &Usage, history: &PriceHistory, window: Window, now: DateTime<Utc>) -> Charge {
    let lived = lived_seconds(usage, now);
    let first = window
        .since
        .map_or(0, |since| ceil_seconds(since - usage.start).clamp(0, lived));
    let last = window.until.map_or(lived, |until| {
        ceil_seconds(until - usage.start).clamp(0, lived)
    });
    let last = last.max(first);
    let cost = |k| cumulative(usage, history, k);
    let denominator = u128::from(PPM) * SECONDS_PER_HOUR;
    let amount = div_round(cost(last), denominator) - div_round(cost(first), denominator);
    Charge {
        seconds: u64::try_from(last - first).unwrap_or(0),
        cost: amount,
        billed_from: offset(usage.start, first),
        billed_until: offset(usage.start, last),
    }
}

/// How many seconds the instance is billed for over its whole life so far.
fn lived_seconds(usage: &Usage, now: DateTime<Utc>) -> i64 {
    match usage.end {
        Some(end) => ceil_seconds(end - usage.start).max(0),
        None => {
            let until = usage.confirmed_until.map_or(now, |c| c.min(now));
            floor_seconds(until - usage.start).max(0)
        }
    }
}

/// The exact cost of seconds `[0, k)`, in nanos × 1e6 × 3600 (one on-demand second at a
/// ratio of 1 is `hourly × 1e6`). Walks the history one segment at a time.
fn cumulative(usage: &Usage, history: &PriceHistory, k: i64) -> u128 {
    let hourly = u128::from(usage.hourly_on_demand);
    let cost = |seconds: i64, ratio: u32| {
        u128::try_from(seconds)
            .unwrap_or(0)
            .saturating_mul(hourly)
            .saturating_mul(u128::from(ratio))
    };
    let points = history.points();
    if usage.capacity == CapacityType::OnDemand || points.is_empty() {
        // An empty history prices spot at on-demand (see `PriceHistory::ratio_at`).
        return cost(k, PPM);
    }
    // Second j is priced by the last point at or before its start: the point in force at
    // `start` (or the first point), then each later point i from second ceil(t_i - start).
    let in_force = points
        .partition_point(|p| p.time <= usage.start)
        .saturating_sub(1);
    let mut total = 0u128;
    let mut from = 0i64;
    let mut ratio = points[in_force].ratio_ppm;
    for p in &points[in_force + 1..] {
        let boundary = ceil_seconds(p.time - usage.start).clamp(0, k);
        total = total.saturating_add(cost(boundary - from, ratio));
        from = boundary;
        ratio = p.ratio_ppm;
        if from >= k {
            break;
        }
    }
    total.saturating_add(cost(k - from, ratio))
}

fn offset(start: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    start
        .checked_add_signed(TimeDelta::seconds(seconds))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn floor_seconds(d: TimeDelta) -> i64 {
    let whole = d.num_seconds();
    if d.subsec_nanos() < 0 {
        whole - 1
    } else {
        whole
    }
}

fn ceil_seconds(d: TimeDelta) -> i64 {
    let whole = d.num_seconds();
    if d.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
