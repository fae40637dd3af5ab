//! `milepost`: parses the command line (args.rs) and runs the command: the
//! local ones here, those that need a deployed stack in aws_commands.rs.

use std::process::ExitCode;

use clap::Parser;
use milepost_cli::{demo, maps_cmd};
use milepost_discovery as discover;

mod args;
use args::{Cli, Command, MapsCommand};

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
            success_plan,
            cohorts,
        } => {
            if success_plan.is_some() {
                // clap's `requires` counts a flag's default as given: said here.
                eprintln!("milepost discover: --success-plan needs --from-store (an accounts file says nothing of success plans)");
                return Ok(ExitCode::from(2));
            }
            let opts = discover::DiscoverOptions {
                accounts: accounts.expect("clap requires --accounts without --from-store"),
                events,
                maps,
                review,
                segment,
                tenure,
                threads: threads.map(usize::from),
                cohorts: discover::input::CohortSplit::parse(&cohorts).expect("clap allows only known cohorts"),
            };
            discover_cmd(&opts, &format, chart.as_deref(), strict)
        }
        Command::Maps {
            command: MapsCommand::Validate { files },
        } => {
            let problems = maps_cmd::validate(&files);
            if problems.is_empty() {
                let advice = milepost_maps::advise_files(&files);
                for a in &advice {
                    eprintln!("advice: {a}");
                }
                match advice.len() {
                    0 => println!("{} map file(s) valid", files.len()),
                    n => println!("{} map file(s) valid; {n} piece(s) of advice above", files.len()),
                }
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(maps_cmd::report_problems(&problems))
            }
        }
        Command::Maps {
            command:
                MapsCommand::Simulate {
                    accounts,
                    events,
                    current,
                    proposed,
                    minutes_per_task,
                    format,
                    chart,
                    keep,
                },
        } => {
            let opts = milepost_cli::simulate::SimulateOptions {
                accounts,
                events,
                current,
                proposed,
                minutes_per_task,
            };
            if keep {
                // Before the replay, which may take a while: where it would be kept.
                can_keep()?;
            }
            let found = runtime().block_on(milepost_cli::simulate::simulate(&opts))?;
            if let Some(path) = chart {
                milepost_cli::simulate::write(&path, &milepost_cli::simulate::render_chart(&found))?;
            }
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&found)?),
                _ => print!("{}", milepost_cli::simulate::render_table(&found)),
            }
            if keep {
                keep_comparison(milepost_cli::simulate::kept(&found, chrono::Utc::now()))?;
                eprintln!("kept for the quarterly map review in the leadership digest");
            }
            Ok(ExitCode::SUCCESS)
        }
        // With an identity provider named, the AWS build signs people in through it.
        Command::Console {
            from,
            port,
            stack: false,
        } if std::env::var_os("MILEPOST_OIDC_ISSUER").is_none() => {
            runtime().block_on(milepost_cli::console_cmd::serve_demo(&from, port))?;
            Ok(ExitCode::SUCCESS)
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

/// `milepost discover --from-store` reads a deployed (or local) stack.
#[cfg(feature = "aws")]
fn from_store_cmd(command: Command) -> anyhow::Result<ExitCode> {
    runtime().block_on(aws_commands::run(command))
}

/// `milepost maps simulate --keep` writes to a deployed (or local) stack.
#[cfg(feature = "aws")]
fn keep_comparison(comparison: milepost_domain::map_review::KeptComparison) -> anyhow::Result<()> {
    use milepost_app::ports::DiscoveryStore;
    runtime().block_on(async {
        let sdk = milepost_aws::sdk_config().await;
        milepost_aws::store_from_env(&sdk)?.keep_comparison(&comparison).await?;
        Ok(())
    })
}

#[cfg(not(feature = "aws"))]
fn keep_comparison(_: milepost_domain::map_review::KeptComparison) -> anyhow::Result<()> {
    can_keep()
}

/// Whether `--keep` has a store to write to.
#[cfg(feature = "aws")]
fn can_keep() -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::var_os("MILEPOST_TABLE").is_some(),
        "--keep writes to the stack's table: set MILEPOST_TABLE (and the AWS credentials and region)"
    );
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn can_keep() -> anyhow::Result<()> {
    anyhow::bail!("--keep writes to a deployed store: this milepost was built without the AWS commands")
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

#[cfg(feature = "aws")]
mod aws_commands;

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
