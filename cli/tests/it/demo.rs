//! `milepost demo` and `milepost maps validate` as a user runs them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use milepost_cli::demo::{run, DemoOptions};

fn options(out: &Path, accounts: usize, days: u32) -> DemoOptions {
    DemoOptions {
        accounts,
        days,
        seed: 7,
        out: out.to_path_buf(),
        progress: false,
        write_emails: true,
    }
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walk(dir) {
        let rel = entry.strip_prefix(dir).unwrap().display().to_string();
        files.insert(rel, std::fs::read(&entry).unwrap());
    }
    files
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn the_same_seed_gives_byte_identical_output() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = run(&options(a.path(), 60, 70)).await.unwrap();
    let sb = run(&options(b.path(), 60, 70)).await.unwrap();
    assert_eq!(sa, sb);
    let (ta, tb) = (read_tree(a.path()), read_tree(b.path()));
    assert!(
        ta.len() > 10,
        "expected an outbox, got {:?}",
        ta.keys().collect::<Vec<_>>()
    );
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (name, bytes) in &ta {
        assert!(bytes == &tb[name], "{name} differs between runs");
    }
    let other_seed = tempfile::tempdir().unwrap();
    let sc = run(&DemoOptions {
        seed: 8,
        ..options(other_seed.path(), 60, 70)
    })
    .await
    .unwrap();
    assert_ne!(sa, sc, "another seed gives another customer base");
}

