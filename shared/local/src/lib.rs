//! Milepost on the local AWS emulator (moto): what `make local`, `milepost
//! local init`, `milepost outbox` and the integration tests need, and what
//! no Lambda links. `emulator` starts moto for a test; `stack` creates the
//! table, bus and state machine there; `outbox` reads back the emails SES
//! "sent" and verifies the sender.

pub mod emulator;
pub mod outbox;
pub mod stack;

pub use emulator::MotoServer;
