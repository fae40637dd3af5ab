//! The command line: every command, its arguments and help texts (clap's
//! derive types). What each command does is in main.rs and aws_commands.rs.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "milepost", version, about = "Make customer-success milestones act")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the whole pipeline locally on embedded defaults: events in, sweep,
    /// escalations, emails written to an outbox. No AWS account needed.
    Demo {
        /// How many customer accounts to simulate.
        #[arg(long, default_value_t = 300)]
        accounts: usize,
        /// How many days to simulate.
        #[arg(long, default_value_t = 120)]
        days: u32,
        /// Seed: the same seed gives the same output.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory (outbox/, tasks.json, summary.json, domain-events.jsonl).
        #[arg(long, default_value = "milepost-demo")]
        out: PathBuf,
        /// Count emails instead of writing them (for very large runs).
        #[arg(long)]
        no_outbox: bool,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Which milestones predict renewal: achievement rates of renewed and
    /// churned cohorts from past renewal decisions and product events.
    #[command(long_about = DISCOVER_HELP)]
    Discover {
        /// Accounts CSV: account_id,segment,contract_start,decision_date,outcome,arr,tenure_year
        /// (dates YYYY-MM-DD, outcome renewed|churned|expanded|contracted, arr and tenure_year may be empty,
        /// tenure defaults to 1; an optional licensed_seats column serves seat-ratio milestones).
        #[arg(long, value_name = "FILE", required_unless_present = "from_store")]
        accounts: Option<PathBuf>,
        /// Events: CSV (account_id,event,timestamp,user_id,value; timestamp RFC 3339) or
        /// JSON Lines (.jsonl) with the same fields, either optionally gzipped. Repeatable.
        #[arg(long, value_name = "FILE", required_unless_present = "from_store")]
        events: Vec<PathBuf>,
        /// Candidate milestones: map files or directories, in the production map YAML.
        #[arg(long, value_name = "DIR|FILE")]
        maps: Vec<PathBuf>,
        /// Judge the milestones Milepost tracked, from the store named by
        /// MILEPOST_TABLE, against the renewal decisions recorded there
        /// (one paginated Scan), instead of --accounts, --events and --maps;
        /// the result is kept there too, for the console's maps page.
        #[arg(long, conflicts_with_all = ["accounts", "events", "maps", "threads", "strict"])]
        from_store: bool,
        /// Maps in use to review: flags their milestones under ratio 1.5, and
        /// candidates over 2.0 they lack.
        #[arg(long, value_name = "DIR|FILE")]
        review: Vec<PathBuf>,
        /// table (default), json or csv.
        #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
        format: String,
        /// Also draw each milestone's cumulative achievement curves into this SVG file.
        #[arg(long, value_name = "FILE")]
        chart: Option<PathBuf>,
        /// Only rows of this segment (enterprise, mid_market, smb, or all for the overall rows).
        #[arg(long, value_parser = ["all", "enterprise", "mid_market", "smb"])]
        segment: Option<String>,
        /// Only rows of this tenure (first_year, multi_year, or all).
        #[arg(long, value_parser = ["all", "first_year", "multi_year"])]
        tenure: Option<String>,
        /// Exit non-zero, printing no results, when any input row is bad.
        #[arg(long)]
        strict: bool,
        /// Threads reading a plain CSV events file (default: one per core, for files from 32 MiB).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
        threads: Option<u16>,
        /// With --from-store: only the accounts with, or without, a success
        /// plan as it stands (with, without, or all).
        #[arg(long, value_parser = ["with", "without", "all"])]
        success_plan: Option<String>,
        /// The cohorts compared: renewal (renewed, expanded or contracted vs
        /// churned) or expansion (expanded vs renewed flat or contracted;
        /// churned accounts left out), which also judges expansion milestones.
        #[arg(long, default_value = "renewal", value_parser = ["renewal", "expansion"])]
        cohorts: String,
    },
    /// Milestone maps.
    Maps {
        #[command(subcommand)]
        command: MapsCommand,
    },
    /// Accounts in the deployed (or local) store named by MILEPOST_TABLE and AWS_ENDPOINT_URL.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Run one sweep: mark due milestones missed and start their escalations
    /// (MILEPOST_TABLE, MILEPOST_BUS, MILEPOST_STATE_MACHINE_ARN; AWS_ENDPOINT_URL for local runs).
    Sweep {
        /// One sweep, then exit: all this command does (what the scheduled
        /// function does every 15 minutes). Accepted for scripts that say so.
        #[arg(long, hide = true)]
        once: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// CSM tasks: list them, mark them done, snooze or dismiss them (the same
    /// rules as the email's buttons). MILEPOST_TABLE, MILEPOST_BUS.
    Tasks {
        #[command(subcommand)]
        command: TasksCommand,
    },
    /// Manual milestones: confirm one reached (MILEPOST_TABLE, MILEPOST_BUS,
    /// MILEPOST_STATE_MACHINE_ARN to stop its escalation).
    Milestones {
        #[command(subcommand)]
        command: MilestonesCommand,
    },
    /// Customer contacts who unsubscribed: list them, or lift one when the
    /// contact asks to hear from us again (MILEPOST_TABLE).
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Signed outbound webhooks (Standard Webhooks): the endpoints Milepost's
    /// domain events are sent to, what was delivered, and replays (MILEPOST_TABLE).
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// HubSpot: the accounts whose company was not found, the changes given
    /// up, and sending them again (MILEPOST_TABLE).
    Crm {
        #[command(subcommand)]
        command: CrmCommand,
    },
    /// Renewal outcomes: import a CRM export (MILEPOST_TABLE).
    Renewals {
        #[command(subcommand)]
        command: RenewalsCommand,
    },
    /// Customers' success plans: the outcomes each agreed with their CSM
    /// (what is measured, baseline, target, by when, checkpoints, who agreed),
    /// kept as versions in MILEPOST_TABLE.
    Outcomes {
        #[command(subcommand)]
        command: OutcomesCommand,
    },
    /// Does the playbook work? Recovery of missed milestones with the
    /// playbook vs the control group, churn by how milestones went, open
    /// tasks by owner (MILEPOST_TABLE).
    #[command(long_about = REPORT_HELP)]
    Report {
        /// Misses due on or after this day (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Misses due on or before this day (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Only this segment: enterprise, mid_market or smb.
        #[arg(long)]
        segment: Option<String>,
        /// Only accounts with or without a success plan (as it stands): with, without or all.
        #[arg(long, value_name = "WITH|WITHOUT")]
        success_plan: Option<String>,
        /// Recovered means reached within this many days of the due date.
        #[arg(long, default_value_t = milepost_domain::report::DEFAULT_WINDOW_DAYS)]
        window_days: u32,
        /// Print JSON: {"window_days", "rows", "churn", "tasks", ...}.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print the rows as CSV.
        #[arg(long)]
        csv: bool,
    },
    /// Events kept for accounts not known when they arrived; --replay applies
    /// those whose account exists now (MILEPOST_TABLE, MILEPOST_BUS, MILEPOST_STATE_MACHINE_ARN).
    Parked {
        /// Apply the parked events of accounts that exist now, and unpark them.
        #[arg(long)]
        replay: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The emails sent on the local emulator (`make local`): recipients and subjects.
    Outbox {
        /// Print JSON (recipients, subject, HTML) instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write each email's HTML to this directory, to open in a browser.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
    },
    /// The web console on a demo's data, on this machine only (`make console`).
    ///
    /// Serves http://127.0.0.1:PORT/ from DIR/store.json, which `milepost
    /// demo` writes, with a development sign-in: pick a CS lead, a CSM or a
    /// viewer. What you change lasts until the console stops. With
    /// MILEPOST_OIDC_ISSUER set (and MILEPOST_OIDC_CLIENT_ID,
    /// MILEPOST_CONSOLE_URL, MILEPOST_CONSOLE_ACCESS; the AWS build), people
    /// sign in through that identity provider instead.
    Console {
        /// The demo's output directory.
        #[arg(long, value_name = "DIR", default_value = "milepost-demo")]
        from: PathBuf,
        #[arg(long, default_value_t = milepost_cli::console_cmd::DEFAULT_PORT)]
        port: u16,
        /// Serve the stack the environment names (MILEPOST_TABLE, MILEPOST_BUS,
        /// ...; `make local` writes them), signing in through the identity
        /// provider the console's settings name (MILEPOST_OIDC_ISSUER, ...),
        /// instead of a demo's data.
        #[arg(long, conflicts_with = "from")]
        stack: bool,
    },
    /// Every page an action link can show, written to DIR (for `make emails-preview`).
    #[command(hide = true)]
    PagesPreview {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The local stack `make local` runs on the AWS emulator.
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum TasksCommand {
    /// Tasks, oldest first: an owner's (from the owner index) or everyone's.
    List {
        /// Only this owner's tasks.
        #[arg(long, value_name = "EMAIL")]
        owner: Option<String>,
        /// Only tasks in this state.
        #[arg(long, value_parser = ["open", "snoozed", "done", "dismissed"])]
        status: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Close a task as done.
    Done {
        id: String,
        /// Who did it (an email address).
        #[arg(long, value_name = "EMAIL")]
        by: String,
        /// What got done: plan_agreed, blocker_removed, team_trained, escalated_internally or other.
        #[arg(long)]
        outcome: Option<String>,
        /// A one-line note, shown to leadership on day 5.
        #[arg(long)]
        note: Option<String>,
    },
    /// Put a task off: it opens again after DAYS and its owner is reminded.
    Snooze {
        id: String,
        #[arg(long, value_name = "EMAIL")]
        by: String,
        #[arg(long, default_value_t = 3)]
        days: i64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Close a task as not needed.
    Dismiss {
        id: String,
        #[arg(long, value_name = "EMAIL")]
        by: String,
        /// not_relevant, customer_churning, duplicate or other.
        #[arg(long, default_value = "not_relevant")]
        reason: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum MilestonesCommand {
    /// Record a manual milestone reached: achieved before its due date,
    /// recovered after a miss (its escalation stops, its task closes).
    Confirm {
        account_id: String,
        milestone_id: String,
        /// Who confirms it (an email address).
        #[arg(long, value_name = "EMAIL")]
        by: String,
        /// A one-line note for the account's history.
        #[arg(long)]
        note: Option<String>,
        /// When it was reached (RFC 3339; default now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum RenewalsCommand {
    /// Records each row's outcome on its account: a CSV with the header
    /// account_id,decision_date,outcome,arr_after (outcome: renewed, churned,
    /// expanded or contracted; arr_after optional). All or nothing: any bad
    /// row, or an account Milepost does not know, is reported with its line
    /// and nothing is written (exit 2). Importing a file again changes nothing.
    Import {
        file: PathBuf,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ContactsCommand {
    /// Every address that unsubscribed, since when and how.
    Suppressed {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lets an address receive customer email again.
    Unsuppress { email: String },
}

#[derive(Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Registers an endpoint; prints its id and signing secret (shown once).
    Add {
        /// Where to POST: https://..., or http://localhost... for a receiver on this machine.
        url: String,
        /// Only these event types (comma-separated or repeated: TaskOpened,
        /// TaskClosed, MilestoneMissed, ...); default every type.
        #[arg(long, value_name = "TYPES")]
        events: Vec<String>,
        /// Print JSON: {"id", "url", "events", "secret"}.
        #[arg(long)]
        json: bool,
    },
    /// The endpoints, their event types and whether they are failing or disabled.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A new signing secret (printed once); the old one keeps signing for 24 hours.
    RotateSecret { id: String },
    /// Sends to a disabled endpoint again (then `replay` what waited).
    Enable { id: String },
    /// Removes an endpoint: nothing more is sent to it.
    Remove { id: String },
    /// One endpoint's deliveries of the last 30 days, newest first.
    Deliveries {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Sends again: one event (--event), or every delivery that failed
    /// (since --since DAY; with --all, those delivered too).
    Replay {
        id: String,
        #[arg(long, value_name = "EVENT_ID", conflicts_with_all = ["since", "all"])]
        event: Option<String>,
        #[arg(long, value_name = "YYYY-MM-DD")]
        since: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Sends every delivery whose retry is due now (what the integrations
    /// function does every minute; for `make local`, which runs no schedules).
    Deliver {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum CrmCommand {
    /// Accounts whose HubSpot company was not found (no hubspot_company_id
    /// trait, no company with their domain, or several), and the tasks
    /// waiting for them.
    Unmatched {
        #[arg(long)]
        json: bool,
    },
    /// Changes given up: refused by HubSpot, or failing for a day.
    Dead {
        #[arg(long)]
        json: bool,
    },
    /// Sends the dead changes again and looks for unmatched accounts'
    /// companies again (after a trait or a company's domain was fixed);
    /// the integrations function does it within a minute.
    Replay {
        /// Only this account's.
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
    },
    /// Writes an account's standing to its company again now.
    Sync { account_id: String },
}

#[derive(Subcommand)]
pub(crate) enum LocalCommand {
    /// Create MILEPOST_TABLE, MILEPOST_BUS and the escalation state machine at
    /// AWS_ENDPOINT_URL unless they exist, and verify the sender's domain in SES
    /// there (refuses without AWS_ENDPOINT_URL, so it never touches a real account).
    Init,
}

#[derive(Subcommand)]
pub(crate) enum AccountsCommand {
    /// Show an account, its health score and every tracked milestone.
    Show {
        account_id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
// Parsed once per run: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum OutcomesCommand {
    /// Sets each account's plan from a CSV with the header
    /// account_id,outcome_id,title,event,property,unit,baseline,target,starts_on,by,checkpoints,agreed_by
    /// (a row per outcome; an account's rows are its whole plan; checkpoints
    /// empty or `2026-04-01=5;2026-07-01=10`). All or nothing: any bad row,
    /// or an account Milepost does not know, is reported with its line and
    /// nothing is kept (exit 2). A plan as it stands already keeps no new version.
    Import {
        file: PathBuf,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Puts one outcome in an account's plan (a new version; the same outcome
    /// with the same id is replaced, the others kept).
    Set {
        account_id: String,
        /// The outcome's id in the plan: lowercase letters, digits and _.
        #[arg(long)]
        id: String,
        /// In the customer's words: "Lower annual logistics costs".
        #[arg(long)]
        title: String,
        /// The event whose numeric property measures it.
        #[arg(long, default_value = "outcome.measured")]
        event: String,
        #[arg(long)]
        property: String,
        /// What the values count: %, hours, USD, ...
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, allow_negative_numbers = true)]
        baseline: f64,
        #[arg(long, allow_negative_numbers = true)]
        target: f64,
        /// YYYY-MM-DD.
        #[arg(long)]
        starts_on: String,
        /// YYYY-MM-DD: when the target is due.
        #[arg(long)]
        by: String,
        /// DATE=VALUE, repeatable; none: the straight line, quarter by quarter.
        #[arg(long = "checkpoint", value_name = "DATE=VALUE")]
        checkpoints: Vec<String>,
        /// Who agreed to it on the customer's side: "Dana Chen, VP Operations".
        #[arg(long)]
        agreed_by: String,
    },
    /// An account's plan as it stands (or every version with --history).
    Show {
        account_id: String,
        #[arg(long)]
        history: bool,
        #[arg(long)]
        json: bool,
    },
    /// Every account with a plan (reads the whole table).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum MapsCommand {
    /// Check map files; report every problem with file, line and field. Exit 0 only when all are valid.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate map files (or directories of them) and store them in MILEPOST_TABLE,
    /// replacing the map for the same segment and tenure. Stores nothing unless all are valid.
    Load {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Replay an account history (the files `milepost discover` reads) through
    /// the pipeline under the maps in use and under proposed maps, and compare
    /// what each would have done: misses, playbooks, customer emails, CSM tasks
    /// and hours, leadership escalations, ARR flagged, and how well a miss
    /// warned of churn. Runs on this machine; nothing is sent.
    Simulate {
        /// Accounts CSV, as `milepost discover` reads it (with decision_date and outcome).
        #[arg(long, value_name = "FILE")]
        accounts: PathBuf,
        /// Events CSV or JSON Lines, as `milepost discover` reads them.
        #[arg(long, value_name = "FILE")]
        events: PathBuf,
        /// The maps in use: files or directories.
        #[arg(long, value_name = "DIR|FILE", required = true)]
        current: Vec<PathBuf>,
        /// The maps proposed instead: files or directories.
        #[arg(long, value_name = "DIR|FILE", required = true)]
        proposed: Vec<PathBuf>,
        /// Minutes a CSM spends on one task, for the hours the tasks cost.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=480))]
        minutes_per_task: u32,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Also write the comparison as an SVG chart.
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
        /// Also keep the comparison in MILEPOST_TABLE for the quarterly map
        /// review the leadership digest carries (replacing the one kept before).
        #[arg(long)]
        keep: bool,
    },
    /// Keep a `milepost discover --format json` result in MILEPOST_TABLE for the
    /// console's maps page, which shows each milestone's ratio, class and the
    /// month renewed and churned customers part beside it (replacing the one kept before).
    Discovery {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

impl Command {
    /// How the command is called, for its error message.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Demo { .. } => "demo",
            Command::Discover { .. } => "discover",
            Command::Maps {
                command: MapsCommand::Validate { .. },
            } => "maps validate",
            Command::Maps {
                command: MapsCommand::Load { .. },
            } => "maps load",
            Command::Maps {
                command: MapsCommand::Discovery { .. },
            } => "maps discovery",
            Command::Maps {
                command: MapsCommand::Simulate { .. },
            } => "maps simulate",
            Command::Accounts { .. } => "accounts show",
            Command::Sweep { .. } => "sweep",
            Command::Parked { .. } => "parked",
            Command::Contacts {
                command: ContactsCommand::Suppressed { .. },
            } => "contacts suppressed",
            Command::Contacts {
                command: ContactsCommand::Unsuppress { .. },
            } => "contacts unsuppress",
            Command::Renewals { .. } => "renewals import",
            Command::Outcomes { command } => match command {
                OutcomesCommand::Import { .. } => "outcomes import",
                OutcomesCommand::Set { .. } => "outcomes set",
                OutcomesCommand::Show { .. } => "outcomes show",
                OutcomesCommand::List { .. } => "outcomes list",
            },
            Command::Webhooks { command } => match command {
                WebhooksCommand::Add { .. } => "webhooks add",
                WebhooksCommand::List { .. } => "webhooks list",
                WebhooksCommand::RotateSecret { .. } => "webhooks rotate-secret",
                WebhooksCommand::Enable { .. } => "webhooks enable",
                WebhooksCommand::Remove { .. } => "webhooks remove",
                WebhooksCommand::Deliveries { .. } => "webhooks deliveries",
                WebhooksCommand::Replay { .. } => "webhooks replay",
                WebhooksCommand::Deliver { .. } => "webhooks deliver",
            },
            Command::Crm { command } => match command {
                CrmCommand::Unmatched { .. } => "crm unmatched",
                CrmCommand::Dead { .. } => "crm dead",
                CrmCommand::Replay { .. } => "crm replay",
                CrmCommand::Sync { .. } => "crm sync",
            },
            Command::Report { .. } => "report",
            Command::Tasks { .. } => "tasks",
            Command::Milestones { .. } => "milestones confirm",
            Command::Outbox { .. } => "outbox",
            Command::Local { .. } => "local init",
            Command::PagesPreview { .. } => "pages-preview",
            Command::Console { .. } => "console",
        }
    }
}

pub(crate) const REPORT_HELP: &str = "\
Does the playbook work? For the misses due in the period, the share recovered
(reached within --window-days of the due date) with the playbook and in the
control group (the maps' `holdout`), with 95% Wilson intervals; the uplift
(the difference) with Newcombe's interval; recovery by the last stage reached,
median days to recover, ARR at risk and recovered; per milestone and segment.
Misses whose window is still open are counted apart, in no rate. Then the
churn rate of accounts whose milestones were all on time, recovered or lapsed
(their latest renewal decision in the period) with its ratio to on-time, and
the open tasks by owner and age. A row marked small_sample has an uplift
interval wider than 20 points: too few misses to act on.

Reads the store named by MILEPOST_TABLE (AWS_ENDPOINT_URL for a local stack):
one paginated Scan of the table, which reads (and is billed for) every item:
0.5 read units per 4 KB, eventually consistent, so a 2 GB table costs about
262,000 read units, $0.03 at $0.125 per million on demand; plus the open and
snoozed tasks by their index. Run it daily or weekly, not per request.

An unknown segment or an empty period gives an empty report with a note;
a malformed date or window exits 2 naming the option.
";

pub(crate) const DISCOVER_HELP: &str = "\
Which milestones predict renewal: for every candidate milestone, how often the
renewed and the churned cohort achieved it, per segment and overall, for tenure
year 1, years 2 and later, and all.

Definitions:
  achieved        the criterion was first met at a time t with
                  contract_start <= t, t on or before decision_date (UTC), and,
                  when the milestone has due_days, t <= contract_start + due_days.
                  Identical event rows count once, as a re-delivered event would.
  renewed rate    achieved renewed accounts / renewed accounts in scope;
                  churned rate likewise (95% Wilson intervals).
  ratio           renewed rate / churned rate, `unbounded` when the churned rate
                  is 0 (95% interval by Katz's log method; a zero count gets half
                  an account for the interval only).
  class           strong when ratio > 2.0, weak when < 1.5, else moderate.
  churn risk if missed
                  churn rate among accounts that missed it / churn rate among
                  accounts that achieved it.
  divergence month
                  for m = 1..12, each cohort's cumulative achievement rate by
                  day 30*m; the month where renewed minus churned is largest
                  (the earliest on ties).
  small cohort    a cohort with fewer than 30 accounts (marked *).

A map applies to the accounts of its segment (`segment: all`: every account)
and of its tenure when it names one; where several maps define a milestone,
an account is judged by the most specific. Manual milestones are skipped.

Cohorts: an outcome of expanded or contracted is a renewal. With --cohorts
expansion the two cohorts are expanded accounts and those that renewed without
expanding (renewed or contracted); churned accounts are in neither. The same
statistics compare them (read `renewed` as expanded and `churned` as not
expanded above), the fields and headings say `expanded` and `not_expanded`
(`no_expansion_risk_if_missed`), and expansion milestones, left out of renewal
vs churn, are judged too, up to the decision or day 360, whichever comes first.
--review, and keeping the result from --from-store, stay with renewal: what a
milestone is worth is its churn.

--from-store judges the milestones Milepost itself tracked instead: each
account's latest renewal decision in the store (renewed, expanded, contracted:
renewed; churned: churned; or the expansion cohorts above) and each of its milestones due on or before it,
achieved when reached by its due date (a recovery came too late), manual
milestones included (their confirmation is their achievement). It reads the
store with one paginated Scan (see `milepost report --help` for its cost).

Bad rows (malformed, unknown account, unparseable dates, a decision before the
contract start) are skipped, counted and shown with their line numbers on
stderr; --strict makes any of them a failure.";
