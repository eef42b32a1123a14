//! The audit trail (docs/design.md §14): append-only records of who did what
//! to which app, key and connection, from where.
//!
//! Every record but `token.served` is written where the action is stored,
//! inside the same transaction when there is one. `token.served` is hot
//! (every `/token` call), so it is counted in memory ([`TokenServed`]) and
//! written as at most one row per (connection, key, minute) and process,
//! once the minute is over (`flush_due`, every few seconds from the
//! retention/audit worker) or at shutdown (`flush_all`). A process that
//! crashes loses the counts of the minute in progress and of the last
//! finished minute not yet flushed (at most a minute plus one flush interval).

pub mod kind;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde_json::Value;
use sqlx::{Any, Executor};

use crate::ids::ConnectionId;
use crate::store::audit::{self as rows, NewAudit};
use crate::store::{self, Store};

/// Who asked for an action: where from (the edge's client address) and
/// through what (`api`, `dashboard`, `cli`; recorded as `detail.via`).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub client_ip: Option<IpAddr>,
    pub via: &'static str,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            client_ip: None,
            via: "cli",
        }
    }

    pub fn api(client_ip: IpAddr) -> Actor {
        Actor {
            client_ip: Some(client_ip),
            via: "api",
        }
    }

    pub fn dashboard(client_ip: IpAddr) -> Actor {
        Actor {
            client_ip: Some(client_ip),
            via: "dashboard",
        }
    }

    /// Background work (a refresh, a keep-alive pass).
    pub fn system() -> Actor {
        Actor {
            client_ip: None,
            via: "system",
        }
    }
}

/// What one record is about.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub app_id: Option<&'a str>,
    pub connection_id: Option<&'a ConnectionId>,
    pub key_id: Option<&'a str>,
}

impl<'a> Subject<'a> {
    pub fn app(app_id: &'a str) -> Subject<'a> {
        Subject {
            app_id: Some(app_id),
            ..Subject::default()
        }
    }

    pub fn connection(app_id: &'a str, connection_id: &'a ConnectionId) -> Subject<'a> {
        Subject {
            app_id: Some(app_id),
            connection_id: Some(connection_id),
            key_id: None,
        }
    }

    pub fn key(app_id: &'a str, key_id: &'a str) -> Subject<'a> {
        Subject {
            app_id: Some(app_id),
            connection_id: None,
            key_id: Some(key_id),
        }
    }
}

fn new_record(kind: &str, subject: &Subject<'_>, actor: &Actor, mut detail: Value) -> NewAudit {
    if let Value::Object(m) = &mut detail {
        if !actor.via.is_empty() {
            m.insert("via".into(), Value::from(actor.via));
        }
    }
    NewAudit {
        at: store::now(),
        kind: kind.to_string(),
        app_id: subject.app_id.map(str::to_string),
        connection_id: subject.connection_id.cloned(),
        key_id: subject.key_id.map(str::to_string),
        client_ip: actor.client_ip.map(|ip| ip.to_canonical().to_string()),
        detail,
    }
}

/// Append one record (`detail` is a JSON object holding no secret), on
/// `exec` — the caller's transaction when the action has one.
pub async fn record<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    kind: &str,
    subject: Subject<'_>,
    actor: &Actor,
    detail: Value,
) -> Result<(), sqlx::Error> {
    rows::insert(exec, &new_record(kind, &subject, actor, detail)).await
}

/// [`record`] for actions whose own write already committed: a failure is
/// logged, not returned (the action happened; the caller cannot undo it).
pub async fn record_after(
    store: &Store,
    kind: &str,
    subject: Subject<'_>,
    actor: &Actor,
    detail: Value,
) {
    if let Err(e) = record(store.pool(), kind, subject, actor, detail).await {
        tracing::warn!(kind, error = %e, "could not write an audit record");
    }
}

/// One (key, minute) of a connection in [`TokenServed`].
#[derive(Debug, Clone)]
struct Tally {
    key_id: String,
    minute: i64,
    app_id: String,
    /// The first client address of the minute; written out as text.
    client_ip: IpAddr,
    /// How many other client addresses asked in the same minute.
    other_ips: u64,
    count: u64,
}

/// `token.served` counted in memory: one entry per (connection, key,
/// minute), written out when the minute is over. By connection, then a
/// short list (a connection has one key and one minute in progress nearly
/// always), so counting a call finds its tally by reference and allocates
/// nothing once the minute's entry exists.
#[derive(Debug, Default)]
pub struct TokenServed {
    tallies: Mutex<HashMap<ConnectionId, Vec<Tally>>>,
}

