//! Atlassian's hourly points quota, spent deliberately (docs/design.md §17,
//! docs/atlassian-behaviour.md §4).
//!
//! **Where the state lives.** The budget of a quota pool (`app`, the OAuth
//! app's global pool, or a cloud id when Atlassian reports a per-tenant
//! pool) is a row of `points_pools`, shared by every process. A process
//! never spends points it has not *leased* from that row: it takes a chunk
//! (about 0.5 % of the quota) with one atomic `UPDATE … RETURNING`, spends it
//! locally without touching the database, and hands back what is left when
//! the lease is over ([`LEASE_TTL`]) or takes the next chunk. So the hot path
//! is a mutex and a subtraction; the database sees one statement per chunk,
//! and the sum of every process's spend stays within what the row handed
//! out, which stays within the quota.
//!
//! Each class holds its own lease and goes to the row on its own (one trip
//! at a time per class), so a backfill draining its lease every page never
//! makes an interactive call wait for a database trip. An interactive lease
//! is renewed ahead: when it runs low or its TTL passes, the call that
//! notices goes on with the points still held (for at most one more TTL)
//! while a renewal tops the lease up in the background, handing nothing
//! back (so nothing spent meanwhile was not leased).
//!
//! **Cost.** A call is charged its estimate before it leaves (writes 1; a
//! read 1 + `maxResults` when it names one, else 1 + one object; identity
//! objects count twice) and settled with its real cost once the answer is
//! read: 1 + the objects it returned ([`count_objects`]), 2 per identity
//! object; a 429 costs nothing. An answer larger than its estimate leaves the
//! process in debt, paid from its next lease.
//!
//! **Classes.** Interactive calls (the proxy, typed operations, MCP: calls
//! made for an app) may lease up to the quota less
//! `ATLASGATE_POINTS_RESERVE` (kept for the calls apps make with tokens from
//! `/token`, which atlasgate never sees). Background calls (sync passes,
//! reconciliation, webhook upkeep) stop at [`BACKGROUND_SHARE`] of that and
//! wait for the next window, so interactive work always finds room and a
//! backfill never meets a quota 429.
//!
//! **Windows.** The window ends where Atlassian says (`RateLimit: …;t=`
//! seconds to the reset), else at the top of the UTC hour. The first process
//! to see a later reset rolls the row (nothing leased, no pause); the others
//! adopt it. A reset Atlassian puts *sooner* than the row's end (by more
//! than the slack between processes' clocks) moves the end there, leases
//! kept: waiting for the later end would leave the next window's points
//! unused. A quota 429 pauses the pool in the row until its reset, for
//! every caller of every process (a process with a live lease learns it when
//! that lease ends, at most [`LEASE_TTL`] later).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{HeaderMap, Method};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::store::{self, points as rows, Store};

/// Who a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallClass {
    /// Made for an app now: the proxy, typed operations, MCP.
    Interactive,
    /// Sync passes, reconciliation, webhook upkeep.
    Background,
}

impl CallClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CallClass::Interactive => "interactive",
            CallClass::Background => "background",
        }
    }

    fn idx(self) -> usize {
        match self {
            CallClass::Interactive => 0,
            CallClass::Background => 1,
        }
    }
}

pub const DEFAULT_POINTS_PER_HOUR: u64 = 65_000;
pub const DEFAULT_POINTS_RESERVE: f64 = 0.2;
/// Background work leases up to this share of what interactive calls may.
pub const BACKGROUND_SHARE: f64 = 0.95;
/// A lease is used for at most this long before the process goes back to
/// the database (handing back what is left, learning pauses and rolls).
pub const LEASE_TTL: Duration = Duration::from_secs(1);
/// Two processes' views of one reset differ by less than this (seconds).
const ROLL_SLACK: i64 = 120;
/// Seconds added to a reset read from `RateLimit: …;t=` (see `observe`).
const RESET_MARGIN_S: i64 = 2;
/// An interactive lease that would cover fewer calls like the one at hand
/// than this is renewed ahead.
const RENEW_BELOW_CALLS: i64 = 4;
/// A waiting background call looks at the database this often.
const BACKGROUND_POLL: Duration = Duration::from_secs(2);
/// The pool shared by every site (Atlassian's Tier 1 global pool).
pub const APP_POOL: &str = "app";

/// `ATLASGATE_POINTS_PER_HOUR`, `ATLASGATE_POINTS_RESERVE`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSettings {
    /// The quota until Atlassian's `RateLimit-Policy` tells.
    pub per_hour: u64,
    /// Share of the quota left for direct-token traffic (0 ≤ r < 1).
    pub reserve: f64,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            per_hour: DEFAULT_POINTS_PER_HOUR,
            reserve: DEFAULT_POINTS_RESERVE,
        }
    }
}

impl BudgetSettings {
    /// The share of the quota `class` may lease up to, in 1/10,000.
    fn cap_bp(&self, class: CallClass) -> i64 {
        let usable = (1.0 - self.reserve).clamp(0.0, 1.0);
        let share = match class {
            CallClass::Interactive => usable,
            CallClass::Background => usable * BACKGROUND_SHARE,
        };
        (share * 10_000.0).floor() as i64
    }
}

