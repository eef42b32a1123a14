//! Writes to one issue, paced below Jira's per-issue write limits: 20 per
//! 2 s and 100 per 30 s, both enforced (docs/atlassian-behaviour.md §4,
//! `jira-per-issue-on-write`). An agent that loops on one issue waits here
//! instead of spending requests on certain 429s.
//!
//! Per process, like the client layer's pacing (docs/design.md §10 allows
//! it): each process keeps below the limit on its own, and a 429 one of them
//! still meets is learnt by the client layer's per-issue pause.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Jira's per-issue write windows: (writes, window).
pub const ISSUE_WRITE_LIMITS: [(usize, Duration); 2] =
    [(20, Duration::from_secs(2)), (100, Duration::from_secs(30))];

/// Issues tracked at most; past it, issues with no write in flight and
/// none in the longest window are forgotten (they would start empty anyway).
const MAX_ISSUES: usize = 10_000;

/// One admitted write: in flight until its [`WriteSlot`] is dropped, then
/// counted from the moment its answer came back.
#[derive(Debug, Clone, Copy)]
struct Write {
    id: u64,
    done: Option<Instant>,
}

#[derive(Debug, Default)]
struct Issues {
    next_id: u64,
    by_issue: HashMap<(String, String), Vec<Write>>,
}

/// Sliding-window admissions per (site, issue).
///
/// A write holds its place in every window from its admission until its
/// answer is back, and then for the window's length after that answer. Jira
/// counts a write when it arrives, which is after the admission and before
/// the answer; so counting from the answer keeps the writes Jira sees
/// inside its windows however long each one travels (a write admitted
/// first may arrive after one admitted later). The cost: a write waits for
/// the window to pass after the earlier write's answer, not its start.
#[derive(Debug)]
pub struct IssueWritePacer {
    limits: Vec<(usize, Duration)>,
    issues: Mutex<Issues>,
    /// Woken whenever a write finishes (an in-flight write's slot frees at
    /// a moment no clock can predict).
    finished: Notify,
}

/// A write's place under the limits; dropping it marks the write answered.
#[derive(Debug)]
pub struct WriteSlot<'a> {
    pacer: &'a IssueWritePacer,
    key: (String, String),
    id: u64,
}

impl Drop for WriteSlot<'_> {
    fn drop(&mut self) {
        self.pacer.finish(&self.key, self.id, Instant::now());
    }
}

impl Default for IssueWritePacer {
    fn default() -> Self {
        IssueWritePacer::new(&ISSUE_WRITE_LIMITS)
    }
}

fn issue_key(site: &str, issue: &str) -> (String, String) {
    (site.to_string(), issue.to_ascii_uppercase())
}

impl IssueWritePacer {
    pub fn new(limits: &[(usize, Duration)]) -> IssueWritePacer {
        IssueWritePacer {
            limits: limits.to_vec(),
            issues: Mutex::new(Issues::default()),
            finished: Notify::new(),
        }
    }

    fn longest(&self) -> Duration {
        self.limits
            .iter()
            .map(|(_, w)| *w)
            .max()
            .unwrap_or_default()
    }

    /// Take a slot now (its id), or say how long until one may free: `None`
    /// when only a write in flight can free it (its answer wakes the wait).
    fn try_take(&self, key: &(String, String), now: Instant) -> Result<u64, Option<Duration>> {
        let longest = self.longest();
        let mut issues = self.issues.lock().unwrap_or_else(|e| e.into_inner());
        let expired = |w: &Write| w.done.is_some_and(|t| now.duration_since(t) >= longest);
        if issues.by_issue.len() >= MAX_ISSUES {
            issues.by_issue.retain(|_, ws| {
                ws.retain(|w| !expired(w));
                !ws.is_empty()
            });
        }
        let id = issues.next_id;
        let writes = issues.by_issue.entry(key.clone()).or_default();
        writes.retain(|w| !expired(w));
        let mut full = false;
        let mut wait: Option<Duration> = None;
        for (n, window) in &self.limits {
            // Answered writes inside this window, oldest answer first; the
            // writes in flight are inside every window.
            let mut answered: Vec<Instant> = writes
                .iter()
                .filter_map(|w| w.done)
                .filter(|t| now.duration_since(*t) < *window)
                .collect();
            let inside = answered.len() + writes.iter().filter(|w| w.done.is_none()).count();
            if inside < *n {
                continue;
            }
            full = true;
            // A slot frees when `inside - n + 1` answered writes have left
            // the window; with too few answered, only an answer can free it.
            answered.sort();
            if let Some(t) = answered.get(inside - n) {
                let d = *t + *window - now;
                wait = Some(wait.map_or(d, |w| w.max(d)));
            }
        }
        if full {
            return Err(wait);
        }
        writes.push(Write { id, done: None });
        issues.next_id += 1;
        Ok(id)
    }

