//! AES-256-GCM encryption of values stored in the database.
//!
//! Ciphertext layout (all of it goes into one BLOB/BYTEA column):
//!
//! ```text
//! [0x01 version][key id length: u8][key id][12-byte random nonce][ciphertext + 16-byte tag]
//! ```
//!
//! The associated data binds a value to its table, column, row id and key id,
//! so a ciphertext copied to another row or field — or relabelled with
//! another key id — does not decrypt.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const MAX_KEY_ID_LEN: usize = 32;

/// Where a ciphertext lives. A value only decrypts at the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl<'a> Aad<'a> {
    pub fn new(table: &'a str, column: &'a str, row_id: &'a str) -> Self {
        Aad {
            table,
            column,
            row_id,
        }
    }

    fn bytes(&self, key_id: &str) -> Vec<u8> {
        // NUL separators: ids and names never contain NUL, so no two
        // different places produce the same associated data.
        format!(
            "atlasgate:v{VERSION}\0{}\0{}\0{}\0{key_id}",
            self.table, self.column, self.row_id
        )
        .into_bytes()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("is empty; expected `ID:BASE64[,ID:BASE64…]` (`atlasgate keys generate` prints one)")]
    Empty,
    #[error("entry {index} has no `ID:` prefix; expected `ID:BASE64`")]
    MissingId { index: usize },
    #[error("entry {index}: key id `{id}` must be 1–32 letters, digits, `-` or `_`")]
    BadId { index: usize, id: String },
    #[error("entry {index} (key `{id}`) is not valid base64")]
    NotBase64 { index: usize, id: String },
    #[error("entry {index} (key `{id}`) decodes to {len} bytes; AES-256 needs 32")]
    WrongLength {
        index: usize,
        id: String,
        len: usize,
    },
    #[error("key id `{id}` appears more than once")]
    DuplicateId { id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext was encrypted with key `{0}`, which is not in ATLASGATE_ENCRYPTION_KEYS")]
    UnknownKey(String),
    /// Wrong key, wrong place (table/column/row), or tampered bytes.
    #[error("ciphertext does not decrypt here (wrong key, row or field, or tampered)")]
    Decrypt,
    #[error("value too large to encrypt")]
    TooLarge,
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
}

/// One named 256-bit key. `Debug` shows the id only.
pub struct EncryptionKey {
    id: String,
    key: SecretBox<[u8; KEY_LEN]>,
}

impl EncryptionKey {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A fresh random key; `to_entry()` prints it in keyring syntax.
    pub fn generate(id: impl Into<String>) -> EncryptionKey {
        let mut bytes = Box::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut());
        EncryptionKey {
            id: id.into(),
            key: SecretBox::new(bytes),
        }
    }

    /// `ID:BASE64` — the secret itself; only `keys generate` prints it.
    pub fn to_entry(&self) -> SecretString {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.key.expose_secret());
        SecretString::from(format!("{}:{b64}", self.id))
    }
}

impl Clone for EncryptionKey {
    fn clone(&self) -> Self {
        EncryptionKey {
            id: self.id.clone(),
            key: SecretBox::new(Box::new(*self.key.expose_secret())),
        }
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({})", self.id)
    }
}

/// `ATLASGATE_ENCRYPTION_KEYS`: the first key encrypts, all of them decrypt.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<EncryptionKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .finish()
    }
}

impl Keyring {
    /// Parse `k2:BASE64,k1:BASE64`. Errors name the entry, never its bytes.
    pub fn parse(s: &str) -> Result<Keyring, KeyringError> {
        let mut keys: Vec<EncryptionKey> = Vec::new();
        let entries: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (i, entry) in entries.iter().enumerate() {
            let index = i + 1;
            let (id, b64) = entry
                .split_once(':')
                .ok_or(KeyringError::MissingId { index })?;
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(KeyringError::BadId {
                    index,
                    id: id.chars().take(40).collect(),
                });
            }
            let bytes = Zeroizing::new(decode_base64(b64.trim()).ok_or_else(|| {
                KeyringError::NotBase64 {
                    index,
                    id: id.to_string(),
                }
            })?);
            if bytes.len() != KEY_LEN {
                return Err(KeyringError::WrongLength {
                    index,
                    id: id.to_string(),
                    len: bytes.len(),
                });
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::DuplicateId { id: id.to_string() });
            }
            let mut key = Box::new([0u8; KEY_LEN]);
            key.copy_from_slice(&bytes);
            keys.push(EncryptionKey {
                id: id.to_string(),
                key: SecretBox::new(key),
            });
        }
        Ok(Keyring { keys })
    }

    pub fn from_keys(keys: Vec<EncryptionKey>) -> Result<Keyring, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Keyring { keys })
    }

    /// A one-key ring with a random key (tests, `demo`).
    pub fn generate() -> Keyring {
        Keyring {
            keys: vec![EncryptionKey::generate(new_key_id())],
        }
    }

    pub fn primary_id(&self) -> &str {
        self.keys.first().map(|k| k.id.as_str()).unwrap_or("")
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[EncryptionKey] {
        &self.keys
    }

    /// The keyring in `ATLASGATE_ENCRYPTION_KEYS` syntax (a secret).
    pub fn to_env_value(&self) -> SecretString {
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.to_entry().expose_secret().to_string())
            .collect();
        SecretString::from(parts.join(","))
    }
}

