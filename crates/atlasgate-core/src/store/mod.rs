//! The database: SQLite (embedded default) or PostgreSQL, behind one `AnyPool`.
//!
//! Portable SQL rules every query here follows:
//! - placeholders are `$1, $2, …` (sqlx-sqlite accepts them too);
//! - timestamps are BIGINT **unix seconds** ([`now`]);
//! - ids are TEXT (UUID v4 strings, [`new_id`]);
//! - ciphertexts are BLOB (SQLite) / BYTEA (PostgreSQL), bound as `Vec<u8>`;
//! - JSON is TEXT; there are no BOOLEAN columns (0/1 integers instead), since
//!   the `Any` driver decodes booleans differently per backend;
//! - rows handed out of here are typed: a state column decodes into its enum
//!   ([`text_enum!`]), a 0/1 column into `bool` ([`Flag`]), a JSON column
//!   into the value it holds ([`JsonText`]) — a bad stored value is a decode
//!   error here, never a string for the caller to interpret;
//! - NULLs are bound as a typed `Option<T>` so PostgreSQL infers the column type.
//!
//! Writes that read-then-write use [`Store::begin_write`]: `BEGIN IMMEDIATE`
//! on SQLite (takes the write lock up front, so two processes cannot both read
//! the old row), a normal transaction plus `SELECT … FOR UPDATE` on PostgreSQL.

/// A closed set of values stored as TEXT (a state column): the enum, its
/// `as_str` (the stored spelling), `FromStr`, `Display` and serde in the
/// same spelling, and sqlx's `Type`/`Decode`/`Encode` over `Any`, so a row
/// field is the enum itself (a stored value outside the set is a decode
/// error) and a statement binds the enum, not a string.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::store::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err($crate::store::UnknownValue {
                        what: stringify!($name),
                        value: other.to_string(),
                    }),
                }
            }
        }

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<sqlx::Any>>::decode(value)?.parse()?)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str(), buf)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

pub mod app_keys;
pub mod apps;
pub mod audit;
pub mod ciphertexts;
pub mod connections;
pub mod deliveries;
pub mod erase;
pub mod events;
pub mod mcp;
pub mod pages;
pub mod passes;
pub mod points;
pub mod retention;
pub mod sessions;
pub mod stats;
pub mod syncs;
mod typed;

pub use typed::{AsJson, Flag, JsonColumnError, JsonText, UnknownValue};

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, FromRow, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL must start with `sqlite:` or `postgres://`")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A unique constraint was violated (the caller maps it to 409).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sqlx(e) => is_unique_violation(e),
            _ => false,
        }
    }
}

/// The error codes of a unique violation: PostgreSQL's SQLSTATE
/// `unique_violation`, SQLite's extended result codes
/// `SQLITE_CONSTRAINT_UNIQUE` and `SQLITE_CONSTRAINT_PRIMARYKEY`.
const UNIQUE_VIOLATION_CODES: [&str; 3] = ["23505", "2067", "1555"];

/// The one test for a unique violation, by the database's error code
/// (never by its message, which is neither stable nor in one language).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|db| {
        db.is_unique_violation()
            || db
                .code()
                .is_some_and(|code| UNIQUE_VIOLATION_CODES.contains(&code.as_ref()))
    })
}

/// Error codes that mean "the database cannot serve right now, try again":
/// PostgreSQL's SQLSTATE class 08 (connection exception, matched by prefix),
/// `55000` (raised by a database that does not accept connections),
/// `53300` too_many_connections, `57P01` admin_shutdown, `57P02`
/// crash_shutdown, `57P03` cannot_connect_now; SQLite's `SQLITE_BUSY`
/// family (5, 261, 517, 773) and `SQLITE_LOCKED` (6, 262) after the busy timeout.
const UNAVAILABLE_CODES: [&str; 11] = [
    "55000", "53300", "57P01", "57P02", "57P03", "5", "261", "517", "773", "6", "262",
];

