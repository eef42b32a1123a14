//! Writes to one issue, paced below Jira's per-issue write limits: 20 per
//! 2 s and 100 per 30 s, both enforced (docs/atlassian-behaviour.md §4,
//! `jira-per-issue-on-write`). An agent that loops on one issue waits here
//! instead of spending requests on certain 429s.
//!
//! Per process, like the client layer's pacing (docs/design.md §10 allows
//! it): each process keeps below the limit on its own, and a 429 one of them
//! still meets is learnt by the client layer's per-issue pause.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Jira's per-issue write windows: (writes, window).
pub const ISSUE_WRITE_LIMITS: [(usize, Duration); 2] =
    [(20, Duration::from_secs(2)), (100, Duration::from_secs(30))];

/// Issues tracked at most; past it, issues with no write in the longest
/// window are forgotten (they would start empty anyway).
const MAX_ISSUES: usize = 10_000;

/// Sliding-window admissions per (site, issue).
#[derive(Debug)]
pub struct IssueWritePacer {
    limits: Vec<(usize, Duration)>,
    issues: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
}

impl Default for IssueWritePacer {
    fn default() -> Self {
        IssueWritePacer::new(&ISSUE_WRITE_LIMITS)
    }
}

impl IssueWritePacer {
    pub fn new(limits: &[(usize, Duration)]) -> IssueWritePacer {
        IssueWritePacer {
            limits: limits.to_vec(),
            issues: Mutex::new(HashMap::new()),
        }
    }

    fn longest(&self) -> Duration {
        self.limits
            .iter()
            .map(|(_, w)| *w)
            .max()
            .unwrap_or_default()
    }

    /// Take a slot now, or say how long until one frees.
    fn try_take(&self, site: &str, issue: &str, now: Instant) -> Option<Duration> {
        let longest = self.longest();
        let mut map = self.issues.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ISSUES {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < longest));
        }
        let q = map
            .entry((site.to_string(), issue.to_ascii_uppercase()))
            .or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= longest) {
            q.pop_front();
        }
        let mut wait = Duration::ZERO;
        for (n, window) in &self.limits {
            // The admissions inside this window, newest last.
            let inside: Vec<&Instant> = q
                .iter()
                .filter(|t| now.duration_since(**t) < *window)
                .collect();
            if inside.len() >= *n {
                // A slot frees when the oldest of the last `n` leaves the window.
                let oldest = inside[inside.len() - n];
                wait = wait.max(*oldest + *window - now);
            }
        }
        if wait.is_zero() {
            q.push_back(now);
            None
        } else {
            Some(wait)
        }
    }

    /// Wait until a write to `issue` on `site` keeps inside every window,
    /// and count it.
    pub async fn admit(&self, site: &str, issue: &str) {
        loop {
            match self.try_take(site, issue, Instant::now()) {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admit one write at `*now` or later on a simulated clock: the schedule
    /// the pacer makes, independent of the machine's speed.
    fn admit_at(pacer: &IssueWritePacer, issue: &str, now: &mut Instant) {
        while let Some(wait) = pacer.try_take("site", issue, *now) {
            assert!(!wait.is_zero());
            *now += wait;
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
}
