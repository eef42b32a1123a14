//! The seeded world: deterministic from `SimConfig::seed`.
//!
//! Everything random comes from one `ChaCha8Rng`, drawn in a fixed order, and
//! every timestamp is an offset back from the epoch (`SimConfig::epoch`, by
//! default the start of the current UTC day), so the same seed gives the same
//! users, cloud ids, keys and ranks on every run, and the same dates on every
//! run of one day (or always, with a fixed `--epoch`). The
//! loops are linear in the number of issues (100,000 issues seed in well
//! under a second in release mode).

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::SimConfig;
use crate::model::{
    Board, BoardType, Comment, FieldDef, Issue, IssueType, Page, Product, Project, Site, Space,
    Sprint, SprintState, Status, Timestamp, User, World,
};

/// Seeded dates are spread back from here: the configured epoch, else the
/// start of today (UTC) so the active sprint is current and relative JQL
/// (`updated >= -30d`) finds seeded issues; never later than "now", so every
/// seeded `updated` lies in the past.
pub fn epoch(now: Timestamp, configured: Option<Timestamp>) -> Timestamp {
    let start_of_today =
        Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default());
    configured.unwrap_or(start_of_today).min(now)
}

/// Ranks are sortable strings shaped like Jira's LexoRank (`0|i0000g:`).
/// Seeded issues are `RANK_STEP` apart so later moves fit between them.
pub const RANK_STEP: u64 = 8;

pub fn rank_string(n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [b'0'; 6];
    let mut v = n;
    for slot in buf.iter_mut().rev() {
        *slot = DIGITS[(v % 36) as usize];
        v /= 36;
    }
    format!("0|i{}:", String::from_utf8_lossy(&buf))
}

pub fn status_to_do() -> Status {
    Status {
        id: "10000".into(),
        name: "To Do".into(),
        category_key: "new".into(),
    }
}
pub fn status_in_progress() -> Status {
    Status {
        id: "3".into(),
        name: "In Progress".into(),
        category_key: "indeterminate".into(),
    }
}
pub fn status_done() -> Status {
    Status {
        id: "10001".into(),
        name: "Done".into(),
        category_key: "done".into(),
    }
}
pub fn status_in_review() -> Status {
    Status {
        id: "10002".into(),
        name: "In Review".into(),
        category_key: "indeterminate".into(),
    }
}
pub fn issue_type_story() -> IssueType {
    IssueType {
        id: "10001".into(),
        name: "Story".into(),
        subtask: false,
    }
}
pub fn issue_type_bug() -> IssueType {
    IssueType {
        id: "10004".into(),
        name: "Bug".into(),
        subtask: false,
    }
}
pub fn issue_type_task() -> IssueType {
    IssueType {
        id: "10002".into(),
        name: "Task".into(),
        subtask: false,
    }
}

const USERS: &[(&str, &str, &str)] = &[
    ("Mia Krystof", "mia", "mkrystof"),
    ("Noah Patel", "noah", "npatel"),
    ("Ava Lindqvist", "ava", "alindqvist"),
    ("Liam Okafor", "liam", "lokafor"),
    ("Zoe Tanaka", "zoe", "ztanaka"),
];

const SITE_NAMES: &[&str] = &[
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
];

const PROJECTS: &[(&str, &str)] = &[
    ("ACME", "Acme Core"),
    ("WEB", "Website"),
    ("OPS", "Operations"),
    ("MOB", "Mobile App"),
    ("DATA", "Data Platform"),
    ("API", "Public API"),
    ("INFRA", "Infrastructure"),
    ("SEC", "Security"),
    ("QA", "Quality"),
    ("DOCS", "Documentation"),
    ("PAY", "Payments"),
    ("CORE", "Core Services"),
    ("APP", "Web App"),
    ("PLAT", "Platform"),
    ("GROW", "Growth"),
    ("SUP", "Support"),
];

