//! `POST /webhooks/jira` before anything is stored: `verify_jwt` on the
//! bearer token and the body → JSON → `hint_of` parse.
//!
//! Input: the first line is a bearer token, the rest is a body. Never
//! panics; a token that verifies has `iss` = the client id and a numeric
//! `exp`. When the body is a JSON object it is also signed as claims (with
//! `iss` and a future `exp` set): with the right secret it verifies and
//! comes back unchanged, with another secret it never verifies.
#![no_main]

use atlasgate_core::webhooks::{hint_of, verify_jwt};
use jsonwebtoken::{encode, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use serde_json::{json, Value};

const CLIENT_ID: &str = "fuzz-client";
const SECRET: &str = "fuzz-client-secret-0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let (token, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let secret = SecretString::from(SECRET);
    if let Ok(token) = std::str::from_utf8(token) {
        if let Ok(claims) = verify_jwt(token, CLIENT_ID, &secret) {
            assert_eq!(claims["iss"], CLIENT_ID);
            assert!(claims["exp"].is_number());
        }
    }
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if let Some(hint) = hint_of(&payload) {
        assert!(!hint.site.is_empty() && !hint.site.ends_with('/'));
        assert!(!hint.issue_id.is_empty());
    }
    if let Value::Object(mut claims) = payload {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() + 3600)
            .unwrap_or(u64::MAX / 2);
        claims.insert("iss".into(), json!(CLIENT_ID));
        claims.insert("exp".into(), json!(exp));
        // Registered claims of another type than the spec's are the sender's
        // mistake, refused by the validation: keep the signed case clean.
        for name in ["nbf", "aud", "sub"] {
            claims.remove(name);
        }
        let claims = Value::Object(claims);
        let token = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("HS256 signs any JSON");
        let back = verify_jwt(&token, CLIENT_ID, &secret).expect("a well-signed JWT verifies");
        // The claims as JSON text reads them (a float may move by one ULP).
        let sent: Value = serde_json::from_slice(&serde_json::to_vec(&claims).expect("JSON"))
            .expect("JSON reads back");
        assert_eq!(back, sent);
        let other = SecretString::from("another-secret-0123456789abcdef");
        assert!(verify_jwt(&token, CLIENT_ID, &other).is_err());
        assert!(verify_jwt(&token, "another-client", &secret).is_err());
    }
});
