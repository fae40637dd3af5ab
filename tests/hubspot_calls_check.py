"""Holds every HubSpot call Milepost made (as `hubspot_standin.py` recorded
them) to HubSpot's official Python client, `hubspot-api-client`: each body
is read into the client's model for its endpoint, strictly (a key the model
does not have, a missing required field, a value outside an enum, a
property value that is not text: refused), and the client is then asked to
send that model; the request it makes must be the one Milepost made (method,
path, query, JSON body). Also: every call carries a private app's token,
and every `milepost_*` property written was created first.

    hubspot_calls_check.py RECORD        check a recording
    hubspot_calls_check.py --self-test   show that wrong calls are caught
"""

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import hubspot
from hubspot.crm import companies as hs_companies
from hubspot.crm import deals as hs_deals
from hubspot.crm import owners as hs_owners
from hubspot.crm import properties as hs_properties
from hubspot.crm.objects import tasks as hs_tasks

PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def to_model(data, type_name, package, where):
    """`data` as the client's `type_name` of `package`, refusing what the model lacks."""
    if type_name.startswith("list["):
        if not isinstance(data, list):
            raise ValueError(f"{where}: must be a list")
        return [to_model(x, type_name[5:-1], package, f"{where}[{i}]") for i, x in enumerate(data)]
    if type_name.startswith("dict(") or type_name.startswith("dict["):
        value_type = type_name[type_name.index(",") + 1:-1].strip()
        if not isinstance(data, dict):
            raise ValueError(f"{where}: must be an object")
        return {k: to_model(v, value_type, package, f"{where}.{k}") for k, v in data.items()}
    if type_name in PRIMITIVES:
        if not isinstance(data, PRIMITIVES[type_name]) or (type_name == "int" and isinstance(data, bool)):
            raise ValueError(f"{where}: must be {type_name}, not {type(data).__name__} {data!r}")
        return data
    model = getattr(package.models, type_name)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be an object ({type_name})")
    by_json = {json_key: attr for attr, json_key in model.attribute_map.items()}
    unknown = sorted(set(data) - set(by_json))
    if unknown:
        raise ValueError(f"{where}: {type_name} has no {', '.join(unknown)}")
    kwargs = {by_json[k]: to_model(v, model.openapi_types[by_json[k]], package, f"{where}.{k}") for k, v in data.items()}
    # The client's models check required fields and enums only when asked.
    validating = package.Configuration()
    validating.client_side_validation = True
    try:
        return model(local_vars_configuration=validating, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {type_name}: {e}") from None


class Capture:
    """A loopback server the official client sends to; it keeps the last request."""

    def __init__(self):
        capture = self
        self.last = None

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def respond(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                capture.last = (self.command, self.path, json.loads(raw) if raw else None)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PATCH = respond

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.client = hubspot.Client.create(access_token="pat-check", host=f"http://127.0.0.1:{self.server.server_address[1]}")


# Each endpoint Milepost calls: its method and path, and how the official client makes that call.
ROUTES = [
    ("POST", r"/crm/v3/properties/(?P<object>[a-z_]+)/groups", hs_properties, "PropertyGroupCreate",
     lambda c, m, g, q: c.crm.properties.groups_api.create(object_type=g["object"], property_group_create=m)),
    ("POST", r"/crm/v3/properties/(?P<object>[a-z_]+)", hs_properties, "PropertyCreate",
     lambda c, m, g, q: c.crm.properties.core_api.create(object_type=g["object"], property_create=m)),
    ("POST", r"/crm/v3/objects/companies/search", hs_companies, "PublicObjectSearchRequest",
     lambda c, m, g, q: c.crm.companies.search_api.do_search(public_object_search_request=m)),
    ("PATCH", r"/crm/v3/objects/companies/(?P<id>\d+)", hs_companies, "SimplePublicObjectInput",
     lambda c, m, g, q: c.crm.companies.basic_api.update(company_id=g["id"], simple_public_object_input=m)),
    ("GET", r"/crm/v3/owners/", hs_owners, None,
     lambda c, m, g, q: c.crm.owners.owners_api.get_page(email=q["email"], limit=int(q["limit"]))),
    ("POST", r"/crm/v3/objects/tasks", hs_tasks, "SimplePublicObjectInputForCreate",
     lambda c, m, g, q: c.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create=m)),
    ("PATCH", r"/crm/v3/objects/tasks/(?P<id>\d+)", hs_tasks, "SimplePublicObjectInput",
     lambda c, m, g, q: c.crm.objects.tasks.basic_api.update(task_id=g["id"], simple_public_object_input=m)),
    ("POST", r"/crm/v3/objects/tasks/search", hs_tasks, "PublicObjectSearchRequest",
     lambda c, m, g, q: c.crm.objects.tasks.search_api.do_search(public_object_search_request=m)),
    ("POST", r"/crm/v3/objects/deals/search", hs_deals, "PublicObjectSearchRequest",
     lambda c, m, g, q: c.crm.deals.search_api.do_search(public_object_search_request=m)),
    ("GET", r"/crm/v4/objects/deals/(?P<id>\d+)/associations/companies", None, None,
     lambda c, m, g, q: c.crm.associations.v4.basic_api.get_page(
         object_type="deals", object_id=g["id"], to_object_type="companies", limit=int(q["limit"]))),
]


def check_call(call, capture, created):
    """The problems with one recorded call (none: the client would have sent it)."""
    problems = []
    if not call.get("authorized"):
        problems.append("no private app token (Bearer pat-...)")
    route = next(((r, re.fullmatch(r[1], call["path"])) for r in ROUTES
                  if r[0] == call["http"] and re.fullmatch(r[1], call["path"])), None)
    if route is None:
        return problems + [f"{call['http']} {call['path']} is no endpoint Milepost means to call"]
    (_, _, package, model_name, send), match = route
    try:
        model = None
        if model_name is not None:
            if call.get("body") is None:
                raise ValueError("a body is required")
            model = to_model(call["body"], model_name, package, "body")
        elif call.get("body") is not None:
            raise ValueError("this endpoint takes no body")
        send(capture.client, model, match.groupdict(), call.get("query") or {})
    except (ValueError, TypeError, KeyError) as e:
        return problems + [f"{call['http']} {call['path']}: {e}"]
    method, path, body = capture.last
    url = urlsplit(path)
    if method != call["http"] or url.path != call["path"]:
        problems.append(f"the client calls {method} {url.path}, Milepost called {call['http']} {call['path']}")
    if dict(parse_qsl(url.query)) != (call.get("query") or {}):
        problems.append(f"query {call.get('query')} differs from the client's {dict(parse_qsl(url.query))}")
    if body != call.get("body"):
        problems.append(f"body differs from what the client sends: {json.dumps(body)[:300]}")
    if call["http"] == "POST" and re.fullmatch(r"/crm/v3/properties/[a-z_]+", call["path"]):
        created.add((call["path"].rsplit("/", 1)[1], call["body"]["name"]))
    written = (call.get("body") or {}).get("properties") if call["http"] in ("PATCH", "POST") else None
    if isinstance(written, dict):
        object_type = call["path"].split("/")[4]
        for name in written:
            if name.startswith("milepost_") and (object_type, name) not in created:
                problems.append(f"{name} written to {object_type} before it was created")
    return problems


def check(calls):
    capture = Capture()
    created = set()
    problems = []
    for i, call in enumerate(calls):
        problems += [f"call {i + 1}: {p}" for p in check_call(call, capture, created)]
    capture.server.shutdown()
    return problems


def self_test():
    good_task = {"http": "POST", "path": "/crm/v3/objects/tasks", "query": {}, "authorized": True, "body": {
        "properties": {"hs_task_subject": "x", "hs_timestamp": "2026-01-01T00:00:00.000Z"},
        "associations": [{"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}]}]}}
    prop = {"http": "POST", "path": "/crm/v3/properties/companies", "query": {}, "authorized": True, "body": {
        "name": "milepost_stage", "label": "Stage", "type": "enumeration", "fieldType": "select", "groupName": "milepost",
        "options": [{"label": "On track", "value": "on_track", "displayOrder": 0, "hidden": False}]}}
    patch = {"http": "PATCH", "path": "/crm/v3/objects/companies/101", "query": {}, "authorized": True,
             "body": {"properties": {"milepost_stage": "on_track"}}}
    assert check([good_task, prop, patch]) == [], check([good_task, prop, patch])
    wrong = [
        (dict(good_task, body={**good_task["body"], "metadata": {}}), "has no metadata"),
        (dict(good_task, body={"properties": {"hs_task_subject": 3}}), "must be str"),
        (dict(good_task, body={**good_task["body"], "associations": [{"to": {"id": "1"}, "types": [
            {"associationCategory": "MADE_UP", "associationTypeId": 192}]}]}), "MADE_UP"),
        (dict(prop, body={k: v for k, v in prop["body"].items() if k != "groupName"}), "group_name"),
        (dict(prop, body={**prop["body"], "type": "text"}), "type"),
        (dict(patch, http="PUT"), "no endpoint"),
        (dict(patch, authorized=False), "private app token"),
        (patch, "before it was created"),
    ]
    for call, expected in wrong:
        found = check([call])
        assert any(expected in p for p in found), (expected, found)
    print(f"hubspot_calls_check self-test: 1 good recording passed, {len(wrong)} wrong calls caught")


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    with open(sys.argv[1]) as f:
        calls = [json.loads(line) for line in f if line.strip()]
    problems = check(calls)
    for p in problems[:50]:
        print(p)
    print(f"{len(calls)} HubSpot calls checked against hubspot-api-client: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
