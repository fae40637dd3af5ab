//! `arr_weight: discovered`: what a miss of a milestone is worth, measured
//! from the latest kept discovery. When a discovery is kept (`milepost
//! discover --from-store`, `milepost maps discovery`) or maps are loaded,
//! the stored maps' discovered weights are measured anew, and so are the
//! milestones tracked from them that are still pending or missed and not
//! caught up, so the report and the console read one weight for what is at
//! risk now. A miss caught up keeps the weight it had (past periods' figures
//! do not move), and a hand-set weight stays the map's when its milestone
//! was tracked.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use milepost_domain::{AccountId, MilestoneMap, MilestoneStatus, Segment, Tenure};

use crate::ports::{ConsoleReads, DiscoveryStore, MapStore, MilestoneStore, Record, RecordScan, StoreResult};
use crate::writes::{update_milestone, Edit};

/// What `reweigh` needs: the maps and the kept discovery, and every tracked milestone.
pub trait WorthStore: ConsoleReads + DiscoveryStore + MapStore + RecordScan + MilestoneStore {}
impl<T: ?Sized> WorthStore for T where T: ConsoleReads + DiscoveryStore + MapStore + RecordScan + MilestoneStore {}

/// What a reweighing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reweighed {
    /// Whether a discovery is kept to measure by.
    pub kept: bool,
    /// Maps with an `arr_weight: discovered` milestone.
    pub discovered_maps: usize,
    /// Of those, the ones whose measure changed (stored again).
    pub maps_changed: usize,
    /// Tracked milestones given their map's measured weight.
    pub milestones_changed: usize,
}

/// A tracked milestone that may need weighing: where it is, and its weight now.
struct Candidate {
    account: AccountId,
    milestone: String,
    map_milestone: String,
    weight: (f64, Option<[f64; 2]>),
}

/// The milestones of `maps` whose weight is discovered: what `maps load`
/// passes to `reweigh` as the ones that were, before it replaced them.
pub fn discovered_ids(maps: &[MilestoneMap]) -> BTreeSet<String> {
    maps.iter()
        .flat_map(|m| &m.milestones)
        .filter(|d| d.discovered_weight.is_some())
        .map(|d| d.id.clone())
        .collect()
}

/// Measures every discovered weight of the stored maps from the kept
/// discovery, and brings the milestones tracked from them that are pending
/// or missed and not caught up to it; `formerly` names milestones whose
/// weight was discovered before the maps changed, so theirs go back to the
/// map's hand-set one. Idempotent: a second run writes no milestone. Reads
/// the whole table (one more Scan) only when a discovery is kept and some
/// map has, or had, a discovered weight.
pub async fn reweigh<S: WorthStore + ?Sized>(store: &S, formerly: &BTreeSet<String>) -> StoreResult<Reweighed> {
    let kept = store.kept_discovery().await?;
    let mut maps = store.all_maps().await?;
    let mut done = Reweighed {
        kept: kept.is_some(),
        ..Reweighed::default()
    };
    for map in &mut maps {
        if !map.milestones.iter().any(|d| d.discovered_weight.is_some()) {
            continue;
        }
        done.discovered_maps += 1;
        if map.weigh(kept.as_ref()) {
            store.put_map(map).await?;
            done.maps_changed += 1;
        }
    }
    // No discovery ever kept: no milestone carries a measured weight.
    let mut discovered = discovered_ids(&maps);
    discovered.extend(formerly.iter().cloned());
    if kept.is_none() || discovered.is_empty() {
        return Ok(done);
    }
    // The scan gives accounts and milestones in no set order: keep the few
    // facts needed, then weigh once every account's map is known.
    let mut scopes: HashMap<AccountId, (Segment, Tenure)> = HashMap::new();
    let mut candidates = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.records_page(cursor.take()).await?;
        for record in page.items {
            match record {
                Record::Account(a) => {
                    scopes.insert(a.id.clone(), (a.segment, a.tenure()));
                }
                Record::Milestone(m) => {
                    let open =
                        m.status() == MilestoneStatus::Pending || (m.missed_at().is_some() && !m.status().is_reached());
                    if open && discovered.contains(m.map_milestone_id()) {
                        candidates.push(Candidate {
                            account: m.account_id().clone(),
                            milestone: m.milestone_id().to_string(),
                            map_milestone: m.map_milestone_id().to_string(),
                            weight: (m.arr_weight(), m.arr_weight_range()),
                        });
                    }
                }
                Record::Map(_) => {}
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for c in candidates {
        let Some(&(segment, tenure)) = scopes.get(&c.account) else {
            continue;
        };
        let Some(def) = MilestoneMap::select(&maps, segment, tenure).and_then(|map| map.milestone(&c.map_milestone))
        else {
            continue;
        };
        // As `TrackedMilestone::reweigh` judges it, before a read.
        let hand_set_both = def.discovered_weight.is_none() && c.weight.1.is_none();
        if hand_set_both || c.weight == (def.arr_weight(), def.arr_weight_range()) {
            continue;
        }
        let Some(m) = store.get_milestone(&c.account, &c.milestone).await? else {
            continue;
        };
        // Set on the attempt that wrote: one that lost a race reads again.
        let changed = AtomicBool::new(false);
        update_milestone(store, m, |m| {
            let now = m.reweigh(def);
            changed.store(now, Ordering::Relaxed);
            Ok(if now { Edit::Changed } else { Edit::Unchanged })
        })
        .await?;
        done.milestones_changed += usize::from(changed.load(Ordering::Relaxed));
    }
    Ok(done)
}
