//! UTC times for run ids, manifests and JSON logs, computed from the system clock without
//! a calendar crate (Howard Hinnant's days-to-civil algorithm).

use std::time::SystemTime;

/// `YYYYMMDDTHHMMSS.mmmZ` (UTC): sortable to the millisecond, and safe in a file name.
pub fn run_time(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{ms:03}Z")
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, RFC 3339).
pub fn run_time_readable(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// UTC calendar date and time of `t` (Howard Hinnant's days-to-civil algorithm).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: a log event's time.
pub fn log_time(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate), as a time;
/// None for anything else (the obsolete forms are not worth a guess).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let (_, rest) = s.trim().split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x == month)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&d) || *h > 23 || *mi > 59 || *sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant), the inverse of `civil`.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn run_times_are_utc_and_sortable() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_737_600 + 3_723);
        assert_eq!(run_time(t), "20261127T010203.000Z");
        assert_eq!(run_time_readable(t), "2026-11-27T01:02:03Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(run_time_readable(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn http_dates_round_trip() {
        let t = parse_http_date("Fri, 27 Nov 2026 01:02:03 GMT").unwrap();
        assert_eq!(run_time_readable(t), "2026-11-27T01:02:03Z");
        let leap = parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT").unwrap();
        assert_eq!(run_time_readable(leap), "2000-02-29T00:00:00Z");
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("120"), None);
    }
}
