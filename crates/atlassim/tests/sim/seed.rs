//! Seeding: deterministic, shaped as documented, fast enough for big worlds.

use std::collections::HashSet;

use atlassim::model::{BoardType, SprintState};
use atlassim::SimConfig;
use serde_json::Value;

use crate::common::*;

/// The snapshot without the clock.
fn snapshot_without_now(sim: &atlassim::Sim) -> Value {
    let mut snap = sim.snapshot();
    snap.as_object_mut().unwrap().remove("now");
    snap
}

#[tokio::test]
async fn the_same_seed_gives_the_same_world() {
    let a = spawn_sim(SimConfig {
        seed: 42,
        ..config()
    })
    .await;
    let b = spawn_sim(SimConfig {
        seed: 42,
        ..config()
    })
    .await;
    let c = spawn_sim(SimConfig {
        seed: 43,
        ..config()
    })
    .await;
    let (sa, sb, sc) = (
        snapshot_without_now(&a),
        snapshot_without_now(&b),
        snapshot_without_now(&c),
    );
    assert_eq!(sa, sb);
    assert_ne!(sa["sites"][0]["cloud_id"], sc["sites"][0]["cloud_id"]);
    assert_ne!(sa["users"][0]["account_id"], sc["users"][0]["account_id"]);
    assert_ne!(
        sa["sites"][0]["issues_digest"],
        sc["sites"][0]["issues_digest"]
    );

    // Deeper than the snapshot: every issue field that the digest covers and some it does not.
    let wa = a.state().world();
    let wb = b.state().world();
    for (sa, sb) in wa.sites.iter().zip(&wb.sites) {
        assert_eq!(sa.issues.len(), sb.issues.len());
        for (ia, ib) in sa.issues.values().zip(sb.issues.values()) {
            assert_eq!(
                (&ia.key, &ia.rank, ia.created, ia.updated),
                (&ib.key, &ib.rank, ib.created, ib.updated)
            );
            assert_eq!(
                (&ia.labels, &ia.priority, &ia.reporter),
                (&ib.labels, &ib.priority, &ib.reporter)
            );
        }
        let pa: Vec<(u64, &str, u64)> = sa
            .pages
            .iter()
            .map(|p| (p.id, p.title.as_str(), p.space_id))
            .collect();
        let pb: Vec<(u64, &str, u64)> = sb
            .pages
            .iter()
            .map(|p| (p.id, p.title.as_str(), p.space_id))
            .collect();
        assert_eq!(pa, pb);
    }
}