/// The budget refuses this call until `until` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    pub until: i64,
    /// A quota 429 paused the pool (rather than the budget being used up).
    pub paused: bool,
}

impl Spent {
    pub fn retry_after_secs(&self) -> u64 {
        (self.until - store::now()).max(1) as u64
    }
}

#[derive(Debug)]
struct Pool {
    window_end: i64,
    quota: i64,
    /// A quota from headers not yet written to the row.
    quota_dirty: bool,
    /// A later reset seen in headers: roll to it.
    roll_to: Option<i64>,
    /// An earlier reset seen in headers: end the window then.
    shorten_to: Option<i64>,
    /// The row's end is confirmed by headers (else a guess to be moved).
    confirmed: bool,
    /// The end the headers gave while unconfirmed.
    confirm_to: Option<i64>,
    /// Unspent points of this process's lease, per class; negative = debt.
    lease: [i64; 2],
    leased_at: [Option<Instant>; 2],
    /// A renewal of the class's lease is under way (see `take_local`).
    renewing: [bool; 2],
    paused_until: i64,
    /// `leased` of the row as last seen.
    row_leased: i64,
    /// Background points spent this window here, and since when (for `eta_s`).
    background_spent: i64,
    window_seen_at: i64,
    in_db: bool,
    /// One trip to the row at a time per class: an interactive call never
    /// queues behind a background lease waiting on the database.
    gate: [Arc<tokio::sync::Mutex<()>>; 2],
}

impl Pool {
    fn new(quota: i64, now: i64) -> Pool {
        Pool {
            window_end: next_hour(now),
            quota,
            quota_dirty: false,
            roll_to: None,
            shorten_to: None,
            confirmed: false,
            confirm_to: None,
            lease: [0; 2],
            leased_at: [None; 2],
            renewing: [false; 2],
            paused_until: 0,
            row_leased: 0,
            background_spent: 0,
            window_seen_at: now,
            in_db: false,
            gate: Default::default(),
        }
    }

    fn lease_live(&self, class: CallClass, ttl: Duration) -> bool {
        self.leased_at[class.idx()].is_some_and(|t| t.elapsed() < ttl)
    }

    /// Nothing to tell the row before the next call goes.
    fn settled_view(&self, now: i64) -> bool {
        self.window_end > now
            && self.roll_to.is_none()
            && self.shorten_to.is_none()
            && self.confirm_to.is_none()
            && !self.quota_dirty
    }

    fn adopt(&mut self, row: &rows::PoolRow, now: i64) {
        if row.window_end > self.window_end {
            // The pool rolled (here or in another process): what this
            // process held was leased in the old window.
            self.lease = [0; 2];
        }
        if row.window_end != self.window_end {
            self.background_spent = 0;
            self.window_seen_at = now;
        }
        self.window_end = row.window_end;
        if !self.quota_dirty {
            self.quota = row.quota;
        }
        self.row_leased = row.leased;
        self.confirmed = row.confirmed != 0;
        self.paused_until = row.paused_until.unwrap_or(0);
        self.in_db = true;
    }
}

fn next_hour(now: i64) -> i64 {
    (now.div_euclid(3600) + 1) * 3600
}

fn hour_start(now: i64) -> i64 {
    now.div_euclid(3600) * 3600
}

/// See the module docs. One per process (inside the client layer).
pub struct Budget {
    store: Store,
    settings: Mutex<BudgetSettings>,
    pools: Mutex<HashMap<String, Pool>>,
    /// Sites Atlassian reported a per-tenant pool for.
    tenant_sites: Mutex<std::collections::HashSet<String>>,
    /// Points spent and not yet written to `points_usage`, per site and class.
    unflushed: Mutex<HashMap<String, [i64; 2]>>,
    metrics: OnceLock<Arc<Metrics>>,
    lease_ttl_ms: AtomicU64,
    /// No answer seen yet: the quota may be wrong, so lease only what the
    /// call at hand needs until Atlassian's headers (or their absence) tell.
    answered: AtomicBool,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").finish_non_exhaustive()
    }
}

/// The reservation of one call, settled with its real cost (or, if dropped
/// unsettled, with its estimate).
pub struct Charge {
    budget: Arc<Budget>,
    site: String,
    pool: String,
    class: CallClass,
    estimate: i64,
    identity: bool,
    write: bool,
    settled: bool,
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Charge")
            .field("class", &self.class)
            .field("estimate", &self.estimate)
            .finish_non_exhaustive()
    }
}

impl Charge {
    /// The call cost `points`.
    pub fn settle(mut self, points: u64) {
        self.settled = true;
        self.budget.spend(
            &self.site,
            &self.pool,
            self.class,
            self.estimate,
            points as i64,
        );
    }

    /// A read answered with `objects` objects.
    pub fn settle_objects(self, objects: u64) {
        let per = if self.identity { 2 } else { 1 };
        self.settle(1 + per * objects);
    }

