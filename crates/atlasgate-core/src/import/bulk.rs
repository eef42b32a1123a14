//! The bulk import behind `atlasgate connections import --file F`
//! (docs/design.md §18): a JSON-lines file, one [`ImportInput`] a line.
//!
//! - Lines are read as they are needed, at most `concurrency` imports in
//!   flight.
//! - Imports that need Atlassian start at most `per_second` a second (a
//!   shared pacer): each one is a token-endpoint call plus `/me` and
//!   accessible-resources. Atlassian publishes no limit for its token
//!   endpoint; the default stays far below its per-app REST rates, and a
//!   429 or 5xx is retried after a pause (docs/importing.md).
//! - A later line for the same (owner, profile) as an earlier one is refused
//!   as a duplicate without calling Atlassian: two grants for one
//!   connection in one file is a mistake in the export, not a replacement.
//! - Lines already imported with the same refresh token answer
//!   `unchanged` without a call ([`super::prepare`]), so a second run of the
//!   same file is quick and harmless.
//!
//! Reasons never carry a token: they are the core's error messages, and a
//! line that is not valid JSON is described by position, not quoted.

use std::collections::HashMap;
use std::io::BufRead;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::{finish, prepare, ImportInput, ImportOutcome, Prepared};
use crate::error::Error;
use crate::ids::{ConnectionId, Owner};
use crate::state::Core;

/// Attempts of one line when Atlassian is unavailable or limits us.
const ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy)]
pub struct BulkOptions {
    /// Imports in flight at once (`--concurrency`, default 8).
    pub concurrency: usize,
    /// Imports that call Atlassian started per second (`--rate`, default 5).
    pub per_second: f64,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            concurrency: 8,
            per_second: 5.0,
        }
    }
}

/// What happened to one line (1-based).
#[derive(Debug, Clone)]
pub struct LineResult {
    pub line: usize,
    /// The line's owner, when it could be read.
    pub owner: Option<Owner>,
    /// The outcome and the connection id, or why the line was refused.
    pub result: Result<(ImportOutcome, ConnectionId), String>,
}

/// The counts at the end (or so far).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub imported: usize,
    pub replaced: usize,
    pub unchanged: usize,
    /// (line, reason), by line.
    pub refused: Vec<(usize, String)>,
}

impl Summary {
    fn add(&mut self, r: &LineResult) {
        match &r.result {
            Ok((ImportOutcome::Created, _)) => self.imported += 1,
            Ok((ImportOutcome::Replaced, _)) => self.replaced += 1,
            Ok((ImportOutcome::Unchanged, _)) => self.unchanged += 1,
            Err(reason) => self.refused.push((r.line, reason.clone())),
        }
    }

    pub fn done(&self) -> usize {
        self.imported + self.replaced + self.unchanged + self.refused.len()
    }
}

