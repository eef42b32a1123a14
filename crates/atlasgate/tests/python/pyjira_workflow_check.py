"""pycontribs `jira`, used unchanged, through atlasgate's proxy: the write
side bots use — transitions, assignment, user search, comment edit/delete,
the changelog.

The Rust test `tests/api/pyjira_workflow.rs` starts atlasgate + atlassim,
connects a Jira site, and runs this script with:

  ATLASGATE_PROXY_URL  {atlasgate}/v1/connections/{id}/proxy/jira
  ATLASGATE_APP_KEY    the app's agk_… key (sent as the bearer token)
  PROJECT              a project key of the site

It prints one line per step, `ok` last, and exits non-zero on the first failure.
"""

import os
import sys

from jira import JIRA


def step(msg):
    print(msg, flush=True)


def main():
    jira = JIRA(
        server=os.environ["ATLASGATE_PROXY_URL"],
        token_auth=os.environ["ATLASGATE_APP_KEY"],
        max_retries=0,
        timeout=30,
    )
    project = os.environ["PROJECT"]
    issue = jira.create_issue(
        project=project, summary="Walked by pycontribs jira", issuetype={"name": "Task"}
    )
    step("create: %s" % issue.key)

    offered = [t["name"] for t in jira.transitions(issue)]
    assert offered == ["Start progress"], offered
    jira.transition_issue(issue, "Start progress")
    with_fields = jira.transitions(issue, expand="transitions.fields")
    done = [t for t in with_fields if t["name"] == "Done"]
    assert done and "resolution" in done[0]["fields"], with_fields
    jira.transition_issue(
        issue, "Done", fields={"resolution": {"name": "Done"}}, comment="Closed from pycontribs"
    )
    issue = jira.issue(issue.key)
    assert issue.fields.status.name == "Done", issue.fields.status.name
    assert issue.fields.resolution.name == "Done"
    assert issue.fields.resolutiondate
    assert [t["name"] for t in jira.transitions(issue)] == ["Reopen"]
    step("transitions: %s is Done (%s)" % (issue.key, issue.fields.resolution.name))

    found = jira.search_users(query="Noah")
    assert [u.displayName for u in found] == ["Noah Patel"], found
    assert found[0].emailAddress == "noah@example.com"
    private = jira.search_users(query="zoe")
    assert [u.displayName for u in private] == ["Zoe Tanaka"]
    assert not hasattr(private[0], "emailAddress"), "a private e-mail is left out"
    step("search_users: %s" % found[0].accountId)

    # assign_issue looks the name up with user/search, then PUTs
    # /rest/api/latest/issue/{key}/assignee.
    assert jira.assign_issue(issue, "Noah Patel")
    assert jira.issue(issue.key).fields.assignee.displayName == "Noah Patel"
    jira.assign_issue(issue, None)
    assert jira.issue(issue.key).fields.assignee is None
    step("assign_issue: Noah Patel, then nobody")

    comment = jira.add_comment(issue.key, "first words")
    comment.update(body="better words")
    assert jira.comment(issue.key, comment.id).body == "better words"
    comment.delete()
    ids = [c.id for c in jira.comments(issue.key)]
    assert comment.id not in ids, ids
    assert len(ids) == 1, "the transition's comment stays"
    step("comment: %s updated and deleted" % comment.id)

    full = jira.issue(issue.key, expand="changelog")
    histories = full.changelog.histories
    fields = [item.field for h in histories for item in h.items]
    assert fields.count("status") == 2, fields
    assert "resolution" in fields and fields.count("assignee") == 2, fields
    last_status = [i for h in histories for i in h.items if i.field == "status"][-1]
    assert last_status.toString == "Done", last_status.toString
    step("changelog: %d histories" % len(histories))

    step("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
