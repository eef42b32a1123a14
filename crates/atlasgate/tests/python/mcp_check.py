"""The official MCP Python SDK (PyPI `mcp`) against a connection's MCP
server (tests/api/mcp_sdk.rs drives it, against atlassim).

PHASE=agent: every step of issue 11's MCP list, as an agent would make it.
PHASE=read_only: after `PUT …/mcp-policy {"read_only": true}` — the write
tools are gone from tools/list and every call to one is refused.
PHASE=other_key: the SDK with another app's key cannot even initialize.

Every tool result is appended to RESULTS_FILE (one JSON object per line) so
the Rust side can scan them for the connection's tokens. Prints `ok` last.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

URL = os.environ["MCP_URL"]
KEY = os.environ["ATLASGATE_APP_KEY"]
PHASE = os.environ["PHASE"]
RESULTS = os.environ["RESULTS_FILE"]

WRITE_TOOLS = {
    "jira_create_issue", "jira_update_issue", "jira_transition_issue",
    "jira_assign_issue", "jira_add_comment", "jira_set_estimate",
    "confluence_create_page", "confluence_update_page",
}
ALL_TOOLS = WRITE_TOOLS | {
    "jira_search", "jira_get_issue", "jira_list_projects", "jira_list_boards",
    "jira_list_sprints", "jira_sprint_issues", "confluence_search", "confluence_get_page",
}

DESCRIPTION = """Steps to reproduce, **exactly**:

```python
print("hello")
```

