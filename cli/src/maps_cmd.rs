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
pub async fn load(store: &dyn MapStore, files: &[PathBuf]) -> anyhow::Result<Result<usize, Vec<MapProblem>>> {
    let maps = match read_maps(files)? {
        Ok(maps) => maps,
        Err(problems) => return Ok(Err(problems)),
    };
    for map in &maps {
        store.put_map(map).await?;
    }
    Ok(Ok(maps.len()))
}
