#!/usr/bin/env python3
"""`milepost discover` as a CS-ops analyst runs it, on a history with known
effects planted (tests/discover_data.py), checked against an independent
recount from the raw files. Also: the same answer from JSON Lines + gzip and
from parallel parts, CSV output, bad rows with their line numbers, --strict,
--review, and the --chart SVG rendered and measured in headless Chromium.

usage: discover_run.py MILEPOST_BINARY
Chromium: .venv/bin/chromium-headless (tests/chromium.sh), or $CHROMIUM.
Python 3 standard library only. Exits 1 on the first failed check.
"""
import csv
import datetime as dt
import html
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target/discover-check"
CANDIDATES = ROOT / "examples/discover/candidates"
IN_USE = ROOT / "examples/discover/in-use"
CHROMIUM = os.environ.get("CHROMIUM") or str(ROOT / ".venv/bin/chromium-headless")
FIELDS = ["milestone", "segment", "tenure", "renewed_n", "renewed_achieved", "churned_n",
          "churned_achieved", "renewed_rate", "churned_rate", "ratio", "ratio_ci", "class",
          "churn_risk_if_missed", "divergence_month"]
# Event-count milestones without a window: simple enough to recount here.
SIMPLE = {"first_dashboard": ("dashboard.created", 1, 14),
          "integration_connected": ("integration.connected", 1, 45),
          "five_reports_shared": ("report.shared", 5, 120)}
# The expansion milestone (an expansion milestone is due 360 days in).
GROWTH = {"eight_invites": ("user.invited", 8, 360)}
# The cohort of each decision: renewal vs churn, or expanded vs not (churned in neither).
RENEWAL = {"renewed": "renewed", "expanded": "renewed", "contracted": "renewed", "churned": "churned"}
EXPANSION = {"expanded": "expanded", "renewed": "not_expanded", "contracted": "not_expanded"}
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        sys.exit(f"discover_run: FAILED: {what}")


def discover(milepost, *args, expect=0):
    run = subprocess.run([milepost, "discover", *map(str, args)], capture_output=True, text=True)
    check(run.returncode == expect, f"exit {run.returncode} (wanted {expect}) for {args}: {run.stderr}")
    return run.stdout, run.stderr


