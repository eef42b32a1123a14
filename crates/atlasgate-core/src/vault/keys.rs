//! `atlasgate keys generate` and `atlasgate keys rotate`.
//!
//! Rotation re-encrypts every value of every column in
//! [`ENCRYPTED_COLUMNS`](super::ENCRYPTED_COLUMNS) whose key is not the
//! keyring's first, in batches, one write transaction per batch. An update
//! only lands if the value is still the one that was read, so a concurrent
//! refresh (which writes a fresh value) is never overwritten. Once it reports
//! zero values left on old keys, the old keys can be dropped from
//! `ATLASGATE_ENCRYPTION_KEYS`.

use secrecy::SecretString;

use super::crypto::{key_id_of, new_key_id, Cipher, EncryptionKey};
use super::{EncryptedColumn, VaultError, ENCRYPTED_COLUMNS};
use crate::store::{ciphertexts, Store, StoreError};

/// A new key in `ATLASGATE_ENCRYPTION_KEYS` syntax (`kYYYYMMDDhhmmssXXXX:BASE64`).
pub fn generate() -> SecretString {
    EncryptionKey::generate(new_key_id()).to_entry()
}

pub const ROTATE_BATCH: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{table}.{column} of row {row_id}: {source}")]
    Vault {
        table: &'static str,
        column: &'static str,
        row_id: String,
        source: VaultError,
    },
}

impl From<sqlx::Error> for RotateError {
    fn from(e: sqlx::Error) -> Self {
        RotateError::Store(e.into())
    }
}

/// Progress after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotateProgress {
    pub column: EncryptedColumn,
    /// Values of this column looked at so far / in total.
    pub scanned: u64,
    pub total: u64,
    pub reencrypted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateReport {
    pub scanned: u64,
    pub reencrypted: u64,
    /// Values that changed under us (a concurrent write); run again.
    pub skipped: u64,
}

/// Re-encrypt every stored value with the first key of `cipher`.
pub async fn rotate(
    store: &Store,
    cipher: &Cipher,
    progress: &mut dyn FnMut(RotateProgress),
) -> Result<RotateReport, RotateError> {
    let mut report = RotateReport::default();
    for col in ENCRYPTED_COLUMNS {
        rotate_column(store, cipher, *col, &mut report, progress).await?;
    }
    Ok(report)
}

async fn rotate_column(
    store: &Store,
    cipher: &Cipher,
    col: EncryptedColumn,
    report: &mut RotateReport,
    progress: &mut dyn FnMut(RotateProgress),
) -> Result<(), RotateError> {
    let EncryptedColumn {
        table,
        id_column,
        column,
    } = col;
    let total = ciphertexts::count(store.pool(), table, column).await?;
    let mut p = RotateProgress {
        column: col,
        scanned: 0,
        total: total.max(0) as u64,
        reencrypted: 0,
    };
    let mut after = String::new();
    loop {
        let mut tx = store.begin_write().await?;
        let rows =
            ciphertexts::batch_after(&mut tx, table, id_column, column, &after, ROTATE_BATCH)
                .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.0.clone();
        for (id, ct) in &rows {
            p.scanned += 1;
            report.scanned += 1;
            let on_primary = key_id_of(ct)
                .map(|k| k == cipher.primary_key_id())
                .unwrap_or(false);
            if on_primary {
                continue;
            }
            let vault_err = |source| RotateError::Vault {
                table,
                column,
                row_id: id.clone(),
                source,
            };
            let aad = col.aad(id);
            let plain = cipher.decrypt(ct, &aad).map_err(vault_err)?;
            let fresh = cipher.encrypt(&plain, &aad).map_err(vault_err)?;
            if ciphertexts::replace(&mut tx, table, id_column, column, id, ct, fresh).await? {
                p.reencrypted += 1;
                report.reencrypted += 1;
            } else {
                report.skipped += 1;
            }
        }
        tx.commit().await?;
        progress(p);
    }
    Ok(())
}

/// How many stored values are encrypted with a key other than the first.
pub async fn count_on_old_keys(store: &Store, cipher: &Cipher) -> Result<u64, RotateError> {
    let mut n = 0;
    for EncryptedColumn { table, column, .. } in ENCRYPTED_COLUMNS {
        let cts = ciphertexts::all(store.pool(), table, column).await?;
        n += cts
            .iter()
            .filter(|ct| {
                key_id_of(ct)
                    .map(|k| k != cipher.primary_key_id())
                    .unwrap_or(true)
            })
            .count() as u64;
    }
    Ok(n)
}
