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

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples are what a map should be: `maps validate` has no advice
    /// for them (every customer-side milestone has customer words and a guide).
    #[test]
    fn the_example_maps_need_no_advice() {
        for (name, text) in EXAMPLE_MAPS {
            let (_, advice) = milepost_maps::load_map_with_advice(name, text).unwrap();
            assert!(advice.is_empty(), "{name}: {advice:#?}");
        }
    }
}
