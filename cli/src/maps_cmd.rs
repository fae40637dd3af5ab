//! `milepost maps validate FILE...`

use std::path::PathBuf;

use milepost::maps::{load_map, MapProblem};

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
