#!/usr/bin/env python3
"""`make local` as a user runs it: start it in a terminal, paste the documentation's
example into another shell and see the event change a milestone and the sweep
start escalations; watch the escalations run through the real state machine
to day 5, and the one whose customer catches up (the documentation's second block)
stop before its CSM task; deliver everything again and see nothing change or
get sent twice; confirm a manual milestone from the CLI and the signed API
and close a task by following its email's link (GET, then POST, then POST
again: the documentation's third block); send through the tracking API with the
real Segment and RudderStack SDKs (tests/sdk_clients.py: the documentation's
snippets, gzip, a redelivery, a wrong write key, a 503 retried); then press
Ctrl-C and find everything it started stopped.
Run by `make test`, with a playbook day compressed to three seconds."""

import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import sdk_clients

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_FILE = os.path.join(ROOT, ".milepost-local.env")
MARKER = "<!-- local-example"
RECOVERY_MARKER = "<!-- local-recovery"
TASKS_MARKER = "<!-- local-tasks"
UNSUBSCRIBE_MARKER = "<!-- local-unsubscribe"
# A playbook day lasts 86400 / TIME_FACTOR seconds.
TIME_FACTOR = 28800


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def documentation_with(marker):
    """The text of the README or the docs/ page that holds `marker`."""
    pages = sorted(p for p in os.listdir(os.path.join(ROOT, "docs")) if p.endswith(".md"))
    for path in ["README.md"] + pages:
        full = os.path.join(ROOT, path if path == "README.md" else os.path.join("docs", path))
        text = open(full, encoding="utf-8").read()
        if marker in text:
            return text
    raise SystemExit(f"FAIL: no page of the documentation holds {marker!r}")


def function_processes(name):
    """Pids of the running processes of the function `name` (target/debug/<name>,
    or under the triple make test builds for)."""
    exe = os.path.join(ROOT, "target", os.environ.get("CARGO_BUILD_TARGET", ""), "debug", name)
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/exe") == exe:
                pids.add(int(pid))
        except OSError:
            pass
    return pids


def readme_block(marker):
    """The bash block after `marker` in the documentation (docs/local.md)."""
    text = documentation_with(marker)
    after = text[text.index(marker):]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1)


class Terminal:
    """`make local` in a pseudo-terminal, so Ctrl-C is a real one."""

    def __init__(self, port):
        self.output = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(ROOT)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.environ["MILEPOST_LOCAL_PORT"] = str(port)
            os.environ["MILEPOST_TIME_FACTOR"] = str(TIME_FACTOR)
            # The integrations function's schedule (retries, HubSpot's deals)
            # every 10 s, not a minute: the checks wait for it.
            os.environ["MILEPOST_LOCAL_RETRIES_SECONDS"] = "10"
            os.execvp("make", ["make", "--no-print-directory", "local"])
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def text(self):
        return self.output.decode(errors="replace")

    def exited(self):
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return pid != 0

    def wait_for(self, needle, seconds):
        deadline = time.time() + seconds
        while needle not in self.text():
            if self.exited() or time.time() > deadline:
                fail(f"`make local` never printed {needle!r}", self)
            time.sleep(0.2)