def ts(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def recount(accounts_csv, events_csv, milestones=SIMPLE, cohort_of=RENEWAL):
    """(milestone, segment|all, tenure|all, cohort) -> [n, achieved], by hand."""
    accounts = {r["account_id"]: r for r in csv.DictReader(open(accounts_csv))}
    hits = defaultdict(set)  # (account, milestone) -> distinct qualifying rows
    for r in csv.DictReader(open(events_csv)):
        a = accounts[r["account_id"]]
        start = dt.datetime.fromisoformat(a["contract_start"]).replace(tzinfo=dt.timezone.utc)
        decided = dt.datetime.fromisoformat(a["decision_date"]).replace(
            tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
        for m, (event, _, due) in milestones.items():
            t = ts(r["timestamp"])
            if r["event"] == event and start <= t < decided and t <= start + dt.timedelta(days=due):
                hits[(r["account_id"], m)].add((t, r["user_id"], r["value"]))
    counts = defaultdict(lambda: [0, 0])
    for id, a in accounts.items():
        tenure = "first_year" if int(a["tenure_year"] or 1) <= 1 else "multi_year"
        cohort = cohort_of.get(a["outcome"])
        if cohort is None:
            continue
        for m, (_, need, _) in milestones.items():
            achieved = len(hits[(id, m)]) >= need
            for seg in (a["segment"], "all"):
                for ten in (tenure, "all"):
                    c = counts[(m, seg, ten, cohort)]
                    c[0] += 1
                    c[1] += achieved
    return counts


def chromium_measure(svg_path, tmp):
    """Renders the SVG inline and measures every text and panel."""
    js = r"""
const svg = document.querySelector('svg'), box = svg.getBoundingClientRect();
const texts = [...svg.querySelectorAll('text')].map(t => {
  const r = t.getBoundingClientRect();
  return {text: t.textContent, x: r.left, y: r.top, r: r.right, b: r.bottom,
          px: parseFloat(getComputedStyle(t).fontSize), g: [...svg.querySelectorAll('g')].indexOf(t.closest('g'))};
});
const overlaps = [];
for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
  const a = texts[i], b = texts[j];
  if (a.x < b.r - 1 && b.x < a.r - 1 && a.y < b.b - 1 && b.y < a.b - 1) overlaps.push(a.text + ' / ' + b.text);
}
document.getElementById('out').textContent = JSON.stringify({
  width: box.width, height: box.height, panels: svg.querySelectorAll('g').length,
  lines: svg.querySelectorAll('polyline').length,
  outside: texts.filter(t => t.x < box.left || t.r > box.right || t.y < box.top || t.b > box.bottom).map(t => t.text),
  smallest: Math.min(...texts.map(t => t.px)), overlaps});
"""
    page = Path(tmp, "chart.html")
    page.write_text(f'<!DOCTYPE html><html><body style="margin:0">{svg_path.read_text()}'
                    f'<pre id="out"></pre><script>{js}</script></body></html>')
    base = [CHROMIUM, f"--user-data-dir={tmp}/profile", "--force-device-scale-factor=1",
            "--host-resolver-rules=MAP * ~NOTFOUND"]
    dom = subprocess.run(base + ["--window-size=1100,900", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="out">(.+?)</pre>', dom, re.S)
    check(found, "the chart page's measuring script ran in Chromium")
    png = Path(tmp, "chart.png")
    subprocess.run(base + ["--window-size=1050,620", f"--screenshot={png}", svg_path.as_uri()],
                   capture_output=True, timeout=120)
    return json.loads(html.unescape(found.group(1))), png


def main(milepost):
    WORK.mkdir(parents=True, exist_ok=True)
    gen = [sys.executable, str(ROOT / "tests/discover_data.py")]
    subprocess.run(gen + [WORK / "csv", "--accounts", "1200"], check=True, capture_output=True)
    subprocess.run(gen + [WORK / "jsonl", "--accounts", "1200", "--jsonl", "--gzip"], check=True,
                   capture_output=True)
    accounts, events = WORK / "csv/accounts.csv", WORK / "csv/events.csv"

    # 1. The planted effects come out, with every field the issue names.
    out, err = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                        "--format", "json")
    err_renewal = err
    rows = json.loads(out)["milestones"]
    check(all(f in r for r in rows for f in FIELDS), "every row has every field")
    by = {(r["milestone"], r["segment"], r["tenure"]): r for r in rows}
    overall = lambda m: by[(m, "all", "all")]
    for m, cls in [("first_dashboard", "strong"), ("team_of_three", "strong"),
                   ("integration_connected", "weak"), ("five_reports_shared", "moderate")]:
        check(overall(m)["class"] == cls, f"{m} is {cls}: {overall(m)['class']} ({overall(m)['ratio']})")
    check(by[("cost_savings_5pct", "enterprise", "all")]["class"] == "strong"
          and by[("cost_savings_5pct", "smb", "all")]["class"] != "strong",
          "cost savings predicts renewal in enterprise only")
    check(overall("first_dashboard")["divergence_month"] == 1, "first dashboard diverges in month 1")
    check(overall("team_of_three")["divergence_month"] == 2, "team of three diverges in month 2")
    check("1200" not in err and "914 renewed and 286 churned" in err, f"summary on stderr: {err}")

    # 2. Counts agree with a recount by hand; rates, ratio and class follow from them.
    counts = recount(accounts, events)
    for (m, seg, ten, outcome), (n, k) in counts.items():
        r = by[(m, seg, ten)]
        check((r[f"{outcome}_n"], r[f"{outcome}_achieved"]) == (n, k),
              f"{m} {seg} {ten} {outcome}: milepost {r[f'{outcome}_n']}/{r[f'{outcome}_achieved']}, recount {n}/{k}")
    for r in rows:
        rr, cr = r["renewed_achieved"] / r["renewed_n"], r["churned_achieved"] / r["churned_n"]
        check(abs(r["renewed_rate"] - rr) < 1e-12 and abs(r["churned_rate"] - cr) < 1e-12, "rates")
        check(abs(r["ratio"] - rr / cr) < 1e-9, f"ratio of {r['milestone']}")
        want = "strong" if r["ratio"] > 2 else "weak" if r["ratio"] < 1.5 else "moderate"
        check(r["class"] == want, "class from the ratio")
        lo, hi = r["ratio_ci"]
        check(lo < r["ratio"] < hi, f"the ratio lies inside its interval: {lo} {r['ratio']} {hi}")

    # 3. The same answer from JSON Lines + gzip, and from parallel parts.
    same, _ = discover(milepost, "--accounts", WORK / "jsonl/accounts.csv", "--events",
                       WORK / "jsonl/events.jsonl.gz", "--maps", CANDIDATES, "--format", "json")
    check(same == out, "events.jsonl.gz gives the same result as events.csv")
    same, _ = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                       "--format", "json", "--threads", "3")
    check(same == out, "three threads give the same result as one pass")

    # 4. CSV output: the same numbers.
    text, _ = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                       "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    check(len(table) == len(rows), "one CSV line per row")
    for t, r in zip(table, rows):
        check((t["milestone"], t["segment"], t["tenure"], int(t["renewed_achieved"]), float(t["ratio"]))
              == (r["milestone"], r["segment"], r["tenure"], r["renewed_achieved"], r["ratio"]),
              f"CSV row {t['milestone']} matches JSON")

    # 5. The table is sorted by ratio.
    text, _ = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES)
    ratios = [float(line.split()[7].rstrip("*")) for line in text.splitlines()[1:]
              if line and not line.startswith("*")]
    check(len(ratios) == len(rows) and ratios == sorted(ratios, reverse=True), "table sorted by ratio")

    # 6. Bad rows: skipped, counted, shown with their lines; the rest unchanged.
    bad = WORK / "bad"
    bad.mkdir(exist_ok=True)
    lines = events.read_text().splitlines(keepends=True)
    insert = {10: "acct-99999,report.shared,2024-05-01T10:00:00Z,u1,\n",
              20: "acct-00001,report.shared,last tuesday,u1,\n",
              30: "acct-00002,cost.saved,2024-05-01T10:00:00Z,,lots\n",
              len(lines) - 5: "acct-00003,report.shared\n"}
    for at in sorted(insert, reverse=True):
        lines.insert(at, insert[at])
    (bad / "events.csv").write_text("".join(lines))
    line_of = lambda row: lines.index(row) + 1
    (bad / "accounts.csv").write_text(accounts.read_text()
                                      + "acct-77777,smb,2024-06-01,2024-01-01,renewed,,\n"
                                      + "acct-77778,smb,2024-06-01,2025-06-01,maybe,,\n")
    for threads in ("1", "2"):
        out_bad, err = discover(milepost, "--accounts", bad / "accounts.csv", "--events", bad / "events.csv",
                                "--maps", CANDIDATES, "--format", "json", "--threads", threads)
        check(out_bad == out, "bad rows are skipped and change nothing else")
        check("6 bad input row(s) skipped, the first 5 shown" in err, f"counted: {err}")
        n = len(accounts.read_text().splitlines())
        for want in [f"accounts.csv:{n + 1}: decision_date 2024-01-01 is before contract_start 2024-06-01",
                     f"accounts.csv:{n + 2}: outcome `maybe` is not one of renewed, churned, expanded or contracted",
                     f"events.csv:{line_of(insert[10])}: unknown account `acct-99999`",
                     f"events.csv:{line_of(insert[20])}: timestamp `last tuesday` is not RFC 3339",
                     f"events.csv:{line_of(insert[30])}: value `lots` is not a number"]:
            check(want in err, f"with {threads} thread(s), stderr shows {want!r}: {err}")
    # A bad row far into the file, read by the last of several parts: still its own line number.
    lines = events.read_text().splitlines(keepends=True)
    lines.insert(len(lines) - 7, insert[len(lines) - 5])
    (bad / "late.csv").write_text("".join(lines))
    for threads in ("1", "2", "3"):
        _, err = discover(milepost, "--accounts", accounts, "--events", bad / "late.csv", "--maps", CANDIDATES,
                          "--threads", threads)
        want = f"late.csv:{len(lines) - 7}: timestamp `` is not RFC 3339"
        check(want in err, f"with {threads} thread(s), stderr shows {want!r}: {err}")
    out_strict, err = discover(milepost, "--accounts", bad / "accounts.csv", "--events", bad / "events.csv",
                               "--maps", CANDIDATES, "--strict", expect=3)
    check(out_strict == "" and "--strict" in err, "--strict fails and prints no results")

    # 7. The annual review of the map in use.
    text, _ = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                       "--review", IN_USE, "--format", "json")
    review = {(f["milestone"], f["verdict"]) for f in json.loads(text)["review"]}
    check(review == {("integration_connected", "weak"), ("team_of_three", "strong_candidate")},
          f"review flags the weak milestone in use and the strong one missing: {review}")

    # 8. The chart: one panel per milestone, everything inside, readable, rendered.
    chart = WORK / "chart.svg"
    discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES, "--chart", chart)
    with tempfile.TemporaryDirectory() as tmp:
        m, png = chromium_measure(chart, tmp)
        check(m["panels"] == 5 and m["lines"] == 10, f"5 panels with two curves each: {m}")
        check(m["width"] > 900 and m["height"] > 500, f"the chart has its size: {m}")
        check(not m["outside"], f"no text outside the chart: {m['outside']}")
        check(not m["overlaps"], f"no text overlaps other text: {m['overlaps']}")
        check(m["smallest"] >= 11, f"text at least 11 px: {m['smallest']}")
        data = png.read_bytes() if png.exists() else b""
        check(data.startswith(b"\x89PNG") and len(data) > 20000, f"a non-blank screenshot ({len(data)} bytes)")
        (WORK / "chart.png").write_bytes(data)
    # 9. Expansion cohorts: expanded vs renewed without expanding, churned left out;
    # the expansion milestone judged (and planted strong), the fields named for them.
    decided = [r["outcome"] for r in csv.DictReader(open(accounts))]
    check("eight_invites" in err_renewal and "an expansion milestone is a growth signal" in err_renewal,
          f"renewal vs churn leaves the expansion milestone out: {err_renewal}")
    out, err = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                        "--cohorts", "expansion", "--format", "json")
    found = json.loads(out)
    check(found["cohorts"] == "expansion", "the JSON names its cohorts")
    rows = found["milestones"]
    check(all("renewed_n" not in r and "churned_n" not in r and "churn_risk_if_missed" not in r for r in rows),
          "no field speaks of renewal or churn")
    want = (f"{decided.count('expanded')} expanded and "
            f"{decided.count('renewed') + decided.count('contracted')} not expanded (renewed flat or contracted) "
            f"accounts, {decided.count('churned')} churned left out")
    check(want in err, f"stderr says {want!r}: {err}")
    check("bad input row" not in err, f"the churned accounts' events are known, not bad rows: {err}")
    by = {(r["milestone"], r["segment"], r["tenure"]): r for r in rows}
    for (m, seg, ten, cohort), (n, k) in recount(accounts, events, {**SIMPLE, **GROWTH}, EXPANSION).items():
        r = by[(m, seg, ten)]
        check((r[f"{cohort}_n"], r[f"{cohort}_achieved"]) == (n, k),
              f"{m} {seg} {ten} {cohort}: milepost {r[f'{cohort}_n']}/{r[f'{cohort}_achieved']}, recount {n}/{k}")
    growth = by[("eight_invites", "all", "all")]
    check(growth["class"] == "strong" and growth["ratio"] > 2, f"eight invites predicts expansion: {growth}")
    check(by[("first_dashboard", "all", "all")]["class"] == "weak",
          f"first dashboard (planted on renewal only) does not: {by[('first_dashboard', 'all', 'all')]}")
    check(growth["no_expansion_risk_if_missed"] > 1, f"missing it makes expanding less likely: {growth}")
    same, _ = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                       "--cohorts", "expansion", "--format", "json", "--threads", "3")
    check(same == out, "three threads give the same expansion result as one pass")
    text, _ = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                       "--cohorts", "expansion", "--format", "csv")
    header = text.splitlines()[0].split(",")
    check(header[4:8] == ["expanded_n", "expanded_achieved", "not_expanded_n", "not_expanded_achieved"]
          and "no_expansion_risk_if_missed" in header, f"CSV columns named for the cohorts: {header}")
    flat = WORK / "no-expansion.csv"
    flat.write_text(accounts.read_text().replace(",expanded,", ",renewed,"))
    _, err = discover(milepost, "--accounts", flat, "--events", events, "--maps", CANDIDATES,
                      "--cohorts", "expansion")
    check("no expanded account: a ratio needs both cohorts" in err, f"an empty cohort is said: {err}")
    text, _ = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                       "--cohorts", "expansion", "--chart", WORK / "expansion.svg")
    check(text.splitlines()[0].split()[3:6] == ["expanded", "not", "expanded"], f"table header: {text.splitlines()[0]}")
    svg = (WORK / "expansion.svg").read_text()
    check("expanded vs" in svg and "churned" not in svg.replace('class="churned"', ""),
          "the chart names the expansion cohorts")
    with tempfile.TemporaryDirectory() as tmp:
        m, png = chromium_measure(WORK / "expansion.svg", tmp)
        check(m["panels"] == 6 and not m["outside"] and not m["overlaps"],
              f"the expansion chart: 6 panels, no text outside or overlapping: {m}")
    _, err = discover(milepost, "--accounts", accounts, "--events", events, "--maps", CANDIDATES,
                      "--cohorts", "expansion", "--review", IN_USE, expect=1)
    check("--review judges maps by what predicts renewal" in err, f"--review refused: {err}")
    print(f"discover_run: {checks} checks passed; chart: {chart} (screenshot {WORK / 'chart.png'})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
