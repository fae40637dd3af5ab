//! Milepost on the local AWS emulator (moto): what `make local`, `milepost
//! local init`, `milepost outbox` and the integration tests need, and what
//! no Lambda links. `emulator` starts moto for a test; `stack` creates the
//! table, bus and state machine there; `outbox` reads back the emails SES
//! "sent" and verifies the sender; `iam` records what tests ask of AWS
//! there, to check it against the template's policies, and `routes` what
//! a function answers against the template's HTTP routes; `fault_proxy` sits
//! between the SDK and the emulator and misbehaves on purpose, seeded.

pub mod emulator;
pub mod fault_proxy;
pub mod iam;
pub mod outbox;
pub mod routes;
pub mod stack;
pub mod stand_in;

pub use emulator::{harness_script, venv_python, MotoServer};
pub use stand_in::StandIn;

/// A suffix no other call in this process returns (a record file's name).
fn fresh_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What went wrong on the emulator: what was being done, and the cause
/// (an SDK error, an HTTP failure), kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{doing}")]
pub struct EmulatorError {
    pub doing: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl EmulatorError {
    /// `doing` failed because of `source`.
    pub fn of(doing: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        EmulatorError {
            doing: doing.into(),
            source: Some(source.into()),
        }
    }

    /// `doing` cannot be done, for the reason it says.
    pub fn refused(doing: impl Into<String>) -> Self {
        EmulatorError {
            doing: doing.into(),
            source: None,
        }
    }
}
pub use fault_proxy::{Fault, FaultPlan, FaultProxy};

/// Runs each scenario, an async fn taking its setup, twice: on the embedded
/// store, a test each (`in_memory`, an async fn making the setup); and on
/// DynamoDB (moto), all in one test, in two halves side by side on an
/// emulator each (`on_dynamodb`, an async fn of the emulator and a table
/// name, whose setup turns moto's recorder on for what the function asks;
/// it is turned off after each scenario). That test then holds what was asked of AWS to what the SAM
/// template grants `function` (`iam::assert_granted`), after checking it
/// holds each of `asks_at_least` (so the recording cannot pass empty).
#[macro_export]
macro_rules! scenarios {
    (
        function: $function:literal,
        in_memory: $in_memory:path,
        on_dynamodb: $on_dynamodb:path,
        asks_at_least: [$($action:literal),* $(,)?],
        scenarios: [$($name:ident),* $(,)?] $(,)?
    ) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($in_memory().await).await
                }
            )*
        }

        /// And the function asks of AWS only what the template grants it.
        /// The scenarios run in two halves side by side, each on an emulator
        /// of its own (moto serves one request at a time: one emulator keeps
        /// one core busy); what both recorded is held to the grant.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn every_scenario_holds_on_dynamodb() {
            // Started one after the other: each holds its port before the next picks one.
            let motos = [$crate::MotoServer::start(), $crate::MotoServer::start()];
            let half = |part: usize, moto: $crate::MotoServer| async move {
                let mut index = 0usize;
                $(
                    if index % 2 == part {
                        eprintln!("dynamodb: {}", stringify!($name));
                        // Boxed: each scenario's future is large, and two halves run at once.
                        Box::pin(async { $name($on_dynamodb(&moto, stringify!($name)).await).await }).await;
                        moto.record_requests(false).await;
                    }
                    index += 1;
                )*
                let _ = index;
                moto.recorded_actions()
            };
            let [zero, one] = motos;
            let (first, second) = tokio::join!(tokio::spawn(half(0, zero)), tokio::spawn(half(1, one)));
            let (first, second) = (first.expect("the first half ran"), second.expect("the second half ran"));
            assert!(!first.is_empty() && !second.is_empty(), "a half recorded nothing: {first:?} / {second:?}");
            let mut used = first;
            used.extend(second);
            eprintln!("{} asked for {used:?}", $function);
            $(assert!(used.contains($action), "{} not recorded: {used:?}", $action);)*
            $crate::iam::assert_granted($function, &used);
        }
    };
}
