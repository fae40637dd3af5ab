"""Holds the Web API calls a Slack stand-in recorded (slack_standin.py) to
what Slack publishes: every method's HTTP verb and parameters to Slack's
OpenAPI spec (tests/vendor/slack_web_openapi_v2.subset.json, copied from
slackapi/slack-api-specs), every required parameter present and none it
does not define; every message's blocks to slack-sdk's Block Kit models.

    slack_calls_check.py RECORD     # prints "ok: N calls" or each problem, exit 1
    slack_calls_check.py --self-test
"""

import json
import os
import sys

from slack_sdk.models.blocks import Block

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor", "slack_web_openapi_v2.subset.json")


def problems_of(calls, spec):
    problems = []
    for i, call in enumerate(calls):
        method = call["method"]
        if method == "response_url":
            if call["params"].get("response_type") != "ephemeral":
                problems.append(f"call {i}: a response_url post that is not ephemeral")
            continue
        path = spec["paths"].get("/" + method)
        if path is None:
            problems.append(f"call {i}: {method} is not a method of Slack's Web API spec")
            continue
        verb = call["http"].lower()
        operation = path.get(verb)
        if operation is None:
            problems.append(f"call {i}: {method} by {call['http']}; the spec has {sorted(path)}")
            continue
        if not call["authorized"]:
            problems.append(f"call {i}: {method} without the bot token")
        defined = {p["name"]: p for p in operation.get("parameters", []) if p["name"] != "token"}
        given = call["params"]
        for name in given:
            if name not in defined:
                problems.append(f"call {i}: {method} takes no parameter {name!r} (it takes {sorted(defined)})")
        for name, p in defined.items():
            if p.get("required") and name not in given:
                problems.append(f"call {i}: {method} without its required {name!r}")
        kinds = operation.get("consumes", [])
        if verb == "post" and given and not any(call["content_type"].startswith(k) for k in kinds):
            problems.append(f"call {i}: {method} sent as {call['content_type']}; the spec takes {kinds}")
        for name, value in given.items():
            p = defined.get(name)
            if p is None:
                continue
            if p.get("type") == "boolean" and not isinstance(value, bool) and value not in ("true", "false"):
                problems.append(f"call {i}: {method}'s {name} is not a boolean: {value!r}")
            if p.get("type") in ("integer", "number"):
                try:
                    float(value)
                except (TypeError, ValueError):
                    problems.append(f"call {i}: {method}'s {name} is not a number: {value!r}")
        blocks = given.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        for raw in blocks or []:
            parsed = Block.parse(raw)
            if parsed is None or type(parsed) is Block:
                problems.append(f"call {i}: slack-sdk knows no block {raw.get('type')!r}")
                continue
            try:
                parsed.validate_json()
            except Exception as e:  # SlackObjectFormationError and kin
                problems.append(f"call {i}: slack-sdk refuses a {raw.get('type')} block: {e}")
    return problems


def self_test(spec):
    """The check catches what it is for: an unknown parameter, a missing
    required one, the wrong verb, a call without the token, a block Slack
    would refuse; and passes a good call."""
    good = {"method": "chat.update", "http": "POST", "content_type": "application/json", "authorized": True,
            "params": {"channel": "C1", "ts": "1.2", "text": "t",
                       "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}}
    bad = [
        dict(good, params=dict(good["params"], metadata={"event_type": "x"})),
        dict(good, params={"channel": "C1", "text": "t"}),
        dict(good, method="users.lookupByEmail", http="POST", params={"email": "a@b.example"}),
        dict(good, authorized=False),
        dict(good, params=dict(good["params"], blocks=[{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}])),
    ]
    assert not problems_of([good], spec), problems_of([good], spec)
    for call in bad:
        assert problems_of([call], spec), f"not caught: {call}"
    print("slack calls self-test: an unknown parameter, a missing required one, the wrong verb, no token and an over-long header are caught")
    return 0


def main():
    with open(SPEC) as f:
        spec = json.load(f)
    if sys.argv[1] == "--self-test":
        return self_test(spec)
    with open(sys.argv[1]) as f:
        calls = [json.loads(line) for line in f if line.strip()]
    problems = problems_of(calls, spec)
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(calls)} calls")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
