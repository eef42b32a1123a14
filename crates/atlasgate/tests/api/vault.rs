//! Encryption at rest: round trips, binding to the place, key ids, keyring
//! parsing, and rotation followed by dropping the old key (both backends).

use atlasgate::apps::{self, AppName, NewApp};
use atlasgate::store::Store;
use atlasgate::vault::keys::{count_on_old_keys, rotate};
use atlasgate::vault::{
    key_id_of, Aad, Cipher, EncryptionKey, Keyring, KeyringError, VaultError, ENCRYPTED_COLUMNS,
};
use base64::Engine;
use secrecy::ExposeSecret;

use crate::helpers::{backends, TestDb};

fn key_b64(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn aad() -> Aad<'static> {
    Aad::new("connections", "refresh_token", "conn-1")
}

#[test]
fn round_trip() {
    let c = Cipher::from_keyring(&format!("k1:{}", key_b64(1))).unwrap();
    let ct = c.encrypt(b"refresh-token-value", &aad()).unwrap();
    assert_eq!(&*c.decrypt(&ct, &aad()).unwrap(), b"refresh-token-value");
    assert!(
        !ct.windows(7).any(|w| w == b"refresh"),
        "plaintext visible in ciphertext"
    );
    // A random nonce per value: the same plaintext never encrypts the same way.
    assert_ne!(ct, c.encrypt(b"refresh-token-value", &aad()).unwrap());
    let s = c.decrypt_string(&ct, &aad()).unwrap();
    assert_eq!(s.expose_secret(), "refresh-token-value");
}

#[test]
fn a_ciphertext_only_decrypts_in_its_own_place() {
    let c = Cipher::from_keyring(&format!("k1:{}", key_b64(1))).unwrap();
    let ct = c.encrypt(b"v", &aad()).unwrap();
    for other in [
        Aad::new("connections", "refresh_token", "conn-2"),
        Aad::new("connections", "access_token", "conn-1"),
        Aad::new("apps", "refresh_token", "conn-1"),
    ] {
        assert_eq!(
            c.decrypt(&ct, &other).unwrap_err(),
            VaultError::Decrypt,
            "{other:?}"
        );
    }
}

#[test]
fn tampering_is_detected() {
    let c = Cipher::from_keyring(&format!("k1:{}", key_b64(1))).unwrap();
    let ct = c.encrypt(b"value", &aad()).unwrap();
    for i in [ct.len() - 1, ct.len() - 20, 6] {
        let mut bad = ct.clone();
        bad[i] ^= 0x01;
        assert!(c.decrypt(&bad, &aad()).is_err(), "flip at {i}");
    }
    assert_eq!(
        c.decrypt(&ct[..10], &aad()).unwrap_err(),
        VaultError::Malformed
    );
    assert_eq!(c.decrypt(b"", &aad()).unwrap_err(), VaultError::Malformed);
}

#[test]
fn wrong_key_fails() {
    let a = Cipher::from_keyring(&format!("k1:{}", key_b64(1))).unwrap();
    let same_id_other_bytes = Cipher::from_keyring(&format!("k1:{}", key_b64(2))).unwrap();
    let other_id = Cipher::from_keyring(&format!("k9:{}", key_b64(1))).unwrap();
    let ct = a.encrypt(b"v", &aad()).unwrap();
    assert_eq!(
        same_id_other_bytes.decrypt(&ct, &aad()).unwrap_err(),
        VaultError::Decrypt
    );
    assert_eq!(
        other_id.decrypt(&ct, &aad()).unwrap_err(),
        VaultError::UnknownKey("k1".into())
    );
}

#[test]
fn each_ciphertext_names_its_key_and_the_first_key_encrypts() {
    let ring = format!("k2:{},k1:{}", key_b64(2), key_b64(1));
    let both = Cipher::from_keyring(&ring).unwrap();
    let old = Cipher::from_keyring(&format!("k1:{}", key_b64(1))).unwrap();
    let new_ct = both.encrypt(b"new", &aad()).unwrap();
    let old_ct = old.encrypt(b"old", &aad()).unwrap();
    assert_eq!(key_id_of(&new_ct).unwrap(), "k2");
    assert_eq!(key_id_of(&old_ct).unwrap(), "k1");
    // All keys decrypt.
    assert_eq!(&*both.decrypt(&old_ct, &aad()).unwrap(), b"old");
    assert_eq!(&*both.decrypt(&new_ct, &aad()).unwrap(), b"new");
    // Relabelling a ciphertext with another key id breaks it (the id is authenticated).
    let mut relabelled = old_ct.clone();
    relabelled[3] = b'2';
    assert_eq!(key_id_of(&relabelled).unwrap(), "k2");
    assert_eq!(
        both.decrypt(&relabelled, &aad()).unwrap_err(),
        VaultError::Decrypt
    );
}