const VERBS: &[&str] = &[
    "Fix",
    "Add",
    "Improve",
    "Remove",
    "Refactor",
    "Investigate",
    "Document",
    "Migrate",
    "Speed up",
    "Test",
];
const OBJECTS: &[&str] = &[
    "login flow",
    "search results",
    "billing page",
    "export to CSV",
    "notification emails",
    "dashboard widgets",
    "API pagination",
    "password reset",
    "audit log",
    "user settings",
    "webhook retries",
    "onboarding checklist",
];
const QUALIFIERS: &[&str] = &[
    "on mobile",
    "for admins",
    "in Safari",
    "after timeout",
    "for large accounts",
    "in dark mode",
    "",
    "",
    "",
];
const LABELS: &[&str] = &["backend", "frontend", "customer", "tech-debt", "ux"];
const PRIORITIES: &[&str] = &[
    "Highest", "High", "Medium", "Medium", "Medium", "Low", "Lowest",
];
const POINTS: &[f64] = &[1.0, 2.0, 3.0, 5.0, 8.0, 13.0];
const SPACES: &[(&str, &str)] = &[
    ("ENG", "Engineering"),
    ("PROD", "Product"),
    ("TEAM", "Team Handbook"),
];
const PAGE_TITLES: &[&str] = &[
    "Architecture overview",
    "Runbook",
    "Release checklist",
    "Meeting notes",
    "Onboarding",
    "Roadmap",
    "Incident review",
    "Design decisions",
    "How we work",
    "Glossary",
    "Retrospective",
    "Requirements",
];

/// Project key number `n` over all sites: the named pool first, then `XAA`, `XAB`…
fn project_key(n: usize) -> (String, String) {
    if let Some((key, name)) = PROJECTS.get(n) {
        return (key.to_string(), name.to_string());
    }
    let mut k = n - PROJECTS.len();
    let mut letters = Vec::new();
    loop {
        letters.push((b'A' + (k % 26) as u8) as char);
        k /= 26;
        if k == 0 {
            break;
        }
    }
    while letters.len() < 2 {
        letters.push('A');
    }
    letters.reverse();
    let key = format!("X{}", letters.into_iter().collect::<String>());
    let name = format!("Project {key}");
    (key, name)
}

fn uuid_from(rng: &mut ChaCha8Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn adf(text: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "doc",
        "version": 1,
        "content": [{ "type": "paragraph", "content": [{ "type": "text", "text": text }] }]
    })
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Build the world for `config` (clients, users, sites and their content).
pub fn seed_world(config: &SimConfig, now: Timestamp) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let epoch = epoch(now, config.epoch);

    let users: Vec<User> = USERS
        .iter()
        .map(|(name, email, nickname)| {
            let mut id = [0u8; 12];
            rng.fill_bytes(&mut id);
            User {
                account_id: hex::encode(id),
                email: format!("{email}@example.com"),
                name: name.to_string(),
                nickname: nickname.to_string(),
                zoneinfo: "UTC".into(),
                // Zoe keeps her e-mail private (profile visibility), as some people do.
                email_hidden: *email == "zoe",
            }
        })
        .collect();
    let account_ids: Vec<String> = users.iter().map(|u| u.account_id.clone()).collect();

    let mut sites: Vec<Site> = (0..config.sites)
        .map(|i| seed_site(config, &mut rng, epoch, i, &account_ids))
        .collect();
    // Members of one site only, drawn apart from the main random stream so
    // adding them left every other seeded value as it was.
    let mut users = users;
    for (i, site) in sites.iter_mut().enumerate() {
        for user in crate::jira::users::site_members(config.seed, i, &site.name) {
            site.users.push(user.account_id.clone());
            users.push(user);
        }
    }

    for site in &mut sites {
        for issue in site.issues.values_mut() {
            for item in issue.changelog.iter_mut().flat_map(|h| h.items.iter_mut()) {
                if item.field_id == "assignee" && item.to_string.is_none() {
                    item.to_string = item
                        .to
                        .as_ref()
                        .and_then(|a| users.iter().find(|u| u.account_id == *a))
                        .map(|u| u.name.clone());
                }
            }
        }
    }
    World {
        clients: config.clients.clone(),
        users,
        sites,
        ..World::default()
    }
}

