//! The CLI's clock, for the ages `describe` shows; the ages themselves are
//! rendered as the server's tables render them (`skiff_api::printers::age`).

pub(crate) use skiff_api::printers::age::{age, parse_timestamp};

/// Seconds since the Unix epoch, now; the one place the CLI reads the clock.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
