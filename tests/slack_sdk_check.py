"""What Slack's official Python SDK (`slack-sdk`, PyPI) says of what
Milepost sends and takes, for the Rust tests (they run it from .venv):

    slack_sdk_check.py blocks < messages.json   # a JSON list of Block Kit block lists
    slack_sdk_check.py sign SECRET TIMESTAMP < body

`blocks` parses every block with the SDK's models (`Block.parse`) and
validates it (`validate_json`: Slack's documented limits), printing `ok N`
or the first failure; it also fails on a block type the SDK does not know.
`sign` prints the `X-Slack-Signature` the SDK's `SignatureVerifier`
computes for the body read from stdin.
"""

import json
import sys

from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier


def blocks():
    messages = json.load(sys.stdin)
    count = 0
    for i, message in enumerate(messages):
        for raw in message:
            parsed = Block.parse(raw)
            if parsed is None or type(parsed) is Block:
                print(f"message {i}: the SDK knows no block {raw.get('type')!r}")
                return 1
            try:
                parsed.validate_json()
            except Exception as e:  # SlackObjectFormationError and kin
                print(f"message {i}: {raw.get('type')} block refused: {e}")
                return 1
            for element in raw.get("elements", []) if raw.get("type") == "actions" else []:
                if element.get("type") == "button" and len(element["text"]["text"]) > 75:
                    print(f"message {i}: a button's text is over 75 characters")
                    return 1
            count += 1
    print(f"ok {count}")
    return 0


def sign(secret, timestamp):
    body = sys.stdin.buffer.read().decode()
    print(SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "blocks":
        sys.exit(blocks())
    sys.exit(sign(sys.argv[2], sys.argv[3]))