/// `k` + UTC timestamp + 4 random hex digits: sorts by creation, never collides in practice.
pub fn new_key_id() -> String {
    let mut r = [0u8; 2];
    rand::rng().fill_bytes(&mut r);
    format!(
        "k{}{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        hex::encode(r)
    )
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// Encrypts with the keyring's first key, decrypts with any of them.
pub struct Cipher {
    keyring: Keyring,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("keys", &self.keyring)
            .finish()
    }
}

impl Cipher {
    pub fn new(keyring: Keyring) -> Cipher {
        Cipher { keyring }
    }

    /// `Cipher::from_keyring("k2:BASE64,k1:BASE64")`.
    pub fn from_keyring(s: &str) -> Result<Cipher, KeyringError> {
        Keyring::parse(s).map(Cipher::new)
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn primary_key_id(&self) -> &str {
        self.keyring.primary_id()
    }

    pub fn encrypt(&self, plaintext: &[u8], aad: &Aad<'_>) -> Result<Vec<u8>, VaultError> {
        let key = self
            .keyring
            .keys
            .first()
            .ok_or(VaultError::UnknownKey(String::new()))?;
        let aead = Aes256Gcm::new(key.key.expose_secret().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad.bytes(&key.id),
                },
            )
            .map_err(|_| VaultError::TooLarge)?;
        let id = key.id.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + ct.len());
        out.push(VERSION);
        // Key ids are at most 32 bytes (checked at parse time).
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Encrypt a secret string (a token, a signing secret).
    pub fn encrypt_str(
        &self,
        plaintext: &SecretString,
        aad: &Aad<'_>,
    ) -> Result<Vec<u8>, VaultError> {
        self.encrypt(plaintext.expose_secret().as_bytes(), aad)
    }

    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        aad: &Aad<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (key_id, nonce, body) = split(ciphertext)?;
        let key = self
            .keyring
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_string()))?;
        let aead = Aes256Gcm::new(key.key.expose_secret().into());
        aead.decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &aad.bytes(key_id),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Decrypt)
    }

    pub fn decrypt_string(
        &self,
        ciphertext: &[u8],
        aad: &Aad<'_>,
    ) -> Result<SecretString, VaultError> {
        let bytes = self.decrypt(ciphertext, aad)?;
        let s = std::str::from_utf8(&bytes).map_err(|_| VaultError::NotUtf8)?;
        Ok(SecretString::from(s.to_string()))
    }
}

/// The id of the key a ciphertext was made with.
pub fn key_id_of(ciphertext: &[u8]) -> Result<&str, VaultError> {
    split(ciphertext).map(|(id, _, _)| id)
}

fn split(ct: &[u8]) -> Result<(&str, &[u8], &[u8]), VaultError> {
    let (&version, rest) = ct.split_first().ok_or(VaultError::Malformed)?;
    if version != VERSION {
        return Err(VaultError::Malformed);
    }
    let (&id_len, rest) = rest.split_first().ok_or(VaultError::Malformed)?;
    let id_len = id_len as usize;
    if rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return Err(VaultError::Malformed);
    }
    let (id, rest) = rest.split_at(id_len);
    let id = std::str::from_utf8(id).map_err(|_| VaultError::Malformed)?;
    let (nonce, body) = rest.split_at(NONCE_LEN);
    Ok((id, nonce, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_place_binding() {
        let c = Cipher::new(Keyring::generate());
        let aad = Aad::new("connections", "access_token", "c1");
        let ct = c.encrypt(b"secret", &aad).unwrap();
        assert_eq!(&*c.decrypt(&ct, &aad).unwrap(), b"secret");
        let other = Aad::new("connections", "access_token", "c2");
        assert_eq!(c.decrypt(&ct, &other), Err(VaultError::Decrypt));
    }

    #[test]
    fn keyring_errors_name_the_entry_without_bytes() {
        let e = Keyring::parse("k1:AAAA").err().unwrap();
        assert!(
            matches!(
                e,
                KeyringError::WrongLength {
                    index: 1,
                    len: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.to_string().contains("AAAA"));
    }

    proptest::proptest! {
        #[test]
        fn any_value_round_trips_only_in_its_place(
            plain in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            row in "[a-z0-9-]{1,40}",
            other in "[a-z0-9-]{1,40}",
        ) {
            let c = Cipher::new(Keyring::generate());
            let aad = Aad::new("t", "c", &row);
            let ct = c.encrypt(&plain, &aad).unwrap();
            proptest::prop_assert_eq!(&c.decrypt(&ct, &aad).unwrap()[..], &plain[..]);
            if other != row {
                proptest::prop_assert!(c.decrypt(&ct, &Aad::new("t", "c", &other)).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let c = Cipher::new(Keyring::generate());
            proptest::prop_assert!(c.decrypt(&bytes, &Aad::new("t", "c", "r")).is_err());
        }

        #[test]
        fn keyring_parsing_never_panics_or_echoes_input(s in "\\PC{0,80}") {
            if let Err(e) = Keyring::parse(&s) {
                let msg = e.to_string();
                // Only ids (<= 40 chars) may be echoed, never a whole entry.
                if s.len() > 60 { proptest::prop_assert!(!msg.contains(&s)); }
            }
        }
    }
}
