use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use milepost_cli::{demo, maps_cmd};
use milepost_discovery as discover;

#[derive(Parser)]
#[command(name = "milepost", version, about = "Make customer-success milestones act")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// (dates YYYY-MM-DD, outcome renewed|churned, arr and tenure_year may be empty,
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
        /// (one paginated Scan), instead of --accounts, --events and --maps.
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
    /// Renewal outcomes: import a CRM export (MILEPOST_TABLE).
    Renewals {
        #[command(subcommand)]
        command: RenewalsCommand,
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
enum TasksCommand {
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
enum MilestonesCommand {
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
enum RenewalsCommand {
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
enum ContactsCommand {
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
enum LocalCommand {
    /// Create MILEPOST_TABLE, MILEPOST_BUS and the escalation state machine at
    /// AWS_ENDPOINT_URL unless they exist, and verify the sender's domain in SES
    /// there (refuses without AWS_ENDPOINT_URL, so it never touches a real account).
    Init,
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Show an account, its health score and every tracked milestone.
    Show {
        account_id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum MapsCommand {
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    let name = command.name();
    // Every command's failure is reported here, once.
    run(command).unwrap_or_else(|e| {
        eprintln!("milepost {name} failed: {e:#}");
        ExitCode::FAILURE
    })
}

impl Command {
    /// How the command is called, for its error message.
    fn name(&self) -> &'static str {
        match self {
            Command::Demo { .. } => "demo",
            Command::Discover { .. } => "discover",
            Command::Maps {
                command: MapsCommand::Validate { .. },
            } => "maps validate",
            Command::Maps {
                command: MapsCommand::Load { .. },
            } => "maps load",
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
            Command::Report { .. } => "report",
            Command::Tasks { .. } => "tasks",
            Command::Milestones { .. } => "milestones confirm",
            Command::Outbox { .. } => "outbox",
            Command::Local { .. } => "local init",
            Command::PagesPreview { .. } => "pages-preview",
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo {
            accounts,
            days,
            seed,
            out,
            no_outbox,
            quiet,
        } => {
            let opts = demo::DemoOptions {
                accounts,
                days,
                seed,
                out,
                progress: !quiet,
                write_emails: !no_outbox,
            };
            let summary = runtime().block_on(demo::run(&opts))?;
            print!("{}", demo::render_table(&summary, &opts.out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Discover { from_store: true, .. } => from_store_cmd(command),
        Command::Discover {
            accounts,
            events,
            maps,
            review,
            format,
            chart,
            segment,
            tenure,
            strict,
            threads,
            from_store: false,
        } => {
            let opts = discover::DiscoverOptions {
                accounts: accounts.expect("clap requires --accounts without --from-store"),
                events,
                maps,
                review,
                segment,
                tenure,
                threads: threads.map(usize::from),
            };
            discover_cmd(&opts, &format, chart.as_deref(), strict)
        }
        Command::Maps {
            command: MapsCommand::Validate { files },
        } => {
            let problems = maps_cmd::validate(&files);
            if problems.is_empty() {
                println!("{} map file(s) valid", files.len());
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(maps_cmd::report_problems(&problems))
            }
        }
        Command::PagesPreview { out } => {
            for (name, status) in runtime().block_on(milepost_cli::pages_preview::write(&out))? {
                println!("{status} {name}.html");
            }
            Ok(ExitCode::SUCCESS)
        }
        // The rest read or write a deployed (or local) stack.
        other => runtime().block_on(aws_commands::run(other)),
    }
}

const REPORT_HELP: &str = "\
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

const DISCOVER_HELP: &str = "\
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

--from-store judges the milestones Milepost itself tracked instead: each
account's latest renewal decision in the store (renewed, expanded, contracted:
renewed; churned: churned) and each of its milestones due on or before it,
achieved when reached by its due date (a recovery came too late), manual
milestones included (their confirmation is their achievement). It reads the
store with one paginated Scan (see `milepost report --help` for its cost).

Bad rows (malformed, unknown account, unparseable dates, a decision before the
contract start) are skipped, counted and shown with their line numbers on
stderr; --strict makes any of them a failure.";

/// `milepost discover --from-store` reads a deployed (or local) stack.
#[cfg(feature = "aws")]
fn from_store_cmd(command: Command) -> anyhow::Result<ExitCode> {
    runtime().block_on(aws_commands::run(command))
}

#[cfg(not(feature = "aws"))]
fn from_store_cmd(_: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("--from-store reads a deployed store: this milepost was built without the AWS commands")
}

/// `milepost discover`: results on stdout, what was read and skipped on stderr.
fn discover_cmd(
    opts: &discover::DiscoverOptions,
    format: &str,
    chart: Option<&std::path::Path>,
    strict: bool,
) -> anyhow::Result<ExitCode> {
    let found = discover::run(opts)?;
    eprint!("{}", discover::summary(&found));
    if strict && found.problems.count > 0 {
        eprintln!(
            "--strict: {} bad input row(s); no results written",
            found.problems.count
        );
        return Ok(ExitCode::from(3));
    }
    print!("{}", discover::render(&found, format, !opts.review.is_empty())?);
    if let Some(path) = chart {
        let (svg, panels) = discover::chart_svg(&found, opts.segment.as_deref(), opts.tenure.as_deref());
        discover::write_file(path, &svg)?;
        eprintln!("chart of {panels} milestone(s) written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The commands that read or write a deployed (or local) stack: the store
/// named by `MILEPOST_TABLE`, the bus `MILEPOST_BUS`, the state machine
/// `MILEPOST_STATE_MACHINE_ARN`, at `AWS_ENDPOINT_URL` or AWS itself.
#[cfg(feature = "aws")]
mod aws_commands {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use anyhow::Context;
    use milepost_cli::tasks_cmd::{self, Change, CommandError, TaskRow};
    use milepost_cli::{accounts_cmd, contacts_cmd, maps_cmd, outbox_cmd, parked_cmd, renewals_cmd, report_cmd};
    use milepost_domain::TaskStatus;

    use super::{
        AccountsCommand, Command, ContactsCommand, LocalCommand, MapsCommand, MilestonesCommand, RenewalsCommand,
        TasksCommand,
    };

    /// A refusal the person can fix exits 2 with the reason; anything else is a failure.
    fn refusal(result: Result<(), CommandError>) -> anyhow::Result<ExitCode> {
        match result {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(CommandError::Refused(why)) => {
                eprintln!("{why}");
                Ok(ExitCode::from(2))
            }
            Err(CommandError::Failed(e)) => Err(e),
        }
    }

    pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
        let sdk = milepost_aws::sdk_config().await;
        let store = || milepost_aws::store_from_env(&sdk);
        match command {
            Command::Accounts {
                command: AccountsCommand::Show { account_id, json },
            } => {
                let Some(view) = accounts_cmd::show(&store()?, &account_id).await? else {
                    eprintln!("no account {account_id}");
                    return Ok(ExitCode::from(2));
                };
                if json {
                    println!("{}", serde_json::to_string_pretty(&view)?);
                } else {
                    print!("{}", accounts_cmd::render(&view));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Maps {
                command: MapsCommand::Load { paths },
            } => {
                let files = milepost_maps::map_files(&paths)?;
                anyhow::ensure!(!files.is_empty(), "no map files (*.yaml) found");
                match maps_cmd::load(&store()?, &files).await? {
                    Ok(n) => {
                        println!("{n} map(s) loaded");
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(problems) => Ok(maps_cmd::report_problems(&problems)),
                }
            }
            Command::Sweep { once: _, json } => {
                // As the scheduled function runs it: the sweep, then the snoozes that are over, ...
                milepost_aws::require_state_machine()?;
                let ran = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::IfConfigured)
                    .await?
                    .scheduled_run()
                    .run(&milepost_app::sweep::SweepOptions::default())
                    .await?;
                let (report, reminded, digested, warned, settled) =
                    (ran.sweep, ran.reminders, ran.digests, ran.heads_ups, ran.unknown_emails);
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!(
                        "examined {} due, marked {} missed, started {} escalations ({} already running), skipped {}, failed {}",
                        report.examined, report.missed, report.started, report.already_started, report.skipped, report.failed
                    );
                    if reminded.due > 0 {
                        println!(
                            "reopened {} snoozed task(s) and reminded their owners",
                            reminded.reopened
                        );
                    }
                    if digested.sent > 0 {
                        println!(
                            "sent {} owner digest(s) listing {} missed milestone(s) under the thresholds",
                            digested.sent, digested.listed
                        );
                    }
                    if warned.owners_told + warned.champions_told > 0 {
                        println!(
                            "sent {} heads-up(s) to owners and {} to customers before a miss ({} waiting for the contact policy)",
                            warned.owners_told, warned.champions_told, warned.champions_waiting
                        );
                    }
                    if settled != milepost_app::settle::SettleReport::default() {
                        println!(
                            "emails SES gave no answer for: {} settled from its events, {} sent again, {} not sent (moot), {} left unknown, {} waiting",
                            settled.confirmed, settled.resent, settled.withheld, settled.given_up, settled.waiting
                        );
                    }
                }
                // Failed milestones are retried by the next sweep, but this one did not finish its work.
                Ok(
                    if report.failed + reminded.failed + digested.failed + warned.failed > 0 {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    },
                )
            }
            Command::Contacts {
                command: ContactsCommand::Suppressed { json },
            } => {
                let list = contacts_cmd::suppressed(&store()?).await?;
                if json {
                    let rows: Vec<contacts_cmd::SuppressedRow> =
                        list.iter().map(contacts_cmd::SuppressedRow::from).collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    print!("{}", contacts_cmd::render(&list));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Contacts {
                command: ContactsCommand::Unsuppress { email },
            } => refusal(
                contacts_cmd::unsuppress(&store()?, &email)
                    .await
                    .map(|said| println!("{said}")),
            ),
            Command::Renewals {
                command: RenewalsCommand::Import { file, json },
            } => {
                let input = std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?;
                let limits = milepost_app::Config::from_env()?.time_limits;
                let today = chrono::Utc::now().date_naive();
                match renewals_cmd::import(&store()?, input, &limits, today).await {
                    Ok(report) if json => {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                        Ok(ExitCode::SUCCESS)
                    }
                    Ok(r) => {
                        println!(
                            "imported {} outcome(s) for {} account(s): {} new, {} replaced, {} already recorded",
                            r.rows, r.accounts, r.added, r.replaced, r.unchanged
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(renewals_cmd::ImportError::Problems(problems)) => {
                        for p in &problems {
                            eprintln!("{}:{}: {}: {}", file.display(), p.line, p.field, p.message);
                        }
                        eprintln!("nothing imported: {} problem(s)", problems.len());
                        Ok(ExitCode::from(2))
                    }
                    Err(renewals_cmd::ImportError::Failed(e)) => Err(e),
                }
            }
            Command::Report {
                since,
                until,
                segment,
                window_days,
                json,
                csv,
            } => {
                let args = report_cmd::Args {
                    since,
                    until,
                    segment,
                    window_days,
                };
                let checked = match report_cmd::check(&args, chrono::Utc::now()) {
                    Ok(c) => c,
                    Err(bad) => {
                        eprintln!("{bad}");
                        return Ok(ExitCode::from(2));
                    }
                };
                let report = report_cmd::build(&store()?, checked).await?;
                if json {
                    print!("{}", report_cmd::to_json(&report));
                } else if csv {
                    print!("{}", report_cmd::to_csv(&report));
                } else {
                    print!("{}", report_cmd::render(&report));
                }
                Ok(ExitCode::SUCCESS)
            }
            // Only --from-store reaches here; run() serves discover on files.
            Command::Discover {
                review,
                format,
                chart,
                segment,
                tenure,
                ..
            } => {
                let records = milepost_cli::discover_store::records(&store()?).await?;
                let (undecided, not_judged) = (records.undecided, records.not_judged);
                let found =
                    milepost_discovery::run_on_records(records, &review, segment.as_deref(), tenure.as_deref())?;
                eprintln!(
                    "{} renewed and {} churned accounts from the store; {undecided} without a renewal decision yet; \
                     {not_judged} milestone(s) due after their account's decision not judged",
                    found.renewed, found.churned
                );
                print!("{}", milepost_discovery::render(&found, &format, !review.is_empty())?);
                if let Some(path) = chart {
                    let (svg, panels) = milepost_discovery::chart_svg(&found, segment.as_deref(), tenure.as_deref());
                    milepost_discovery::write_file(&path, &svg)?;
                    eprintln!("chart of {panels} milestone(s) written to {}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Parked { replay, json } => {
                let ingestion = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::Skip)
                    .await?
                    .ingestion();
                let accounts = parked_cmd::parked(&ingestion, replay).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&accounts)?);
                } else {
                    print!("{}", parked_cmd::render(&accounts));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Tasks {
                command: TasksCommand::List { owner, status, json },
            } => {
                let status = status.as_deref().and_then(TaskStatus::parse);
                let tasks = tasks_cmd::list(&store()?, owner.as_deref(), status).await?;
                if json {
                    let rows: Vec<TaskRow> = tasks.iter().map(TaskRow::from).collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    print!("{}", tasks_cmd::render(&tasks));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Tasks { command } => {
                let ingestion = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::Skip)
                    .await?
                    .ingestion();
                let (id, change, by, note) = match &command {
                    TasksCommand::Done { id, by, outcome, note } => (
                        id,
                        Change::Done {
                            outcome: outcome.as_deref(),
                        },
                        by,
                        note,
                    ),
                    TasksCommand::Snooze { id, by, days, note } => (id, Change::Snooze { days: *days }, by, note),
                    TasksCommand::Dismiss { id, by, reason, note } => (id, Change::Dismiss { reason }, by, note),
                    TasksCommand::List { .. } => unreachable!("listed above"),
                };
                refusal(
                    tasks_cmd::change(&ingestion, id, change, by, note.as_deref())
                        .await
                        .map(|task| println!("{}: {}", task.id, milepost_app::email::standing(&task))),
                )
            }
            Command::Milestones {
                command:
                    MilestonesCommand::Confirm {
                        account_id,
                        milestone_id,
                        by,
                        note,
                        at,
                    },
            } => {
                let ingestion = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::Skip)
                    .await?
                    .ingestion();
                refusal(
                    tasks_cmd::confirm(
                        &ingestion,
                        &account_id,
                        &milestone_id,
                        &by,
                        note.as_deref(),
                        at.as_deref(),
                    )
                    .await
                    .map(|said| print!("{said}")),
                )
            }
            Command::Outbox { json, save } => {
                outbox(json, save).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Local {
                command: LocalCommand::Init,
            } => {
                local_init(&sdk).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Demo { .. }
            | Command::Maps {
                command: MapsCommand::Validate { .. },
            }
            | Command::PagesPreview { .. } => {
                unreachable!("run() serves these without AWS")
            }
        }
    }

    async fn outbox(json: bool, save: Option<PathBuf>) -> anyhow::Result<()> {
        let emails = outbox_cmd::fetch().await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&emails)?);
        } else {
            print!("{}", outbox_cmd::render(&emails));
        }
        if let Some(dir) = save {
            let n = outbox_cmd::save(&emails, &dir)?;
            eprintln!("{n} email(s) written to {}", dir.display());
        }
        Ok(())
    }

    async fn local_init(sdk: &aws_config::SdkConfig) -> anyhow::Result<()> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| {
            anyhow::anyhow!("AWS_ENDPOINT_URL is not set: local init only creates resources on an emulator")
        })?;
        let var = |name: &str| std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set"));
        let (table, bus) = (var("MILEPOST_TABLE")?, var("MILEPOST_BUS")?);
        milepost_local::stack::create_local_resources(sdk, &table, &bus)
            .await
            .map_err(anyhow::Error::msg)?;
        let definition = milepost_local::stack::local_definition(ESCALATION_ASL);
        let state_machine =
            milepost_local::stack::create_local_state_machine(sdk, &format!("{table}-escalation"), &definition)
                .await
                .map_err(anyhow::Error::msg)?;
        let sender = milepost_app::Config::from_env()?.sender.email.to_string();
        milepost_local::outbox::verify_sender(sdk, &sender)
            .await
            .map_err(anyhow::Error::msg)?;
        eprintln!("table {table}, event bus {bus}, state machine and SES sender ready at {endpoint}");
        // The one line scripts read: the state machine's ARN.
        println!("{state_machine}");
        Ok(())
    }

    /// The escalation state machine as deployed (`infra/statemachine/`), built in.
    const ESCALATION_ASL: &str = include_str!("../../infra/statemachine/escalation.asl.json");
}

/// Built without the AWS adapters (`make demo` builds it that way, so a
/// first demo does not compile the AWS SDK).
#[cfg(not(feature = "aws"))]
mod aws_commands {
    pub async fn run(_command: super::Command) -> anyhow::Result<std::process::ExitCode> {
        anyhow::bail!(
            "this milepost binary was built without AWS support (`make demo` builds it that way); \
             build it with `cargo build --release -p milepost-cli`"
        )
    }
}
