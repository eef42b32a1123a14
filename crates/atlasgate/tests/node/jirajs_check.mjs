// jira.js (npm `jira.js`, pinned in package.json), used unchanged, through
// atlasgate's proxy.
//
// The Rust test `tests/api/jsjira.rs` starts atlasgate + atlassim, connects a
// Jira site, and runs this script with Node:
//
//   ATLASGATE_PROXY_URL  {atlasgate}/v1/connections/{id}/proxy/jira
//   ATLASGATE_APP_KEY    the app's agk_… key (sent as the OAuth bearer token)
//   PROJECT              a project key of the site
//
// It prints one line per step, `ok` last, and exits non-zero on the first failure.

import assert from 'node:assert/strict';
import { Version3Client } from 'jira.js';

const step = (msg) => console.log(msg);

async function main() {
  const host = process.env.ATLASGATE_PROXY_URL;
  const key = process.env.ATLASGATE_APP_KEY;
  const project = process.env.PROJECT;
  // `host` given and no refresh token: jira.js sends `Authorization: Bearer <key>` to host + /rest/api/3/….
  const client = new Version3Client({ host, authentication: { oauth2: { accessToken: key } } });

  // Search with nextPageToken, page by page.
  const jql = `project = ${project} ORDER BY key ASC`;
  const first = await client.issueSearch.searchForIssuesUsingJqlEnhancedSearch({
    jql,
    maxResults: 10,
    fields: ['summary', 'status'],
  });
  assert.equal(first.issues.length, 10);
  assert.ok(first.nextPageToken, 'a first page of 10 has a next page');
  const second = await client.issueSearch.searchForIssuesUsingJqlEnhancedSearch({
    jql,
    maxResults: 10,
    fields: ['summary'],
    nextPageToken: first.nextPageToken,
  });
  const keys = [...first.issues, ...second.issues].map((i) => i.key);
  assert.equal(new Set(keys).size, 20, `no duplicates across pages: ${keys}`);
  assert.ok(first.issues[0].fields.status.name, 'fields came back');
  step(`search: ${keys.length} issues over 2 pages`);

  const created = await client.issues.createIssue({
    fields: {
      project: { key: project },
      issuetype: { name: 'Task' },
      summary: 'Created by jira.js through atlasgate',
    },
  });
  assert.match(created.key, new RegExp(`^${project}-\\d+$`));
  step(`create: ${created.key}`);

  // Move it to Done, one offered transition at a time, as a bot does.
  let hops = 0;
  for (;;) {
    const { transitions } = await client.issues.getTransitions({
      issueIdOrKey: created.key,
      expand: 'transitions.fields',
    });
    assert.ok(transitions.length > 0, 'some transition is offered');
    const done = transitions.find((t) => t.to.name === 'Done');
    if (done) {
      assert.ok(done.fields.resolution, 'the Done screen asks for a resolution');
      await client.issues.doTransition({
        issueIdOrKey: created.key,
        transition: { id: done.id },
        fields: { resolution: { name: 'Done' } },
      });
      break;
    }
    const forward = transitions.find((t) => t.to.statusCategory.key !== 'new') ?? transitions[0];
    await client.issues.doTransition({ issueIdOrKey: created.key, transition: { id: forward.id } });
    hops += 1;
    assert.ok(hops < 5, 'Done is reachable');
  }
  const issue = await client.issues.getIssue({
    issueIdOrKey: created.key,
    fields: ['status', 'resolution', 'resolutiondate'],
  });
  assert.equal(issue.fields.status.name, 'Done');
  assert.equal(issue.fields.status.statusCategory.key, 'done');
  assert.equal(issue.fields.resolution.name, 'Done');
  assert.ok(issue.fields.resolutiondate);
  step(`transition: ${created.key} is Done after ${hops + 1} transitions`);

  const comment = await client.issueComments.addComment({
    issueIdOrKey: created.key,
    comment: 'Closed by jira.js through atlasgate',
  });
  assert.ok(comment.id);
  const comments = await client.issueComments.getComments({ issueIdOrKey: created.key });
  assert.ok(comments.comments.some((c) => c.id === comment.id));
  step(`comment: ${comment.id}`);

  step('ok');
}

main().catch((e) => {
  console.error(e?.response?.data ?? e);
  console.error(e);
  process.exit(1);
});
