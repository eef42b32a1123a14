//! The little JQL handling sync needs: split off `ORDER BY`, and write a date
//! bound the way Jira reads it (`"yyyy-MM-dd HH:mm"` in the user's zone).

use chrono::{DateTime, Duration, Utc};

/// `(filter, order_by)` of a JQL text: the top-level `ORDER BY` (outside
/// quotes and parentheses) split off, both trimmed.
pub fn split_order_by(jql: &str) -> (&str, Option<&str>) {
    let bytes = jql.as_bytes();
    let lower = jql.to_ascii_lowercase();
    let lb = lower.as_bytes();
    let mut quote: Option<u8> = None;
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match lb[i] {
                b'"' | b'\'' => quote = Some(c),
                b'(' => depth += 1,
                b')' => depth -= 1,
                b'o' if depth == 0 && lb[i..].starts_with(b"order") => {
                    let before_ok =
                        i == 0 || !lb[i - 1].is_ascii_alphanumeric() && lb[i - 1] != b'_';
                    let rest = &lower[i + 5..];
                    let trimmed = rest.trim_start();
                    if before_ok
                        && rest.len() > trimmed.len()
                        && trimmed.starts_with("by")
                        && trimmed[2..].starts_with(|c: char| c.is_whitespace())
                    {
                        let by_end = i + 5 + (rest.len() - trimmed.len()) + 2;
                        return (jql[..i].trim(), Some(jql[by_end..].trim()));
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    (jql.trim(), None)
}

/// A lower bound `updated >= "<this>"` that is never later than `ms`.
///
/// Jira reads JQL dates in the searching user's time zone (`/myself`
/// `timeZone`) at minute precision. UTC and fixed offsets are converted
/// exactly (the minute is floored); for a named zone we cannot resolve
/// without a zone database we step back 14 hours — the widest offset there
/// is — so the bound is early (more overlap), never late (a gap).
pub fn date_bound(ms: i64, time_zone: &str) -> String {
    let t: DateTime<Utc> = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let shift = match fixed_offset_secs(time_zone) {
        Some(secs) => Duration::seconds(secs),
        None => -Duration::hours(14),
    };
    // At the very ends of chrono's range the shift overflows: staying on `t`
    // (a forward shift) or the earliest instant (a backward one) is still
    // never late.
    let local = t
        .checked_add_signed(shift)
        .unwrap_or(if shift > Duration::zero() {
            t
        } else {
            DateTime::<Utc>::MIN_UTC
        });
    local.format("%Y-%m-%d %H:%M").to_string()
}

/// `UTC`, `+05:30`, `UTC-0530`, `GMT+5` and the like as seconds east of UTC;
/// `None` for anything else (a named zone, or text that is not an offset).
///
/// Parsed by `char`, never by byte index: the zone comes from the site
/// (`/myself` `timeZone`), so any UTF-8 may arrive. Only ASCII digits count,
/// so `"+-05"` or full-width digits are not an offset (a sign inside the
/// number could otherwise flip the offset and make the bound late).
fn fixed_offset_secs(tz: &str) -> Option<i64> {
    let tz = tz.trim();
    if matches!(
        tz,
        "" | "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z" | "Universal" | "Zulu" | "Etc/Universal"
    ) {
        return Some(0);
    }
    let s = tz
        .strip_prefix("UTC")
        .or_else(|| tz.strip_prefix("GMT"))
        .unwrap_or(tz);
    let (sign, rest) = if let Some(rest) = s.strip_prefix('+') {
        (1, rest)
    } else if let Some(rest) = s.strip_prefix('-') {
        (-1, rest)
    } else {
        return None;
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (digits(h)?, digits(m)?),
        None if rest.chars().count() == 4 => {
            let (h, m) = rest.split_at(rest.char_indices().nth(2)?.0);
            (digits(h)?, digits(m)?)
        }
        None => (digits(rest)?, 0),
    };
    // UTC+14 (Kiribati) is the easternmost offset there is; anything beyond
    // is not a real zone, and taking it would make the bound late.
    (m < 60 && h * 60 + m <= 14 * 60).then_some(sign * (h * 3600 + m * 60))
}

/// One or two ASCII digits.
fn digits(s: &str) -> Option<i64> {
    let ok = (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

/// Jira's order of issue keys: project key, then number.
pub fn key_order(key: &str) -> (String, u64) {
    match key.rsplit_once('-') {
        Some((p, n)) => (p.to_string(), n.parse().unwrap_or(0)),
        None => (key.to_string(), 0),
    }
}

/// Jira's `2026-01-01T12:00:00.000+0000` → unix milliseconds.
pub fn parse_jira_time(s: &str) -> Option<i64> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_by_is_split_at_top_level_only() {
        assert_eq!(
            split_order_by("project = A ORDER BY key"),
            ("project = A", Some("key"))
        );
        assert_eq!(
            split_order_by("summary ~ \"order by x\""),
            ("summary ~ \"order by x\"", None)
        );
        assert_eq!(
            split_order_by("project = A order   by updated DESC"),
            ("project = A", Some("updated DESC"))
        );
        assert_eq!(
            split_order_by("project = ordering"),
            ("project = ordering", None)
        );
        assert_eq!(split_order_by("ORDER BY key"), ("", Some("key")));
    }

    #[test]
    fn date_bounds_are_never_late() {
        // 2026-01-01 12:34:56.789 UTC
        let ms = 1_767_270_896_789;
        assert_eq!(date_bound(ms, "UTC"), "2026-01-01 12:34");
        assert_eq!(date_bound(ms, "+02:00"), "2026-01-01 14:34");
        assert_eq!(date_bound(ms, "UTC-05:30"), "2026-01-01 07:04");
        assert_eq!(date_bound(ms, "Europe/Berlin"), "2025-12-31 22:34");
        assert_eq!(date_bound(ms, "GMT+5"), "2026-01-01 17:34");
        assert_eq!(date_bound(ms, "-0530"), "2026-01-01 07:04");
    }

    /// Offsets that are not ASCII digits (a site may send any UTF-8) are
    /// treated like a named zone: 14 hours back, not a panic.
    #[test]
    fn non_ascii_offsets_fall_back_to_the_widest_zone() {
        let ms = 1_767_270_896_789;
        let widest = date_bound(ms, "Europe/Berlin");
        for tz in [
            "+0é:00",
            "UTC+０５",
            "+0é1",
            "+é",
            "GMT-é0:00",
            "+05:é",
            "+１２３４",
            "+-05:00",
            "--14",
            "+5:-3",
            "+005",
            "é",
            "+",
            "+14:30",
            "+15",
        ] {
            assert_eq!(date_bound(ms, tz), widest, "{tz:?}");
        }
    }

    #[test]
    fn out_of_range_times_do_not_panic() {
        let max = DateTime::<Utc>::MAX_UTC.timestamp_millis();
        let min = DateTime::<Utc>::MIN_UTC.timestamp_millis();
        assert_eq!(date_bound(max, "+14:00"), date_bound(max, "UTC"));
        assert_eq!(date_bound(min, "Europe/Berlin"), date_bound(min, "UTC"));
        assert_eq!(date_bound(i64::MAX, "UTC"), "1970-01-01 00:00");
    }

    /// Early in 9999, so `+14:00` still renders a four-digit year and the
    /// rendered bounds compare as text.
    const YEAR_9999: i64 = 253_370_764_800_000;

    proptest::proptest! {
        /// Any text as a zone: no panic, and never later than the
        /// easternmost real offset (UTC+14) would put it.
        #[test]
        fn date_bound_never_panics_and_is_never_late(
            ms in 0i64..YEAR_9999,
            tz in proptest::prelude::any::<String>(),
        ) {
            let bound = date_bound(ms, &tz);
            proptest::prop_assert!(bound <= date_bound(ms, "+14:00"), "{tz:?} gave {bound}");
        }

        #[test]
        fn offsets_of_any_shape_never_panic(
            tz in "(UTC|GMT)?[+-]?[0-9é０-９:+-]{0,6}",
            ms in 0i64..YEAR_9999,
        ) {
            let bound = date_bound(ms, &tz);
            proptest::prop_assert!(bound <= date_bound(ms, "+14:00"), "{tz:?} gave {bound}");
        }

        #[test]
        fn any_instant_never_panics(
            ms in proptest::prelude::any::<i64>(),
            tz in "(UTC)?[+-][0-9]{1,2}(:[0-9]{2})?|[A-Za-z/]{0,12}",
        ) {
            let _ = date_bound(ms, &tz);
        }
    }

    #[test]
    fn jira_times_parse() {
        assert_eq!(
            parse_jira_time("2026-01-01T12:34:56.789+0000"),
            Some(1_767_270_896_789)
        );
        assert_eq!(
            parse_jira_time("2026-01-01T13:34:56.789+0100"),
            Some(1_767_270_896_789)
        );
    }

    #[test]
    fn keys_order_by_number() {
        assert!(key_order("AB-9") < key_order("AB-10"));
    }
}
