//! Milepost Lambda `ingest`: the signed webhook that takes product events in.
//!
//! The handler (`milepost_ingest::handle`: signatures, limits, problem
//! details, Segment and Milepost payloads) is done and tested; this binary
//! gains its AWS wiring (DynamoDB store, EventBridge, secrets from SSM) with
//! the DynamoDB adapter. Until then it refuses to run rather than pretend to
//! work.

fn main() {
    eprintln!("milepost ingest: the AWS wiring of this function arrives with the DynamoDB store (issue #3); run `milepost demo` to see the pipeline locally");
    std::process::exit(2);
}
