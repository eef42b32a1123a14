"""pycontribs `jira`, used unchanged, through atlasgate's proxy.

The Rust test `tests/api/pyjira.rs` starts atlasgate + atlassim, connects a
Jira site, and runs this script with:

  ATLASGATE_PROXY_URL  {atlasgate}/v1/connections/{id}/proxy/jira
  ATLASGATE_APP_KEY    the app's agk_… key (sent as the bearer token)
  PROJECTS             two project keys of the site, comma-separated
  SP_FIELD             the site's story-points field id

It prints one line per step and exits non-zero on the first failure.
"""

import os
import sys

from jira import JIRA


def step(msg):
    print(msg, flush=True)


def main():
    server = os.environ["ATLASGATE_PROXY_URL"]
    key = os.environ["ATLASGATE_APP_KEY"]
    projects = os.environ["PROJECTS"].split(",")
    sp_field = os.environ["SP_FIELD"]

    # token_auth sends `Authorization: Bearer <key>`; the library calls
    # serverInfo first and switches to Cloud behaviour (/search/jql).
    jira = JIRA(server=server, token_auth=key, max_retries=0, timeout=30)
    assert jira._is_cloud, "serverInfo should say deploymentType Cloud"
    step("connected: cloud=%s" % jira._is_cloud)

    listed = sorted(p.key for p in jira.projects())
    assert set(projects) <= set(listed), listed
    step("projects: %s" % ",".join(listed))

    # JQL search with nextPageToken: by hand, page by page …
    jql = "project in (%s) ORDER BY key ASC" % ", ".join(projects)
    first = jira.enhanced_search_issues(jql, maxResults=20, fields="summary", json_result=True)
    token = first.get("nextPageToken")
    assert token, "a first page of 20 must have a next page"
    second = jira.enhanced_search_issues(
        jql, nextPageToken=token, maxResults=20, fields="summary", json_result=True
    )
    page_keys = [i["key"] for i in first["issues"]] + [i["key"] for i in second["issues"]]
    assert len(page_keys) == 40 and len(set(page_keys)) == 40, page_keys
    # … and every page by the library (maxResults=0 fetches all in batches).
    everything = jira.enhanced_search_issues(jql, maxResults=0, fields="summary")
    all_keys = [i.key for i in everything]
    assert len(all_keys) == len(set(all_keys)) and len(all_keys) > 100, len(all_keys)
    assert all_keys[:40] == page_keys, "the same order both ways"
    step("search: %d issues over pages" % len(all_keys))

    issue = jira.issue(all_keys[0])
    assert issue.key == all_keys[0]
    step("issue: %s %r" % (issue.key, issue.fields.summary))

    issue.update(fields={sp_field: 13})
    again = jira.issue(issue.key, fields=sp_field)
    assert getattr(again.fields, sp_field) == 13, getattr(again.fields, sp_field)
    issue.update(summary="Updated by pycontribs jira through atlasgate")
    assert jira.issue(issue.key).fields.summary == "Updated by pycontribs jira through atlasgate"
    step("update: %s=13, summary changed" % sp_field)

    comment = jira.add_comment(issue.key, "Hello from pycontribs jira via atlasgate")
    ids = [c.id for c in jira.comments(issue.key)]
    assert comment.id in ids, (comment.id, ids)
    step("comment: %s" % comment.id)

    step("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