fn seed_site(
    config: &SimConfig,
    rng: &mut ChaCha8Rng,
    epoch: Timestamp,
    index: usize,
    users: &[String],
) -> Site {
    let name = match SITE_NAMES.get(index) {
        Some(n) => n.to_string(),
        None => format!("site{}", index + 1),
    };
    let cloud_id = uuid_from(rng);
    // The first site has both products, the second Jira only, then alternating.
    let products = if index % 2 == 0 {
        vec![Product::Jira, Product::Confluence]
    } else {
        vec![Product::Jira]
    };
    // The story points field is a custom field whose id and name differ
    // between sites (company-managed vs. team-managed defaults).
    let story_points_field = if index % 2 == 0 {
        FieldDef {
            id: "customfield_10016".into(),
            name: "Story Points".into(),
        }
    } else {
        FieldDef {
            id: "customfield_10028".into(),
            name: "Story point estimate".into(),
        }
    };
    let mut site = Site {
        cloud_id,
        url: format!("https://{name}.atlassian.net"),
        name,
        avatar_url: "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png"
            .into(),
        products,
        users: users.to_vec(),
        story_points_field,
        sprint_field: FieldDef {
            id: "customfield_10020".into(),
            name: "Sprint".into(),
        },
        rank_field: FieldDef {
            id: "customfield_10019".into(),
            name: "Rank".into(),
        },
        projects: Vec::new(),
        boards: Vec::new(),
        sprints: Vec::new(),
        issues: BTreeMap::new(),
        issue_keys: HashMap::with_capacity(config.projects * config.issues),
        spaces: Vec::new(),
        pages: Vec::new(),
        webhooks: Vec::new(),
        next_issue_id: 10000,
        next_comment_id: 10000,
        next_webhook_id: 1,
        next_history_id: 10000,
        catalog: Default::default(),
    };
    let mut next_board = 1u64;
    let mut next_sprint = 1u64;
    let mut next_rank = RANK_STEP * 1000;
    for p in 0..config.projects {
        let (key, project_name) = project_key(index * config.projects + p);
        let project = Project {
            id: 10000 + p as u64,
            key: key.clone(),
            name: project_name,
            project_type_key: "software".into(),
            style: "classic".into(),
            lead_account_id: users[p % users.len()].clone(),
            next_issue_number: config.issues as u64 + 1,
            workflow: crate::jira::transitions::default_workflow(),
        };
        let scrum = Board {
            id: next_board,
            name: format!("{key} board"),
            board_type: BoardType::Scrum,
            project_id: project.id,
            estimation_field: Some(site.story_points_field.clone()),
        };
        next_board += 1;
        site.boards.push(scrum);
        let board_id = next_board - 1;
        if p % 2 == 0 {
            site.boards.push(Board {
                id: next_board,
                name: format!("{key} Kanban"),
                board_type: BoardType::Kanban,
                project_id: project.id,
                estimation_field: None,
            });
            next_board += 1;
        }
        // Two closed sprints, the active one, two future ones; two weeks each.
        let active_start = epoch - Duration::days(4);
        let mut sprint_ids = Vec::new();
        for k in 0..5i64 {
            let state = match k {
                0 | 1 => SprintState::Closed,
                2 => SprintState::Active,
                _ => SprintState::Future,
            };
            let start = active_start + Duration::days(14 * (k - 2));
            let end = start + Duration::days(14);
            let (start_date, end_date) = if state == SprintState::Future {
                (None, None)
            } else {
                (Some(start), Some(end))
            };
            site.sprints.push(Sprint {
                id: next_sprint,
                board_id,
                name: format!("{key} Sprint {}", k + 1),
                state,
                start_date,
                end_date,
                complete_date: (state == SprintState::Closed).then_some(end),
                goal: if k % 2 == 0 {
                    format!("Ship the {} milestone", k + 1)
                } else {
                    String::new()
                },
            });
            sprint_ids.push(next_sprint);
            next_sprint += 1;
        }
        seed_issues(
            config,
            rng,
            epoch,
            &mut site,
            &project,
            &sprint_ids,
            &mut next_rank,
            users,
        );
        site.projects.push(project);
    }
    crate::jira::catalog::seed_breadth(config.seed, index, &mut site, epoch);
    if site.has(Product::Confluence) {
        seed_confluence(rng, epoch, &mut site, users);
    }
    site
}

