//! atlassim's JQL parser (`atlassim::jql::parse`). Never panics; a query it
//! accepts prints (`Display`) as JQL that parses back to the same tree, as
//! `jql/tests.rs::printed_query_parses_back_to_the_same_tree` states for
//! generated trees; and the webhook-subset check runs on it.
#![no_main]

use atlassim::jql::{parse, webhook::subset_errors};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = parse(s) else {
        return;
    };
    let text = q.to_string();
    let back = parse(&text).unwrap_or_else(|e| panic!("{s:?} printed as {text:?}: {e}"));
    assert_eq!(back, q, "{s:?} printed as {text:?}");
    let _ = subset_errors(&q);
});