/// The one test for "the database is away right now" (answered 503 with
/// `Retry-After`, never 500): the pool gave up waiting for a connection, the
/// socket failed, or the server said it is shutting down or not accepting
/// connections. By error kind and code, never by message.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || UNAVAILABLE_CODES.contains(&c.as_ref())),
        _ => false,
    }
}

/// [`is_unavailable`] anywhere in an error's chain of sources.
pub fn unavailable_in(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<sqlx::Error>().is_some_and(is_unavailable) {
            return true;
        }
        next = e.source();
    }
    false
}

impl StoreError {
    /// The database is away right now (see [`is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        unavailable_in(self)
    }
}

/// How long the pool waits for a connection before the request answers 503:
/// well inside the edge's 30 s request timeout, so a request never hangs on
/// a database that is away.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Open a pool. A SQLite file is created if missing and runs in WAL mode
    /// with a busy timeout and foreign keys on.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url_with_create(url),
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            // Writers queue for up to 10 s instead of failing with SQLITE_BUSY.
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            // Deleted rows are overwritten with zeros, so an
                            // erased owner leaves nothing in freed pages
                            // (docs/design.md §13).
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?
            }
        };
        Ok(Store { pool, backend })
    }

    /// The migrations of this backend (tests apply a prefix of them to check upgrades).
    pub fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Apply pending migrations (idempotent; `serve` calls it on start).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Versions of the migrations this binary knows and the database lacks.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let applied: Vec<i64> = match sqlx::query_scalar::<_, i64>(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE",
        )
        .fetch_all(&self.pool)
        .await
        {
            Ok(v) => v,
            // No migrations table yet: everything is pending.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// A trivial round trip (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that intends to write: SQLite takes the database write
    /// lock now (`BEGIN IMMEDIATE`), so a read inside it cannot go stale
    /// before the write; on PostgreSQL lock rows with `SELECT … FOR UPDATE`.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// `" FOR UPDATE"` on PostgreSQL, `""` on SQLite (whose `BEGIN IMMEDIATE`
    /// already serialises writers). Append to a SELECT inside `begin_write`.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// `" FOR UPDATE SKIP LOCKED"` on PostgreSQL (job claiming), `""` on SQLite.
    pub fn for_update_skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sqlite://file.db` → `sqlite://file.db?mode=rwc` (create if missing)
/// unless the URL already chooses a mode.
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

/// Unix seconds, the unit of every timestamp column.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One page of a keyset-paginated list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// More rows follow the last item (the caller makes its cursor from it).
    pub more: bool,
}

/// A value bound by [`SqlBuilder::push_bind`].
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
}

impl From<String> for Bind {
    fn from(v: String) -> Bind {
        Bind::Text(v)
    }
}

impl From<i64> for Bind {
    fn from(v: i64) -> Bind {
        Bind::Int(v)
    }
}

/// A statement built from pieces, numbering its `$n` placeholders itself.
/// (sqlx's `QueryBuilder` writes `?` placeholders through the `Any` driver,
/// which PostgreSQL refuses; this keeps the portable `$n` form.)
#[derive(Debug)]
pub struct SqlBuilder {
    sql: String,
    binds: Vec<Bind>,
}

impl SqlBuilder {
    pub fn new(sql: impl Into<String>) -> SqlBuilder {
        SqlBuilder {
            sql: sql.into(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut SqlBuilder {
        self.sql.push_str(sql);
        self
    }

    pub fn push_bind(&mut self, value: impl Into<Bind>) -> &mut SqlBuilder {
        self.binds.push(value.into());
        self.sql.push_str(&format!("${}", self.binds.len()));
        self
    }

    /// The statement with its values bound, to execute.
    pub fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
        bind_all(sqlx::query(&self.sql), &self.binds)
    }

    /// ` AND ({key_col} = v OR {id_col} = v)`: a filter that takes a key or an id.
    pub fn push_key_or_id(&mut self, key_col: &str, id_col: &str, value: &str) -> &mut SqlBuilder {
        self.push(" AND (")
            .push(key_col)
            .push(" = ")
            .push_bind(value.to_string())
            .push(" OR ")
            .push(id_col)
            .push(" = ")
            .push_bind(value.to_string())
            .push(")")
    }

    /// The keyset condition after `(updated_ms, id)` for lists ordered by
    /// `updated_ms, {id_col}`.
    pub fn push_after_updated(&mut self, id_col: &str, ms: i64, id: &str) -> &mut SqlBuilder {
        self.push(" AND (updated_ms > ")
            .push_bind(ms)
            .push(" OR (updated_ms = ")
            .push_bind(ms)
            .push(" AND ")
            .push(id_col)
            .push(" > ")
            .push_bind(id.to_string())
            .push("))")
    }
}

/// `query` with `binds` bound to its `$1`, `$2`, … in order.
pub fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        query = match b {
            Bind::Text(s) => query.bind(s.as_str()),
            Bind::Int(i) => query.bind(*i),
        };
    }
    query
}

