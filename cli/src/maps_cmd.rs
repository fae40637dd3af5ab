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

/// What a reweighing did, in a line; none when no map has a discovered weight.
pub fn reweighed(r: &milepost_app::worth::Reweighed) -> Option<String> {
    (r.discovered_maps > 0).then(|| {
        format!(
            "arr_weight: discovered: {} map(s) weighed by the kept discovery ({} changed), {} tracked milestone(s) given the new weight",
            r.discovered_maps, r.maps_changed, r.milestones_changed
        )
    })
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
