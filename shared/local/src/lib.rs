//! Milepost on the local AWS emulator (moto): what `make local`, `milepost
//! local init`, `milepost outbox` and the integration tests need, and what
//! no Lambda links. `emulator` starts moto for a test; `stack` creates the
//! table, bus and state machine there; `outbox` reads back the emails SES
//! "sent" and verifies the sender; `iam` records what tests ask of AWS
//! there, to check it against the template's policies; `fault_proxy` sits
//! between the SDK and the emulator and misbehaves on purpose, seeded.

pub mod emulator;
pub mod fault_proxy;
pub mod iam;
pub mod outbox;
pub mod stack;

pub use emulator::MotoServer;
pub use fault_proxy::{Fault, FaultPlan, FaultProxy};
