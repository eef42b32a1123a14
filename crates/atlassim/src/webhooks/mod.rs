//! Jira dynamic webhooks for OAuth 2.0 apps: registration (`/rest/api/3/webhook`)
//! and delivery of issue events.

mod delivery;
mod registration;

use serde::Serialize;
use serde_json::{json, Value};

pub use delivery::{Delivery, Dispatcher};
pub use registration::{delete_webhooks, list_webhooks, refresh_webhooks, register_webhooks};

use crate::gateway::Runtime;
use crate::jira::render::{comment as comment_json, issue_bean, user_details, FieldSelection};
use crate::jql::{self, Compiled, EvalCtx};
use crate::model::{AppState, Comment, Issue};

/// One changelog item of `jira:issue_updated`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeItem {
    pub field: String,
    pub fieldtype: String,
    pub field_id: String,
    pub from: Option<String>,
    pub from_string: Option<String>,
    pub to: Option<String>,
    pub to_string: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueEventKind {
    Created,
    Updated,
    Deleted,
    CommentCreated,
    CommentUpdated,
    CommentDeleted,
}

impl IssueEventKind {
    pub fn webhook_event(self) -> &'static str {
        match self {
            IssueEventKind::Created => "jira:issue_created",
            IssueEventKind::Updated => "jira:issue_updated",
            IssueEventKind::Deleted => "jira:issue_deleted",
            IssueEventKind::CommentCreated => "comment_created",
            IssueEventKind::CommentUpdated => "comment_updated",
            IssueEventKind::CommentDeleted => "comment_deleted",
        }
    }
}

/// Jira's `issue_event_type_name`: a status change is `issue_generic` (a
/// transition), a change of assignee alone `issue_assigned`, any other edit
/// `issue_updated`.
fn type_name(kind: IssueEventKind, changelog: &[ChangeItem]) -> &'static str {
    match kind {
        IssueEventKind::Created => "issue_created",
        IssueEventKind::Deleted => "issue_deleted",
        IssueEventKind::CommentCreated => "issue_commented",
        IssueEventKind::CommentUpdated => "issue_comment_edited",
        IssueEventKind::CommentDeleted => "issue_comment_deleted",
        IssueEventKind::Updated if changelog.iter().any(|c| c.field_id == "status") => {
            "issue_generic"
        }
        IssueEventKind::Updated
            if !changelog.is_empty() && changelog.iter().all(|c| c.field_id == "assignee") =>
        {
            "issue_assigned"
        }
        IssueEventKind::Updated => "issue_updated",
    }
}

/// Something happened to an issue; `issue` is its state after the change
/// (before removal, for deletes).
#[derive(Debug, Clone)]
pub struct IssueEvent {
    pub cloud_id: String,
    pub kind: IssueEventKind,
    pub issue: Issue,
    pub changelog: Vec<ChangeItem>,
    /// Account id of whoever caused it (`triggeredByUser`).
    pub user: String,
}

/// Queue deliveries for every unexpired registration on the site whose
/// events include this one and whose JQL filter matches the issue. One POST
/// per (app, URL), listing every matched registration in `matchedWebhookIds`.
pub fn fire(state: &AppState, runtime: &Runtime, event: IssueEvent) {
    dispatch(state, runtime, event, None);
}

/// A `comment_created|updated|deleted` event: the payload carries the
/// comment (v2 shape, site URLs) beside the issue, and no changelog.
pub fn fire_comment(
    state: &AppState,
    runtime: &Runtime,
    cloud_id: &str,
    issue: &Issue,
    comment: &Comment,
    kind: IssueEventKind,
    user: &str,
) {
    let event = IssueEvent {
        cloud_id: cloud_id.to_string(),
        kind,
        issue: issue.clone(),
        changelog: vec![],
        user: user.to_string(),
    };
    dispatch(state, runtime, event, Some(comment));
}

