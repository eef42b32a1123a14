//! The store on both backends: creation, migrations, write transactions,
//! unique violations, the event outbox.

use atlasgate::ids::ConnectionId;
use std::time::Duration;

use atlasgate::store::events::{self, DeliveryState, NewEvent};
use atlasgate::store::{Backend, Store};
use serde_json::json;

use crate::helpers::{backends, TestDb};

async fn fresh(backend: Backend) -> (TestDb, Store) {
    let db = TestDb::create(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    (db, store)
}

/// A fresh database with every migration applied.
async fn migrated(backend: Backend) -> (TestDb, Store) {
    let (db, store) = fresh(backend).await;
    store.migrate().await.unwrap();
    (db, store)
}

#[tokio::test]
async fn sqlite_file_is_created_if_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub-less.db");
    assert!(!path.exists());
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert!(path.exists());
    assert_eq!(store.backend(), Backend::Sqlite);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn migrations_are_idempotent_and_reported_current() {
    for backend in backends() {
        let (_db, store) = fresh(backend).await;
        assert!(
            !store.pending_migrations().await.unwrap().is_empty(),
            "{backend:?}: fresh db has pending migrations"
        );
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(store.pending_migrations().await.unwrap(), Vec::<i64>::new());
        store.ping().await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn unique_violations_are_recognised() {
    for backend in backends() {
        let (_db, store) = migrated(backend).await;
        let insert = |id: &'static str| {
            sqlx::query("INSERT INTO apps (id, name, api_key_hash, return_origins, created_at) VALUES ($1, 'same', $2, '[]', 0)")
                .bind(id)
                .bind(format!("hash-{id}"))
                .execute(store.pool())
        };
        insert("a").await.unwrap();
        let err = insert("b").await.unwrap_err();
        assert!(
            atlasgate::store::is_unique_violation(&err),
            "{backend:?}: {err}"
        );
        // The primary key is a unique key too; a NOT NULL or a foreign key
        // violation is not one.
        for (sql, unique) in [
            ("INSERT INTO apps (id, name, api_key_hash, return_origins, created_at) VALUES ('a', 'other', 'h2', '[]', 0)", true),
            ("INSERT INTO apps (id, name, api_key_hash, return_origins, created_at) VALUES ('c', NULL, 'h3', '[]', 0)", false),
            ("INSERT INTO app_keys (id, app_id, key_hash, prefix, created_at) VALUES ('k', 'no-such-app', 'h4', 'p', 0)", false),
        ] {
            let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
            assert_eq!(
                atlasgate::store::is_unique_violation(&err),
                unique,
                "{backend:?}: {sql}: {err}"
            );
        }
        store.close().await;
    }
}

#[tokio::test]
async fn write_transactions_serialise_read_then_write() {
    for backend in backends() {
        let (_db, store) = migrated(backend).await;
        sqlx::query("INSERT INTO apps (id, name, api_key_hash, return_origins, created_at) VALUES ('a', 'counter', 'h', '[]', 0)")
            .execute(store.pool())
            .await
            .unwrap();
        // Ten concurrent read-modify-write increments of created_at: with
        // begin_write + FOR UPDATE none is lost.
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin_write().await.unwrap();
                let sql = format!(
                    "SELECT created_at FROM apps WHERE id = 'a'{}",
                    store.for_update()
                );
                let v: i64 = sqlx::query_scalar(&sql).fetch_one(&mut *tx).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                sqlx::query("UPDATE apps SET created_at = $1 WHERE id = 'a'")
                    .bind(v + 1)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v: i64 = sqlx::query_scalar("SELECT created_at FROM apps WHERE id = 'a'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(v, 10, "{backend:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn events_are_recorded_in_order_with_delivery_state() {
    for backend in backends() {
        let (_db, store) = migrated(backend).await;
        sqlx::query("INSERT INTO apps (id, name, api_key_hash, return_origins, created_at) VALUES ('app1', 'a', 'h', '[]', 0)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        for i in 0..3 {
            events::insert(
                &mut *tx,
                NewEvent {
                    app_id: "app1",
                    connection_id: Some(&ConnectionId::new("c1")),
                    event_type: "connection.created",
                    payload: json!({ "n": i }),
                },
            )
            .await
            .unwrap();
        }
        events::insert(
            &mut *tx,
            NewEvent {
                app_id: "app1",
                connection_id: None,
                event_type: "sync.completed",
                payload: json!({}),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let recent = events::recent(store.pool(), Some("app1"), 10)
            .await
            .unwrap();
        assert_eq!(recent.len(), 4);
        assert_eq!(recent[0].event_type, "sync.completed");
        assert!(recent.windows(2).all(|w| w[0].seq > w[1].seq));
        assert_eq!(recent[3].payload, json!({"n": 0}));
        assert!(recent
            .iter()
            .all(|e| e.delivery_state == DeliveryState::Pending && e.attempts == 0));
        assert_eq!(recent[0].connection_id, None);
        assert!(events::recent(store.pool(), Some("other"), 10)
            .await
            .unwrap()
            .is_empty());

        // A rolled-back transaction leaves no event behind.
        let mut tx = store.begin_write().await.unwrap();
        events::insert(
            &mut *tx,
            NewEvent {
                app_id: "app1",
                connection_id: None,
                event_type: "x",
                payload: json!({}),
            },
        )
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            events::recent(store.pool(), None, 10).await.unwrap().len(),
            4
        );
        store.close().await;
    }
}
