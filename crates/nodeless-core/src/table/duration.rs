//! Ages as kubectl shows them: upstream's `duration.HumanDuration`, ~2-3 significant figures.

use chrono::{DateTime, TimeDelta, Utc};

/// `5s`, `3m2s`, `15m`, `5h3m`, `2d3h`, `30d`, `2y15d`, `9y`; `<invalid>` for the future.
pub fn human_duration(d: TimeDelta) -> String {
    // Up to two seconds in the future counts as now, to tolerate clock skew.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_rest(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with_rest(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_rest(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_rest(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

fn with_rest(big: i64, big_unit: &str, rest: i64, rest_unit: &str) -> String {
    if rest == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{rest}{rest_unit}")
    }
}

/// Parses an RFC 3339 timestamp as Kubernetes writes them.
pub fn parse_time(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Upstream's `translateTimestampSince`: the age of a timestamp, `<unknown>` when unset.
pub fn since(ts: Option<&str>, now: DateTime<Utc>) -> String {
    match ts.filter(|s| !s.is_empty()).and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

/// A timestamp as `metav1.Time` serializes it (RFC 3339, UTC, whole seconds).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(secs: i64) -> String {
        human_duration(TimeDelta::seconds(secs))
    }

    #[test]
    fn human_durations_keep_two_or_three_significant_figures() {
        assert_eq!(h(-5), "<invalid>");
        assert_eq!(h(-1), "0s");
        assert_eq!(h(5), "5s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(182), "3m2s");
        assert_eq!(h(240), "4m");
        assert_eq!(h(15 * 60 + 7), "15m");
        assert_eq!(h(179 * 60), "179m");
        assert_eq!(h(5 * 3600 + 3 * 60), "5h3m");
        assert_eq!(h(7 * 3600), "7h");
        assert_eq!(h(30 * 3600), "30h");
        assert_eq!(h(51 * 3600), "2d3h");
        assert_eq!(h(3 * 86400), "3d");
        assert_eq!(h(30 * 86400), "30d");
        assert_eq!(h(745 * 86400), "2y15d");
        assert_eq!(h(9 * 365 * 86400), "9y");
    }

    #[test]
    fn ages_of_missing_or_bad_timestamps_are_unknown() {
        let now = parse_time("2024-05-01T12:00:00Z").expect("valid");
        assert_eq!(since(Some("2024-05-01T11:59:55Z"), now), "5s");
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some("yesterday"), now), "<unknown>");
        assert_eq!(format_time(now), "2024-05-01T12:00:00Z");
    }
}
