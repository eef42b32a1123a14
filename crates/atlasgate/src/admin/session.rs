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
}
