//! The report's use case: every account and milestone read page by page and
//! folded into `milepost_domain::report::ReportBuilder`, with the open and
//! snoozed tasks. Nothing is written.

use milepost_domain::report::{Report, ReportBuilder, ReportOptions};
use milepost_domain::TaskStatus;

use crate::ports::{Record, ReportStore, StoreResult};

pub async fn report(store: &dyn ReportStore, options: ReportOptions) -> StoreResult<Report> {
    let mut builder = ReportBuilder::new(options);
    let mut cursor = None;
    loop {
        let page = store.records_page(cursor.take()).await?;
        for record in page.items {
            match record {
                Record::Account(a) => builder.add_account(&a),
                Record::Milestone(m) => builder.add_milestone(&m),
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for status in [TaskStatus::Open, TaskStatus::Snoozed] {
        for task in store.tasks_with_status(status).await? {
            builder.add_task(&task);
        }
    }
    Ok(builder.finish())
}
