"""Milepost's tracking API with the real SDKs product teams already call:
segment-analytics-python, rudder-sdk-python and @segment/analytics-node,
installed by `make test` (tests/requirements.txt, tests/sdk/package.json).

Run by tests/local_run.py against `make local`. Each SDK sends through a
recording proxy, so the test knows every request an SDK made and every
answer it got:

- the documentation's snippets, run as written: each creates an account with a
  `group` call and reaches its first_value with a `track` call, in one
  batch answered 200 (the rudder snippet gzipped, as that SDK does);
- a batch sent again byte for byte (an SDK's retry after a lost answer) is
  all duplicates and changes nothing;
- a wrong write key is refused (401) once: each SDK reports the failure and
  does not retry it, and nothing is stored;
- when Milepost cannot store a batch (its real 503 with Retry-After, made by
  the proxy), each SDK sends it again, and it arrives once.
"""

import base64
import gzip
import http.server
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDK_DIR = os.path.join(ROOT, "tests", "sdk")
NODE = os.path.join(ROOT, ".venv", "nodejs", "bin", "node")
# Milepost's answer when it cannot store a batch just now (Problem::unavailable
# with the SDKs' members; functions/ingest/tests/tracking_api.rs checks the real one).
UNAVAILABLE = {
    "type": "urn:milepost:problem:unavailable", "title": "Temporarily unavailable", "status": 503,
    "detail": "the events could not be stored just now; retry the same request",
    "code": "unavailable", "message": "the events could not be stored just now; retry the same request",
}