#[allow(clippy::too_many_arguments)]
fn seed_issues(
    config: &SimConfig,
    rng: &mut ChaCha8Rng,
    epoch: Timestamp,
    site: &mut Site,
    project: &Project,
    sprint_ids: &[u64],
    next_rank: &mut u64,
    users: &[String],
) {
    let n = config.issues;
    const NINETY_DAYS: i64 = 90 * 24 * 3600;
    // Keys follow creation order, as in Jira.
    let mut created: Vec<i64> = (0..n).map(|_| rng.random_range(0..NINETY_DAYS)).collect();
    created.sort_unstable_by(|a, b| b.cmp(a));
    // Backlog order is independent of creation order.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut ranks = vec![0u64; n];
    for i in order {
        ranks[i] = *next_rank;
        *next_rank += RANK_STEP;
    }
    for (i, ago) in created.into_iter().enumerate() {
        let created_at = epoch - Duration::seconds(ago);
        let updated_at = created_at + Duration::seconds(rng.random_range(0..=ago));
        let bucket = rng.random_range(0..100u32);
        // 0,1 closed, 2 active, 3,4 future; None = backlog.
        let sprint = match bucket {
            0..=14 => Some(0),
            15..=29 => Some(1),
            30..=59 => Some(2),
            60..=79 => Some(3 + rng.random_range(0..2usize)),
            _ => None,
        };
        let roll = rng.random_range(0..100u32);
        let status = match sprint {
            Some(0 | 1) if roll < 90 => status_done(),
            Some(0 | 1) => status_in_progress(),
            Some(2) if roll < 35 => status_to_do(),
            Some(2) if roll < 70 => status_in_progress(),
            Some(2) => status_done(),
            _ if roll < 95 => status_to_do(),
            _ => status_in_progress(),
        };
        let type_roll = rng.random_range(0..100u32);
        let issue_type = match type_roll {
            0..=54 => issue_type_story(),
            55..=79 => issue_type_bug(),
            _ => issue_type_task(),
        };
        let points_chance = if issue_type.name == "Story" { 85 } else { 20 };
        let story_points =
            (rng.random_range(0..100u32) < points_chance).then(|| *pick(rng, POINTS));
        let qualifier = *pick(rng, QUALIFIERS);
        let summary = format!(
            "{} {}{}{}",
            pick(rng, VERBS),
            pick(rng, OBJECTS),
            if qualifier.is_empty() { "" } else { " " },
            qualifier
        );
        let description = (rng.random_range(0..100u32) < 30)
            .then(|| adf(&format!("Steps and context for: {summary}.")));
        let assignee = (rng.random_range(0..100u32) < 75).then(|| pick(rng, users).clone());
        let reporter = pick(rng, users).clone();
        let labels = if rng.random_range(0..100u32) < 30 {
            vec![pick(rng, LABELS).to_string()]
        } else {
            Vec::new()
        };
        let priority = pick(rng, PRIORITIES).to_string();
        let mut comments = Vec::new();
        if rng.random_range(0..100u32) < 10 {
            let at = updated_at;
            comments.push(Comment {
                id: site.next_comment_id,
                author_account_id: pick(rng, users).clone(),
                body: adf("Looks good to me."),
                created: at,
                updated: at,
            });
            site.next_comment_id += 1;
        }
        let id = site.next_issue_id;
        site.next_issue_id += 1;
        let mut issue = Issue {
            id,
            key: format!("{}-{}", project.key, i + 1),
            project_id: project.id,
            summary,
            description,
            issue_type,
            status,
            priority,
            assignee,
            reporter,
            labels,
            created: created_at,
            updated: updated_at,
            sprint_id: sprint.map(|s| sprint_ids[s]),
            rank: rank_string(ranks[i]),
            story_points,
            custom_fields: BTreeMap::new(),
            comments,
            resolution: None,
            resolution_date: None,
            status_category_changed: created_at,
            changelog: Vec::new(),
            extra: Default::default(),
        };
        crate::jira::changelog::seed_history(config.seed, site, &project.workflow, &mut issue);
        site.put_issue(issue);
    }
}

