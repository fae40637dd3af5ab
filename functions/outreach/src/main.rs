//! Milepost Lambda `outreach`: escalation playbook step.
//!
//! The handler logic already lives in `milepost` (the shared crate) and runs
//! in `milepost demo`; this binary gains its AWS wiring (lambda_runtime, SDK
//! clients) with issue #5. Until then it refuses to run rather than
//! pretend to work.

fn main() {
    eprintln!("milepost outreach: the AWS wiring of this function arrives with issue #5; run `milepost demo` to see the pipeline locally");
    std::process::exit(2);
}
