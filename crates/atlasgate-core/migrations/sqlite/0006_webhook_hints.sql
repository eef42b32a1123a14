-- A Jira webhook delivery is a hint (docs/design.md §12): what it names is
-- kept apart from its body so every waiting delivery for one issue is
-- claimed together and answered by one re-read from Jira.
ALTER TABLE jira_webhook_deliveries ADD COLUMN hint_site TEXT;
ALTER TABLE jira_webhook_deliveries ADD COLUMN hint_issue_id TEXT;
-- The claim (a random token) that took a batch of deliveries.
ALTER TABLE jira_webhook_deliveries ADD COLUMN claim TEXT;
CREATE INDEX jira_webhook_deliveries_hint ON jira_webhook_deliveries (hint_site, hint_issue_id, state);
CREATE INDEX jira_webhook_deliveries_claim ON jira_webhook_deliveries (claim);
