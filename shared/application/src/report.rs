//! The report's use case: every account and milestone read page by page and
//! folded into `milepost_domain::report::ReportBuilder`, with the open and
//! snoozed tasks. Nothing is written.

use milepost_domain::report::{Report, ReportBuilder, ReportOptions};
use milepost_domain::TaskStatus;

use crate::ports::{Record, ReportStore, StoreResult};

pub async fn report(store: &dyn ReportStore, options: ReportOptions) -> StoreResult<Report> {
    let mut reports = reports(store, vec![options]).await?;
    Ok(reports.pop().expect("one report per options"))
}

/// Several reports from one read of the store (the weekly digest's week and
/// its all-time uplift): each is what `report` gives for its options.
pub async fn reports(store: &dyn ReportStore, options: Vec<ReportOptions>) -> StoreResult<Vec<Report>> {
    Ok(reports_and_maps(store, options).await?.0)
}

/// `reports`, and the maps the same read found (the quarterly review judges them).
pub async fn reports_and_maps(
    store: &dyn ReportStore,
    options: Vec<ReportOptions>,
) -> StoreResult<(Vec<Report>, Vec<milepost_domain::MilestoneMap>)> {
    let mut builders: Vec<ReportBuilder> = options.into_iter().map(ReportBuilder::new).collect();
    let mut maps = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.records_page(cursor.take()).await?;
        for record in page.items {
            for builder in &mut builders {
                match &record {
                    Record::Account(a) => builder.add_account(a),
                    Record::Milestone(m) => builder.add_milestone(m),
                    Record::Map(map) => builder.add_map(map),
                }
            }
            if let Record::Map(map) = record {
                maps.push(*map);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for status in [TaskStatus::Open, TaskStatus::Snoozed] {
        for task in store.tasks_with_status(status).await? {
            for builder in &mut builders {
                builder.add_task(&task);
            }
        }
    }
    Ok((builders.into_iter().map(ReportBuilder::finish).collect(), maps))
}