def fail(message, terminal=None):
    print(f"FAIL: {message}", file=sys.stderr)
    if terminal is not None:
        print("--- make local said:\n" + terminal.text()[-4000:], file=sys.stderr)
        try:
            os.kill(terminal.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    sys.exit(1)


def check(condition, message, terminal):
    if not condition:
        fail(message, terminal)


def run_block(terminal, marker=MARKER):
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block(marker)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    check(done.returncode == 0, f"the README example failed:\n{done.stdout}\n{done.stderr}", terminal)
    return done.stdout


def milepost(*args):
    done = milepost_result(*args)
    done.check_returncode()
    return done.stdout


def milepost_result(*args):
    """The CLI's CompletedProcess, failed or not."""
    env = dict(os.environ, **dict(re.findall(r"^export (\w+)=(.*)$", open(ENV_FILE).read(), re.M)))
    return subprocess.run([os.path.join(ROOT, "target/debug/milepost"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def execution_lines(terminal, milestone, account="acme"):
    # The terminal ends lines with \r\n.
    return [l.rstrip("\r") for l in re.findall(rf"\[escalations\] {account}-{milestone}-\w+: (.*)", terminal.text())]


def step_done(terminal, milestone, step, account="acme"):
    # Entering a state is not its step done: a step's email is sent by the
    # time its "playbook step done" line is printed.
    return re.search(rf'"playbook step done","execution":"{account}-{milestone}-\w+","step":"{step}"', terminal.text())


def step_outcome(terminal, milestone, step, account="acme"):
    found = re.search(
        rf'"playbook step done","execution":"{account}-{milestone}-\w+","step":"{step}","outcome":"(\w+)"', terminal.text())
    return found.group(1) if found else None


def after_playbook(subject):
    """An email after a lapse (a raised task, a reminder): they keep coming while the run goes on."""
    return any(words in subject for words in ("] No action in ", "] Raised to you: ", " after the playbook, "))


def playbook_emails():
    return [e for e in json.loads(milepost("outbox", "--json")) if not after_playbook(e["subject"])]


def account_view(account):
    """`accounts show`, less what the escalations add after their lapse while the run goes on."""
    after_lapse = ("task over its SLA", "task raised to the CS leader", "reminder after the playbook", ": not needed, ")
    return "\n".join(l for l in milepost("accounts", "show", account).splitlines()
                     if not any(words in l for words in after_lapse))


def wait_for_ends(terminal, milestones, seconds):
    """Until each escalation has ended, or lapsed: after the lapse it runs on
    for weeks of playbook time (reminders), which the run does not wait for."""
    deadline = time.time() + seconds
    ended = lambda m: any(l.startswith(("ended in", "stopped on the emulator")) or l == "AfterLapse"
                          for l in execution_lines(terminal, m))
    while not all(ended(m) for m in milestones):
        if terminal.exited() or time.time() > deadline:
            fail(f"escalations of {milestones} did not all end within {seconds} s", terminal)
        time.sleep(0.5)


def console_walk(env, terminal):
    """The console as make local serves it, in Chromium: signed in through
    the local OpenID provider (oidc-provider's own login page) as Maya, her
    open tasks are the store's; one closed from its form is closed in the
    store; her account's page and the portfolio open. Returns the tasks."""
    from playwright.sync_api import sync_playwright

    base = env.get("MILEPOST_CONSOLE_URL", "")
    check(re.fullmatch(r"http://127\.0\.0\.1:\d+", base), f"no console URL in {ENV_FILE}: {env}", terminal)
    open_tasks = lambda: [t for t in json.loads(milepost("tasks", "list", "--owner", "maya@vendor.example", "--json"))
                          if t["status"] == "open"]
    before = open_tasks()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.path.join(ROOT, ".venv", "bin", "chromium-headless"))
        page = browser.new_context().new_page()
        page.goto(base + "/tasks?whose=mine")
        check("/interaction/" in page.url, f"the console did not send Maya to the identity provider: {page.url}", terminal)
        page.fill("input[name=login]", "maya@vendor.example")
        page.fill("input[name=password]", "any password")
        page.locator("[type=submit]").first.click()
        page.wait_for_load_state()
        if "/interaction/" in page.url:  # the provider asks her to let the console see her address
            page.locator("[type=submit]").first.click()
            page.wait_for_load_state()
        check(page.url == base + "/tasks?whose=mine", f"Maya did not come back to her tasks: {page.url}", terminal)
        cards = page.locator("ol.cards > li")
        check(cards.count() == len(before), f"the console lists {cards.count()} open tasks, the store {len(before)}", terminal)
        # The task's own page holds its form; done returns to the list.
        cards.nth(0).locator("a.act-link").click()
        page.wait_for_load_state()
        card = page.locator("details.act")
        card.locator("button", has_text="Mark done").click()
        page.wait_for_load_state()
        check("The task is done." in page.locator(".notice").inner_text(), "closing a task was not said", terminal)
        check(len(open_tasks()) == len(before) - 1, "the task closed in the console is still open in the store", terminal)
        page.goto(base + "/accounts/acme")
        check(page.locator("h1").inner_text() == "Acme Inc", "Acme's page did not open", terminal)
        page.goto(base + "/")
        check("accounts behind on" in page.locator("p.lede").inner_text(), "the portfolio did not open", terminal)
        browser.close()
    return len(before)


class WebhookReceiver:
    """A consumer of Milepost's outbound webhooks (tests/webhook_receiver.py:
    the Standard Webhooks library checks each request), registered for the
    task events as docs/integrations.md shows."""

    def __init__(self, terminal):
        os.makedirs(os.path.join(ROOT, "target/local-run"), exist_ok=True)
        self.record = os.path.join(ROOT, "target/local-run/webhooks.jsonl")
        self.secrets = os.path.join(ROOT, "target/local-run/webhook-secret")
        for path in (self.record, self.secrets):
            open(path, "w").close()
        self.process = subprocess.Popen(
            [os.path.join(ROOT, ".venv/bin/python"), os.path.join(ROOT, "tests/webhook_receiver.py"),
             "--record", self.record, "--secrets", self.secrets],
            stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())
        added = milepost_result("webhooks", "add", f"http://127.0.0.1:{self.port}/hooks",
                                "--events", "TaskOpened,TaskClosed", "--json")
        check(added.returncode == 0, f"webhooks add failed:\n{added.stdout}\n{added.stderr}", terminal)
        with open(self.secrets, "w") as f:
            f.write(json.loads(added.stdout)["secret"] + "\n")

    def received(self):
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.process.kill()
        self.process.wait()


def start_webhook_receiver(terminal):
    return WebhookReceiver(terminal)


def check_webhooks(hooks, terminal):
    """Every task opened and every task closed reached the receiver, signed
    as its library accepts, each event once (no fault here to repeat one)."""
    tasks = json.loads(milepost("tasks", "list", "--json"))
    closed = [t for t in tasks if t["status"] in ("done", "dismissed")]
    deadline = time.time() + 120
    while True:
        received = hooks.received()
        kinds = [r["body"]["type"] for r in received]
        if kinds.count("TaskOpened") >= len(tasks) and kinds.count("TaskClosed") >= len(closed):
            break
        if terminal.exited() or time.time() > deadline:
            fail(f"the receiver got {kinds.count('TaskOpened')} TaskOpened and {kinds.count('TaskClosed')} TaskClosed "
                 f"for {len(tasks)} tasks, {len(closed)} closed; see target/milepost-local/integrations.log", terminal)
        time.sleep(1)
    time.sleep(2)
    received = hooks.received()
    hooks.stop()
    check(all(r["verified"] for r in received), f"the Standard Webhooks library refused a request: {received}", terminal)
    ids = [r["id"] for r in received]
    check(len(ids) == len(set(ids)), f"an event was delivered twice: {ids}", terminal)
    opened = {r["body"]["data"]["task_id"] for r in received if r["body"]["type"] == "TaskOpened"}
    check(opened == {t["id"] for t in tasks}, f"the tasks opened and those delivered differ: {opened}", terminal)
    return f"{len(received)} task events reached a webhook receiver, each once, signed"


def slack_calls():
    path = os.path.join(ROOT, "target/milepost-local/slack-calls.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def slack_messages_of(task_id, calls):
    """The chat.postMessage calls Slack took for `task_id` (by the block naming it)."""
    block = f"milepost_task:{task_id}"
    return [c for c in calls if c["method"] == "chat.postMessage" and not c["fault"]
            and any(b.get("block_id") == block for b in c["params"].get("blocks") or [])]


def check_slack(env, terminal):
    """Every task reached Slack once per audience (Maya's direct message, the
    team's channel); Maya presses Done on one of them, signed as Slack signs
    (slack-sdk's SignatureVerifier): the task closes once, both its messages
    are updated in place, a second press changes nothing, a forged one gets
    401; every call the stand-in recorded passes Slack's published spec."""
    from slack_sdk.signature import SignatureVerifier

    tasks = json.loads(milepost("tasks", "list", "--json"))
    deadline = time.time() + 120
    while True:
        calls = slack_calls()
        posted = {t["id"]: sorted(c["params"]["channel"] for c in slack_messages_of(t["id"], calls)) for t in tasks}
        if all(p == ["C_CS_TEAM", "U_MAYA"] for p in posted.values()):
            break
        if terminal.exited() or time.time() > deadline:
            fail(f"not every task reached Slack once per audience: {posted}", terminal)
        time.sleep(1)
    task = next(t for t in tasks if t["status"] == "open")
    secret = os.environ.get("MILEPOST_LOCAL_SLACK_SIGNING_SECRET", "milepost-local-slack-signing-secret")

    def press(action_ts, signature=None):
        payload = {
            "type": "block_actions", "user": {"id": "U_MAYA", "username": "maya", "team_id": "T1"},
            "container": {"type": "message", "channel_id": "D_MAYA"},
            "response_url": f"{env['MILEPOST_SLACK_API_URL']}/response/{action_ts}",
            "actions": [{"type": "button", "action_id": "milepost_task_done", "block_id": "milepost_task_actions",
                         "value": task["id"], "action_ts": action_ts}],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        timestamp = str(int(time.time()))
        signature = signature or SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        request = urllib.request.Request(
            env["MILEPOST_SLACK_INTERACTIONS_URL"], data=body.encode(), method="POST",
            headers={"content-type": "application/x-www-form-urlencoded",
                     "x-slack-request-timestamp": timestamp, "x-slack-signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status
        except urllib.error.HTTPError as e:
            return e.code

    check(press("9.1", signature="v0=" + "0" * 64) == 401, "a forged Slack signature was not refused", terminal)
    status_of = lambda: next(t for t in json.loads(milepost("tasks", "list", "--json")) if t["id"] == task["id"])
    check(status_of()["status"] == "open", "a forged press changed the task", terminal)
    check(press("9.2") == 200, "Maya's Done press was not answered 200", terminal)
    after = status_of()
    check(after["status"] == "done" and after["closed_by"], f"the press did not close the task: {after}", terminal)
    check(press("9.3") == 200 and status_of() == after, "a second press changed the task", terminal)
    deadline = time.time() + 60
    block = f"milepost_task:{task['id']}"
    while True:
        calls = slack_calls()
        updated = {c["params"]["channel"] for c in calls if c["method"] == "chat.update"
                   and any(b.get("block_id") == block for b in c["params"].get("blocks") or [])
                   and "This task is done" in json.dumps(c["params"]["blocks"])}
        if updated == {"C_CS_TEAM", "D_MAYA"}:
            break
        if terminal.exited() or time.time() > deadline:
            fail(f"the task's Slack messages were not both updated to say it is done: {updated}", terminal)
        time.sleep(1)
    check(len(slack_messages_of(task["id"], calls)) == 2, "the closed task was posted again, not updated", terminal)
    told = [c["params"]["text"] for c in calls if c["method"] == "response_url"]
    check(len(told) == 2 and told[0].startswith("Done: the task is done") and told[1].startswith("Nothing was changed"),
          f"Maya was not told what her presses did: {told}", terminal)
    judged = subprocess.run([os.path.join(ROOT, ".venv/bin/python"), os.path.join(ROOT, "tests/slack_calls_check.py"),
                             os.path.join(ROOT, "target/milepost-local/slack-calls.jsonl")],
                            capture_output=True, text=True)
    check(judged.returncode == 0, f"Slack's spec refuses what was sent:\n{judged.stdout}", terminal)
    return (f"{len(tasks)} tasks posted to Slack once each to Maya and the team, one closed from its Done button "
            f"(a forged press 401, a second press nothing) and both its messages updated in place; "
            f"{judged.stdout.strip()} against Slack's spec")


def check_hubspot(env, terminal):
    """Acme's HubSpot company (found by its website trait) carries its
    standing, and every task is mirrored once on it, completed once closed;
    every call the stand-in recorded is one HubSpot's official client
    (hubspot-api-client) would make."""
    def state():
        with urllib.request.urlopen(env["MILEPOST_HUBSPOT_API_URL"] + "/_state", timeout=10) as r:
            return json.load(r)

    every = json.loads(milepost("tasks", "list", "--json"))
    # Acme Europe names no website: its company is not found, and its tasks wait.
    tasks = [t for t in every if t["account_id"] == "acme"]
    unmatched = milepost("crm", "unmatched")
    check("acme-eu  company" in unmatched and "neither a hubspot_company_id nor a domain" in unmatched,
          f"Acme Europe is not listed as unmatched:\n{unmatched}", terminal)
    deadline = time.time() + 120
    while True:
        now = state()
        mirrored = {t["id"]: [i for i, h in now["tasks"].items() if h.get("milepost_task_id") == t["id"]] for t in tasks}
        company = now["companies"]["101"]
        completed = {t["id"]: all(now["tasks"][i]["hs_task_status"] == "COMPLETED" for i in mirrored[t["id"]])
                     for t in tasks if t["status"] in ("done", "dismissed")}
        if (company.get("milepost_stage") and all(len(m) == 1 for m in mirrored.values())
                and all(completed.values())):
            break
        if terminal.exited() or time.time() > deadline:
            fail(f"HubSpot was not brought up to date: company {company}, tasks {mirrored}, closed {completed}", terminal)
        time.sleep(1)
    check(all(now["associations"][m[0]] == ["101"] for m in mirrored.values()),
          f"a task is not on Acme's company: {now['associations']}", terminal)
    check(company["milepost_console_link"].endswith("/accounts/acme"), f"no console link: {company}", terminal)
    # A deal closed as won on Acme's company comes back as its renewal.
    deal = json.dumps({"id": "7001", "companies": ["101"], "properties": {
        "dealstage": "closedwon", "closedate": "2027-01-15T00:00:00.000Z", "amount": "130000"}}).encode()
    urllib.request.urlopen(urllib.request.Request(env["MILEPOST_HUBSPOT_API_URL"] + "/_deals", data=deal, method="POST",
                                                  headers={"content-type": "application/json"}), timeout=10)
    deadline = time.time() + 150
    while "renewal decided 2027-01-15: renewed" not in milepost("accounts", "show", "acme"):
        if terminal.exited() or time.time() > deadline:
            fail(f"the won deal did not reach Acme's renewals:\n{milepost('accounts', 'show', 'acme')}", terminal)
        time.sleep(2)
    judged = subprocess.run([os.path.join(ROOT, ".venv/bin/python"), os.path.join(ROOT, "tests/hubspot_calls_check.py"),
                             os.path.join(ROOT, "target/milepost-local/hubspot-calls.jsonl")],
                            capture_output=True, text=True)
    check(judged.returncode == 0, f"hubspot-api-client refuses what was sent:\n{judged.stdout}", terminal)
    return (f"Acme's HubSpot company at stage {company['milepost_stage']} with {company['milepost_missed_count']} "
            f"missed milestones, {len(tasks)} tasks mirrored once each ({len(completed)} completed), a won deal "
            f"recorded as Acme's renewal; "
            f"{judged.stdout.strip()}")


def main():
    port = free_port()
    terminal = Terminal(port)
    # The first run builds the CLI and the ingest function.
    terminal.wait_for("milepost local: running", 900)
    env = dict(re.findall(r"^export (\w+)=(.*)$", open(ENV_FILE).read(), re.M))
    moto_port = int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    check(env["MILEPOST_INGEST_URL"] == f"http://127.0.0.1:{port}/lambda-url/ingest/v1/events",
          f"unexpected ingest URL in {ENV_FILE}: {env}", terminal)
    check(env.get("MILEPOST_ACTIONS_URL") == f"http://127.0.0.1:{port}/lambda-url/actions/v1/actions",
          f"unexpected actions URL in {ENV_FILE}: {env}", terminal)

    hooks = start_webhook_receiver(terminal)

    first = run_block(terminal)
    check(first.count('{"accepted":1,"duplicates":0,"rejected":[],"rejected_count":0}') == 2,
          f"the account and the event were not both accepted:\n{first}", terminal)
    check(re.search(r"^\s*first_value\s+achieved\b", first, re.M),
          f"the event did not reach first_value:\n{first}", terminal)
    # Read just after the sweep, a miss whose escalation has already begun shows as escalating_1.
    check(re.search(r"^\s*first_workflow\s+(?:missed|escalating_\d)\b", first, re.M),
          f"the sweep did not mark the overdue first_workflow missed:\n{first}", terminal)
    swept = re.search(r"marked (\d+) missed, started (\d+) escalations", first)
    check(swept and swept.group(1) == swept.group(2) != "0",
          f"the sweep did not start one escalation per missed milestone:\n{first}", terminal)

    missed = re.findall(r"^\s*(\w+)\s+(?:missed|escalating_\d)\b", first, re.M)
    check(len(missed) == int(swept.group(1)), f"the sweep marked {swept.group(1)} missed, the account shows {missed}:\n{first}",
          terminal)

    # The escalations run: once first_workflow's day-1 touches are done, Acme
    # catches up on it (the documentation's second block).
    deadline = time.time() + 300  # the first task invocations build the playbook functions
    # A catch-up before the follow-up is sent would rightly cancel that email.
    while not step_done(terminal, "first_workflow", "follow_up_email"):
        if terminal.exited() or time.time() > deadline:
            fail("first_workflow's escalation never finished its Day1FollowUp step", terminal)
        time.sleep(0.2)
    recovery = run_block(terminal, RECOVERY_MARKER)
    check('{"accepted":1,"duplicates":0,"rejected":[],"rejected_count":0}' in recovery, f"the catch-up event was not accepted:\n{recovery}", terminal)
    wait_for_ends(terminal, missed, 120)

    recovered = execution_lines(terminal, "first_workflow")
    # Stopped before its day-3 step; or, with the machine slow enough that the
    # catch-up landed as that step began (a playbook day is 3 s here), the step
    # found it recovered and sent nothing (no task email: checked below).
    no_task = "Day3CsmTask" not in recovered or step_outcome(terminal, "first_workflow", "csm_task") == "Recovered"
    check(no_task and ("ended in Recovered" in recovered or any(l.startswith("stopped on the emulator") for l in recovered)),
          f"first_workflow's escalation did not stop before day 3: {recovered}", terminal)
    for m in missed:
        if m == "first_workflow":
            continue
        lines = execution_lines(terminal, m)
        stages = [l for l in lines if l in ("Day1Email", "Day1InApp", "Day1FollowUp", "Day3CsmTask", "Day5Leadership")]
        check(stages == ["Day1Email", "Day1InApp", "Day1FollowUp", "Day3CsmTask", "Day5Leadership"]
              and lines.index("Lapse") < lines.index("AfterLapse"),
              f"{m}'s escalation did not run the three stages in order, then lapse: {lines}", terminal)

    emails = playbook_emails()
    subjects = [e["subject"] for e in emails]
    others = [m for m in missed if m != "first_workflow"]
    check(sum("CSM task:" in s for s in subjects) == len(others) and not any("CSM task: First core workflow" in s for s in subjects),
          f"expected one CSM task email per unrecovered milestone: {subjects}", terminal)
    check(sum("Escalation:" in s for s in subjects) == len(others), f"expected one leadership email each: {subjects}", terminal)
    # The misses are close together: one outreach email names them all.
    outreach = [s for s in subjects if "Next step" in s and not s.startswith("Re: ")]
    more = {1: "", 2: " and one more"}.get(len(missed), f" and {len(missed) - 1} more")
    check(len(outreach) == 1 and outreach[0].endswith(more), f"expected one outreach email naming all {len(missed)} missed milestones: {subjects}", terminal)
    # Day 1 is one conversation: one follow-up, a reply in the outreach's thread.
    replies = [s for s in subjects if s.startswith("Re: ")]
    check(replies == ["Re: " + outreach[0]], f"expected one follow-up answering the outreach: {subjects}", terminal)
    check(any("maya@vendor.example" in ", ".join(e["to"]) for e in emails if "CSM task:" in e["subject"]),
          "the CSM task email did not go to the CSM", terminal)
    view_before = account_view("acme")

    # `make local > local.log` writes into the tree as it runs: the functions
    # must not restart for it (cargo lambda watch restarts them on a change
    # it sees), or a delivery waits for a rebuild.
    serving = function_processes("ingest")
    check(serving, "no ingest function process found after the README example", terminal)
    probe = os.path.join(ROOT, "local-run-probe.log")
    try:
        for i in range(5):
            with open(probe, "a") as f:
                f.write(f"line {i}\n")
            time.sleep(0.4)
        time.sleep(2)

        # The same deliveries and sweep again: each call is a duplicate, the sweep
        # finds nothing new, no email goes out twice and the account's view is unchanged.
        again = run_block(terminal)
        again_recovery = run_block(terminal, RECOVERY_MARKER)
        check(again.count('{"accepted":0,"duplicates":1,"rejected":[],"rejected_count":0}') == 2 and '"duplicates":1' in again_recovery,
              f"redelivered calls were not recognised as duplicates:\n{again}\n{again_recovery}", terminal)
        check("marked 0 missed, started 0 escalations" in again, f"the second sweep acted again:\n{again}", terminal)
        time.sleep(86400 / TIME_FACTOR * 2)
        check(len(playbook_emails()) == len(emails), "emails were sent again", terminal)
        view_after = account_view("acme")
        check(view_after == view_before, f"a redelivery changed the account:\n{view_before}\n---\n{view_after}", terminal)
    finally:
        os.remove(probe)
    check(function_processes("ingest") == serving,
          f"the ingest function restarted when a log file in the tree changed: {serving} then {function_processes('ingest')}",
          terminal)

    # Maya works her tasks (the documentation's third block): a manual milestone
    # confirmed from the CLI, again through the signed API (already reached),
    # then her first CSM task email's Done link: GET shows, POST acts, once.
    tasks_before = json.loads(milepost("tasks", "list", "--owner", "maya@vendor.example", "--json"))
    check(len(tasks_before) == len(others) and all(t["status"] == "open" for t in tasks_before),
          f"expected {len(others)} open tasks of Maya's: {tasks_before}", terminal)
    worked = run_block(terminal, TASKS_MARKER)
    check("renewal_check_in confirmed: achieved" in worked, f"the CLI did not confirm renewal_check_in:\n{worked}", terminal)
    check('"status":"already_reached"' in worked and '"milestone_id":"renewal_check_in"' in worked,
          f"the signed API did not answer already_reached:\n{worked}", terminal)
    pages = re.findall(r"<h1>([^<]*)</h1>", worked)
    check(pages == ["Mark the task done?", "The task is done", "This was already done"],
          f"the link's pages were not confirm, done, already done: {pages}\n{worked}", terminal)
    tasks_after = json.loads(milepost("tasks", "list", "--owner", "maya@vendor.example", "--json"))
    done = [t for t in tasks_after if t["status"] == "done"]
    check(len(done) == 1 and done[0]["outcome"] == "plan_agreed" and done[0]["reason"] == "completed"
          and done[0]["notes"] and done[0]["notes"][0].endswith("called the champion, SSO blocks the rollout"),
          f"exactly one task should be done with its outcome and note: {tasks_after}", terminal)
    check(sum(t["status"] == "open" for t in tasks_after) == len(others) - 1, f"other tasks changed: {tasks_after}", terminal)
    check(re.search(r"^\s*renewal_check_in\s+achieved\b", milepost("accounts", "show", "acme"), re.M),
          "renewal_check_in is not achieved in accounts show", terminal)
    # The same block again: the confirmation and the link change nothing a second time.
    again_worked = run_block(terminal, TASKS_MARKER)
    check("already reached" in again_worked and re.findall(r"<h1>([^<]*)</h1>", again_worked)[1:] == ["This was already done", "This was already done"],
          f"working the tasks again changed something:\n{again_worked}", terminal)
    check(json.loads(milepost("tasks", "list", "--owner", "maya@vendor.example", "--json")) == tasks_after,
          "a second run changed Maya's tasks", terminal)

    # Pat unsubscribes with one click (the documentation's fourth block); Acme
    # Europe, Pat its admin too, falls behind: its escalations send Pat nothing.
    to_pat = lambda: [e for e in json.loads(milepost("outbox", "--json")) if "pat@acme.example" in ", ".join(e["to"])]
    pat_before = to_pat()
    left = run_block(terminal, UNSUBSCRIBE_MARKER)
    check(re.findall(r"<h1>([^<]*)</h1>", left) == ["You are unsubscribed"], f"the one-click POST did not unsubscribe Pat:\n{left}", terminal)
    check(re.search(r"^pat@acme\.example\s+\S+ \S+ \S+\s+one-click unsubscribe\s+acme$", left, re.M),
          f"contacts suppressed does not list Pat:\n{left}", terminal)
    swept_eu = re.search(r"marked (\d+) missed, started (\d+) escalations", left)
    check(swept_eu and swept_eu.group(1) == swept_eu.group(2) != "0", f"the sweep started no escalation for Acme Europe:\n{left}", terminal)
    deadline = time.time() + 120
    eu_started = lambda: set(re.findall(r"\[escalations\] acme-eu-(\w+?)-[0-9a-f]{12}: ", terminal.text()))
    while not eu_started() or not all(step_done(terminal, m, "csm_task", "acme-eu") for m in eu_started()):
        if terminal.exited() or time.time() > deadline:
            fail("Acme Europe's escalations did not reach their CSM task", terminal)
        time.sleep(0.5)
    check(to_pat() == pat_before, f"Pat got email after unsubscribing: {[e['subject'] for e in to_pat()[len(pat_before):]]}", terminal)
    eu_tasks = [e for e in playbook_emails() if "CSM task: " in e["subject"] and "[Acme Europe]" in e["subject"]]
    check(len(eu_tasks) == len(eu_started()), f"Maya did not get Acme Europe's tasks: {eu_tasks}", terminal)
    history = milepost("accounts", "show", "acme-eu")
    check("outreach email not sent: the recipient unsubscribed on" in history, f"the account's history does not say why:\n{history}", terminal)
    left_again = run_block(terminal, UNSUBSCRIBE_MARKER)
    check(re.findall(r"<h1>([^<]*)</h1>", left_again) == ["You are already unsubscribed"] and '"duplicates":1' in left_again,
          f"unsubscribing again changed something:\n{left_again}", terminal)

    # The tracking API with the real Segment and RudderStack SDKs (the documentation's snippets and more).
    tracking = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", env.get("MILEPOST_TRACKING_URL", ""))
    check(tracking and env.get("MILEPOST_WRITE_KEY"), f"no tracking URL or write key in {ENV_FILE}: {env}", terminal)
    sdks = sdk_clients.run(env, milepost_result, lambda ok, message: check(ok, message, terminal))

    request = urllib.request.Request(
        env["MILEPOST_INGEST_URL"], method="POST", headers={"content-type": "application/json"},
        data=b'{"id":"evt-x","account_id":"acme","event":"workflow.completed","timestamp":"2026-01-01T00:00:00Z"}',
    )
    try:
        urllib.request.urlopen(request, timeout=60)
        fail("an unsigned request was accepted", terminal)
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"an unsigned request got {e.code}, not 401", terminal)

    # After the playbook, on the real state machine: each task Maya left
    # untouched is raised to her, once (the one she closed only if its raise
    # came first).
    raised = lambda: [e["subject"] for e in json.loads(milepost("outbox", "--json"))
                      if e["subject"].startswith("[Acme Inc] No action in ") and "maya@vendor.example" in ", ".join(e["to"])]
    untouched = [t["milestone_name"] for t in tasks_after if t["status"] == "open"]
    check(untouched, f"no untouched task left to raise: {tasks_after}", terminal)
    deadline = time.time() + 180
    while not all(any(f"CSM task: {name} missed" in s for s in raised()) for name in untouched):
        if terminal.exited() or time.time() > deadline:
            history = [l for l in milepost("accounts", "show", "acme").splitlines() if "SLA" in l or "not needed" in l]
            fail(f"the untouched tasks {untouched} were not all raised to Maya: {raised()}; history: {history}", terminal)
        time.sleep(1)
    time.sleep(86400 / TIME_FACTOR * 2)
    check(len(set(raised())) == len(raised()), f"a task was raised twice: {raised()}", terminal)
    console_tasks = console_walk(env, terminal)
    delivered = check_webhooks(hooks, terminal)
    in_slack = check_slack(env, terminal)
    in_hubspot = check_hubspot(env, terminal)

    # Ctrl-C, and again while it stops (as an impatient user does).
    os.write(terminal.fd, b"\x03")
    time.sleep(0.3)
    os.write(terminal.fd, b"\x03")
    deadline = time.time() + 60
    while not terminal.exited():
        if time.time() > deadline:
            fail("Ctrl-C did not stop `make local` within 60 s", terminal)
        time.sleep(0.2)
    time.sleep(0.5)
    check(not os.path.exists(ENV_FILE), f"{ENV_FILE} outlived make local", terminal)
    check(not port_open(port), f"the functions still answer on port {port} after Ctrl-C", terminal)
    check(not port_open(moto_port), f"moto still answers on port {moto_port} after Ctrl-C", terminal)
    check(not port_open(int(tracking.group(1))), "the tracking API still answers after Ctrl-C", terminal)
    check(not port_open(int(env["MILEPOST_CONSOLE_URL"].rsplit(":", 1)[1])), "the console still answers after Ctrl-C", terminal)
    check(not function_processes("ingest"), "an ingest function process outlived make local", terminal)
    print(f"make local: README example applied an event and swept; {len(missed)} escalations ran over the "
          f"state machine, {len(emails)} emails, first_workflow stopped when Acme caught up; "
          "a second run changed nothing; a manual milestone confirmed (CLI, then API: already reached); "
          "a task closed by its link (GET showed, POST acted once); Pat unsubscribed with one click and Acme Europe's "
          f"escalations sent Pat nothing; SDKs: {sdks}; unsigned got 401; the console signed Maya in through "
          f"the OpenID provider, listed her {console_tasks} open tasks and closed one; {delivered}; {in_slack}; {in_hubspot}; Ctrl-C stopped everything")


if __name__ == "__main__":
    main()
