//! `ProxyPath::parse`, the check every `/proxy/{product}/…` path passes
//! before it is appended to `/ex/{product}/{cloud_id}/`. Never panics; and a
//! path it accepts, joined to the gateway base as the Atlassian client joins
//! it, stays on the same host, below the same cloud id, without a query or
//! a fragment.
#![no_main]

use atlasgate_core::atlassian::path::ProxyPath;
use libfuzzer_sys::fuzz_target;

const BASE: &str = "https://api.atlassian.com/ex/jira/11111111-2222-3333-4444-555555555555/";

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = ProxyPath::parse(raw) else {
        return;
    };
    assert_eq!(path.as_str(), raw);
    let url =
        url::Url::parse(&format!("{BASE}{}", path.as_str())).expect("an accepted path makes a URL");
    assert_eq!(url.host_str(), Some("api.atlassian.com"), "{raw:?}");
    assert!(
        url.path()
            .starts_with("/ex/jira/11111111-2222-3333-4444-555555555555/"),
        "{raw:?} -> {url}"
    );
    assert!(
        url.query().is_none() && url.fragment().is_none(),
        "{raw:?} -> {url}"
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?} -> {url}"
    );
    // The URL parser normalises nothing away: what is sent is what was checked.
    assert_eq!(url.as_str(), format!("{BASE}{raw}"), "{raw:?}");
});
