//! Cron schedules: five fields (minute, hour, day of month, month, day of
//! week) with lists, ranges, steps and names, or a descriptor (`@hourly`,
//! `@daily`, …), as robfig/cron v3's standard parser that Kubernetes uses;
//! and the next time a schedule fires, in a time zone.

use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, TimeZone, Timelike,
};
use chrono_tz::Tz;

/// A field's bounds and names.
struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: Field = Field {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule: one bit per value each field allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Day of month or day of week was `*`: then both must match (robfig's
    /// rule); otherwise either may.
    day_star: bool,
}

impl Schedule {
    /// Parses a schedule; the error names what is wrong.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        }
        let star = |f: &str| f.starts_with('*') || f.starts_with('?');
        Ok(Schedule {
            minutes: bits(fields[0], &MINUTE)?,
            hours: bits(fields[1], &HOUR)?,
            days_of_month: bits(fields[2], &DAY_OF_MONTH)?,
            months: bits(fields[3], &MONTH)?,
            days_of_week: bits(fields[4], &DAY_OF_WEEK)?,
            day_star: star(fields[2]) || star(fields[4]),
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first time after `after` (exclusive) that the schedule fires in
    /// `tz`; `None` if there is none within five years. Local times that a
    /// daylight-saving change skips never fire; repeated ones fire once.
    pub fn next_after(&self, after: DateTime<Tz>, tz: Tz) -> Option<DateTime<Tz>> {
        let start =
            after.naive_local().with_second(0)?.with_nanosecond(0)? + ChronoDuration::minutes(1);
        let limit = start + ChronoDuration::days(5 * 366);
        let mut t: NaiveDateTime = start;
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.with_minute(0)? + ChronoDuration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += ChronoDuration::minutes(1);
                continue;
            }
            match tz.from_local_datetime(&t) {
                chrono::LocalResult::Single(at) => return Some(at).filter(|at| *at > after),
                chrono::LocalResult::Ambiguous(first, _) if first > after => return Some(first),
                _ => t += ChronoDuration::minutes(1),
            }
        }
        None
    }
}

/// The bits one field allows: `*`, `?`, values, names, `a-b`, `/step`, lists.
fn bits(field: &str, bounds: &Field) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("failed to parse int from {step}"))?;
                if step == 0 {
                    return Err(format!("step of range should be a positive number: {part}"));
                }
                (range, Some(step))
            }
            None => (part, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            (bounds.min, bounds.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, bounds)?, value(b, bounds)?)
        } else {
            let v = value(range, bounds)?;
            (v, if step.is_some() { bounds.max } else { v })
        };
        if low < bounds.min || high > bounds.max {
            return Err(format!(
                "end of range ({high}) above maximum ({}): {part}",
                bounds.max
            ));
        }
        if low > high {
            return Err(format!(
                "beginning of range ({low}) beyond end of range ({high}): {part}"
            ));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok(bits)
}

fn value(text: &str, bounds: &Field) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = bounds.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + bounds.min);
    }
    let v: u32 = text
        .parse()
        .map_err(|_| format!("failed to parse int from {text}"))?;
    // Day of week 7 is Sunday too.
    if bounds.names.first() == Some(&"sun") && v == 7 {
        return Ok(0);
    }
    if v < bounds.min || v > bounds.max {
        return Err(format!(
            "value {v} out of range [{}, {}]: {text}",
            bounds.min, bounds.max
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Tz> {
        Tz::UTC.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn next(spec: &str, after: DateTime<Tz>) -> DateTime<Tz> {
        Schedule::parse(spec)
            .unwrap()
            .next_after(after, after.timezone())
            .unwrap()
    }

    #[test]
    fn fields_take_lists_ranges_steps_and_names() {
        assert_eq!(
            next("*/15 * * * *", utc(2026, 1, 1, 10, 1)),
            utc(2026, 1, 1, 10, 15)
        );
        assert_eq!(
            next("5,10 9-17 * * *", utc(2026, 1, 1, 17, 10)),
            utc(2026, 1, 2, 9, 5)
        );
        assert_eq!(
            next("0 0 * * MON-FRI", utc(2026, 1, 2, 12, 0)),
            utc(2026, 1, 5, 0, 0),
            "Friday to Monday"
        );
        assert_eq!(
            next("0 12 1 feb *", utc(2026, 1, 1, 0, 0)),
            utc(2026, 2, 1, 12, 0)
        );
        assert_eq!(
            next("0 0 * * 7", utc(2026, 1, 1, 0, 0)),
            utc(2026, 1, 4, 0, 0),
            "7 is Sunday"
        );
    }

    #[test]
    fn descriptors_expand_to_their_fields() {
        assert_eq!(
            next("@hourly", utc(2026, 1, 1, 10, 30)),
            utc(2026, 1, 1, 11, 0)
        );
        assert_eq!(
            next("@daily", utc(2026, 1, 1, 10, 30)),
            utc(2026, 1, 2, 0, 0)
        );
        assert_eq!(
            next("@yearly", utc(2026, 1, 1, 10, 30)),
            utc(2027, 1, 1, 0, 0)
        );
    }

    #[test]
    fn day_of_month_and_week_either_match_unless_one_is_a_star() {
        // The 13th or any Friday.
        assert_eq!(
            next("0 0 13 * 5", utc(2026, 1, 3, 0, 0)),
            utc(2026, 1, 9, 0, 0)
        );
        assert_eq!(
            next("0 0 13 * *", utc(2026, 1, 3, 0, 0)),
            utc(2026, 1, 13, 0, 0)
        );
    }

    #[test]
    fn the_next_time_is_found_in_the_schedules_time_zone() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let after = utc(2026, 6, 1, 0, 0).with_timezone(&tz);
        let at = Schedule::parse("0 9 * * *")
            .unwrap()
            .next_after(after, tz)
            .unwrap();
        assert_eq!(
            at.with_timezone(&Tz::UTC),
            utc(2026, 6, 1, 13, 0),
            "09:00 EDT is 13:00 UTC"
        );
        // 02:30 does not exist on 2026-03-08 in New York: that day is skipped.
        let before = tz.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap();
        let at = Schedule::parse("30 2 * * *")
            .unwrap()
            .next_after(before, tz)
            .unwrap();
        assert_eq!(at.day(), 9);
    }

    #[test]
    fn bad_schedules_name_what_is_wrong() {
        assert!(Schedule::parse("* * * *")
            .unwrap_err()
            .contains("exactly 5 fields"));
        assert!(Schedule::parse("61 * * * *")
            .unwrap_err()
            .contains("out of range"));
        assert!(Schedule::parse("*/0 * * * *")
            .unwrap_err()
            .contains("positive"));
        assert!(Schedule::parse("@every 5m")
            .unwrap_err()
            .contains("descriptor"));
        assert!(Schedule::parse("0 0 * foo *").is_err());
    }
}
