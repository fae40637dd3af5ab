//! The example maps (`examples/maps/`), built into the command so `milepost
//! demo` runs with nothing on disk. No other crate carries them.

use milepost_domain::MilestoneMap;
use milepost_maps::load_map;

/// The files, by name.
pub const EXAMPLE_MAPS: [(&str, &str); 4] = [
    ("enterprise.yaml", include_str!("../../examples/maps/enterprise.yaml")),
    ("mid_market.yaml", include_str!("../../examples/maps/mid_market.yaml")),
    ("smb.yaml", include_str!("../../examples/maps/smb.yaml")),
    ("multi_year.yaml", include_str!("../../examples/maps/multi_year.yaml")),
];

/// The example maps, loaded; `milepost-maps` tests every file of the folder to be valid.
pub fn example_maps() -> Vec<MilestoneMap> {
    EXAMPLE_MAPS
        .iter()
        .map(|(name, text)| load_map(name, text).unwrap_or_else(|p| panic!("example map {name} is invalid: {p:?}")))
        .collect()
}
