//! Sealing connection tokens into their columns, and opening them again.
//!
//! Each token column's ciphertext is bound to (`connections`, column, id), so
//! a value copied onto another connection or into another column fails to
//! decrypt (docs/design.md §4).

use secrecy::SecretString;

use super::{Aad, Cipher, VaultError};
use crate::ids::ConnectionId;

pub const TABLE: &str = "connections";
pub const ACCESS_TOKEN: &str = "access_token";
pub const REFRESH_TOKEN: &str = "refresh_token";
/// The old refresh token of an in-flight refresh (the refresh mark).
pub const INFLIGHT_REFRESH_TOKEN: &str = "refresh_inflight_token";

pub fn seal(
    cipher: &Cipher,
    connection_id: &ConnectionId,
    column: &str,
    token: &SecretString,
) -> Result<Vec<u8>, VaultError> {
    cipher.encrypt_str(token, &Aad::new(TABLE, column, connection_id))
}

pub fn open(
    cipher: &Cipher,
    connection_id: &ConnectionId,
    column: &str,
    ciphertext: &[u8],
) -> Result<SecretString, VaultError> {
    cipher.decrypt_string(ciphertext, &Aad::new(TABLE, column, connection_id))
}