/// Page labels, chosen from the page id rather than the random stream so
/// that adding them left every other seeded value as it was.
const PAGE_LABELS: &[&str] = &[
    "architecture",
    "how-to",
    "meeting-notes",
    "onboarding",
    "release",
    "runbook",
];

fn seeded_labels(page_id: u64) -> Vec<crate::model::PageLabel> {
    let n = PAGE_LABELS.len() as u64;
    let mut picks = vec![page_id % n];
    if page_id % 3 == 0 {
        picks.push((page_id / 3 + 1) % n);
    }
    picks.dedup();
    picks
        .into_iter()
        .map(|i| crate::model::PageLabel {
            id: 196_609 + i,
            name: PAGE_LABELS[i as usize].to_string(),
            prefix: "global".into(),
        })
        .collect()
}

fn seed_confluence(rng: &mut ChaCha8Rng, epoch: Timestamp, site: &mut Site, users: &[String]) {
    let mut next_page = 1_000_001u64;
    for (k, (key, name)) in SPACES.iter().enumerate() {
        let space_id = 32_769 + k as u64;
        let created_at = epoch - Duration::days(rng.random_range(200..400));
        let count = rng.random_range(10..=30usize);
        let home_id = next_page;
        let mut ids_in_space = Vec::with_capacity(count);
        for j in 0..count {
            let id = next_page;
            next_page += 1;
            let title = if j == 0 {
                format!("{name} Home")
            } else {
                format!("{} {}", pick(rng, PAGE_TITLES), j)
            };
            let parent_id = match j {
                0 => None,
                _ if rng.random_range(0..100u32) < 50 => Some(home_id),
                _ => Some(*pick(rng, &ids_in_space)),
            };
            let page_created = epoch - Duration::days(rng.random_range(1..200));
            let version = rng.random_range(1..=5u32);
            // Never after the epoch: a page edited "in the future" would match
            // every `lastmodified >` query.
            let version_created_at = (page_created
                + Duration::hours(rng.random_range(0..24 * i64::from(version))))
            .min(epoch);
            let author_account_id = pick(rng, users).clone();
            site.pages.push(Page {
                id,
                space_id,
                body: format!("<p>{} — written for the {} space.</p>", title, name),
                adf: None,
                title,
                status: "current".into(),
                parent_id,
                version_author: author_account_id.clone(),
                author_account_id,
                created_at: page_created,
                version,
                version_created_at,
                labels: seeded_labels(id),
                version_message: String::new(),
                minor_edit: false,
            });
            ids_in_space.push(id);
        }
        site.spaces.push(Space {
            id: space_id,
            key: key.to_string(),
            name: name.to_string(),
            space_type: "global".into(),
            status: "current".into(),
            created_at,
            homepage_id: Some(home_id),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_sort_like_their_numbers() {
        let a = rank_string(8);
        let b = rank_string(80);
        let c = rank_string(36 * 36 * 36);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(rank_string(0), "0|i000000:");
    }

    #[test]
    fn generated_project_keys_are_distinct() {
        let keys: std::collections::HashSet<String> = (0..2000).map(|n| project_key(n).0).collect();
        assert_eq!(keys.len(), 2000);
    }
}
