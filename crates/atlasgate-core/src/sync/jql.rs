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
    let local = match fixed_offset_secs(time_zone) {
        Some(secs) => t + Duration::seconds(secs),
        None => t - Duration::hours(14),
    };
    local.format("%Y-%m-%d %H:%M").to_string()
}

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
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?),
        None if rest.len() == 4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        None => (rest.parse().ok()?, 0),
    };
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
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
