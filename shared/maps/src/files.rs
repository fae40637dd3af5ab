//! Map files on disk: which files a set of paths names, and reading them
//! all with every problem reported.

use std::path::{Path, PathBuf};

use milepost_domain::MilestoneMap;

use crate::{load_map, MapProblem};

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

/// Reads and validates every file: the maps if all are valid, otherwise
/// every problem. A file that cannot be read is an error of its own.
pub fn read_maps(files: &[PathBuf]) -> std::io::Result<Result<Vec<MilestoneMap>, Vec<MapProblem>>> {
    let mut maps = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text = read(file)?;
        match load_map(&name, &text) {
            Ok(map) => maps.push(map),
            Err(p) => problems.extend(p),
        }
    }
    Ok(if problems.is_empty() { Ok(maps) } else { Err(problems) })
}

/// Every problem of every file, an unreadable file among them (empty when all are valid).
pub fn check_files(files: &[PathBuf]) -> Vec<MapProblem> {
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

fn read(file: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(file)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display())))
}

/// The advice on every valid file (see `load_map_with_advice`); files with
/// problems give none (`check_files` reports those).
pub fn advise_files(files: &[PathBuf]) -> Vec<MapProblem> {
    files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            crate::load_map_with_advice(&file.display().to_string(), &text).ok()
        })
        .flat_map(|(_, advice)| advice)
        .collect()
}