    /// Settled by a 2xx answer's body: 1 for a write, else counted.
    pub fn settle_body(self, body: &[u8]) {
        if self.write {
            return self.settle(1);
        }
        let n = count_objects(body);
        self.settle_objects(n);
    }

    /// Reads are settled by what they return; writes cost 1 whatever.
    pub fn counts_objects(&self) -> bool {
        !self.write
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if !self.settled {
            self.budget.spend(
                &self.site,
                &self.pool,
                self.class,
                self.estimate,
                self.estimate,
            );
        }
    }
}

/// What a request will probably cost, from the request alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub points: u64,
    /// Identity objects (users, groups) cost 2 each.
    pub identity: bool,
    /// A write costs its 1 point whatever it answers.
    pub write: bool,
}

/// Whether a call is a write (1 point flat). POSTs that only read —
/// `search/jql`, bulk fetches — are charged as reads (as atlassim does;
/// Atlassian names "writes", not methods).
pub fn is_write(method: &Method, path: &str) -> bool {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => false,
        Method::POST => !(path.contains("search") || path.contains("bulk")),
        _ => true,
    }
}

/// Paths whose objects are identity objects (users, groups).
pub fn is_identity(path: &str) -> bool {
    path.split('/').any(|s| {
        matches!(
            s,
            "user" | "users" | "myself" | "group" | "groups" | "groupuserpicker"
        )
    })
}

/// The estimate of a request: see the module docs.
pub fn estimate(method: &Method, path: &str, query: Option<&str>, body: Option<&[u8]>) -> Estimate {
    if is_write(method, path) {
        return Estimate {
            points: 1,
            identity: false,
            write: true,
        };
    }
    let identity = is_identity(path);
    let max = query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "maxResults" || k == "limit")
                .and_then(|(_, v)| v.parse::<u64>().ok())
        })
        .or_else(|| {
            let b = body?;
            let v: serde_json::Value = serde_json::from_slice(b).ok()?;
            v.get("maxResults").or_else(|| v.get("limit"))?.as_u64()
        })
        // Jira's search/jql pages 50 issues by default.
        .or_else(|| path.contains("search").then_some(50));
    let objects = max.map_or(1, |m| m.min(5000));
    Estimate {
        points: 1 + objects * if identity { 2 } else { 1 },
        identity,
        write: false,
    }
}

/// How many objects a JSON answer holds: the elements of a top-level
/// array, else of the longest array directly under the top-level object
/// (`issues`, `values`, `comments`…), else 1 (a single object).
pub fn count_objects(body: &[u8]) -> u64 {
    let mut c = ObjectCounter::default();
    c.feed(body);
    c.finish()
}

/// [`count_objects`] over a body that arrives in pieces.
#[derive(Debug, Default, Clone)]
pub struct ObjectCounter {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The top-level value is an array.
    top_array: bool,
    started: bool,
    /// Elements of the array being counted (depth 1 under an array top,
    /// depth 2 under an object top), and whether the next value starts one.
    current: u64,
    expect: bool,
    counting: bool,
    best: Option<u64>,
}

impl ObjectCounter {
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else {
                    // Most of a JSON answer is string contents: skip to the
                    // next quote or backslash at once.
                    match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                        Some(p) => i += p,
                        None => i = bytes.len(),
                    }
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            let target = if self.top_array { 1 } else { 2 };
            if self.counting && self.depth == target && self.expect && b != b']' && b != b',' {
                self.current += 1;
                self.expect = false;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    if !self.started {
                        self.started = true;
                        self.top_array = b == b'[';
                        if self.top_array {
                            self.counting = true;
                            self.expect = true;
                            self.current = 0;
                        }
                    } else if b == b'[' && !self.top_array && self.depth == 1 {
                        self.counting = true;
                        self.expect = true;
                        self.current = 0;
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.counting && self.depth + 1 == target && b == b']' {
                        self.counting = false;
                        self.best = Some(self.best.map_or(self.current, |x| x.max(self.current)));
                    }
                }
                b',' if self.counting && self.depth == target => self.expect = true,
                _ => {}
            }
        }
    }

    pub fn finish(&self) -> u64 {
        match (self.best, self.counting) {
            (Some(b), true) => b.max(self.current),
            (Some(b), false) => b,
            (None, true) => self.current,
            (None, false) => 1,
        }
    }
}

/// A streamed answer's body, counted as it passes; the charge is settled
/// with what went through when the stream ends or is dropped.
pub fn metered<S, E>(
    stream: S,
    charge: Charge,
) -> impl futures::Stream<Item = Result<bytes::Bytes, E>>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>>,
{
    use futures::StreamExt;
    struct Meter {
        charge: Option<Charge>,
        counter: ObjectCounter,
    }
    impl Drop for Meter {
        fn drop(&mut self) {
            if let Some(c) = self.charge.take() {
                c.settle_objects(self.counter.finish());
            }
        }
    }
    let mut meter = Meter {
        charge: Some(charge),
        counter: ObjectCounter::default(),
    };
    stream.map(move |item| {
        if let Ok(b) = &item {
            meter.counter.feed(b);
        }
        item
    })
}

