//! Markdown ⇄ ADF (`atlasgate_core::adf`). The first byte picks the mode:
//! even, the rest is Markdown: `markdown_to_adf` and `adf_to_markdown`
//! never panic, and md → ADF → md → ADF is stable (the second ADF equals the
//! first, the second Markdown the first), as `adf/tests.rs::check_stable`
//! states for its generated subset; odd, the rest is any JSON:
//! `adf_to_markdown` never panics, and the Markdown it renders converts.
#![no_main]

use atlasgate_core::adf::{adf_to_markdown, markdown_to_adf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        if let Ok(adf) = serde_json::from_slice::<serde_json::Value>(rest) {
            let md = adf_to_markdown(&adf);
            let _ = markdown_to_adf(&md);
        }
        return;
    }
    let Ok(md0) = std::str::from_utf8(rest) else {
        return;
    };
    let adf0 = markdown_to_adf(md0);
    let md1 = adf_to_markdown(&adf0);
    let adf1 = markdown_to_adf(&md1);
    let md2 = adf_to_markdown(&adf1);
    assert_eq!(md1, md2, "md0 = {md0:?}");
    assert_eq!(adf0, adf1, "md0 = {md0:?}\nmd1 = {md1:?}");
});
