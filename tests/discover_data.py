#!/usr/bin/env python3
"""Writes a synthetic renewal history for `milepost discover` with known effects
planted in it, matching examples/discover/candidates/candidates.yaml:

  first_dashboard        renewed 85% vs churned 30% achieve it (strong), in month 1
  team_of_three          renewed 75% vs churned 30% (strong), mostly in month 2
  integration_connected  renewed 55% vs churned 50% (weak)
  five_reports_shared    renewed 60% vs churned 35% (moderate), renewed earlier
  cost_savings_5pct      enterprise: renewed 70% vs churned 20%; others 40% vs 35%
  eight_invites          (an expansion milestone) expanded 70% vs renewed without
                         expanding 25% (churned 20%); a third of the renewals are
                         `expanded`, a tenth of the others `contracted`, drawn from
                         a random stream of their own so every figure above stays

Accounts that miss a milestone still leave near-misses behind (too few events,
or too late), and every account has page.viewed noise. Rows are shuffled.

usage: discover_data.py OUT_DIR [--accounts N] [--seed S] [--jsonl] [--gzip]
Python 3 standard library only.
"""
import argparse
import csv
import datetime as dt
import gzip
import json
import random
from pathlib import Path

SEGMENTS = (("enterprise", 0.3), ("mid_market", 0.4), ("smb", 0.3))
RATES = {  # milestone: (renewed, churned)
    "first_dashboard": (0.85, 0.30),
    "team_of_three": (0.75, 0.30),
    "integration_connected": (0.55, 0.50),
    "five_reports_shared": (0.60, 0.35),
}
SAVINGS = {"enterprise": (0.70, 0.20), "other": (0.40, 0.35)}


def at(start, day, rnd):
    """A time on contract day `day` (1 = the first 24 hours)."""
    seconds = int((day - 1) * 86400 + rnd.random() * 86399) + 1
    return (dt.datetime.combine(start, dt.time(), dt.timezone.utc)
            + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def account_events(acc, rnd):
    start, renewed = acc["start"], acc["outcome"] == "renewed"
    hit = lambda rates: rnd.random() < rates[0 if renewed else 1]
    ev = []
    add = lambda name, day, user="", value="": ev.append((name, at(start, day, rnd), user, value))
    users = [f'{acc["id"]}-u{i}' for i in range(1, 7)]

    if hit(RATES["first_dashboard"]):
        add("dashboard.created", rnd.randint(1, 14), rnd.choice(users))
    elif rnd.random() < 0.6:
        add("dashboard.created", rnd.randint(20, 200), rnd.choice(users))  # too late

    if hit(RATES["team_of_three"]):
        base = rnd.randint(25, 45) if renewed else rnd.randint(30, 50)
        for u in users[:3]:
            add("user.active", base + rnd.randint(0, 9), u)
    else:
        for u in users[:2]:  # two is not three
            add("user.active", rnd.randint(1, 60), u)
        if rnd.random() < 0.5:
            add("user.active", rnd.randint(100, 300), users[2])  # the third, too late

    if hit(RATES["integration_connected"]):
        add("integration.connected", rnd.randint(5, 45))
    elif rnd.random() < 0.5:
        add("integration.connected", rnd.randint(60, 300))

    if hit(RATES["five_reports_shared"]):
        last = rnd.randint(40, 75) if renewed else rnd.randint(80, 120)
        for _ in range(4):
            add("report.shared", rnd.randint(1, last - 1), rnd.choice(users))
        add("report.shared", last, rnd.choice(users))
    else:
        for _ in range(rnd.randint(0, 4)):
            add("report.shared", rnd.randint(1, 120), rnd.choice(users))

    rates = SAVINGS["enterprise" if acc["segment"] == "enterprise" else "other"]
    if hit(rates):
        add("cost.saved", rnd.randint(100, 260), value=f"{rnd.uniform(5, 9):.2f}")
    for _ in range(rnd.randint(0, 3)):
        add("cost.saved", rnd.randint(30, 360), value=f"{rnd.uniform(0, 4.9):.2f}")

    for _ in range(rnd.randint(10, 60)):
        add("page.viewed", rnd.randint(1, 360), rnd.choice(users))
    return ev


def expansion_events(acc, grow):
    """Teammates invited: eight or more for most accounts that expand."""
    rate = {"expanded": 0.70, "churned": 0.20}.get(acc["decided"], 0.25)
    n = 8 + grow.randint(0, 4) if grow.random() < rate else grow.randint(0, 6)
    invite = lambda: ("user.invited", at(acc["start"], grow.randint(30, 300), grow),
                      f'{acc["id"]}-u{grow.randint(1, 9)}', "")
    return [invite() for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--accounts", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jsonl", action="store_true", help="events as JSON Lines")
    ap.add_argument("--gzip", action="store_true", help="gzip the events file")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    accounts = []
    for i in range(1, args.accounts + 1):
        segment = rnd.choices([s for s, _ in SEGMENTS], [w for _, w in SEGMENTS])[0]
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rnd.randint(0, 364))
        accounts.append({
            "id": f"acct-{i:05d}", "segment": segment, "start": start,
            "decision": start + dt.timedelta(days=rnd.randint(330, 365)),
            "outcome": "renewed" if rnd.random() < 0.75 else "churned",
            "arr": rnd.choice([12000, 24000, 60000, 150000]) if rnd.random() < 0.9 else "",
            "tenure": rnd.choice(["", "1", "1", "2", "3"]),
        })
    # What each renewal decided: its own stream, so the draws above are as before.
    grow = random.Random(args.seed * 1000 + 36)
    for a in accounts:
        a["decided"] = a["outcome"]
        if a["outcome"] == "renewed" and grow.random() < 1 / 3:
            a["decided"] = "expanded"
        elif a["outcome"] == "renewed" and grow.random() < 0.1:
            a["decided"] = "contracted"
    with open(args.out / "accounts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "segment", "contract_start", "decision_date", "outcome", "arr",
                    "tenure_year"])
        for a in accounts:
            w.writerow([a["id"], a["segment"], a["start"], a["decision"], a["decided"], a["arr"],
                        a["tenure"]])

    rows = [(a["id"],) + e for a in accounts for e in account_events(a, rnd)]
    rows += [(a["id"],) + e for a in accounts for e in expansion_events(a, grow)]
    rnd.shuffle(rows)
    name = "events.jsonl" if args.jsonl else "events.csv"
    path = args.out / (name + (".gz" if args.gzip else ""))
    opener = (lambda p: gzip.open(p, "wt", newline="")) if args.gzip else (
        lambda p: open(p, "w", newline=""))
    with opener(path) as f:
        if args.jsonl:
            for acc, event, ts, user, value in rows:
                rec = {"account_id": acc, "event": event, "timestamp": ts}
                if user:
                    rec["user_id"] = user
                if value:
                    rec["value"] = float(value)
                f.write(json.dumps(rec) + "\n")
        else:
            w = csv.writer(f)
            w.writerow(["account_id", "event", "timestamp", "user_id", "value"])
            w.writerows(rows)
    print(f"{len(accounts)} accounts, {len(rows)} events: {args.out / 'accounts.csv'}, {path}")


if __name__ == "__main__":
    main()