    /// The write `id` was answered at `now`.
    fn finish(&self, key: &(String, String), id: u64, now: Instant) {
        {
            let mut issues = self.issues.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = issues
                .by_issue
                .get_mut(key)
                .and_then(|ws| ws.iter_mut().find(|w| w.id == id))
            {
                w.done = Some(now);
            }
        }
        self.finished.notify_waiters();
    }

    /// Wait until a write to `issue` on `site` keeps inside every window,
    /// and count it; hold the slot until the write's answer is back.
    pub async fn admit(&self, site: &str, issue: &str) -> WriteSlot<'_> {
        let key = issue_key(site, issue);
        loop {
            // Registered before the check, so an answer arriving between
            // the check and the wait is not missed.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            match self.try_take(&key, Instant::now()) {
                Ok(id) => {
                    return WriteSlot {
                        pacer: self,
                        key,
                        id,
                    }
                }
                Err(Some(wait)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = &mut finished => {}
                    }
                }
                Err(None) => finished.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admit one write at `*now` or later on a simulated clock, answered at
    /// once: the schedule the pacer makes, independent of the machine's speed.
    fn admit_at(pacer: &IssueWritePacer, issue: &str, now: &mut Instant) {
        let key = issue_key("site", issue);
        loop {
            match pacer.try_take(&key, *now) {
                Ok(id) => return pacer.finish(&key, id, *now),
                Err(wait) => {
                    let wait = wait.expect("nothing in flight");
                    assert!(!wait.is_zero());
                    *now += wait;
                }
            }
        }
    }

    #[test]
    fn the_21st_write_in_two_seconds_waits_for_the_window() {
        let pacer = IssueWritePacer::default();
        let start = Instant::now();
        let mut now = start;
        for _ in 0..20 {
            admit_at(&pacer, "ACME-1", &mut now);
        }
        assert_eq!(now, start, "the first 20 go at once");
        // Another issue is not held up by this one.
        admit_at(&pacer, "ACME-2", &mut now);
        assert_eq!(now, start);
        // Keys are case-insensitive, as Jira's are.
        admit_at(&pacer, "acme-1", &mut now);
        assert_eq!(now - start, Duration::from_secs(2));
    }

    #[test]
    fn a_hundred_writes_fill_the_thirty_second_window() {
        let pacer = IssueWritePacer::default();
        let start = Instant::now();
        let mut now = start;
        for _ in 0..100 {
            admit_at(&pacer, "ACME-1", &mut now);
        }
        // 20 per 2 s: the 100th goes in the fifth window (at 8 s).
        assert_eq!(now - start, Duration::from_secs(8));
        admit_at(&pacer, "ACME-1", &mut now);
        // The 101st waits for the first to leave the 30 s window.
        assert_eq!(now - start, Duration::from_secs(30));
    }

    #[test]
    fn a_write_counts_until_its_answer_and_the_window_after_it() {
        let pacer = IssueWritePacer::default();
        let key = issue_key("site", "ACME-1");
        let start = Instant::now();
        let ids: Vec<u64> = (0..20)
            .map(|_| pacer.try_take(&key, start).unwrap())
            .collect();
        // All 20 in flight: no clock frees a slot, only an answer.
        assert_eq!(
            pacer.try_take(&key, start + Duration::from_secs(5)),
            Err(None)
        );
        // The first answer comes back 1 s in: its slot frees 2 s after that.
        pacer.finish(&key, ids[0], start + Duration::from_secs(1));
        assert_eq!(
            pacer.try_take(&key, start + Duration::from_secs(2)),
            Err(Some(Duration::from_secs(1)))
        );
        assert!(pacer.try_take(&key, start + Duration::from_secs(3)).is_ok());
    }

    #[tokio::test]
    async fn an_answer_wakes_a_write_waiting_for_it() {
        // While the first is in flight no timer runs for the second: only
        // the first's answer can wake it.
        let pacer = IssueWritePacer::new(&[(1, Duration::from_millis(1))]);
        let first = pacer.admit("site", "ACME-1").await;
        let second = async {
            let _slot = pacer.admit("site", "ACME-1").await;
        };
        let answered = async move {
            tokio::task::yield_now().await;
            drop(first);
        };
        let both = async { tokio::join!(second, answered) };
        // A hang guard, not a speed check: a lost wake-up never ends.
        assert!(
            tokio::time::timeout(Duration::from_secs(60), both)
                .await
                .is_ok(),
            "the answer did not wake the waiting write"
        );
    }
}