#[tokio::test]
async fn the_demo_runs_every_stage_and_some_customers_recover() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(&options(dir.path(), 80, 90)).await.unwrap();
    assert_eq!(s.accounts, 80);
    assert!(
        s.day1_touches > 0 && s.csm_tasks > 0 && s.leadership_escalations > 0,
        "{s:?}"
    );
    assert!(s.recovered > 0 && s.lapsed > 0 && s.achieved > 0, "{s:?}");
    assert!(s.events_duplicate > 0, "redelivered webhooks are part of the demo");
    assert!(
        s.events_parked_then_applied > 0,
        "some events arrive before their account"
    );
    // Every missed milestone ends up recovered, lapsed or still in its playbook.
    assert_eq!(s.missed, s.recovered + s.lapsed + s.still_escalating, "{s:?}");
    // Every escalation that reached its CSM task ran its three day-1 touches first
    // (a touch the contact policy deferred holds the playbook until it goes).
    assert!(s.day1_touches >= 3 * s.csm_tasks, "{s:?}");
    let outbox: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let eml = outbox.iter().filter(|n| n.ends_with(".eml")).count();
    assert_eq!(eml as u64, s.emails_sent);
    assert_eq!(outbox.iter().filter(|n| n.ends_with(".html")).count(), eml);
    let tasks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tasks.json")).unwrap()).unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), s.csm_tasks);
    let task = &tasks[0];
    for field in [
        "milestone_name",
        "due_at",
        "target",
        "current",
        "health",
        "arr_at_risk",
        "recommended_intervention",
        "recent_activity",
    ] {
        assert!(!task[field].is_null(), "task lacks {field}: {task}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    for field in [
        "accounts",
        "milestones_tracked",
        "achieved",
        "missed",
        "recovered",
        "lapsed",
        "day1_touches",
        "csm_tasks",
        "leadership_escalations",
        "emails_sent",
    ] {
        assert!(summary[field].is_u64(), "summary lacks {field}");
    }

    // The CSMs' side, checked against the files rather than the summary's own counts.
    let tasks = tasks.as_array().unwrap();
    let mut by_state = BTreeMap::<String, u64>::new();
    for t in tasks {
        *by_state.entry(t["status"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let summary_by_state: BTreeMap<String, u64> = serde_json::from_value(summary["tasks_by_state"].clone()).unwrap();
    assert_eq!(by_state, summary_by_state);
    for state in ["done", "dismissed"] {
        assert!(
            by_state.get(state).copied().unwrap_or(0) > 0,
            "no task {state}: {by_state:?}"
        );
    }
    let events: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("domain-events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &'static str| events.iter().filter(move |e| e["type"] == kind);
    let reached: std::collections::BTreeSet<(String, String)> = of("MilestoneAchieved")
        .chain(of("MilestoneRecovered"))
        .map(|e| (e["account_id"].to_string(), e["milestone_id"].to_string()))
        .collect();
    let open_after_recovery: Vec<&serde_json::Value> = tasks
        .iter()
        .filter(|t| matches!(t["status"].as_str(), Some("open" | "snoozed")))
        .filter(|t| reached.contains(&(t["account_id"].to_string(), t["milestone_id"].to_string())))
        .collect();
    assert!(open_after_recovery.is_empty(), "{open_after_recovery:?}");
    assert_eq!(summary["tasks_open_after_recovery"], 0);
    assert!(
        tasks.iter().any(|t| t["closed"]["reason"] == "customer_recovered"),
        "some tasks closed themselves when the customer caught up"
    );
    // Every task opened once and closed at most once on the bus, as in the store.
    assert_eq!(of("TaskOpened").count(), tasks.len());
    let closed = tasks.iter().filter(|t| !t["closed"].is_null()).count();
    assert_eq!(of("TaskClosed").count(), closed);
    let closings: std::collections::BTreeSet<String> = of("TaskClosed").map(|e| e["task_id"].to_string()).collect();
    assert_eq!(closings.len(), closed, "no task closed twice");
}

/// Each email is built from one account only: no other account's id or
/// customer domain appears anywhere in it.
#[tokio::test]
async fn no_email_carries_another_customers_data() {
    let dir = tempfile::tempdir().unwrap();
    run(&options(dir.path(), 120, 60)).await.unwrap();
    let id_pattern = |s: &str| -> Vec<String> {
        let mut found = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while let Some(p) = s[i..].find("customer") {
            let start = i + p + "customer".len();
            let digits: String = s[start..].chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && bytes.get(start + digits.len()) == Some(&b'.') {
                found.push(digits);
            }
            i = start;
        }
        found
    };
    let mut checked = 0;
    for path in walk(&dir.path().join("outbox")) {
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let account = name.rsplit('-').next().unwrap().trim_end_matches(".eml").to_string();
        let index: u64 = account.parse().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let decoded = mail_text(&text);
        if decoded.contains("\n[Milepost] Escalations: ") {
            // Leadership's one email of the day lists the escalations of every
            // account it leads: the vendor's own people, by design.
            continue;
        }
        if text.contains("\nX-Milepost-Kind: owner-digest") {
            // A held-back list lists the misses of the accounts whose
            // milestones that one person owns: entries are kept per owner address.
            continue;
        }
        // Leadership's email lists, after its escalation, the lapsed misses of
        // every account its leader leads: by design, as the daily list.
        let decoded = match decoded.split_once("Still behind after the playbook") {
            Some((before, _)) if text.contains("\nX-Milepost-Kind: leadership") => before.to_string(),
            _ => decoded,
        };
        for other in id_pattern(&decoded) {
            assert_eq!(other.parse::<u64>().unwrap(), index, "{name} mentions customer{other}");
        }
        for (pos, _) in decoded.match_indices("acct-") {
            let id = &decoded[pos + 5..pos + 10];
            assert_eq!(id.parse::<u64>().unwrap(), index, "{name} mentions acct-{id}");
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} emails checked");
}

/// Everything a reader sees of the message: recipients, subject, both bodies (decoded).
fn mail_text(eml: &str) -> String {
    let msg = mail_parser::MessageParser::default()
        .parse(eml.as_bytes())
        .expect("a parseable message");
    let to: Vec<String> = msg
        .to()
        .into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(str::to_string))
        .collect();
    let html = msg.body_html(0).unwrap_or_default().replace("%2D", "-");
    format!(
        "{}\n{}\n{}\n{}",
        to.join(" "),
        msg.subject().unwrap_or(""),
        msg.body_text(0).unwrap_or_default(),
        html
    )
}

fn milepost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_milepost"))
}

/// The maps built into the command are the example folder's, every one.
#[test]
fn the_built_in_maps_are_every_example_map() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/maps");
    let mut on_disk: Vec<String> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut built_in: Vec<String> = milepost_cli::example_maps::EXAMPLE_MAPS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    built_in.sort();
    assert_eq!(built_in, on_disk);
    for (name, text) in milepost_cli::example_maps::EXAMPLE_MAPS {
        assert_eq!(text, std::fs::read_to_string(examples.join(name)).unwrap(), "{name}");
    }
    assert_eq!(milepost_cli::example_maps::example_maps().len(), on_disk.len());
}

#[test]
fn maps_validate_accepts_the_examples_and_rejects_a_broken_map_precisely() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/maps");
    let files: Vec<_> = walk(&examples)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(files.len() >= 3);
    let ok = milepost().arg("maps").arg("validate").args(&files).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(examples.join("smb.yaml")).unwrap().replacen(
        "kind: event_count",
        "kind: event_total",
        1,
    );
    std::fs::write(&broken, &text).unwrap();
    let line = text.lines().position(|l| l.contains("event_total")).unwrap() + 1;
    let out = milepost().arg("maps").arg("validate").arg(&broken).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:{line}:", broken.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains("milestones[0].criterion.kind: unknown criterion kind `event_total`"),
        "{stderr}"
    );
}

