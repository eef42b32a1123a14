//! `atlasgate demo --scripted` walks the product end to end.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_demo_passes_every_step() {
    crate::helpers::capture_logs();
    let mut out = Vec::new();
    let report = atlasgate::demo::run_scripted(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(report.failed.is_none(), "{text}");
    assert_eq!(report.passed.len(), atlasgate::demo::STEPS.len());
    for (name, _) in atlasgate::demo::STEPS {
        assert!(text.contains(&format!("✓ {name}")), "{text}");
    }
    assert!(text.contains("chose the second site"), "{text}");
    // The agent's step recovered from the refused transition and Jira agrees.
    assert!(
        text.contains("the tool error listed the reachable statuses"),
        "{text}"
    );
    assert!(text.contains("Jira shows it resolved Done"), "{text}");
}
