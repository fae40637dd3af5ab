//! The commands that read or write a deployed (or local) stack: the store
//! named by `MILEPOST_TABLE`, the bus `MILEPOST_BUS`, the state machine
//! `MILEPOST_STATE_MACHINE_ARN`, at `AWS_ENDPOINT_URL` or AWS itself.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use milepost_app::ports::{ConsoleReads, DiscoveryStore};
use milepost_cli::tasks_cmd::{self, Change, CommandError, TaskRow};
use milepost_cli::{
    accounts_cmd, contacts_cmd, crm_cmd, maps_cmd, outbox_cmd, parked_cmd, renewals_cmd, report_cmd, webhooks_cmd,
};
use milepost_domain::TaskStatus;

use crate::args::{
    AccountsCommand, Command, ContactsCommand, CrmCommand, LocalCommand, MapsCommand, MilestonesCommand,
    OutcomesCommand, RenewalsCommand, TasksCommand, WebhooksCommand,
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
        } => show_account(&store()?, &account_id, json).await,
        Command::Maps {
            command: MapsCommand::Load { paths },
        } => {
            let files = milepost_maps::map_files(&paths)?;
            anyhow::ensure!(!files.is_empty(), "no map files (*.yaml) found");
            let store = store()?;
            let formerly = milepost_app::worth::discovered_ids(&store.all_maps().await?);
            match maps_cmd::load(&store, &files).await? {
                Ok(n) => {
                    println!("{n} map(s) loaded");
                    if let Some(said) = maps_cmd::reweighed(&milepost_app::worth::reweigh(&store, &formerly).await?) {
                        println!("{said}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => Ok(maps_cmd::report_problems(&problems)),
            }
        }
        Command::Maps {
            command: MapsCommand::Discovery { file },
        } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let source = file
                .file_name()
                .map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
            let kept = milepost_domain::discovery::KeptDiscovery::from_json(&text, &source, chrono::Utc::now())
                .map_err(|why| anyhow::anyhow!("{}: {why}", file.display()))?;
            let store = store()?;
            store.keep_discovery(&kept).await?;
            println!(
                "kept {} line(s) of {} milestone(s) for the console's maps page",
                kept.lines.len(),
                kept.lines
                    .iter()
                    .map(|l| &l.milestone)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            );
            if let Some(said) = maps_cmd::reweighed(&milepost_app::worth::reweigh(&store, &Default::default()).await?) {
                println!("{said}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep { once: _, json } => sweep(&sdk, json).await,
        Command::Console {
            from,
            port,
            stack: false,
        } => {
            // A demo's data, signing in through the identity provider the
            // console's settings name: on this machine, so local rules.
            let snapshot = milepost_cli::console_cmd::read_snapshot(&from)?;
            let services = milepost_cli::console_cmd::demo_services(snapshot);
            let env = |name: &str| match name {
                "MILEPOST_LOCAL" => Some("1".to_string()),
                _ => std::env::var(name).ok().filter(|v| !v.trim().is_empty()),
            };
            let console = milepost_aws::console::console_from(&sdk, &services, env).await?;
            milepost_cli::console_cmd::serve(console, port, &format!("{}'s data", from.display())).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Console { port, stack: true, .. } => {
            let services = milepost_aws::services_from_env(&sdk, milepost_aws::LinkKey::Skip).await?;
            let console = milepost_aws::console::console_from_env(&sdk, &services).await?;
            milepost_cli::console_cmd::serve(console, port, "the stack's table").await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Contacts {
            command: ContactsCommand::Suppressed { json },
        } => suppressed(&store()?, json).await,
        Command::Contacts {
            command: ContactsCommand::Unsuppress { email },
        } => refusal(
            contacts_cmd::unsuppress(&store()?, &email)
                .await
                .map(|said| println!("{said}")),
        ),
        Command::Renewals {
            command: RenewalsCommand::Import { file, json },
        } => import_renewals(&store()?, &file, json).await,
        Command::Outcomes { command } => outcomes(&store()?, command).await,
        Command::Report {
            since,
            until,
            segment,
            success_plan,
            window_days,
            json,
            csv,
        } => {
            let args = report_cmd::Args {
                since,
                until,
                segment,
                success_plan,
                window_days,
            };
            report(&store()?, args, json, csv).await
        }
        // Only --from-store reaches here; run() serves discover on files.
        Command::Discover {
            review,
            format,
            chart,
            segment,
            tenure,
            success_plan,
            cohorts,
            ..
        } => {
            let plans = match success_plan.as_deref() {
                Some("with") => Some(true),
                Some("without") => Some(false),
                _ => None,
            };
            discover_from_store(
                &store()?,
                &review,
                &format,
                chart.as_deref(),
                segment.as_deref(),
                tenure.as_deref(),
                Judged {
                    success_plan: plans,
                    cohorts: milepost_discovery::input::CohortSplit::parse(&cohorts)
                        .expect("clap allows only known cohorts"),
                },
            )
            .await
        }
        Command::Parked { replay, json } => parked(&sdk, replay, json).await,
        Command::Tasks {
            command: TasksCommand::List { owner, status, json },
        } => list_tasks(&store()?, owner.as_deref(), status.as_deref(), json).await,
        Command::Tasks { command } => change_task(&sdk, &command).await,
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
            let (note, at) = (note.as_deref(), at.as_deref());
            refusal(
                tasks_cmd::confirm(&ingestion, &account_id, &milestone_id, &by, note, at)
                    .await
                    .map(|said| print!("{said}")),
            )
        }
        Command::Webhooks { command } => webhooks(&store()?, command).await,
        Command::Crm { command } => crm(&store()?, command).await,
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
            command: MapsCommand::Validate { .. } | MapsCommand::Simulate { .. },
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
    milepost_local::stack::create_local_resources(sdk, &table, &bus).await?;
    let definition = milepost_local::stack::local_definition(ESCALATION_ASL);
    let state_machine =
        milepost_local::stack::create_local_state_machine(sdk, &format!("{table}-escalation"), &definition).await?;
    let sender = milepost_app::Config::from_env()?.sender.email.to_string();
    milepost_local::outbox::verify_sender(sdk, &sender).await?;
    eprintln!("table {table}, event bus {bus}, state machine and SES sender ready at {endpoint}");
    // The one line scripts read: the state machine's ARN.
    println!("{state_machine}");
    Ok(())
}

/// The escalation state machine as deployed (`infra/statemachine/`), built in.
const ESCALATION_ASL: &str = include_str!("../../infra/statemachine/escalation.asl.json");

/// `milepost sweep`: one scheduled run, as the sweep function runs it.
async fn sweep(sdk: &aws_config::SdkConfig, json: bool) -> anyhow::Result<ExitCode> {
    // As the scheduled function runs it: the sweep, then the snoozes that are over, ...
    milepost_aws::require_state_machine()?;
    let services = milepost_aws::services_from_env(sdk, milepost_aws::LinkKey::IfConfigured).await?;
    let ran = services
        .scheduled_run()
        .run(&milepost_app::sweep::SweepOptions::default())
        .await?;
    // And what the function's other schedule does: the console's portfolio and results.
    let kept = services.console_keeping().run().await?;
    tracing::debug!(
        rows = kept.portfolio.rows,
        results = kept.results_kept,
        "the console kept"
    );
    let (report, reminded, digested, warned, settled) = (
        ran.sweep,
        ran.reminders,
        ran.held_back_lists,
        ran.heads_ups,
        ran.unknown_emails,
    );
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
        if warned.opportunities_told > 0 {
            println!(
                "told {} owner(s) of a new expansion opportunity",
                warned.opportunities_told
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

/// `milepost renewals import`: all rows or none.
async fn import_renewals(
    store: &milepost_aws::DynamoStore,
    file: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let input = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let limits = milepost_app::Config::from_env()?.time_limits;
    let today = chrono::Utc::now().date_naive();
    match renewals_cmd::import(store, input, &limits, today).await {
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

/// Who set a plan from this command line, as the plan's history records it.
fn cli_user() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// `milepost outcomes ...`: success plans set, imported and read back.
async fn outcomes(store: &milepost_aws::DynamoStore, command: OutcomesCommand) -> anyhow::Result<ExitCode> {
    use milepost_app::ports::SuccessPlanStore;
    use milepost_app::success_plans::{set_outcome, PlanError, PlanSet};
    use milepost_cli::outcomes_cmd;
    let now = chrono::Utc::now();
    match command {
        OutcomesCommand::Import { file, json } => {
            let input = std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?;
            let by = format!(
                "import:{}",
                file.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy())
            );
            match outcomes_cmd::import(store, input, &by, now).await {
                Ok(r) if json => println!("{}", serde_json::to_string_pretty(&r)?),
                Ok(r) => println!(
                    "imported {} outcome(s) for {} account(s): {} plan(s) changed, {} as they stood",
                    r.rows, r.accounts, r.changed, r.unchanged
                ),
                Err(outcomes_cmd::ImportError::Problems(problems)) => {
                    for p in &problems {
                        eprintln!("{}:{}: {}: {}", file.display(), p.line, p.field, p.message);
                    }
                    eprintln!("nothing imported: {} problem(s)", problems.len());
                    return Ok(ExitCode::from(2));
                }
                Err(outcomes_cmd::ImportError::Failed(e)) => return Err(e),
            }
        }
        OutcomesCommand::Set {
            account_id,
            id,
            title,
            event,
            property,
            unit,
            baseline,
            target,
            starts_on,
            by,
            checkpoints,
            agreed_by,
        } => {
            let day = |flag: &str, text: &str| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| format!("{flag}: {text:?} is not a date (YYYY-MM-DD)"))
            };
            let parsed = (|| -> Result<_, String> {
                Ok((
                    day("--starts-on", &starts_on)?,
                    day("--by", &by)?,
                    outcomes_cmd::parse_checkpoints(&checkpoints.join(";"))
                        .map_err(|e| format!("--checkpoint: {e}"))?,
                ))
            })();
            let (starts_on, by_day, checkpoints) = match parsed {
                Ok(p) => p,
                Err(why) => {
                    eprintln!("{why}");
                    return Ok(ExitCode::from(2));
                }
            };
            let outcome = milepost_domain::AgreedOutcome {
                id,
                title,
                measure: milepost_domain::Measure { event, property },
                unit,
                baseline,
                target,
                starts_on,
                by: by_day,
                checkpoints,
                agreed_by,
            };
            let account = milepost_domain::AccountId::new(account_id);
            match set_outcome(store, &account, outcome, &cli_user(), now).await {
                Ok(PlanSet::New(plan)) => print!("{}", outcomes_cmd::render_plan(&plan)),
                Ok(PlanSet::Unchanged(plan)) => {
                    println!("the plan is as it stood (version {}): nothing kept", plan.version)
                }
                Err(PlanError::Invalid(problems)) => {
                    for p in &problems {
                        // `outcomes[1].agreed_by` is the flag --agreed-by.
                        let field = p.field.rsplit('.').next().unwrap_or(&p.field);
                        let flag = field
                            .split('[')
                            .next()
                            .unwrap_or(field)
                            .trim_end_matches('s')
                            .replace('_', "-");
                        eprintln!("--{flag}: {}", p.message);
                    }
                    return Ok(ExitCode::from(2));
                }
                Err(e @ PlanError::UnknownAccount(_)) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(2));
                }
                Err(PlanError::Store(e)) => return Err(e.into()),
            }
        }
        OutcomesCommand::Show {
            account_id,
            history,
            json,
        } => {
            let account = milepost_domain::AccountId::new(account_id);
            let plans = if history {
                store.success_plan_history(&account).await?
            } else {
                store.success_plan(&account).await?.into_iter().collect()
            };
            if plans.is_empty() {
                eprintln!("{account} has no success plan: `milepost outcomes set` or `import` makes one");
                return Ok(ExitCode::from(2));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            } else {
                for plan in &plans {
                    print!("{}", outcomes_cmd::render_plan(plan));
                }
            }
        }
        OutcomesCommand::List { json } => {
            let plans = store.success_plans().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            } else {
                print!("{}", outcomes_cmd::render_list(&plans));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `milepost report`: the period checked, then the report as text, JSON or CSV.
async fn report(
    store: &milepost_aws::DynamoStore,
    args: report_cmd::Args,
    json: bool,
    csv: bool,
) -> anyhow::Result<ExitCode> {
    let checked = match report_cmd::check(&args, chrono::Utc::now()) {
        Ok(c) => c,
        Err(bad) => {
            eprintln!("{bad}");
            return Ok(ExitCode::from(2));
        }
    };
    let report = report_cmd::build(store, checked).await?;
    if json {
        print!("{}", report_cmd::to_json(&report));
    } else if csv {
        print!("{}", report_cmd::to_csv(&report));
    } else {
        print!("{}", report_cmd::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Which of the store's accounts `discover --from-store` judges, in which cohorts.
struct Judged {
    /// Only those with (or without) a success plan; none: all.
    success_plan: Option<bool>,
    cohorts: milepost_discovery::input::CohortSplit,
}

/// `milepost discover --from-store`: the tracked milestones and recorded renewals of the store.
async fn discover_from_store(
    store: &milepost_aws::DynamoStore,
    review: &[PathBuf],
    format: &str,
    chart: Option<&std::path::Path>,
    segment: Option<&str>,
    tenure: Option<&str>,
    Judged { success_plan, cohorts }: Judged,
) -> anyhow::Result<ExitCode> {
    if cohorts != milepost_discovery::input::CohortSplit::Renewal && !review.is_empty() {
        // Said before the Scan it would otherwise pay for.
        anyhow::bail!("--review judges maps by what predicts renewal: run it without --cohorts expansion");
    }
    let records = milepost_cli::discover_store::records(store, success_plan, cohorts).await?;
    if let Some(want) = success_plan {
        eprintln!(
            "only accounts {} a success plan: {} other(s) left out",
            milepost_domain::report::plan_word(want),
            records.left_out
        );
    }
    if records.checkpoints_left_out > 0 {
        eprintln!(
            "{} success plan checkpoint(s) left out: each is its account's own target, which no cohort shares",
            records.checkpoints_left_out
        );
    }
    let (undecided, not_judged) = (records.undecided, records.not_judged);
    let found = milepost_discovery::run_on_records(records, review, segment, tenure)?;
    let cohorts_read = match cohorts {
        milepost_discovery::input::CohortSplit::Renewal => {
            format!("{} renewed and {} churned accounts", found.renewed, found.churned)
        }
        milepost_discovery::input::CohortSplit::Expansion => format!(
            "{} expanded and {} not expanded (renewed flat or contracted) accounts, {} churned left out",
            found.renewed, found.churned, found.not_in_cohorts
        ),
    };
    eprintln!(
        "from the store: {cohorts_read}; {undecided} without a renewal decision yet; \
         {not_judged} milestone(s) due after their account's decision not judged"
    );
    eprint!("{}", milepost_discovery::empty_cohort_warning(&found));
    print!("{}", milepost_discovery::render(&found, format, !review.is_empty())?);
    if let Some(path) = chart {
        let (svg, panels) = milepost_discovery::chart_svg(&found, segment, tenure);
        milepost_discovery::write_file(path, &svg)?;
        eprintln!("chart of {panels} milestone(s) written to {}", path.display());
    }
    // The maps page shows every scope: only a whole result is kept; and
    // what a milestone is worth is measured in churn, never in expansion.
    if cohorts != milepost_discovery::input::CohortSplit::Renewal {
        eprintln!("nothing kept for the console's maps page: it shows what predicts renewal, not expansion");
    } else if segment.is_some() || tenure.is_some() || success_plan.is_some() {
        eprintln!(
            "nothing kept for the console's maps page: --segment, --tenure or --success-plan narrowed the result"
        );
    } else {
        let printed = milepost_discovery::render(&found, "json", false)?;
        let source = "the store's renewal decisions";
        match milepost_domain::discovery::KeptDiscovery::from_json(&printed, source, chrono::Utc::now()) {
            Ok(kept) => {
                store.keep_discovery(&kept).await?;
                eprintln!("kept for the console's maps page");
                if let Some(said) =
                    maps_cmd::reweighed(&milepost_app::worth::reweigh(store, &Default::default()).await?)
                {
                    eprintln!("{said}");
                }
            }
            Err(why) => eprintln!("nothing kept for the console's maps page: {why}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `milepost tasks done|snooze|dismiss`: through the same use case as the email's buttons.
async fn change_task(sdk: &aws_config::SdkConfig, command: &TasksCommand) -> anyhow::Result<ExitCode> {
    let ingestion = milepost_aws::services_from_env(sdk, milepost_aws::LinkKey::Skip)
        .await?
        .ingestion();
    let (id, change, by, note) = match command {
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
            .map(|task| println!("{}: {}", task.id(), milepost_app::email::standing(&task))),
    )
}

/// `milepost accounts show`: what ingestion made of an account.
async fn show_account(store: &milepost_aws::DynamoStore, account_id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let Some(view) = accounts_cmd::show(store, account_id).await? else {
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

/// `milepost tasks list`: an owner's tasks, or everyone's, by status.
async fn list_tasks(
    store: &milepost_aws::DynamoStore,
    owner: Option<&str>,
    status: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let status = status.and_then(TaskStatus::parse);
    let tasks = tasks_cmd::list(store, owner, status).await?;
    if json {
        let rows: Vec<TaskRow> = tasks.iter().map(TaskRow::from).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", tasks_cmd::render(&tasks));
    }
    Ok(ExitCode::SUCCESS)
}

/// `milepost parked`: events waiting for their account, replayed with `--replay`.
async fn parked(sdk: &aws_config::SdkConfig, replay: bool, json: bool) -> anyhow::Result<ExitCode> {
    let ingestion = milepost_aws::services_from_env(sdk, milepost_aws::LinkKey::Skip)
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

/// `milepost contacts suppressed`: who no longer gets customer email, and why.
async fn suppressed(store: &milepost_aws::DynamoStore, json: bool) -> anyhow::Result<ExitCode> {
    let list = contacts_cmd::suppressed(store).await?;
    if json {
        let rows: Vec<contacts_cmd::SuppressedRow> = list.iter().map(contacts_cmd::SuppressedRow::from).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", contacts_cmd::render(&list));
    }
    Ok(ExitCode::SUCCESS)
}

async fn crm(store: &milepost_aws::DynamoStore, command: CrmCommand) -> anyhow::Result<ExitCode> {
    use milepost_app::ports::{CrmList, CrmSyncStore};
    let now = chrono::Utc::now();
    let text = match command {
        CrmCommand::Unmatched { json } | CrmCommand::Dead { json } => {
            let list = if matches!(command, CrmCommand::Unmatched { .. }) {
                CrmList::Unmatched
            } else {
                CrmList::Dead
            };
            let records = store.listed_crm_syncs(list, crm_cmd::LISTED).await?;
            if json {
                serde_json::to_string_pretty(&crm_cmd::rows(&records))? + "\n"
            } else {
                crm_cmd::render(list, &records)
            }
        }
        CrmCommand::Replay { account } => {
            let account = account.map(milepost_domain::AccountId::new);
            let n = milepost_app::crm::replay(store, now, account.as_ref()).await?;
            format!("{n} sent again (the integrations function sends them within a minute)\n")
        }
        CrmCommand::Sync { account_id } => {
            milepost_app::crm::resync(store, now, &milepost_domain::AccountId::new(&account_id)).await?;
            format!("{account_id}'s company is written again within a minute\n")
        }
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

async fn webhooks(store: &milepost_aws::DynamoStore, command: WebhooksCommand) -> anyhow::Result<ExitCode> {
    let poster = milepost_aws::webhook_poster::HttpWebhookPoster::new().map_err(anyhow::Error::msg)?;
    let clock = milepost_app::clock::SystemClock;
    let hooks = milepost_app::webhooks::Webhooks {
        store,
        poster: &poster,
        clock: &clock,
    };
    let said: Result<String, CommandError> = match command {
        WebhooksCommand::Add { url, events, json } => {
            match hooks.add(&url, &webhooks_cmd::event_types(&events)).await {
                Ok(e) if json => Ok(serde_json::to_string(&serde_json::json!({
                    "id": e.id, "url": e.url, "events": e.events, "secret": e.secrets[0].secret,
                }))? + "\n"),
                Ok(e) => Ok(webhooks_cmd::added(&e)),
                Err(e) => Err(e.into()),
            }
        }
        WebhooksCommand::List { json } => {
            let endpoints = hooks.endpoints().await?;
            Ok(if json {
                serde_json::to_string_pretty(&webhooks_cmd::rows(&endpoints, chrono::Utc::now()))? + "\n"
            } else {
                webhooks_cmd::render_endpoints(&endpoints)
            })
        }
        WebhooksCommand::RotateSecret { id } => hooks
            .rotate_secret(&id)
            .await
            .map(|e| {
                format!(
                    "new signing secret for {id} (shown once); the previous one keeps signing for 24 hours:\n  {}\n",
                    e.secrets[0].secret
                )
            })
            .map_err(Into::into),
        WebhooksCommand::Enable { id } => hooks
            .enable(&id)
            .await
            .map(|_| format!("{id} enabled; `milepost webhooks replay {id}` sends what failed meanwhile\n"))
            .map_err(Into::into),
        WebhooksCommand::Remove { id } => hooks
            .remove(&id)
            .await
            .map(|()| format!("{id} removed\n"))
            .map_err(Into::into),
        WebhooksCommand::Deliveries { id, json } => match hooks.deliveries(&id).await {
            Ok(list) if json => Ok(serde_json::to_string_pretty(&webhooks_cmd::delivery_rows(&list))? + "\n"),
            Ok(list) => Ok(webhooks_cmd::render_deliveries(&list)),
            Err(e) => Err(e.into()),
        },
        WebhooksCommand::Replay { id, event, since, all } => {
            webhooks_cmd::replay(&hooks, &id, event.as_deref(), since.as_deref(), all).await
        }
        WebhooksCommand::Deliver { json } => {
            let run = hooks.deliver_due(None).await?;
            Ok(if json {
                serde_json::to_string_pretty(&run)? + "\n"
            } else {
                format!(
                    "{} delivered, {} to retry later, {} given up\n",
                    run.delivered, run.retrying, run.dead
                )
            })
        }
    };
    refusal(said.map(|text| print!("{text}")))
}
