//! When a cron schedule fires next, in a time zone. The schedule itself is
//! parsed by skiff-api's [`skiff_api::admission::cron`], the parser admission
//! validates `spec.schedule` with, so what the API accepts is what runs.

use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, TimeZone, Timelike,
};
use chrono_tz::Tz;
use skiff_api::admission::cron;

/// A parsed five-field schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(cron::Schedule);

impl Schedule {
    /// Parses a schedule; the error names what is wrong. `@every <duration>`
    /// passes admission but is not run: it has no fields to fire on.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        match cron::parse(spec)? {
            Some(schedule) => Ok(Schedule(schedule)),
            None => Err(format!("unsupported descriptor: {}", spec.trim())),
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.0.days_of_month.contains(&date.day());
        let dow = self
            .0
            .days_of_week
            .contains(&date.weekday().num_days_from_sunday());
        if self.0.day_star {
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
            if !self.0.months.contains(&t.month()) {
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
            if !self.0.hours.contains(&t.hour()) {
                t = t.with_minute(0)? + ChronoDuration::hours(1);
                continue;
            }
            if !self.0.minutes.contains(&t.minute()) {
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

    /// Checks each `(schedule, after, expected next time, why)`.
    fn check(table: &[(&str, DateTime<Tz>, DateTime<Tz>, &str)]) {
        for (schedule, after, expected, why) in table {
            assert_eq!(
                next(schedule, *after),
                *expected,
                "{schedule:?} after {after}: {why}"
            );
        }
    }

    #[test]
    fn fields_take_lists_ranges_steps_and_names() {
        check(&[
            (
                "*/15 * * * *",
                utc(2026, 1, 1, 10, 1),
                utc(2026, 1, 1, 10, 15),
                "every 15 minutes",
            ),
            (
                "5,10 9-17 * * *",
                utc(2026, 1, 1, 17, 10),
                utc(2026, 1, 2, 9, 5),
                "past the last hour of the range: the next day",
            ),
            (
                "0 0 * * MON-FRI",
                utc(2026, 1, 2, 12, 0),
                utc(2026, 1, 5, 0, 0),
                "Friday to Monday",
            ),
            (
                "0 12 1 feb *",
                utc(2026, 1, 1, 0, 0),
                utc(2026, 2, 1, 12, 0),
                "month names",
            ),
            (
                "0 0 * * 0",
                utc(2026, 1, 1, 0, 0),
                utc(2026, 1, 4, 0, 0),
                "0 is Sunday",
            ),
        ]);
    }

    #[test]
    fn descriptors_expand_to_their_fields() {
        let after = utc(2026, 1, 1, 10, 30);
        check(&[
            ("@hourly", after, utc(2026, 1, 1, 11, 0), "0 * * * *"),
            ("@daily", after, utc(2026, 1, 2, 0, 0), "0 0 * * *"),
            ("@yearly", after, utc(2027, 1, 1, 0, 0), "0 0 1 1 *"),
        ]);
    }

    #[test]
    fn day_of_month_and_week_either_match_unless_one_is_a_star() {
        let after = utc(2026, 1, 3, 0, 0);
        check(&[
            (
                "0 0 13 * 5",
                after,
                utc(2026, 1, 9, 0, 0),
                "the 13th or any Friday",
            ),
            ("0 0 13 * *", after, utc(2026, 1, 13, 0, 0), "only the 13th"),
        ]);
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
            .contains("above maximum"));
        assert!(Schedule::parse("*/0 * * * *")
            .unwrap_err()
            .contains("positive"));
        assert!(Schedule::parse("@every 5m")
            .unwrap_err()
            .contains("descriptor"));
        assert!(Schedule::parse("0 0 * foo *").is_err());
    }
}
