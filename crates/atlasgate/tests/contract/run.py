#!/usr/bin/env python3
"""The contract run: schemathesis against atlasgate's own /openapi.json.

Boots atlassim and atlasgate (SQLite in a temporary directory) on loopback
ports, creates an app through the admin API, imports two connections from
grants minted at atlassim's `/__sim/tokens` (docs/importing.md), then runs
`schemathesis run` with every check and every phase (examples, coverage,
fuzzing, stateful) against the served document, authenticated as that app
(and as the admin on `/admin/api`). Exits with schemathesis's status: non-zero
on any failure. RELIABILITY.md ("Contract") has the command and the figures;
`schemathesis.toml` next to this file says what is configured and why.

    python3 crates/atlasgate/tests/contract/run.py [--max-examples N] [--seed S]
        [-- extra schemathesis arguments]

Binaries: $ATLASGATE_BIN and $ATLASSIM_BIN, else target/debug/{atlasgate,atlassim}
(built with `cargo build -p atlasgate -p atlassim` when missing).
"""

import argparse
import json
import os
import secrets
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
CLIENT_ID = "atlasgate-dev"
CLIENT_SECRET = "atlasgate-dev-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_ready(url, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not become ready at {url}")


def binary(name, env_var):
    path = os.environ.get(env_var) or os.path.join(ROOT, "target", "debug", name)
    if not os.path.exists(path):
        subprocess.run(
            ["cargo", "build", "-p", "atlasgate", "-p", "atlassim"], cwd=ROOT, check=True
        )
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-examples", type=int, default=int(os.environ.get("CONTRACT_MAX_EXAMPLES", "10")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CONTRACT_SEED", "1")))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, report)")
    ap.add_argument("--serve", action="store_true",
                    help="boot and set up as for a run, print the URL, key and ids, and wait (Ctrl-C stops)")
    ap.add_argument("extra", nargs="*", help="more schemathesis arguments (after --)")
    args = ap.parse_args()
    # SIGTERM stops like Ctrl-C: the processes started here are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    atlasgate = binary("atlasgate", "ATLASGATE_BIN")
    atlassim = binary("atlassim", "ATLASSIM_BIN")
    work = tempfile.mkdtemp(prefix="atlasgate-contract-")
    sim_port, ag_port = free_port(), free_port()
    sim_url, ag_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{ag_port}"
    admin_token = secrets.token_hex(24)
    procs = []
    failed = True
    try:
        sim = subprocess.Popen(
            [atlassim, "serve", "--listen", f"127.0.0.1:{sim_port}", "--epoch", "2026-01-01",
             "--sites", "1", "--projects", "2", "--issues", "12",
             "--redirect-uri", f"{ag_url}/oauth/callback"],
            stdout=open(os.path.join(work, "atlassim.log"), "w"), stderr=subprocess.STDOUT,
        )
        procs.append(sim)
        wait_ready(f"{sim_url}/__sim/state", sim, "atlassim")
        keys = subprocess.run([atlasgate, "keys", "generate"], capture_output=True, text=True, check=True)
        env = dict(os.environ)
        env.update({
            "ATLASGATE_DATABASE_URL": f"sqlite://{work}/atlasgate.db",
            "ATLASGATE_LISTEN": f"127.0.0.1:{ag_port}",
            "ATLASGATE_PUBLIC_URL": ag_url,
            "ATLASGATE_ENCRYPTION_KEYS": keys.stdout.strip(),
            "ATLASSIAN_CLIENT_ID": CLIENT_ID,
            "ATLASSIAN_CLIENT_SECRET": CLIENT_SECRET,
            "ATLASSIAN_AUTH_URL": sim_url,
            "ATLASSIAN_API_URL": sim_url,
            "ATLASGATE_ADMIN_TOKEN": admin_token,
            "ATLASGATE_LOG": "warn",
        })
        ag = subprocess.Popen(
            [atlasgate, "serve"], env=env, cwd=work,
            stdout=open(os.path.join(work, "atlasgate.log"), "w"), stderr=subprocess.STDOUT,
        )
        procs.append(ag)
        wait_ready(f"{ag_url}/readyz", ag, "atlasgate")

        status, app = http("POST", f"{ag_url}/admin/api/apps", {"name": "contract"}, admin_token)
        assert status == 201, (status, app)
        api_key = app["api_key"]
        _, world = http("GET", f"{sim_url}/__sim/state")
        cloud_id = world["sites"][0]["cloud_id"]
        users = [u["account_id"] for u in world["users"]]
        connections = []
        # One connection for every `{id}` route, a spare one for the
        # disconnect route (DELETE /v1/connections/{id}) so the first stays
        # active for the whole run.
        for i, owner in enumerate(["contract:main", "contract:spare"]):
            _, minted = http("POST", f"{sim_url}/__sim/tokens",
                             {"account_id": users[i % len(users)], "cloud_ids": [cloud_id]})
            status, conn = http("POST", f"{ag_url}/v1/connections/import",
                                {"owner": owner, "refresh_token": minted["refresh_token"],
                                 "cloud_id": cloud_id}, api_key)
            assert status == 201, (status, conn)
            connections.append(conn["id"])

        # Real objects for the other path parameters, found through the API
        # itself, so those routes answer 200 and their answers are checked
        # against the document (not only the 404 of a made-up id).
        main = f"{ag_url}/v1/connections/{connections[0]}"
        _, boards = http("GET", f"{main}/jira/boards", token=api_key)
        board = next(b["id"] for b in boards["items"] if b["type"] == "scrum")
        _, sprints = http("GET", f"{main}/jira/boards/{board}/sprints", token=api_key)
        sprint = sprints["items"][0]["id"]
        _, issues = http("GET", f"{main}/jira/sprints/{sprint}/issues", token=api_key)
        issue = issues["items"][0]["key"]
        _, spaces = http("GET", f"{main}/confluence/spaces", token=api_key)
        _, pages = http("GET", f"{main}/confluence/pages?space={spaces['items'][0]['key']}", token=api_key)
        page = pages["items"][0]["id"]
        status, sync = http("POST", f"{main}/syncs", {"jql": f"project = {issue.split('-')[0]}"}, api_key)
        assert status == 201, (status, sync)

        st_env = dict(os.environ)
        st_env.update({
            "CONTRACT_APP_KEY": api_key,
            "CONTRACT_ADMIN_TOKEN": admin_token,
            "CONTRACT_CONNECTION": connections[0],
            "CONTRACT_SPARE_CONNECTION": connections[1],
            "CONTRACT_ISSUE": issue,
            "CONTRACT_PAGE": page,
            "CONTRACT_SYNC": sync["id"],
        })
        if args.serve:
            print(json.dumps({"atlasgate": ag_url, "atlassim": sim_url, "app_key": api_key,
                              "admin_token": admin_token, "connections": connections}), flush=True)
            try:
                ag.wait()
            except KeyboardInterrupt:
                pass
            return 0
        report = os.path.join(work, "report")
        # Every check is on by default (`--checks all` would also switch on
        # the few that schemathesis.toml turns off for stated reasons).
        # Integer path parameters go in as TOML integers (an environment
        # value is a string, which schemathesis would judge against
        # `type: integer` and count as a schema violation the server accepted).
        config = os.path.join(work, "schemathesis.toml")
        with open(os.path.join(HERE, "schemathesis.toml")) as src, open(config, "w") as dst:
            dst.write(src.read()
                      .replace('"${CONTRACT_BOARD}"', str(board))
                      .replace('"${CONTRACT_SPRINT}"', str(sprint)))
        cmd = [
            shutil.which("schemathesis") or "schemathesis", "--config-file", config,
            "run", f"{ag_url}/openapi.json",
            "--url", ag_url,
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--workers", "1",
            "--report", "junit", "--report-dir", report,
            *args.extra,
        ]
        print("+", " ".join(cmd), flush=True)
        rc = subprocess.run(cmd, env=st_env, cwd=work).returncode
        failed = rc != 0
        if failed or args.keep:
            print(f"logs and report kept in {work}", flush=True)
        return rc
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep and not failed:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