/// Spaces the starts of Atlassian-bound imports `interval` apart.
struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    fn new(per_second: f64) -> Pacer {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// One line before any I/O: refused already, or work to do.
enum Work {
    Refused(LineResult),
    Import { line: usize, input: ImportInput },
}

/// Non-empty lines of a JSON-lines file (what the progress bar counts to).
pub fn count_lines<R: BufRead>(reader: R) -> std::io::Result<u64> {
    let mut n = 0;
    for line in reader.split(b'\n') {
        if !line?.iter().all(u8::is_ascii_whitespace) {
            n += 1;
        }
    }
    Ok(n)
}

/// Import every line of `reader` for `app_id`; `on_line` sees each result
/// as it arrives (in completion order). Blank lines are skipped.
pub async fn run<R: BufRead>(
    core: &Core,
    app_id: &str,
    reader: R,
    options: BulkOptions,
    mut on_line: impl FnMut(&LineResult, &Summary),
) -> Summary {
    let pacer = Pacer::new(options.per_second);
    let mut seen: HashMap<(Owner, String), usize> = HashMap::new();
    let work = reader
        .split(b'\n')
        .enumerate()
        .filter_map(move |(i, bytes)| parse_line(i + 1, bytes, &mut seen));
    let pacer = &pacer;
    let results = futures::stream::iter(work)
        .map(|w| async move {
            match w {
                Work::Refused(r) => r,
                Work::Import { line, input } => import_line(core, app_id, pacer, line, input).await,
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut results = std::pin::pin!(results);
    let mut summary = Summary::default();
    while let Some(r) = results.next().await {
        summary.add(&r);
        on_line(&r, &summary);
    }
    summary.refused.sort_by_key(|(line, _)| *line);
    summary
}

fn parse_line(
    line: usize,
    bytes: std::io::Result<Vec<u8>>,
    seen: &mut HashMap<(Owner, String), usize>,
) -> Option<Work> {
    let refuse = |reason: String| {
        Some(Work::Refused(LineResult {
            line,
            owner: None,
            result: Err(reason),
        }))
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => return refuse(format!("could not be read: {}", e.kind())),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let input: ImportInput = match serde_json::from_slice(&bytes) {
        Ok(i) => i,
        Err(e) => return refuse(describe_json_error(&e)),
    };
    let profile = input.profile.clone().unwrap_or_else(|| "jira".to_string());
    match seen.get(&(input.owner.clone(), profile.clone())) {
        Some(first) => Some(Work::Refused(LineResult {
            line,
            owner: Some(input.owner),
            result: Err(format!(
                "duplicate of line {first} (same owner and profile); the first one counts"
            )),
        })),
        None => {
            seen.insert((input.owner.clone(), profile), line);
            Some(Work::Import { line, input })
        }
    }
}

/// serde's messages can quote the input (`invalid type: integer `-3``,
/// `invalid type: string "…"`), and the input holds tokens: keep the
/// category, the column and *our* field names only.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => {
            format!("not a JSON object (invalid JSON at column {})", e.column())
        }
        Category::Io => "could not be read".to_string(),
        Category::Data => {
            let message = e.to_string();
            let field = |prefix: &str| {
                message
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.split('`').next())
                    .filter(|name| {
                        !name.is_empty()
                            && name.len() <= 32
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                    .map(str::to_string)
            };
            if let Some(name) = field("missing field `") {
                format!("missing field `{name}`")
            } else if let Some(name) = field("unknown field `") {
                format!(
                    "unknown field `{name}` (expected owner, profile, refresh_token, \
                     access_token, expires_at, cloud_id)"
                )
            } else if message.starts_with("unknown field") {
                "an unknown field (expected owner, profile, refresh_token, access_token, \
                 expires_at, cloud_id)"
                    .to_string()
            } else {
                format!(
                    "a field has a value of the wrong type (column {}); every field is a string",
                    e.column()
                )
            }
        }
    }
}

async fn import_line(
    core: &Core,
    app_id: &str,
    pacer: &Pacer,
    line: usize,
    input: ImportInput,
) -> LineResult {
    let owner = Some(input.owner.clone());
    let checked = match prepare(core, app_id, input).await {
        Ok(Prepared::Done(done)) => {
            return LineResult {
                line,
                owner,
                result: Ok((done.outcome, done.connection.id)),
            }
        }
        Ok(Prepared::Pending(checked)) => checked,
        Err(e) => {
            return LineResult {
                line,
                owner,
                result: Err(reason(&e)),
            }
        }
    };
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        pacer.wait().await;
        match finish(core, app_id, &checked).await {
            Ok(done) => break Ok((done.outcome, done.connection.id)),
            Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                let pause = match &e {
                    Error::RateLimited { retry_after_secs }
                    | Error::RefreshUnavailable { retry_after_secs } => {
                        Duration::from_secs((*retry_after_secs).clamp(1, 60))
                    }
                    _ => Duration::from_secs(2 * u64::from(attempt)),
                };
                tracing::warn!(line, attempt, error = %e, "import: Atlassian unavailable; retrying the line");
                tokio::time::sleep(pause).await;
            }
            Err(e) => break Err(reason(&e)),
        }
    };
    LineResult {
        line,
        owner,
        result,
    }
}

fn is_transient(e: &Error) -> bool {
    matches!(
        e,
        Error::RefreshUnavailable { .. }
            | Error::RateLimited { .. }
            | Error::Unreachable(_)
            | Error::Timeout
    )
}

/// A refused line's reason: the error's message (never a token), with the
/// sites of a `site-required`.
fn reason(e: &Error) -> String {
    match e {
        Error::SiteRequired { sites } => {
            let listed: Vec<String> = sites
                .iter()
                .map(|s| format!("{} ({})", s.cloud_id, s.url))
                .collect();
            format!(
                "the grant covers several sites, add \"cloud_id\" (one of: {}) and run again \
                 within 10 minutes",
                listed.join(", ")
            )
        }
        // The full cause is in the log; the summary says what to do.
        Error::Internal(_) => "internal error (see the log)".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_json_error;

    fn describe(line: &str) -> String {
        match serde_json::from_str::<super::ImportInput>(line) {
            Ok(_) => panic!("{line} parsed"),
            Err(e) => describe_json_error(&e),
        }
    }

    #[test]
    fn json_errors_never_quote_a_value() {
        let secret = "-31337secret";
        for line in [
            format!(r#"{{"owner": "o", "refresh_token": {secret}}}"#),
            format!(r#"{{"owner": "o", "refresh_token": "t", "cloud_id": {secret}}}"#),
            format!(r#"{{"owner": "o", "refresh_token": ["{secret}"]}}"#),
            format!(r#"{{"owner": "o", "{secret}": "x", "refresh_token": "t"}}"#),
            format!(r#"{{"owner": "o", "refresh_token": "{secret}"#),
        ] {
            let shown = describe(&line);
            assert!(!shown.contains("31337"), "{line} → {shown}");
        }
        assert_eq!(
            describe(r#"{"refresh_token": "t"}"#),
            "missing field `owner`"
        );
        assert!(
            describe(r#"{"owner": "o", "refresh_token": "t", "site": "x"}"#)
                .starts_with("unknown field `site`")
        );
        assert!(describe("not json").starts_with("not a JSON object"));
    }
}