enum Leased {
    /// The call's points are taken.
    Taken,
    /// The view changed (another process rolled the window): go again.
    Again,
    Refused(Spent),
}

/// One line of [`Budget::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolView {
    pub pool: String,
    pub window_end: i64,
    pub quota: i64,
    /// Points spent or leased this window, as this process last saw the row.
    pub spent: i64,
    pub paused_until: i64,
}

impl Budget {
    pub fn new(store: Store) -> Budget {
        Budget {
            store,
            settings: Mutex::new(BudgetSettings::default()),
            pools: Mutex::new(HashMap::new()),
            tenant_sites: Mutex::new(Default::default()),
            unflushed: Mutex::new(HashMap::new()),
            metrics: OnceLock::new(),
            lease_ttl_ms: AtomicU64::new(LEASE_TTL.as_millis() as u64),
            answered: AtomicBool::new(false),
        }
    }

    pub fn configure(&self, settings: BudgetSettings) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    pub fn settings(&self) -> BudgetSettings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// How long a lease is used before going back to the database (tests
    /// set 0 to make every call consult the shared row).
    pub fn set_lease_ttl(&self, ttl: Duration) {
        self.lease_ttl_ms
            .store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms.load(Ordering::Relaxed))
    }

    /// The pool a site draws from.
    pub fn pool_of(&self, site: &str) -> String {
        let tenant = self
            .tenant_sites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(site);
        if tenant {
            site.to_string()
        } else {
            APP_POOL.to_string()
        }
    }

    /// Reserve `est` for a call to `site`: at once from this process's
    /// lease, else from the shared row. An interactive call the budget
    /// cannot cover is refused ([`Spent`]); a background call waits for
    /// the next window.
    pub async fn reserve(
        self: &Arc<Self>,
        site: &str,
        class: CallClass,
        est: Estimate,
    ) -> Result<Charge, Spent> {
        let pool = self.pool_of(site);
        let need = est.points as i64;
        let mut again = 0;
        loop {
            let ttl = self.lease_ttl();
            let now = store::now();
            let local = {
                let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                let quota = self.settings().per_hour as i64;
                let p = pools
                    .entry(pool.clone())
                    .or_insert_with(|| Pool::new(quota, now));
                self.take_local(p, class, need, now, ttl)
                    .ok_or_else(|| p.gate[class.idx()].clone())
            };
            let gate = match local {
                Ok(taken) => return self.taken(taken, site, &pool, class, est),
                Err(gate) => gate,
            };
            let _one_at_a_time = gate.lock().await;
            {
                // Someone else may have leased while this call waited.
                let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                let taken = pools
                    .get_mut(&pool)
                    .and_then(|p| self.take_local(p, class, need, now, ttl));
                drop(pools);
                if let Some(taken) = taken {
                    return self.taken(taken, site, &pool, class, est);
                }
            }
            match self.lease(&pool, class, need).await {
                Ok(Leased::Taken) => return Ok(self.charge(site, &pool, class, est)),
                Ok(Leased::Again) => {
                    // The row moved under us; a few rounds settle it.
                    again += 1;
                    if again > 8 {
                        return Err(Spent {
                            until: store::now() + 1,
                            paused: false,
                        });
                    }
                }
                Ok(Leased::Refused(spent)) => match class {
                    // A pause (a quota 429) is every caller's to wait out or hand back.
                    CallClass::Interactive => return Err(spent),
                    CallClass::Background if spent.paused => return Err(spent),
                    CallClass::Background => {
                        drop(_one_at_a_time);
                        let left = Duration::from_secs((spent.until - store::now()).max(0) as u64);
                        tracing::debug!(
                            pool,
                            wait_s = left.as_secs(),
                            "background call waits for the points budget"
                        );
                        tokio::time::sleep(left.min(BACKGROUND_POLL)).await;
                    }
                },
                Err(e) => {
                    // The database is down: spend nothing rather than blindly.
                    tracing::warn!(error = %e, "points budget: could not lease");
                    return Err(Spent {
                        until: store::now() + 1,
                        paused: false,
                    });
                }
            }
        }
    }

    /// The fast path: `Some(Ok(renew))` taken from the lease (and whether
    /// this call starts the lease's renewal), `Some(Err)` refused by a known
    /// pause, `None` the database must be asked first.
    ///
    /// An interactive call does not wait for the database while its class
    /// holds enough points: a lease running low, or older than the TTL (but
    /// by less than one more), is spent on while one renewal tops it up in
    /// the background ([`Budget::renew`]). Safe, because a renewal hands
    /// nothing back: every point spent was leased from the row.
    fn take_local(
        &self,
        p: &mut Pool,
        class: CallClass,
        need: i64,
        now: i64,
        ttl: Duration,
    ) -> Option<Result<bool, Spent>> {
        let c = class.idx();
        if p.paused_until > now && p.lease_live(class, ttl) {
            return Some(Err(Spent {
                until: p.paused_until,
                paused: true,
            }));
        }
        if p.paused_until > now || !p.settled_view(now) || p.lease[c] < need {
            return None;
        }
        let renew = match class {
            CallClass::Interactive if p.lease_live(class, ttl) => {
                p.lease[c] - need < need * RENEW_BELOW_CALLS
            }
            CallClass::Interactive if p.lease_live(class, 2 * ttl) => true,
            CallClass::Background if p.lease_live(class, ttl) => false,
            _ => return None,
        };
        p.lease[c] -= need;
        if class == CallClass::Background {
            p.background_spent += need;
        }
        let renew = renew && !p.renewing[c];
        if renew {
            p.renewing[c] = true;
        }
        Some(Ok(renew))
    }

    fn taken(
        self: &Arc<Self>,
        taken: Result<bool, Spent>,
        site: &str,
        pool: &str,
        class: CallClass,
        est: Estimate,
    ) -> Result<Charge, Spent> {
        if taken? {
            tokio::spawn(self.clone().renew(pool.to_string(), class));
        }
        Ok(self.charge(site, pool, class, est))
    }

    /// Top a class's lease up to a chunk without handing anything back (its
    /// points may be spent meanwhile), learning pauses on the way. A roll,
    /// a new quota or a moved end is left to the next call that asks the
    /// database ([`Budget::lease`]).
    async fn renew(self: Arc<Self>, pool: String, class: CallClass) {
        let c = class.idx();
        let gate = {
            let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools.get(&pool).map(|p| p.gate[c].clone())
        };
        let Some(gate) = gate else { return };
        let _one_at_a_time = gate.lock().await;
        let settings = self.settings();
        let now = store::now();
        let ask = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            let Some(p) = pools.get_mut(&pool) else {
                return;
            };
            p.renewing[c] = false;
            if !p.in_db || !p.settled_view(now) {
                return;
            }
            rows::LeaseAsk {
                window_end: p.window_end,
                give_back: 0,
                want: (self.chunk(p.quota, 1) - p.lease[c].max(0)).max(1),
                need: 1,
                cap_bp: settings.cap_bp(class),
                now,
            }
        };
        let leased = match rows::lease(self.store.pool(), &pool, ask).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "points budget: could not renew a lease");
                return;
            }
        };
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = pools.get_mut(&pool) else {
            return;
        };
        match leased {
            Some(r) => {
                p.adopt(&r, now);
                p.lease[c] += r.last_grant;
                p.leased_at[c] = Some(Instant::now());
            }
            // Another process rolled the row: the next lease reads it.
            None => p.in_db = false,
        }
    }

    /// The chunk a lease asks for.
    fn chunk(&self, quota: i64, need: i64) -> i64 {
        if !self.answered.load(Ordering::Relaxed) {
            return need;
        }
        let usable = quota * self.settings().cap_bp(CallClass::Interactive) / 10_000;
        (usable / 200).clamp(10, 2000).max(need)
    }

    fn charge(self: &Arc<Self>, site: &str, pool: &str, class: CallClass, est: Estimate) -> Charge {
        Charge {
            budget: self.clone(),
            site: site.to_string(),
            pool: pool.to_string(),
            class,
            estimate: est.points as i64,
            identity: est.identity,
            write: est.write,
            settled: false,
        }
    }

    /// One trip to the shared row: roll, learn, hand back, take a chunk
    /// and `need` from it at once.
    async fn lease(&self, pool: &str, class: CallClass, need: i64) -> Result<Leased, sqlx::Error> {
        let settings = self.settings();
        let db = self.store.pool();
        let now = store::now();
        let confirm_to = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools.get_mut(pool).and_then(|p| p.confirm_to.take())
        };
        let c = class.idx();
        let (mut window_end, quota, quota_dirty, roll_to, shorten_to, give_back, in_db) = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            let Some(p) = pools.get_mut(pool) else {
                return Ok(Leased::Again);
            };
            let give = p.lease[c];
            p.lease[c] = 0;
            p.leased_at[c] = None;
            (
                p.window_end,
                p.quota,
                p.quota_dirty,
                p.roll_to.take(),
                p.shorten_to.take(),
                give,
                p.in_db,
            )
        };
        if !in_db || confirm_to.is_some() {
            if !in_db {
                rows::ensure(db, pool, window_end, quota, now).await?;
            }
            if let Some(end) = confirm_to {
                rows::confirm(db, pool, end, now).await?;
            }
            window_end = rows::ensure(db, pool, window_end, quota, now)
                .await?
                .window_end;
        }
        // Atlassian's reset is authoritative both ways: a window that
        // Atlassian ends sooner than the row says ends then (what was leased
        // stays leased), so that the points of the next window are not left
        // unused while this process waits for a later, guessed end.
        if let Some(end) = shorten_to.filter(|e| *e + ROLL_SLACK < window_end && *e > now) {
            window_end = rows::shorten(db, pool, window_end, end, quota, now)
                .await?
                .window_end;
        }
        let target = match roll_to {
            Some(t) if t > window_end + ROLL_SLACK => Some(t),
            _ if window_end <= now => {
                let behind = now - window_end;
                Some(window_end + (behind / 3600 + 1) * 3600)
            }
            _ => None,
        };
        let mut give_back = give_back;
        if let Some(t) = target {
            window_end = rows::roll(db, pool, t, quota, ROLL_SLACK, now)
                .await?
                .window_end;
            give_back = 0; // a lease of the old window is void
        }
        if quota_dirty {
            rows::set_quota(db, pool, quota).await?;
        }
        let ask = rows::LeaseAsk {
            window_end,
            give_back,
            want: self.chunk(quota, need),
            need,
            cap_bp: settings.cap_bp(class),
            now,
        };
        let leased = rows::lease(db, pool, ask).await?;
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = pools.get_mut(pool) else {
            return Ok(Leased::Again);
        };
        if quota_dirty {
            p.quota_dirty = false;
        }
        let Some(r) = leased else {
            // The row is in another window (another process rolled it):
            // read it next time.
            p.in_db = false;
            return Ok(Leased::Again);
        };
        p.adopt(&r, now);
        if r.last_grant >= need {
            // (`+=`: a call settled meanwhile may have left a debt.)
            p.lease[c] += r.last_grant - need;
            p.leased_at[c] = Some(Instant::now());
            if class == CallClass::Background {
                p.background_spent += need;
            }
            return Ok(Leased::Taken);
        }
        let paused = p.paused_until > now;
        // Nothing granted: keep the refusal for this lease's lifetime.
        p.leased_at[c] = Some(Instant::now());
        Ok(Leased::Refused(Spent {
            until: if paused { p.paused_until } else { p.window_end },
            paused,
        }))
    }

    /// Settle a call: the difference to its estimate comes off the lease.
    fn spend(&self, site: &str, pool: &str, class: CallClass, estimate: i64, actual: i64) {
        if actual != estimate {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = pools.get_mut(pool) {
                p.lease[class.idx()] -= actual - estimate;
                if class == CallClass::Background {
                    p.background_spent += actual - estimate;
                }
            }
        }
        if actual > 0 {
            let mut u = self.unflushed.lock().unwrap_or_else(|e| e.into_inner());
            match u.get_mut(site) {
                Some(v) => v[class.idx()] += actual,
                None => {
                    let mut v = [0; 2];
                    v[class.idx()] = actual;
                    u.insert(site.to_string(), v);
                }
            }
        }
    }

    /// Learn from an answer's headers: the quota (`RateLimit-Policy`, or
    /// its `Beta-` twin), whether the pool is per tenant, and when it resets
    /// (`RateLimit: …;t=`).
    pub fn observe(&self, site: &str, headers: &HeaderMap) {
        if !self.answered.load(Ordering::Relaxed) {
            self.answered.store(true, Ordering::Relaxed);
        }
        let Some(policy) = quota_item(headers, "ratelimit-policy") else {
            return;
        };
        if policy.name.contains("tenant") {
            let mut t = self.tenant_sites.lock().unwrap_or_else(|e| e.into_inner());
            if !t.contains(site) {
                t.insert(site.to_string());
            }
        }
        let reset = quota_item(headers, "ratelimit").and_then(|i| i.param("t"));
        let pool = self.pool_of(site);
        let now = store::now();
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let quota = self.settings().per_hour as i64;
        let p = pools.entry(pool).or_insert_with(|| Pool::new(quota, now));
        if let Some(q) = policy.param("q") {
            if q > 0 && q != p.quota {
                p.quota = q;
                p.quota_dirty = true;
            }
        }
        if let Some(t) = reset {
            // `t` is whole seconds rounded down, and so is `now`: the reset
            // lies in (now + t, now + t + 2). Ending the window early would
            // spend the next window's points in this one (a quota 429).
            let end = now + t + RESET_MARGIN_S;
            if !p.confirmed {
                if p.confirm_to.is_none() {
                    p.confirm_to = Some(end);
                }
            } else if end > p.window_end + ROLL_SLACK {
                p.roll_to = Some(end);
            } else if end + ROLL_SLACK < p.window_end {
                p.shorten_to = Some(end);
            }
        }
        // (Atlassian's `X-RateLimit-Remaining` is not used to correct the
        // count: unspent leases of other processes make it ambiguous.)
    }

    /// A quota 429: close the pool for every caller until `until`.
    pub async fn pause(&self, site: &str, until_secs: u64) {
        let pool = self.pool_of(site);
        let now = store::now();
        let until = now + until_secs.max(1) as i64;
        {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            let quota = self.settings().per_hour as i64;
            let p = pools
                .entry(pool.clone())
                .or_insert_with(|| Pool::new(quota, now));
            p.paused_until = p.paused_until.max(until);
            p.lease = [0; 2];
            p.leased_at = [Some(Instant::now()); 2];
        }
        let quota = self.settings().per_hour as i64;
        let db = self.store.pool();
        let r = async {
            rows::ensure(db, &pool, next_hour(now), quota, now).await?;
            rows::pause(db, &pool, until, now).await
        }
        .await;
        match r {
            Ok(row) => {
                let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(p) = pools.get_mut(&pool) {
                    p.adopt(&row, now);
                }
            }
            Err(e) => tracing::warn!(error = %e, "points budget: could not record the quota pause"),
        }
    }

    /// Write what was spent to `points_usage` and the metrics; hand back
    /// leases that have run out. The workers call it every few seconds.
    pub async fn flush(&self) {
        let ttl = self.lease_ttl();
        let spent: Vec<(String, [i64; 2])> = {
            let mut u = self.unflushed.lock().unwrap_or_else(|e| e.into_inner());
            u.drain().collect()
        };
        let db = self.store.pool();
        let hour = hour_start(store::now());
        for (site, v) in &spent {
            for class in [CallClass::Interactive, CallClass::Background] {
                let n = v[class.idx()];
                if n == 0 {
                    continue;
                }
                if let Some(m) = self.metrics.get() {
                    m.points_used(site, class.as_str(), n as u64);
                }
                if let Err(e) = rows::add_usage(db, site, hour, class.as_str(), n).await {
                    tracing::warn!(error = %e, "points budget: could not record usage");
                    let mut u = self.unflushed.lock().unwrap_or_else(|e| e.into_inner());
                    u.entry(site.clone()).or_insert([0; 2])[class.idx()] += n;
                }
            }
        }
        // A lease is handed back once no call may spend it (see `take_local`).
        let idle = |p: &Pool, class: CallClass| {
            let ttl = match class {
                CallClass::Interactive => 2 * ttl,
                CallClass::Background => ttl,
            };
            p.lease[class.idx()] > 0 && !p.lease_live(class, ttl)
        };
        let expired: Vec<(String, CallClass, i64, Arc<tokio::sync::Mutex<()>>)> = {
            let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools
                .iter()
                .flat_map(|(k, p)| {
                    [CallClass::Interactive, CallClass::Background]
                        .into_iter()
                        .filter(|&c| idle(p, c))
                        .map(|c| (k.clone(), c, p.window_end, p.gate[c.idx()].clone()))
                })
                .collect()
        };
        for (pool, class, window_end, gate) in expired {
            let _g = gate.lock().await;
            let give = {
                let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                match pools.get_mut(&pool) {
                    Some(p) if idle(p, class) && p.window_end == window_end => {
                        std::mem::take(&mut p.lease[class.idx()])
                    }
                    _ => 0,
                }
            };
            if give > 0 {
                if let Err(e) = rows::give_back(db, &pool, window_end, give).await {
                    tracing::warn!(error = %e, "points budget: could not hand back a lease");
                }
            }
        }
        if let Some(m) = self.metrics.get() {
            let views = self.snapshot();
            let sites: Vec<String> = spent.iter().map(|(s, _)| s.clone()).collect();
            for site in sites {
                let pool = self.pool_of(&site);
                if let Some(v) = views.iter().find(|v| v.pool == pool) {
                    m.points_remaining(&site, (v.quota - v.spent).max(0));
                }
            }
        }
    }

    /// This process's view of every pool it used.
    pub fn snapshot(&self) -> Vec<PoolView> {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .iter()
            .map(|(k, p)| PoolView {
                pool: k.clone(),
                window_end: p.window_end,
                quota: p.quota,
                spent: p.row_leased - p.lease.iter().map(|l| l.max(&0)).sum::<i64>(),
                paused_until: p.paused_until,
            })
            .collect()
    }

    /// Seconds a background job costing `points` more needs: at the rate
    /// this process spent background points at this window (else
    /// `fallback_rate` points/s) within the background share left now, then
    /// a full share per later window.
    pub fn eta_secs(&self, site: &str, points: i64, fallback_rate: f64) -> u64 {
        let settings = self.settings();
        let pool = self.pool_of(site);
        let now = store::now();
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let quota = settings.per_hour as i64;
        let (quota, row_leased, lease, window_end, spent, since) = match pools.get(&pool) {
            Some(p) => (
                p.quota,
                p.row_leased,
                p.lease[CallClass::Background.idx()],
                p.window_end,
                p.background_spent,
                p.window_seen_at,
            ),
            None => (quota, 0, 0, next_hour(now), 0, now),
        };
        let elapsed = (now - since).max(1) as f64;
        let rate = if spent > 0 {
            spent as f64 / elapsed
        } else {
            fallback_rate.max(0.001)
        };
        let per_window = (quota * settings.cap_bp(CallClass::Background) / 10_000).max(1);
        let room = (per_window - row_leased + lease.max(0)).max(0);
        if points <= room {
            return (points as f64 / rate).ceil() as u64;
        }
        let rest = points - room;
        let windows = rest / per_window;
        let last = rest % per_window;
        let wait = (window_end - now).max(0) as f64 + windows as f64 * 3600.0;
        (wait + last as f64 / rate).ceil() as u64
    }

    /// Record this process as alive; answers the live processes (≥ 1).
    pub async fn heartbeat(&self, process_id: &str, every: Duration) -> Result<u64, sqlx::Error> {
        let now = store::now();
        let secs = every.as_secs().max(1) as i64;
        let n = rows::heartbeat(
            self.store.pool(),
            process_id,
            now,
            now - 3 * secs,
            now - 60 * secs,
        )
        .await?;
        Ok(n.max(1) as u64)
    }

    pub async fn leave(&self, process_id: &str) {
        if let Err(e) = rows::forget_process(self.store.pool(), process_id).await {
            tracing::debug!(error = %e, "could not remove the heartbeat");
        }
    }
}

