//! The dashboard session cookie: `{expiry}.{HMAC-SHA256(expiry)}` keyed by a
//! hash of the admin token. The token itself never goes into the cookie;
//! changing the token ends every session; any process with the same token
//! accepts it (no session table).

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub const COOKIE_NAME: &str = "atlasgate_admin";
pub const SESSION_SECS: i64 = 8 * 3600;

fn mac_key(token: &SecretString) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"atlasgate admin session v1\0");
    h.update(token.expose_secret().as_bytes());
    h.finalize().into()
}

fn sign(token: &SecretString, expiry: i64) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&mac_key(token)).ok()?;
    mac.update(expiry.to_string().as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// A cookie value valid until `now + SESSION_SECS`.
pub fn issue(token: &SecretString, now: i64) -> Option<String> {
    let expiry = now + SESSION_SECS;
    sign(token, expiry).map(|sig| format!("{expiry}.{sig}"))
}

/// Whether a cookie value is authentic and unexpired (constant-time compare).
pub fn verify(token: &SecretString, value: &str, now: i64) -> bool {
    let Some((expiry, sig)) = value.split_once('.') else {
        return false;
    };
    let Ok(expiry_n) = expiry.parse::<i64>() else {
        return false;
    };
    if expiry_n <= now {
        return false;
    }
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&mac_key(token)) else {
        return false;
    };
    mac.update(expiry.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// The CSRF token of a session: an HMAC of the session cookie's value
/// under the same key, so it needs no storage and dies with the session.
/// Every dashboard form that changes something carries it; a cross-site
/// form cannot read it (the page is same-origin, never framed).
pub fn csrf_token(token: &SecretString, cookie_value: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&mac_key(token)).ok()?;
    mac.update(b"csrf\0");
    mac.update(cookie_value.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// Whether `given` is the CSRF token of the session `cookie_value` (constant time).
pub fn verify_csrf(token: &SecretString, cookie_value: &str, given: &str) -> bool {
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&mac_key(token)) else {
        return false;
    };
    mac.update(b"csrf\0");
    mac.update(cookie_value.as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cookies_verify_until_expiry_and_only_with_the_same_token() {
        let t = SecretString::from("admin-token-0123456789");
        let v = issue(&t, 1000).unwrap_or_default();
        assert!(verify(&t, &v, 1001));
        assert!(!verify(&t, &v, 1000 + SESSION_SECS));
        assert!(!verify(
            &SecretString::from("other-token-0123456789"),
            &v,
            1001
        ));
        assert!(!v.contains("admin-token"));
        let forged = format!(
            "{}.{}",
            1000 + SESSION_SECS * 10,
            v.split_once('.').map(|x| x.1).unwrap_or("")
        );
        assert!(!verify(&t, &forged, 1001));
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let t = SecretString::from("admin-token-0123456789");
        let a = issue(&t, 1000).unwrap_or_default();
        let b = issue(&t, 2000).unwrap_or_default();
        let csrf = csrf_token(&t, &a).unwrap_or_default();
        assert!(verify_csrf(&t, &a, &csrf));
        assert!(!verify_csrf(&t, &b, &csrf));
        assert!(!verify_csrf(&t, &a, ""));
        assert!(!verify_csrf(
            &SecretString::from("other-token-0123456789"),
            &a,
            &csrf
        ));
    }
}
