//! The token vault: encryption at rest (`crypto`), key management (`keys`),
//! and — in the connection modules — refresh.
//!
//! Every encrypted column is listed in [`ENCRYPTED_COLUMNS`]; `atlasgate keys
//! rotate` walks exactly that list, so a new encrypted column must be added
//! here or rotation would leave it on an old key.

pub mod crypto;
pub mod keepalive;
pub mod keys;
pub mod refresh;
pub mod token;
pub mod token_cache;

pub use crypto::{key_id_of, Aad, Cipher, EncryptionKey, Keyring, KeyringError, VaultError};

/// One encrypted column: `table.column`, with rows identified by `id_column`
/// (the row id that is part of each value's associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedColumn {
    pub table: &'static str,
    pub id_column: &'static str,
    pub column: &'static str,
}

impl EncryptedColumn {
    /// The associated data of this column's value in row `row_id`.
    pub fn aad<'a>(&'a self, row_id: &'a str) -> Aad<'a> {
        Aad {
            table: self.table,
            column: self.column,
            row_id,
        }
    }
}

/// The webhook signing secret of an app.
pub const APP_WEBHOOK_SECRET: EncryptedColumn = EncryptedColumn {
    table: "apps",
    id_column: "id",
    column: "webhook_secret_ct",
};

/// The app's previous webhook secret, signing too during a rotation's overlap.
pub const APP_WEBHOOK_SECRET_OLD: EncryptedColumn = EncryptedColumn {
    table: "apps",
    id_column: "id",
    column: "webhook_secret_old_ct",
};

/// Every encrypted column in the database.
pub const ENCRYPTED_COLUMNS: &[EncryptedColumn] = &[
    APP_WEBHOOK_SECRET,
    APP_WEBHOOK_SECRET_OLD,
    EncryptedColumn {
        table: "connections",
        id_column: "id",
        column: "access_token",
    },
    EncryptedColumn {
        table: "connections",
        id_column: "id",
        column: "refresh_token",
    },
    EncryptedColumn {
        table: "connections",
        id_column: "id",
        column: "refresh_inflight_token",
    },
];
