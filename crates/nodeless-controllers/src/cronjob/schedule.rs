//! CronJob schedules: standard five-field cron (with `@hourly`-style descriptors) read by
//! `croner` the way upstream's robfig/cron reads them (day-of-month OR day-of-week), plus
//! `@every <duration>`, evaluated in the CronJob's time zone.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Past this many missed start times upstream warns instead of counting on.
pub const MAX_MISSED: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("unparseable schedule {spec:?}: {message}")]
    Unparseable { spec: String, message: String },
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
}

#[derive(Debug, Clone)]
pub enum Schedule {
    Cron(Box<Cron>),
    /// `@every`: a fixed period counted from whole seconds.
    Every(Duration),
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, ScheduleError> {
        let spec = spec.trim();
        let bad = |message: String| ScheduleError::Unparseable {
            spec: spec.to_string(),
            message,
        };
        if let Some(rest) = spec.strip_prefix("@every ") {
            let period = go_duration(rest.trim()).ok_or_else(|| bad("bad duration".into()))?;
            if period < Duration::seconds(1) {
                return Err(bad("the period must be at least one second".into()));
            }
            return Ok(Schedule::Every(period));
        }
        let spec = if spec.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            spec
        };
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .sloppy_ranges(true)
            .build();
        let cron = parser.parse(spec).map_err(|e| bad(e.to_string()))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first start time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => {
                let whole = DateTime::from_timestamp(t.timestamp(), 0)?;
                Some(whole + *period)
            }
            Schedule::Cron(cron) => cron
                .find_next_occurrence(&t.with_timezone(&tz), false)
                .ok()
                .map(|n| n.with_timezone(&Utc)),
        }
    }

    /// The latest start time in `(earliest, now]`, and how many there were (counted up to
    /// [`MAX_MISSED`] + 1).
    pub fn most_recent(
        &self,
        earliest: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: Tz,
    ) -> (Option<DateTime<Utc>>, usize) {
        let mut missed = 0;
        let mut latest = None;
        let mut t = earliest;
        while let Some(next) = self.next_after(t, tz).filter(|n| *n <= now) {
            missed += 1;
            latest = Some(next);
            t = next;
            if missed > MAX_MISSED {
                // Too many to walk: jump to the last one before `now`.
                let jumped = self.last_at_or_before(now, tz).filter(|l| *l > t);
                return (jumped.or(latest), missed);
            }
        }
        (latest, missed)
    }

    fn last_at_or_before(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(_) => None,
            Schedule::Cron(cron) => cron
                .find_previous_occurrence(&now.with_timezone(&tz), true)
                .ok()
                .map(|p| p.with_timezone(&Utc)),
        }
    }
}

/// The CronJob's time zone: UTC unless `spec.timeZone` names one.
pub fn time_zone(name: Option<&str>) -> Result<Tz, ScheduleError> {
    match name {
        None | Some("") => Ok(Tz::UTC),
        Some(n) => Tz::from_str(n).map_err(|_| ScheduleError::UnknownTimeZone(n.to_string())),
    }
}

/// A Go duration (`1h30m`, `90s`, `1.5h`) as `@every` takes it, rounded down to seconds.
fn go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * seconds;
    }
    if !total.is_finite() || total > 1e12 {
        return None;
    }
    // Truncation is the point: robfig/cron rounds the period down to whole seconds.
    #[allow(clippy::cast_possible_truncation)]
    Some(Duration::seconds(total as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn every_minute_fires_at_the_next_whole_minute() {
        let s = Schedule::parse("* * * * *").expect("schedule");
        assert_eq!(
            s.next_after(utc("2024-05-01T10:00:30Z"), Tz::UTC),
            Some(utc("2024-05-01T10:01:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2024-05-01T10:01:00Z"), Tz::UTC),
            Some(utc("2024-05-01T10:02:00Z"))
        );
    }

    #[test]
    fn descriptors_and_names_are_read_as_upstream_reads_them() {
        let t = utc("2024-05-01T10:20:00Z");
        let next = |spec: &str| Schedule::parse(spec).expect(spec).next_after(t, Tz::UTC);
        assert_eq!(next("@hourly"), Some(utc("2024-05-01T11:00:00Z")));
        assert_eq!(next("@daily"), Some(utc("2024-05-02T00:00:00Z")));
        assert_eq!(next("@midnight"), Some(utc("2024-05-02T00:00:00Z")));
        assert_eq!(next("@monthly"), Some(utc("2024-06-01T00:00:00Z")));
        assert_eq!(next("0 9 * * mon-fri"), Some(utc("2024-05-02T09:00:00Z")));
        assert_eq!(next("*/15 * * * *"), Some(utc("2024-05-01T10:30:00Z")));
        assert_eq!(next("@every 1h30m"), Some(utc("2024-05-01T11:50:00Z")));
        // Day of month OR day of week, as Vixie cron: the 15th, or any Sunday.
        assert_eq!(next("0 0 15 * sun"), Some(utc("2024-05-05T00:00:00Z")));
    }

    #[test]
    fn malformed_schedules_and_time_zones_are_refused() {
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("0 * * * * *").is_err(), "no seconds field");
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("@every nope").is_err());
        assert!(time_zone(Some("Mars/Olympus")).is_err());
        assert_eq!(time_zone(None).expect("utc"), Tz::UTC);
    }

    #[test]
    fn a_schedule_runs_on_the_wall_clock_of_its_time_zone_across_dst() {
        let tz = time_zone(Some("America/New_York")).expect("tz");
        let nine = Schedule::parse("0 9 * * *").expect("schedule");
        // 09:00 New York is 14:00 UTC in winter and 13:00 UTC in summer.
        assert_eq!(
            nine.next_after(utc("2024-03-08T00:00:00Z"), tz),
            Some(utc("2024-03-08T14:00:00Z"))
        );
        assert_eq!(
            nine.next_after(utc("2024-03-12T00:00:00Z"), tz),
            Some(utc("2024-03-12T13:00:00Z"))
        );
    }

    #[test]
    fn the_most_recent_start_time_counts_what_was_missed() {
        let s = Schedule::parse("*/10 * * * *").expect("schedule");
        let (latest, missed) = s.most_recent(
            utc("2024-05-01T10:00:00Z"),
            utc("2024-05-01T10:35:00Z"),
            Tz::UTC,
        );
        assert_eq!(latest, Some(utc("2024-05-01T10:30:00Z")));
        assert_eq!(missed, 3);
        let (none, zero) = s.most_recent(
            utc("2024-05-01T10:00:00Z"),
            utc("2024-05-01T10:05:00Z"),
            Tz::UTC,
        );
        assert_eq!((none, zero), (None, 0));
        let every_minute = Schedule::parse("* * * * *").expect("schedule");
        let (latest, missed) = every_minute.most_recent(
            utc("2024-05-01T00:00:00Z"),
            utc("2024-05-03T00:00:30Z"),
            Tz::UTC,
        );
        assert_eq!(latest, Some(utc("2024-05-03T00:00:00Z")));
        assert!(missed > MAX_MISSED);
    }
}
