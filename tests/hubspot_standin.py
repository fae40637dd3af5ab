"""A stand-in for HubSpot's CRM API on loopback, for the tests and `make
local`: it records every call and keeps what the calls made (properties,
companies' values, tasks) so later calls see them. It judges nothing
itself: `hubspot_calls_check.py` holds every recorded call to the official
`hubspot-api-client`'s models and the request that client would send.

    hubspot_standin.py --record FILE [--companies acme.example=101,...]
                       [--owners maya@vendor.example=501,...]
                       [--faults 429,500,drop,...] [--seed N --fault-rate P]
                       [--burst N --interval-ms M]

Prints its port as its first line. Companies are seeded by domain and id.
Every answer carries HubSpot's rate-limit headers for a burst window of
--burst requests per --interval-ms (100 per 10 s unless given); a call past
it gets HubSpot's 429. --faults applies to the writes (a task created, a
record written) in turn: `429` (with Retry-After: 1), `500`, or `drop`
(the write is made, the connection closed with no answer: a lost answer).
With --seed and --fault-rate, each write meets one of those at that rate
instead (a chaos round). GET /_state returns what the calls made; POST
/_deals {"id", "properties", "companies"} adds or changes a deal (its
hs_lastmodifieddate now), as a salesperson moving it to a stage would.
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
    parser.add_argument("--companies", default="")
    parser.add_argument("--owners", default="")
    parser.add_argument("--faults", default="")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--interval-ms", type=int, default=10_000)
    args = parser.parse_args()
    chaos = random.Random(args.seed) if args.seed is not None else None
    faults = [f for f in args.faults.split(",") if f]
    owners = dict(pair.split("=", 1) for pair in args.owners.split(",") if pair)
    lock = threading.Lock()
    companies = {}
    for pair in args.companies.split(","):
        if pair:
            domain, company_id = pair.split("=", 1)
            companies[company_id] = {"domain": domain}
    tasks = {}
    associations = {}
    deals = {}  # id -> {"properties": {...}, "companies": [...]}
    properties = {}  # object type -> {name: definition}
    groups = {}  # object type -> {name: definition}
    counter = [9000]
    window = {"start": time.monotonic(), "count": 0}

    def now_iso_ms():
        t = time.time()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"

    def millis(iso):
        return int(time.mktime(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone) * 1000 + int(iso[20:23] or 0)

    def matches(props, f):
        value = props.get(f["propertyName"])
        if f["operator"] == "EQ":
            return value == f["value"]
        if f["operator"] == "IN":
            return value in f["values"]
        if f["operator"] == "GTE" and f["propertyName"] == "hs_lastmodifieddate":
            return value is not None and millis(value) >= int(f["value"])
        return False

    def now_iso():
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())

    def as_object(object_id, props):
        return {"id": object_id, "properties": props, "createdAt": now_iso(), "updatedAt": now_iso(), "archived": False}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def rate_headers(self):
            with lock:
                elapsed = (time.monotonic() - window["start"]) * 1000
                if elapsed >= args.interval_ms:
                    window["start"], window["count"] = time.monotonic(), 0
                window["count"] += 1
                remaining = args.burst - window["count"]
            return remaining, [
                ("X-HubSpot-RateLimit-Max", str(args.burst)),
                ("X-HubSpot-RateLimit-Remaining", str(max(remaining, 0))),
                ("X-HubSpot-RateLimit-Interval-Milliseconds", str(args.interval_ms)),
            ]

        def answer(self, status, body, headers=()):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if data:
                self.send_header("content-type", "application/json;charset=utf-8")
            self.send_header("content-length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, category, message, headers=()):
            return self.answer(status, {"status": "error", "message": message, "category": category,
                                        "correlationId": "00000000-0000-0000-0000-000000000000"}, headers)

        def record(self, body, fault, status):
            url = urllib.parse.urlsplit(self.path)
            with lock, open(args.record, "a") as f:
                f.write(json.dumps({
                    "http": self.command,
                    "path": url.path,
                    "query": dict(urllib.parse.parse_qsl(url.query)),
                    "content_type": self.headers.get("content-type", ""),
                    "authorized": (self.headers.get("authorization") or "").startswith("Bearer pat-"),
                    "body": body,
                    "fault": fault,
                    "status": status,
                    "at": time.time(),
                }) + "\n")

        def drop(self):
            self.close_connection = True
            self.connection.close()

        def do_GET(self):
            self.handle_call()

        def do_POST(self):
            self.handle_call()

        def do_PATCH(self):
            self.handle_call()

        def handle_call(self):
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            if url.path == "/_state":
                with lock:
                    return self.answer(200, {"companies": companies, "tasks": tasks, "associations": associations,
                                             "deals": deals, "properties": {k: sorted(v) for k, v in properties.items()}})
            if url.path == "/_deals":
                with lock:
                    props = dict(body.get("properties", {}))
                    props["hs_lastmodifieddate"] = now_iso_ms()
                    deals[body["id"]] = {"properties": props, "companies": body.get("companies", [])}
                return self.answer(200, deals[body["id"]])
            parts = url.path.strip("/").split("/")
            remaining, headers = self.rate_headers()
            is_write = (self.command == "PATCH") or (self.command == "POST" and url.path == "/crm/v3/objects/tasks")
            fault = None
            if remaining < 0:
                fault = "burst"
            elif is_write:
                with lock:
                    if chaos is not None:
                        fault = chaos.choice(["429", "500", "drop"]) if chaos.random() < args.fault_rate else None
                    elif faults:
                        fault = faults.pop(0)
            status = {"burst": 429, "429": 429, "500": 500}.get(fault, 200)
            self.record(body, fault, status)
            if fault == "burst":
                return self.answer(429, {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                                         "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}, headers)
            if fault == "429":
                return self.answer(429, {"status": "error", "message": "Too many requests", "errorType": "RATE_LIMIT",
                                         "policyName": "TEN_SECONDLY_ROLLING"}, headers + [("Retry-After", "1")])
            if fault == "500":
                return self.error(500, "INTERNAL_ERROR", "internal error", headers)
            # /crm/v3/properties/{object}/groups and /crm/v3/properties/{object}
            if parts[:3] == ["crm", "v3", "properties"] and self.command == "POST":
                object_type = parts[3]
                kept = groups if parts[-1] == "groups" else properties
                with lock:
                    known = kept.setdefault(object_type, {})
                    if body["name"] in known:
                        return self.error(409, "OBJECT_ALREADY_EXISTS", f"{body['name']} already exists", headers)
                    known[body["name"]] = body
                return self.answer(201, body, headers)
            if parts[:4] == ["crm", "v3", "objects", "companies"] and parts[-1] == "search":
                value = body["filterGroups"][0]["filters"][0]["value"]
                with lock:
                    found = [as_object(i, {"domain": c.get("domain")}) for i, c in companies.items() if c.get("domain") == value]
                return self.answer(200, {"total": len(found), "results": found}, headers)
            if parts[:4] == ["crm", "v3", "objects", "tasks"] and parts[-1] == "search":
                value = body["filterGroups"][0]["filters"][0]["value"]
                with lock:
                    found = [as_object(i, {"milepost_task_id": t.get("milepost_task_id")})
                             for i, t in tasks.items() if t.get("milepost_task_id") == value]
                return self.answer(200, {"total": len(found), "results": found}, headers)
            if parts[:4] == ["crm", "v3", "objects", "deals"] and parts[-1] == "search":
                filters = body["filterGroups"][0]["filters"]
                with lock:
                    found = sorted(((i, d["properties"]) for i, d in deals.items()
                                    if all(matches(d["properties"], f) for f in filters)),
                                   key=lambda x: millis(x[1]["hs_lastmodifieddate"]))
                start = int(body.get("after") or 0)
                page = found[start:start + body.get("limit", 10)]
                answer = {"total": len(found), "results": [as_object(i, p) for i, p in page]}
                if start + len(page) < len(found):
                    answer["paging"] = {"next": {"after": str(start + len(page))}}
                return self.answer(200, answer, headers)
            if parts[:3] == ["crm", "v4", "objects"] and parts[3] == "deals" and parts[-1] == "companies":
                with lock:
                    deal = deals.get(parts[4])
                if deal is None:
                    return self.error(404, "OBJECT_NOT_FOUND", "resource not found", headers)
                return self.answer(200, {"results": [
                    {"toObjectId": int(c), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 5, "label": None}]}
                    for c in deal["companies"]]}, headers)
            if parts[:3] == ["crm", "v3", "owners"]:
                owner = owners.get(dict(urllib.parse.parse_qsl(url.query)).get("email", ""))
                results = [{"id": owner, "email": dict(urllib.parse.parse_qsl(url.query))["email"], "type": "PERSON",
                            "archived": False, "createdAt": now_iso(), "updatedAt": now_iso()}] if owner else []
                return self.answer(200, {"results": results}, headers)
            if url.path == "/crm/v3/objects/tasks" and self.command == "POST":
                with lock:
                    counter[0] += 1
                    task_id = str(counter[0])
                    tasks[task_id] = dict(body["properties"])
                    associations[task_id] = [a["to"]["id"] for a in body.get("associations", [])]
                if fault == "drop":
                    return self.drop()
                return self.answer(201, as_object(task_id, tasks[task_id]), headers)
            if self.command == "PATCH" and parts[:3] == ["crm", "v3", "objects"] and len(parts) == 5:
                store = companies if parts[3] == "companies" else tasks if parts[3] == "tasks" else None
                with lock:
                    record = None if store is None else store.get(parts[4])
                    if record is not None:
                        record.update(body["properties"])
                if record is None:
                    return self.error(404, "OBJECT_NOT_FOUND", "resource not found", headers)
                if fault == "drop":
                    return self.drop()
                return self.answer(200, as_object(parts[4], record), headers)
            return self.error(404, "OBJECT_NOT_FOUND", f"no route {self.command} {url.path}", headers)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
