//! `atlasgate.toml`: `parse_file`, then the merge and the validation every
//! command runs (`Settings::merge(…).resolve()`, `into_config`) and the
//! report `check-config` prints. Never panics; the report names every
//! setting; and no secret of the file (client secret, admin token,
//! encryption keys) appears in the report.
#![no_main]

use atlasgate_core::config::{parse_file, Overrides, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = parse_file(text) else {
        return;
    };
    let secrets: Vec<String> = [
        file.atlassian
            .as_ref()
            .and_then(|a| a.client_secret.clone()),
        file.admin_token.clone(),
        file.encryption_keys.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    // The same file without its secrets: what the report may legitimately echo.
    let mut others = parse_file(text).expect("parsed once");
    others.admin_token = None;
    others.encryption_keys = None;
    if let Some(a) = others.atlassian.as_mut() {
        a.client_secret = None;
    }
    let others = format!("{others:?}");
    let resolved = Settings::merge(&Overrides::default(), &|_| None, file).resolve();
    let report = resolved.report.to_string();
    assert!(report.contains("ATLASGATE_DATABASE_URL"));
    for s in &secrets {
        if s.len() >= 12
            && !others.contains(s.as_str())
            && !SHOWN.iter().any(|w| w.contains(s.as_str()))
        {
            assert!(
                !report.contains(s.as_str()),
                "a secret of {} characters is in the report",
                s.len()
            );
        }
    }
    let _ = resolved.into_config();
});

/// Words the report prints whatever the file says.
const SHOWN: &[&str] = &[
    "ATLASGATE_ENCRYPTION_KEYS",
    "ATLASGATE_ADMIN_TOKEN",
    "ATLASGATE_CLIENT_SECRET",
];
