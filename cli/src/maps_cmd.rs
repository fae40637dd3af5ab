//! `milepost maps validate FILE...` and `milepost maps load PATH...`

use std::path::PathBuf;

use milepost::domain::MilestoneMap;
use milepost::maps::{load_map, MapProblem};
use milepost::ports::MapStore;

/// Validates every file; returns the problems found (empty when all are valid).
pub fn validate(files: &[PathBuf]) -> Vec<MapProblem> {
    let mut problems = Vec::new();
    for file in files {
        let name = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(text) => {
                if let Err(p) = load_map(&name, &text) {
                    problems.extend(p);
                }
            }
            Err(e) => problems.push(MapProblem {
                file: name,
                line: 0,
                column: 0,
                field: "(file)".to_string(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    problems
}

/// The map files among `paths`: files as given, directories' `*.yaml` and
/// `*.yml` files in name order.
pub fn map_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads and validates every file: the maps if all are valid, otherwise every problem.
pub fn read_maps(files: &[PathBuf]) -> anyhow::Result<Result<Vec<MilestoneMap>, Vec<MapProblem>>> {
    let mut maps = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
        match load_map(&name, &text) {
            Ok(map) => maps.push(map),
            Err(p) => problems.extend(p),
        }
    }
    Ok(if problems.is_empty() { Ok(maps) } else { Err(problems) })
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
