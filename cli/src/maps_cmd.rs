//! `milepost maps validate FILE...` and `milepost maps load PATH...`

use std::path::PathBuf;
use std::process::ExitCode;

use milepost_app::ports::MapStore;
use milepost_maps::{check_files, read_maps, MapProblem};

/// Validates every file; returns the problems found (empty when all are valid).
pub fn validate(files: &[PathBuf]) -> Vec<MapProblem> {
    check_files(files)
}

/// Prints every problem and their count; the command fails.
pub fn report_problems(problems: &[MapProblem]) -> ExitCode {
    for p in problems {
        eprintln!("{p}");
    }
    eprintln!("{} problem(s) found", problems.len());
    ExitCode::FAILURE
}

/// What a reweighing did, in a line; none when no weight is, or was, discovered.
pub fn reweighed(r: &milepost_app::worth::Reweighed) -> Option<String> {
    match (r.kept, r.discovered_maps, r.milestones_changed) {
        (_, 0, 0) => None,
        (false, n, _) => Some(format!(
            "arr_weight: discovered: {n} map(s) wait for a kept discovery (`milepost discover --from-store`); until then a miss weighs the default {}",
            milepost_domain::map::DEFAULT_ARR_WEIGHT
        )),
        (true, n, m) => Some(format!(
            "arr_weight: discovered: {n} map(s) weighed by the kept discovery ({} changed), {m} open milestone(s) given the new weight",
            r.maps_changed
        )),
    }
}

/// Validates every file and, only if all are valid, stores each map
/// (replacing the one for the same segment and tenure). Returns how many were stored.
///
/// Accounts keep tracking a milestone as it was when they started: one that
/// moves into or out of the expansion phase would stay a risk milestone
/// (missed, escalated, written to the customer) on those accounts while the
/// map says otherwise. Such a change is refused before anything is stored.
pub async fn load(store: &dyn MapStore, files: &[PathBuf]) -> anyhow::Result<Result<usize, Vec<MapProblem>>> {
    let maps = match read_maps(files)? {
        Ok(maps) => maps,
        Err(problems) => return Ok(Err(problems)),
    };
    for map in &maps {
        let segments = match map.segment {
            milepost_domain::MapSegment::Only(s) => vec![s],
            milepost_domain::MapSegment::All => milepost_domain::Segment::ALL.to_vec(),
        };
        let tenure = map.tenure.unwrap_or(milepost_domain::Tenure::FirstYear);
        for segment in segments {
            let stored = store.maps_for(segment, tenure).await?;
            let Some(before) = stored
                .iter()
                .find(|s| s.segment == map.segment && s.tenure == map.tenure)
            else {
                continue;
            };
            for def in &map.milestones {
                let Some(was) = before.milestones.iter().find(|b| b.id == def.id) else {
                    continue;
                };
                if was.expansion.is_some() != def.expansion.is_some() {
                    let (from, to) = if def.expansion.is_some() {
                        ("a risk milestone", "expansion")
                    } else {
                        ("an expansion milestone", "a risk phase")
                    };
                    anyhow::bail!(
                        "milestone {} of the {} map was {from}; accounts already track it as one, so moving it to {to} would not reach them: give it a new id (nothing was loaded)",
                        def.id,
                        map_name(map)
                    );
                }
            }
        }
    }
    for map in &maps {
        store.put_map(map).await?;
    }
    Ok(Ok(maps.len()))
}

/// `mid_market/first_year`, `all/all`: the segment and tenure it covers.
fn map_name(map: &milepost_domain::MilestoneMap) -> String {
    let (segment, tenure) = map.discovery_scope();
    format!("{segment}/{tenure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use milepost_embedded::InMemoryStore;

    const RISK: &str = r#"segment: smb
milestones:
  - id: seats_near_limit
    name: Seats in use
    customer_title: Your team on board
    phase: adoption
    due_days: 90
    owner: csm
    criterion: {kind: seat_ratio, event: user.active, min_ratio: 0.9}
    playbook: {outreach: o, csm: c, leadership: l}
"#;
    const GROWTH: &str = r#"segment: smb
milestones:
  - id: seats_near_limit
    name: Seats in use
    phase: expansion
    owner: ae
    criterion: {kind: seat_ratio, event: user.active, min_ratio: 0.9}
    expansion: {adds: 5, unit: seats, play: p}
"#;

    #[tokio::test]
    async fn a_milestone_moved_into_or_out_of_expansion_is_refused_and_nothing_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            vec![path]
        };
        let store = InMemoryStore::new();
        load(&store, &file("risk.yaml", RISK)).await.unwrap().unwrap();
        let refused = load(&store, &file("growth.yaml", GROWTH))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("seats_near_limit") && refused.contains("give it a new id"),
            "{refused}"
        );
        let stored = store
            .maps_for(milepost_domain::Segment::Smb, milepost_domain::Tenure::FirstYear)
            .await
            .unwrap();
        assert_eq!(
            stored[0].milestones[0].phase,
            milepost_domain::Phase::Adoption,
            "nothing was loaded"
        );
        // Under a new id it loads; the old one, back as it was, too.
        let renamed = GROWTH.replace("id: seats_near_limit", "id: seats_near_limit_growth");
        load(&store, &file("renamed.yaml", &renamed)).await.unwrap().unwrap();
        let back = load(&store, &file("risk.yaml", RISK)).await.unwrap();
        assert!(back.is_ok());
        // And the other way round.
        let fresh = InMemoryStore::new();
        load(&fresh, &file("growth.yaml", GROWTH)).await.unwrap().unwrap();
        assert!(load(&fresh, &file("risk.yaml", RISK)).await.is_err());
    }
}