fn dispatch(state: &AppState, runtime: &Runtime, event: IssueEvent, comment: Option<&Comment>) {
    let now = state.clock.now();
    let mut deliveries: Vec<Delivery> = Vec::new();
    {
        let world = state.world();
        let Some(site) = world.site(&event.cloud_id) else {
            return;
        };
        let changed: Vec<&str> = event
            .changelog
            .iter()
            .map(|c| c.field_id.as_str())
            .collect();
        // (client_id, url, registering account) → matched ids
        let mut groups: Vec<(String, String, String, Vec<u64>)> = Vec::new();
        for reg in &site.webhooks {
            if reg.expires_at <= now || !reg.events.iter().any(|e| e == event.kind.webhook_event())
            {
                continue;
            }
            if event.kind == IssueEventKind::Updated {
                if let Some(filter) = &reg.field_ids_filter {
                    if !filter.is_empty() && !filter.iter().any(|f| changed.contains(&f.as_str())) {
                        continue;
                    }
                }
            }
            let matches = match jql::parse(&reg.jql_filter) {
                Ok(q) => {
                    let ctx = EvalCtx {
                        site,
                        users: &world.users,
                        now,
                        current_user: Some(&reg.account_id),
                        strict: false,
                    };
                    Compiled::new(&q, &ctx).is_ok_and(|c| c.matches(&event.issue, site))
                }
                Err(_) => false,
            };
            if !matches {
                continue;
            }
            match groups
                .iter_mut()
                .find(|g| g.0 == reg.client_id && g.1 == reg.url)
            {
                Some(g) => g.3.push(reg.id),
                None => groups.push((
                    reg.client_id.clone(),
                    reg.url.clone(),
                    reg.account_id.clone(),
                    vec![reg.id],
                )),
            }
        }
        if groups.is_empty() {
            return;
        }
        // Webhook payloads carry the v2 representation with site URLs.
        let rest = format!("{}/rest/api/2", site.url);
        let sel = FieldSelection::parse(&["*navigable"], "*navigable");
        let issue_json = issue_bean(&rest, &world.users, site, &event.issue, &sel, true);
        let user = user_details(&rest, &world.users, &event.user);
        for (client_id, url, account_id, ids) in groups {
            let Some(client) = world.client(&client_id) else {
                continue;
            };
            let mut body = json!({
                "timestamp": now.timestamp_millis(),
                "webhookEvent": event.kind.webhook_event(),
                "issue_event_type_name": type_name(event.kind, &event.changelog),
                "user": user,
                "issue": {
                    "id": issue_json["id"],
                    "self": issue_json["self"],
                    "key": issue_json["key"],
                    "fields": issue_json["fields"],
                },
                "matchedWebhookIds": ids,
            });
            if let Some(o) = body.as_object_mut() {
                if event.kind == IssueEventKind::Updated {
                    // The id of the stored history entry, as Jira sends it.
                    let id = event
                        .issue
                        .changelog
                        .last()
                        .map(|h| h.id.to_string())
                        .unwrap_or_else(|| now.timestamp_millis().to_string());
                    o.insert(
                        "changelog".into(),
                        json!({"id": id, "items": event.changelog}),
                    );
                }
                if let Some(c) = comment {
                    // Comment events carry the comment, not the issue's event type (payload captures).
                    o.remove("issue_event_type_name");
                    o.insert(
                        "comment".into(),
                        comment_json(&rest, &world.users, &event.issue, c, true),
                    );
                }
            }
            deliveries.push(Delivery {
                queue: format!("{}|{}|{}", event.cloud_id, client_id, url),
                url,
                client_id,
                client_secret: client.client_secret.clone(),
                registered_by: account_id,
                triggered_by: event.user.clone(),
                identifier: uuid::Uuid::new_v4().to_string(),
                body: Value::clone(&body),
            });
        }
    }
    for d in deliveries {
        runtime.dispatcher.send(state, d);
    }
}