#[test]
fn the_demo_command_prints_its_table_and_writes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = milepost()
        .args(["demo", "--accounts", "25", "--days", "45", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "accounts",
        "missed",
        "CSM tasks",
        "leadership escalations",
        "emails sent",
    ] {
        assert!(stdout.contains(line), "table lacks {line}: {stdout}");
    }
    for file in ["summary.json", "tasks.json", "domain-events.jsonl", "store.json"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
}

/// Every customer-facing email of the default demo, not a sample: written for
/// the customer (none of any map's internal csm or leadership texts, no
/// promise of content the email lacks, guides with links), answering to a
/// person (Reply-To), carrying the recipient's own unsubscribe link in its
/// header and footer, and within the contact policy; and leadership gets at
/// most one escalation email a day.
#[tokio::test]
async fn customer_mail_in_the_whole_demo_outbox_is_written_for_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&options(dir.path(), 300, 120)).await.unwrap();
    let maps = milepost_cli::example_maps::example_maps();
    let internal: Vec<&str> = maps
        .iter()
        .flat_map(|m| m.milestones.iter())
        .flat_map(|d| d.playbook.internal_texts())
        .collect();
    assert!(internal.len() > 40, "{}", internal.len());
    let unsubscribe_base = milepost_app::Config::default().unsubscribe_url;
    let mut link_of: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    // Per customer contact: when, in which timezone, and whether a reply in a thread.
    let mut sent_to: BTreeMap<String, Vec<(chrono::DateTime<chrono::Utc>, chrono_tz::Tz, bool)>> = BTreeMap::new();
    let timezone_of: BTreeMap<String, chrono_tz::Tz> = milepost_cli::demo::generator::plan_accounts(300, 7, &maps)
        .into_iter()
        .map(|p| (p.account.id.to_string(), p.account.timezone))
        .collect();
    let mut leader_days: BTreeMap<(String, chrono::NaiveDate), usize> = BTreeMap::new();
    let mut after_lapse = BTreeMap::<String, usize>::new();
    let mut after_lapse_of = std::collections::HashSet::new();
    let mut owner_days = std::collections::BTreeSet::new();
    let mut digest_rows = std::collections::BTreeSet::new();
    let mut leadership_named = 0;
    // Heads-ups: (kind, milestone link) → sent at; each milestone's due date.
    let mut heads_ups: BTreeMap<(String, String), Vec<chrono::DateTime<chrono::Utc>>> = BTreeMap::new();
    let mut due_of: BTreeMap<String, chrono::NaiveDate> = BTreeMap::new();
    let mut outreach_named: BTreeMap<String, usize> = BTreeMap::new();
    let mut combined_outreach = 0;
    let money = |s: &str| -> u64 { s.trim().trim_start_matches('$').replace(',', "").parse().unwrap() };
    // Each email names its account and milestones in headers; every miss it
    // names is one the bus announced (heads-ups name milestones not yet missed).
    let missed: std::collections::BTreeSet<(String, String)> =
        std::fs::read_to_string(dir.path().join("domain-events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["type"] == "MilestoneMissed")
            .map(|e| {
                (
                    e["account_id"].as_str().unwrap().to_string(),
                    e["milestone_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    // Issue 33: the customer never hears of what is ours to move.
    let vendor_side: std::collections::BTreeSet<&str> = maps
        .iter()
        .flat_map(|m| &m.milestones)
        .filter(|d| !d.moved_by().is_customer())
        .map(|d| d.id.as_str())
        .collect();
    assert!(vendor_side.contains("exec_sponsor_identified"), "{vendor_side:?}");
    let mut tied = 0;
    // When leadership first heard of each miss, and when its sponsor did.
    let mut leadership_told: BTreeMap<(String, String), chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    // Issue 36: each opportunity's email: to whom, its subject, when.
    let mut opportunities_told: BTreeMap<(String, String), (String, String, chrono::DateTime<chrono::Utc>)> =
        BTreeMap::new();
    let mut sponsor_told: Vec<((String, String), chrono::DateTime<chrono::Utc>, String)> = Vec::new();
    for path in walk(&dir.path().join("outbox")) {
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let eml = std::fs::read(&path).unwrap();
        let msg = mail_parser::MessageParser::default().parse(&eml[..]).unwrap();
        let kind = msg.header_raw("X-Milepost-Kind").unwrap().trim().to_string();
        let customer_facing = matches!(
            kind.as_str(),
            "outreach" | "follow-up" | "exec-sponsor" | "heads-up-champion"
        );
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // A long header is folded (RFC 5322): unfolded, it is one list.
        let unfolded = |header: &str| {
            msg.header_raw(header)
                .unwrap_or_else(|| panic!("{name} lacks {header}"))
                .replace(['\r', '\n'], "")
                .trim()
                .to_string()
        };
        let account_list = unfolded("X-Milepost-Account");
        let accounts: Vec<&str> = account_list.split(", ").collect();
        let named: Vec<(String, String)> = unfolded("X-Milepost-Milestone")
            .split(", ")
            .map(|m| match m.split_once('/') {
                Some((a, m)) if accounts.len() > 1 => (a.to_string(), m.to_string()),
                _ => (accounts[0].to_string(), m.to_string()),
            })
            .collect();
        assert!(name.contains(accounts[0]), "{name}: {accounts:?}");
        let date = chrono::DateTime::from_timestamp(msg.date().unwrap().to_timestamp(), 0).unwrap();
        if kind == "leadership" {
            for pair in &named {
                let first = leadership_told.entry(pair.clone()).or_insert(date);
                *first = (*first).min(date);
            }
        }
        if kind == "exec-sponsor" {
            sponsor_told.push((named[0].clone(), date, name.clone()));
        }
        if customer_facing {
            for (_, m) in &named {
                assert!(
                    !vendor_side.contains(m.as_str()),
                    "{name} asks the customer about {m}, ours to move"
                );
            }
        }
        if !kind.starts_with("heads-up") && kind != "opportunity" {
            for pair in &named {
                assert!(missed.contains(pair), "{name} names {pair:?}, which was never missed");
            }
            tied += 1;
        }
        let reply_to = msg
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string);
        if !customer_facing {
            assert_eq!(reply_to, None, "{name}");
            assert!(msg.header_raw("List-Unsubscribe").is_none(), "{name}");
            let to = msg.to().unwrap().first().unwrap().address().unwrap().to_lowercase();
            let sent_at = chrono::DateTime::from_timestamp(msg.date().unwrap().to_timestamp(), 0).unwrap();
            let text = msg.body_text(0).unwrap().to_string();
            let subject = msg.subject().unwrap().to_string();
            let rows: Vec<u64> = text
                .lines()
                .filter_map(|l| l.strip_prefix("   ARR at risk:"))
                .map(money)
                .collect();
            if matches!(
                kind.as_str(),
                "task-over-sla" | "task-raised-to-lead" | "lapsed-reminder"
            ) {
                // After the playbook: each duty once per miss.
                *after_lapse.entry(kind.clone()).or_default() += 1;
                let first_time = after_lapse_of.insert((kind.clone(), named[0].clone(), subject.clone()));
                assert!(first_time, "{name}: went twice");
                assert!(
                    to.ends_with("@vendor.example"),
                    "{name}: after the playbook, only our people are written to"
                );
            }
            if kind == "opportunity" {
                let first = opportunities_told.insert(named[0].clone(), (to.clone(), subject.clone(), sent_at));
                assert!(first.is_none(), "{name}: an opportunity told twice");
            }
            if kind == "leadership" {
                *leader_days.entry((to.clone(), sent_at.date_naive())).or_default() += 1;
                // Leadership hears only of misses over the maps' thresholds: $1,500
                // in the SMB and mid-market maps, $2,500 in the renewal map; none
                // in enterprise's, whose smallest is $4,000 ($80,000 ARR × 0.05).
                let listed = if rows.is_empty() {
                    vec![money(
                        subject.rsplit(", ").next().unwrap().trim_end_matches(" ARR at risk"),
                    )]
                } else {
                    rows.clone()
                };
                assert!(listed.iter().all(|arr| *arr >= 1_500), "{name}: {listed:?}");
                leadership_named += listed.len();
            }
            if kind == "heads-up" {
                let line = |label: &str| {
                    text.lines()
                        .find_map(|l| l.trim().strip_prefix(label))
                        .unwrap_or_else(|| panic!("{name} lacks {label}"))
                        .trim()
                        .to_string()
                };
                let link = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Open ")
                            .and_then(|r| r.split_once(": "))
                            .map(|(_, u)| u.trim().to_string())
                    })
                    .unwrap();
                let due = chrono::NaiveDate::parse_from_str(&line("Due:"), "%d %b %Y").unwrap();
                assert!(sent_at.date_naive() < due, "{name}: a heads-up on {sent_at} for {due}");
                assert!(subject.contains("behind pace"), "{name}: {subject}");
                due_of.insert(link.clone(), due);
                heads_ups.entry((kind.clone(), link)).or_default().push(sent_at);
            }
            if kind == "owner-digest" {
                use chrono::{Datelike, Timelike};
                assert!(
                    owner_days.insert((to, sent_at.date_naive())),
                    "{name}: two digests a day"
                );
                assert!(
                    sent_at.weekday().num_days_from_monday() < 5 && sent_at.hour() >= 9,
                    "{name}: sent {sent_at}"
                );
                let total = subject.rsplit_once(", ").unwrap().1.trim_end_matches(" ARR at risk");
                assert_eq!(money(total), rows.iter().sum::<u64>(), "{name}: {subject}");
                let count: usize = subject
                    .split("digest: ")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(count, rows.len(), "{name}: {subject}");
                assert!(
                    rows.iter().all(|arr| *arr < 2_500),
                    "{name}: only misses under a threshold: {rows:?}"
                );
                for link in text.lines().filter_map(|l| l.trim().strip_prefix("Open it:")) {
                    assert!(
                        digest_rows.insert(link.trim().to_string()),
                        "{name}: {link} listed twice"
                    );
                }
            }
            continue;
        }
        let text = msg.body_text(0).unwrap().to_string();
        let html = msg
            .body_html(0)
            .unwrap()
            .replace("&#39;", "'")
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#34;", "\"")
            .replace("&quot;", "\"");
        for note in &internal {
            assert!(
                !text.contains(note) && !html.contains(note),
                "{name} shows the internal note {note:?}"
            );
        }
        // The prose, not its links: a signed token may spell "below".
        let prose = text
            .split_whitespace()
            .filter(|w| !w.contains("://"))
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        for promise in ["here is", "here are", "below"] {
            assert!(!prose.contains(promise), "{name} promises content: {text}");
        }
        let reply_to = reply_to.unwrap_or_else(|| panic!("{name} has no Reply-To"));
        assert!(
            reply_to.ends_with("@vendor.example"),
            "{name}: replies go to {reply_to}"
        );
        let header = msg.header_raw("List-Unsubscribe").unwrap().trim().to_string();
        let url = header.trim_start_matches('<').trim_end_matches('>').to_string();
        assert!(url.starts_with(&format!("{unsubscribe_base}/v2.")), "{name}: {url}");
        assert!(
            text.contains(&format!("Unsubscribe: {url}")),
            "{name}: the footer links the header's URL"
        );
        assert_eq!(
            msg.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        if kind == "follow-up" && text.contains("guide") {
            let guides: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
            assert!(!guides.is_empty(), "{name}: mentions guides and lists none");
            for g in guides {
                assert!(g.contains(": https://"), "{name}: a guide without its link: {g}");
            }
        }
        let to = msg.to().unwrap().first().unwrap().address().unwrap().to_string();
        let sent_at = chrono::DateTime::from_timestamp(msg.date().unwrap().to_timestamp(), 0).unwrap();
        if kind == "outreach" {
            // One day-1 outreach per miss: alone, or named in another's.
            let links: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_once("https://app.example.com/milestones/"))
                .map(|(_, link)| link.trim())
                .collect();
            combined_outreach += usize::from(links.len() > 1);
            for link in links {
                *outreach_named.entry(link.to_string()).or_default() += 1;
            }
        }
        if kind == "heads-up-champion" {
            // The milestone it is about, and any others it names.
            for link in text
                .lines()
                .filter_map(|l| l.split_once("https://app.example.com/milestones/"))
            {
                let link = format!("https://app.example.com/milestones/{}", link.1.trim());
                heads_ups.entry((kind.clone(), link)).or_default().push(sent_at);
            }
        }
        // `<n>-<kind>-<account>.eml`: the account's timezone is the contact's.
        let account = name.trim_end_matches(".eml")[7..]
            .strip_prefix(&format!("{kind}-"))
            .unwrap();
        let tz = timezone_of[account];
        let reply = msg.header_raw("In-Reply-To").is_some();
        sent_to.entry(to.to_lowercase()).or_default().push((sent_at, tz, reply));
        // A token is the recipient's: the same link never reaches two people.
        let token = url.rsplit('/').next().unwrap().to_string();
        *link_of.entry(token).or_default().entry(to).or_default() += 1;
        *checked.entry(kind).or_default() += 1;
    }
    assert!(
        link_of.values().all(|people| people.len() == 1),
        "a link reached two people"
    );
    // The contact policy's defaults (every example map keeps them), per
    // contact: one conversation a local day (an email, and at most one reply
    // in its thread: day 1's follow-up), three in any seven days, weekdays
    // 09:00-17:00 in the account's timezone.
    let mut policy_checked = 0;
    for (to, sends) in &mut sent_to {
        use chrono::{Datelike, Timelike};
        sends.sort_by_key(|(at, _, _)| *at);
        let mut days = std::collections::BTreeSet::new();
        let mut reply_days = std::collections::BTreeSet::new();
        for (i, (at, tz, reply)) in sends.iter().enumerate() {
            let local = at.with_timezone(tz);
            assert!(
                local.weekday().num_days_from_monday() < 5 && (9..17).contains(&local.hour()),
                "{to}: customer mail at {local}"
            );
            let day = if *reply { &mut reply_days } else { &mut days };
            assert!(
                day.insert(local.date_naive()),
                "{to}: two emails (replies: {reply}) on {}",
                local.date_naive()
            );
            let in_week = sends[..=i]
                .iter()
                .filter(|(t, _, _)| *at - *t < chrono::Duration::days(7))
                .count();
            assert!(in_week <= 3, "{to}: {in_week} emails in the seven days to {local}");
            policy_checked += 1;
        }
    }
    assert_eq!(policy_checked, checked.values().sum::<usize>());
    // Leadership: at most one escalation email a day per leader.
    assert!(!leader_days.is_empty());
    let busiest = leader_days.iter().max_by_key(|(_, n)| **n).unwrap();
    assert_eq!(*busiest.1, 1, "{busiest:?}");
    // No task under a CSM threshold: $600 in the SMB map, $1,000 in the
    // renewal map; the other maps' smallest miss is $1,000 ($20,000 × 0.05).
    let tasks: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("tasks.json")).unwrap()).unwrap();
    let smallest = tasks.iter().map(|t| t["arr_at_risk"].as_u64().unwrap()).min().unwrap();
    assert!(smallest >= 600, "a task for {smallest} ARR at risk");
    // The summary's counts are the outbox's.
    assert_eq!(summary.held_back_lists, owner_days.len());
    assert_eq!(summary.owner_digest_rows, digest_rows.len());
    assert!(
        summary.owner_digest_rows > 20
            && summary.owner_digest_rows <= summary.kept_tech_touch + summary.kept_from_leadership
    );
    assert_eq!(summary.leadership_escalations, leadership_named);
    let twice: Vec<_> = outreach_named.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "a miss in two day-1 outreach emails: {twice:?}");
    assert!(
        combined_outreach > 5,
        "misses close together share one outreach: {combined_outreach}"
    );
    assert!(tied > 1_000, "emails tied to their misses by headers: {tied}");
    // Issue 33: one meaning of a day-1 touch: an outreach or follow-up email
    // in the outbox, or an in-app message asked of the product.
    let in_app = std::fs::read_to_string(dir.path().join("domain-events.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"type\":\"InAppMessageRequested\""))
        .count();
    assert!(in_app > 100, "{in_app}");
    assert_eq!(
        summary.day1_touches,
        checked.get("outreach").copied().unwrap_or(0) + checked.get("follow-up").copied().unwrap_or(0) + in_app,
        "day-1 touches: the outbox and the bus ({checked:?})"
    );
    // Issue 33: what follows a lapse, counted as the outbox holds it.
    let after = |kind: &str| after_lapse.get(kind).copied().unwrap_or(0);
    assert_eq!(
        (
            summary.lapsed_reminders,
            summary.tasks_over_sla,
            summary.tasks_raised_to_lead
        ),
        (
            after("lapsed-reminder"),
            after("task-over-sla"),
            after("task-raised-to-lead")
        ),
        "{after_lapse:?}"
    );
    assert!(
        after("lapsed-reminder") > 10 && after("task-over-sla") > 10,
        "{after_lapse:?}"
    );
    assert!(after("task-raised-to-lead") <= after("task-over-sla"));
    // Issue 33: our leadership hears of a miss before the customer's sponsor.
    assert!(sponsor_told.len() > 20, "{}", sponsor_told.len());
    for (miss, at, name) in &sponsor_told {
        let told = leadership_told.get(miss);
        assert!(
            told.is_some_and(|t| t <= at),
            "{name} went at {at}, leadership heard of {miss:?} at {told:?}"
        );
    }
    // Heads-ups: one per milestone to its owner and at most one to its
    // champion, before the due date, as many as the summary says.
    let twice: Vec<_> = heads_ups.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(twice.is_empty(), "a milestone's heads-up went twice: {twice:?}");
    let owners = heads_ups.keys().filter(|(k, _)| k == "heads-up").count();
    assert_eq!(owners, summary.heads_ups_to_owners);
    assert_eq!(
        checked.get("heads-up-champion").copied().unwrap_or(0),
        summary.heads_ups_to_customers
    );
    for ((kind, link), at) in &heads_ups {
        if kind == "heads-up-champion" {
            let due = due_of
                .get(link)
                .unwrap_or_else(|| panic!("{link}: a customer heads-up without the owner's"));
            assert!(
                at[0].date_naive() < *due,
                "{link}: customer heads-up on {} for {due}",
                at[0]
            );
        }
    }
    assert!(owners > 100 && summary.heads_ups_to_customers > 50, "{summary:?}");
    for kind in ["outreach", "follow-up", "exec-sponsor", "heads-up-champion"] {
        assert!(checked.get(kind).copied().unwrap_or(0) > 20, "{checked:?}");
    }
    eprintln!("customer emails checked: {checked:?}");
    the_demos_opportunities_reach_their_owners(dir.path(), &summary, &opportunities_told);
    the_demos_success_plans_are_checked_by_their_checkpoints_and_quoted_as_agreed(dir.path(), &summary, 300);
}

