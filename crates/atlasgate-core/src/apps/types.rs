//! Newtypes that only hold valid values: names, keys, secrets, origins.

use std::fmt;

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use url::Url;

pub const API_KEY_PREFIX: &str = "agk_";
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// `agk_` + 64 hex digits (32 random bytes).
pub struct ApiKey(SecretString);

impl ApiKey {
    pub fn generate() -> ApiKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        ApiKey(SecretString::from(format!(
            "{API_KEY_PREFIX}{}",
            hex::encode(bytes)
        )))
    }

    /// The key in clear: only for showing it once at creation.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the database stores.
    pub fn hash(&self) -> String {
        hash_key(self.expose())
    }

    /// The first 8 random digits with the `agk_` prefix: enough to tell
    /// keys apart in a list, far too little to guess the rest (32 bits of 256).
    pub fn prefix(&self) -> String {
        self.expose()
            .chars()
            .take(API_KEY_PREFIX.len() + 8)
            .collect()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// SHA-256 hex. Keys are 256-bit random, so a plain hash is enough (no
/// password-style stretching needed) and lookups stay one indexed query.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `whsec_` + base64 of 32 random bytes: the Standard Webhooks secret format,
/// which the official `standardwebhooks` libraries accept as is.
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub fn generate() -> WebhookSecret {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        WebhookSecret(SecretString::from(format!("{WEBHOOK_SECRET_PREFIX}{b64}")))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// 1–100 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName(String);

impl AppName {
    pub fn parse(s: &str) -> Result<AppName, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > 100 {
            return Err("must be at most 100 characters".into());
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(AppName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `scheme://host[:port]` — no path, query, fragment or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnOrigin(String);

impl ReturnOrigin {
    pub fn parse(s: &str) -> Result<ReturnOrigin, String> {
        let url = Url::parse(s).map_err(|_| format!("`{s}` is not scheme://host[:port]"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{s}` must use http or https"));
        }
        if url.host_str().is_none() {
            return Err(format!("`{s}` has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{s}` must not contain credentials"));
        }
        if url.query().is_some()
            || url.fragment().is_some()
            || !matches!(url.path(), "" | "/")
            || s.trim_end_matches('/').matches('/').count() != 2
        {
            return Err(format!(
                "`{s}` must be only scheme://host[:port], without a path"
            ));
        }
        Ok(ReturnOrigin(url.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `url` has exactly this origin.
    pub fn matches(&self, url: &Url) -> bool {
        url.origin().ascii_serialization() == self.0
    }
}

impl fmt::Display for ReturnOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute http(s) URL for event deliveries.
pub fn parse_webhook_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("`{s}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{s}` must be an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{s}` must not contain credentials"));
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            ReturnOrigin::parse("https://app.example.com")
                .unwrap()
                .as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            ReturnOrigin::parse("http://localhost:3000/")
                .unwrap()
                .as_str(),
            "http://localhost:3000"
        );
        assert!(ReturnOrigin::parse("https://app.example.com/path").is_err());
        assert!(ReturnOrigin::parse("ftp://x").is_err());
        assert!(ReturnOrigin::parse("app.example.com").is_err());
        assert!(ReturnOrigin::parse("https://u:p@x.com").is_err());
    }

    #[test]
    fn keys_have_prefixes_and_redacted_debug() {
        let k = ApiKey::generate();
        assert!(k.expose().starts_with("agk_"));
        assert_eq!(k.expose().len(), 4 + 64);
        assert!(!format!("{k:?}").contains(&k.expose()[4..]));
        assert!(WebhookSecret::generate().expose().starts_with("whsec_"));
    }

    proptest::proptest! {
        #[test]
        fn parsed_origins_are_bare_origins(s in "\\PC{0,60}") {
            if let Ok(o) = ReturnOrigin::parse(&s) {
                let u = Url::parse(o.as_str()).unwrap();
                proptest::prop_assert!(matches!(u.scheme(), "http" | "https"));
                proptest::prop_assert_eq!(u.path(), "/");
                proptest::prop_assert!(u.query().is_none() && u.fragment().is_none());
                proptest::prop_assert!(o.matches(&u));
            }
        }

        #[test]
        fn origins_accept_host_and_port(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,6}){0,2}", port in proptest::option::of(1u16..)) {
            let s = match port { Some(p) => format!("https://{host}:{p}"), None => format!("https://{host}") };
            let o = ReturnOrigin::parse(&s).unwrap();
            let inside = Url::parse(&format!("{s}/callback?x=1")).unwrap();
            proptest::prop_assert!(o.matches(&inside));
        }
    }
}
