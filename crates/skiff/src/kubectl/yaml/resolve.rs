//! Which plain scalars YAML 1.1 reads as something other than a string, as
//! go-yaml's resolver decides: nulls, booleans (`yes`, `on`, `y`), integers
//! in any base, floats, timestamps and sexagesimal numbers. kubectl's YAML
//! double-quotes a string exactly when its plain form would be read back as
//! one of these. See <https://yaml.org/type/>.
//!
//! # Caveats
//! Only the yes/no answer is computed; the values themselves are not built.

/// True when YAML 1.1, as go-yaml reads it, takes `text` unquoted for a
/// string rather than a null, bool, number or timestamp.
pub(crate) fn plain_reads_as_string(text: &str) -> bool {
    const RESERVED: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
        "on", "On", "ON", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off",
        "OFF", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    let Some(first) = text.chars().next() else {
        return false;
    };
    match first {
        'y' | 'Y' | 'n' | 'N' | 't' | 'T' | 'f' | 'F' | 'o' | 'O' | '~' => {
            !RESERVED.contains(&text)
        }
        '.' => !RESERVED.contains(&text) && !is_float(text),
        '+' | '-' | '0'..='9' => {
            if RESERVED.contains(&text) || is_timestamp(text) {
                return false;
            }
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            !is_int(&plain) && !is_float(&plain)
        }
        _ => true,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` succeeds.
fn is_int(s: &str) -> bool {
    let (sign, digits) = match s.as_bytes().first() {
        Some(b'+') | Some(b'-') => (Some(&s[..1]), &s[1..]),
        _ => (None, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = lower.strip_prefix("0o") {
        (8, octal)
    } else if let Some(binary) = lower.strip_prefix("0b") {
        (2, binary)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return false;
    }
    let Ok(magnitude) = u64::from_str_radix(body, radix) else {
        return false;
    };
    match sign {
        None => true,
        Some("+") => magnitude <= i64::MAX as u64,
        _ => magnitude <= i64::MAX as u64 + 1,
    }
}

/// The text matches go-yaml's float pattern
/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` and is finite.
fn is_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len() && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`: YAML 1.1's sexagesimal
/// numbers (`12:30`), which go-yaml still quotes.
pub(crate) fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (whole, fraction) = match s.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (s, None),
    };
    if fraction.is_some_and(|f| !f.chars().all(|c| c.is_ascii_digit() || c == '_')) {
        return false;
    }
    let mut parts = whole.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let mut sixties = 0;
    for part in parts {
        let ok = match part.as_bytes() {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
        sixties += 1;
    }
    head_ok && sixties > 0
}

/// go-yaml's timestamps: `2006-1-2`, `2006-1-2T15:4:5.999999999Z07:00` (or
/// with `t`), and `2006-1-2 15:4:5.999999999`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    // One or two digits, within `max`.
    let number = |i: &mut usize, max: u32| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < 2 && b[*i].is_ascii_digit() {
            *i += 1;
        }
        let n: u32 = s.get(start..*i)?.parse().ok()?;
        (*i > start && n <= max).then_some(n)
    };
    let expect = |i: &mut usize, c: u8| -> Option<()> { (b.get(*i) == Some(&c)).then(|| *i += 1) };
    let parse = || -> Option<()> {
        if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
            return None;
        }
        let year: u32 = s[..4].parse().ok()?;
        let mut i = 5;
        let month = number(&mut i, 12).filter(|&m| m >= 1)?;
        expect(&mut i, b'-')?;
        let day = number(&mut i, 31).filter(|&d| d >= 1)?;
        let leap =
            year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day > days {
            return None;
        }
        if i == b.len() {
            return Some(());
        }
        let separator = b[i];
        if !matches!(separator, b'T' | b't' | b' ') {
            return None;
        }
        i += 1;
        number(&mut i, 23)?;
        expect(&mut i, b':')?;
        number(&mut i, 59)?;
        expect(&mut i, b':')?;
        number(&mut i, 59)?;
        if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            let start = i;
            while i < b.len() && i - start < 9 && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        if separator == b' ' {
            return (i == b.len()).then_some(());
        }
        match b.get(i) {
            Some(b'Z') => i += 1,
            Some(b'+' | b'-') => {
                let zone = &b[i + 1..];
                let ok = zone.len() >= 5
                    && zone[..2].iter().all(u8::is_ascii_digit)
                    && zone[2] == b':'
                    && zone[3..5].iter().all(u8::is_ascii_digit);
                if !ok {
                    return None;
                }
                i += 6;
            }
            _ => return None,
        }
        (i == b.len()).then_some(())
    };
    parse().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_go_yamls_four_layouts() {
        for stamp in [
            "2024-01-02",
            "2024-1-2",
            "2024-02-29",
            "2024-01-02T03:04:05Z",
            "2024-01-02t3:4:5.123456789+01:00",
            "2024-01-02 03:04:05.5",
        ] {
            assert!(is_timestamp(stamp), "{stamp}");
        }
        for not in [
            "2023-02-29",
            "2024-13-01",
            "24-01-02",
            "2024-01-02T03:04:05",
            "2024-01-02 03:04:05Z",
            "2024-01-02T24:00:00Z",
            "2024-001-02",
        ] {
            assert!(!is_timestamp(not), "{not}");
        }
    }

    #[test]
    fn integers_are_read_in_every_base_go_reads() {
        for int in [
            "0",
            "-12",
            "+12",
            "0x1F",
            "0o17",
            "017",
            "0b101",
            "18446744073709551615",
        ] {
            assert!(is_int(int), "{int}");
        }
        for not in ["0x", "08", "1e3", "-18446744073709551615", "1.0", "+"] {
            assert!(!is_int(not), "{not}");
        }
        assert!(is_base60_float("190:20:30") && is_base60_float("-1:2.5"));
        assert!(!is_base60_float("1:60") && !is_base60_float("a:1"));
    }
}