/// Issue 36: every opportunity the bus announced reached its owner in one
/// email (the account's AE, or its CSM where it names none: SMB accounts),
/// no earlier than it opened, its subject pricing it as the event did; and
/// the summary counts them.
fn the_demos_opportunities_reach_their_owners(
    dir: &std::path::Path,
    summary: &milepost_cli::demo::Summary,
    told: &BTreeMap<(String, String), (String, String, chrono::DateTime<chrono::Utc>)>,
) {
    let events = std::fs::read_to_string(dir.join("domain-events.jsonl")).unwrap();
    let ready: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["type"] == "ExpansionReady")
        .collect();
    let store: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("store.json")).unwrap()).unwrap();
    let accounts: BTreeMap<&str, &serde_json::Value> = store["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a))
        .collect();
    let (mut to_ae, mut to_csm) = (0, 0);
    for e in &ready {
        let (account, milestone) = (e["account_id"].as_str().unwrap(), e["milestone_id"].as_str().unwrap());
        let (to, subject, sent_at) = told
            .get(&(account.to_string(), milestone.to_string()))
            .unwrap_or_else(|| panic!("{account} {milestone}: its owner was never told"));
        let a = accounts[account];
        let role = e["owner_role"].as_str().unwrap();
        let owner = a["contacts"][role]["email"].as_str();
        assert_eq!(
            Some(to.as_str()),
            owner.or(a["csm"]["email"].as_str()),
            "{account} {milestone}: to the {role}, else the CSM"
        );
        if owner.is_some() {
            to_ae += 1;
        } else {
            to_csm += 1;
        }
        let price = match e["pipeline_arr"].as_u64() {
            Some(arr) => format!("{} a year", milepost_app::email::fmt_money(arr)),
            None => "unpriced".into(),
        };
        let words = format!(
            "({} × {}, {price})",
            e["adds"],
            e["unit"].as_str().unwrap().replace('_', " ")
        );
        assert!(subject.ends_with(&words), "{subject} for {e}");
        let ready_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(e["ready_at"].clone()).unwrap();
        assert!(
            *sent_at >= ready_at,
            "{account} {milestone}: told at {sent_at}, opened {ready_at}"
        );
    }
    assert_eq!(told.len(), ready.len(), "an email for each opportunity and no other");
    assert_eq!(summary.expansion_owners_told, ready.len());
    assert!(to_ae > 3 && to_csm > 3, "to AEs {to_ae}, to CSMs {to_csm}");
    eprintln!("opportunities told: {to_ae} to AEs, {to_csm} to CSMs");
}

