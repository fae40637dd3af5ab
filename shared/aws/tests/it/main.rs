//! The AWS adapters on moto, one binary: the store contract on both stores, the adapters, concurrent group calls, a failed delivery, the playbook's functions. (`function_sdk.rs` sets process-wide environment variables, so it keeps a binary of its own.)

mod aws_adapters;
mod concurrent_group_calls;
mod failed_delivery;
mod playbook_on_aws;
mod store_contract;
