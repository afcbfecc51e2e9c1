//! Calendar days and timestamps in UTC, from the `jiff` crate: the dates of the release
//! and CVE tables (`YYYY-MM-DD`), and Unix times as text (a certificate's validity, a
//! baseline's creation, a report's timestamp).

use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::SignedDuration;

/// Seconds in a day of Unix time (which has no leap seconds).
pub const SECS_PER_DAY: i64 = 86_400;

/// The Unix epoch, 1970-01-01T00:00:00 UTC.
const EPOCH: DateTime = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);

/// A calendar day (UTC, proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(Date);

impl Day {
    /// Parse `YYYY-MM-DD`: exactly that form (no sign, no `YYYYMMDD`, no time) and a real
    /// calendar date.
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        let shaped = b.len() == 10
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            });
        if !shaped {
            return None;
        }
        s.parse::<Date>().ok().map(Day)
    }

    /// The day a Unix timestamp (seconds) falls on.
    pub fn from_unix(secs: i64) -> Day {
        Day(utc(secs).date())
    }

    /// Midnight (UTC) at the start of the day, as a Unix timestamp.
    pub fn unix(self) -> i64 {
        self.0
            .to_datetime(jiff::civil::Time::midnight())
            .duration_since(EPOCH)
            .as_secs()
    }

    /// Days from this day to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Day) -> i64 {
        later.0.duration_since(self.0).as_secs() / SECS_PER_DAY
    }

    /// The year, e.g. 2026 (UTC, proleptic Gregorian).
    pub fn year(self) -> i16 {
        self.0.year()
    }

    /// 1 to 12.
    pub fn month(self) -> i8 {
        self.0.month()
    }

    /// 1 to 31.
    pub fn day(self) -> i8 {
        self.0.day()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%d"))
    }
}

/// The UTC date and time of a Unix timestamp (seconds), clamped to jiff's range (years
/// -9999 to 9999, wider than any X.509 time).
fn utc(secs: i64) -> DateTime {
    EPOCH
        .checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(if secs < 0 {
            DateTime::MIN
        } else {
            DateTime::MAX
        })
}

/// A Unix timestamp as RFC 3339 UTC (`2030-03-17T17:46:40Z`).
pub fn format_utc(secs: i64) -> String {
    format!("{}Z", utc(secs).strftime("%Y-%m-%dT%H:%M:%S"))
}

/// A Unix timestamp as the UTC date and time without an offset (`2024-05-01T12:00:00`),
/// the form of JUnit's `timestamp` attribute.
pub fn format_utc_civil(secs: i64) -> String {
    utc(secs).strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Whole seconds of a Unix time given as `f64` (rounded down): `as` saturates, so a time
/// out of range clamps to `i64::MIN`/`i64::MAX`; a NaN or infinite time is 0.
#[allow(clippy::cast_possible_truncation)] // saturating by the language's definition of `as`
pub fn whole_seconds(t: f64) -> i64 {
    if t.is_finite() {
        t.floor() as i64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_down_and_saturate() {
        assert_eq!(whole_seconds(1.9), 1);
        assert_eq!(whole_seconds(-0.5), -1);
        assert_eq!(whole_seconds(f64::NAN), 0);
        assert_eq!(whole_seconds(f64::INFINITY), 0);
        assert_eq!(whole_seconds(1e30), i64::MAX);
        assert_eq!(whole_seconds(-1e30), i64::MIN);
    }

    #[test]
    fn days() {
        assert_eq!(Day::parse("1970-01-01"), Some(Day::from_unix(0)));
        assert_eq!(Day::parse("2000-03-01").unwrap().to_string(), "2000-03-01");
        assert_eq!(Day::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2025-13-01",
            "2025-00-10",
            "2025-1-01",
            "+025-01-01",
            "2025/01/01",
            "",
            "20250101",
            "2025-01-01T00:00:00",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
        // Every day for 200 years round-trips.
        for d in -20_000..60_000 {
            let day = Day::from_unix(d * SECS_PER_DAY);
            assert_eq!(Day::parse(&day.to_string()), Some(day));
        }
        assert_eq!(Day::from_unix(-1).to_string(), "1969-12-31");
        assert_eq!(
            Day::parse("2030-03-17").unwrap().unix(),
            1_900_000_000 - 64_000
        );
        assert_eq!(Day::from_unix(-1).unix(), -SECS_PER_DAY);
        let leap = Day::parse("2024-02-28").unwrap();
        assert_eq!(leap.days_until(Day::parse("2024-03-01").unwrap()), 2);
        assert_eq!(Day::parse("2025-03-01").unwrap().days_until(leap), -367);
        assert_eq!(Day::from_unix(1_700_000_000).to_string(), "2023-11-14");
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_utc(1_900_000_000), "2030-03-17T17:46:40Z");
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
        // X.509's "no well-defined expiration date" (99991231235959Z), and year 0000.
        assert_eq!(format_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_utc(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(format_utc_civil(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc_civil(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_utc_civil(1_714_564_800), "2024-05-01T12:00:00");
        assert_eq!(format_utc_civil(-1), "1969-12-31T23:59:59");
    }
}