#[test]
fn keyring_errors_are_precise_and_never_show_key_material() {
    let good = key_b64(7);
    type Check = fn(&KeyringError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        (String::new(), |e| matches!(e, KeyringError::Empty)),
        (good.clone(), |e| {
            matches!(e, KeyringError::MissingId { index: 1 })
        }),
        (format!("k1:{good},bad id:{good}"), |e| {
            matches!(e, KeyringError::BadId { index: 2, .. })
        }),
        (format!("k1:{good},k2:!!!notbase64!!!"), |e| {
            matches!(e, KeyringError::NotBase64 { index: 2, .. })
        }),
        (
            format!(
                "k1:{}",
                base64::engine::general_purpose::STANDARD.encode([1u8; 16])
            ),
            |e| {
                matches!(
                    e,
                    KeyringError::WrongLength {
                        index: 1,
                        len: 16,
                        ..
                    }
                )
            },
        ),
        (format!("k1:{good},k1:{}", key_b64(8)), |e| {
            matches!(e, KeyringError::DuplicateId { .. })
        }),
    ];
    for (input, check) in cases {
        let err = Keyring::parse(&input).unwrap_err();
        assert!(check(&err), "{input:?} gave {err:?}");
        assert!(!err.to_string().contains(&good), "{err}");
    }
}

#[test]
fn debug_output_never_shows_key_bytes() {
    let b64 = key_b64(0xAB);
    let ring = Keyring::parse(&format!("main:{b64}")).unwrap();
    let cipher = Cipher::new(ring.clone());
    for dbg in [
        format!("{ring:?}"),
        format!("{cipher:?}"),
        format!("{:?}", ring.keys()[0]),
        format!("{:?}", EncryptionKey::generate("x")),
    ] {
        assert!(
            !dbg.contains(&b64) && !dbg.contains("171") && !dbg.to_lowercase().contains("abab"),
            "{dbg}"
        );
    }
    assert!(format!("{ring:?}").contains("main"));
}

#[test]
fn generated_keys_parse() {
    let entry = atlasgate::vault::keys::generate();
    let ring = Keyring::parse(entry.expose_secret()).unwrap();
    assert_eq!(ring.len(), 1);
    assert!(ring.primary_id().starts_with('k'));
}

async fn create_apps_with_secrets(
    store: &Store,
    cipher: &Cipher,
    n: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let created = apps::create(
            store,
            cipher,
            NewApp {
                name: AppName::parse(&format!("app-{i}")).unwrap(),
                webhook_url: Some(url::Url::parse("https://example.com/hook").unwrap()),
                return_origins: vec![],
            },
        )
        .await
        .unwrap();
        out.push((
            created.app.id.clone(),
            created.webhook_secret.unwrap().expose().to_string(),
        ));
    }
    out
}

#[tokio::test]
async fn rotate_then_drop_the_old_key() {
    assert!(ENCRYPTED_COLUMNS
        .iter()
        .any(|c| c.table == "apps" && c.column == "webhook_secret_ct"));
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        let (k1, k2) = (format!("k1:{}", key_b64(1)), format!("k2:{}", key_b64(2)));
        let old = Cipher::from_keyring(&k1).unwrap();
        // More than one rotation batch.
        let apps = create_apps_with_secrets(&store, &old, 205 + 3).await;

        // A connection's token columns are rotated too (they are in ENCRYPTED_COLUMNS).
        let conn_id = "conn-rotate-1";
        let token_columns = ["access_token", "refresh_token"];
        let mut cts = Vec::new();
        for col in token_columns {
            cts.push(
                old.encrypt(
                    format!("{col}-plaintext").as_bytes(),
                    &Aad::new("connections", col, conn_id),
                )
                .unwrap(),
            );
        }
        sqlx::query(
            "INSERT INTO connections (id, app_id, owner, profile, status, access_token, refresh_token, connected_at, created_at, updated_at) \
             VALUES ($1, $2, 'team:1', 'jira', 'active', $3, $4, 0, 0, 0)",
        )
        .bind(conn_id)
        .bind(&apps[0].0)
        .bind(cts[0].clone())
        .bind(cts[1].clone())
        .execute(store.pool())
        .await
        .unwrap();

        let both = Cipher::from_keyring(&format!("{k2},{k1}")).unwrap();
        assert_eq!(
            count_on_old_keys(&store, &both).await.unwrap(),
            apps.len() as u64 + 2
        );
        let mut batches = 0;
        let report = rotate(&store, &both, &mut |_| batches += 1).await.unwrap();
        assert_eq!(report.reencrypted, apps.len() as u64 + 2, "{backend:?}");
        assert!(batches >= 2, "progress is reported per batch");
        assert_eq!(count_on_old_keys(&store, &both).await.unwrap(), 0);

        // The old key can go: the new one alone decrypts everything.
        let new_only = Cipher::from_keyring(&k2).unwrap();
        for (id, secret) in &apps {
            let got = apps::webhook_secret(&store, &new_only, id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.expose_secret(), secret);
        }
        for col in token_columns {
            let ct: Vec<u8> =
                sqlx::query_scalar(&format!("SELECT {col} FROM connections WHERE id = $1"))
                    .bind(conn_id)
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            assert_eq!(key_id_of(&ct).unwrap(), "k2");
            let plain = new_only
                .decrypt(&ct, &Aad::new("connections", col, conn_id))
                .unwrap();
            assert_eq!(&*plain, format!("{col}-plaintext").as_bytes());
        }
        // And a second rotation has nothing to do.
        let again = rotate(&store, &new_only, &mut |_| {}).await.unwrap();
        assert_eq!(again.reencrypted, 0);
        store.close().await;
    }
}
