//! The numbers the store can keep: DynamoDB's range. A module of its own,
//! so records that hold numbers need not name the limits on events.

/// Numbers must stay below this magnitude: DynamoDB's largest is 9.99…e125.
pub const NUMBER_MAGNITUDE_LIMIT: f64 = 1e126;
/// The smallest non-zero magnitude DynamoDB stores as a number.
pub const MIN_NUMBER_MAGNITUDE: f64 = 1e-130;

/// Whether `v` is a number the store can keep.
pub fn storable(v: f64) -> bool {
    let x = v.abs();
    v.is_finite() && x < NUMBER_MAGNITUDE_LIMIT && (x == 0.0 || x >= MIN_NUMBER_MAGNITUDE)
}
