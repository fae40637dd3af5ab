//! Milepost Lambda `ingest`: HTTP webhook: product events in.
//!
//! The handler logic already lives in `milepost` (the shared crate) and runs
//! in `milepost demo`; this binary gains its AWS wiring (lambda_runtime, SDK
//! clients) with issue #3. Until then it refuses to run rather than
//! pretend to work.

fn main() {
    eprintln!("milepost ingest: the AWS wiring of this function arrives with issue #3; run `milepost demo` to see the pipeline locally");
    std::process::exit(2);
}