class RecordingProxy:
    """Forwards every request to Milepost's tracking URL and records it with
    its answer; `fail_next(n)` answers the next n requests with Milepost's 503."""

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.records = []
        self.failing = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                proxy.answer(self, body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{self.upstream.path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail_next(self, n):
        with self.lock:
            self.failing = n

    def answer(self, handler, body):
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self.lock:
            fail = self.failing > 0
            self.failing -= fail
        if fail:
            status, answer_headers = 503, {"content-type": "application/problem+json", "retry-after": "5"}
            answer = json.dumps(UNAVAILABLE).encode()
        else:
            forwarded = {k: v for k, v in headers.items()
                         if k in ("content-type", "content-encoding", "authorization", "user-agent")}
            url = f"{self.upstream.scheme}://{self.upstream.netloc}{handler.path}"
            request = urllib.request.Request(url, data=body, method="POST", headers=forwarded)
            try:
                with urllib.request.urlopen(request, timeout=60) as r:
                    status, answer, answer_headers = r.status, r.read(), dict(r.headers)
            except urllib.error.HTTPError as e:
                status, answer, answer_headers = e.code, e.read(), dict(e.headers)
        with self.lock:
            self.records.append({"path": handler.path, "headers": headers, "body": body,
                                 "status": status, "answer": answer})
        handler.send_response(status)
        for name in ("content-type", "retry-after", "www-authenticate"):
            value = {k.lower(): v for k, v in answer_headers.items()}.get(name)
            if value:
                handler.send_header(name, value)
        handler.send_header("content-length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def take(self):
        """The requests recorded since the last call."""
        with self.lock:
            taken, self.records = self.records, []
        return taken

    def stop(self):
        self.server.shutdown()


def readme_code(marker, language):
    text = open(os.path.join(ROOT, "docs", "sending-events.md"), encoding="utf-8").read()
    after = text[text.index(marker):]
    return re.search(rf"```{language}\n(.*?)```", after, re.S).group(1)


def calls_in(record):
    body = record["body"]
    if record["headers"].get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body)["batch"]


def basic_user(record):
    scheme, _, credentials = record["headers"].get("authorization", "").partition(" ")
    return base64.b64decode(credentials).decode().split(":")[0] if scheme == "Basic" else None


class SdkRun:
    def __init__(self, env, cli, check):
        self.env, self.cli, self.check = env, cli, check
        self.proxy = RecordingProxy(env["MILEPOST_TRACKING_URL"])
        self.summary = []

    def first_value(self, account):
        shown = self.cli("accounts", "show", account)
        found = re.search(r"^\s*first_value\s+(\w+)\b", shown.stdout, re.M) if shown.returncode == 0 else None
        return found.group(1) if found else None

    def exactly_one_batch(self, who, status, gzipped=None):
        records = self.proxy.take()
        self.check(len(records) == 1, f"{who}: expected one request, the SDK made {len(records)}: "
                   f"{[(r['path'], r['status']) for r in records]}")
        record = records[0]
        self.check(record["path"].endswith("/v1/batch") and record["status"] == status,
                   f"{who}: {record['path']} answered {record['status']} {record['answer'][:300]!r}, expected {status}")
        if gzipped is not None:
            self.check((record["headers"].get("content-encoding") == "gzip") == gzipped,
                       f"{who}: Content-Encoding was {record['headers'].get('content-encoding')!r}")
        return record

    def run_snippet(self, marker, language, account):
        env = {**os.environ, **self.env, "MILEPOST_TRACKING_URL": self.proxy.url}
        if language == "python":
            command, cwd = [sys.executable, "-c", readme_code(marker, "python")], ROOT
        else:
            # Written beside node_modules so its import resolves as in a project.
            script = tempfile.NamedTemporaryFile("w", suffix=".mjs", dir=SDK_DIR, delete=False)
            script.write(readme_code(marker, "js"))
            script.close()
            command, cwd = [NODE, script.name], SDK_DIR
        try:
            done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        finally:
            if language != "python":
                os.unlink(command[1])
        self.check(done.returncode == 0, f"the documentation's {marker} snippet failed:\n{done.stdout}\n{done.stderr}")
        self.check(self.first_value(account) == "achieved",
                   f"after the {marker} snippet, {account}'s first_value is {self.first_value(account)}")

    def snippets(self):
        self.run_snippet("<!-- sdk-python", "python", "initech")
        record = self.exactly_one_batch("segment-analytics-python (docs)", 200, gzipped=False)
        self.check(basic_user(record) == self.env["MILEPOST_WRITE_KEY"],
                   f"segment-python did not send the write key as Basic user: {record['headers']}")
        self.check([c["type"] for c in calls_in(record)] == ["group", "track"], f"unexpected calls: {calls_in(record)}")
        python_batch = record

        self.run_snippet("<!-- sdk-rudderstack", "python", "hooli")
        self.exactly_one_batch("rudder-sdk-python (docs)", 200, gzipped=True)

        self.run_snippet("<!-- sdk-node", "js", "umbrella")
        record = self.exactly_one_batch("@segment/analytics-node (docs)", 200, gzipped=False)
        self.check(json.loads(record["body"]).get("writeKey") == self.env["MILEPOST_WRITE_KEY"],
                   "analytics-node sends the key in the body too")
        self.summary.append("the three documented snippets created their accounts and reached first_value, one 200 each")
        self.redelivered(python_batch, "segment-analytics-python")

    def redelivered(self, record, who):
        """The batch again, byte for byte, as an SDK resends after a lost answer."""
        before = self.cli("accounts", "show", "initech").stdout
        request = urllib.request.Request(self.proxy.url + "/v1/batch", data=record["body"], method="POST",
                                         headers={k: v for k, v in record["headers"].items()
                                                  if k in ("content-type", "content-encoding", "authorization")})
        with urllib.request.urlopen(request, timeout=60) as r:
            answer = json.loads(r.read())
        self.proxy.take()
        calls = len(calls_in(record))
        self.check(answer.get("success") is True and answer["accepted"] == 0 and answer["duplicates"] == calls,
                   f"{who}: the redelivered batch was not all duplicates: {answer}")
        after = self.cli("accounts", "show", "initech").stdout
        # The view's health line may age by the second; the milestones may not change.
        strip = lambda view: [l for l in view.splitlines() if re.match(r"^\s*\w+\s+(achieved|pending|missed|recovered)\b", l)]
        self.check(strip(after) == strip(before), f"{who}: a redelivery changed the account:\n{before}\n{after}")
        self.summary.append(f"a redelivered batch was {calls} duplicates")

    def python_sdks(self):
        from segment.analytics.client import Client as SegmentClient
        from rudderstack.analytics.client import Client as RudderClient

        # They log the 401s this provokes as errors; the test reads on_error instead.
        for logger in ("segment", "rudderstack"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)

        for name, Client, options in [("segment-analytics-python", SegmentClient, {"gzip": True}),
                                      ("rudder-sdk-python", RudderClient, {})]:
            account = "sdk-" + name.split("-")[0]
            # gzip: opt-in for Segment's SDK, the default for RudderStack's.
            self.send_python(Client, self.env["MILEPOST_WRITE_KEY"], account, options)
            self.exactly_one_batch(f"{name} (gzip)", 200, gzipped=True)
            self.check(self.first_value(account) == "achieved", f"{name}: {account} did not reach first_value")

            failures = self.send_python(Client, "wk_wrong", account + "-wrong", options)
            time.sleep(2)  # room for a retry the SDK must not make
            record = self.exactly_one_batch(f"{name} (wrong key)", 401)
            self.check(len(failures) == 1 and getattr(failures[0], "status", None) == 401
                       and getattr(failures[0], "code", None) == "unauthorized",
                       f"{name}: on_error got {failures!r}, expected one 401 'unauthorized'")
            self.check(self.cli("accounts", "show", account + "-wrong").returncode != 0,
                       f"{name}: an account was stored from a batch with a wrong key")
            self.check(json.loads(record["answer"])["message"], f"{name}: the 401 has no message")

            self.proxy.fail_next(1)
            failures = self.send_python(Client, self.env["MILEPOST_WRITE_KEY"], account + "-retried", options)
            records = self.proxy.take()
            self.check([r["status"] for r in records] == [503, 200] and not failures,
                       f"{name}: after a 503 the SDK sent {[r['status'] for r in records]}, reported {failures!r}")
            self.check(records[0]["body"] == records[1]["body"] or calls_in(records[0]) == calls_in(records[1]),
                       f"{name}: the retry was not the same batch")
            self.check(self.first_value(account + "-retried") == "achieved", f"{name}: the retried batch was not applied")
        self.summary.append("both Python SDKs: gzip batches taken; a wrong key got one 401 each, reported and not "
                            "retried, nothing stored; a 503 was retried once and applied")

    def send_python(self, Client, key, account, options):
        """Sends `account`'s group and track calls; returns what on_error received."""
        failures = []
        client = Client(write_key=key, host=self.proxy.url, on_error=lambda e, batch: failures.append(e),
                        max_retries=3, **options)
        traits = {"name": account, "plan": "smb", "contract_start": time.strftime("%Y-%m-%d", time.gmtime(time.time() - 40 * 86400)),
                  "seats": 10, "arr": 120000, "admin_email": f"admin@{account}.example", "csm_email": "maya@vendor.example"}
        client.group("u-py", account, traits)
        client.track("u-py", "dashboard.created", {"source": "sdk test"}, context={"groupId": account})
        client.flush()
        client.join()
        return failures

    def node_sdk(self):
        def send(key, account):
            done = subprocess.run([NODE, "send.mjs", self.proxy.url, key, account, "dashboard.created"], cwd=SDK_DIR,
                                  capture_output=True, text=True, timeout=120)
            self.check(done.returncode == 0, f"send.mjs failed:\n{done.stdout}\n{done.stderr}")
            return json.loads(done.stdout.strip().splitlines()[-1])

        seen = send("wk_wrong", "sdk-node-wrong")
        record = self.exactly_one_batch("@segment/analytics-node (wrong key)", 401)
        self.check(seen["statuses"] == [401] and len(seen["failures"]) == 2 and "401" in seen["failures"][0]["reason"],
                   f"analytics-node: expected one 401 and each call reported failed, saw {seen}")
        self.check(self.cli("accounts", "show", "sdk-node-wrong").returncode != 0, "analytics-node: a wrong key stored an account")
        self.check(record["headers"].get("authorization", "").startswith("Basic "), "analytics-node sends Basic auth")

        self.proxy.fail_next(1)
        seen = send(self.env["MILEPOST_WRITE_KEY"], "sdk-node-retried")
        records = self.proxy.take()
        self.check([r["status"] for r in records] == [503, 200] and seen["failures"] == [],
                   f"analytics-node: after a 503 it sent {[r['status'] for r in records]}, saw {seen}")
        self.check(self.first_value("sdk-node-retried") == "achieved", "analytics-node: the retried batch was not applied")
        self.summary.append("analytics-node: a wrong key got one 401, reported per call and not retried; a 503 was retried once")


def run(env, cli, check):
    """`env`: .milepost-local.env's variables; `cli(*args)`: the CLI's
    CompletedProcess; `check(condition, message)`: fails the run."""
    sdk = SdkRun(env, cli, check)
    try:
        sdk.snippets()
        sdk.python_sdks()
        sdk.node_sdk()
    finally:
        sdk.proxy.stop()
    return "; ".join(sdk.summary)
