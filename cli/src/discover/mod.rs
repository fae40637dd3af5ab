//! `milepost discover`: which milestones predict renewal, from past renewed
//! and churned cohorts. The statistics are in `milepost::domain::discovery`.

pub mod input;
