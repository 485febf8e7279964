//! Ages and durations as Kubernetes' printers render them ("5s", "3m20s",
//! "2d4h"), and the RFC 3339 timestamps Kubernetes objects carry.
//!
//! The rounding follows apimachinery's `duration.HumanDuration`: seconds up to two minutes,
//! then minutes with seconds below ten minutes, hours with minutes below eight
//! hours, days with hours below eight days, and years with days below eight years;
//! each step drops the smaller unit when it is zero.
//!
//! # Caveats
//! Only the timestamp forms Kubernetes writes are parsed: `2024-05-01T10:00:00Z`,
//! with optional fractional seconds and a `Z` or `±HH:MM` offset.

use serde_json::Value;

/// A duration of `seconds` as an Age cell shows it.
pub fn human_duration(seconds: i64) -> String {
    // A clock up to a second ahead of the server's still reads as "0s".
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

fn with_remainder(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

/// The age of a timestamp field (such as `metadata.creationTimestamp`) at
/// `now`, or `<unknown>` when the field is missing or malformed, as Kubernetes' printers show it.
pub fn age(timestamp: Option<&Value>, now: i64) -> String {
    match timestamp.and_then(Value::as_str).and_then(parse_timestamp) {
        Some(then) => human_duration(now - then),
        None => "<unknown>".into(),
    }
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp such as
/// `2024-05-01T10:00:00Z` or `2024-05-01T12:00:00.123456+02:00`.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't'])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || time.len() < 8 {
        return None;
    }
    let (clock, zone) = time.split_at(8);
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: i64 = clock_parts.next()?.parse().ok()?;
    // Fractional seconds are dropped: ages are shown in whole seconds.
    let zone = match zone.strip_prefix('.') {
        Some(rest) => rest.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => zone,
    };
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.chars().next()? {
                '+' => 1,
                '-' => -1,
                _ => return None,
            };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_as_kubectl_rounds_them() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 25 * 60, "3h25m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 59 * 60, "47h"),
            (48 * 3600, "2d"),
            (2 * 86_400 + 4 * 3600, "2d4h"),
            (7 * 86_400 + 23 * 3600, "7d23h"),
            (8 * 86_400 + 5 * 3600, "8d"),
            (729 * 86_400, "729d"),
            (730 * 86_400, "2y"),
            (3 * 365 * 86_400 + 10 * 86_400, "3y10d"),
            (9 * 365 * 86_400, "9y"),
        ];
        for (seconds, shown) in cases {
            assert_eq!(human_duration(seconds), shown, "{seconds}s");
        }
    }

    #[test]
    fn timestamps_parse_in_every_form_kubernetes_writes() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_timestamp("2024-05-01T10:00:00Z"), Some(1_714_557_600));
        assert_eq!(
            parse_timestamp("2024-05-01T10:00:00.123456Z"),
            Some(1_714_557_600)
        );
        assert_eq!(
            parse_timestamp("2024-05-01T12:00:00+02:00"),
            Some(1_714_557_600)
        );
        assert_eq!(parse_timestamp("2024-05-01"), None);
        assert_eq!(parse_timestamp("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn age_of_a_missing_timestamp_is_unknown() {
        let created = Value::from("2024-05-01T10:00:00Z");
        assert_eq!(age(Some(&created), 1_714_557_600 + 65), "65s");
        assert_eq!(age(None, 0), "<unknown>");
    }
}
