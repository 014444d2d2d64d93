//! How refusals show amounts and times: base units in token units ([`Units`]) and Unix seconds
//! as RFC 3339 UTC ([`Utc`]), without a date crate.

use std::fmt;

/// Base units shown in token units: `Units(1_500_000, 6)` is `1.5`.
pub(crate) struct Units(pub(crate) u128, pub(crate) u8);

impl fmt::Display for Units {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10u128.checked_pow(u32::from(self.1)).unwrap_or(1);
        let (whole, frac) = (self.0 / scale, self.0 % scale);
        if frac == 0 || scale == 1 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:0width$}", width = usize::from(self.1));
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Unix seconds shown as RFC 3339 UTC, `2026-12-07T10:00:00Z`. (Years past 9999 print with
/// more digits; no `u64` second is before 1970.)
pub(crate) struct Utc(pub(crate) u64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, secs) = (self.0 / 86_400, self.0 % 86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// The proleptic Gregorian date `days` days after 1970-01-01, as (year, month 1-12, day
/// 1-31). Howard Hinnant's `civil_from_days`, for days on or after the epoch: eras of 400
/// years (146 097 days) counted from 0000-03-01, so that the leap day ends a year.
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days since 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leap(y: u64) -> bool {
        y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
    }

    fn month_len(y: u64, m: u64) -> u64 {
        match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn civil_dates_walk_the_calendar_day_by_day() {
        // Every day from 1970 to past 2400 (a 400-year cycle and both kinds of century).
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..(440 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert!(y > 2400);
    }

    #[test]
    fn rfc3339_utc() {
        for (t, s) in [
            (0, "1970-01-01T00:00:00Z"),
            (86_399, "1970-01-01T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (4_107_456_000, "2100-02-28T00:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (253_402_300_800, "10000-01-01T00:00:00Z"),
        ] {
            assert_eq!(Utc(t).to_string(), s, "{t}");
        }
        // The largest second does not overflow.
        assert!(Utc(u64::MAX).to_string().ends_with('Z'));
    }

    #[test]
    fn units() {
        for (v, dec, s) in [
            (0, 6, "0"),
            (1, 6, "0.000001"),
            (1_500_000, 6, "1.5"),
            (10_000_000, 6, "10"),
            (9_800_000, 6, "9.8"),
            (7, 0, "7"),
            (u128::MAX, 6, "340282366920938463463374607431768.211455"),
            (5, 255, "5"),
        ] {
            assert_eq!(Units(v, dec).to_string(), s);
        }
    }
}