/// How often a process writes what it spent and hands back idle leases.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// How often a process renews its heartbeat and recounts the live ones.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// The budget's worker: flush every [`FLUSH_EVERY`], heartbeat every
/// [`HEARTBEAT_EVERY`] and set the pacer's share to 1 / live processes.
pub async fn run(state: crate::state::Core) {
    let budget = state.atlassian.budget().clone();
    let id = state.jobs.worker_id.clone();
    let mut last_beat: Option<Instant> = None;
    loop {
        budget.flush().await;
        if last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY) {
            last_beat = Some(Instant::now());
            match budget.heartbeat(&id, HEARTBEAT_EVERY).await {
                Ok(live) => {
                    if let Some(p) = state.atlassian.pacer() {
                        p.set_share(1.0 / live as f64);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
            }
        }
        tokio::time::sleep(FLUSH_EVERY).await;
    }
}

/// One item of a structured `RateLimit` / `RateLimit-Policy` header that
/// names a quota (`"global-app-quota";q=65000;w=3600`).
struct Item<'a> {
    name: &'a str,
    params: &'a str,
}

impl Item<'_> {
    fn param(&self, key: &str) -> Option<i64> {
        self.params.split(';').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == key)
                .then(|| v.trim().parse::<i64>().ok())
                .flatten()
        })
    }
}

