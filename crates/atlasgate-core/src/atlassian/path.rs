//! Which app-supplied proxy paths may leave the building.
//!
//! The proxy appends the app's path to `/ex/{product}/{cloud_id}/`. Anything
//! that could make the final URL point elsewhere — another cloud id, another
//! gateway prefix, another host — is refused before a byte is sent. We check
//! the *raw* (still percent-encoded) path, because that is what goes out, and
//! we refuse encodings that some server along the way might decode into a
//! separator (`%2f`, `%5c`) or a dot segment (`%2e%2e`).

use percent_encoding::percent_decode_str;

/// A path below a site base that is safe to append to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafePath {
    #[error("the path is empty")]
    Empty,
    #[error("the path contains a `.` or `..` segment (also when percent-encoded)")]
    DotSegment,
    #[error("the path contains an encoded slash or backslash, or a backslash")]
    EncodedSeparator,
    #[error("the path contains an empty segment (`//`)")]
    EmptySegment,
    #[error("the path looks like an absolute URL or an authority (`scheme:`, `@`)")]
    Authority,
    #[error("the path must not address another gateway prefix (`ex/…`)")]
    GatewayPrefix,
    #[error("the path contains control characters or a malformed escape")]
    Malformed,
}

/// Decode up to three times: `%252e` is `%2e` to a server that decodes twice.
fn decoded_forms(seg: &str) -> Vec<String> {
    let mut out = vec![seg.to_string()];
    let mut cur = seg.to_string();
    for _ in 0..3 {
        let next = percent_decode_str(&cur).decode_utf8_lossy().into_owned();
        if next == cur {
            break;
        }
        out.push(next.clone());
        cur = next;
    }
    out
}

impl ProxyPath {
    /// Check the raw path that follows `/proxy/{product}/`.
    pub fn parse(raw: &str) -> Result<ProxyPath, UnsafePath> {
        if raw.is_empty() {
            return Err(UnsafePath::Empty);
        }
        if raw
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'#' || b == b'?')
        {
            return Err(UnsafePath::Malformed);
        }
        if raw.contains('\\') {
            return Err(UnsafePath::EncodedSeparator);
        }
        if raw.starts_with('/') {
            return Err(UnsafePath::EmptySegment);
        }
        // Malformed escapes (`%zz`, a trailing `%`) are refused: servers disagree on them.
        let bytes = raw.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'%'
                && !(i + 2 < bytes.len()
                    && bytes[i + 1].is_ascii_hexdigit()
                    && bytes[i + 2].is_ascii_hexdigit())
            {
                return Err(UnsafePath::Malformed);
            }
        }
        let segments: Vec<&str> = raw.split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            // A trailing slash is an empty last segment and harmless.
            if seg.is_empty() && !last {
                return Err(UnsafePath::EmptySegment);
            }
            for form in decoded_forms(seg) {
                if form.contains('/') || form.contains('\\') {
                    return Err(UnsafePath::EncodedSeparator);
                }
                if form == "." || form == ".." {
                    return Err(UnsafePath::DotSegment);
                }
                if form.chars().any(|c| c.is_control()) {
                    return Err(UnsafePath::Malformed);
                }
                if form.contains('@') || (i == 0 && form.contains(':')) {
                    return Err(UnsafePath::Authority);
                }
                if i == 0 && form.eq_ignore_ascii_case("ex") {
                    return Err(UnsafePath::GatewayPrefix);
                }
            }
        }
        Ok(ProxyPath(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_pass() {
        for p in [
            "rest/api/3/myself",
            "rest/api/3/issue/ACME-1",
            "rest/agile/1.0/board/1/sprint",
            "wiki/api/v2/spaces",
            "rest/api/3/search/jql",
            "rest/api/3/project/",
            "rest/api/3/user%20name",
        ] {
            assert!(ProxyPath::parse(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn tricks_are_refused() {
        for (p, want) in [
            ("", UnsafePath::Empty),
            ("rest/../../other/rest", UnsafePath::DotSegment),
            ("..", UnsafePath::DotSegment),
            ("rest/%2e%2e/x", UnsafePath::DotSegment),
            ("rest/.%2E/x", UnsafePath::DotSegment),
            ("rest/%252e%252e/x", UnsafePath::DotSegment),
            ("rest/./x", UnsafePath::DotSegment),
            ("rest%2fapi", UnsafePath::EncodedSeparator),
            ("rest%2Fapi", UnsafePath::EncodedSeparator),
            ("rest%5capi", UnsafePath::EncodedSeparator),
            ("rest\\api", UnsafePath::EncodedSeparator),
            ("/evil.example/x", UnsafePath::EmptySegment),
            ("rest//x", UnsafePath::EmptySegment),
            ("http:", UnsafePath::Authority),
            ("https:/evil.example", UnsafePath::Authority),
            ("user@evil.example/x", UnsafePath::Authority),
            ("rest/%40evil", UnsafePath::Authority),
            (
                "ex/jira/other-cloud/rest/api/3/myself",
                UnsafePath::GatewayPrefix,
            ),
            ("EX/confluence/x", UnsafePath::GatewayPrefix),
            ("rest/%00", UnsafePath::Malformed),
            ("rest/%zz", UnsafePath::Malformed),
            ("rest/%", UnsafePath::Malformed),
        ] {
            assert_eq!(ProxyPath::parse(p), Err(want), "{p}");
        }
    }
}
