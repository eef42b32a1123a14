//! Timestamps as the API writes them.

/// Unix seconds → RFC 3339 (UTC), the form every API timestamp takes.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