fn quota_item<'a>(headers: &'a HeaderMap, name: &str) -> Option<Item<'a>> {
    let v = headers
        .get(name)
        .or_else(|| {
            let beta: &str = match name {
                "ratelimit-policy" => "beta-ratelimit-policy",
                _ => "beta-ratelimit",
            };
            headers.get(beta)
        })?
        .to_str()
        .ok()?;
    v.split(',').find_map(|item| {
        let item = item.trim();
        let (n, params) = item.split_once(';').unwrap_or((item, ""));
        let n = n.trim().trim_matches('"');
        n.contains("quota").then_some(Item { name: n, params })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_counted_from_the_answer() {
        assert_eq!(
            count_objects(br#"{"id":"1","fields":{"labels":["a","b"]}}"#),
            1
        );
        assert_eq!(count_objects(br#"[{"a":1},{"a":[1,2]},{"a":"],"}]"#), 3);
        assert_eq!(count_objects(b"[]"), 0);
        assert_eq!(
            count_objects(br#"{"names":["x"],"issues":[{"k":"[,"},{"k":2}],"nextPageToken":"t"}"#),
            2
        );
        assert_eq!(count_objects(br#"{"issues":[],"isLast":true}"#), 0);
        // In pieces, split inside a string with an escape.
        let mut c = ObjectCounter::default();
        for part in [&br#"{"values":[{"s":"a\"#[..], br#"",]"},"#, br#"{}]}"#] {
            c.feed(part);
        }
        assert_eq!(c.finish(), 2);
    }

    #[test]
    fn estimates_follow_the_published_costs() {
        let e = estimate(&Method::GET, "rest/api/3/issue/ABC-1", None, None);
        assert_eq!((e.points, e.write), (2, false));
        let e = estimate(
            &Method::GET,
            "rest/api/3/search/jql",
            Some("jql=x&maxResults=100"),
            None,
        );
        assert_eq!(e.points, 101);
        let e = estimate(
            &Method::POST,
            "rest/api/3/search/jql",
            None,
            Some(br#"{"maxResults":20}"#),
        );
        assert_eq!(e.points, 21);
        let e = estimate(&Method::PUT, "rest/api/3/issue/ABC-1", None, None);
        assert_eq!((e.points, e.write), (1, true));
        let e = estimate(&Method::GET, "rest/api/3/myself", None, None);
        assert_eq!((e.points, e.identity), (3, true));
    }

    #[test]
    fn quota_headers_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            "beta-ratelimit-policy",
            "\"jira-burst-based\";q=100;w=1, \"tenant-app-quota\";q=5000;w=3600"
                .parse()
                .unwrap(),
        );
        let i = quota_item(&h, "ratelimit-policy").unwrap();
        assert_eq!(i.name, "tenant-app-quota");
        assert_eq!(i.param("q"), Some(5000));
        assert_eq!(i.param("w"), Some(3600));
        h.insert(
            "ratelimit",
            "\"global-app-quota\";r=10;t=600".parse().unwrap(),
        );
        assert_eq!(quota_item(&h, "ratelimit").unwrap().param("t"), Some(600));
    }

    #[test]
    fn classes_have_their_caps() {
        let s = BudgetSettings::default();
        assert_eq!(s.cap_bp(CallClass::Interactive), 8000);
        assert_eq!(s.cap_bp(CallClass::Background), 7600);
    }
}