impl TokenServed {
    /// Count one `/token` answer. A map lookup under a short lock; no I/O.
    pub fn note(
        &self,
        app_id: &str,
        connection_id: &ConnectionId,
        key_id: &str,
        client_ip: IpAddr,
    ) {
        self.note_at(store::now(), app_id, connection_id, key_id, client_ip)
    }

    fn note_at(
        &self,
        now: i64,
        app_id: &str,
        connection_id: &ConnectionId,
        key_id: &str,
        ip: IpAddr,
    ) {
        let ip = ip.to_canonical();
        let minute = now.div_euclid(60) * 60;
        let mut m = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let list = match m.get_mut(connection_id) {
            Some(list) => list,
            None => m.entry(connection_id.clone()).or_default(),
        };
        let at = match list
            .iter()
            .position(|t| t.minute == minute && t.key_id == key_id)
        {
            Some(at) => at,
            None => {
                list.push(Tally {
                    key_id: key_id.to_string(),
                    minute,
                    app_id: app_id.to_string(),
                    client_ip: ip,
                    other_ips: 0,
                    count: 0,
                });
                list.len() - 1
            }
        };
        let t = &mut list[at];
        t.count += 1;
        if t.client_ip != ip && t.other_ips < u64::MAX {
            // Counted per request, not per distinct address: cheap, and
            // enough to show the key was used from more than one place.
            t.other_ips += 1;
        }
    }

    /// Drop the counts of an erased connection (they would name it again).
    pub fn forget_connection(&self, connection_id: &ConnectionId) {
        let mut m = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(connection_id);
    }

    /// Take the tallies of minutes before `now`'s (all of them with `all`).
    fn take(&self, now: i64, all: bool) -> Vec<NewAudit> {
        let current = now.div_euclid(60) * 60;
        let mut m = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        m.retain(|connection_id, list| {
            let (due, keep): (Vec<Tally>, Vec<Tally>) = std::mem::take(list)
                .into_iter()
                .partition(|t| all || t.minute < current);
            *list = keep;
            for t in due {
                let mut detail = serde_json::json!({ "count": t.count });
                if t.other_ips > 0 {
                    detail["requests_from_other_addresses"] = Value::from(t.other_ips);
                }
                out.push(NewAudit {
                    at: t.minute,
                    kind: kind::TOKEN_SERVED.into(),
                    app_id: Some(t.app_id),
                    connection_id: Some(connection_id.clone()),
                    key_id: Some(t.key_id),
                    client_ip: Some(t.client_ip.to_string()),
                    detail,
                });
            }
            !list.is_empty()
        });
        out.sort_by(|a, b| (a.at, &a.connection_id).cmp(&(b.at, &b.connection_id)));
        out
    }

    /// Write the finished minutes. On a database error the rows are lost
    /// (logged), never retried into a second row for the same minute.
    pub async fn flush_due(&self, store: &Store) -> usize {
        self.write(store, self.take(store::now(), false)).await
    }

    /// Write everything, the current minute too (shutdown, tests).
    pub async fn flush_all(&self, store: &Store) -> usize {
        self.write(store, self.take(store::now(), true)).await
    }

    async fn write(&self, store: &Store, rows: Vec<NewAudit>) -> usize {
        let n = rows.len();
        if let Err(e) = rows::insert_all(store.pool(), &rows).await {
            tracing::warn!(rows = n, error = %e, "could not write token.served audit records");
            return 0;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_served_is_one_row_per_connection_key_and_minute() {
        let t = TokenServed::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let c1 = ConnectionId::new("c1");
        for _ in 0..5 {
            t.note_at(120, "app", &c1, "k1", ip);
        }
        t.note_at(150, "app", &c1, "k1", other);
        t.note_at(150, "app", &c1, "k2", ip);
        t.note_at(185, "app", &c1, "k1", ip);
        // The minute in progress (180–239) stays in memory.
        let rows = t.take(190, false);
        assert_eq!(rows.len(), 2);
        let k1 = rows.iter().find(|r| r.key_id.as_deref() == Some("k1"));
        let k1 = k1.map(|r| r.detail.clone()).unwrap_or_default();
        assert_eq!(
            k1,
            serde_json::json!({"count": 6, "requests_from_other_addresses": 1})
        );
        assert!(rows.iter().all(|r| r.at == 120));
        let rest = t.take(190, true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].at, 180);
        assert!(t.take(10_000, true).is_empty());
    }
}
