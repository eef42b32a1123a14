//! The one guard of every pagination loop over Jira and Confluence (docs/design.md
//! §12): a loop stops, with a clear error, when Atlassian repeats a cursor
//! (`nextPageToken`, a `next` link, or a `startAt` it answers with) or when
//! it has followed [`MAX_PAGES`] pages. The error is
//! [`AtlassianError::Decode`]: a 502 problem with the reason on the API, a
//! failed pass (with the reason in `last_error`) on a sync.

use std::collections::HashSet;

use super::AtlassianError;

/// More pages than any real answer needs (10 000 pages of 100 issues, or
/// of 5 000 ids, is past every site's size).
pub const MAX_PAGES: usize = 10_000;

/// Follows one pagination chain; call [`PageGuard::follow`] with the cursor
/// of each next page before asking for it.
#[derive(Debug)]
pub struct PageGuard {
    what: &'static str,
    seen: HashSet<String>,
    pages: usize,
    cap: usize,
}

impl PageGuard {
    /// `what` names the listing in the error (`"project search"`).
    pub fn new(what: &'static str) -> Self {
        Self::with_cap(what, MAX_PAGES)
    }

    pub fn with_cap(what: &'static str, cap: usize) -> Self {
        PageGuard {
            what,
            seen: HashSet::new(),
            pages: 0,
            cap: cap.max(1),
        }
    }

    /// Take the next page at `cursor`: an error when that cursor was seen
    /// before in this chain, or when the page cap is reached.
    pub fn follow(&mut self, cursor: &str) -> Result<(), AtlassianError> {
        self.pages += 1;
        if self.pages >= self.cap {
            return Err(AtlassianError::Decode(format!(
                "{}: stopped after {} pages (the page cap)",
                self.what, self.cap
            )));
        }
        if !self.seen.insert(cursor.to_string()) {
            let shown: String = cursor.chars().take(40).collect();
            return Err(AtlassianError::Decode(format!(
                "{}: Atlassian repeated the page cursor `{shown}`; stopped",
                self.what
            )));
        }
        Ok(())
    }

    /// [`follow`](Self::follow) for `startAt` paging: the cursor is the
    /// `startAt` Atlassian answered with (falling back to the one asked
    /// for), so an upstream that ignores `startAt` is caught on its second page.
    pub fn follow_start(
        &mut self,
        page: &serde_json::Value,
        asked: usize,
    ) -> Result<(), AtlassianError> {
        let answered = page["startAt"].as_u64().map_or(asked as u64, |s| s);
        if self.seen.is_empty() {
            // The first page's own position counts as seen.
            self.seen.insert(answered.to_string());
            self.pages += 1;
            return Ok(());
        }
        self.follow(&answered.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_cursor_stops_the_loop() {
        let mut g = PageGuard::new("search");
        g.follow("a").unwrap();
        g.follow("b").unwrap();
        let e = g.follow("a").unwrap_err().to_string();
        assert!(
            e.contains("search: Atlassian repeated the page cursor `a`"),
            "{e}"
        );
    }

    #[test]
    fn the_page_cap_stops_the_loop() {
        let mut g = PageGuard::with_cap("list", 3);
        g.follow("1").unwrap();
        g.follow("2").unwrap();
        let e = g.follow("3").unwrap_err().to_string();
        assert!(e.contains("stopped after 3 pages"), "{e}");
    }

    #[test]
    fn a_start_at_that_does_not_move_stops_the_loop() {
        let page = |s: u64| serde_json::json!({ "startAt": s });
        let mut g = PageGuard::new("projects");
        g.follow_start(&page(0), 0).unwrap();
        g.follow_start(&page(100), 100).unwrap();
        // Asked for 200, answered the first page again.
        assert!(g.follow_start(&page(0), 200).is_err());
        // Without `startAt` in the answer, the asked one counts.
        let mut g = PageGuard::new("projects");
        g.follow_start(&serde_json::json!({}), 0).unwrap();
        g.follow_start(&serde_json::json!({}), 50).unwrap();
        assert!(g.follow_start(&serde_json::json!({}), 50).is_err());
    }
}
