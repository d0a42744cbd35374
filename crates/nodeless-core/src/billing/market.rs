//! The spot price: a ratio of the on-demand price that follows pool utilisation, and its
//! history, which prices every second a spot instance ran.

use super::catalog::SpotParams;
use super::money::PPM;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The spot ratio at `utilisation_ppm`: `floor` up to the knee, then rising linearly to the
/// on-demand price (1_000_000) at full utilisation, rounded down; utilisation above 100% is
/// full. Parameters outside their documented range are clamped rather than trusted.
pub fn spot_ratio_ppm(utilisation_ppm: u32, params: &SpotParams) -> u32 {
    let floor = u64::from(params.floor_ppm.min(PPM));
    let knee = u64::from(params.knee_ppm.min(PPM - 1));
    let used = u64::from(utilisation_ppm.min(PPM));
    if used <= knee {
        return floor as u32;
    }
    let full = u64::from(PPM);
    let rise = (full - floor) * (used - knee) / (full - knee);
    u32::try_from(floor + rise).unwrap_or(PPM)
}

/// How full the pool is: the larger of its CPU and memory fractions, at most 1. A resource
/// with no capacity is full if anything uses it and ignored otherwise.
pub fn utilisation_ppm(
    used_millicpu: u64,
    cap_millicpu: u64,
    used_mem_mib: u64,
    cap_mem_mib: u64,
) -> u32 {
    fraction(used_millicpu, cap_millicpu).max(fraction(used_mem_mib, cap_mem_mib))
}

fn fraction(used: u64, capacity: u64) -> u32 {
    if capacity == 0 {
        return if used > 0 { PPM } else { 0 };
    }
    let ppm = u128::from(used) * u128::from(PPM) / u128::from(capacity);
    u32::try_from(ppm.min(u128::from(PPM))).unwrap_or(PPM)
}

/// The spot ratio in force from `time` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricePoint {
    pub time: DateTime<Utc>,
    pub ratio_ppm: u32,
}

/// The spot ratio over time: points in time order, each differing from the one before.
/// Serialized as the list of points; a list read back is sorted and deduplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<PricePoint>", into = "Vec<PricePoint>")]
pub struct PriceHistory(Vec<PricePoint>);

impl PriceHistory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn points(&self) -> &[PricePoint] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether [`PriceHistory::ratio_at`] is exact at `t`: times before the first point read
    /// its ratio, which is an estimate once older points have been dropped.
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.0.first().is_some_and(|p| p.time <= t)
    }

    /// The ratio in force at `t`: that of the last point at or before `t`, or of the first
    /// point when `t` is earlier.
    pub fn ratio_at(&self, t: DateTime<Utc>) -> u32 {
        // With no history there is no spot market to price against, so spot time is billed
        // at the on-demand price rather than at an invented discount.
        let Some(first) = self.0.first() else {
            return PPM;
        };
        let after = self.0.partition_point(|p| p.time <= t);
        after
            .checked_sub(1)
            .map_or(first.ratio_ppm, |i| self.0[i].ratio_ppm)
    }

    /// Records a new ratio; returns whether the history changed. A point older than the last
    /// is ignored (the clock went backwards), one at the same time replaces it, and one with
    /// the ratio already in force adds nothing. Beyond `max_points` (at least 1) the oldest
    /// points are dropped: `ratio_at` stays exact from the new first point on, and earlier
    /// times read that point's ratio.
    pub fn push(&mut self, point: PricePoint, max_points: usize) -> bool {
        if let Some(last) = self.0.last_mut() {
            if point.time < last.time || point.ratio_ppm == last.ratio_ppm {
                return false;
            }
            if point.time == last.time {
                last.ratio_ppm = point.ratio_ppm;
                let n = self.0.len();
                if n >= 2 && self.0[n - 2].ratio_ppm == point.ratio_ppm {
                    self.0.pop();
                }
                return true;
            }
        }
        self.0.push(point);
        let excess = self.0.len().saturating_sub(max_points.max(1));
        self.0.drain(..excess);
        true
    }
}

impl From<Vec<PricePoint>> for PriceHistory {
    /// Any list of points: sorted by time (stable, so the later of two equal times wins) and
    /// pushed one by one, so the history's invariants hold.
    fn from(mut points: Vec<PricePoint>) -> Self {
        points.sort_by_key(|p| p.time);
        let mut history = Self::new();
        for p in points {
            history.push(p, usize::MAX);
        }
        history
    }
}

impl From<PriceHistory> for Vec<PricePoint> {
    fn from(history: PriceHistory) -> Self {
        history.0
    }
}

#[cfg(test)]
#[path = "market_tests.rs"]
mod tests;