/// Issue 36: the demo's success plans (on the whole-outbox run above, which
/// `make test` pays for once). Half the enterprise and mid-market accounts
/// agree one (`success-plans.json`); their checkpoints behind pace are
/// misses, counted alike in summary.json, report.json and the bus's
/// `MilestoneMissed` events; and every customer email that states a goal
/// states the one the account holds when it went: the plan as agreed once
/// it is set, else the account's own `goal` trait — never a map's default.
fn the_demos_success_plans_are_checked_by_their_checkpoints_and_quoted_as_agreed(
    dir: &Path,
    s: &milepost_cli::demo::Summary,
    accounts: usize,
) {
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let maps = milepost_cli::example_maps::example_maps();
    let generated = milepost_cli::demo::generator::plan_accounts(accounts, 7, &maps);
    let planned = generated.iter().filter(|p| p.success_plan.is_some()).count();
    let plans: Vec<Value> = serde_json::from_str(&read("success-plans.json")).unwrap();
    assert_eq!((s.success_plans, plans.len()), (planned, planned));
    assert!(planned > 20, "{planned}");

    // Checkpoint misses, three ways.
    let is_checkpoint = |id: &str| id.starts_with("outcome_on_pace.");
    let announced = read("domain-events.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "MilestoneMissed" && is_checkpoint(e["milestone_id"].as_str().unwrap()))
        .count();
    let listed: usize = plans
        .iter()
        .flat_map(|p| p["checkpoints"].as_array().unwrap())
        .filter(|c| c["missed"] == true)
        .count();
    let report: Value = serde_json::from_str(&read("report.json")).unwrap();
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["milestone"] == "outcome_on_pace" && r["segment"] == "all")
        .expect("checkpoint misses in the report, under the map's milestone");
    let reported = ["missed_playbook", "missed_control", "window_open"]
        .iter()
        .map(|f| row[f].as_u64().unwrap() as usize)
        .sum::<usize>();
    assert!(
        s.checkpoints_missed > 5 && s.checkpoints_on_time > 5 && s.checkpoints_reached_late > 0,
        "{s:?}"
    );
    assert_eq!(
        (announced, listed, reported),
        (s.checkpoints_missed, s.checkpoints_missed, s.checkpoints_missed)
    );

    // The goal each customer email states.
    let plan_of: BTreeMap<String, (DateTime<Utc>, String)> = plans
        .iter()
        .map(|p| {
            let plan: milepost_domain::SuccessPlan = serde_json::from_value(p["plan"].clone()).unwrap();
            (plan.account_id.to_string(), (plan.set_at, plan.outcomes[0].words()))
        })
        .collect();
    let trait_goal: BTreeMap<String, Option<String>> = generated
        .iter()
        .map(|p| (p.account.id.to_string(), p.account.goal.clone()))
        .collect();
    let (mut quoted_plans, mut quoted_traits) = (0, 0);
    for path in walk(&dir.join("outbox")) {
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let eml = std::fs::read(&path).unwrap();
        let msg = mail_parser::MessageParser::default().parse(&eml[..]).unwrap();
        let text = msg.body_text(0).unwrap_or_default().replace("\r\n", "\n");
        let Some(at) = text.find("its goal: ") else { continue };
        let rest = &text[at + "its goal: ".len()..];
        let stated = &rest[..rest.find(".\n").or_else(|| rest.find(". ")).unwrap_or(rest.len())];
        let account = msg.header_raw("X-Milepost-Account").unwrap().trim().to_string();
        let sent: DateTime<Utc> = DateTime::from_timestamp(msg.date().unwrap().to_timestamp(), 0).unwrap();
        match plan_of.get(&account) {
            Some((set_at, words)) if sent >= *set_at => {
                assert_eq!(stated, words, "{}", path.display());
                quoted_plans += 1;
            }
            _ => {
                assert_eq!(Some(stated), trait_goal[&account].as_deref(), "{}", path.display());
                quoted_traits += 1;
            }
        }
    }
    assert!(
        quoted_plans > 20 && quoted_traits > 20,
        "{quoted_plans} / {quoted_traits}"
    );
}
