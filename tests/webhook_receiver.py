"""A webhook consumer as a team would write one: every request checked with
the Standard Webhooks library (`standardwebhooks`, PyPI), the way its README
tells a receiver to. Records what it received and whether the library
accepted it; answers as scripted, to play an endpoint that fails.

    webhook_receiver.py --record FILE --secrets FILE [--answers 503,drop,200]

Prints the port it listens on (127.0.0.1) as its first line. --secrets names
a file with one secret per line, read at each request (so a test can write
the endpoint's secret after the receiver starts, and rotate it). --answers:
the status of each request in turn, or `drop` (the connection closed with
no answer, after the request was read: a lost response); then 200s.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", required=True)
    parser.add_argument("--secrets", required=True)
    parser.add_argument("--answers", default="")
    args = parser.parse_args()
    answers = [a for a in args.answers.split(",") if a]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with open(args.secrets) as f:
                secrets = [line.strip() for line in f if line.strip()]
            verified_by = None
            error = None
            for i, secret in enumerate(secrets):
                try:
                    Webhook(secret).verify(body, dict(self.headers.items()))
                    verified_by = i
                    break
                except WebhookVerificationError as e:
                    error = str(e)
            with lock:
                answer = answers.pop(0) if answers else "200"
                record = {
                    "id": self.headers.get("webhook-id"),
                    "timestamp": self.headers.get("webhook-timestamp"),
                    "verified": verified_by is not None,
                    "verified_by": verified_by,
                    "error": None if verified_by is not None else error,
                    "answer": answer,
                    "body": json.loads(body) if body else None,
                }
                with open(args.record, "a") as f:
                    f.write(json.dumps(record) + "\n")
            if answer == "drop":
                self.close_connection = True
                self.connection.close()
                return
            status = int(answer)
            if verified_by is None and status < 300:
                status = 401
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
