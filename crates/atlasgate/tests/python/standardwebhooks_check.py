"""Verify atlasgate's event deliveries with the official `standardwebhooks`
library (PyPI `standardwebhooks`).

Usage: standardwebhooks_check.py DELIVERIES.json
where the file holds {"secret": "whsec_…", "deliveries": [{"headers": {…}, "body": "…"}]}.
Exit 0 when every delivery verifies and a tampered copy of each does not;
1 on a verification failure; 3 when the library is not importable.
"""
import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as e:  # the Rust test decides whether that is a skip
    print(f"standardwebhooks is not importable: {e}", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    wh = Webhook(spec["secret"])
    ok = 0
    for d in spec["deliveries"]:
        payload = wh.verify(d["body"], d["headers"])
        if payload.get("id") != d["headers"].get("webhook-id"):
            print(f"payload id {payload.get('id')} != webhook-id", file=sys.stderr)
            return 1
        try:
            wh.verify(d["body"] + " ", d["headers"])
        except WebhookVerificationError:
            pass
        else:
            print("a tampered body verified", file=sys.stderr)
            return 1
        ok += 1
    print(f"verified {ok}")
    return 0 if ok == len(spec["deliveries"]) and ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
