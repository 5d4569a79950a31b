//! Timestamps as users and files write them.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

use crate::hash::truncate_for_error;

/// Why a text is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a timestamp: use RFC 3339 (2024-02-29T07:14:00Z), a date (2024-02-29) or epoch seconds")]
pub struct TimestampParseError(String);

/// Parses RFC 3339 (`2024-02-29T07:14:00Z`, with offset or fraction), `YYYY-MM-DD HH:MM:SS`
/// (taken as UTC), a bare date (midnight UTC), or epoch seconds (integer or with a fraction;
/// values above 10^11 are taken as epoch milliseconds).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, TimestampParseError> {
    let t = text.trim();
    let err = || TimestampParseError(truncate_for_error(text));
    if t.is_empty() {
        return Err(err());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        // Epoch seconds (or milliseconds), the common case of bulk files.
        let n: i64 = t.parse().map_err(|_| err())?;
        let ms = if n > 100_000_000_000 {
            Some(n)
        } else {
            n.checked_mul(1000)
        };
        return ms.and_then(DateTime::from_timestamp_millis).ok_or_else(err);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Utc.from_utc_datetime(&naive));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).ok_or_else(err)?));
    }
    if t.chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        if let Ok(secs) = t.parse::<f64>() {
            if !secs.is_finite() {
                return Err(err());
            }
            let ms = if secs.abs() > 1e11 {
                secs
            } else {
                secs * 1000.0
            };
            if ms.abs() > 1e16 {
                return Err(err());
            }
            return DateTime::from_timestamp_millis(ms.round() as i64).ok_or_else(err);
        }
    }
    Err(err())
}

/// `2024-02-29`: the date of `t` in UTC, as pages and compatibility answers show it. The same
/// text as `t.format("%Y-%m-%d")` without parsing a format string per call (issue 17: a page
/// of 100 rows formats some 300 dates).
pub fn ymd(t: DateTime<Utc>) -> String {
    let d = t.date_naive();
    match d.year() {
        y @ 0..=9999 => format!("{y:04}-{:02}-{:02}", d.month(), d.day()),
        _ => t.format("%Y-%m-%d").to_string(), // a sign and more digits
    }
}

/// `2024-02-29 07:14`: [`ymd`] with hours and minutes (UTC, no zone named).
pub fn ymd_hm(t: DateTime<Utc>) -> String {
    match t.year() {
        0..=9999 => format!("{} {:02}:{:02}", ymd(t), t.hour(), t.minute()),
        _ => t.format("%Y-%m-%d %H:%M").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let want = Utc.with_ymd_and_hms(2024, 2, 29, 7, 14, 0).unwrap();
        assert_eq!(parse_timestamp("2024-02-29T07:14:00Z").unwrap(), want);
        assert_eq!(parse_timestamp("2024-02-29T08:14:00+01:00").unwrap(), want);
        assert_eq!(parse_timestamp("2024-02-29 07:14:00").unwrap(), want);
        assert_eq!(parse_timestamp("1709190840").unwrap(), want);
        assert_eq!(parse_timestamp("1709190840000").unwrap(), want);
        assert_eq!(
            parse_timestamp("2024-02-29").unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap()
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
        assert!(parse_timestamp("1e400").is_err());
    }

    #[test]
    fn dates_match_strftime() {
        for t in [
            Utc.with_ymd_and_hms(2024, 2, 29, 7, 4, 0).unwrap(),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(0, 12, 31, 23, 59, 0).unwrap(),
            Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(12345, 6, 7, 8, 9, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
        ] {
            assert_eq!(ymd(t), t.format("%Y-%m-%d").to_string());
            assert_eq!(ymd_hm(t), t.format("%Y-%m-%d %H:%M").to_string());
        }
        assert_eq!(
            ymd(Utc.with_ymd_and_hms(2024, 2, 29, 7, 4, 0).unwrap()),
            "2024-02-29"
        );
    }
}
