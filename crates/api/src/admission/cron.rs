//! Cron schedules as a CronJob's `spec.schedule` takes them: five fields
//! (minute, hour, day of month, month, day of week) or a descriptor such as
//! `@hourly`, with the error texts of the cron library Kubernetes uses
//! (robfig/cron v3's standard parser). Admission validates schedules with
//! it, and the CronJob controller computes its times from what it parses.

use std::collections::BTreeSet;

/// One field's allowed range and names.
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule: the minutes, hours, days, months and weekdays it fires on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Minutes of the hour (0–59).
    pub minutes: BTreeSet<u32>,
    /// Hours of the day (0–23).
    pub hours: BTreeSet<u32>,
    /// Days of the month (1–31).
    pub days_of_month: BTreeSet<u32>,
    /// Months (1–12).
    pub months: BTreeSet<u32>,
    /// Days of the week (0 = Sunday).
    pub days_of_week: BTreeSet<u32>,
    /// The day of month or the day of week was written `*` or `?`: then a
    /// day must match both fields, otherwise either (robfig's star bit).
    pub day_star: bool,
}

/// Parses a schedule; `@every <duration>` is accepted but has no fields, so it gives `None`.
pub fn parse(spec: &str) -> Result<Option<Schedule>, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        let fields = match descriptor {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            _ => {
                if let Some(duration) = descriptor.strip_prefix("every ") {
                    if !is_go_duration(duration.trim()) {
                        return Err(format!(
                            "failed to parse duration {spec}: time: invalid duration \"{}\"",
                            duration.trim()
                        ));
                    }
                    return Ok(None);
                }
                return Err(format!("unrecognized descriptor: {spec}"));
            }
        };
        return parse(fields);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let star = |f: &str| f.starts_with('*') || f.starts_with('?');
    Ok(Some(Schedule {
        day_star: star(fields[2]) || star(fields[4]),
        minutes: parse_field(fields[0], &MINUTE)?,
        hours: parse_field(fields[1], &HOUR)?,
        days_of_month: parse_field(fields[2], &DAY_OF_MONTH)?,
        months: parse_field(fields[3], &MONTH)?,
        days_of_week: parse_field(fields[4], &DAY_OF_WEEK)?,
    }))
}

/// A comma-separated list of ranges.
fn parse_field(field: &str, bounds: &Bounds) -> Result<BTreeSet<u32>, String> {
    let mut values = BTreeSet::new();
    for expression in field.split(',') {
        values.extend(parse_range(expression, bounds)?);
    }
    Ok(values)
}

/// `*`, `?`, `n`, `a-b`, each optionally `/step`.
fn parse_range(expression: &str, bounds: &Bounds) -> Result<Vec<u32>, String> {
    let range_and_step: Vec<&str> = expression.split('/').collect();
    if range_and_step.len() > 2 {
        return Err(format!("too many slashes: {expression}"));
    }
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (bounds.min, bounds.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], bounds)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], bounds)?,
            _ => return Err(format!("too many hyphens: {expression}")),
        };
        (start, end)
    };
    let step = match range_and_step.get(1) {
        Some(step) => {
            let step = parse_int(step)?;
            // `n/step` means from n to the end of the range.
            if single && low_and_high[0] != "*" && low_and_high[0] != "?" {
                end = bounds.max;
            }
            step
        }
        None => 1,
    };
    if start < bounds.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expression}",
            bounds.min
        ));
    }
    if end > bounds.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expression}",
            bounds.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expression}"
        ));
    }
    if step == 0 {
        return Err(format!(
            "step of range should be a positive number: {expression}"
        ));
    }
    Ok((start..=end).step_by(step as usize).collect())
}

fn parse_int_or_name(text: &str, bounds: &Bounds) -> Result<u32, String> {
    let lower = text.to_lowercase();
    if let Some(i) = bounds.names.iter().position(|n| *n == lower) {
        return Ok(bounds.min + i as u32);
    }
    parse_int(text)
}

fn parse_int(text: &str) -> Result<u32, String> {
    let number: i64 = text.parse().map_err(|_| {
        format!("failed to parse int from {text}: strconv.Atoi: parsing \"{text}\": invalid syntax")
    })?;
    if number < 0 {
        return Err(format!("negative number ({number}) not allowed: {text}"));
    }
    u32::try_from(number)
        .map_err(|_| format!("failed to parse int from {text}: value out of range"))
}

/// Whether `text` is a Go duration such as `1h30m` or `90s`.
fn is_go_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    if rest == "0" {
        return true;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[u32]) -> BTreeSet<u32> {
        values.iter().copied().collect()
    }

    #[test]
    fn five_fields_with_lists_ranges_steps_and_names() {
        let s = parse("*/15 9-17 1,15 jan-mar mon-fri").unwrap().unwrap();
        assert_eq!(s.minutes, set(&[0, 15, 30, 45]));
        assert_eq!(s.hours, (9..=17).collect());
        assert_eq!(s.days_of_month, set(&[1, 15]));
        assert_eq!(s.months, set(&[1, 2, 3]));
        assert_eq!(s.days_of_week, set(&[1, 2, 3, 4, 5]));
        let s = parse("5/20 ? * * *").unwrap().unwrap();
        assert_eq!(
            s.minutes,
            set(&[5, 25, 45]),
            "n/step runs to the end of the range"
        );
    }

    #[test]
    fn descriptors() {
        assert_eq!(parse("@hourly").unwrap(), parse("0 * * * *").unwrap());
        assert_eq!(parse("@daily").unwrap(), parse("@midnight").unwrap());
        assert!(parse("@every 1h30m").unwrap().is_none());
        assert_eq!(
            parse("@often").unwrap_err(),
            "unrecognized descriptor: @often"
        );
        assert!(parse("@every soon")
            .unwrap_err()
            .starts_with("failed to parse duration"));
    }

    #[test]
    fn errors_are_the_cron_librarys() {
        assert_eq!(parse("").unwrap_err(), "empty spec string");
        assert_eq!(
            parse("* * *").unwrap_err(),
            "expected exactly 5 fields, found 3: [* * *]"
        );
        assert_eq!(
            parse("60 * * * *").unwrap_err(),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            parse("* * 0 * *").unwrap_err(),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            parse("5-1 * * * *").unwrap_err(),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            parse("*/0 * * * *").unwrap_err(),
            "step of range should be a positive number: */0"
        );
        assert_eq!(
            parse("1-2-3 * * * *").unwrap_err(),
            "too many hyphens: 1-2-3"
        );
        assert_eq!(
            parse("*/2/3 * * * *").unwrap_err(),
            "too many slashes: */2/3"
        );
        assert_eq!(
            parse("x * * * *").unwrap_err(),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }
}
