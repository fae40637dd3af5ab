//! `milepost discover --from-store`: the store's accounts and tracked
//! milestones, read page by page (`RecordScan`, one Scan on DynamoDB), folded
//! into discovery's `RecordsBuilder`, only the accounts with (or without) a
//! success plan when asked, into the `cohorts` compared. Nothing is written.

use milepost_app::ports::{Record, RecordScan, StoreError};
use milepost_discovery::input::CohortSplit;
use milepost_discovery::records::{Records, RecordsBuilder};

pub async fn records(
    store: &dyn RecordScan,
    success_plan: Option<bool>,
    cohorts: CohortSplit,
) -> Result<Records, StoreError> {
    let mut builder = RecordsBuilder::default();
    builder.success_plan = success_plan;
    builder.cohorts = cohorts;
    let mut cursor = None;
    loop {
        let page = store.records_page(cursor.take()).await?;
        for record in page.items {
            match record {
                Record::Account(a) => builder.add_account(&a),
                Record::Milestone(m) => builder.add_milestone(&m),
                Record::Map(_) => {}
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(builder.finish())
}
