//! Resource quantities (`500m`, `1.5Gi`, `2e3`), as Kubernetes'
//! `resource.Quantity` reads them, reduced to a number of nano-units so two
//! quantities can be compared exactly.

/// The message Kubernetes gives for text that is not a quantity.
pub(crate) const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The quantity in billionths of a unit (`1m` = 1_000_000), rounded up;
/// `None` when the text is not a quantity or does not fit.
pub fn parse_nanos(text: &str) -> Option<i128> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // The value is digits × 10^exp10 × 2^exp2.
    let digits = format!("{whole}{fraction}");
    let mut exp10: i32 = -(fraction.len() as i32);
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            exp10 += exponent.parse::<i32>().ok()?;
        }
    }
    let mut value: i128 = digits.trim_start_matches('0').parse().unwrap_or(0);
    value = value.checked_mul(1i128.checked_shl(exp2)?)?;
    // Scale to nano-units: multiply by 10^(exp10 + 9), rounding a remainder up.
    let scale = exp10 + 9;
    if scale >= 0 {
        value = value.checked_mul(10i128.checked_pow(scale as u32)?)?;
    } else {
        let divisor = 10i128
            .checked_pow(scale.unsigned_abs())
            .unwrap_or(i128::MAX);
        value = value / divisor + i128::from(value % divisor != 0);
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_scale_the_number() {
        assert_eq!(parse_nanos("1"), Some(1_000_000_000));
        assert_eq!(parse_nanos("500m"), Some(500_000_000));
        assert_eq!(parse_nanos("0.5"), Some(500_000_000));
        assert_eq!(parse_nanos("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(parse_nanos("1.5Gi"), Some(1_610_612_736 * 1_000_000_000));
        assert_eq!(parse_nanos("2k"), parse_nanos("2e3"));
        assert_eq!(parse_nanos("1E-3"), parse_nanos("1m"));
        assert_eq!(parse_nanos("-1"), Some(-1_000_000_000));
        assert_eq!(parse_nanos("1n"), Some(1));
        assert_eq!(
            parse_nanos("0.1n"),
            Some(1),
            "fractions of the smallest unit round up"
        );
    }

    #[test]
    fn garbage_is_not_a_quantity() {
        for text in ["", "abc", "1x", "1.2.3", ".", "1e", "1Kii", "m"] {
            assert_eq!(parse_nanos(text), None, "{text:?}");
        }
    }
}