- one
- two
"""


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr, flush=True)
        sys.exit(1)


async def call(session, name, args, expect_error=False):
    r = await session.call_tool(name, args)
    dump = r.model_dump(mode="json", by_alias=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps({"tool": name, "result": dump}) + "\n")
    check(bool(r.is_error) == expect_error, f"{name} isError={r.is_error}: {dump}")
    check(r.content and r.content[0].type == "text", f"{name}: text content: {dump}")
    check(isinstance(r.structured_content, dict), f"{name}: structuredContent: {dump}")
    return r.structured_content, r.content[0].text


async def agent(session):
    listed = (await session.list_tools()).tools
    names = {t.name for t in listed}
    check(names == ALL_TOOLS, f"tools/list: {sorted(names)}")
    check(len(listed) == 16, "16 tools")
    for t in listed:
        check(t.input_schema.get("type") == "object", f"{t.name} has an input schema")

    project = os.environ["PROJECT"]
    found, _ = await call(session, "jira_search", {"jql": f"project = {project} ORDER BY key", "limit": 5})
    check(found["source"] == "jira" and len(found["issues"]) >= 1, f"search: {found}")

    args = {"project": project, "issue_type": "Task", "summary": "Filed by an agent", "description": DESCRIPTION}
    created, _ = await call(session, "jira_create_issue", args)
    key = created["key"]
    check(created["replayed"] is False, f"first create: {created}")
    # The same call again (an agent retrying after a lost answer): the first issue.
    again, text = await call(session, "jira_create_issue", args)
    check(again["key"] == key and again["replayed"] is True, f"retry: {again}")
    # The same idempotency key with other arguments: still one issue.
    k1, _ = await call(session, "jira_create_issue", dict(args, summary="Keyed", idempotency_key="agent-run-7"))
    k2, _ = await call(session, "jira_create_issue", dict(args, summary="Keyed, reworded", idempotency_key="agent-run-7"))
    check(k1["key"] == k2["key"] and k1["key"] != key, f"keyed: {k1} {k2}")

    issue, text = await call(session, "jira_get_issue", {"key": key})
    md = issue["description_markdown"]
    check("**exactly**" in md and "```python" in md, f"description as Markdown: {md!r}")
    check("**exactly**" in text, "the text content is Markdown too")

    # In Review cannot be reached from To Do: the error lists what can.
    err, text = await call(session, "jira_transition_issue", {"key": key, "to": "In Review"}, expect_error=True)
    reachable = err["error"]["reachable"]
    check("In Progress" in reachable and "In Review" not in reachable, f"reachable: {err}")
    check("In Progress" in text, f"the message names the reachable statuses: {text}")
    await call(session, "jira_transition_issue", {"key": key, "to": "In Progress"})
    done, _ = await call(session, "jira_transition_issue", {"key": key, "to": "Done"})
    check(done["status"] == "Done", f"transition: {done}")

    assigned, _ = await call(session, "jira_assign_issue", {"key": key, "assignee": os.environ["ASSIGNEE_EMAIL"]})
    check(assigned["assignee"]["account_id"] == os.environ["ASSIGNEE_ACCOUNT"], f"assign: {assigned}")

    await call(session, "jira_add_comment", {"key": key, "markdown": "Fixed in `main`, see **notes**."})

    space = os.environ["SPACE_KEY"]
    page, _ = await call(session, "confluence_create_page", {"space": space, "title": "Agent notes", "markdown": "# Notes\n\nFirst draft."})
    page_id, v1 = page["id"], page["version"]
    read, _ = await call(session, "confluence_get_page", {"id": page_id})
    check(read["version"] == v1 and "First draft." in read["markdown"], f"get: {read}")
    upd, _ = await call(session, "confluence_update_page", {"id": page_id, "markdown": "# Notes\n\nSecond draft, **final**.", "version": v1})
    check(upd["version"] == v1 + 1, f"update: {upd}")
    stale, text = await call(session, "confluence_update_page", {"id": page_id, "markdown": "lost edit", "version": v1}, expect_error=True)
    check(stale["error"]["current_version"] == v1 + 1, f"stale update: {stale}")
    hits, _ = await call(session, "confluence_search", {"cql": f'type = page AND space = "{space}" AND title = "Agent notes"'})
    check(any(h["id"] == page_id for h in hits["results"]), f"cql: {hits}")
    read, _ = await call(session, "confluence_get_page", {"id": page_id})
    check("Second draft, **final**." in read["markdown"] and "lost edit" not in read["markdown"], f"get after update: {read}")

    # A tool error a model can act on, not a transport error: a missing issue.
    await call(session, "jira_get_issue", {"key": f"{project}-99999"}, expect_error=True)
    print(json.dumps({"key": key, "page_id": page_id}))


async def reads(session):
    """The read tools and an estimate."""
    listed = (await session.list_tools()).tools
    names = {t.name for t in listed}
    check(names == ALL_TOOLS, f"tools/list: {sorted(names)}")
    for t in listed:
        check(t.input_schema.get("type") == "object" and "properties" in t.input_schema, f"{t.name} has an input schema")
    project = os.environ["PROJECT"]
    found, text = await call(session, "jira_search", {"jql": f"project = {project} ORDER BY key", "limit": 3})
    check(found["source"] == "jira" and len(found["issues"]) == 3, f"search: {found}")
    key = found["issues"][0]["key"]
    check(key in text, "the text lists the issues")
    projects, _ = await call(session, "jira_list_projects", {})
    check(any(p["key"] == project for p in projects["projects"]), f"projects: {projects}")
    boards, _ = await call(session, "jira_list_boards", {"project": project})
    check(len(boards["boards"]) >= 1, f"boards: {boards}")
    est, _ = await call(session, "jira_set_estimate", {"key": key, "value": 13})
    check(est["value"] == 13 and est["field_id"].startswith("customfield_"), f"estimate: {est}")
    # Tool errors a model can act on, not transport errors.
    err, _ = await call(session, "jira_search", {"jql": "project = X", "limit": 0}, expect_error=True)
    check(err["error"]["kind"] == "invalid_arguments", f"{err}")
    err, _ = await call(session, "jira_set_estimate", {"key": key, "value": 1, "extra": True}, expect_error=True)
    check(err["error"]["kind"] == "invalid_arguments" and "extra" in err["error"]["message"], f"{err}")
    err, _ = await call(session, "jira_sprint_issues", {"sprint": 999999}, expect_error=True)
    check(err["error"].get("status") == 404 and "Sprint" in err["error"]["message"], f"{err}")
    print(json.dumps({"key": key}))


async def reads_read_only(session):
    names = {t.name for t in (await session.list_tools()).tools}
    check(names == ALL_TOOLS - WRITE_TOOLS, f"read-only tools/list: {sorted(names)}")
    err, _ = await call(session, "jira_set_estimate", {"key": os.environ["ISSUE_KEY"], "value": 2}, expect_error=True)
    check(err["error"]["kind"] == "refused_by_policy", f"{err}")
    found, _ = await call(session, "jira_search", {"jql": f"key = {os.environ['ISSUE_KEY']}"})
    check(len(found["issues"]) == 1, "reads still work")


async def read_only(session):
    names = {t.name for t in (await session.list_tools()).tools}
    check(names == ALL_TOOLS - WRITE_TOOLS, f"read-only tools/list: {sorted(names)}")
    key = os.environ["ISSUE_KEY"]
    attempts = {
        "jira_create_issue": {"project": os.environ["PROJECT"], "issue_type": "Task", "summary": "must not exist"},
        "jira_update_issue": {"key": key, "summary": "must not change"},
        "jira_transition_issue": {"key": key, "to": "To Do"},
        "jira_assign_issue": {"key": key, "assignee": None},
        "jira_add_comment": {"key": key, "markdown": "must not be posted"},
        "jira_set_estimate": {"key": key, "value": 13},
        "confluence_create_page": {"space": os.environ["SPACE_KEY"], "title": "must not exist", "markdown": "x"},
        "confluence_update_page": {"id": os.environ["PAGE_ID"], "markdown": "must not change", "version": 2},
    }
    check(set(attempts) == WRITE_TOOLS, "every write tool is tried")
    for name, args in attempts.items():
        err, text = await call(session, name, args, expect_error=True)
        check(err["error"]["kind"] == "refused_by_policy", f"{name}: {err}")
    # Reads still work.
    issue, _ = await call(session, "jira_get_issue", {"key": key})
    check(issue["status"] == "Done", f"{issue}")


async def main():
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        if PHASE == "other_key":
            try:
                async with streamable_http_client(URL, http_client=http) as (read, write, *_):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
            except BaseException as e:  # the SDK raises (an exception group) on the 404
                print(f"refused: {type(e).__name__}")
                print("ok")
                return
            check(False, "another app's key initialized a session")
        async with streamable_http_client(URL, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                check(init.protocol_version >= "2025-06-18", f"protocol {init.protocol_version}")
                check(init.capabilities.tools is not None, "tools capability")
                if PHASE == "agent":
                    await agent(session)
                elif PHASE == "reads":
                    await reads(session)
                elif PHASE == "reads_read_only":
                    await reads_read_only(session)
                elif PHASE == "read_only":
                    await read_only(session)
                else:
                    check(False, f"unknown PHASE {PHASE}")
    print("ok")


asyncio.run(main())