/// The one cursor-page reader of every list endpoint: `query` holds the
/// `SELECT … WHERE …` with its filters (and keyset condition) pushed through
/// [`SqlBuilder::push_bind`], so placeholders are never counted by hand;
/// this appends ` ORDER BY {order} LIMIT limit + 1` and reads whether more
/// rows follow.
pub async fn fetch_page<T>(
    pool: &AnyPool,
    mut query: SqlBuilder,
    order: &str,
    limit: i64,
) -> Result<Page<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    query.push(" ORDER BY ").push(order).push(" LIMIT ");
    query.push_bind(limit + 1);
    let mut q = sqlx::query_as::<_, T>(&query.sql);
    for b in query.binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    let mut items: Vec<T> = q.fetch_all(pool).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit.max(0) as usize);
    Ok(Page { items, more })
}

/// A new row id (UUID v4, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state values SQL text in `store/` names (`state = 'idle'`,
    /// `status <> 'disconnected'`, `delivery_state IN ('delivered', 'failed')`):
    /// each is a value of its column's enum, so a literal cannot drift from
    /// the enum the rows decode into.
    #[test]
    fn state_literals_in_sql_are_values_of_their_enums() {
        fn values<T: Copy + 'static>(all: &[T], s: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|v| s(*v)).collect()
        }
        let columns: [(&str, Vec<&str>); 4] = [
            (
                "status",
                [
                    values(connections::ConnectionStatus::ALL, |v| v.as_str()),
                    values(sessions::SessionStatus::ALL, |v| v.as_str()),
                ]
                .concat(),
            ),
            (
                "state",
                [
                    values(syncs::SyncState::ALL, |v| v.as_str()),
                    values(deliveries::InboxState::ALL, |v| v.as_str()),
                ]
                .concat(),
            ),
            (
                "delivery_state",
                values(events::DeliveryState::ALL, |v| v.as_str()),
            ),
            ("pass_kind", values(syncs::PassKind::ALL, |v| v.as_str())),
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (column, allowed) in &columns {
                for literal in state_literals(&text, column) {
                    seen += 1;
                    assert!(
                        allowed.contains(&literal.as_str()),
                        "{}: {column} compared with {literal:?}, not a value of its enum",
                        path.display()
                    );
                }
            }
        }
        assert!(
            seen > 20,
            "positive control: the literals were found ({seen})"
        );
    }

    /// The quoted literals after `{column} = `, `{column} <> ` and
    /// `{column} IN (` in `text` (the column as a whole word).
    fn state_literals(text: &str, column: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices(column) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &text[at + column.len()..];
            let list = if let Some(r) = rest.strip_prefix(" = '").or(rest.strip_prefix(" <> '")) {
                &r[..r.find('\'').unwrap_or(0)]
            } else if let Some(r) = rest.strip_prefix(" IN (") {
                &r[..r.find(')').unwrap_or(0)]
            } else {
                continue;
            };
            out.extend(
                list.split(',')
                    .map(|v| v.trim().trim_matches('\'').to_string())
                    .filter(|v| !v.is_empty() && !v.starts_with('$')),
            );
        }
        out
    }

    #[test]
    fn sqlite_urls_create_missing_files() {
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }
}
