"""A stand-in for Slack's Web API on loopback, for the tests and `make
local`: it records every call and answers as Slack does, keeping the
messages posted so `chat.update` and `conversations.history` see them. It
judges nothing itself: `slack_calls_check.py` holds the recorded calls to
Slack's published OpenAPI spec and the blocks to slack-sdk's models.

    slack_standin.py --record FILE [--users maya@vendor.example=U_MAYA,...]
                     [--faults 429,500,drop,...] [--seed N --fault-rate P]

Prints its port as its first line. Users map addresses to user ids (a
direct message to U_X lands in channel D_X). --faults applies to
chat.postMessage calls in turn: `429` (with Retry-After: 1), `500`, or
`drop` (the message is kept, the connection closed with no answer: a lost
answer); then every call is answered normally. With --seed and
--fault-rate, each chat.postMessage and chat.update call meets one of those
faults at that rate instead (a chaos round; `drop` on an update applies it).
POSTs to /response/... (an interaction's response_url) are recorded too.
For tests on a virtual clock: POST /_clock {"now": unix seconds} sets the
clock message timestamps are taken from; GET /_messages returns every
channel's messages.
"""

import argparse
import json
import random
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", required=True)
    parser.add_argument("--users", default="")
    parser.add_argument("--faults", default="")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args()
    chaos = random.Random(args.seed) if args.seed is not None else None
    clock = [None]
    users = dict(pair.split("=", 1) for pair in args.users.split(",") if pair)
    faults = [f for f in args.faults.split(",") if f]
    lock = threading.Lock()
    channels = {}  # channel id -> list of messages
    counter = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def answer(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def record(self, method, params, fault=None):
            with lock, open(args.record, "a") as f:
                f.write(json.dumps({
                    "method": method,
                    "http": self.command,
                    "content_type": self.headers.get("content-type", ""),
                    "authorized": (self.headers.get("authorization") or "").startswith("Bearer xoxb-"),
                    "params": params,
                    "fault": fault,
                    "at": time.time(),
                }) + "\n")

        def params(self):
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            kind = self.headers.get("content-type", "")
            if body and kind.startswith("application/json"):
                params.update(json.loads(body))
            elif body:
                params.update(dict(urllib.parse.parse_qsl(body.decode())))
            return url.path, params

        def do_GET(self):
            self.handle_call()

        def do_POST(self):
            self.handle_call()

        def handle_call(self):
            path, params = self.params()
            if path == "/_clock":
                clock[0] = float(params["now"])
                return self.answer(200, {"ok": True})
            if path == "/_messages":
                with lock:
                    return self.answer(200, {"ok": True, "channels": channels})
            if path.startswith("/response/"):
                self.record("response_url", params)
                return self.answer(200, {"ok": True})
            method = path.rsplit("/", 1)[-1]
            fault = None
            if method in ("chat.postMessage", "chat.update"):
                with lock:
                    if chaos is not None:
                        fault = chaos.choice(["429", "500", "drop"]) if chaos.random() < args.fault_rate else None
                    elif method == "chat.postMessage":
                        fault = faults.pop(0) if faults else None
            self.record(method, params, fault)
            if fault == "429":
                return self.answer(429, {"ok": False, "error": "ratelimited"}, [("retry-after", "1")])
            if fault == "500":
                return self.answer(500, {"ok": False, "error": "internal_error"})
            if method == "users.lookupByEmail":
                user = users.get(params.get("email", ""))
                return self.answer(200, {"ok": True, "user": {"id": user}} if user else {"ok": False, "error": "users_not_found"})
            if method == "users.info":
                email = next((e for e, u in users.items() if u == params.get("user")), None)
                if email is None:
                    return self.answer(200, {"ok": False, "error": "user_not_found"})
                return self.answer(200, {"ok": True, "user": {"id": params["user"], "profile": {"email": email}}})
            if method == "conversations.open":
                return self.answer(200, {"ok": True, "channel": {"id": "D" + params.get("users", "")[1:]}})
            if method == "chat.postMessage":
                target = params.get("channel", "")
                channel = "D" + target[1:] if target.startswith("U") else target
                with lock:
                    counter[0] += 1
                    ts = f"{int(clock[0] or time.time())}.{counter[0]:06d}"
                    message = {"ts": ts, "text": params.get("text"), "blocks": params.get("blocks")}
                    channels.setdefault(channel, []).append(message)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return None
                return self.answer(200, {"ok": True, "channel": channel, "ts": ts, "message": message})
            if method == "chat.update":
                with lock:
                    found = next((m for m in channels.get(params.get("channel"), []) if m["ts"] == params.get("ts")), None)
                    if found is not None:
                        found.update(text=params.get("text"), blocks=params.get("blocks"))
                if found is not None and fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return None
                if found is None:
                    return self.answer(200, {"ok": False, "error": "message_not_found"})
                return self.answer(200, {"ok": True, "channel": params["channel"], "ts": params["ts"]})
            if method == "conversations.history":
                oldest = float(params.get("oldest") or 0)
                with lock:
                    messages = [m for m in channels.get(params.get("channel"), []) if float(m["ts"]) >= oldest]
                return self.answer(200, {"ok": True, "messages": list(reversed(messages))})
            return self.answer(200, {"ok": False, "error": "unknown_method"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
