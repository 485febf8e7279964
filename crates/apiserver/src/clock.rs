//! Time and randomness, injected so tests can fix them: the wall clock for
//! `creationTimestamp` and `deletionTimestamp` (skiff-api's [`Clock`]), and a
//! seeded generator for UIDs, generated names and allocations.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use skiff_api::clock::{Clock, SystemClock};

/// Formats a time as Kubernetes' `metav1.Time`: RFC 3339 in UTC, whole seconds
/// (`2024-05-01T12:00:00Z`).
/// Whole seconds since the Unix epoch on `clock` (a Table's ages).
pub(crate) fn unix_seconds(clock: &dyn Clock) -> i64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date, after Howard Hinnant's
/// `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The registry's random source: seeded, so a test can replay it.
pub(crate) struct Random(Mutex<StdRng>);

/// The characters Kubernetes uses for generated name suffixes (no vowels, no
/// look-alikes, so no words and no confusion).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Random {
    pub(crate) fn new(seed: Option<u64>) -> Random {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Random(Mutex::new(rng))
    }

    fn with<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut rng)
    }

    /// A random (version 4) UUID, as Kubernetes' object UIDs.
    pub(crate) fn uuid(&self) -> String {
        let mut bytes: [u8; 16] = self.with(|rng| rng.random());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    /// A five-character suffix for `metadata.generateName`.
    pub(crate) fn name_suffix(&self) -> String {
        self.with(|rng| {
            (0..5)
                .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
                .collect()
        })
    }

    /// A number in `0..n`.
    pub(crate) fn below(&self, n: u64) -> u64 {
        self.with(|rng| rng.random_range(0..n.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn uuids_are_version_4_and_names_use_kubernetes_alphabet() {
        let random = Random::new(Some(7));
        let uid = random.uuid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(uid, random.uuid());
        let suffix = random.name_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(suffix.bytes().all(|b| NAME_ALPHABET.contains(&b)));
    }
}
