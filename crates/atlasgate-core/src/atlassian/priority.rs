//! Interactive calls before background work, for CPU and connections as the
//! budget does it for points (docs/design.md §17: "interactive calls first").
//!
//! A backfill left alone runs every project partition at once and keeps both
//! cores busy rendering, parsing and storing pages, so an app's call waits
//! for CPU behind it even when its points are there. So each call made for an
//! app is counted while it is in flight ([`Priority::interactive`]), and a
//! sync page cycle (fetch, parse, store) first takes a
//! [`Priority::background_turn`]: while no app call is in flight or has been
//! for [`QUIET`], that costs nothing; otherwise the cycles take turns, one at
//! a time in this process, and each turn is held [`HOLD_FACTOR`] times as
//! long again as its cycle took ([`BackgroundTurn::finish`]), so background
//! work gets at most about a quarter of one core while apps are calling. When the apps go quiet
//! the partitions run at full speed again. Per process: each process yields
//! to its own callers (the CPU it shares is its machine's).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

/// After the last app call ended, background work waits this long before it
/// runs at full speed again (app calls come in bursts).
pub const QUIET: Duration = Duration::from_millis(500);

/// Beside app calls, a turn is held this many times its cycle's length
/// after it (background work runs a quarter of the time).
pub const HOLD_FACTOR: u32 = 3;

/// The longest a turn is held past its cycle, whatever the cycle took (a
/// cycle that waited for the points budget or a rate-limit pause was long
/// without using the CPU).
const MAX_HOLD: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Priority {
    started: Instant,
    in_flight: AtomicUsize,
    /// When the last app call ended, in ms since `started` (0: never).
    last_ms: AtomicU64,
    lane: Mutex<()>,
    /// Background turns that had to take the lane.
    yielded: AtomicU64,
}

impl Default for Priority {
    fn default() -> Self {
        Priority {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            lane: Mutex::new(()),
            yielded: AtomicU64::new(0),
        }
    }
}

/// An app call in flight; dropping it ends it.
#[derive(Debug)]
pub struct Interactive<'a>(&'a Priority);

impl Drop for Interactive<'_> {
    fn drop(&mut self) {
        self.0.stamp();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A background page cycle's turn (see the module docs).
#[derive(Debug)]
pub struct BackgroundTurn<'a> {
    lane: Option<MutexGuard<'a, ()>>,
    began: Instant,
}

impl BackgroundTurn<'_> {
    /// The cycle is done: a turn that yielded is held [`HOLD_FACTOR`] times
    /// as long again (at most [`MAX_HOLD`]) before the next cycle may start.
    pub async fn finish(self) {
        if self.lane.is_some() {
            tokio::time::sleep((self.began.elapsed() * HOLD_FACTOR).min(MAX_HOLD)).await;
        }
    }

    /// Whether this turn had to wait for app calls.
    pub fn yielded(&self) -> bool {
        self.lane.is_some()
    }
}

impl Priority {
    fn now_ms(&self) -> u64 {
        // +1 so that 0 stays "never".
        self.started.elapsed().as_millis() as u64 + 1
    }

    fn stamp(&self) {
        self.last_ms.fetch_max(self.now_ms(), Ordering::AcqRel);
    }

    /// Count an app call until the guard is dropped.
    pub fn interactive(&self) -> Interactive<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.stamp();
        Interactive(self)
    }

    /// Whether app calls are in flight, or ended less than [`QUIET`] ago.
    pub fn busy(&self) -> bool {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return true;
        }
        let last = self.last_ms.load(Ordering::Acquire);
        last != 0 && self.now_ms().saturating_sub(last) < QUIET.as_millis() as u64
    }

    /// A turn for one background page cycle: at once while no app is
    /// calling, else one cycle at a time.
    pub async fn background_turn(&self) -> BackgroundTurn<'_> {
        let lane = if self.busy() {
            self.yielded.fetch_add(1, Ordering::Relaxed);
            Some(self.lane.lock().await)
        } else {
            None
        };
        BackgroundTurn {
            lane,
            began: Instant::now(),
        }
    }

    /// How many background turns yielded to app calls (for tests and metrics).
    pub fn yielded(&self) -> u64 {
        self.yielded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn background_cycles_run_at_once_alone_and_one_at_a_time_beside_app_calls() {
        let p = Priority::default();
        // Alone: two turns at once, neither yields.
        let a = p.background_turn().await;
        let b = tokio::time::timeout(Duration::from_millis(200), p.background_turn())
            .await
            .expect("a second turn waits while no app is calling");
        assert!(!a.yielded() && !b.yielded());
        drop((a, b));
        assert!(!p.busy(), "no app call was ever made");

        // An app call in flight: the second turn waits for the first.
        let call = p.interactive();
        assert!(p.busy());
        let first = p.background_turn().await;
        assert!(first.yielded());
        assert!(
            tokio::time::timeout(Duration::from_millis(100), p.background_turn())
                .await
                .is_err(),
            "a second cycle started while the first held the turn"
        );
        // The first cycle took ~100 ms: finishing holds the turn 3 times as long.
        let t0 = Instant::now();
        first.finish().await;
        assert!(t0.elapsed() >= Duration::from_millis(290), "{:?}", t0.elapsed());
        let second = tokio::time::timeout(Duration::from_millis(200), p.background_turn())
            .await
            .expect("the turn is free once the first cycle finished");
        assert!(second.yielded());
        drop(second);
        assert_eq!(p.yielded(), 3);

        // The app call ends: still busy for QUIET, then full speed again.
        drop(call);
        assert!(p.busy(), "busy for QUIET after the last app call");
        tokio::time::sleep(QUIET + Duration::from_millis(50)).await;
        assert!(!p.busy());
        assert!(!p.background_turn().await.yielded());
    }
}