#[tokio::test]
async fn the_world_has_the_documented_shape() {
    let sim = spawn_default().await;
    let now = sim.now();
    let world = sim.state().world();
    assert!(world.users.len() >= 3);
    assert_eq!(world.users[0].email, "mia@example.com");
    assert_eq!(world.sites.len(), 2);
    let mut all_keys = HashSet::new();
    for site in &world.sites {
        assert!(uuid::Uuid::parse_str(&site.cloud_id).is_ok());
        assert_eq!(site.url, format!("https://{}.atlassian.net", site.name));
        // The five seeded people are on every site, plus three members of its own.
        for u in &world.users[..5] {
            assert!(
                site.users.contains(&u.account_id),
                "every person on every site"
            );
        }
        assert_eq!(site.users.len(), 5 + 3);
        let members: Vec<_> = site.users[5..]
            .iter()
            .map(|id| world.user(id).unwrap())
            .collect();
        assert_eq!(members.iter().filter(|u| u.email_hidden).count(), 2);
        assert_eq!(site.sprint_field.id, "customfield_10020");
        assert_eq!(site.rank_field.id, "customfield_10019");
        assert_eq!(site.projects.len(), 3);
        for project in &site.projects {
            assert!(
                all_keys.insert(project.key.clone()),
                "project keys distinct across sites"
            );
            assert!(project.id >= 10000);
            let scrum: Vec<_> = site
                .boards
                .iter()
                .filter(|b| b.project_id == project.id && b.board_type == BoardType::Scrum)
                .collect();
            assert_eq!(scrum.len(), 1);
            assert_eq!(
                scrum[0].estimation_field.as_ref(),
                Some(&site.story_points_field)
            );
            let states: Vec<SprintState> = site
                .sprints
                .iter()
                .filter(|s| s.board_id == scrum[0].id)
                .map(|s| s.state)
                .collect();
            use SprintState::*;
            assert_eq!(states, vec![Closed, Closed, Active, Future, Future]);
            let issues: Vec<_> = site
                .issues
                .values()
                .filter(|i| i.project_id == project.id)
                .collect();
            assert_eq!(issues.len(), 60);
            assert!(issues.iter().any(|i| i.sprint_id.is_none()), "some backlog");
            assert!(issues.iter().any(|i| i.sprint_id.is_some()));
            let stories: Vec<_> = issues
                .iter()
                .filter(|i| i.issue_type.name == "Story")
                .collect();
            assert!(
                stories.iter().filter(|i| i.story_points.is_some()).count() * 2 > stories.len()
            );
            for issue in &issues {
                assert!(issue.key.starts_with(&format!("{}-", project.key)));
                assert!(
                    issue.updated >= issue.created && issue.updated <= now,
                    "updated lies in the past"
                );
                let epoch = atlassim::seed::epoch(now, None);
                assert!(
                    issue.created <= epoch && epoch - issue.created <= chrono::Duration::days(90)
                );
                assert!(["To Do", "In Progress", "Done"].contains(&issue.status.name.as_str()));
                assert!(["Story", "Bug", "Task", "Epic", "Subtask"]
                    .contains(&issue.issue_type.name.as_str()));
            }
            let ranks: HashSet<&String> = issues.iter().map(|i| &i.rank).collect();
            assert_eq!(ranks.len(), issues.len(), "ranks unique");
        }
        assert!(site
            .boards
            .iter()
            .any(|b| b.board_type == BoardType::Kanban));
    }
    assert_eq!(world.sites[0].story_points_field.id, "customfield_10016");
    assert_eq!(world.sites[1].story_points_field.id, "customfield_10028");
    assert_eq!(
        world.sites[1].story_points_field.name,
        "Story point estimate"
    );
    let confluence = &world.sites[0];
    assert!(confluence.spaces.len() >= 2);
    for space in &confluence.spaces {
        let pages = confluence
            .pages
            .iter()
            .filter(|p| p.space_id == space.id)
            .count();
        assert!((10..=30).contains(&pages), "{pages} pages");
        assert!(space.homepage_id.is_some());
    }
    assert!(world.sites[1].spaces.is_empty(), "site 2 has no Confluence");
}

#[tokio::test]
async fn twenty_thousand_issues_seed_with_exact_counts() {
    let sim = spawn_sim(SimConfig {
        sites: 2,
        projects: 4,
        issues: 2500,
        ..config()
    })
    .await;
    let snap = sim.snapshot();
    let total: u64 = snap["sites"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["projects"].as_array().unwrap())
        .map(|p| p["issue_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 20_000);
    let world = sim.state().world();
    for site in &world.sites {
        assert_eq!(site.issues.len(), 10_000);
        assert_eq!(site.issue_keys.len(), 10_000, "key index complete");
        assert!(site.issue("ACME-2500").is_some() || site.projects[0].key != "ACME");
        assert_eq!(site.next_issue_id, 10_000 + 10_000);
    }
}

#[tokio::test]
async fn by_default_the_seeded_world_is_current_and_a_fixed_epoch_pins_its_dates() {
    let sim = spawn_sim(config()).await;
    let now = sim.now();
    {
        let world = sim.state().world();
        let site = &world.sites[0];
        let active = site
            .sprints
            .iter()
            .find(|s| s.state == SprintState::Active)
            .expect("an active sprint");
        let (start, end) = (active.start_date.unwrap(), active.end_date.unwrap());
        assert!(start <= now && now < end, "the active sprint runs today");
        let recent = site
            .issues
            .values()
            .filter(|i| now - i.updated <= chrono::Duration::days(30))
            .count();
        assert!(
            recent > 0,
            "relative JQL such as updated >= -30d finds seeded issues"
        );
    }

    let fixed = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let pinned = spawn_sim(SimConfig {
        epoch: Some(fixed),
        ..config()
    })
    .await;
    let world = pinned.state().world();
    assert!(world.sites[0]
        .issues
        .values()
        .all(|i| i.created <= fixed && i.updated <= fixed));
}
