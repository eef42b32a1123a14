//! Which app-supplied proxy paths may leave the building.
//!
//! The proxy appends the app's path to `/ex/{product}/{cloud_id}/`. Anything
//! that could make the final URL point elsewhere — another cloud id, another
//! gateway prefix, another host — is refused before a byte is sent. We check
//! the *raw* (still percent-encoded) path, because that is what goes out.
//!
//! The check is an allowlist (docs/security.md, "Proxy paths"): a raw path
//! holds only RFC 3986 unreserved characters, the sub-delimiters Jira and
//! Confluence paths use (`! $ & ' ( ) * + , =`), `:` and `@` (both further
//! restricted below), `/` between segments, and well-formed `%XX` escapes.
//! Every decoded form of a segment (up to three rounds: `%252e` is `%2e` to
//! a server that decodes twice) holds only printable ASCII other than `/`,
//! `\`, `;`, `?` and `#`, and is not made of dots alone. So no `;` (path
//! parameters, `..;/` tricks), no raw or encoded non-ASCII (Unicode
//! look-alikes of `.` and `/` such as U+2024, U+FF0E, U+2215 and U+FF0F
//! that some servers fold into the real thing), and no control characters.

use percent_encoding::percent_decode_str;

/// A path below a site base that is safe to append to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafePath {
    #[error("the path is empty")]
    Empty,
    #[error("the path contains a segment made only of dots, such as `.` or `..` (also when percent-encoded)")]
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
    #[error("the path contains a character outside the allowed set (ASCII letters, digits, `-._~!$&'()*+,=:@`, `/` and %-escapes of printable ASCII other than `/\\;?#`)")]
    Disallowed,
}

/// Characters a raw path may hold besides `/` and `%XX`.
fn allowed_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

/// Characters a decoded segment may hold: printable ASCII and the space,
/// minus what would split a path or start parameters, a query or a fragment.
fn allowed_decoded(c: char) -> bool {
    (' '..='~').contains(&c) && !matches!(c, '/' | '\\' | ';' | '?' | '#')
}

/// Decode up to three times: `%252e` is `%2e` to a server that decodes twice.
/// Bytes that are not UTF-8 become U+FFFD, which no allowlist admits.
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

/// `.`, `..`, `...`, also with spaces around (some servers trim them).
fn dots_only(form: &str) -> bool {
    let t = form.trim_matches(' ');
    !t.is_empty() && t.bytes().all(|b| b == b'.')
}

impl ProxyPath {
    /// Check the raw path that follows `/proxy/{product}/`.
    pub fn parse(raw: &str) -> Result<ProxyPath, UnsafePath> {
        if raw.is_empty() {
            return Err(UnsafePath::Empty);
        }
        // The specific refusals first (their messages say more), then the
        // allowlist for everything else.
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(UnsafePath::Malformed);
        }
        if raw.contains('\\') {
            return Err(UnsafePath::EncodedSeparator);
        }
        if let Some(b) = raw
            .bytes()
            .find(|b| !(allowed_raw(*b) || *b == b'/' || *b == b'%'))
        {
            // `?` and `#` cannot reach here from a request path; from code
            // they would smuggle a query or a fragment.
            return Err(if matches!(b, b'?' | b'#') {
                UnsafePath::Malformed
            } else {
                UnsafePath::Disallowed
            });
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
                if dots_only(&form) {
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
                if !form.chars().all(allowed_decoded) {
                    return Err(UnsafePath::Disallowed);
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
            // What Jira paths really hold: keys, ids, custom fields, property
            // keys with dots, account ids with a colon, encoded names.
            "rest/api/3/field/customfield_10016/context",
            "rest/api/3/issue/ACME-1/properties/com.example.flag",
            "rest/api/3/user/properties/x~y",
            "rest/api/3/status/In%20Progress",
            "rest/api/2/universal_avatar/type/project/owner/10000",
            "wiki/rest/api/content/123/child/page",
            "rest/api/3/project/ACME/role/10002",
            "rest/api/3/user/5b10a2844c20165700ede21g:abc",
            "rest/api/3/dashboard/1/items/2/properties/a(b)*c+d,e=f!g$h&i'j",
            "rest/api/3/issue/ACME-1/properties/100%25",
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
            ("rest/x\u{1b}[2J", UnsafePath::Malformed),
            ("rest/%1b", UnsafePath::Malformed),
            ("rest/%7f", UnsafePath::Malformed),
            ("rest/...", UnsafePath::DotSegment),
            ("rest/..%20/x", UnsafePath::DotSegment),
            ("rest/%2e%2e%2e/x", UnsafePath::DotSegment),
            // Path parameters, raw or encoded (`..;/` reaches the parent on
            // servers that strip them).
            ("rest/..;/x", UnsafePath::Disallowed),
            ("rest/api;jsessionid=1/x", UnsafePath::Disallowed),
            ("rest/%3b/x", UnsafePath::Disallowed),
            // A query or fragment smuggled in an escape.
            ("rest/x%3fy", UnsafePath::Disallowed),
            ("rest/x%23y", UnsafePath::Disallowed),
            ("rest/x%253fy", UnsafePath::Disallowed),
            // Characters RFC 3986 does not allow raw.
            ("rest/a b", UnsafePath::Disallowed),
            ("rest/a\"b", UnsafePath::Disallowed),
            ("rest/<x>", UnsafePath::Disallowed),
            ("rest/{x}", UnsafePath::Disallowed),
            ("rest/a|b", UnsafePath::Disallowed),
            ("rest/`x`", UnsafePath::Disallowed),
            ("rest/a^b", UnsafePath::Disallowed),
            ("rest/[x]", UnsafePath::Disallowed),
            // Unicode look-alikes of `.` and `/`, raw and encoded.
            ("rest/\u{2024}\u{2024}/x", UnsafePath::Disallowed),
            ("rest/\u{ff0e}\u{ff0e}/x", UnsafePath::Disallowed),
            ("rest\u{2215}api", UnsafePath::Disallowed),
            ("rest\u{ff0f}api", UnsafePath::Disallowed),
            ("rest/%E2%80%A4%E2%80%A4/x", UnsafePath::Disallowed),
            ("rest/%EF%BC%8E%EF%BC%8E/x", UnsafePath::Disallowed),
            ("rest%E2%88%95api", UnsafePath::Disallowed),
            ("rest%EF%BC%8Fapi", UnsafePath::Disallowed),
            (
                "rest/%25EF%25BC%258E%25EF%25BC%258E/x",
                UnsafePath::Disallowed,
            ),
            // Overlong UTF-8 for `.` and `/`, and bytes that are not UTF-8.
            ("rest/%c0%ae%c0%ae/x", UnsafePath::Disallowed),
            ("rest%c0%afapi", UnsafePath::Disallowed),
            ("rest/%ff", UnsafePath::Disallowed),
            // Other non-ASCII.
            ("rest/api/3/status/%C3%BCber", UnsafePath::Disallowed),
            ("rest/api/3/status/über", UnsafePath::Disallowed),
        ] {
            assert_eq!(ProxyPath::parse(p), Err(want), "{p}");
        }
    }
}
